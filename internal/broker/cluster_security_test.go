package broker_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/gregor-streaming/gregor/internal/auth"
	"github.com/gregor-streaming/gregor/internal/config"
	"github.com/gregor-streaming/gregor/internal/ktest"
)

// logTap collects what brokers log at Info and up, for tests asserting
// that the logs say why something failed.
type logTap struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logTap) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// has reports whether one logged line holds every one of parts.
func (l *logTap) has(parts ...string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range strings.Split(l.buf.String(), "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			return true
		}
	}
	return false
}

func (l *logTap) option() ktest.Option {
	return ktest.WithLogger(slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelInfo})))
}

// The inter-broker credentials of securedCluster.
const (
	brokerUser     = "broker"
	brokerPassword = "broker-secret"
)

// securedCluster starts three brokers whose only client listener is
// SASL_SSL, which is also their inter-broker listener (SCRAM-SHA-512
// as User:broker, a super user), with the authorizer on and the
// controller listener on mutual TLS; admin is a super user, alice is
// not. Its users are created with brokerPass for User:broker. It
// returns the brokers and a client factory for a user.
func securedCluster(t *testing.T, brokerPass string, opts ...ktest.Option) (bs []*ktest.Broker, files *ktest.TLSFiles, as func(user string, opts ...kgo.Opt) *kgo.Client) {
	t.Helper()
	files = ktest.NewTLSFiles(t)
	opts = append([]ktest.Option{
		ktest.Set("listeners", "SASL_SSL://127.0.0.1:0"),
		ktest.Set("listener.security.protocol.map", "SASL_SSL:SASL_SSL,CONTROLLER:SSL"),
		ktest.Set("ssl.keystore.location", files.Broker),
		ktest.Set("ssl.truststore.location", files.CA),
		ktest.Set("sasl.enabled.mechanisms", "PLAIN,SCRAM-SHA-512"),
		ktest.Set("sasl.mechanism.inter.broker.protocol", "SCRAM-SHA-512"),
		ktest.Set("listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config",
			`org.apache.kafka.common.security.scram.ScramLoginModule required username="`+brokerUser+`" password="`+brokerPassword+`";`),
		ktest.Set("authorizer.class.name", config.StandardAuthorizer),
		ktest.Set("super.users", "User:"+brokerUser+";User:admin"),
		ktest.Set("replica.lag.time.max.ms", "2000"),
	}, opts...)
	bs = ktest.NewCluster(t, 3, opts...)
	for user, pass := range map[string]string{brokerUser: brokerPass, "admin": "admin-secret", "alice": "alice-secret"} {
		if _, err := bs[0].B.EnsureScramUser(auth.ScramSHA512, user, pass); err != nil {
			t.Fatal(err)
		}
	}
	seeds := clusterSeeds(bs)
	as = func(user string, opts ...kgo.Opt) *kgo.Client {
		t.Helper()
		opts = append([]kgo.Opt{
			kgo.SeedBrokers(seeds...),
			kgo.DialTLSConfig(files.ClientConfig(false)),
			kgo.SASL(scram.Auth{User: user, Pass: user + "-secret"}.AsSha512Mechanism()),
		}, opts...)
		cl, err := kgo.NewClient(opts...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		return cl
	}
	return bs, files, as
}

// fullISR waits until every partition of topic has its replicas, all
// three, in its ISR.
func fullISR(t *testing.T, ctx context.Context, adm *kadm.Client, topic string, partitions int32, within time.Duration) {
	t.Helper()
	waitFor(t, within, "every replica of "+topic+" in the ISR", func() bool {
		for p := range partitions {
			_, replicas, isr := partitionState(t, ctx, adm, topic, p)
			if len(replicas) != 3 || !slices.Equal(isr, []int32{0, 1, 2}) {
				return false
			}
		}
		return true
	})
}

// logSizesVia is logSizes through adm: each of three brokers' size of
// topic's partition p, -1 where it has none.
func logSizesVia(t *testing.T, ctx context.Context, adm *kadm.Client, topic string, p int32) []int64 {
	t.Helper()
	sizes := []int64{-1, -1, -1}
	for i := range sizes {
		dirs, err := adm.DescribeBrokerLogDirs(ctx, int32(i), kadm.TopicsSet{topic: {p: {}}})
		if err != nil {
			t.Fatalf("broker %d's log dirs: %v", i, err)
		}
		dirs.EachPartition(func(d kadm.DescribedLogDirPartition) {
			if d.Topic == topic && d.Partition == p {
				sizes[i] = d.Size
			}
		})
	}
	return sizes
}

// TestClusterSecuredReplication: three brokers whose only listener is
// SASL_SSL, with the authorizer on, replicate to each other over it as
// User:broker (super.users), and form their metadata quorum over mutual
// TLS: a topic of three replicas takes acks=all records with
// min.insync.replicas=3, every replica's log ends the same, the ISR
// stays full, and a consumer reads everything back. A client that is
// not a broker gets CLUSTER_AUTHORIZATION_FAILED for a replica fetch and
// for transaction markers, as in Kafka.
func TestClusterSecuredReplication(t *testing.T) {
	_, _, as := securedCluster(t, brokerPassword)
	ctx := ctxT(t, 120*time.Second)
	admin := as("admin")
	adm := kadm.NewClient(admin)
	waitRegistered(t, ctx, adm, 3)

	const topic, partitions = "secured", 3
	minISR := "3"
	if _, err := adm.CreateTopic(ctx, partitions, 3, map[string]*string{"min.insync.replicas": &minISR}, topic); err != nil {
		t.Fatal(err)
	}
	fullISR(t, ctx, adm, topic, partitions, 20*time.Second)
	producer := as("admin", kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	const n = 90
	for i := range n {
		if err := producer.ProduceSync(ctx, &kgo.Record{Value: fmt.Appendf(nil, "record-%03d", i)}).FirstErr(); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
	}
	// acks=all with min.insync.replicas 3: on every replica already,
	// each partition led by another broker.
	for p := range int32(partitions) {
		if s := logSizesVia(t, ctx, adm, topic, p); s[0] <= 0 || s[0] != s[1] || s[1] != s[2] {
			t.Errorf("partition %d: log sizes %v, want three equal", p, s)
		}
	}
	fullISR(t, ctx, adm, topic, partitions, time.Second)

	consumer := as("admin", kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	seen := map[string]bool{}
	for len(seen) < n {
		fs := consumer.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) { seen[string(r.Value)] = true })
	}

	// Replication is an inter-broker request: alice may not.
	alice := as("alice")
	if err := alice.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	md, err := adm.Metadata(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	leader := md.Topics[topic].Partitions[0].Leader
	fetch := kmsg.NewPtrFetchRequest()
	fetch.ReplicaID, fetch.ReplicaState.ID, fetch.ReplicaState.Epoch = 1, 1, -1
	fetch.MaxBytes, fetch.SessionEpoch = 1<<20, -1
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic, ft.TopicID = topic, md.Topics[topic].ID
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.Partition, fp.CurrentLeaderEpoch, fp.PartitionMaxBytes = 0, -1, 1<<20
	ft.Partitions = append(ft.Partitions, fp)
	fetch.Topics = append(fetch.Topics, ft)
	kr, err := alice.Broker(int(leader)).Request(ctx, fetch)
	if err != nil {
		t.Fatal(err)
	}
	if resp := kr.(*kmsg.FetchResponse); resp.ErrorCode != kerr.ClusterAuthorizationFailed.Code {
		t.Errorf("alice's replica fetch: error %v, want CLUSTER_AUTHORIZATION_FAILED", kerr.ErrorForCode(resp.ErrorCode))
	}
	markers := kmsg.NewPtrWriteTxnMarkersRequest()
	mk := kmsg.NewWriteTxnMarkersRequestMarker()
	mk.ProducerID, mk.ProducerEpoch, mk.Committed = 1, 0, true
	mt := kmsg.NewWriteTxnMarkersRequestMarkerTopic()
	mt.Topic, mt.Partitions = topic, []int32{0}
	mk.Topics = append(mk.Topics, mt)
	markers.Markers = append(markers.Markers, mk)
	if kr, err = alice.Broker(int(leader)).Request(ctx, markers); err != nil {
		t.Fatal(err)
	}
	if code := kr.(*kmsg.WriteTxnMarkersResponse).Markers[0].Topics[0].Partitions[0].ErrorCode; code != kerr.ClusterAuthorizationFailed.Code {
		t.Errorf("alice's WriteTxnMarkers: error %v, want CLUSTER_AUTHORIZATION_FAILED", kerr.ErrorForCode(code))
	}
}

// TestClusterInterBrokerListenerByName: clients use a PLAINTEXT
// listener and the brokers replicate over a second, SASL_SSL one named
// by inter.broker.listener.name: each broker dials the others'
// registered endpoint of that listener (a PLAINTEXT connection could
// not authenticate), while Metadata through each listener names the
// brokers at their endpoints of that listener.
func TestClusterInterBrokerListenerByName(t *testing.T) {
	files := ktest.NewTLSFiles(t)
	bs := ktest.NewCluster(t, 3,
		ktest.Set("listeners", "PLAINTEXT://127.0.0.1:0,REPLICATION://127.0.0.1:0"),
		ktest.Set("listener.security.protocol.map", "PLAINTEXT:PLAINTEXT,REPLICATION:SASL_SSL,CONTROLLER:SSL"),
		ktest.Set("inter.broker.listener.name", "REPLICATION"),
		ktest.Set("listener.name.replication.ssl.keystore.location", files.Broker),
		ktest.Set("listener.name.replication.ssl.truststore.location", files.CA),
		ktest.Set("listener.name.replication.ssl.client.auth", "required"),
		ktest.Set("listener.name.controller.ssl.keystore.location", files.Broker),
		ktest.Set("listener.name.controller.ssl.truststore.location", files.CA),
		ktest.Set("listener.name.replication.sasl.enabled.mechanisms", "PLAIN"),
		ktest.Set("listener.name.replication.plain.sasl.jaas.config",
			`org.apache.kafka.common.security.plain.PlainLoginModule required username="broker" password="broker-secret";`),
		ktest.Set("replica.lag.time.max.ms", "2000"),
	)
	if _, err := bs[0].B.EnsureScramUser(auth.ScramSHA256, "broker", "broker-secret"); err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t, 90*time.Second)
	cl := bs[1].Client(kgo.SeedBrokers(clusterSeeds(bs)...), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.DefaultProduceTopic("by-name"),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	adm := kadm.NewClient(cl)
	waitRegistered(t, ctx, adm, 3)
	minISR := "3"
	if _, err := adm.CreateTopic(ctx, 3, 3, map[string]*string{"min.insync.replicas": &minISR}, "by-name"); err != nil {
		t.Fatal(err)
	}
	fullISR(t, ctx, adm, "by-name", 3, 20*time.Second)
	for i := range 30 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Partition: int32(i % 3), Value: []byte("x")}).FirstErr(); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
	}
	for p := range int32(3) {
		if s := logSizes(t, ctx, bs, "by-name", p); s[0] <= 0 || s[0] != s[1] || s[1] != s[2] {
			t.Errorf("partition %d: log sizes %v, want three equal", p, s)
		}
	}
	md, err := adm.Metadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range md.Brokers {
		if got := fmt.Sprintf("%s:%d", b.Host, b.Port); got != bs[b.NodeID].Addr {
			t.Errorf("PLAINTEXT Metadata lists broker %d at %s, want its PLAINTEXT listener %s", b.NodeID, got, bs[b.NodeID].Addr)
		}
	}
	// Through the replication listener (a client certificate is
	// required there; PLAIN as the brokers), its own endpoints.
	rl, err := kgo.NewClient(kgo.SeedBrokers(bs[2].Listeners["REPLICATION"]), kgo.DialTLSConfig(files.ClientConfig(true)),
		kgo.SASL(plain.Auth{User: "broker", Pass: "broker-secret"}.AsMechanism()))
	if err != nil {
		t.Fatal(err)
	}
	defer rl.Close()
	if md, err = kadm.NewClient(rl).Metadata(ctx); err != nil {
		t.Fatal(err)
	}
	for _, b := range md.Brokers {
		if got, want := fmt.Sprintf("%s:%d", b.Host, b.Port), bs[b.NodeID].Listeners["REPLICATION"]; got != want {
			t.Errorf("REPLICATION Metadata lists broker %d at %s, want its REPLICATION listener %s", b.NodeID, got, want)
		}
	}
}

