package auth

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"
)

// RFC 7677 section 3's SCRAM-SHA-256 example.
const (
	rfc7677Salt        = "W22ZaJ0SNY7soEsUEjb6gQ=="
	rfc7677ClientNonce = "rOprNGfwEbeRWgbNEkqO"
	rfc7677ServerNonce = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
	rfc7677Nonce       = rfc7677ClientNonce + rfc7677ServerNonce
	rfc7677ClientFirst = "n,,n=user,r=" + rfc7677ClientNonce
	rfc7677ServerFirst = "r=" + rfc7677Nonce + ",s=" + rfc7677Salt + ",i=4096"
	rfc7677Proof       = "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
	rfc7677ClientFinal = "c=biws,r=" + rfc7677Nonce + ",p=" + rfc7677Proof
	rfc7677ServerFinal = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
)

// rfc7677Users returns a store holding RFC 7677's user (password "pencil")
// and makes the server nonce the RFC's until the test ends.
func rfc7677Users(t testing.TB) users {
	salt, err := base64.StdEncoding.DecodeString(rfc7677Salt)
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewCredential(ScramSHA256, "pencil", salt, 4096)
	if err != nil {
		t.Fatal(err)
	}
	setServerNonce(t, rfc7677ServerNonce)
	return users{"user": {c}}
}

func setServerNonce(t testing.TB, nonce string) {
	saved := newServerNonce
	newServerNonce = func() string { return nonce }
	t.Cleanup(func() { newServerNonce = saved })
}

func TestRFC7677(t *testing.T) {
	s, err := NewSession(ScramSHA256, rfc7677Users(t).lookup)
	if err != nil {
		t.Fatal(err)
	}
	reply, done, err := s.Step([]byte(rfc7677ClientFirst))
	if err != nil || done || string(reply) != rfc7677ServerFirst {
		t.Fatalf("server-first %q, done %v, error %v; want %q", reply, done, err, rfc7677ServerFirst)
	}
	if s.User() != "" {
		t.Errorf("User() = %q before done", s.User())
	}
	reply, done, err = s.Step([]byte(rfc7677ClientFinal))
	if err != nil || !done || string(reply) != rfc7677ServerFinal {
		t.Fatalf("server-final %q, done %v, error %v; want %q", reply, done, err, rfc7677ServerFinal)
	}
	if s.User() != "user" {
		t.Errorf("User() = %q", s.User())
	}
	for _, msg := range []string{rfc7677ClientFinal, rfc7677ClientFirst, ""} {
		if _, done, err := s.Step([]byte(msg)); err == nil || done {
			t.Errorf("Step(%q) after done: done %v, error %v", msg, done, err)
		}
	}
}

func TestServerNonce(t *testing.T) {
	a, b := newServerNonce(), newServerNonce()
	if a == b || !validNonce(a) || len(a) < 32 {
		t.Errorf("server nonces %q, %q", a, b)
	}
	raw, err := base64.StdEncoding.DecodeString(a)
	if err != nil || len(raw) < 24 {
		t.Errorf("server nonce %q: %d bytes, %v", a, len(raw), err)
	}
}

// TestScramAccepted covers client-first variants that must be accepted.
func TestScramAccepted(t *testing.T) {
	u := rfc7677Users(t)
	u["a,b=c"] = u["user"]
	for _, first := range []string{
		"n,,n=user,r=abc",
		"y,,n=user,r=abc",
		"n,a=user,n=user,r=abc",
		"n,,n=user,r=abc,foo=bar",
		"n,,n=user,r=abc,x=y=z,tokenauth=false,e=",
		"n,,n=a=2Cb=3Dc,r=abc",
		"n,a=a=2Cb=3Dc,n=a=2Cb=3Dc,r=abc",
		"n,,n=user,r=!\"#$%&'()*+-./:;<=>?@[\\]^_`{|}~",
	} {
		s, _ := NewSession(ScramSHA256, u.lookup)
		if reply, done, err := s.Step([]byte(first)); err != nil || done || !strings.HasPrefix(string(reply), "r=") {
			t.Errorf("%q: reply %q, done %v, error %v", first, reply, done, err)
		}
	}
}

