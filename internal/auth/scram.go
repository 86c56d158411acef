package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"
	"unicode/utf8"
)

// SCRAM failures that are not about the credentials. Credential failures
// (unknown user, no credential for the mechanism, wrong proof) all get
// scramSession.errInvalid, the message Kafka's SaslServerAuthenticator
// sends for them.
var (
	errChannelBinding = errors.New("Authentication failed: SCRAM channel binding is not supported")
	errMandatoryExt   = errors.New("Authentication failed: mandatory SCRAM extensions are not supported")
	errTokenAuth      = errors.New("Authentication failed: delegation token authentication (tokenauth) is not supported")
	errScramAuthzid   = errors.New("Authentication failed: Client requested an authorization id that is different from username")
)

// serverNonceLen is how many random bytes the server adds to the client's
// nonce (base64-encoded, 32 characters).
const serverNonceLen = 24

// maxAttrs bounds the attributes of a client message: splitting 512 KiB
// of commas allocated 9 MB per step before any check.
const maxAttrs = 64

// newServerNonce returns the server's part of the combined nonce: printable
// ASCII without commas. Tests replace it to reproduce known exchanges.
var newServerNonce = func() string {
	b := make([]byte, serverNonceLen)
	rand.Read(b) // never fails (crypto/rand crashes the program instead)
	return base64.StdEncoding.EncodeToString(b)
}

type scramState int8

const (
	awaitClientFirst scramState = iota
	awaitClientFinal
	finished // succeeded or failed
)

// scramSession is the server side of one RFC 5802 exchange:
//
//	client-first  n,[a=authzid],n=user,r=cnonce[,ext...]
//	server-first  r=cnonce+snonce,s=salt,i=iterations
//	client-final  c=base64(gs2-header),r=cnonce+snonce[,ext...],p=proof
//	server-final  v=server-signature
type scramSession struct {
	mechanism string
	hash      func() hash.Hash
	lookup    Lookup

	state scramState
	user  string // set once done

	// Remembered from the first step for the final one.
	claimedUser     string
	cred            Credential
	gs2Header       string
	clientFirstBare string
	serverFirst     string
	nonce           string // client nonce + server nonce
}

func (s *scramSession) User() string { return s.user }

func (s *scramSession) Step(msg []byte) ([]byte, bool, error) {
	switch s.state {
	case awaitClientFirst:
		reply, err := s.clientFirst(string(msg))
		if err != nil {
			s.state = finished
			return nil, false, err
		}
		s.state = awaitClientFinal
		return reply, false, nil
	case awaitClientFinal:
		s.state = finished
		reply, err := s.clientFinal(string(msg))
		if err != nil {
			return nil, false, err
		}
		return reply, true, nil
	}
	return nil, false, errFinished
}

// errInvalid is the failure for bad credentials, identical whether the
// user is unknown, lacks a credential for the mechanism, or sent a wrong
// proof.
func (s *scramSession) errInvalid() error {
	return errors.New("Authentication failed during authentication due to invalid credentials with SASL mechanism " + s.mechanism)
}

func (s *scramSession) malformed(which, reason string) error {
	return fmt.Errorf("Authentication failed: invalid %s client-%s message: %s", s.mechanism, which, reason)
}

// clientFirst parses client-first-message (RFC 5802 section 7), looks the
// user up and returns server-first-message.
func (s *scramSession) clientFirst(msg string) ([]byte, error) {
	bad := func(reason string) error { return s.malformed("first", reason) }
	if !utf8.ValidString(msg) || strings.IndexByte(msg, 0) >= 0 {
		return nil, bad("not valid UTF-8 without NUL")
	}

	// gs2-header = gs2-cbind-flag "," [ authzid ] ","
	flag, rest, ok := strings.Cut(msg, ",")
	if !ok {
		return nil, bad("missing GS2 header")
	}
	switch {
	case flag == "n", flag == "y":
		// No channel binding: "y" means the client could do it but
		// thinks we cannot, which is right (we offer no -PLUS mechanism).
	case strings.HasPrefix(flag, "p="):
		return nil, errChannelBinding
	default:
		return nil, bad("invalid channel binding flag")
	}
	authzField, bare, ok := strings.Cut(rest, ",")
	if !ok {
		return nil, bad("missing GS2 header")
	}
	var authzid string
	if authzField != "" {
		name, ok := strings.CutPrefix(authzField, "a=")
		if !ok {
			return nil, bad("invalid authorization identity")
		}
		if authzid, ok = unescapeName(name); !ok {
			return nil, bad("invalid authorization identity")
		}
	}
	gs2Header := msg[:len(msg)-len(bare)]

	// client-first-message-bare = [reserved-mext ","] username "," nonce ["," extensions]
	if strings.Count(bare, ",") >= maxAttrs {
		return nil, bad("too many attributes")
	}
	attrs := strings.Split(bare, ",")
	if strings.HasPrefix(attrs[0], "m=") {
		return nil, errMandatoryExt
	}
	name, ok := strings.CutPrefix(attrs[0], "n=")
	if !ok {
		return nil, bad("missing user name")
	}
	user, ok := unescapeName(name)
	if !ok {
		return nil, bad("invalid user name")
	}
	if len(attrs) < 2 {
		return nil, bad("missing nonce")
	}
	clientNonce, ok := strings.CutPrefix(attrs[1], "r=")
	if !ok || !validNonce(clientNonce) {
		return nil, bad("missing or invalid nonce")
	}
	for _, ext := range attrs[2:] {
		key, value, ok := parseExtension(ext)
		if !ok {
			return nil, bad("invalid extension")
		}
		// KIP-48: the user and password are a delegation token's.
		if key == "tokenauth" && strings.EqualFold(value, "true") {
			return nil, errTokenAuth
		}
	}
	if authzid != "" && authzid != user {
		return nil, errScramAuthzid
	}

	cred, ok := s.credential(user)
	if !ok {
		return nil, s.errInvalid()
	}
	s.claimedUser = user
	s.cred = cred
	s.gs2Header = gs2Header
	s.clientFirstBare = bare
	s.nonce = clientNonce + newServerNonce()
	s.serverFirst = "r=" + s.nonce +
		",s=" + base64.StdEncoding.EncodeToString(cred.Salt) +
		",i=" + strconv.Itoa(int(cred.Iterations))
	return []byte(s.serverFirst), nil
}