// TestClusterWrongInterBrokerPassword: with the brokers' inter-broker
// password not the one of User:broker, followers cannot replicate: the
// leaders shrink their ISRs to themselves, acks=all with
// min.insync.replicas=3 is refused, and the broker logs say why (the
// follower's and the leader's side). Once the credential is changed to
// the configured password, the followers catch up and acks=all goes
// through.
func TestClusterWrongInterBrokerPassword(t *testing.T) {
	tap := &logTap{}
	_, _, as := securedCluster(t, "not-the-configured-one", tap.option())
	ctx := ctxT(t, 120*time.Second)
	adm := kadm.NewClient(as("admin"))
	waitRegistered(t, ctx, adm, 3)
	const topic = "unreplicated"
	minISR := "3"
	if _, err := adm.CreateTopic(ctx, 1, 3, map[string]*string{"min.insync.replicas": &minISR}, topic); err != nil {
		t.Fatal(err)
	}
	var leader int32
	waitFor(t, 30*time.Second, "the leader alone in the ISR", func() bool {
		var isr []int32
		leader, _, isr = partitionState(t, ctx, adm, topic, 0)
		return leader >= 0 && slices.Equal(isr, []int32{leader})
	})
	producer := as("admin", kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordDeliveryTimeout(3*time.Second))
	if err := producer.ProduceSync(ctx, &kgo.Record{Value: []byte("x")}).FirstErr(); err == nil {
		t.Fatal("acks=all with min.insync.replicas=3 acknowledged while the followers cannot replicate")
	} else if !errors.Is(err, kerr.NotEnoughReplicas) && !errors.Is(err, kgo.ErrRecordTimeout) {
		t.Errorf("acks=all: %v, want NOT_ENOUGH_REPLICAS or a delivery timeout", err)
	}
	if !tap.has("cannot replicate from the leader", "SASL_AUTHENTICATION_FAILED", "user=broker", "sasl.jaas.config") {
		t.Error("no follower logged why it cannot replicate (SASL_AUTHENTICATION_FAILED, with a hint)")
	}
	if !tap.has("SASL authentication failed", "SCRAM-SHA-512") {
		t.Error("no leader logged the refused authentication")
	}

	// The credential the brokers were given: replication resumes.
	res, err := adm.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{{User: brokerUser, Mechanism: kadm.ScramSha512, Iterations: 4096, Password: brokerPassword}})
	if err != nil || res.AllFailed() {
		t.Fatalf("changing User:broker's password: %v %v", err, res)
	}
	fullISR(t, ctx, adm, topic, 1, 30*time.Second)
	producer = as("admin", kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()))
	if err := producer.ProduceSync(ctx, &kgo.Record{Value: []byte("y")}).FirstErr(); err != nil {
		t.Fatalf("acks=all once the followers authenticate: %v", err)
	}
}

