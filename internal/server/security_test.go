package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"errors"
	"io"
	"math/big"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/auth"
	"github.com/gregor-streaming/gregor/internal/config"
	"github.com/gregor-streaming/gregor/internal/wire"
)

// saslHandler is testHandler with the SASL APIs registered, as the
// broker registers them (it answers them itself only once a connection
// needs no more authentication).
type saslHandler struct{ testHandler }

func (h *saslHandler) Versions(key int16) (int16, int16, bool) {
	switch key {
	case saslHandshakeKey:
		return 0, 1, true
	case saslAuthenticateKey:
		return 0, 2, true
	}
	return h.testHandler.Versions(key)
}

func (h *saslHandler) Serve(ctx context.Context, req *wire.Request, respond func(kmsg.Response)) {
	switch r := req.Body.(type) {
	case *kmsg.SASLHandshakeRequest:
		resp := r.ResponseKind().(*kmsg.SASLHandshakeResponse)
		resp.Version, resp.ErrorCode = r.Version, 34
		respond(resp)
	case *kmsg.SASLAuthenticateRequest:
		resp := r.ResponseKind().(*kmsg.SASLAuthenticateResponse)
		resp.Version, resp.ErrorCode = r.Version, 34
		respond(resp)
	default:
		h.testHandler.Serve(ctx, req, respond)
	}
}

func startSASLServer(tb testing.TB) (*Server, string) {
	tb.Helper()
	creds := map[string][]auth.Credential{}
	for _, mech := range []string{auth.ScramSHA256, auth.ScramSHA512} {
		c, err := auth.NewCredential(mech, "alice-secret", []byte("0123456789abcdef"), 4096)
		if err != nil {
			tb.Fatal(err)
		}
		creds["alice"] = append(creds["alice"], c)
	}
	h := &saslHandler{}
	s := New(h, Config{IdleTimeout: 5 * time.Second, Security: Security{SASL: &SASL{
		Mechanisms: auth.Mechanisms(),
		Lookup:     func(user string) []auth.Credential { return creds[user] },
	}}}, nil)
	l, err := s.Listen("127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		s.Shutdown(context.Background())
		h.wg.Wait()
	})
	return s, l.Addr().String()
}

func frame(b []byte) []byte { return append(binary.BigEndian.AppendUint32(nil, uint32(len(b))), b...) }

func request(req kmsg.Request, corr int32) []byte {
	return kmsg.NewRequestFormatter(kmsg.FormatterClientID("t")).AppendRequest(nil, req, corr)
}

// TestSASLGate: before authentication only ApiVersions and the SASL
// APIs are served; after a v1 PLAIN exchange everything is.
func TestSASLGate(t *testing.T) {
	srv, addr := startSASLServer(t)

	// Metadata first: closed without an answer.
	c := dial(t, addr)
	send(t, c, slowMetadata(0), 1)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatalf("Metadata before authentication answered (%d bytes)", n)
	}

	c = dial(t, addr)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	av := kmsg.NewPtrApiVersionsRequest()
	av.Version = 3
	send(t, c, av, 1)
	readFrame(t, c)
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.Version, hs.Mechanism = 1, auth.Plain
	send(t, c, hs, 2)
	var hsResp kmsg.SASLHandshakeResponse
	hsResp.Version = 1
	if err := hsResp.ReadFrom(readFrame(t, c)[4:]); err != nil || hsResp.ErrorCode != 0 {
		t.Fatalf("handshake: %v, error %d", err, hsResp.ErrorCode)
	}
	a := kmsg.NewPtrSASLAuthenticateRequest()
	a.Version, a.SASLAuthBytes = 2, []byte("\x00alice\x00alice-secret")
	send(t, c, a, 3)
	var aResp kmsg.SASLAuthenticateResponse
	aResp.Version = 2
	if err := aResp.ReadFrom(readFrame(t, c)[5:]); err != nil || aResp.ErrorCode != 0 {
		t.Fatalf("authenticate: %v, error %d %v", err, aResp.ErrorCode, aResp.ErrorMessage)
	}
	send(t, c, slowMetadata(0), 4)
	if got := int32(binary.BigEndian.Uint32(readFrame(t, c))); got != 4 {
		t.Fatalf("metadata after authentication: correlation %d", got)
	}
	// A second handshake reaches the handler, which answers
	// ILLEGAL_SASL_STATE as the broker does.
	send(t, c, hs, 5)
	if err := hsResp.ReadFrom(readFrame(t, c)[4:]); err != nil || hsResp.ErrorCode != 34 {
		t.Fatalf("second handshake: %v, error %d", err, hsResp.ErrorCode)
	}

	// A wrong password: SASL_AUTHENTICATION_FAILED, then the
	// connection closes.
	c = dial(t, addr)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	send(t, c, hs, 1)
	readFrame(t, c)
	a.SASLAuthBytes = []byte("\x00alice\x00wrong")
	send(t, c, a, 2)
	if err := aResp.ReadFrom(readFrame(t, c)[5:]); err != nil || aResp.ErrorCode != 58 {
		t.Fatalf("wrong password: %v, error %d", err, aResp.ErrorCode)
	}
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Error("connection open after a failed authentication")
	}
	if ok, failed := srv.Authentications(); ok != 1 || failed != 1 {
		t.Errorf("Authentications() = %d, %d; want 1, 1", ok, failed)
	}
}

