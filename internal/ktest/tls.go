package ktest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TLSFiles are PEM files for TLS tests: a CA, and a broker and a client
// certificate it signed, each file holding the private key and the
// certificate (what ssl.keystore.location wants). The broker's is good
// for TLS servers and clients (mutual TLS between brokers). Each
// NewTLSFiles makes a CA of its own.
type TLSFiles struct {
	CA, Broker, Client string
	// Pool trusts the CA; ClientCert is Client's key pair.
	Pool       *x509.CertPool
	ClientCert tls.Certificate

	dir    string
	caKey  *ecdsa.PrivateKey
	caCert *x509.Certificate
	serial int64
}

// NewTLSFiles makes a CA and certificates for 127.0.0.1 and localhost in
// a temporary directory.
func NewTLSFiles(t testing.TB) *TLSFiles {
	t.Helper()
	dir := t.TempDir()
	caKey := newKey(t)
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "gregor test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	f := &TLSFiles{CA: filepath.Join(dir, "ca.pem"), Broker: filepath.Join(dir, "broker.pem"), Client: filepath.Join(dir, "client.pem"), Pool: x509.NewCertPool(),
		dir: dir, caKey: caKey, caCert: caCert, serial: 1}
	f.Pool.AddCert(caCert)
	writePEM(t, f.CA, nil, caDER)
	// A broker's certificate is also its client certificate when it
	// connects to the others (inter-broker and controller listeners).
	f.leaf(t, pkix.Name{CommonName: "broker"}, f.Broker, x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth)
	f.ClientCert = f.leaf(t, pkix.Name{CommonName: "client"}, f.Client, x509.ExtKeyUsageClientAuth)
	return f
}

// leaf makes a certificate for subject signed by the CA, for 127.0.0.1
// and localhost, and writes it with its key to path.
func (f *TLSFiles) leaf(t testing.TB, subject pkix.Name, path string, usages ...x509.ExtKeyUsage) tls.Certificate {
	t.Helper()
	f.serial++
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(f.serial),
		Subject:      subject,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  usages,
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, f.caCert, &key.PublicKey, f.caKey)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, path, key, der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// ClientCertFor returns a client certificate for subject (as
// pkix.Name{CommonName: "Alice", OrganizationalUnit: []string{"ServiceUsers"}},
// whose subject is CN=Alice,OU=ServiceUsers), signed by the CA. Not safe
// for concurrent use.
func (f *TLSFiles) ClientCertFor(t testing.TB, subject pkix.Name) tls.Certificate {
	t.Helper()
	return f.leaf(t, subject, filepath.Join(f.dir, fmt.Sprintf("client-%d.pem", f.serial+1)), x509.ExtKeyUsageClientAuth)
}

// BrokerFor returns the path of a keystore (as Broker) whose certificate
// has subject, good for TLS servers and clients. Not safe for
// concurrent use.
func (f *TLSFiles) BrokerFor(t testing.TB, subject pkix.Name) string {
	t.Helper()
	path := filepath.Join(f.dir, fmt.Sprintf("broker-%d.pem", f.serial+1))
	f.leaf(t, subject, path, x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth)
	return path
}

// ClientConfig is a client's TLS configuration trusting the CA,
// presenting the client certificate when withCert.
func (f *TLSFiles) ClientConfig(withCert bool) *tls.Config {
	c := &tls.Config{RootCAs: f.Pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
	if withCert {
		c.Certificates = []tls.Certificate{f.ClientCert}
	}
	return c
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func writePEM(t testing.TB, path string, key *ecdsa.PrivateKey, der []byte) {
	var out []byte
	if key != nil {
		kb, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		out = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb})
	}
	out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
}
