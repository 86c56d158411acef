package broker

import (
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/auth"
	"github.com/gregor-streaming/gregor/internal/metadata"
	"github.com/gregor-streaming/gregor/internal/wire"
)

// DescribeUserScramCredentials: v0, AlterUserScramCredentials: v0
// (KIP-554). The credentials live in the metadata log (ScramRecord), as
// in KRaft: a salt, an iteration count and the two keys SCRAM needs,
// never the password. SASL listeners authenticate against them
// (ScramLookup), PLAIN included.
func init() {
	registerSync(50, 0, 0, (*Broker).handleDescribeUserScramCredentials)
	registerSync(51, 0, 0, (*Broker).handleAlterUserScramCredentials)
}

// SCRAM mechanisms as KIP-554 numbers them.
const (
	scramSHA256 int8 = 1
	scramSHA512 int8 = 2
)

func scramMechanismName(m int8) (string, bool) {
	switch m {
	case scramSHA256:
		return auth.ScramSHA256, true
	case scramSHA512:
		return auth.ScramSHA512, true
	}
	return "", false
}

func scramMechanismNumber(name string) int8 {
	if name == auth.ScramSHA512 {
		return scramSHA512
	}
	return scramSHA256
}

// ScramLookup returns user's SCRAM credentials (auth.Lookup).
func (b *Broker) ScramLookup(user string) []auth.Credential {
	creds := b.meta.Image().Scram[user]
	out := make([]auth.Credential, 0, len(creds))
	for _, mech := range []string{auth.ScramSHA256, auth.ScramSHA512} {
		if c, ok := creds[mech]; ok {
			out = append(out, auth.Credential{Mechanism: c.Mechanism, Salt: c.Salt, Iterations: c.Iterations, StoredKey: c.StoredKey, ServerKey: c.ServerKey})
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func (b *Broker) handleDescribeUserScramCredentials(req *wire.Request) kmsg.Response {
	r := req.Body.(*kmsg.DescribeUserSCRAMCredentialsRequest)
	resp := r.ResponseKind().(*kmsg.DescribeUserSCRAMCredentialsResponse)
	if !b.authorizedCluster(req, kmsg.ACLOperationDescribe) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		return resp
	}
	all := b.meta.Image().Scram
	describe := func(user string) kmsg.DescribeUserSCRAMCredentialsResponseResult {
		res := kmsg.NewDescribeUserSCRAMCredentialsResponseResult()
		res.User = user
		creds, ok := all[user]
		if !ok {
			res.ErrorCode = kerr.ResourceNotFound.Code
			res.ErrorMessage = kmsg.StringPtr("Attempt to describe a user credential that does not exist: " + user)
			return res
		}
		for _, mech := range []string{auth.ScramSHA256, auth.ScramSHA512} {
			if c, ok := creds[mech]; ok {
				info := kmsg.NewDescribeUserSCRAMCredentialsResponseResultCredentialInfo()
				info.Mechanism, info.Iterations = scramMechanismNumber(mech), c.Iterations
				res.CredentialInfos = append(res.CredentialInfos, info)
			}
		}
		return res
	}
	if len(r.Users) == 0 {
		// Null or empty asks for every user, as Kafka's
		// ScramImage.describe reads both.
		users := make([]string, 0, len(all))
		for u := range all {
			users = append(users, u)
		}
		slices.Sort(users)
		for _, u := range users {
			resp.Results = append(resp.Results, describe(u))
		}
		return resp
	}
	count := map[string]int{}
	for _, u := range r.Users {
		count[u.Name]++
	}
	seen := map[string]bool{}
	for _, u := range r.Users {
		if seen[u.Name] {
			continue
		}
		seen[u.Name] = true
		if count[u.Name] > 1 {
			res := kmsg.NewDescribeUserSCRAMCredentialsResponseResult()
			res.User = u.Name
			res.ErrorCode = kerr.DuplicateResource.Code
			res.ErrorMessage = kmsg.StringPtr("Cannot describe SCRAM credentials for the same user twice in a single request: " + u.Name)
			resp.Results = append(resp.Results, res)
			continue
		}
		resp.Results = append(resp.Results, describe(u.Name))
	}
	return resp
}

// scramRecord is the metadata record storing credential c of user.
func scramRecord(user string, c auth.Credential) metadata.ScramRecord {
	return metadata.ScramRecord{User: user, Mechanism: c.Mechanism, Salt: c.Salt, Iterations: c.Iterations, StoredKey: c.StoredKey, ServerKey: c.ServerKey}
}

func (b *Broker) handleAlterUserScramCredentials(req *wire.Request) kmsg.Response {
	r := req.Body.(*kmsg.AlterUserSCRAMCredentialsRequest)
	resp := r.ResponseKind().(*kmsg.AlterUserSCRAMCredentialsResponse)
	// Users in request order, each answered once; an error on any of a
	// user's changes applies none of them (Kafka's ControllerApis).
	var users []string
	// A user's changes are the records to write: a deletion is a
	// ScramRecord without keys.
	errs := map[string]*scramError{}
	changes := map[string][]metadata.ScramRecord{}
	pairs := map[[2]string]int{}
	// ALTER on the cluster, or every user is refused (Kafka's
	// ControllerApis.handleAlterUserScramCredentials).
	denied := !b.authorizedCluster(req, kmsg.ACLOperationAlter)
	note := func(user string, err *scramError) {
		if _, ok := errs[user]; !ok {
			users = append(users, user)
			errs[user] = nil
		}
		if denied {
			err = scramErr(kerr.ClusterAuthorizationFailed, kerr.ClusterAuthorizationFailed.Description)
		}
		if err != nil && errs[user] == nil {
			errs[user] = err
		}
	}
	for _, d := range r.Deletions {
		mech, ok := scramMechanismName(d.Mechanism)
		switch {
		case d.Name == "":
			note(d.Name, scramErr(kerr.UnacceptableCredential, "Username must not be empty"))
		case !ok:
			note(d.Name, scramErr(kerr.UnsupportedSaslMechanism, "Unknown SCRAM mechanism"))
		default:
			note(d.Name, nil)
			pairs[[2]string{d.Name, mech}]++
			changes[d.Name] = append(changes[d.Name], metadata.ScramRecord{User: d.Name, Mechanism: mech})
		}
	}
	for _, u := range r.Upsertions {
		mech, ok := scramMechanismName(u.Mechanism)
		switch {
		case u.Name == "":
			note(u.Name, scramErr(kerr.UnacceptableCredential, "Username must not be empty"))
			continue
		case !ok:
			note(u.Name, scramErr(kerr.UnsupportedSaslMechanism, "Unknown SCRAM mechanism"))
			continue
		case u.Iterations < auth.MinIterations:
			note(u.Name, scramErr(kerr.UnacceptableCredential, "Too few iterations"))
			continue
		case u.Iterations > auth.MaxIterations:
			note(u.Name, scramErr(kerr.UnacceptableCredential, "Too many iterations"))
			continue
		case len(u.Salt) == 0:
			note(u.Name, scramErr(kerr.UnacceptableCredential, "Salt must not be empty"))
			continue
		}
		cred, err := auth.CredentialFromSalted(mech, u.Salt, u.SaltedPassword, u.Iterations)
		if err != nil {
			note(u.Name, scramErr(kerr.UnacceptableCredential, err.Error()))
			continue
		}
		note(u.Name, nil)
		pairs[[2]string{u.Name, mech}]++
		changes[u.Name] = append(changes[u.Name], scramRecord(u.Name, cred))
	}
	for pair, n := range pairs {
		if n > 1 {
			note(pair[0], scramErr(kerr.DuplicateResource, "A user credential cannot be altered twice in the same request"))
		}
	}
	_, err := b.meta.Update(func(img *metadata.Image) ([]metadata.Record, error) {
		var recs []metadata.Record
		for _, user := range users {
			if errs[user] != nil {
				continue
			}
			var userRecs []metadata.Record
			for _, rec := range changes[user] {
				if _, ok := img.Scram[user][rec.Mechanism]; !ok && rec.StoredKey == nil {
					errs[user] = scramErr(kerr.ResourceNotFound, "Attempt to delete a user credential that does not exist")
					userRecs = nil
					break
				}
				userRecs = append(userRecs, metadata.Record{Scram: &rec})
			}
			recs = append(recs, userRecs...)
		}
		return recs, nil
	})
	for _, user := range users {
		res := kmsg.NewAlterUserSCRAMCredentialsResponseResult()
		res.User = user
		e := errs[user]
		if e == nil && err != nil {
			e = scramErr(kerr.UnknownServerError, err.Error())
		}
		if e != nil {
			res.ErrorCode = e.code.Code
			res.ErrorMessage = kmsg.StringPtr(e.msg)
		}
		resp.Results = append(resp.Results, res)
	}
	return resp
}

// scramError is a user's failed result in AlterUserScramCredentials.
type scramError struct {
	code *kerr.Error
	msg  string
}

func scramErr(code *kerr.Error, msg string) *scramError { return &scramError{code, msg} }

// EnsureScramUser gives user a credential for mechanism derived from
// password unless the user has one for it already (gregor serve
// --add-scram, as kafka-storage format --add-scram: a bootstrap, not a
// password change). It reports whether it added one.
func (b *Broker) EnsureScramUser(mechanism, user, password string) (bool, error) {
	if user == "" {
		return false, fmt.Errorf("SCRAM user without a name")
	}
	if _, ok := b.meta.Image().Scram[user][mechanism]; ok {
		return false, nil
	}
	cred, err := auth.NewCredential(mechanism, password, nil, 0)
	if err != nil {
		return false, err
	}
	added := false
	_, err = b.meta.Update(func(img *metadata.Image) ([]metadata.Record, error) {
		if _, ok := img.Scram[user][mechanism]; ok {
			return nil, nil
		}
		added = true
		rec := scramRecord(user, cred)
		return []metadata.Record{{Scram: &rec}}, nil
	})
	return added, err
}