// TestClusterControllerTLS: the controller listener maps to SSL, so the
// metadata quorum runs over mutual TLS: the cluster forms with the
// brokers' certificates; a connection without a certificate, or with
// one from another CA, is refused; a node restarted with a certificate
// from another CA cannot rejoin (it sees no new metadata and the
// controller fences it, the others log why), and restarted with its
// own certificate it catches up.
func TestClusterControllerTLS(t *testing.T) {
	files, other := ktest.NewTLSFiles(t), ktest.NewTLSFiles(t)
	keystore := filepath.Join(t.TempDir(), "node2.pem")
	copyFile(t, files.Broker, keystore)
	tap := &logTap{}
	bs := ktest.NewCluster(t, 3, tap.option(),
		ktest.Set("listener.security.protocol.map", "PLAINTEXT:PLAINTEXT,CONTROLLER:SSL"),
		ktest.Set("listener.name.controller.ssl.keystore.location", files.Broker),
		ktest.Set("listener.name.controller.ssl.truststore.location", files.CA),
		ktest.Set("broker.session.timeout.ms", "2000"),
		ktest.OnNode(2, ktest.Set("listener.name.controller.ssl.keystore.location", keystore)),
	)
	ctx := ctxT(t, 120*time.Second)
	adm := bs[0].Admin()
	waitRegistered(t, ctx, adm, 3)

	voters, err := config.ParseVoters(bs[0].B.Config().String("controller.quorum.voters"))
	if err != nil {
		t.Fatal(err)
	}
	refused := func(cert *tls.Certificate) bool {
		c := &tls.Config{RootCAs: files.Pool, ServerName: "127.0.0.1"}
		if cert != nil {
			c.Certificates = []tls.Certificate{*cert}
		}
		conn, err := tls.Dial("tcp", voters[0], c)
		if err != nil {
			return true
		}
		defer conn.Close()
		// TLS 1.3: a refused client certificate shows at the first
		// read; an accepted one reads nothing until the deadline
		// (the transport waits for a hello).
		conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		_, err = conn.Read(make([]byte, 1))
		var ne interface{ Timeout() bool }
		return !(errors.As(err, &ne) && ne.Timeout())
	}
	if !refused(nil) {
		t.Error("a controller connection without a client certificate was accepted")
	}
	if !refused(&other.ClientCert) {
		t.Error("a controller connection with a certificate from another CA was accepted")
	}
	if refused(&files.ClientCert) {
		t.Error("a controller connection with a certificate of the cluster's CA was refused")
	}

	// Node 2 comes back with a certificate from another CA: the
	// controller fences it, and it misses what happens meanwhile.
	bs[2].Stop()
	copyFile(t, other.Broker, keystore)
	bs[2].Start()
	waitFor(t, 20*time.Second, "node 2 fenced", func() bool {
		md, err := adm.Metadata(ctx)
		return err == nil && len(md.Brokers) == 2
	})
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "after"); err != nil {
		t.Fatal(err)
	}
	if knows(t, bs[2].Addr, "after") {
		t.Error("node 2, with a certificate from another CA, sees a topic created after it left")
	}
	if !tap.has("raft", "certificate") {
		t.Error("no node logged why node 2's controller connections fail")
	}

	bs[2].Stop()
	copyFile(t, files.Broker, keystore)
	bs[2].Start()
	waitFor(t, 30*time.Second, "node 2 back with the topic created meanwhile", func() bool {
		md, err := adm.Metadata(ctx)
		return err == nil && len(md.Brokers) == 3 && knows(t, bs[2].Addr, "after")
	})
}

