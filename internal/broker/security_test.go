package broker_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/gregor-streaming/gregor/internal/auth"
	"github.com/gregor-streaming/gregor/internal/config"
	"github.com/gregor-streaming/gregor/internal/ktest"
	"github.com/gregor-streaming/gregor/internal/server"
)

// roundTrip produces n records of size bytes to topic through cl and
// reads them back with a consumer made by newClient.
func roundTrip(t *testing.T, cl *kgo.Client, newClient func(...kgo.Opt) *kgo.Client, topic string, n, size int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	val := bytes.Repeat([]byte("x"), size)
	for i := 0; i < n; i++ {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: val}).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
	c := newClient(kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got := 0
	for got < n {
		fs := c.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d: %v", got, n, err)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("fetch: %v", err) })
		fs.EachRecord(func(r *kgo.Record) {
			if !bytes.Equal(r.Value, val) {
				t.Fatalf("record %d: %d bytes, want %d", got, len(r.Value), size)
			}
			got++
		})
	}
}

func saslBroker(t *testing.T, listener string, opts ...ktest.Option) *ktest.Broker {
	t.Helper()
	opts = append([]ktest.Option{
		ktest.Set("listeners", listener+"://127.0.0.1:0"),
		ktest.Set("sasl.enabled.mechanisms", "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512"),
	}, opts...)
	b := ktest.NewBroker(t, opts...)
	for _, mech := range []string{auth.ScramSHA256, auth.ScramSHA512} {
		if _, err := b.B.EnsureScramUser(mech, "alice", "alice-secret"); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

// TestSASLMechanismsRealClient: franz-go authenticates with each
// mechanism and produces and consumes; a wrong password, an unknown
// user and a client without SASL are refused.
func TestSASLMechanismsRealClient(t *testing.T) {
	b := saslBroker(t, "SASL_PLAINTEXT")
	mechs := map[string]func(user, pass string) sasl.Mechanism{
		"PLAIN":         func(u, p string) sasl.Mechanism { return plain.Auth{User: u, Pass: p}.AsMechanism() },
		"SCRAM-SHA-256": func(u, p string) sasl.Mechanism { return scram.Auth{User: u, Pass: p}.AsSha256Mechanism() },
		"SCRAM-SHA-512": func(u, p string) sasl.Mechanism { return scram.Auth{User: u, Pass: p}.AsSha512Mechanism() },
	}
	for name, mech := range mechs {
		t.Run(name, func(t *testing.T) {
			opts := []kgo.Opt{kgo.SASL(mech("alice", "alice-secret")), kgo.AllowAutoTopicCreation()}
			newClient := func(more ...kgo.Opt) *kgo.Client { return b.Client(append(append([]kgo.Opt{}, opts...), more...)...) }
			roundTrip(t, newClient(), newClient, "t-"+strings.ToLower(name), 20, 100)

			for _, bad := range [][2]string{{"alice", "wrong"}, {"mallory", "alice-secret"}} {
				cl := b.Client(kgo.SASL(mech(bad[0], bad[1])), kgo.RequestRetries(0))
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				err := cl.Ping(ctx)
				cancel()
				if !errors.Is(err, kerr.SaslAuthenticationFailed) {
					t.Errorf("%s/%s: %v, want SASL_AUTHENTICATION_FAILED", bad[0], bad[1], err)
				}
			}
		})
	}
	// Without SASL, the first request (ApiVersions is allowed, Metadata
	// is not) closes the connection.
	cl := b.Client(kgo.RequestRetries(0))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl); err == nil {
		t.Error("Metadata without authentication answered")
	}
}

// TestSASLMechanismNotEnabled: a mechanism outside
// sasl.enabled.mechanisms gets UNSUPPORTED_SASL_MECHANISM.
func TestSASLMechanismNotEnabled(t *testing.T) {
	b := saslBroker(t, "SASL_PLAINTEXT", ktest.Set("sasl.enabled.mechanisms", "SCRAM-SHA-512"))
	cl := b.Client(kgo.SASL(plain.Auth{User: "alice", Pass: "alice-secret"}.AsMechanism()), kgo.RequestRetries(0))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cl.Ping(ctx); !errors.Is(err, kerr.UnsupportedSaslMechanism) {
		t.Errorf("PLAIN: %v, want UNSUPPORTED_SASL_MECHANISM", err)
	}
}

// TestAlterUserScramCredentials: users created, described and deleted
// with kadm (KIP-554), and the broker authenticates with what was
// stored, also after a restart.
func TestAlterUserScramCredentials(t *testing.T) {
	b := saslBroker(t, "SASL_PLAINTEXT")
	admin := kadm.NewClient(b.Client(kgo.SASL(scram.Auth{User: "alice", Pass: "alice-secret"}.AsSha256Mechanism())))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := admin.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{
		{User: "bob", Mechanism: kadm.ScramSha512, Iterations: 8192, Password: "bob-secret"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := res["bob"].Err; err != nil {
		t.Fatalf("bob: %v", err)
	}
	// What kadm would refuse before sending: too few iterations, the
	// same credential twice.
	alter := kmsg.NewPtrAlterUserSCRAMCredentialsRequest()
	alter.Upsertions = []kmsg.AlterUserSCRAMCredentialsRequestUpsertion{
		{Name: "carol", Mechanism: 1, Iterations: 1000, Salt: []byte("salt"), SaltedPassword: bytes.Repeat([]byte{1}, 32)},
		{Name: "erin", Mechanism: 1, Iterations: 4096, Salt: []byte("salt"), SaltedPassword: bytes.Repeat([]byte{1}, 32)},
		{Name: "erin", Mechanism: 1, Iterations: 4096, Salt: []byte("salt"), SaltedPassword: bytes.Repeat([]byte{2}, 32)},
	}
	alterResp, err := alter.RequestWith(ctx, b.Client(kgo.SASL(scram.Auth{User: "alice", Pass: "alice-secret"}.AsSha256Mechanism())))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int16{"carol": kerr.UnacceptableCredential.Code, "erin": kerr.DuplicateResource.Code}
	for _, r := range alterResp.Results {
		if r.ErrorCode != want[r.User] {
			t.Errorf("%s: error %d, want %d", r.User, r.ErrorCode, want[r.User])
		}
		delete(want, r.User)
	}
	if len(want) != 0 {
		t.Errorf("no result for %v", want)
	}
	ping := func(user, pass string, sha512 bool) error {
		a := scram.Auth{User: user, Pass: pass}
		m := a.AsSha256Mechanism()
		if sha512 {
			m = a.AsSha512Mechanism()
		}
		cl := b.Client(kgo.SASL(m), kgo.RequestRetries(0))
		defer cl.Close()
		return cl.Ping(ctx)
	}
	if err := ping("bob", "bob-secret", true); err != nil {
		t.Fatalf("bob after upsert: %v", err)
	}
	if err := ping("bob", "bob-secret", false); !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Errorf("bob with SHA-256 (only SHA-512 stored): %v", err)
	}
	desc, err := admin.DescribeUserSCRAMs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d := desc["bob"]; d.Err != nil || len(d.CredInfos) != 1 || d.CredInfos[0].Mechanism != kadm.ScramSha512 || d.CredInfos[0].Iterations != 8192 {
		t.Errorf("describe bob: %+v", d)
	}
	if d := desc["alice"]; len(d.CredInfos) != 2 {
		t.Errorf("describe alice: %+v", d)
	}
	if _, ok := desc["carol"]; ok {
		t.Error("carol described")
	}
	// An empty, non-null list asks for every user too, as in Kafka.
	dr := kmsg.NewPtrDescribeUserSCRAMCredentialsRequest()
	dr.Users = []kmsg.DescribeUserSCRAMCredentialsRequestUser{}
	drr, err := dr.RequestWith(ctx, b.Client(kgo.SASL(scram.Auth{User: "alice", Pass: "alice-secret"}.AsSha256Mechanism())))
	if err != nil || len(drr.Results) != 2 {
		t.Errorf("describe with an empty list: %v, %d results", err, len(drr.Results))
	}
	one, err := admin.DescribeUserSCRAMs(ctx, "nobody")
	if err != nil {
		t.Fatal(err)
	}
	if err := one["nobody"].Err; !errors.Is(err, kerr.ResourceNotFound) {
		t.Errorf("describe nobody: %v", err)
	}

	b.Restart()
	if err := ping("bob", "bob-secret", true); err != nil {
		t.Fatalf("bob after restart: %v", err)
	}
	admin = kadm.NewClient(b.Client(kgo.SASL(scram.Auth{User: "alice", Pass: "alice-secret"}.AsSha256Mechanism())))
	res, err = admin.AlterUserSCRAMs(ctx, []kadm.DeleteSCRAM{{User: "bob", Mechanism: kadm.ScramSha512}, {User: "dave", Mechanism: kadm.ScramSha256}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := res["bob"].Err; err != nil {
		t.Fatalf("delete bob: %v", err)
	}
	if err := res["dave"].Err; !errors.Is(err, kerr.ResourceNotFound) {
		t.Errorf("delete dave: %v, want RESOURCE_NOT_FOUND", err)
	}
	if err := ping("bob", "bob-secret", true); !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Errorf("bob after delete: %v", err)
	}
}

// TestTLSListener: a client trusting the CA produces and consumes over
// an SSL listener, fetches large enough for the plaintext listener's
// sendfile path included; a plaintext client gets no answer.
func TestTLSListener(t *testing.T) {
	files := ktest.NewTLSFiles(t)
	b := ktest.NewBroker(t, ktest.Set("listeners", "SSL://127.0.0.1:0"), ktest.Set("ssl.keystore.location", files.Broker))
	newClient := func(more ...kgo.Opt) *kgo.Client {
		return b.Client(append([]kgo.Opt{kgo.DialTLSConfig(files.ClientConfig(false)), kgo.AllowAutoTopicCreation()}, more...)...)
	}
	roundTrip(t, newClient(), newClient, "tls", 40, 64<<10)

	cl := b.Client(kgo.RequestRetries(0), kgo.DialTimeout(2*time.Second), kgo.RequestTimeoutOverhead(2*time.Second))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := cl.Ping(ctx); err == nil {
		t.Error("plaintext client answered by an SSL listener")
	}
}

// TestSASLSSLClientCertRequired: SASL over TLS with ssl.client.auth
// required: a client without a certificate is refused before SASL, one
// with the CA's certificate authenticates.
func TestSASLSSLClientCertRequired(t *testing.T) {
	files := ktest.NewTLSFiles(t)
	b := saslBroker(t, "SASL_SSL",
		ktest.Set("ssl.keystore.location", files.Broker),
		ktest.Set("ssl.truststore.location", files.CA),
		ktest.Set("ssl.client.auth", "required"))
	mech := kgo.SASL(scram.Auth{User: "alice", Pass: "alice-secret"}.AsSha512Mechanism())
	newClient := func(more ...kgo.Opt) *kgo.Client {
		return b.Client(append([]kgo.Opt{mech, kgo.DialTLSConfig(files.ClientConfig(true)), kgo.AllowAutoTopicCreation()}, more...)...)
	}
	roundTrip(t, newClient(), newClient, "sasl-ssl", 10, 1000)

	cl := b.Client(mech, kgo.DialTLSConfig(files.ClientConfig(false)), kgo.RequestRetries(0))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := cl.Ping(ctx); err == nil {
		t.Error("client without a certificate answered")
	}
}

// TestSASLHandshakeV0RawTokens: after a v0 SaslHandshake the tokens
// travel as bare frames (what sarama and kafka-python send by default),
// and requests follow once authenticated.
func TestSASLHandshakeV0RawTokens(t *testing.T) {
	b := saslBroker(t, "SASL_PLAINTEXT")
	conn := dialRaw(t, b.Addr).nc
	conn.SetDeadline(time.Now().Add(10 * time.Second))

	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.Version, hs.Mechanism = 0, "PLAIN"
	var hsResp kmsg.SASLHandshakeResponse
	hsResp.Version = 0
	rawRequest(t, conn, hs, 1, &hsResp)
	if hsResp.ErrorCode != 0 {
		t.Fatalf("handshake: error %d", hsResp.ErrorCode)
	}
	writeFrame(t, conn, []byte("\x00alice\x00alice-secret"))
	if tok := readFrame(t, conn); len(tok) != 0 {
		t.Fatalf("PLAIN reply %q, want empty", tok)
	}
	md := kmsg.NewPtrMetadataRequest()
	md.Version = 9
	var mdResp kmsg.MetadataResponse
	mdResp.Version = 9
	rawRequest(t, conn, md, 2, &mdResp)
	if len(mdResp.Brokers) != 1 {
		t.Errorf("metadata after raw PLAIN: %d brokers", len(mdResp.Brokers))
	}

	// A wrong password in a bare token closes the connection.
	conn2 := dialRaw(t, b.Addr).nc
	conn2.SetDeadline(time.Now().Add(10 * time.Second))
	rawRequest(t, conn2, hs, 1, &hsResp)
	writeFrame(t, conn2, []byte("\x00alice\x00nope"))
	if _, err := io.ReadFull(conn2, make([]byte, 4)); err == nil {
		t.Error("answer to a wrong password")
	}
}

// TestSASLLargeFrameBeforeAuthentication: an unauthenticated client
// cannot make the broker read a large frame.
func TestSASLLargeFrameBeforeAuthentication(t *testing.T) {
	b := saslBroker(t, "SASL_PLAINTEXT")
	conn := dialRaw(t, b.Addr).nc
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	var size [4]byte
	binary.BigEndian.PutUint32(size[:], 50<<20)
	conn.Write(size[:])
	if _, err := io.ReadFull(conn, make([]byte, 1)); err == nil {
		t.Error("connection not closed")
	}
}

func rawRequest(t *testing.T, conn net.Conn, req kmsg.Request, corr int32, resp kmsg.Response) {
	t.Helper()
	var hdr []byte
	hdr = binary.BigEndian.AppendUint16(hdr, uint16(req.Key()))
	hdr = binary.BigEndian.AppendUint16(hdr, uint16(req.GetVersion()))
	hdr = binary.BigEndian.AppendUint32(hdr, uint32(corr))
	hdr = binary.BigEndian.AppendUint16(hdr, 1)
	hdr = append(hdr, 't')
	if req.IsFlexible() {
		hdr = append(hdr, 0)
	}
	writeFrame(t, conn, req.AppendTo(hdr))
	body := readFrame(t, conn)
	if got := int32(binary.BigEndian.Uint32(body)); got != corr {
		t.Fatalf("correlation %d, want %d", got, corr)
	}
	body = body[4:]
	if resp.IsFlexible() {
		body = body[1:]
	}
	if err := resp.ReadFrom(body); err != nil {
		t.Fatal(err)
	}
}

func writeFrame(t *testing.T, conn net.Conn, b []byte) {
	t.Helper()
	if _, err := conn.Write(binary.BigEndian.AppendUint32(nil, uint32(len(b)))); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write(b); err != nil {
		t.Fatal(err)
	}
}

func readFrame(t *testing.T, conn net.Conn) []byte {
	t.Helper()
	var size [4]byte
	if _, err := io.ReadFull(conn, size[:]); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(conn, b); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestListenersAdvertiseTheirOwnEndpoint: with two listeners (PLAINTEXT
// and a SASL one, as listeners=INTERNAL://…,EXTERNAL://… sets up), each
// client is told its own listener's address in Metadata and
// FindCoordinator, so a SASL client keeps to the SASL port and a group
// works through either.
func TestListenersAdvertiseTheirOwnEndpoint(t *testing.T) {
	b := ktest.NewBroker(t)
	for _, mech := range []string{auth.ScramSHA256} {
		if _, err := b.B.EnsureScramUser(mech, "alice", "alice-secret"); err != nil {
			t.Fatal(err)
		}
	}
	cfg, _, err := config.NewBroker(map[string]string{"sasl.enabled.mechanisms": "SCRAM-SHA-256"})
	if err != nil {
		t.Fatal(err)
	}
	sec, err := server.SecurityFor(cfg, config.Listener{Protocol: config.SASLPlaintext}, b.B.ScramLookup)
	if err != nil {
		t.Fatal(err)
	}
	external := b.AddListener("EXTERNAL", sec)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, c := range []struct {
		addr string
		opts []kgo.Opt
	}{
		{b.Addr, nil},
		{external, []kgo.Opt{kgo.SASL(scram.Auth{User: "alice", Pass: "alice-secret"}.AsSha256Mechanism())}},
	} {
		cl := b.Client(append([]kgo.Opt{kgo.SeedBrokers(c.addr)}, c.opts...)...)
		md, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		if got := net.JoinHostPort(md.Brokers[0].Host, fmt.Sprint(md.Brokers[0].Port)); got != c.addr {
			t.Errorf("through %s: Metadata advertises %s", c.addr, got)
		}
		fc := kmsg.NewPtrFindCoordinatorRequest()
		fc.CoordinatorKey = "g"
		fcr, err := fc.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		if got := net.JoinHostPort(fcr.Host, fmt.Sprint(fcr.Port)); got != c.addr {
			t.Errorf("through %s: FindCoordinator answers %s", c.addr, got)
		}
	}
	// A group consumer through the SASL listener: every connection
	// kgo opens (seed, broker, coordinator) authenticates.
	opts := []kgo.Opt{kgo.SeedBrokers(external), kgo.SASL(scram.Auth{User: "alice", Pass: "alice-secret"}.AsSha256Mechanism()), kgo.AllowAutoTopicCreation()}
	newClient := func(more ...kgo.Opt) *kgo.Client {
		return b.Client(append(append([]kgo.Opt{}, opts...), append(more, kgo.ConsumerGroup("g-external"))...)...)
	}
	roundTrip(t, b.Client(opts...), newClient, "external", 10, 100)
}
