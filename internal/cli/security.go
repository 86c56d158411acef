package cli

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// security holds the connection-security flags every command takes.
type security struct {
	tls              bool
	ca, cert, server string
	mechanism        string
	user, password   string
	// Built by prepare: the client options, and what they turn on.
	opts          []kgo.Opt
	tlsOn, saslOn bool
}

// securityFlags are the names leafHelp lists among the global flags.
var securityFlags = []string{"tls", "tls-ca", "tls-cert", "tls-server-name", "sasl-mechanism", "sasl-user", "sasl-password"}

// saslMechanisms are what --sasl-mechanism accepts.
const saslMechanisms = "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"

// flags declares the security flags. Their environment defaults are
// applied after parsing (prepare), so that no password shows as a
// flag's default in the help.
func (s *security) flags(fs *flag.FlagSet) {
	fs.BoolVar(&s.tls, "tls", false, "connect with TLS (default $GREGOR_TLS; implied by the other --tls flags)")
	fs.StringVar(&s.ca, "tls-ca", "", "trust the CA certificates in PEM `FILE` (default $GREGOR_TLS_CA, else the system's)")
	fs.StringVar(&s.cert, "tls-cert", "", "PEM `FILE` with the client's private key and certificate chain (default $GREGOR_TLS_CERT)")
	fs.StringVar(&s.server, "tls-server-name", "", "verify the brokers' certificates for `NAME` (default: each broker's host)")
	fs.StringVar(&s.mechanism, "sasl-mechanism", "", "authenticate with SASL mechanism `NAME`: "+saslMechanisms+" (default $GREGOR_SASL_MECHANISM)")
	fs.StringVar(&s.user, "sasl-user", "", "the SASL user's `NAME` (default $GREGOR_SASL_USER)")
	fs.StringVar(&s.password, "sasl-password", "", "the SASL user's `PASSWORD` (default $GREGOR_SASL_PASSWORD; prefer it: others can see command lines)")
}

// prepare fills the flags not given from the environment, checks them
// and builds the client options: mistakes are usage errors.
func (s *security) prepare(fs *flag.FlagSet, getenv func(string) string) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	fromEnv := func(name, env string, dst *string) {
		if v := getenv(env); v != "" && !given[name] {
			*dst = v
		}
	}
	fromEnv("tls-ca", "GREGOR_TLS_CA", &s.ca)
	fromEnv("tls-cert", "GREGOR_TLS_CERT", &s.cert)
	fromEnv("sasl-mechanism", "GREGOR_SASL_MECHANISM", &s.mechanism)
	fromEnv("sasl-user", "GREGOR_SASL_USER", &s.user)
	fromEnv("sasl-password", "GREGOR_SASL_PASSWORD", &s.password)
	if v := getenv("GREGOR_TLS"); v != "" && !given["tls"] {
		on, err := strconv.ParseBool(v)
		if err != nil {
			return usagef("$GREGOR_TLS=%q: want 1, true, 0 or false", v)
		}
		s.tls = on
	}
	s.opts = nil
	if s.tls || s.ca != "" || s.cert != "" || s.server != "" {
		cfg, err := s.tlsConfig()
		if err != nil {
			return err
		}
		s.tlsOn = true
		s.opts = append(s.opts, kgo.DialTLSConfig(cfg))
	}
	mech, err := s.sasl()
	if err != nil {
		return err
	}
	if mech != nil {
		s.saslOn = true
		s.opts = append(s.opts, kgo.SASL(mech))
	}
	return nil
}

