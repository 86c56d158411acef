package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestProgressOnATerminal(t *testing.T) {
	var buf bytes.Buffer
	p := startProgress(&buf, "produced", true)
	p.add(1500, 3<<20)
	time.Sleep(2 * progressInterval)
	p.finish()
	p.finish() // idempotent
	out := buf.String()
	if !strings.Contains(out, "\r\x1b[Kproduced 1500 records, 3.0 MiB  (") || !strings.Contains(out, "records/s") {
		t.Errorf("progress line: %q", out)
	}
	if !strings.HasSuffix(out, "\r\x1b[K") {
		t.Errorf("the line is not erased at the end: %q", out)
	}
}

func TestProgressOffWithoutATerminal(t *testing.T) {
	var buf bytes.Buffer
	p := startProgress(&buf, "consumed", false)
	p.add(1, 1)
	time.Sleep(2 * progressInterval)
	p.finish()
	if buf.Len() != 0 {
		t.Errorf("progress written to a non-terminal: %q", buf.String())
	}
}

// Produce and consume draw the rate only when stderr is a terminal and
// the data does not come from (produce) or go to (consume) one.
func TestProgressWiring(t *testing.T) {
	a := newGregor(t)
	var out, errb bytes.Buffer
	env := Env{Stdin: strings.NewReader("a\nb\n"), Stdout: &out, Stderr: &errb, StderrTTY: true,
		Getenv: func(k string) string {
			if k == "GREGOR_BROKERS" {
				return a
			}
			return ""
		}}
	if code := Run(t.Context(), []string{"produce", "events"}, env); code != 0 {
		t.Fatalf("produce: %d %s", code, errb.String())
	}
	if !strings.HasSuffix(errb.String(), "\r\x1b[K") {
		t.Errorf("produce with a terminal stderr drew no progress line: %q", errb.String())
	}
	errb.Reset()
	env.StdoutTTY = true
	if code := Run(t.Context(), []string{"consume", "events", "-e"}, env); code != 0 {
		t.Fatalf("consume: %d %s", code, errb.String())
	}
	if errb.Len() != 0 {
		t.Errorf("consume printing to a terminal drew progress over the records: %q", errb.String())
	}
}
