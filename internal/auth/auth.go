// Package auth implements the server side of the SASL mechanisms a Kafka
// broker offers: PLAIN (RFC 4616) and SCRAM-SHA-256 / SCRAM-SHA-512
// (RFC 5802, RFC 7677).
//
// The broker stores only SCRAM credentials (salt, iteration count, StoredKey
// and ServerKey; never the password), as Kafka does: NewCredential derives
// one from a password and CredentialFromSalted from the salted password an
// AlterUserScramCredentials request carries. PLAIN logins are verified
// against the same SCRAM credentials.
//
// A Session runs one exchange on one connection: the caller feeds it the
// bytes of each SaslAuthenticate request and sends back what Step returns.
// Step's error messages are meant for the client (Kafka's wording, as in
// SASL_AUTHENTICATION_FAILED responses); they never contain passwords and
// never tell an unknown user from a wrong password.
package auth

import (
	"errors"
	"fmt"
)

// Mechanism names, as clients request them in SaslHandshake.
const (
	Plain       = "PLAIN"
	ScramSHA256 = "SCRAM-SHA-256"
	ScramSHA512 = "SCRAM-SHA-512"
)

// Mechanisms lists the supported mechanism names in this order: PLAIN,
// SCRAM-SHA-256, SCRAM-SHA-512. The slice is the caller's to modify.
func Mechanisms() []string {
	return []string{Plain, ScramSHA256, ScramSHA512}
}

// ScramMechanism reports whether name is SCRAM-SHA-256 or SCRAM-SHA-512.
func ScramMechanism(name string) bool {
	return name == ScramSHA256 || name == ScramSHA512
}

// Lookup returns a user's stored credentials (any mechanisms), nil if the
// user is unknown. It may be called from any goroutine.
type Lookup func(user string) []Credential

// Session is one authentication exchange on one connection. A Session is
// not safe for concurrent use.
type Session interface {
	// Step consumes the client's next message and returns the server's
	// reply (may be empty), and done=true when authentication succeeded
	// with this step. An error means authentication failed: the caller
	// answers SASL_AUTHENTICATION_FAILED with err.Error() as the message
	// and closes the connection. Error messages do not reveal whether
	// the user exists and do not contain passwords. Once a step failed or
	// the exchange is done, every further Step returns an error.
	Step(clientMsg []byte) (serverMsg []byte, done bool, err error)
	// User is the authenticated user name once done (the SCRAM/PLAIN
	// authentication identity, unescaped), "" before.
	User() string
}

// NewSession starts an exchange for mechanism (PLAIN, SCRAM-SHA-256 or
// SCRAM-SHA-512); an unknown mechanism or a nil lookup is an error.
func NewSession(mechanism string, lookup Lookup) (Session, error) {
	if lookup == nil {
		return nil, errors.New("auth: nil lookup")
	}
	switch mechanism {
	case Plain:
		return &plainSession{lookup: lookup}, nil
	case ScramSHA256, ScramSHA512:
		return &scramSession{mechanism: mechanism, hash: hashes[mechanism], lookup: lookup}, nil
	}
	return nil, fmt.Errorf("auth: unsupported SASL mechanism %q", mechanism)
}

// errFinished is returned by Step after the exchange ended, successfully or
// not.
var errFinished = errors.New("Authentication failed: SASL exchange already finished")
