package ktest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
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
	f := &TLSFiles{CA: filepath.Join(dir, "ca.pem"), Broker: filepath.Join(dir, "broker.pem"), Client: filepath.Join(dir, "client.pem"), Pool: x509.NewCertPool()}
	f.Pool.AddCert(caCert)
	writePEM(t, f.CA, nil, caDER)
	leaf := func(serial int64, cn string, path string, usages ...x509.ExtKeyUsage) tls.Certificate {
		key := newKey(t)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial),
			Subject:      pkix.Name{CommonName: cn},
			NotBefore:    time.Now().Add(-time.Hour),
			NotAfter:     time.Now().Add(24 * time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  usages,
			DNSNames:     []string{"localhost"},
			IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		writePEM(t, path, key, der)
		return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	}
	// A broker's certificate is also its client certificate when it
	// connects to the others (inter-broker and controller listeners).
	leaf(2, "broker", f.Broker, x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth)
	f.ClientCert = leaf(3, "client", f.Client, x509.ExtKeyUsageClientAuth)
	return f
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
