package broker_test

import (
	"crypto/tls"
	"crypto/x509/pkix"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/gregor-streaming/gregor/internal/auth"
	"github.com/gregor-streaming/gregor/internal/config"
	"github.com/gregor-streaming/gregor/internal/ktest"
	"github.com/gregor-streaming/gregor/internal/server"
)

// aclBroker is a broker with a SASL_PLAINTEXT listener and the
// authorizer on; admin is a super user, alice and bob are not.
func aclBroker(t *testing.T, opts ...ktest.Option) *ktest.Broker {
	t.Helper()
	opts = append([]ktest.Option{
		ktest.Set("listeners", "SASL_PLAINTEXT://127.0.0.1:0"),
		ktest.Set("authorizer.class.name", "org.apache.kafka.metadata.authorizer.StandardAuthorizer"),
		ktest.Set("super.users", "User:admin"),
	}, opts...)
	b := ktest.NewBroker(t, opts...)
	for _, u := range []string{"admin", "alice", "bob"} {
		if _, err := b.B.EnsureScramUser(auth.ScramSHA256, u, u+"-secret"); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

// as is a client authenticated as user.
func as(b *ktest.Broker, user string, opts ...kgo.Opt) *kgo.Client {
	return b.Client(append([]kgo.Opt{kgo.SASL(scram.Auth{User: user, Pass: user + "-secret"}.AsSha256Mechanism())}, opts...)...)
}

func createACLs(t *testing.T, adm *kadm.Client, b *kadm.ACLBuilder) {
	t.Helper()
	res, err := adm.CreateACLs(ctxT(t, 20*time.Second), b)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Err != nil {
			t.Fatalf("create %s %s %s: %v", r.Principal, r.Type, r.Name, r.Err)
		}
	}
}

// TestAclsManagedWithKadm: ACLs are created, described with every
// filter kind, deleted, and kept across a restart; only a client with
// ALTER on the cluster may change them.
func TestAclsManagedWithKadm(t *testing.T) {
	b := aclBroker(t)
	adm := kadm.NewClient(as(b, "admin"))
	ctx := ctxT(t, 20*time.Second)
	createACLs(t, adm, kadm.NewACLs().Allow("User:alice").AllowHosts().Topics("orders").
		Operations(kadm.OpWrite, kadm.OpDescribe).ResourcePatternType(kadm.ACLPatternLiteral))
	createACLs(t, adm, kadm.NewACLs().Allow("User:alice").AllowHosts().Topics("ord").
		Operations(kadm.OpRead).ResourcePatternType(kadm.ACLPatternPrefixed))
	createACLs(t, adm, kadm.NewACLs().Allow("User:alice").AllowHosts().Groups("g").
		Operations(kadm.OpRead).ResourcePatternType(kadm.ACLPatternLiteral))
	// The same binding again adds nothing.
	createACLs(t, adm, kadm.NewACLs().Allow("User:alice").AllowHosts().Groups("g").
		Operations(kadm.OpRead).ResourcePatternType(kadm.ACLPatternLiteral))

	count := func(adm *kadm.Client, f *kadm.ACLBuilder) int {
		t.Helper()
		res, err := adm.DescribeACLs(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, r := range res {
			if r.Err != nil {
				t.Fatalf("describe: %v", r.Err)
			}
			n += len(r.Described)
		}
		return n
	}
	all := func() *kadm.ACLBuilder {
		return kadm.NewACLs().AnyResource().Allow().Deny().AllowHosts().DenyHosts().
			Operations(kadm.OpAny).ResourcePatternType(kadm.ACLPatternAny)
	}
	if n := count(adm, all()); n != 4 {
		t.Fatalf("%d bindings described, want 4", n)
	}
	// MATCH: what applies to topic "orders" (its literal and the "ord"
	// prefix), not the group.
	match := kadm.NewACLs().Topics("orders").Allow().Deny().AllowHosts().DenyHosts().
		Operations(kadm.OpAny).ResourcePatternType(kadm.ACLPatternMatch)
	if n := count(adm, match); n != 3 {
		t.Fatalf("MATCH orders: %d bindings, want 3", n)
	}

	// alice may not manage ACLs.
	res, err := kadm.NewClient(as(b, "alice")).CreateACLs(ctx, kadm.NewACLs().Allow("User:alice").AllowHosts().
		Clusters().Operations(kadm.OpAlter).ResourcePatternType(kadm.ACLPatternLiteral))
	if err != nil || len(res) != 1 || !errors.Is(res[0].Err, kerr.ClusterAuthorizationFailed) {
		t.Fatalf("alice creating an ACL: %v %+v, want CLUSTER_AUTHORIZATION_FAILED", err, res)
	}
	if _, err := kadm.NewClient(as(b, "alice")).DescribeACLs(ctx, all()); !errors.Is(err, kerr.ClusterAuthorizationFailed) {
		// kadm reports a describe's error per filter.
		dres, _ := kadm.NewClient(as(b, "alice")).DescribeACLs(ctx, all())
		if len(dres) == 0 || !errors.Is(dres[0].Err, kerr.ClusterAuthorizationFailed) {
			t.Fatalf("alice describing ACLs: %v %+v, want CLUSTER_AUTHORIZATION_FAILED", err, dres)
		}
	}

	// Delete the group's binding.
	del, err := adm.DeleteACLs(ctx, kadm.NewACLs().Groups("g").Allow().Deny().AllowHosts().DenyHosts().
		Operations(kadm.OpAny).ResourcePatternType(kadm.ACLPatternAny))
	if err != nil {
		t.Fatal(err)
	}
	deleted := 0
	for _, r := range del {
		for _, d := range r.Deleted {
			if d.Err != nil {
				t.Fatal(d.Err)
			}
			deleted++
		}
	}
	if deleted != 1 {
		t.Fatalf("deleted %d bindings, want 1", deleted)
	}

	b.Restart()
	adm = kadm.NewClient(as(b, "admin"))
	if n := count(adm, all()); n != 3 {
		t.Fatalf("after a restart: %d bindings, want 3", n)
	}
}

// TestAclsNeedAuthorizer: without authorizer.class.name the ACL APIs
// answer SECURITY_DISABLED, as Kafka's do.
func TestAclsNeedAuthorizer(t *testing.T) {
	b := ktest.NewBroker(t)
	res, err := b.Admin().CreateACLs(ctxT(t, 20*time.Second), kadm.NewACLs().Allow("User:alice").AllowHosts().Topics("t").
		Operations(kadm.OpRead).ResourcePatternType(kadm.ACLPatternLiteral))
	if err != nil || len(res) != 1 || !errors.Is(res[0].Err, kerr.SecurityDisabled) {
		t.Fatalf("CreateACLs: %v %+v, want SECURITY_DISABLED", err, res)
	}
}

// TestAuthorizerProduceConsume: real clients are allowed exactly what
// their ACLs say: alice produces (idempotently, with WRITE on a topic,
// KIP-679) and consumes in her group; bob sees and does nothing; a DENY
// overrides an ALLOW.
func TestAuthorizerProduceConsume(t *testing.T) {
	b := aclBroker(t)
	ctx := ctxT(t, 20*time.Second)
	adminCl := as(b, "admin")
	adm := kadm.NewClient(adminCl)
	if _, err := adm.CreateTopic(ctx, 2, 1, nil, "orders"); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "secret"); err != nil {
		t.Fatal(err)
	}
	createACLs(t, adm, kadm.NewACLs().Allow("User:alice").AllowHosts().Topics("orders").
		Operations(kadm.OpWrite, kadm.OpRead).ResourcePatternType(kadm.ACLPatternLiteral))
	createACLs(t, adm, kadm.NewACLs().Allow("User:alice").AllowHosts().Groups("alice-").
		Operations(kadm.OpRead).ResourcePatternType(kadm.ACLPatternPrefixed))

	alice := as(b, "alice")
	for i := range 10 {
		if err := alice.ProduceSync(ctx, &kgo.Record{Topic: "orders", Value: []byte{byte(i)}}).FirstErr(); err != nil {
			t.Fatalf("alice produce: %v", err)
		}
	}
	cons := as(b, "alice", kgo.ConsumeTopics("orders"), kgo.ConsumerGroup("alice-app"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
	got := 0
	for got < 10 {
		fs := cons.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("alice consumed %d of 10: %v", got, err)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("alice fetch: %v", err) })
		got += fs.NumRecords()
	}
	if err := cons.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatalf("alice commit: %v", err)
	}
	cons.Close()

	// alice may not write elsewhere or create topics.
	if err := as(b, "alice", kgo.RequestRetries(0)).ProduceSync(ctx, &kgo.Record{Topic: "secret", Value: []byte("x")}).FirstErr(); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Errorf("alice producing to secret: %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}
	aliceAdm := kadm.NewClient(alice)
	if res, _ := aliceAdm.CreateTopic(ctx, 1, 1, nil, "alices"); !errors.Is(res.Err, kerr.TopicAuthorizationFailed) {
		t.Errorf("alice creating a topic: %v, want TOPIC_AUTHORIZATION_FAILED", res.Err)
	}
	topics, err := aliceAdm.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if names := topics.Names(); !slices.Equal(names, []string{"orders"}) {
		t.Errorf("alice lists topics %v, want only orders", names)
	}
	// WRITE and READ imply DESCRIBE, not DESCRIBE_CONFIGS.
	if _, err := aliceAdm.DescribeTopicConfigs(ctx, "orders"); err == nil {
		rcs, _ := aliceAdm.DescribeTopicConfigs(ctx, "orders")
		if len(rcs) != 1 || !errors.Is(rcs[0].Err, kerr.TopicAuthorizationFailed) {
			t.Errorf("alice describing configs: %+v, want TOPIC_AUTHORIZATION_FAILED", rcs)
		}
	}

	// bob: no producer ID (no WRITE anywhere), no topic, no group.
	bob := as(b, "bob", kgo.RequestRetries(0))
	for who, cl := range map[string]*kgo.Client{"alice": alice, "bob": bob} {
		resp, err := kmsg.NewPtrInitProducerIDRequest().RequestWith(ctx, cl)
		want := int16(0)
		if who == "bob" {
			want = kerr.ClusterAuthorizationFailed.Code
		}
		if err != nil || resp.ErrorCode != want {
			t.Errorf("%s's idempotent InitProducerID: %v %v, want error code %d", who, err, resp, want)
		}
	}
	bobPlain := as(b, "bob", kgo.RequestRetries(0), kgo.DisableIdempotentWrite())
	if err := bobPlain.ProduceSync(ctx, &kgo.Record{Topic: "orders", Value: []byte("x")}).FirstErr(); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Errorf("bob's produce: %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}
	if topics, err := kadm.NewClient(bob).ListTopics(ctx); err != nil || len(topics) != 0 {
		t.Errorf("bob lists %v (%v), want none", topics.Names(), err)
	}
	join := kmsg.NewPtrJoinGroupRequest()
	join.Group, join.ProtocolType, join.SessionTimeoutMillis, join.RebalanceTimeoutMillis = "alice-app", "consumer", 10000, 10000
	join.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: []byte{}}}
	// kgo finds the coordinator first, which bob may not.
	if resp, err := join.RequestWith(ctx, bob); !errors.Is(err, kerr.GroupAuthorizationFailed) && (err != nil || resp.ErrorCode != kerr.GroupAuthorizationFailed.Code) {
		t.Errorf("bob joining alice's group: %v %v, want GROUP_AUTHORIZATION_FAILED", err, resp)
	}
	offs, err := kadm.NewClient(bob).FetchOffsets(ctx, "alice-app")
	if err == nil {
		err = offs.Error()
	}
	if !errors.Is(err, kerr.GroupAuthorizationFailed) {
		t.Errorf("bob fetching alice's offsets: %v, want GROUP_AUTHORIZATION_FAILED", err)
	}
	// By topic ID, as kgo fetches: the ID's topic is checked.
	td, err := adm.ListTopics(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	fetch := kmsg.NewPtrFetchRequest()
	fetch.MaxWaitMillis, fetch.MaxBytes = 0, 1<<20
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic, ft.TopicID = "orders", td["orders"].ID
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.PartitionMaxBytes = 1 << 20
	ft.Partitions = append(ft.Partitions, fp)
	fetch.Topics = append(fetch.Topics, ft)
	if resp, err := fetch.RequestWith(ctx, bob); err != nil || len(resp.Topics) != 1 || resp.Topics[0].Partitions[0].ErrorCode != kerr.TopicAuthorizationFailed.Code {
		t.Errorf("bob fetching orders: %v %+v, want TOPIC_AUTHORIZATION_FAILED", err, resp)
	}

	// alice's offsets are visible to the admin, a super user.
	offs, err = adm.FetchOffsets(ctx, "alice-app")
	if err != nil || offs.Error() != nil {
		t.Fatalf("admin fetching offsets: %v %v", err, offs.Error())
	}
	total := int64(0)
	offs.Each(func(o kadm.OffsetResponse) { total += o.At })
	if total != 10 {
		t.Errorf("committed offsets sum to %d, want 10", total)
	}

	// A DENY wins over the ALLOW.
	createACLs(t, adm, kadm.NewACLs().Deny("User:alice").DenyHosts().Topics("orders").
		Operations(kadm.OpWrite).ResourcePatternType(kadm.ACLPatternLiteral))
	if err := as(b, "alice", kgo.RequestRetries(0), kgo.DisableIdempotentWrite()).ProduceSync(ctx, &kgo.Record{Topic: "orders", Value: []byte("x")}).FirstErr(); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Errorf("alice producing after a DENY: %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}
}

// TestAuthorizerTransactions: a transactional producer needs WRITE on
// its transactional ID; with it, read-process-write commits.
func TestAuthorizerTransactions(t *testing.T) {
	b := aclBroker(t)
	ctx := ctxT(t, 20*time.Second)
	adm := kadm.NewClient(as(b, "admin"))
	for _, topic := range []string{"in", "out"} {
		if _, err := adm.CreateTopic(ctx, 1, 1, nil, topic); err != nil {
			t.Fatal(err)
		}
	}
	createACLs(t, adm, kadm.NewACLs().Allow("User:alice").AllowHosts().Topics("in", "out").
		Operations(kadm.OpWrite, kadm.OpRead).ResourcePatternType(kadm.ACLPatternLiteral))
	createACLs(t, adm, kadm.NewACLs().Allow("User:alice").AllowHosts().TransactionalIDs("tx-ok").
		Operations(kadm.OpWrite).ResourcePatternType(kadm.ACLPatternLiteral))
	createACLs(t, adm, kadm.NewACLs().Allow("User:alice").AllowHosts().Groups("g").
		Operations(kadm.OpRead).ResourcePatternType(kadm.ACLPatternLiteral))

	// kgo asks for the producer ID when the transaction begins.
	denied := as(b, "alice", kgo.TransactionalID("tx-no"), kgo.RequestRetries(0))
	err := denied.BeginTransaction()
	if err == nil {
		err = denied.ProduceSync(ctx, &kgo.Record{Topic: "out", Value: []byte("x")}).FirstErr()
	}
	if !errors.Is(err, kerr.TransactionalIDAuthorizationFailed) {
		t.Errorf("transactional ID without WRITE: %v, want TRANSACTIONAL_ID_AUTHORIZATION_FAILED", err)
	}
	denied.Close()

	if err := as(b, "alice").ProduceSync(ctx, &kgo.Record{Topic: "in", Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	sess, err := kgo.NewGroupTransactSession(kgo.SeedBrokers(b.Addr),
		kgo.SASL(scram.Auth{User: "alice", Pass: "alice-secret"}.AsSha256Mechanism()),
		kgo.TransactionalID("tx-ok"), kgo.ConsumerGroup("g"), kgo.ConsumeTopics("in"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	var in []*kgo.Record
	for len(in) == 0 {
		fs := sess.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatal(err)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("fetch: %v", err) })
		in = append(in, fs.Records()...)
	}
	if err := sess.Begin(); err != nil {
		t.Fatal(err)
	}
	for _, r := range in {
		sess.Produce(ctx, &kgo.Record{Topic: "out", Value: r.Value}, nil)
	}
	committed, err := sess.End(ctx, kgo.TryCommit)
	if err != nil || !committed {
		t.Fatalf("commit: %v %v", committed, err)
	}
	offs, err := adm.FetchOffsets(ctx, "g")
	if err != nil || offs.Error() != nil {
		t.Fatal(err, offs.Error())
	}
	if o, _ := offs.Lookup("in", 0); o.At != 1 {
		t.Errorf("group g at %d on in, want 1", o.At)
	}
}

// TestAuthorizerPrincipals: a TLS client certificate is User:<its
// subject>, a plaintext client User:ANONYMOUS; with
// allow.everyone.if.no.acl.found a resource no ACL names is open to
// both, one with ACLs only to whom they allow.
func TestAuthorizerPrincipals(t *testing.T) {
	files := ktest.NewTLSFiles(t)
	b := ktest.NewBroker(t,
		ktest.Set("listeners", "SSL://127.0.0.1:0"),
		ktest.Set("ssl.keystore.location", files.Broker),
		ktest.Set("ssl.truststore.location", files.CA),
		ktest.Set("ssl.client.auth", "required"),
		ktest.Set("authorizer.class.name", "kafka.security.authorizer.AclAuthorizer"),
		ktest.Set("allow.everyone.if.no.acl.found", "true"),
		ktest.Set("super.users", "User:CN=client"))
	ctx := ctxT(t, 20*time.Second)
	tlsCl := func(opts ...kgo.Opt) *kgo.Client {
		return b.Client(append([]kgo.Opt{kgo.DialTLSConfig(files.ClientConfig(true))}, opts...)...)
	}
	// The client certificate's subject is a super user: it manages ACLs.
	adm := kadm.NewClient(tlsCl())
	for _, topic := range []string{"open", "closed"} {
		if _, err := adm.CreateTopic(ctx, 1, 1, nil, topic); err != nil {
			t.Fatal(err)
		}
	}
	createACLs(t, adm, kadm.NewACLs().Allow("User:ANONYMOUS").AllowHosts("127.0.0.1").Topics("closed").
		Operations(kadm.OpDescribe).ResourcePatternType(kadm.ACLPatternLiteral))

	plainAddr := b.AddListener("PLAIN", server.Security{})
	anon, err := kgo.NewClient(kgo.SeedBrokers(plainAddr), kgo.RequestRetries(0), kgo.DisableIdempotentWrite())
	if err != nil {
		t.Fatal(err)
	}
	defer anon.Close()
	if err := anon.ProduceSync(ctx, &kgo.Record{Topic: "open", Value: []byte("x")}).FirstErr(); err != nil {
		t.Errorf("anonymous producing to a topic without ACLs: %v", err)
	}
	if err := anon.ProduceSync(ctx, &kgo.Record{Topic: "closed", Value: []byte("x")}).FirstErr(); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Errorf("anonymous producing to a topic with ACLs: %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}
}

// TestAuthorizerPrincipalMappingRules: with ssl.principal.mapping.rules,
// a TLS client's principal is its mapped name: an ACL on User:alice lets
// the client whose certificate is CN=Alice,OU=ServiceUsers,O=Acme
// produce, one on that whole subject no longer does, and a subject the
// ServiceUsers rule does not match keeps its whole subject (DEFAULT).
// super.users names a mapped principal; DescribeACLs shows the ACLs as
// created.
func TestAuthorizerPrincipalMappingRules(t *testing.T) {
	files := ktest.NewTLSFiles(t)
	const aliceDN = "CN=Alice,OU=ServiceUsers,O=Acme"
	b := ktest.NewBroker(t,
		ktest.Set("listeners", "SSL://127.0.0.1:0"),
		ktest.Set("ssl.keystore.location", files.Broker),
		ktest.Set("ssl.truststore.location", files.CA),
		ktest.Set("ssl.client.auth", "required"),
		ktest.Set("ssl.principal.mapping.rules", "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L,DEFAULT"),
		ktest.Set("authorizer.class.name", config.StandardAuthorizer),
		ktest.Set("super.users", "User:admin"))
	ctx := ctxT(t, 30*time.Second)
	certCl := func(subject pkix.Name, opts ...kgo.Opt) *kgo.Client {
		tc := files.ClientConfig(false)
		tc.Certificates = []tls.Certificate{files.ClientCertFor(t, subject)}
		return b.Client(append([]kgo.Opt{kgo.DialTLSConfig(tc), kgo.RequestRetries(0), kgo.DisableIdempotentWrite()}, opts...)...)
	}
	serviceUser := func(cn string) pkix.Name {
		return pkix.Name{CommonName: cn, OrganizationalUnit: []string{"ServiceUsers"}, Organization: []string{"Acme"}}
	}
	// CN=Admin,OU=ServiceUsers,O=Acme is User:admin, a super user.
	adm := kadm.NewClient(certCl(serviceUser("Admin")))
	for _, topic := range []string{"mapped", "whole"} {
		if _, err := adm.CreateTopic(ctx, 1, 1, nil, topic); err != nil {
			t.Fatal(err)
		}
	}
	createACLs(t, adm, kadm.NewACLs().Allow("User:alice").Topics("mapped").
		Operations(kadm.OpWrite, kadm.OpDescribe).ResourcePatternType(kadm.ACLPatternLiteral))
	createACLs(t, adm, kadm.NewACLs().Allow("User:"+aliceDN).Topics("whole").
		Operations(kadm.OpWrite, kadm.OpDescribe).ResourcePatternType(kadm.ACLPatternLiteral))
	const carolDN = "CN=Carol,OU=Contractors,O=Acme"
	createACLs(t, adm, kadm.NewACLs().Allow("User:"+carolDN).Topics("mapped").
		Operations(kadm.OpWrite, kadm.OpDescribe).ResourcePatternType(kadm.ACLPatternLiteral))

	alice := certCl(serviceUser("Alice"))
	if err := alice.ProduceSync(ctx, &kgo.Record{Topic: "mapped", Value: []byte("x")}).FirstErr(); err != nil {
		t.Errorf("%s producing with an ACL on User:alice: %v", aliceDN, err)
	}
	if err := alice.ProduceSync(ctx, &kgo.Record{Topic: "whole", Value: []byte("x")}).FirstErr(); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Errorf("%s producing with an ACL on its whole subject only: %v, want TOPIC_AUTHORIZATION_FAILED", aliceDN, err)
	}
	carol := certCl(pkix.Name{CommonName: "Carol", OrganizationalUnit: []string{"Contractors"}, Organization: []string{"Acme"}})
	if err := carol.ProduceSync(ctx, &kgo.Record{Topic: "mapped", Value: []byte("x")}).FirstErr(); err != nil {
		t.Errorf("%s (DEFAULT rule) producing with an ACL on its whole subject: %v", carolDN, err)
	}
	bob := certCl(serviceUser("Bob"))
	if err := bob.ProduceSync(ctx, &kgo.Record{Topic: "mapped", Value: []byte("x")}).FirstErr(); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Errorf("User:bob producing without an ACL: %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}

	described, err := adm.DescribeACLs(ctx, kadm.NewACLs().AnyResource().Allow().Deny().AllowHosts().DenyHosts().
		Operations(kadm.OpAny).ResourcePatternType(kadm.ACLPatternAny))
	if err != nil {
		t.Fatal(err)
	}
	var principals []string
	for _, d := range described {
		if d.Err != nil {
			t.Fatal(d.Err)
		}
		for _, a := range d.Described {
			if !slices.Contains(principals, a.Principal) {
				principals = append(principals, a.Principal)
			}
		}
	}
	slices.Sort(principals)
	if want := []string{"User:" + aliceDN, "User:" + carolDN, "User:alice"}; !slices.Equal(principals, want) {
		t.Errorf("DescribeACLs principals %q, want %q", principals, want)
	}
}
