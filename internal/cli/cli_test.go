package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/ktest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// result is one CLI run.
type result struct {
	stdout, stderr string
	code           int
}

// gregor runs a CLI command against addr, with stdin as its input.
func gregor(t *testing.T, addr, stdin string, args ...string) result {
	t.Helper()
	return gregorEnv(t, addr, nil, stdin, args...)
}

// gregorEnv is gregor with more environment variables.
func gregorEnv(t *testing.T, addr string, env map[string]string, stdin string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	e := Env{
		Stdin:  strings.NewReader(stdin),
		Stdout: &out,
		Stderr: &errb,
		Getenv: func(k string) string {
			if k == "GREGOR_BROKERS" {
				return addr
			}
			return env[k]
		},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	code := Run(ctx, args, e)
	return result{out.String(), errb.String(), code}
}

// ok runs a command that must succeed and returns its stdout.
func ok(t *testing.T, addr, stdin string, args ...string) string {
	t.Helper()
	r := gregor(t, addr, stdin, args...)
	if r.code != 0 {
		t.Fatalf("gregor %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// decode runs a command with --json and decodes its output into v.
func decode(t *testing.T, addr, stdin string, v any, args ...string) {
	t.Helper()
	out := ok(t, addr, stdin, append(args, "--json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("gregor %s --json: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// scrubbers replace what changes from run to run (addresses, IDs,
// timestamps) before comparing with golden files.
var scrubbers = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`127\.0\.0\.1:\d+`), "127.0.0.1:PORT"},
	{regexp.MustCompile(`(?m)^(ID\s+)\S+$`), "${1}<topic-id>"},
	{regexp.MustCompile(`(?m)^(CLUSTER\s+)\S+$`), "${1}<cluster-id>"},
	// The version guess follows the broker's API versions, which grow.
	{regexp.MustCompile(`(?m)^(VERSION\s+serves the request versions of Kafka )\S+$`), "${1}<version>"},
	{regexp.MustCompile(`gregor-cli-[0-9a-f-]+`), "<member-id>"},
	{regexp.MustCompile(`(?m)^(0 \(controller\)\s+127\.0\.0\.1\s+)\d+`), "${1}PORT"},
}

func scrub(s string) string {
	for _, sc := range scrubbers {
		s = sc.re.ReplaceAllString(s, sc.with)
	}
	return s
}

// golden compares got with testdata/NAME.golden (-update rewrites it).
func golden(t *testing.T, name, got string) {
	t.Helper()
	got = scrub(got)
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from %s (go test -update rewrites it)\ngot:\n%s\nwant:\n%s", name, path, got, want)
	}
}

// requireAPI skips the test when the broker does not serve an API yet,
// naming it, so the test starts running the day the API lands.
func requireAPI(t *testing.T, kb *ktest.Broker, keys ...kmsg.Key) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	vs, err := kb.Admin().ApiVersions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range keys {
		for _, v := range vs {
			if _, _, has := v.KeyVersions(key.Int16()); !has {
				t.Skipf("the broker does not serve %s (API key %d) yet", key.Name(), key.Int16())
			}
		}
	}
}

// topicOffsets returns each partition's high watermark.
func topicOffsets(t *testing.T, kb *ktest.Broker, topic string) map[int32]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ends, err := kb.Admin().ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	return out
}

// newGregor starts a Gregor broker with topic "events" and returns its
// address.
func newGregor(t *testing.T) string {
	t.Helper()
	kb := ktest.NewBroker(t)
	kb.CreateTopic("events", 1, nil)
	return kb.Addr
}

// TestAllowForPartitions: creating many partitions lengthens the default
// timeout (the broker answers once their files exist); a --timeout the
// user gave is kept.
func TestAllowForPartitions(t *testing.T) {
	for _, c := range []struct {
		args []string
		n    int
		want time.Duration
	}{
		{nil, 10000, 15*time.Second + 10000*partitionOpenAllowance},
		{nil, -1, 15 * time.Second}, // the cluster's default count
		{[]string{"--timeout", "2s"}, 10000, 2 * time.Second},
	} {
		r := &runner{env: Env{Getenv: func(string) string { return "" }}}
		fs := flag.NewFlagSet("create", flag.ContinueOnError)
		r.globalFlags(fs)
		if err := fs.Parse(c.args); err != nil {
			t.Fatal(err)
		}
		r.allowForPartitions(fs, c.n)
		if r.timeout != c.want {
			t.Errorf("args %v, %d partitions: timeout %v, want %v", c.args, c.n, r.timeout, c.want)
		}
	}
}

// TestHelpPrintedOnce: --help prints the command's help once, on stdout;
// a bad flag prints the problem and the usage on stderr.
func TestHelpPrintedOnce(t *testing.T) {
	var out, errb bytes.Buffer
	if code := Run(context.Background(), []string{"topic", "list", "--help"}, Env{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}); code != ExitOK {
		t.Fatalf("exit %d", code)
	}
	if n := strings.Count(out.String(), "Usage: gregor topic list"); n != 1 || errb.Len() != 0 {
		t.Errorf("help on stdout %d times, stderr %q", n, errb.String())
	}
	out.Reset()
	errb.Reset()
	if code := Run(context.Background(), []string{"topic", "list", "--bogus"}, Env{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}); code != ExitUsage {
		t.Fatalf("exit %d", code)
	}
	if n := strings.Count(errb.String(), "Usage: gregor topic list"); n != 1 || out.Len() != 0 || !strings.Contains(errb.String(), "bogus") {
		t.Errorf("bad flag: stderr %q, stdout %q", errb.String(), out.String())
	}
}