// knows reports whether the broker at addr (a PLAINTEXT listener) has
// topic in its metadata, asking it alone.
func knows(t *testing.T, addr, topic string) bool {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	req := kmsg.NewPtrMetadataRequest()
	req.SetVersion(12)
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	req.AllowAutoTopicCreation = false
	resp := kmsg.NewPtrMetadataResponse()
	resp.SetVersion(12)
	rawRequest(t, conn, req, 1, resp)
	return len(resp.Topics) == 1 && resp.Topics[0].ErrorCode == 0
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestOffsetForLeaderEpochClusterAction: a follower asks its leader
// where to truncate with OffsetForLeaderEpoch; CLUSTER_ACTION on the
// cluster lets it ask about any topic (an inter-broker principal granted
// it by an ACL rather than super.users), as in Kafka, while a client
// without it needs DESCRIBE on the topic.
func TestOffsetForLeaderEpochClusterAction(t *testing.T) {
	b := aclBroker(t)
	ctx := ctxT(t, 20*time.Second)
	adm := kadm.NewClient(as(b, "admin"))
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "epochs"); err != nil {
		t.Fatal(err)
	}
	createACLs(t, adm, kadm.NewACLs().Allow("User:alice").AllowHosts().Clusters().
		Operations(kadm.OpClusterAction).ResourcePatternType(kadm.ACLPatternLiteral))
	ask := func(user string) int16 {
		t.Helper()
		req := kmsg.NewPtrOffsetForLeaderEpochRequest()
		req.ReplicaID = 1
		rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
		rt.Topic = "epochs"
		rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
		rp.Partition, rp.CurrentLeaderEpoch, rp.LeaderEpoch = 0, -1, 0
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		cl := as(b, user)
		if err := cl.Ping(ctx); err != nil { // learn the broker
			t.Fatal(err)
		}
		kr, err := cl.Broker(0).Request(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		return kr.(*kmsg.OffsetForLeaderEpochResponse).Topics[0].Partitions[0].ErrorCode
	}
	if code := ask("alice"); code != 0 {
		t.Errorf("with CLUSTER_ACTION: %v, want no error", kerr.ErrorForCode(code))
	}
	if code := ask("bob"); code != kerr.TopicAuthorizationFailed.Code {
		t.Errorf("without CLUSTER_ACTION or DESCRIBE: %v, want TOPIC_AUTHORIZATION_FAILED", kerr.ErrorForCode(code))
	}
}

// TestClusterPrincipalMappingRules: brokers that authenticate to each
// other with certificates (an SSL inter-broker listener, client
// certificates required) are authorized by their mapped principals, as
// any client: ssl.principal.mapping.rules has no DEFAULT and super.users
// names only the mapped User:kafka-0…2, so replication works only if
// the rules apply to the brokers' own connections. An acks=all topic
// with min.insync.replicas=3 takes records and keeps its ISR full.
func TestClusterPrincipalMappingRules(t *testing.T) {
	files := ktest.NewTLSFiles(t)
	opts := []ktest.Option{
		ktest.Set("listeners", "SSL://127.0.0.1:0"),
		ktest.Set("listener.security.protocol.map", "SSL:SSL,CONTROLLER:PLAINTEXT"),
		ktest.Set("ssl.truststore.location", files.CA),
		ktest.Set("ssl.client.auth", "required"),
		ktest.Set("listener.name.ssl.ssl.principal.mapping.rules",
			"RULE:^CN=(.*?),OU=Brokers,O=Acme$/$1/L, RULE:^CN=(.*?),OU=ServiceUsers,O=Acme$/$1/L"),
		ktest.Set("authorizer.class.name", config.StandardAuthorizer),
		ktest.Set("super.users", "User:kafka-0;User:kafka-1;User:kafka-2;User:admin"),
		ktest.Set("replica.lag.time.max.ms", "2000"),
	}
	for i := range 3 {
		keystore := files.BrokerFor(t, pkix.Name{CommonName: fmt.Sprintf("Kafka-%d", i), OrganizationalUnit: []string{"Brokers"}, Organization: []string{"Acme"}})
		opts = append(opts, ktest.OnNode(i, ktest.Set("ssl.keystore.location", keystore)))
	}
	bs := ktest.NewCluster(t, 3, opts...)
	tc := files.ClientConfig(false)
	tc.Certificates = []tls.Certificate{files.ClientCertFor(t, pkix.Name{CommonName: "Admin", OrganizationalUnit: []string{"ServiceUsers"}, Organization: []string{"Acme"}})}
	cl, err := kgo.NewClient(kgo.SeedBrokers(clusterSeeds(bs)...), kgo.DialTLSConfig(tc),
		kgo.DefaultProduceTopic("mapped"), kgo.RequiredAcks(kgo.AllISRAcks()),
		// A follower that may not fetch leaves acks=all records
		// unacknowledged: fail, not hang (an idempotent producer
		// does not give up on records already sent).
		kgo.DisableIdempotentWrite(), kgo.RecordDeliveryTimeout(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := ctxT(t, 90*time.Second)
	adm := kadm.NewClient(cl)
	waitRegistered(t, ctx, adm, 3)
	minISR := "3"
	if _, err := adm.CreateTopic(ctx, 1, 3, map[string]*string{"min.insync.replicas": &minISR}, "mapped"); err != nil {
		t.Fatal(err)
	}
	fullISR(t, ctx, adm, "mapped", 1, 20*time.Second) // at creation, before any fetch
	// acks=all with min.insync.replicas 3: acknowledged once both
	// followers fetched the records, as their mapped principals.
	for i := range 10 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: fmt.Appendf(nil, "record-%d", i)}).FirstErr(); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
	}
	if s := logSizesVia(t, ctx, adm, "mapped", 0); s[0] <= 0 || s[0] != s[1] || s[1] != s[2] {
		t.Errorf("log sizes %v, want three equal", s)
	}
	fullISR(t, ctx, adm, "mapped", 1, time.Second)
}

