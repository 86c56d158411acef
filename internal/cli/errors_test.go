package cli

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gregor-streaming/gregor/internal/ktest"
)

// Scripts rely on exit statuses and on errors being one line.
func TestExitCodesAndOneLineErrors(t *testing.T) {
	kb := ktest.NewBroker(t)
	// A port nothing listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()

	for _, c := range []struct {
		name   string
		addr   string
		args   []string
		code   int
		stderr string // prefix of the one line
	}{
		{"unreachable", dead, []string{"topic", "list"}, ExitUnreachable, "gregor topic list: cannot reach the cluster at " + dead + ": connection refused"},
		{"unreachable produce", dead, []string{"produce", "x"}, ExitUnreachable, "gregor produce: cannot reach the cluster"},
		{"unreachable consume", dead, []string{"consume", "x"}, ExitUnreachable, "gregor consume: cannot reach the cluster"},
		{"unknown flag", kb.Addr, []string{"topic", "list", "--bogus"}, ExitUsage, "flag provided but not defined: -bogus"},
		{"missing argument", kb.Addr, []string{"topic", "create"}, ExitUsage, "gregor topic create: name at least one topic"},
		{"unknown command", kb.Addr, []string{"topic", "frobnicate"}, ExitUsage, `gregor topic: unknown command "frobnicate"`},
		{"bad offset", kb.Addr, []string{"consume", "x", "-o", "soon"}, ExitUsage, `gregor consume: -o "soon": want start, end, N, -N or @TIME`},
		{"bad format", kb.Addr, []string{"consume", "x", "-f", "%q"}, ExitUsage, "gregor consume: --format: unknown verb %q"},
		{"unknown topic", kb.Addr, []string{"topic", "describe", "nope"}, ExitFailed, `gregor topic describe: unknown topic "nope"`},
		{"invalid topic", kb.Addr, []string{"topic", "create", "bad/name"}, ExitFailed, "gregor topic create: bad/name: INVALID_TOPIC_EXCEPTION"},
		{"reset needs a target", kb.Addr, []string{"group", "reset-offsets", "g", "--topic", "t"}, ExitUsage, "gregor group reset-offsets: give exactly one of"},
	} {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			r := gregor(t, c.addr, "", append(c.args, "--timeout", "5s")...)
			if r.code != c.code {
				t.Errorf("exit %d, want %d; stderr %q", r.code, c.code, r.stderr)
			}
			if !strings.HasPrefix(r.stderr, c.stderr) && !strings.Contains(r.stderr, c.stderr) {
				t.Errorf("stderr %q, want it to start with %q", r.stderr, c.stderr)
			}
			first, _, _ := strings.Cut(r.stderr, "\n")
			if strings.Contains(r.stderr, "goroutine ") || len(first) > 300 {
				t.Errorf("error is not one readable line: %q", r.stderr)
			}
			if c.code == ExitUnreachable && time.Since(start) > 4*time.Second {
				t.Errorf("took %v to notice nothing listens", time.Since(start))
			}
		})
	}
}

// GREGOR_BROKERS is the default; -b overrides it.
func TestBrokersFlagAndEnv(t *testing.T) {
	kb := ktest.NewBroker(t)
	if r := gregor(t, "127.0.0.1:1", "", "topic", "list", "-b", kb.Addr); r.code != 0 {
		t.Errorf("-b did not override GREGOR_BROKERS: %d %s", r.code, r.stderr)
	}
	if r := gregor(t, "127.0.0.1:1", "", "topic", "list", "--brokers", "127.0.0.1:1,"+kb.Addr); r.code != 0 {
		t.Errorf("a list with one live broker: %d %s", r.code, r.stderr)
	}
}

// Every command has help with examples, printed on stdout with exit 0.
func TestHelp(t *testing.T) {
	var walk func(c *command, path []string)
	walk = func(c *command, path []string) {
		for _, s := range c.sub {
			p := append(append([]string(nil), path...), s.name)
			r := gregor(t, "127.0.0.1:1", "", append(p, "--help")...)
			if r.code != 0 || r.stdout == "" {
				t.Errorf("gregor %s --help: exit %d, stdout %q, stderr %q", strings.Join(p, " "), r.code, r.stdout, r.stderr)
			}
			if s.setup != nil && !strings.Contains(r.stdout, "Examples:") {
				t.Errorf("gregor %s --help has no examples", strings.Join(p, " "))
			}
			walk(s, p)
		}
	}
	walk(root, nil)
	if r := gregor(t, "", "", "--help"); r.code != 0 || !strings.Contains(r.stdout, "Exit status") {
		t.Errorf("gregor --help: %d %q", r.code, r.stdout)
	}
}
