package goclients

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/IBM/sarama"
	xscram "github.com/xdg-go/scram"
)

// saramaSecure is a sarama config for user (password user-secret) on the
// suite's SASL_SSL broker, with SCRAM-SHA-512.
func saramaSecure(t *testing.T, user string) (string, *sarama.Config) {
	t.Helper()
	secureAddr, tc := secureTLS(t)
	cfg := saramaConfig(sarama.V3_6_0_0, "interop-sarama-acl")
	cfg.Net.TLS.Enable, cfg.Net.TLS.Config = true, tc
	cfg.Net.SASL.Enable, cfg.Net.SASL.Mechanism = true, sarama.SASLTypeSCRAMSHA512
	cfg.Net.SASL.User, cfg.Net.SASL.Password = user, user+"-secret"
	cfg.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &xdgSCRAM{hash: xscram.SHA512} }
	return secureAddr, cfg
}

// aclKey is one binding, comparable.
type aclKey struct {
	typ       sarama.AclResourceType
	name      string
	pattern   sarama.AclResourcePatternType
	principal string
	host      string
	op        sarama.AclOperation
	perm      sarama.AclPermissionType
}

func (k aclKey) String() string {
	return fmt.Sprintf("%v:%v:%s %s@%s %v %v", k.typ, k.pattern, k.name, k.principal, k.host, k.op, k.perm)
}

func sortedKeys(ks []aclKey) []string {
	var out []string
	for _, k := range ks {
		out = append(out, k.String())
	}
	slices.Sort(out)
	return out
}