// TestClusterPrincipalMappingNoMatch: when no rule of the inter-broker
// listener's ssl.principal.mapping.rules matches the brokers'
// certificate subjects, the leader closes the followers' connections
// (as Kafka fails their authentication) and logs why, and the followers
// log that they cannot replicate, with a hint naming the rules.
func TestClusterPrincipalMappingNoMatch(t *testing.T) {
	files := ktest.NewTLSFiles(t)
	tap := &logTap{}
	keystore := files.BrokerFor(t, pkix.Name{CommonName: "kafka", OrganizationalUnit: []string{"Brokers"}, Organization: []string{"Acme"}})
	bs := ktest.NewCluster(t, 3, tap.option(),
		ktest.Set("listeners", "SSL://127.0.0.1:0"),
		ktest.Set("listener.security.protocol.map", "SSL:SSL,CONTROLLER:PLAINTEXT"),
		ktest.Set("ssl.keystore.location", keystore),
		ktest.Set("ssl.truststore.location", files.CA),
		ktest.Set("ssl.client.auth", "required"),
		ktest.Set("ssl.principal.mapping.rules", "RULE:^CN=(.*?),OU=ServiceUsers,O=Acme$/$1/L"))
	tc := files.ClientConfig(false)
	tc.Certificates = []tls.Certificate{files.ClientCertFor(t, pkix.Name{CommonName: "Admin", OrganizationalUnit: []string{"ServiceUsers"}, Organization: []string{"Acme"}})}
	cl, err := kgo.NewClient(kgo.SeedBrokers(clusterSeeds(bs)...), kgo.DialTLSConfig(tc))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := ctxT(t, 60*time.Second)
	adm := kadm.NewClient(cl)
	waitRegistered(t, ctx, adm, 3)
	if _, err := adm.CreateTopic(ctx, 1, 3, nil, "unreplicated"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the leader's and a follower's logs", func() bool {
		return tap.has("TLS client authentication failed", "CN=kafka,OU=Brokers,O=Acme") &&
			tap.has("cannot replicate from the leader", "ssl.principal.mapping.rules")
	})
}
