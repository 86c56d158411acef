package auth

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"unicode/utf8"
)

// PLAIN failures, worded as Kafka's PlainSaslServer words them.
var (
	errPlainNoUser      = errors.New("Authentication failed: username not specified")
	errPlainNoPassword  = errors.New("Authentication failed: password not specified")
	errPlainAuthzid     = errors.New("Authentication failed: Client requested an authorization id that is different from username")
	errPlainCredentials = errors.New("Authentication failed: Invalid username or password")
	errPlainUTF8        = errors.New("Invalid SASL/PLAIN response: not valid UTF-8")
)

// plainSession is a PLAIN exchange: one client message, an empty reply.
type plainSession struct {
	lookup   Lookup
	user     string
	finished bool
}

func (s *plainSession) User() string { return s.user }

// Step verifies "authzid NUL authcid NUL passwd".
func (s *plainSession) Step(msg []byte) ([]byte, bool, error) {
	if s.finished {
		return nil, false, errFinished
	}
	s.finished = true
	user, err := s.verify(msg)
	if err != nil {
		return nil, false, err
	}
	s.user = user
	return []byte{}, true, nil
}

func (s *plainSession) verify(msg []byte) (string, error) {
	// Counted before splitting: a token of 512 KiB of NULs split into
	// half a million slices allocated 12 MB before the check.
	if n := bytes.Count(msg, []byte{0}) + 1; n != 3 {
		return "", fmt.Errorf("Invalid SASL/PLAIN response: expected 3 tokens, got %d", n)
	}
	tokens := bytes.Split(msg, []byte{0})
	if !utf8.Valid(msg) {
		return "", errPlainUTF8
	}
	authzid, user, password := string(tokens[0]), string(tokens[1]), string(tokens[2])
	if user == "" {
		return "", errPlainNoUser
	}
	if password == "" {
		return "", errPlainNoPassword
	}
	if authzid != "" && authzid != user {
		return "", errPlainAuthzid
	}
	if !verifyPassword(s.lookup(user), password) {
		return "", errPlainCredentials
	}
	return user, nil
}

// dummySalt salts the PBKDF2 run verifyPassword makes for unknown users,
// so that they take about as long to reject as wrong passwords.
var dummySalt = make([]byte, saltLen)

// verifyPassword checks password against the first of creds: it salts the
// password with that credential's salt, iterations and hash, and compares
// H(HMAC(SaltedPassword, "Client Key")) with StoredKey in constant time.
func verifyPassword(creds []Credential, password string) bool {
	if len(creds) == 0 {
		saltPassword(sha256.New, password, dummySalt, DefaultIterations)
		return false
	}
	c := &creds[0]
	h, ok := c.usable()
	if !ok {
		saltPassword(sha256.New, password, dummySalt, DefaultIterations)
		return false
	}
	salted, err := saltPassword(h, password, c.Salt, c.Iterations)
	if err != nil {
		return false
	}
	clientKey := hmacSum(h, salted, []byte("Client Key"))
	return hmac.Equal(hashSum(h, clientKey), c.StoredKey)
}
