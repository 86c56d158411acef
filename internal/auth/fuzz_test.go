package auth

import (
	"bytes"
	"testing"
)

// FuzzScramSession feeds arbitrary client-first and client-final messages
// to SCRAM-SHA-256 and SCRAM-SHA-512 sessions for a store whose only user
// is "user": Step must never panic, and must only succeed for that user.
func FuzzScramSession(f *testing.F) {
	u := rfc7677Users(f)
	c, err := NewCredential(ScramSHA512, "pencil", nil, 0)
	if err != nil {
		f.Fatal(err)
	}
	u["user"] = append(u["user"], c)

	f.Add([]byte(rfc7677ClientFirst), []byte(rfc7677ClientFinal))
	f.Add([]byte("y,a=user,n=user,r=abc,ext=1"), []byte("c=eSxhPXVzZXIs,r=abc"+rfc7677ServerNonce+",x=y,p=AAAA"))
	f.Add([]byte("n,,n=us=2Cer,r=abc"), []byte("c=biws,r=abc,p="))
	f.Add([]byte("p=tls,,n=user,r=a,tokenauth=true"), []byte(",p="))
	f.Add([]byte("n,a=u=3D,m=1,n=user,r=abc"), []byte("c=====,r=,p=\n"))
	f.Add([]byte{}, []byte{})

	f.Fuzz(func(t *testing.T, first, final []byte) {
		for _, mech := range []string{ScramSHA256, ScramSHA512} {
			s, err := NewSession(mech, u.lookup)
			if err != nil {
				t.Fatal(err)
			}
			reply, done, err1 := s.Step(first)
			if done {
				t.Fatalf("%s: done after client-first", mech)
			}
			if err1 == nil && !bytes.HasPrefix(reply, []byte("r=")) {
				t.Fatalf("%s: server-first %q", mech, reply)
			}
			reply, done, err2 := s.Step(final)
			switch {
			case err1 != nil && (err2 == nil || done):
				t.Fatalf("%s: client-final accepted after a failed client-first", mech)
			case err2 == nil && (!done || !bytes.HasPrefix(reply, []byte("v=")) || s.User() != "user"):
				t.Fatalf("%s: server-final %q, done %v, user %q", mech, reply, done, s.User())
			case err2 != nil && s.User() != "":
				t.Fatalf("%s: User() = %q after failure", mech, s.User())
			}
			if _, done, err := s.Step(final); err == nil || done {
				t.Fatalf("%s: third Step: done %v, error %v", mech, done, err)
			}
		}
	})
}