// FuzzSASLConn writes arbitrary frames to a SASL listener before (and
// perhaps after) authentication: the connection is answered or closed,
// never a panic or a hang. The input is a sequence of frames, each a
// 2-byte length and its bytes; the seeds are v0 and v1 exchanges of
// each mechanism.
func FuzzSASLConn(f *testing.F) {
	var seed []byte
	add := func(frames ...[]byte) {
		seed = seed[:0]
		for _, fr := range frames {
			seed = binary.BigEndian.AppendUint16(seed, uint16(len(fr)))
			seed = append(seed, fr...)
		}
		f.Add(append([]byte(nil), seed...))
	}
	body := func(b []byte) []byte { return b[4:] } // request without its size
	for _, mech := range auth.Mechanisms() {
		for _, v := range []int16{0, 1} {
			hs := kmsg.NewPtrSASLHandshakeRequest()
			hs.Version, hs.Mechanism = v, mech
			first := []byte("n,,n=alice,r=abcdefgh")
			if mech == auth.Plain {
				first = []byte("\x00alice\x00alice-secret")
			}
			if v == 0 {
				add(body(request(hs, 1)), first, []byte("c=biws,r=abcdefgh,p=AAAA"), body(request(slowMetadata(0), 2)))
				continue
			}
			a := kmsg.NewPtrSASLAuthenticateRequest()
			a.Version, a.SASLAuthBytes = 2, first
			add(body(request(hs, 1)), body(request(a, 2)), body(request(slowMetadata(0), 3)))
		}
	}
	av := kmsg.NewPtrApiVersionsRequest()
	add(body(request(av, 1)), body(request(slowMetadata(0), 2)))

	_, addr := startSASLServer(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		var out []byte
		for n := 0; len(in) >= 2 && n < 8; n++ {
			size := int(binary.BigEndian.Uint16(in))
			in = in[2:]
			size = min(size, len(in))
			out = append(out, frame(in[:size])...)
			in = in[size:]
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		go c.Write(out)
		// Whatever the server answers, it answers within the
		// deadline and then waits for more or closes.
		c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		io.Copy(io.Discard, c)
	})
}

