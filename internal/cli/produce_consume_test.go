package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gregor-streaming/gregor/internal/ktest"
)

func TestProduceConsume(t *testing.T) {
	kb := ktest.NewBroker(t)
	a := kb.Addr
	ok(t, a, "", "topic", "create", "events", "-p", "1")

	golden(t, "produce", ok(t, a, "k1:hello\nk2:world\n", "produce", "events", "--key-delim", ":", "-H", "source=test", "-H", "v=2"))

	var sum struct {
		Topic      string `json:"topic"`
		Records    int64  `json:"records"`
		Bytes      int64  `json:"bytes"`
		Failed     int64  `json:"failed"`
		Partitions []struct {
			Partition   int32 `json:"partition"`
			Records     int64 `json:"records"`
			FirstOffset int64 `json:"first_offset"`
			LastOffset  int64 `json:"last_offset"`
		} `json:"partitions"`
	}
	decode(t, a, "three\nfour\nfive", &sum, "produce", "events", "-k", "k3", "-z", "zstd")
	if sum.Records != 3 || sum.Failed != 0 || sum.Bytes != 3*2+5+4+4 || len(sum.Partitions) != 1 ||
		sum.Partitions[0].FirstOffset != 2 || sum.Partitions[0].LastOffset != 4 {
		t.Errorf("produce --json: %+v", sum)
	}

	// A file, with a custom delimiter and acks=1.
	file := filepath.Join(t.TempDir(), "in.txt")
	os.WriteFile(file, []byte("six\x00seven\x00"), 0o644)
	ok(t, a, "", "produce", "events", file, "--delim", `\0`, "--acks", "1")

	golden(t, "consume_format", ok(t, a, "", "consume", "events", "-e", "-f", `%p/%o %k=%v [%h] %K/%V\n`))
	if got := ok(t, a, "", "consume", "events", "-e"); got != "hello\nworld\nthree\nfour\nfive\nsix\nseven\n" {
		t.Errorf("consume -e (values):\n%s", got)
	}
	if got := ok(t, a, "", "consume", "events", "-n", "2", "-o", "3"); got != "four\nfive\n" {
		t.Errorf("consume -o 3 -n 2: %q", got)
	}
	if got := ok(t, a, "", "consume", "events", "-o", "-2", "-e"); got != "six\nseven\n" {
		t.Errorf("consume -o -2 -e: %q", got)
	}
	if got := ok(t, a, "", "consume", "events", "-o", "end", "-e"); got != "" {
		t.Errorf("consume -o end -e: %q", got)
	}
	if got := ok(t, a, "", "consume", "events", "-o", "@0", "-n", "1"); got != "hello\n" {
		t.Errorf("consume -o @0: %q", got)
	}

	out := ok(t, a, "", "consume", "events", "-e", "--json", "-n", "2")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		t.Fatalf("consume --json -n 2: %d lines\n%s", len(lines), out)
	}
	var rec recordJSON
	if err := json.Unmarshal([]byte(lines[1]), &rec); err != nil {
		t.Fatal(err)
	}
	if rec.Topic != "events" || rec.Partition != 0 || rec.Offset != 1 || *rec.Key != "k2" || *rec.Value != "world" ||
		len(rec.Headers) != 2 || rec.Headers[0] != (headerJSON{"source", "test"}) || rec.Timestamp <= 0 {
		t.Errorf("consume --json record: %+v", rec)
	}
}

func TestProduceToPartitionAndReadCommitted(t *testing.T) {
	kb := ktest.NewBroker(t)
	a := kb.Addr
	ok(t, a, "", "topic", "create", "events", "-p", "3")
	ok(t, a, "x\ny\n", "produce", "events", "-p", "2")
	offs := topicOffsets(t, kb, "events")
	if offs[0] != 0 || offs[1] != 0 || offs[2] != 2 {
		t.Errorf("produce -p 2 wrote to %v", offs)
	}
	if got := ok(t, a, "", "consume", "events", "-p", "2", "-e", "--read-committed", "-f", `%p:%v\n`); got != "2:x\n2:y\n" {
		t.Errorf("consume -p 2 --read-committed: %q", got)
	}
	if got := ok(t, a, "", "consume", "events", "-p", "0,1", "-e"); got != "" {
		t.Errorf("consume -p 0,1 of empty partitions: %q", got)
	}
}

func TestProduceErrors(t *testing.T) {
	kb := ktest.NewBroker(t, ktest.Set("auto.create.topics.enable", "false"))
	a := kb.Addr
	r := gregor(t, a, "x\n", "produce", "missing")
	if r.code != ExitFailed || !strings.Contains(r.stderr, `unknown topic "missing"`) {
		t.Errorf("produce to a missing topic: exit %d, stderr %q", r.code, r.stderr)
	}
	r = gregor(t, a, "", "produce", "x", "/no/such/file")
	if r.code != ExitFailed || !strings.Contains(r.stderr, "no such file") {
		t.Errorf("produce from a missing file: exit %d, stderr %q", r.code, r.stderr)
	}
	r = gregor(t, a, "x\n", "produce", "x", "--acks", "2")
	if r.code != ExitUsage {
		t.Errorf("--acks 2: exit %d, want 2", r.code)
	}
	r = gregor(t, a, "", "consume", "missing", "-e")
	if r.code != ExitFailed || r.stderr != "gregor consume: unknown topic \"missing\"\n" {
		t.Errorf("consume a missing topic: exit %d, stderr %q", r.code, r.stderr)
	}
	// A retriable refusal fails after --timeout instead of retrying for
	// ever, and says what such refusals are; acks 1 is served.
	ok(t, a, "", "topic", "create", "strict", "--config", "min.insync.replicas=2")
	r = gregor(t, a, "x\n", "produce", "strict", "--timeout", "2s")
	if r.code != ExitFailed || !strings.Contains(r.stderr, "1 record failed") || !strings.Contains(r.stderr, "NOT_ENOUGH_REPLICAS") {
		t.Errorf("produce to min.insync.replicas 2: exit %d, stderr %q", r.code, r.stderr)
	}
	ok(t, a, "x\n", "produce", "strict", "--acks", "1")
}