// credential returns user's first credential for the session's mechanism,
// if there is one and it is usable.
func (s *scramSession) credential(user string) (Credential, bool) {
	for _, c := range s.lookup(user) {
		if c.Mechanism == s.mechanism {
			_, ok := c.usable()
			return c, ok
		}
	}
	return Credential{}, false
}

// clientFinal parses client-final-message, verifies the client's proof and
// returns server-final-message.
func (s *scramSession) clientFinal(msg string) ([]byte, error) {
	bad := func(reason string) error { return s.malformed("final", reason) }
	if !utf8.ValidString(msg) || strings.IndexByte(msg, 0) >= 0 {
		return nil, bad("not valid UTF-8 without NUL")
	}

	// client-final-message = client-final-message-without-proof "," proof
	i := strings.LastIndex(msg, ",p=")
	if i < 0 {
		return nil, bad("missing proof")
	}
	withoutProof, proofText := msg[:i], msg[i+len(",p="):]

	// client-final-message-without-proof = channel-binding "," nonce ["," extensions]
	if strings.Count(withoutProof, ",") >= maxAttrs {
		return nil, bad("too many attributes")
	}
	attrs := strings.Split(withoutProof, ",")
	cb, ok := strings.CutPrefix(attrs[0], "c=")
	if !ok {
		return nil, bad("missing channel binding")
	}
	if gs2, ok := decodeBase64(cb); !ok || string(gs2) != s.gs2Header {
		return nil, bad("channel binding does not match the GS2 header")
	}
	if len(attrs) < 2 {
		return nil, bad("missing nonce")
	}
	// The nonce must end with the combined one, as Kafka's
	// ScramSaslServer checks (endsWith): librdkafka sends its own nonce
	// followed by the whole combined nonce of the server-first message.
	if nonce, ok := strings.CutPrefix(attrs[1], "r="); !ok || !strings.HasSuffix(nonce, s.nonce) {
		return nil, bad("nonce mismatch")
	}
	for _, ext := range attrs[2:] {
		if _, _, ok := parseExtension(ext); !ok {
			return nil, bad("invalid extension")
		}
	}
	proof, ok := decodeBase64(proofText)
	if !ok || len(proof) != len(s.cred.StoredKey) {
		return nil, bad("invalid proof")
	}

	// AuthMessage     = client-first-message-bare "," server-first-message "," client-final-message-without-proof
	// ClientSignature = HMAC(StoredKey, AuthMessage)
	// ClientKey       = ClientProof XOR ClientSignature
	// valid iff H(ClientKey) == StoredKey
	authMessage := []byte(s.clientFirstBare + "," + s.serverFirst + "," + withoutProof)
	clientKey := hmacSum(s.hash, s.cred.StoredKey, authMessage)
	for i := range clientKey {
		clientKey[i] ^= proof[i]
	}
	if !hmac.Equal(hashSum(s.hash, clientKey), s.cred.StoredKey) {
		return nil, s.errInvalid()
	}
	s.user = s.claimedUser
	serverSignature := hmacSum(s.hash, s.cred.ServerKey, authMessage)
	return []byte("v=" + base64.StdEncoding.EncodeToString(serverSignature)), nil
}

// unescapeName decodes a non-empty saslname: "=2C" is ",", "=3D" is "=",
// and any other "=" is malformed. (Commas cannot occur: callers split on
// them.)
func unescapeName(s string) (string, bool) {
	if s == "" {
		return "", false
	}
	if !strings.Contains(s, "=") {
		return s, true
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '=' {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1 : min(i+3, len(s))] {
		case "2C":
			b.WriteByte(',')
		case "3D":
			b.WriteByte('=')
		default:
			return "", false
		}
		i += 2
	}
	return b.String(), true
}

// validNonce reports whether s is a non-empty c-nonce: printable ASCII
// except ",".
func validNonce(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c > 0x7e || c == ',' {
			return false
		}
	}
	return true
}

// parseExtension splits an extension attribute "key=value"; key is ASCII
// letters (RFC 5802 allows one, Kafka's extensions use words).
func parseExtension(s string) (key, value string, ok bool) {
	key, value, ok = strings.Cut(s, "=")
	if !ok || key == "" {
		return "", "", false
	}
	for i := 0; i < len(key); i++ {
		if c := key[i] | 0x20; c < 'a' || c > 'z' {
			return "", "", false
		}
	}
	return key, value, true
}

// decodeBase64 decodes standard, padded base64, rejecting the line breaks
// the decoder would otherwise skip and non-zero trailing bits.
func decodeBase64(s string) ([]byte, bool) {
	if strings.ContainsAny(s, "\r\n") {
		return nil, false
	}
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	return b, err == nil
}
