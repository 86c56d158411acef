package auth

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/gregor-streaming/gregor/internal/config"
)

// TLS configurations from a listener's ssl.* properties, as Kafka reads
// them: get returns one property's value for the listener (its
// listener.name.<name>.ssl.* override, else the broker-wide one).
//
// A listener serves clients with ServerTLS. A broker connecting to
// another broker's listener (the inter-broker listener) uses ClientTLS
// with the same properties, as Kafka's brokers use one listener's
// keystore and truststore both ways; the controller listener, served and
// dialed by the same Raft transport, uses MutualTLS.

// ServerTLS returns the TLS configuration of a listener serving clients:
// its keystore, ssl.enabled.protocols, and ssl.client.auth with the
// truststore's CAs signing client certificates.
func ServerTLS(get func(name string) string) (*tls.Config, error) {
	tc := &tls.Config{}
	ks, err := keystoreFrom(get)
	if err != nil {
		return nil, err
	}
	if ks == nil {
		return nil, fmt.Errorf("%w: an SSL listener needs ssl.keystore.location, or ssl.keystore.certificate.chain and ssl.keystore.key", config.ErrInvalid)
	}
	tc.GetCertificate = ks.certificate
	if tc.MinVersion, tc.MaxVersion, err = tlsVersions(get("ssl.enabled.protocols")); err != nil {
		return nil, err
	}
	switch get("ssl.client.auth") {
	case "requested":
		tc.ClientAuth = tls.VerifyClientCertIfGiven
	case "required":
		tc.ClientAuth = tls.RequireAndVerifyClientCert
	}
	if tc.ClientCAs, err = truststore(get); err != nil {
		return nil, err
	}
	if tc.ClientCAs == nil && tc.ClientAuth != tls.NoClientCert {
		return nil, fmt.Errorf("%w: ssl.client.auth=%s needs ssl.truststore.location or ssl.truststore.certificates", config.ErrInvalid, get("ssl.client.auth"))
	}
	return tc, nil
}

// ClientTLS returns the TLS configuration a broker connects to another
// broker's listener with: the truststore's CAs verify the other's
// certificate (the system's CAs without a truststore, as a JVM's default
// truststore), whose names must include the host connected to unless
// ssl.endpoint.identification.algorithm is empty; the keystore, when
// set, is this broker's certificate for a listener that asks for one
// (ssl.client.auth); ssl.enabled.protocols bounds the versions. The
// caller sets ServerName per connection (or leaves it to tls.Dialer).
func ClientTLS(get func(name string) string) (*tls.Config, error) {
	tc := &tls.Config{}
	var err error
	if tc.MinVersion, tc.MaxVersion, err = tlsVersions(get("ssl.enabled.protocols")); err != nil {
		return nil, err
	}
	ks, err := keystoreFrom(get)
	if err != nil {
		return nil, err
	}
	if ks != nil {
		tc.GetClientCertificate = ks.clientCertificate
	}
	if tc.RootCAs, err = truststore(get); err != nil {
		return nil, err
	}
	switch alg := get("ssl.endpoint.identification.algorithm"); strings.ToLower(alg) {
	case "https":
	case "":
		// The chain is still verified, against RootCAs; only the host
		// name is not (Kafka's empty algorithm).
		roots := tc.RootCAs
		tc.InsecureSkipVerify = true
		tc.VerifyConnection = func(cs tls.ConnectionState) error {
			return verifyChain(cs.PeerCertificates, roots, x509.ExtKeyUsageServerAuth)
		}
	default:
		return nil, fmt.Errorf("%w: ssl.endpoint.identification.algorithm=%q: want https or empty", config.ErrInvalid, alg)
	}
	return tc, nil
}

// MutualTLS returns a TLS configuration for connections both served and
// dialed by one transport (the controller listener's Raft transport):
// ServerTLS and ClientTLS in one, with certificates required both ways,
// whatever ssl.client.auth says, so that only holders of a certificate
// the truststore's CAs signed connect. The truststore is required: it
// is what lets a node in.
func MutualTLS(get func(name string) string) (*tls.Config, error) {
	tc, err := ServerTLS(get)
	if err != nil {
		return nil, err
	}
	if tc.ClientCAs == nil {
		return nil, fmt.Errorf("%w: mutual TLS needs ssl.truststore.location or ssl.truststore.certificates: the CAs whose certificates are let in", config.ErrInvalid)
	}
	cc, err := ClientTLS(get)
	if err != nil {
		return nil, err
	}
	tc.ClientAuth = tls.RequireAndVerifyClientCert
	tc.RootCAs, tc.GetClientCertificate = cc.RootCAs, cc.GetClientCertificate
	tc.InsecureSkipVerify, tc.VerifyConnection = cc.InsecureSkipVerify, nil
	if cc.VerifyConnection != nil {
		// Without host name checks: the chain of the side that
		// dialed is verified by ClientAuth, that of the side dialed
		// here. A server's VerifyConnection runs too, on a chain
		// already verified against ClientCAs.
		roots := tc.RootCAs
		tc.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.VerifiedChains) > 0 {
				return nil
			}
			return verifyChain(cs.PeerCertificates, roots, x509.ExtKeyUsageServerAuth)
		}
	}
	return tc, nil
}

