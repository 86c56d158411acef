package main

import "testing"

func TestParseAddScram(t *testing.T) {
	for in, want := range map[string]scramUser{
		"SCRAM-SHA-256=[name=alice,password=alice-secret]":      {"SCRAM-SHA-256", "alice", "alice-secret"},
		`scram-sha-512=[name="bob",password="p,w=d"]`:           {"SCRAM-SHA-512", "bob", "p,w=d"},
		"SCRAM-SHA-256=[iterations=8192,name=c,password=x=y,z]": {"SCRAM-SHA-256", "c", "x=y,z"},
	} {
		got, err := parseAddScram(in)
		if err != nil || got != want {
			t.Errorf("%q: %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{
		"PLAIN=[name=a,password=b]",
		"SCRAM-SHA-256=name=a,password=b",
		"SCRAM-SHA-256=[name=a]",
		"SCRAM-SHA-256=[password=b]",
		"SCRAM-SHA-256=[name=,password=b]",
		"",
	} {
		if u, err := parseAddScram(bad); err == nil {
			t.Errorf("%q accepted: %+v", bad, u)
		}
	}
}
