package auth

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
	"hash"
)

// Credential is what the broker stores for one user and SCRAM mechanism
// (never the password).
type Credential struct {
	Mechanism  string // ScramSHA256 or ScramSHA512
	Salt       []byte
	Iterations int32
	StoredKey  []byte // H(ClientKey)
	ServerKey  []byte // HMAC(SaltedPassword, "Server Key")
}

// Iteration counts Kafka accepts for SCRAM credentials, and the count
// NewCredential uses when given 0.
const (
	MinIterations     = 4096
	MaxIterations     = 16384
	DefaultIterations = 4096
)

// saltLen is the length of the random salt NewCredential generates.
const saltLen = 32

// hashes maps each SCRAM mechanism to its hash function.
var hashes = map[string]func() hash.Hash{
	ScramSHA256: sha256.New,
	ScramSHA512: sha512.New,
}

// NewCredential derives a credential from a password: SaltedPassword =
// PBKDF2-HMAC-H(password, salt, iterations), H being the mechanism's hash.
// A nil salt gets saltLen random bytes; an empty non-nil one is an error.
// Iterations 0 means DefaultIterations; other counts outside
// [MinIterations, MaxIterations] and unknown mechanisms are errors.
func NewCredential(mechanism, password string, salt []byte, iterations int32) (Credential, error) {
	h, ok := hashes[mechanism]
	if !ok {
		return Credential{}, fmt.Errorf("auth: unsupported SCRAM mechanism %q", mechanism)
	}
	if iterations == 0 {
		iterations = DefaultIterations
	}
	if err := checkIterations(iterations); err != nil {
		return Credential{}, err
	}
	if salt == nil {
		salt = make([]byte, saltLen)
		rand.Read(salt) // never fails (crypto/rand crashes the program instead)
	}
	if len(salt) == 0 {
		return Credential{}, errors.New("auth: empty SCRAM salt")
	}
	salted, err := saltPassword(h, password, salt, iterations)
	if err != nil {
		return Credential{}, err
	}
	return CredentialFromSalted(mechanism, salt, salted, iterations)
}

// CredentialFromSalted derives StoredKey and ServerKey from an already
// salted password, as Kafka's AlterUserScramCredentials request carries it
// (salt, salted_password, iterations). A salted password whose length is
// not the mechanism's hash size, an empty salt, out-of-range iterations
// and unknown mechanisms are errors. The credential does not alias salt.
func CredentialFromSalted(mechanism string, salt, saltedPassword []byte, iterations int32) (Credential, error) {
	h, ok := hashes[mechanism]
	if !ok {
		return Credential{}, fmt.Errorf("auth: unsupported SCRAM mechanism %q", mechanism)
	}
	if err := checkIterations(iterations); err != nil {
		return Credential{}, err
	}
	if len(salt) == 0 {
		return Credential{}, errors.New("auth: empty SCRAM salt")
	}
	if size := h().Size(); len(saltedPassword) != size {
		return Credential{}, fmt.Errorf("auth: %s salted password is %d bytes, want %d", mechanism, len(saltedPassword), size)
	}
	clientKey := hmacSum(h, saltedPassword, []byte("Client Key"))
	return Credential{
		Mechanism:  mechanism,
		Salt:       append([]byte(nil), salt...),
		Iterations: iterations,
		StoredKey:  hashSum(h, clientKey),
		ServerKey:  hmacSum(h, saltedPassword, []byte("Server Key")),
	}, nil
}

func checkIterations(iterations int32) error {
	if iterations < MinIterations || iterations > MaxIterations {
		return fmt.Errorf("auth: SCRAM iterations %d outside [%d, %d]", iterations, MinIterations, MaxIterations)
	}
	return nil
}

// usable reports whether c can verify a login, returning its hash: a
// known mechanism, a salt, iterations in range and keys of the hash's
// size. Credentials from NewCredential and CredentialFromSalted always
// are; the check keeps a corrupt store from causing panics or endless
// PBKDF2 runs.
func (c *Credential) usable() (func() hash.Hash, bool) {
	h, ok := hashes[c.Mechanism]
	if !ok || len(c.Salt) == 0 || checkIterations(c.Iterations) != nil {
		return nil, false
	}
	size := h().Size()
	if len(c.StoredKey) != size || len(c.ServerKey) != size {
		return nil, false
	}
	return h, true
}

// saltPassword is SCRAM's Hi(password, salt, i), which is PBKDF2 with
// HMAC-H and a key the size of H's output.
func saltPassword(h func() hash.Hash, password string, salt []byte, iterations int32) ([]byte, error) {
	key, err := pbkdf2.Key(h, password, salt, int(iterations), h().Size())
	if err != nil { // only in FIPS 140-only mode, for short passwords or salts
		return nil, fmt.Errorf("auth: pbkdf2: %w", err)
	}
	return key, nil
}

func hmacSum(h func() hash.Hash, key, msg []byte) []byte {
	m := hmac.New(h, key)
	m.Write(msg)
	return m.Sum(nil)
}

func hashSum(h func() hash.Hash, msg []byte) []byte {
	d := h()
	d.Write(msg)
	return d.Sum(nil)
}
