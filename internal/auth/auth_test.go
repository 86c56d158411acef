package auth

import (
	"bytes"
	"context"
	"crypto/pbkdf2"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"fmt"
	"hash"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// users is a credential store for tests.
type users map[string][]Credential

func (u users) lookup(user string) []Credential { return u[user] }

// add gives user a credential for each of mechanisms, derived from password.
func (u users) add(t testing.TB, user, password string, mechanisms ...string) {
	t.Helper()
	for _, m := range mechanisms {
		c, err := NewCredential(m, password, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		u[user] = append(u[user], c)
	}
}

// exchange runs a whole authentication between a franz-go client mechanism
// and a server Session, relaying messages as a broker's SaslAuthenticate
// round trips would. It returns the server's and the client's error, at
// most one of them non-nil.
func exchange(t *testing.T, mech sasl.Mechanism, lookup Lookup) (user string, serverErr, clientErr error) {
	t.Helper()
	server, err := NewSession(mech.Name(), lookup)
	if err != nil {
		t.Fatal(err)
	}
	client, msg, err := mech.Authenticate(context.Background(), "broker:9092")
	if err != nil {
		t.Fatalf("client start: %v", err)
	}
	for range 5 {
		reply, serverDone, err := server.Step(msg)
		if err != nil {
			if server.User() != "" {
				t.Errorf("User() = %q after failed step", server.User())
			}
			return "", err, nil
		}
		clientDone, next, err := client.Challenge(reply)
		if err != nil {
			return "", nil, err
		}
		if clientDone != serverDone {
			t.Fatalf("client done %v, server done %v", clientDone, serverDone)
		}
		if serverDone {
			if _, _, err := server.Step(nil); err == nil {
				t.Error("Step after done succeeded")
			}
			return server.User(), nil, nil
		}
		if server.User() != "" {
			t.Errorf("User() = %q before done", server.User())
		}
		msg = next
	}
	t.Fatal("exchange did not finish")
	return "", nil, nil
}

// mechanism returns franz-go's client side of name for user and password.
func mechanism(name, user, password, zid string) sasl.Mechanism {
	switch name {
	case Plain:
		return plain.Auth{Zid: zid, User: user, Pass: password}.AsMechanism()
	case ScramSHA256:
		return scram.Auth{Zid: zid, User: user, Pass: password}.AsSha256Mechanism()
	case ScramSHA512:
		return scram.Auth{Zid: zid, User: user, Pass: password}.AsSha512Mechanism()
	}
	panic(name)
}

func invalidCredentials(mech string) string {
	if mech == Plain {
		return "Authentication failed: Invalid username or password"
	}
	return "Authentication failed during authentication due to invalid credentials with SASL mechanism " + mech
}

func TestMechanisms(t *testing.T) {
	if got, want := Mechanisms(), []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"}; !slices.Equal(got, want) {
		t.Errorf("Mechanisms() = %q, want %q", got, want)
	}
	Mechanisms()[0] = "mutated"
	if Mechanisms()[0] != Plain {
		t.Error("Mechanisms shares its slice")
	}
	for name, want := range map[string]bool{Plain: false, ScramSHA256: true, ScramSHA512: true, "SCRAM-SHA-1": false, "scram-sha-256": false, "": false} {
		if got := ScramMechanism(name); got != want {
			t.Errorf("ScramMechanism(%q) = %v", name, got)
		}
	}
	for _, name := range []string{"", "GSSAPI", "OAUTHBEARER", "plain", "SCRAM-SHA-1"} {
		if _, err := NewSession(name, users{}.lookup); err == nil {
			t.Errorf("NewSession(%q) succeeded", name)
		}
	}
	if _, err := NewSession(Plain, nil); err == nil {
		t.Error("NewSession with nil lookup succeeded")
	}
}

func TestExchange(t *testing.T) {
	u := users{}
	u.add(t, "alice", "alice-secret", ScramSHA256, ScramSHA512)
	u.add(t, "bob", "bob-secret", ScramSHA512) // PLAIN uses his SHA-512 credential
	u.add(t, "c,a=rol=2C", "carol-secret", ScramSHA256, ScramSHA512)
	u.add(t, "dörte", "pässwörd", ScramSHA256, ScramSHA512)

	for _, mech := range Mechanisms() {
		t.Run(mech, func(t *testing.T) {
			for _, tc := range []struct{ user, password, zid string }{
				{"alice", "alice-secret", ""},
				{"alice", "alice-secret", "alice"},
				{"c,a=rol=2C", "carol-secret", ""},
				{"c,a=rol=2C", "carol-secret", "c,a=rol=2C"},
				{"dörte", "pässwörd", ""},
			} {
				user, serverErr, clientErr := exchange(t, mechanism(mech, tc.user, tc.password, tc.zid), u.lookup)
				if serverErr != nil || clientErr != nil {
					t.Errorf("%+v: server error %v, client error %v", tc, serverErr, clientErr)
				} else if user != tc.user {
					t.Errorf("%+v: User() = %q", tc, user)
				}
			}

			// bob has only a SHA-512 credential.
			_, serverErr, clientErr := exchange(t, mechanism(mech, "bob", "bob-secret", ""), u.lookup)
			if mech == ScramSHA256 {
				if serverErr == nil || serverErr.Error() != invalidCredentials(mech) {
					t.Errorf("bob without a SHA-256 credential: server error %v, client error %v", serverErr, clientErr)
				}
			} else if serverErr != nil || clientErr != nil {
				t.Errorf("bob: server error %v, client error %v", serverErr, clientErr)
			}

			for _, tc := range []struct{ name, user, password string }{
				{"wrong password", "alice", "alice-secreT"},
				{"other user's password", "alice", "carol-secret"},
				{"unknown user", "mallory", "alice-secret"},
				{"user name case", "Alice", "alice-secret"},
			} {
				_, serverErr, clientErr := exchange(t, mechanism(mech, tc.user, tc.password, ""), u.lookup)
				if clientErr != nil {
					t.Errorf("%s: client error %v", tc.name, clientErr)
				}
				if serverErr == nil {
					t.Errorf("%s: authentication succeeded", tc.name)
					continue
				}
				if got := serverErr.Error(); got != invalidCredentials(mech) {
					t.Errorf("%s: error %q, want %q", tc.name, got, invalidCredentials(mech))
				}
			}

			_, serverErr, _ = exchange(t, mechanism(mech, "alice", "alice-secret", "bob"), u.lookup)
			if want := "Client requested an authorization id that is different from username"; serverErr == nil || !strings.Contains(serverErr.Error(), want) {
				t.Errorf("authzid bob for alice: error %v, want %q", serverErr, want)
			}
		})
	}
}

// TestExchangeServerSignature checks that franz-go verifies the server's
// signature: a server holding the wrong ServerKey accepts the client's
// proof, but the client must reject the server.
func TestExchangeServerSignature(t *testing.T) {
	for _, mech := range []string{ScramSHA256, ScramSHA512} {
		u := users{}
		u.add(t, "alice", "alice-secret", mech)
		u["alice"][0].ServerKey[0] ^= 1
		_, serverErr, clientErr := exchange(t, mechanism(mech, "alice", "alice-secret", ""), u.lookup)
		if serverErr != nil {
			t.Errorf("%s: server error %v", mech, serverErr)
		}
		if clientErr == nil || !strings.Contains(clientErr.Error(), "signature mismatch") {
			t.Errorf("%s: client error %v, want a server signature mismatch", mech, clientErr)
		}
	}
}

func TestExchangeTokenAuth(t *testing.T) {
	u := users{}
	u.add(t, "alice", "alice-secret", ScramSHA256)
	mech := scram.Auth{User: "alice", Pass: "alice-secret", IsToken: true}.AsSha256Mechanism()
	_, serverErr, _ := exchange(t, mech, u.lookup)
	if serverErr != errTokenAuth {
		t.Errorf("tokenauth: error %v, want %v", serverErr, errTokenAuth)
	}
}

// TestConcurrentExchanges runs many sessions at once against one store, for
// the race detector.
func TestConcurrentExchanges(t *testing.T) {
	u := users{}
	u.add(t, "alice", "alice-secret", ScramSHA256, ScramSHA512)
	var wg sync.WaitGroup
	errs := make(chan error, 30)
	for i := range 30 {
		wg.Go(func() {
			mech := Mechanisms()[i%3]
			good := i%2 == 0
			password := "alice-secret"
			if !good {
				password = "wrong"
			}
			server, err := NewSession(mech, u.lookup)
			if err != nil {
				errs <- err
				return
			}
			client, msg, _ := mechanism(mech, "alice", password, "").Authenticate(context.Background(), "")
			for {
				reply, done, err := server.Step(msg)
				if err != nil || done {
					if good != (err == nil) {
						errs <- fmt.Errorf("%s with password %q: done %v, error %v", mech, password, done, err)
					}
					return
				}
				if _, msg, err = client.Challenge(reply); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestNewCredential(t *testing.T) {
	for _, tc := range []struct {
		mech string
		h    func() hash.Hash
	}{{ScramSHA256, sha256.New}, {ScramSHA512, sha512.New}} {
		salt := []byte("0123456789abcdef")
		c, err := NewCredential(tc.mech, "pencil", salt, 8192)
		if err != nil {
			t.Fatal(err)
		}
		salted, err := pbkdf2.Key(tc.h, "pencil", salt, 8192, tc.h().Size())
		if err != nil {
			t.Fatal(err)
		}
		fromSalted, err := CredentialFromSalted(tc.mech, salt, salted, 8192)
		if err != nil {
			t.Fatal(err)
		}
		if !equalCredentials(c, fromSalted) {
			t.Errorf("%s: NewCredential %+v != CredentialFromSalted %+v", tc.mech, c, fromSalted)
		}
		if c.Mechanism != tc.mech || c.Iterations != 8192 || !bytes.Equal(c.Salt, salt) ||
			len(c.StoredKey) != tc.h().Size() || len(c.ServerKey) != tc.h().Size() {
			t.Errorf("%s: credential %+v", tc.mech, c)
		}
		salt[0] ^= 1
		if c.Salt[0] == salt[0] || fromSalted.Salt[0] == salt[0] {
			t.Errorf("%s: credential aliases the caller's salt", tc.mech)
		}

		// Defaults: random 32-byte salt, 4096 iterations.
		a, err := NewCredential(tc.mech, "pencil", nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := NewCredential(tc.mech, "pencil", nil, 0)
		if len(a.Salt) != 32 || a.Iterations != DefaultIterations || bytes.Equal(a.Salt, b.Salt) || bytes.Equal(a.StoredKey, b.StoredKey) {
			t.Errorf("%s: default credentials %+v and %+v", tc.mech, a, b)
		}

		for _, iter := range []int32{MinIterations, MaxIterations} {
			if _, err := NewCredential(tc.mech, "pencil", salt, iter); err != nil {
				t.Errorf("%s: %d iterations: %v", tc.mech, iter, err)
			}
		}
		for _, iter := range []int32{-1, 1, MinIterations - 1, MaxIterations + 1, 1 << 30} {
			if _, err := NewCredential(tc.mech, "pencil", salt, iter); err == nil {
				t.Errorf("%s: NewCredential with %d iterations succeeded", tc.mech, iter)
			}
			if _, err := CredentialFromSalted(tc.mech, salt, salted, iter); err == nil {
				t.Errorf("%s: CredentialFromSalted with %d iterations succeeded", tc.mech, iter)
			}
		}
		if _, err := NewCredential(tc.mech, "pencil", []byte{}, 0); err == nil {
			t.Errorf("%s: NewCredential with an empty salt succeeded", tc.mech)
		}
		for _, bad := range [][]byte{nil, {}, salted[1:], append(salted, 0)} {
			if _, err := CredentialFromSalted(tc.mech, salt, bad, 4096); err == nil {
				t.Errorf("%s: CredentialFromSalted with a %d-byte salted password succeeded", tc.mech, len(bad))
			}
		}
		if _, err := CredentialFromSalted(tc.mech, nil, salted, 4096); err == nil {
			t.Errorf("%s: CredentialFromSalted without salt succeeded", tc.mech)
		}
	}
	for _, mech := range []string{"", Plain, "SCRAM-SHA-1", "scram-sha-256"} {
		if _, err := NewCredential(mech, "pencil", nil, 0); err == nil {
			t.Errorf("NewCredential(%q) succeeded", mech)
		}
		if _, err := CredentialFromSalted(mech, []byte("salt"), make([]byte, 32), 4096); err == nil {
			t.Errorf("CredentialFromSalted(%q) succeeded", mech)
		}
	}
}

func equalCredentials(a, b Credential) bool {
	return a.Mechanism == b.Mechanism && a.Iterations == b.Iterations && bytes.Equal(a.Salt, b.Salt) &&
		bytes.Equal(a.StoredKey, b.StoredKey) && bytes.Equal(a.ServerKey, b.ServerKey)
}

// TestCorruptCredentials checks that stored credentials no constructor
// would produce fail authentication instead of panicking or running PBKDF2
// for ages.
func TestCorruptCredentials(t *testing.T) {
	good, err := NewCredential(ScramSHA256, "pencil", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	for name, corrupt := range map[string]func(*Credential){
		"mechanism":       func(c *Credential) { c.Mechanism = "SCRAM-SHA-1" },
		"no salt":         func(c *Credential) { c.Salt = nil },
		"iterations":      func(c *Credential) { c.Iterations = 1 << 30 },
		"zero iterations": func(c *Credential) { c.Iterations = 0 },
		"short StoredKey": func(c *Credential) { c.StoredKey = c.StoredKey[:5] },
		"no ServerKey":    func(c *Credential) { c.ServerKey = nil },
	} {
		c := good
		c.Salt = slices.Clone(good.Salt)
		corrupt(&c)
		mechs := []string{Plain, ScramSHA256}
		if c.Mechanism != ScramSHA256 {
			mechs = []string{Plain}
		}
		for _, mech := range mechs {
			_, serverErr, clientErr := exchange(t, mechanism(mech, "user", "pencil", ""), users{"user": {c}}.lookup)
			if serverErr == nil || serverErr.Error() != invalidCredentials(mech) || clientErr != nil {
				t.Errorf("%s, %s: server error %v, client error %v", name, mech, serverErr, clientErr)
			}
		}
	}
}

func TestPlainMalformed(t *testing.T) {
	u := users{}
	u.add(t, "user", "pencil", ScramSHA256)
	for _, tc := range []struct {
		msg, err string
	}{
		{"", "expected 3 tokens, got 1"},
		{"user", "expected 3 tokens, got 1"},
		{"user\x00pencil", "expected 3 tokens, got 2"},
		{"\x00user\x00pencil\x00", "expected 3 tokens, got 4"},
		{"\x00\x00pencil", "username not specified"},
		{"\x00user\x00", "password not specified"},
		{"\x00\x00", "username not specified"},
		{"other\x00user\x00pencil", "authorization id that is different from username"},
		{"\x00user\x00pencil\xff", "not valid UTF-8"},
		{"\x00us\xc3er\x00pencil", "not valid UTF-8"},
		{"\x00user\x00Pencil", "Invalid username or password"},
		{"\x00user\x00pencil ", "Invalid username or password"},
		{"\x00nobody\x00pencil", "Invalid username or password"},
	} {
		s, _ := NewSession(Plain, u.lookup)
		reply, done, err := s.Step([]byte(tc.msg))
		if err == nil || !strings.Contains(err.Error(), tc.err) || done || reply != nil {
			t.Errorf("%q: reply %q, done %v, error %v; want error containing %q", tc.msg, reply, done, err, tc.err)
			continue
		}
		if strings.Contains(err.Error(), "pencil") {
			t.Errorf("%q: error %q shows the password", tc.msg, err)
		}
		if _, _, err := s.Step([]byte("\x00user\x00pencil")); err == nil {
			t.Errorf("%q: Step after failure succeeded", tc.msg)
		}
		if s.User() != "" {
			t.Errorf("%q: User() = %q after failure", tc.msg, s.User())
		}
	}

	for _, msg := range []string{"\x00user\x00pencil", "user\x00user\x00pencil"} {
		s, _ := NewSession(Plain, u.lookup)
		reply, done, err := s.Step([]byte(msg))
		if err != nil || !done || len(reply) != 0 || s.User() != "user" {
			t.Errorf("%q: reply %q, done %v, error %v, user %q", msg, reply, done, err, s.User())
		}
		if _, _, err := s.Step([]byte(msg)); err == nil {
			t.Errorf("%q: Step after done succeeded", msg)
		}
	}
}

// TestRFC7677WithFranzGo replays RFC 7677's example through franz-go's
// client: with the RFC's client nonce, the client's messages must be the
// RFC's too.
func TestRFC7677WithFranzGo(t *testing.T) {
	u := rfc7677Users(t)
	cnonce, err := base64.RawStdEncoding.DecodeString(rfc7677ClientNonce)
	if err != nil {
		t.Fatal(err)
	}
	client, first, err := scram.Auth{User: "user", Pass: "pencil", Nonce: cnonce}.AsSha256Mechanism().Authenticate(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	if string(first) != rfc7677ClientFirst {
		t.Fatalf("franz-go client-first %q, want %q", first, rfc7677ClientFirst)
	}
	server, _ := NewSession(ScramSHA256, u.lookup)
	serverFirst, _, err := server.Step(first)
	if err != nil {
		t.Fatal(err)
	}
	_, final, err := client.Challenge(serverFirst)
	if err != nil {
		t.Fatal(err)
	}
	if string(final) != rfc7677ClientFinal {
		t.Fatalf("franz-go client-final %q, want %q", final, rfc7677ClientFinal)
	}
	serverFinal, done, err := server.Step(final)
	if err != nil || !done || string(serverFinal) != rfc7677ServerFinal {
		t.Fatalf("server-final %q, done %v, error %v", serverFinal, done, err)
	}
	if done, _, err := client.Challenge(serverFinal); !done || err != nil {
		t.Fatalf("client: done %v, error %v", done, err)
	}
}

// TestHostileMessagesCheap: a message of 512 KiB (the broker's limit
// before authentication) of separators is refused without allocating
// many times its size.
func TestHostileMessagesCheap(t *testing.T) {
	for _, c := range []struct {
		mech string
		msg  []byte
	}{
		{Plain, bytes.Repeat([]byte{0}, 512<<10)},
		{ScramSHA256, append([]byte("n,,n=u,r=abc"), bytes.Repeat([]byte(","), 512<<10)...)},
	} {
		s, err := NewSession(c.mech, func(string) []Credential { return nil })
		if err != nil {
			t.Fatal(err)
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		if _, _, err := s.Step(c.msg); err == nil {
			t.Errorf("%s: hostile message accepted", c.mech)
		}
		runtime.ReadMemStats(&after)
		if n := after.TotalAlloc - before.TotalAlloc; n > 2<<20 {
			t.Errorf("%s: %d bytes allocated for a %d-byte message", c.mech, n, len(c.msg))
		}
	}
}