// TestSecurityForListener: listener.name.NAME.* overrides the
// broker-wide security settings for that listener only.
func TestSecurityForListener(t *testing.T) {
	cfg, unknown, err := config.NewBroker(map[string]string{
		"sasl.enabled.mechanisms":                        "SCRAM-SHA-512",
		"listener.name.external.sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-256",
	})
	if err != nil || len(unknown) != 0 {
		t.Fatalf("NewBroker: %v, unknown %v", err, unknown)
	}
	for listener, want := range map[string][]string{
		"EXTERNAL": {auth.Plain, auth.ScramSHA256},
		"INTERNAL": {auth.ScramSHA512},
		"":         {auth.ScramSHA512},
	} {
		sec, err := SecurityFor(cfg, config.Listener{Name: listener, Protocol: config.SASLPlaintext}, nil)
		if err != nil || !slices.Equal(sec.SASL.Mechanisms, want) {
			t.Errorf("%q: %v %v, want %v", listener, sec.SASL, err, want)
		}
	}
	// A listener name in upper case applies too (Kafka spells them in
	// lower case; accepting and then ignoring one failed open).
	cfg, _, _ = config.NewBroker(map[string]string{"listener.name.EXTERNAL.ssl.client.auth": "required", "ssl.truststore.certificates": "x"})
	if got := cfg.ListenerString("EXTERNAL", "ssl.client.auth"); got != "required" {
		t.Errorf("upper-case override: ssl.client.auth %q", got)
	}
	if names := cfg.ListenerOverrideNames(); !slices.Equal(names, []string{"external"}) {
		t.Errorf("ListenerOverrideNames = %v", names)
	}
	// An override is checked as the property it overrides.
	if _, _, err := config.NewBroker(map[string]string{"listener.name.external.ssl.client.auth": "sometimes"}); err == nil {
		t.Error("listener.name.external.ssl.client.auth=sometimes accepted")
	}
	// A listener's own keystore: missing for EXTERNAL only.
	cfg, _, _ = config.NewBroker(map[string]string{"listener.name.internal.ssl.keystore.location": "/nonexistent.pem"})
	if _, err := SecurityFor(cfg, config.Listener{Name: "INTERNAL", Protocol: config.SSL}, nil); err == nil || !strings.Contains(err.Error(), "nonexistent") {
		t.Errorf("INTERNAL's keystore: %v", err)
	}
	if _, err := SecurityFor(cfg, config.Listener{Name: "EXTERNAL", Protocol: config.SSL}, nil); err == nil || strings.Contains(err.Error(), "nonexistent") {
		t.Errorf("EXTERNAL without a keystore: %v", err)
	}
}