func TestScramMalformed(t *testing.T) {
	u := rfc7677Users(t)
	u["nocred"] = []Credential{}
	sha512Only, err := NewCredential(ScramSHA512, "pencil", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	u["sha512only"] = []Credential{sha512Only}

	proof, _ := base64.StdEncoding.DecodeString(rfc7677Proof)
	flipped := append([]byte(nil), proof...)
	flipped[7] ^= 0x10
	invalid := "invalid credentials with SASL mechanism SCRAM-SHA-256"

	for _, mech := range []string{ScramSHA256, ScramSHA512} {
		s, _ := NewSession(mech, u.lookup)
		if reply, done, err := s.Step(nil); err == nil || done || reply != nil || !strings.Contains(err.Error(), "missing GS2 header") {
			t.Errorf("%s, empty client-first: reply %q, done %v, error %v", mech, reply, done, err)
		}
	}

	for _, tc := range []struct {
		name  string
		first string // client-first; "" means RFC 7677's
		final string // client-final, sent only if first succeeds
		err   string // the failing step's error contains this
	}{
		{"only NUL", "\x00", "", "not valid UTF-8"},
		{"only flag", "n", "", "missing GS2 header"},
		{"one comma", "n,", "", "missing GS2 header"},
		{"no gs2 header", "n=user,r=abc", "", "invalid channel binding flag"},
		{"bad flag", "x,,n=user,r=abc", "", "invalid channel binding flag"},
		{"bad flag 2", "nn,,n=user,r=abc", "", "invalid channel binding flag"},
		{"channel binding", "p=tls-unique,,n=user,r=abc", "", "channel binding is not supported"},
		{"bad authzid field", "n,b=user,n=user,r=abc", "", "invalid authorization identity"},
		{"empty authzid", "n,a=,n=user,r=abc", "", "invalid authorization identity"},
		{"bad authzid escape", "n,a=us=er,n=user,r=abc", "", "invalid authorization identity"},
		{"other authzid", "n,a=admin,n=user,r=abc", "", "authorization id that is different from username"},
		{"mandatory extension", "n,,m=x,n=user,r=abc", "", "mandatory SCRAM extensions"},
		{"no bare", "n,,", "", "missing user name"},
		{"no user", "n,,r=abc", "", "missing user name"},
		{"user without n=", "n,,user,r=abc", "", "missing user name"},
		{"empty user", "n,,n=,r=abc", "", "invalid user name"},
		{"bad escape", "n,,n=us=er,r=abc", "", "invalid user name"},
		{"lowercase escape", "n,,n=a=2cb,r=abc", "", "invalid user name"},
		{"short escape", "n,,n=user=2,r=abc", "", "invalid user name"},
		{"trailing =", "n,,n=user=,r=abc", "", "invalid user name"},
		{"no nonce", "n,,n=user", "", "missing nonce"},
		{"empty nonce", "n,,n=user,r=", "", "missing or invalid nonce"},
		{"nonce not r=", "n,,n=user,s=abc", "", "missing or invalid nonce"},
		{"nonce with space", "n,,n=user,r=a c", "", "missing or invalid nonce"},
		{"nonce with DEL", "n,,n=user,r=a\x7fc", "", "missing or invalid nonce"},
		{"nonce not ASCII", "n,,n=user,r=abcé", "", "missing or invalid nonce"},
		{"trailing comma", "n,,n=user,r=abc,", "", "invalid extension"},
		{"extension without =", "n,,n=user,r=abc,foo", "", "invalid extension"},
		{"extension empty key", "n,,n=user,r=abc,=foo", "", "invalid extension"},
		{"extension digit key", "n,,n=user,r=abc,x1=foo", "", "invalid extension"},
		{"tokenauth", "n,,n=user,r=abc,tokenauth=true", "", "tokenauth"},
		{"tokenauth case", "n,,n=user,r=abc,tokenauth=TRUE", "", "tokenauth"},
		{"invalid UTF-8", "n,,n=us\xffer,r=abc", "", "not valid UTF-8"},
		{"NUL", "n,,n=us\x00er,r=abc", "", "not valid UTF-8"},
		{"unknown user", "n,,n=nobody,r=abc", "", invalid},
		{"user without credentials", "n,,n=nocred,r=abc", "", invalid},
		{"user without SHA-256 credential", "n,,n=sha512only,r=abc", "", invalid},
		{"escaped user is another user", "n,,n=user=3D,r=abc", "", invalid},

		{"final empty", "", "", "missing proof"},
		{"final no proof", "", "c=biws,r=" + rfc7677Nonce, "missing proof"},
		{"final only proof", "", "p=" + rfc7677Proof, "missing proof"},
		{"final proof first", "", "p=" + rfc7677Proof + ",c=biws,r=" + rfc7677Nonce, "missing proof"},
		{"final no channel binding", "", "r=" + rfc7677Nonce + ",p=" + rfc7677Proof, "missing channel binding"},
		{"final swapped", "", "r=" + rfc7677Nonce + ",c=biws,p=" + rfc7677Proof, "missing channel binding"},
		{"final y header", "", "c=eSws,r=" + rfc7677Nonce + ",p=" + rfc7677Proof, "channel binding does not match"},
		{"final empty c", "", "c=,r=" + rfc7677Nonce + ",p=" + rfc7677Proof, "channel binding does not match"},
		{"final bad base64 c", "", "c=bi!s,r=" + rfc7677Nonce + ",p=" + rfc7677Proof, "channel binding does not match"},
		{"final unpadded c", "", "c=biw,r=" + rfc7677Nonce + ",p=" + rfc7677Proof, "channel binding does not match"},
		{"final c with newline", "", "c=bi\nws,r=" + rfc7677Nonce + ",p=" + rfc7677Proof, "channel binding does not match"},
		{"final y header claimed", "y,,n=user,r=" + rfc7677ClientNonce, rfc7677ClientFinal, "channel binding does not match"},
		{"final no nonce", "", "c=biws,p=" + rfc7677Proof, "missing nonce"},
		{"final client nonce only", "", "c=biws,r=" + rfc7677ClientNonce + ",p=" + rfc7677Proof, "nonce mismatch"},
		{"final longer nonce", "", "c=biws,r=" + rfc7677Nonce + "x,p=" + rfc7677Proof, "nonce mismatch"},
		{"final nonce not r=", "", "c=biws,s=" + rfc7677Nonce + ",p=" + rfc7677Proof, "nonce mismatch"},
		{"final bad extension", "", "c=biws,r=" + rfc7677Nonce + ",1=2,p=" + rfc7677Proof, "invalid extension"},
		{"final empty proof", "", "c=biws,r=" + rfc7677Nonce + ",p=", "invalid proof"},
		{"final short proof", "", "c=biws,r=" + rfc7677Nonce + ",p=AAAA", "invalid proof"},
		{"final long proof", "", "c=biws,r=" + rfc7677Nonce + ",p=" + base64.StdEncoding.EncodeToString(append(proof, 0)), "invalid proof"},
		{"final bad base64 proof", "", "c=biws,r=" + rfc7677Nonce + ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndV%=", "invalid proof"},
		{"final unpadded proof", "", "c=biws,r=" + rfc7677Nonce + ",p=" + base64.RawStdEncoding.EncodeToString(proof), "invalid proof"},
		{"final proof with comma", "", rfc7677ClientFinal + ",", "invalid proof"},
		{"final proof then extension", "", rfc7677ClientFinal + ",x=y", "invalid proof"},
		{"final invalid UTF-8", "", rfc7677ClientFinal + "\xff", "not valid UTF-8"},
		{"final wrong proof", "", "c=biws,r=" + rfc7677Nonce + ",p=" + base64.StdEncoding.EncodeToString(flipped), invalid},
		{"final extra extension", "", "c=biws,r=" + rfc7677Nonce + ",x=y,p=" + rfc7677Proof, invalid},
		{"final proof for other first", "n,,n=user,r=" + rfc7677ClientNonce + ",x=y", rfc7677ClientFinal, invalid},
		{"final replayed first", "", rfc7677ClientFirst, "missing proof"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := NewSession(ScramSHA256, u.lookup)
			first := tc.first
			if first == "" {
				first = rfc7677ClientFirst
			}
			reply, done, err := s.Step([]byte(first))
			if tc.first == "" || tc.final != "" { // the failure is client-final's
				if err != nil || done {
					t.Fatalf("client-first: reply %q, done %v, error %v", reply, done, err)
				}
				reply, done, err = s.Step([]byte(tc.final))
			}
			if err == nil || done || reply != nil {
				t.Fatalf("reply %q, done %v, error %v; want an error containing %q", reply, done, err, tc.err)
			}
			if !strings.Contains(err.Error(), tc.err) {
				t.Errorf("error %q, want it to contain %q", err, tc.err)
			}
			if s.User() != "" {
				t.Errorf("User() = %q after failure", s.User())
			}
			// Nothing works after a failure, not even the right message.
			for _, msg := range []string{rfc7677ClientFirst, rfc7677ClientFinal} {
				if _, done, err := s.Step([]byte(msg)); err == nil || done {
					t.Errorf("Step(%q) after failure: done %v, error %v", msg, done, err)
				}
			}
		})
	}
}

func TestUnescapeName(t *testing.T) {
	for in, want := range map[string]string{
		"user": "user", "a=2Cb": "a,b", "a=3Db": "a=b", "=3D=2C": "=,", "=2C": ",", "=3D2C": "=2C",
		"dörte": "dörte",
	} {
		if got, ok := unescapeName(in); !ok || got != want {
			t.Errorf("unescapeName(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "=", "a=", "a=2", "a=2c", "a=3d", "a=2D", "a==2C", "=x2C"} {
		if got, ok := unescapeName(in); ok {
			t.Errorf("unescapeName(%q) = %q, want failure", in, got)
		}
	}
}

// TestLibrdkafkaClientFinalNonce: librdkafka's client-final nonce is its
// own nonce followed by the server-first message's whole nonce; Kafka
// accepts any nonce that ends with the combined one, and so must we
// (kcat failed with "nonce mismatch" before).
func TestLibrdkafkaClientFinalNonce(t *testing.T) {
	s, err := NewSession(ScramSHA256, rfc7677Users(t).lookup)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Step([]byte(rfc7677ClientFirst)); err != nil {
		t.Fatal(err)
	}
	salt, _ := base64.StdEncoding.DecodeString(rfc7677Salt)
	salted, err := pbkdf2.Key(sha256.New, "pencil", salt, 4096, sha256.Size)
	if err != nil {
		t.Fatal(err)
	}
	mac := func(key []byte, msg string) []byte {
		h := hmac.New(sha256.New, key)
		h.Write([]byte(msg))
		return h.Sum(nil)
	}
	clientKey := mac(salted, "Client Key")
	storedKey := sha256.Sum256(clientKey)
	withoutProof := "c=biws,r=" + rfc7677ClientNonce + rfc7677Nonce
	authMessage := rfc7677ClientFirst[3:] + "," + rfc7677ServerFirst + "," + withoutProof
	proof := mac(storedKey[:], authMessage)
	for i := range proof {
		proof[i] ^= clientKey[i]
	}
	final := withoutProof + ",p=" + base64.StdEncoding.EncodeToString(proof)
	reply, done, err := s.Step([]byte(final))
	want := "v=" + base64.StdEncoding.EncodeToString(mac(mac(salted, "Server Key"), authMessage))
	if err != nil || !done || string(reply) != want {
		t.Fatalf("librdkafka's client-final: reply %q, done %v, error %v; want %q", reply, done, err, want)
	}
}