// tlsConfig builds the TLS configuration. With no ServerName, franz-go
// verifies each broker's certificate for the host it dials.
func (s *security) tlsConfig() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: s.server}
	if s.ca != "" {
		pem, err := os.ReadFile(s.ca)
		if err != nil {
			return nil, usagef("--tls-ca: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, usagef("--tls-ca %s: no PEM certificate in it", s.ca)
		}
		cfg.RootCAs = pool
	}
	if s.cert != "" {
		pem, err := os.ReadFile(s.cert)
		if err != nil {
			return nil, usagef("--tls-cert: %v", err)
		}
		// One file holds both, as ssl.keystore.location does: the
		// key pair takes the CERTIFICATE blocks as the chain and the
		// PRIVATE KEY block as the key.
		pair, err := tls.X509KeyPair(pem, pem)
		if err != nil {
			return nil, usagef("--tls-cert %s: want a PEM private key and certificate: %s", s.cert, strings.TrimPrefix(err.Error(), "tls: "))
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// sasl returns the SASL mechanism the flags ask for, nil for none.
func (s *security) sasl() (sasl.Mechanism, error) {
	if s.mechanism == "" {
		switch {
		case s.user != "":
			return nil, usagef("--sasl-user needs --sasl-mechanism (%s)", saslMechanisms)
		case s.password != "":
			return nil, usagef("--sasl-password needs --sasl-mechanism (%s) and --sasl-user", saslMechanisms)
		}
		return nil, nil
	}
	s.mechanism = strings.ToUpper(s.mechanism)
	var mech func() sasl.Mechanism
	switch s.mechanism {
	case "PLAIN":
		mech = func() sasl.Mechanism { return plain.Auth{User: s.user, Pass: s.password}.AsMechanism() }
	case "SCRAM-SHA-256":
		mech = func() sasl.Mechanism { return scram.Auth{User: s.user, Pass: s.password}.AsSha256Mechanism() }
	case "SCRAM-SHA-512":
		mech = func() sasl.Mechanism { return scram.Auth{User: s.user, Pass: s.password}.AsSha512Mechanism() }
	default:
		return nil, usagef("--sasl-mechanism %q: want %s", s.mechanism, saslMechanisms)
	}
	if s.user == "" || s.password == "" {
		return nil, usagef("--sasl-mechanism %s needs --sasl-user and --sasl-password (or $GREGOR_SASL_USER and $GREGOR_SASL_PASSWORD)", s.mechanism)
	}
	return mech(), nil
}

// connectFailed explains why the first request failed although a broker
// was reached: authentication (exit status 4, naming the user and the
// mechanism), or TLS on one side only or an untrusted certificate, with
// the flags that set them.
func (s *security) connectFailed(err error) error {
	var ke *kerr.Error
	if errors.As(err, &ke) && isAuthError(ke) && s.saslOn {
		return &authError{user: s.user, mechanism: s.mechanism, ke: ke, err: err}
	}
	var verify *tls.CertificateVerificationError
	var eof *kgo.ErrFirstReadEOF
	hint := ""
	switch {
	case errors.As(err, &verify):
		hint = "--tls-ca trusts a CA, --tls-server-name sets the name verified"
	case errors.As(err, &eof) && !s.tlsOn && strings.Contains(eof.Error(), "TLS"):
		hint = "--tls connects with TLS"
	case errors.As(err, &eof) && !s.saslOn && strings.Contains(eof.Error(), "SASL"):
		hint = "--sasl-mechanism, --sasl-user and --sasl-password authenticate"
	case s.tlsOn && strings.HasPrefix(err.Error(), "unable to dial") && (errors.As(err, &eof) || errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)):
		hint = "does the listener speak TLS?"
	}
	if hint != "" {
		return &hintError{err: err, hint: hint}
	}
	return err
}

// authError is a failed SASL authentication, naming who tried how; it
// unwraps to the Kafka error (exit status 4).
type authError struct {
	user, mechanism string
	ke              *kerr.Error
	err             error
}

func (e *authError) Error() string {
	// kerr's text is "NAME: description", and franz-go adds the
	// broker's message: keep the name and the broker's message.
	text := e.err.Error()
	if msg, ok := strings.CutPrefix(text, e.ke.Error()+": "); ok {
		text = e.ke.Message + ": " + msg
	}
	switch e.ke {
	case kerr.SaslAuthenticationFailed:
		return fmt.Sprintf("cannot authenticate as %q with %s: %s", e.user, e.mechanism, text)
	case kerr.UnsupportedSaslMechanism:
		return fmt.Sprintf("the listener does not offer %s: %s", e.mechanism, text)
	case kerr.IllegalSaslState:
		return fmt.Sprintf("cannot authenticate with %s (does the listener take SASL?): %s", e.mechanism, text)
	}
	return text
}

func (e *authError) Unwrap() error { return e.err }

// hintError adds what to try to an error.
type hintError struct {
	err  error
	hint string
}

func (e *hintError) Error() string { return e.err.Error() + " (" + e.hint + ")" }
func (e *hintError) Unwrap() error { return e.err }