// verifyChain verifies a peer's certificate chain against roots (the
// system's when nil) for usage, without checking a host name.
func verifyChain(certs []*x509.Certificate, roots *x509.CertPool, usage x509.ExtKeyUsage) error {
	if len(certs) == 0 {
		return errors.New("tls: no certificate from the peer")
	}
	opts := x509.VerifyOptions{Roots: roots, Intermediates: x509.NewCertPool(), KeyUsages: []x509.ExtKeyUsage{usage}}
	for _, c := range certs[1:] {
		opts.Intermediates.AddCert(c)
	}
	_, err := certs[0].Verify(opts)
	return err
}

// keystoreFrom returns the listener's keystore: ssl.keystore.location
// (reloaded when it changes), or the inline ssl.keystore.key and
// ssl.keystore.certificate.chain; nil when none is set.
func keystoreFrom(get func(name string) string) (*keystore, error) {
	if loc := get("ssl.keystore.location"); loc != "" {
		return loadKeystore(loc)
	}
	certPEM, keyPEM := []byte(get("ssl.keystore.certificate.chain")), []byte(get("ssl.keystore.key"))
	if len(certPEM) == 0 && len(keyPEM) == 0 {
		return nil, nil
	}
	if len(certPEM) == 0 || len(keyPEM) == 0 {
		return nil, fmt.Errorf("%w: ssl.keystore.certificate.chain and ssl.keystore.key go together", config.ErrInvalid)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("ssl keystore: %w", err)
	}
	return &keystore{cert: &cert}, nil
}

// truststore returns the CAs of ssl.truststore.location or
// ssl.truststore.certificates; nil when neither is set.
func truststore(get func(name string) string) (*x509.CertPool, error) {
	var caPEM []byte
	if loc := get("ssl.truststore.location"); loc != "" {
		var err error
		if caPEM, err = os.ReadFile(loc); err != nil {
			return nil, fmt.Errorf("ssl.truststore.location: %w", err)
		}
	} else {
		caPEM = []byte(get("ssl.truststore.certificates"))
	}
	if len(caPEM) == 0 {
		return nil, nil
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("ssl truststore: no PEM certificate found")
	}
	return pool, nil
}

// tlsVersions maps ssl.enabled.protocols to the lowest and highest TLS
// version offered. TLSv1 and TLSv1.1 are refused: Go's crypto/tls
// serves them only with an insecure opt-in, and Kafka dropped them from
// its defaults.
func tlsVersions(list string) (lo, hi uint16, err error) {
	for _, p := range config.SplitList(list) {
		var v uint16
		switch strings.ToUpper(p) {
		case "TLSV1.2":
			v = tls.VersionTLS12
		case "TLSV1.3":
			v = tls.VersionTLS13
		default:
			return 0, 0, fmt.Errorf("%w: ssl.enabled.protocols: %q (supported: TLSv1.2, TLSv1.3)", config.ErrInvalid, p)
		}
		if lo == 0 || v < lo {
			lo = v
		}
		hi = max(hi, v)
	}
	if lo == 0 {
		return 0, 0, fmt.Errorf("%w: ssl.enabled.protocols is empty", config.ErrInvalid)
	}
	return lo, hi, nil
}

// keystoreCheckEvery is how often a handshake looks whether the
// keystore file changed.
var keystoreCheckEvery = 10 * time.Second

// keystore is ssl.keystore.location, reloaded when the file changes, so
// a renewed certificate is served to new connections without a restart
// (Kafka reloads through a dynamic config update; tools such as
// cert-manager replace the file in place). A file that does not parse
// keeps the certificate in use. An inline keystore (no path) never
// changes.
type keystore struct {
	path string

	mu      sync.Mutex
	cert    *tls.Certificate
	pem     []byte // the file's content that cert was parsed from
	checked time.Time
}

func loadKeystore(path string) (*keystore, error) {
	ks := &keystore{path: path}
	if err := ks.reload(); err != nil {
		return nil, err
	}
	return ks, nil
}

// reload rereads the file and parses it when its content changed (a
// few KiB: cheaper and surer than trusting modification times). Called
// with mu held, or before ks is shared.
func (ks *keystore) reload() error {
	b, err := os.ReadFile(ks.path)
	if err != nil {
		return fmt.Errorf("ssl.keystore.location: %w", err)
	}
	if ks.cert != nil && bytes.Equal(b, ks.pem) {
		return nil
	}
	cert, err := tls.X509KeyPair(b, b)
	if err != nil {
		return fmt.Errorf("ssl keystore %s: %w", ks.path, err)
	}
	ks.cert, ks.pem = &cert, b
	return nil
}

// current returns the certificate, reloading the file at most every
// keystoreCheckEvery.
func (ks *keystore) current() *tls.Certificate {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	if now := time.Now(); ks.path != "" && now.Sub(ks.checked) >= keystoreCheckEvery {
		ks.checked = now
		_ = ks.reload() // a broken file keeps the certificate in use
	}
	return ks.cert
}

func (ks *keystore) certificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return ks.current(), nil
}

func (ks *keystore) clientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return ks.current(), nil
}