// TestSASLPipeliningBounded: a client that pipelines requests before
// authenticating and never reads the answers is closed, instead of
// holding its connection (and a max.connections slot) past
// connections.max.idle.ms.
func TestSASLPipeliningBounded(t *testing.T) {
	srv, addr := startSASLServer(t)
	c := dial(t, addr)
	for srv.Connections() == 0 {
		time.Sleep(time.Millisecond)
	}
	av := request(kmsg.NewPtrApiVersionsRequest(), 1)
	go func() {
		for range 200000 {
			if _, err := c.Write(av); err != nil {
				return
			}
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for srv.Connections() > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := srv.Connections(); n != 0 {
		t.Errorf("%d connections open 10 s after a client pipelined requests it never read", n)
	}
}

// TestSecurityForPrincipalMappingRules: ssl.principal.mapping.rules is
// parsed for every listener, a listener's override winning; bad rules
// are an invalid config naming the setting that holds them.
func TestSecurityForPrincipalMappingRules(t *testing.T) {
	cfg, _, err := config.NewBroker(map[string]string{
		"ssl.principal.mapping.rules":                        "RULE:^CN=([^,]*).*$/$1/L,DEFAULT",
		"listener.name.external.ssl.principal.mapping.rules": "RULE:^CN=([^,]*).*$/$1/U",
	})
	if err != nil {
		t.Fatal(err)
	}
	for listener, want := range map[string]string{"INTERNAL": "alice", "EXTERNAL": "ALICE"} {
		sec, err := SecurityFor(cfg, config.Listener{Name: listener, Protocol: config.Plaintext}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := sec.PrincipalMapper.Name("CN=Alice,O=Acme"); err != nil || got != want {
			t.Errorf("%s: %q, %v; want %q", listener, got, err, want)
		}
	}
	// The default keeps the whole subject.
	sec, err := SecurityFor(config.Default(), config.Listener{Name: "PLAINTEXT", Protocol: config.Plaintext}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := sec.PrincipalMapper.Name("CN=Alice,O=Acme"); err != nil || got != "CN=Alice,O=Acme" {
		t.Errorf("default rules: %q, %v", got, err)
	}
	for props, setting := range map[string]string{
		"ssl.principal.mapping.rules":                        "ssl.principal.mapping.rules",
		"listener.name.external.ssl.principal.mapping.rules": "listener.name.external.ssl.principal.mapping.rules",
	} {
		cfg, _, err := config.NewBroker(map[string]string{props: `RULE:^CN=(\w+),OU=\1$/$1/`})
		if err != nil {
			t.Fatal(err)
		}
		_, err = SecurityFor(cfg, config.Listener{Name: "EXTERNAL", Protocol: config.Plaintext}, nil)
		if !errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), setting+": ") {
			t.Errorf("%s with a back reference: %v, want an invalid config naming it", props, err)
		}
	}
}

// principalHandler records the principal of each ApiVersions request.
type principalHandler struct {
	testHandler
	seen chan string
}

func (h *principalHandler) Serve(ctx context.Context, req *wire.Request, respond func(kmsg.Response)) {
	if _, ok := req.Body.(*kmsg.ApiVersionsRequest); ok {
		h.seen <- req.Client.Principal()
	}
	h.testHandler.Serve(ctx, req, respond)
}

// TestTLSPrincipalMapping: over mutual TLS, a client's principal is what
// the listener's rules make of its certificate's subject; a subject that
// no rule matches has its connection closed at its first request,
// unanswered, as Kafka closes it.
func TestTLSPrincipalMapping(t *testing.T) {
	ca := newCertAuthority(t)
	mapper, err := auth.ParsePrincipalMappingRules("RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L")
	if err != nil {
		t.Fatal(err)
	}
	h := &principalHandler{seen: make(chan string, 4)}
	s := New(h, Config{IdleTimeout: 5 * time.Second, Security: Security{
		TLS: &tls.Config{
			Certificates: []tls.Certificate{ca.issue(t, pkix.Name{CommonName: "broker"}, true)},
			ClientAuth:   tls.RequireAndVerifyClientCert,
			ClientCAs:    ca.pool,
		},
		PrincipalMapper: mapper,
	}}, nil)
	l, err := s.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Shutdown(context.Background())
		h.wg.Wait()
	})
	connect := func(subject pkix.Name) net.Conn {
		t.Helper()
		c, err := tls.Dial("tcp", l.Addr().String(), &tls.Config{
			RootCAs:      ca.pool,
			ServerName:   "127.0.0.1",
			Certificates: []tls.Certificate{ca.issue(t, subject, false)},
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(5 * time.Second))
		send(t, c, kmsg.NewPtrApiVersionsRequest(), 1)
		return c
	}

	alice := connect(pkix.Name{CommonName: "Alice", OrganizationalUnit: []string{"ServiceUsers"}, Organization: []string{"Acme"}})
	readFrame(t, alice)
	if p := <-h.seen; p != "User:alice" {
		t.Errorf("CN=Alice,OU=ServiceUsers,O=Acme: principal %q, want User:alice", p)
	}

	bob := connect(pkix.Name{CommonName: "Bob", Organization: []string{"Acme"}})
	if n, err := bob.Read(make([]byte, 1)); err == nil || n != 0 {
		t.Errorf("CN=Bob,O=Acme, which no rule matches: read %d bytes, %v; want the connection closed", n, err)
	}
	select {
	case p := <-h.seen:
		t.Errorf("a request served as %q for a subject no rule matches", p)
	default:
	}
}

// certAuthority signs certificates for TLS tests.
type certAuthority struct {
	key  *ecdsa.PrivateKey
	cert *x509.Certificate
	pool *x509.CertPool
}

func newCertAuthority(t *testing.T) *certAuthority {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	ca := &certAuthority{key: key, cert: cert, pool: x509.NewCertPool()}
	ca.pool.AddCert(cert)
	return ca
}

// issue returns a key pair for subject, for a server at 127.0.0.1 or a
// client.
func (ca *certAuthority) issue(t *testing.T, subject pkix.Name, server bool) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: subject,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}
