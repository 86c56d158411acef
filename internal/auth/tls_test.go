package auth

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testCA is a CA for TLS tests, signing leaf certificates into PEM
// files.
type testCA struct {
	t    *testing.T
	dir  string
	key  *ecdsa.PrivateKey
	cert *x509.Certificate
	// File holds the CA's certificate (a truststore).
	File string
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	ca := &testCA{t: t, dir: t.TempDir(), key: key, cert: cert}
	ca.File = filepath.Join(ca.dir, "ca.pem")
	if err := os.WriteFile(ca.File, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return ca
}

// leaf writes a key and a certificate for the given IP addresses and
// host names, good for TLS servers and clients, and returns the file.
func (ca *testCA) leaf(cn string, names ...string) string {
	t := ca.t
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalPKCS8PrivateKey(key)
	out := append(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	path := filepath.Join(ca.dir, cn+".pem")
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// props is a get function over a map, as a listener's properties.
func props(m map[string]string) func(string) string {
	return func(name string) string {
		if v, ok := m[name]; ok {
			return v
		}
		if name == "ssl.enabled.protocols" {
			return "TLSv1.2,TLSv1.3"
		}
		if name == "ssl.endpoint.identification.algorithm" {
			return "https"
		}
		return ""
	}
}

// connPair returns the two ends of a loopback TCP connection (buffered,
// unlike net.Pipe: in TLS 1.3 a server refuses a client certificate
// after the client finished, with an alert nobody reads), closed with
// the test, both with a deadline.
func connPair(t *testing.T) (server, client net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	client, err = net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if server, err = l.Accept(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []net.Conn{server, client} {
		c.SetDeadline(time.Now().Add(10 * time.Second))
		t.Cleanup(func() { c.Close() })
	}
	return server, client
}

// handshake connects a client with cc to a server with sc over loopback,
// dialing serverName, and returns each side's handshake error and the
// subject of the client certificate the server saw.
func handshake(t *testing.T, sc, cc *tls.Config, serverName string) (serverErr, clientErr error, subject string) {
	t.Helper()
	a, b := connPair(t)
	if serverName != "" && !cc.InsecureSkipVerify {
		cc = cc.Clone()
		cc.ServerName = serverName
	}
	srv, cl := tls.Server(a, sc), tls.Client(b, cc)
	done := make(chan error, 1)
	go func() {
		err := srv.Handshake()
		if err != nil {
			a.Close() // unblock a client waiting for the server
		}
		done <- err
	}()
	clientErr = cl.Handshake()
	if clientErr != nil {
		b.Close()
	}
	serverErr = <-done
	if serverErr == nil && clientErr == nil {
		if certs := srv.ConnectionState().PeerCertificates; len(certs) > 0 {
			subject = certs[0].Subject.String()
		}
	}
	return serverErr, clientErr, subject
}

// TestMutualTLS: the controller listener's configuration lets in only
// nodes with a certificate its truststore's CA signed, presenting its
// own certificate both ways; it needs a truststore.
func TestMutualTLS(t *testing.T) {
	ca, other := newTestCA(t, "cluster CA"), newTestCA(t, "another CA")
	node := map[string]string{"ssl.keystore.location": ca.leaf("node", "127.0.0.1"), "ssl.truststore.location": ca.File}
	good, err := MutualTLS(props(node))
	if err != nil {
		t.Fatal(err)
	}
	if good.ClientAuth != tls.RequireAndVerifyClientCert {
		t.Errorf("ClientAuth %v, want required whatever ssl.client.auth says", good.ClientAuth)
	}
	if se, ce, subject := handshake(t, good, good, "127.0.0.1"); se != nil || ce != nil || subject != "CN=node" {
		t.Fatalf("two nodes of the cluster: server %v, client %v, client subject %q", se, ce, subject)
	}
	stranger, err := MutualTLS(props(map[string]string{"ssl.keystore.location": other.leaf("stranger", "127.0.0.1"), "ssl.truststore.location": ca.File}))
	if err != nil {
		t.Fatal(err)
	}
	if se, _, _ := handshake(t, good, stranger, "127.0.0.1"); se == nil {
		t.Error("a node with a certificate from another CA was let in")
	}
	// The stranger's server certificate is refused by a node dialing it.
	if _, ce, _ := handshake(t, stranger, good, "127.0.0.1"); ce == nil {
		t.Error("a node dialed a server with a certificate from another CA")
	}
	anonymous := &tls.Config{RootCAs: good.RootCAs, ServerName: "127.0.0.1"}
	if se, _, _ := handshake(t, good, anonymous, "127.0.0.1"); se == nil {
		t.Error("a client without a certificate was let in")
	}
	if _, err := MutualTLS(props(map[string]string{"ssl.keystore.location": node["ssl.keystore.location"]})); err == nil || !strings.Contains(err.Error(), "truststore") {
		t.Errorf("without a truststore: %v, want an error naming it", err)
	}
	// With ssl.endpoint.identification.algorithm empty, a host name
	// missing from the certificate is accepted, the CA still checked.
	node["ssl.endpoint.identification.algorithm"] = ""
	lax, err := MutualTLS(props(node))
	if err != nil {
		t.Fatal(err)
	}
	if se, ce, _ := handshake(t, lax, lax, "node0.example"); se != nil || ce != nil {
		t.Errorf("without host name checks: server %v, client %v", se, ce)
	}
	if _, ce, _ := handshake(t, good, good, "node0.example"); ce == nil {
		t.Error("with host name checks, a certificate without the host name was accepted")
	}
	if _, ce, _ := handshake(t, stranger, lax, "127.0.0.1"); ce == nil {
		t.Error("without host name checks, a server certificate from another CA was accepted")
	}
}

// TestClientTLS: a broker connecting to another's SASL_SSL listener
// verifies its certificate against the truststore and its host name
// (ssl.endpoint.identification.algorithm=https, Kafka's default), and
// presents its keystore when the listener asks for a certificate.
func TestClientTLS(t *testing.T) {
	ca := newTestCA(t, "cluster CA")
	listener := map[string]string{"ssl.keystore.location": ca.leaf("broker", "127.0.0.1", "localhost"), "ssl.truststore.location": ca.File, "ssl.client.auth": "requested"}
	sc, err := ServerTLS(props(listener))
	if err != nil {
		t.Fatal(err)
	}
	cc, err := ClientTLS(props(listener))
	if err != nil {
		t.Fatal(err)
	}
	if se, ce, subject := handshake(t, sc, cc, "localhost"); se != nil || ce != nil || subject != "CN=broker" {
		t.Fatalf("server %v, client %v, client subject %q", se, ce, subject)
	}
	if _, ce, _ := handshake(t, sc, cc, "broker1.example"); ce == nil {
		t.Error("a certificate without the host dialed was accepted")
	}
	listener["ssl.endpoint.identification.algorithm"] = "bogus"
	if _, err := ClientTLS(props(listener)); err == nil {
		t.Error("ssl.endpoint.identification.algorithm=bogus accepted")
	}
	// Without a truststore the system's CAs apply: the test CA is not
	// one of them.
	delete(listener, "ssl.truststore.location")
	delete(listener, "ssl.endpoint.identification.algorithm")
	listener["ssl.client.auth"] = "none"
	if cc, err = ClientTLS(props(listener)); err != nil {
		t.Fatal(err)
	}
	var unknown x509.UnknownAuthorityError
	if _, ce, _ := handshake(t, sc, cc, "localhost"); !errors.As(ce, &unknown) {
		t.Errorf("without a truststore: %v, want an unknown authority", ce)
	}
}

// selfSigned writes a PEM key and self-signed certificate for 127.0.0.1
// to path and returns the certificate's DER bytes.
func selfSigned(t *testing.T, path string, serial int64) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: "gregor test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalPKCS8PrivateKey(key)
	out := append(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
	return der
}

// TestKeystoreReloaded: a renewed certificate written over
// ssl.keystore.location is served to new connections without a restart;
// a file that does not parse keeps the one in use; ssl.enabled.protocols
// bounds the versions.
func TestKeystoreReloaded(t *testing.T) {
	saved := keystoreCheckEvery
	keystoreCheckEvery = 0
	t.Cleanup(func() { keystoreCheckEvery = saved })
	path := filepath.Join(t.TempDir(), "broker.pem")
	first := selfSigned(t, path, 1)
	sc, err := ServerTLS(props(map[string]string{"ssl.keystore.location": path, "ssl.enabled.protocols": "TLSv1.3"}))
	if err != nil {
		t.Fatal(err)
	}
	served := func(maxVersion uint16) ([]byte, error) {
		a, b := connPair(t)
		go func() {
			if tls.Server(a, sc).Handshake() != nil {
				a.Close()
			}
		}()
		c := tls.Client(b, &tls.Config{InsecureSkipVerify: true, MaxVersion: maxVersion})
		if err := c.Handshake(); err != nil {
			return nil, err
		}
		return c.ConnectionState().PeerCertificates[0].Raw, nil
	}
	if got, err := served(0); err != nil || !bytes.Equal(got, first) {
		t.Fatalf("first certificate: %v", err)
	}
	if _, err := served(tls.VersionTLS12); err == nil {
		t.Error("TLS 1.2 accepted with ssl.enabled.protocols=TLSv1.3")
	}
	second := selfSigned(t, path, 2)
	if got, err := served(0); err != nil || !bytes.Equal(got, second) {
		t.Fatalf("after renewal: %v, renewed certificate served: %v", err, bytes.Equal(got, second))
	}
	if err := os.WriteFile(path, []byte("half-written"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := served(0); err != nil || !bytes.Equal(got, second) {
		t.Fatalf("after a broken file: %v, certificate kept: %v", err, bytes.Equal(got, second))
	}
}
