package main

import (
	"io"
	"os"
	"strings"
	"testing"
)

// TestServeRefusesClusterSecurity: gregor serve refuses settings the
// brokers and controllers of a cluster could not connect to each other
// with, naming the setting, before opening anything (exit status 2).
func TestServeRefusesClusterSecurity(t *testing.T) {
	for _, tc := range []struct {
		sets []string
		want string
	}{
		{[]string{"listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:SASL_SSL"}, "listener.security.protocol.map"},
		{[]string{"inter.broker.listener.name=PLAINTEXT", "security.inter.broker.protocol=PLAINTEXT"}, "mutually exclusive"},
		{[]string{"listeners=SASL_PLAINTEXT://127.0.0.1:0", "sasl.enabled.mechanisms=PLAIN"}, "listener.name.sasl_plaintext.plain.sasl.jaas.config"},
		{[]string{"listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:SSL"}, "controller listener CONTROLLER"},
	} {
		dir := t.TempDir()
		args := []string{"--data-dir", dir, "--admin-listen", "", "--listen", "127.0.0.1:0",
			"--set", "timer.slack.ns=0", "--set", "node.id=0", "--set", "controller.quorum.voters=0@127.0.0.1:1,1@127.0.0.1:2"}
		for _, s := range tc.sets {
			args = append(args, "--set", s)
		}
		code, stderr := captureStderr(t, func() int { return serve(args) })
		if code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.sets, code, stderr, tc.want)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Errorf("%v: the data directory was written before the settings were refused", tc.sets)
		}
	}
}

// captureStderr runs fn with os.Stderr going to a pipe and returns its
// result and what it wrote.
func captureStderr(t *testing.T, fn func() int) (int, string) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	saved := os.Stderr
	os.Stderr = w
	out := make(chan string)
	go func() {
		b, _ := io.ReadAll(r)
		out <- string(b)
	}()
	code := fn()
	os.Stderr = saved
	w.Close()
	return code, <-out
}