// TestSaramaACL: sarama's ClusterAdmin as alice (a super user) creates
// ACLs for bob with CreateACLs (CreateAcls v1) and CreateACL (v2), lists
// them with ListAcls (DescribeAcls v2) by literal name and by MATCH, and
// deletes them with DeleteACL (DeleteAcls v2). bob, with WRITE and
// DESCRIBE on acl-sarama and DESCRIBE alone on acl-sarama-secret, writes
// to the first, is refused by the Produce request on the second and by
// Metadata on acl-sarama-hidden, which his metadata does not list; after
// the deletes his writes to acl-sarama are refused. bob's CreateACL,
// ListAcls and DeleteACL get CLUSTER_AUTHORIZATION_FAILED.
func TestSaramaACL(t *testing.T) {
	const (
		topic  = "acl-sarama"
		secret = "acl-sarama-secret"
		hidden = "acl-sarama-hidden"
		bob    = "User:bob"
		n      = 20
	)
	secureAddr, aliceCfg := saramaSecure(t, "alice")
	_, bobCfg := saramaSecure(t, "bob")
	alice, err := sarama.NewClusterAdmin([]string{secureAddr}, aliceCfg)
	if err != nil {
		t.Fatalf("alice's admin: %v", err)
	}
	defer alice.Close()
	for _, name := range []string{topic, secret, hidden} {
		if err := alice.CreateTopic(name, &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1}, false); err != nil {
			t.Fatalf("create topic %s: %v", name, err)
		}
	}

	literal := func(name string) sarama.Resource {
		return sarama.Resource{ResourceType: sarama.AclResourceTopic, ResourceName: name, ResourcePatternType: sarama.AclPatternLiteral}
	}
	allow := func(op sarama.AclOperation) *sarama.Acl {
		return &sarama.Acl{Principal: bob, Host: "*", Operation: op, PermissionType: sarama.AclPermissionAllow}
	}
	key := func(r sarama.Resource, a sarama.Acl) aclKey {
		return aclKey{r.ResourceType, r.ResourceName, r.ResourcePatternType, a.Principal, a.Host, a.Operation, a.PermissionType}
	}
	topicACLs := []aclKey{key(literal(topic), *allow(sarama.AclOperationWrite)), key(literal(topic), *allow(sarama.AclOperationDescribe))}
	secretACLs := []aclKey{key(literal(secret), *allow(sarama.AclOperationDescribe))}
	filter := func(name string, pattern sarama.AclResourcePatternType) sarama.AclFilter {
		p := bob
		return sarama.AclFilter{ResourceType: sarama.AclResourceTopic, ResourceName: &name, ResourcePatternTypeFilter: pattern,
			Principal: &p, Operation: sarama.AclOperationAny, PermissionType: sarama.AclPermissionAny}
	}
	list := func(f sarama.AclFilter) []aclKey {
		t.Helper()
		res, err := alice.ListAcls(f)
		if err != nil {
			t.Fatalf("ListAcls %s: %v", *f.ResourceName, err)
		}
		var out []aclKey
		for _, r := range res {
			for _, a := range r.Acls {
				out = append(out, key(r.Resource, *a))
			}
		}
		return out
	}
	sameACLs := func(what string, got, want []aclKey) {
		t.Helper()
		if g, w := sortedKeys(got), sortedKeys(want); !slices.Equal(g, w) {
			t.Fatalf("%s: %v, want %v", what, g, w)
		}
	}

	// bob may not manage ACLs.
	bobAdmin, err := sarama.NewClusterAdmin([]string{secureAddr}, bobCfg)
	if err != nil {
		t.Fatalf("bob's admin: %v", err)
	}
	if err := bobAdmin.CreateACL(literal(topic), *allow(sarama.AclOperationAll)); !errors.Is(err, sarama.ErrClusterAuthorizationFailed) {
		t.Errorf("bob's CreateACL: %v, want %v", err, sarama.ErrClusterAuthorizationFailed)
	}
	if res, err := bobAdmin.ListAcls(filter(topic, sarama.AclPatternAny)); !errors.Is(err, sarama.ErrClusterAuthorizationFailed) {
		t.Errorf("bob's ListAcls: %v %v, want %v", res, err, sarama.ErrClusterAuthorizationFailed)
	}
	if res, err := bobAdmin.DeleteACL(filter(topic, sarama.AclPatternAny), false); !errors.Is(err, sarama.ErrClusterAuthorizationFailed) {
		t.Errorf("bob's DeleteACL: %v %v, want %v", res, err, sarama.ErrClusterAuthorizationFailed)
	}
	bobAdmin.Close()

	if err := alice.CreateACLs([]*sarama.ResourceAcls{{Resource: literal(topic),
		Acls: []*sarama.Acl{allow(sarama.AclOperationWrite), allow(sarama.AclOperationDescribe)}}}); err != nil {
		t.Fatalf("CreateACLs: %v", err)
	}
	if err := alice.CreateACL(literal(secret), *allow(sarama.AclOperationDescribe)); err != nil {
		t.Fatalf("CreateACL: %v", err)
	}
	sameACLs("ListAcls "+topic, list(filter(topic, sarama.AclPatternLiteral)), topicACLs)
	sameACLs("ListAcls "+secret, list(filter(secret, sarama.AclPatternAny)), secretACLs)
	sameACLs("ListAcls MATCH "+topic, list(filter(topic, sarama.AclPatternMatch)), topicACLs)

	// bob: writes to topic, is refused on secret (DESCRIBE without
	// WRITE: by the Produce response) and on hidden (no DESCRIBE: by
	// Metadata, which lists only what he may describe).
	bobClient, err := sarama.NewClient([]string{secureAddr}, bobCfg)
	if err != nil {
		t.Fatalf("bob's client: %v", err)
	}
	defer bobClient.Close()
	topics, err := bobClient.Topics()
	if err != nil {
		t.Fatalf("bob's metadata: %v", err)
	}
	if !slices.Contains(topics, topic) || !slices.Contains(topics, secret) || slices.Contains(topics, hidden) {
		t.Errorf("bob's metadata lists %v: want %s and %s, not %s", topics, topic, secret, hidden)
	}
	p, err := sarama.NewSyncProducerFromClient(bobClient)
	if err != nil {
		t.Fatalf("bob's producer: %v", err)
	}
	defer p.Close()
	send := func(to string) (int64, error) {
		_, off, err := p.SendMessage(&sarama.ProducerMessage{Topic: to, Partition: 0, Value: sarama.StringEncoder("v-bob")})
		return off, err
	}
	for i := range n {
		if off, err := send(topic); err != nil || off != int64(i) {
			t.Fatalf("bob's send %d to %s: offset %d, %v", i, topic, off, err)
		}
	}
	if _, err := send(secret); !errors.Is(err, sarama.ErrTopicAuthorizationFailed) {
		t.Errorf("bob's send to %s: %v, want %v", secret, err, sarama.ErrTopicAuthorizationFailed)
	}
	if _, err := send(hidden); !errors.Is(err, sarama.ErrTopicAuthorizationFailed) {
		t.Errorf("bob's send to %s: %v, want %v", hidden, err, sarama.ErrTopicAuthorizationFailed)
	}

	matching := func(f sarama.AclFilter) []aclKey {
		t.Helper()
		res, err := alice.DeleteACL(f, false)
		if err != nil {
			t.Fatalf("DeleteACL %s: %v", *f.ResourceName, err)
		}
		var out []aclKey
		for _, m := range res {
			if !errors.Is(m.Err, sarama.ErrNoError) {
				t.Fatalf("DeleteACL %s: %v", *f.ResourceName, m.Err)
			}
			out = append(out, key(m.Resource, m.Acl))
		}
		return out
	}
	sameACLs("DeleteACL "+topic, matching(filter(topic, sarama.AclPatternLiteral)), topicACLs)
	sameACLs("DeleteACL "+secret, matching(filter(secret, sarama.AclPatternLiteral)), secretACLs)
	sameACLs("ListAcls after the deletes", list(filter(topic, sarama.AclPatternMatch)), nil)
	if _, err := send(topic); !errors.Is(err, sarama.ErrTopicAuthorizationFailed) {
		t.Errorf("bob's send to %s after the delete: %v, want %v", topic, err, sarama.ErrTopicAuthorizationFailed)
	}
}
