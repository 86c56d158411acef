package main

import (
	"fmt"
	"strings"

	"github.com/gregor-streaming/gregor/internal/auth"
)

// scramUser is one --add-scram: MECHANISM=[name=NAME,password=PASSWORD],
// the syntax of kafka-storage format --add-scram.
type scramUser struct {
	mechanism, name, password string
}

func parseAddScram(s string) (scramUser, error) {
	mech, rest, ok := strings.Cut(s, "=")
	mech = strings.ToUpper(strings.TrimSpace(mech))
	if !ok || !auth.ScramMechanism(mech) {
		return scramUser{}, fmt.Errorf("--add-scram %q: want SCRAM-SHA-256=[name=NAME,password=PASSWORD] (or SCRAM-SHA-512)", s)
	}
	rest = strings.TrimSpace(rest)
	if !strings.HasPrefix(rest, "[") || !strings.HasSuffix(rest, "]") {
		return scramUser{}, fmt.Errorf("--add-scram %q: the credential goes in brackets: %s=[name=NAME,password=PASSWORD]", s, mech)
	}
	u := scramUser{mechanism: mech}
	// The password is last and may hold commas: split on the first
	// "password=".
	body := rest[1 : len(rest)-1]
	before, password, ok := strings.Cut(body, "password=")
	if !ok {
		return scramUser{}, fmt.Errorf("--add-scram %q: no password=", s)
	}
	u.password = strings.Trim(password, `"`)
	for _, kv := range strings.Split(strings.TrimSuffix(before, ","), ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
		if k == "name" {
			u.name = strings.Trim(v, `"`)
		}
	}
	if u.name == "" || u.password == "" {
		return scramUser{}, fmt.Errorf("--add-scram %q: name and password must not be empty", s)
	}
	return u, nil
}
