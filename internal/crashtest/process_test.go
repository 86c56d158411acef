package crashtest

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestProcessCrash SIGKILLs a real `gregor serve` at random moments while
// three idempotent acks=all producers write keyed records to a
// 4-partition topic, and restarts it on the same data directory and port,
// GREGOR_CRASH_CYCLES times (default 20). Most kills land under steady
// load; some just after the broker starts accepting, some during
// recovery (before it listens). The producers keep going across the
// restarts; their retries must be recognised as duplicates by the
// producer state rebuilt on open. At the end every acknowledged record
// must be stored exactly once, at its acknowledged offset, in order.
//
// A SIGKILL loses no byte written to a file (the page cache survives the
// process), but it loses small appends still buffered in memory, which
// come back from the journal; so this tests recovery, journal replay,
// producer-state rebuild and the offsets told to clients; power loss is
// TestPowerLoss's. GREGOR_CRASH_PARTITIONS sets the topic's partitions
// (default 64: enough for sync rounds to journal the small appends,
// which then wait in the logs' buffers).
func TestProcessCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("builds gregor and kills it repeatedly (~20 s); skipped with -short")
	}
	partitions := int32(envInt(t, "GREGOR_CRASH_PARTITIONS", 64))
	log := processCrash(t, envInt(t, "GREGOR_CRASH_CYCLES", 20), partitions, 256<<10, 0)
	replays := bytes.Count(log, []byte("partlog: replayed journal"))
	t.Logf("%d journal replays", replays)
	if partitions >= 64 && envInt(t, "GREGOR_CRASH_CYCLES", 20) >= 10 && replays == 0 {
		t.Errorf("no journal replay in the SIGKILLs over %d partitions: the journal path went untested", partitions)
	}
}

// TestProcessCrashPreallocated is TestProcessCrash on one partition with
// 16 MiB segments: its syncs are small and its own, so the active
// segment has zeros reserved past its data (partlog/prealloc.go) when
// the kills land, and recovery must trim them (GREGOR_CRASH_CYCLES,
// default 8). The records are not compressed, and the first kill comes
// after 12,000 of them (about 1.6 MB), when the segment holds more than
// the 1 MiB a log reserves from.
func TestProcessCrashPreallocated(t *testing.T) {
	if testing.Short() {
		t.Skip("builds gregor and kills it repeatedly (~10 s); skipped with -short")
	}
	log := processCrash(t, envInt(t, "GREGOR_CRASH_CYCLES", 8), 1, 16<<20, 12000, kgo.ProducerBatchCompression(kgo.NoCompression()))
	trims := bytes.Count(log, []byte("partlog: trimming zeros past the data"))
	t.Logf("%d recoveries trimmed reserved space", trims)
	if trims == 0 {
		t.Error("no recovery trimmed reserved space: preallocation went untested")
	}
}

// processCrash runs the kill/restart cycles over a topic of the given
// partitions and segment size, the first kill after warmup more records
// were acknowledged, verifies every acknowledged record, and returns the
// broker's log.
func processCrash(t *testing.T, cycles int, partitions int32, segmentBytes int, warmup int64, opts ...kgo.Opt) []byte {
	t.Helper()
	seed := seedFromEnv(t)
	rng := rand.New(rand.NewPCG(seed, 1))

	work := t.TempDir()
	if keep := os.Getenv("GREGOR_CRASH_KEEP"); keep != "" {
		// Keep the data directory and the broker's log for a post-mortem.
		work = keep
		if err := os.MkdirAll(work, 0o755); err != nil {
			t.Fatal(err)
		}
		t.Logf("data directory and broker log kept in %s", work)
	}
	g := &process{t: t, bin: buildGregor(t), dir: filepath.Join(work, "data"), addr: freeAddr(t)}
	g.logPath = filepath.Join(work, "gregor.log")
	g.start(true)
	t.Cleanup(g.cleanup)

	const topic = "crash"
	createTopic(t, g.addr, topic, partitions, 1, map[string]*string{
		// Small segments so that kills also land around rolls.
		"segment.bytes": kadm.StringPtr(strconv.Itoa(segmentBytes)),
	})
	w := startWorkload(t, g.addr, topic, 3, seed, opts...)

	// progress waits for n more acknowledgements: the producers
	// reconnected and the broker works.
	progress := func(n int64, what string) {
		t.Helper()
		if !w.waitAcked(w.acked()+n, 30*time.Second) {
			t.Fatalf("%s: no progress (%d acknowledged)\n%s", what, w.acked(), g.logTail())
		}
	}
	if warmup > 0 {
		progress(warmup, "warming up")
	}
	var kinds [3]int
	for c := range cycles {
		kind := rng.IntN(5)
		switch kind {
		case 0: // just after the broker began accepting
			time.Sleep(time.Duration(rng.IntN(30)) * time.Millisecond)
		case 1: // during recovery: kill, start, kill before it listens
			progress(200, fmt.Sprintf("cycle %d", c))
			time.Sleep(time.Duration(rng.IntN(300)) * time.Millisecond)
			g.kill()
			g.start(false)
			time.Sleep(time.Duration(rng.IntN(40)) * time.Millisecond)
		default: // under steady load
			progress(500, fmt.Sprintf("cycle %d", c))
			time.Sleep(time.Duration(rng.IntN(700)) * time.Millisecond)
		}
		kinds[min(kind, 2)]++
		g.kill()
		g.start(true)
	}
	progress(500, "after the last restart")
	t.Logf("%d SIGKILLs: %d just after start, %d during recovery, %d under load; %d records acknowledged",
		cycles, kinds[0], kinds[1], kinds[2], w.acked())
	w.finish()
	w.checkErrors()
	verify(t, g.addr, topic, w.led, true)
	g.stop()
	log, _ := os.ReadFile(g.logPath)
	return log
}

// buildGregor builds cmd/gregor into a temporary directory, with the
// race detector when the test binary has it (GREGOR_CRASH_RACE
// overrides).
func buildGregor(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "gregor")
	args := []string{"build", "-o", bin}
	race := raceEnabled
	switch os.Getenv("GREGOR_CRASH_RACE") {
	case "0":
		race = false
	case "1":
		race = true
	}
	if race {
		args = append(args, "-race")
	}
	args = append(args, "github.com/gregor-streaming/gregor/cmd/gregor")
	cmd := exec.Command("go", args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return bin
}

// freeAddr returns a loopback address with a port that was free.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// createTopic creates topic through the broker at addr (or the brokers
// at addr's comma-separated addresses) with the given partitions,
// replicas and configs.
func createTopic(t *testing.T, addr, topic string, partitions int32, replicas int16, configs map[string]*string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(addr, ",")...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, partitions, replicas, configs, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
}

// process is a `gregor serve` child process.
type process struct {
	t       *testing.T
	bin     string
	dir     string
	addr    string
	logPath string
	// args are more arguments to `gregor serve` (a cluster node's
	// --set node.id=... and the like).
	args   []string
	starts int
	// cmd is the running child, nil when there is none; exited gets
	// its Wait result.
	cmd    *exec.Cmd
	exited chan error
	log    *os.File
}

// start runs the broker; with wait, until it accepts connections.
func (g *process) start(wait bool) {
	g.t.Helper()
	g.spawn()
	if wait {
		g.waitAccepting()
	}
}

// spawn starts the broker process, its output appended to its log.
func (g *process) spawn() {
	g.t.Helper()
	f, err := os.OpenFile(g.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		g.t.Fatal(err)
	}
	g.starts++
	fmt.Fprintf(f, "=== start %d\n", g.starts)
	// Window 0: every synced segment leaves the page cache, so
	// recovery and the final check read what the disk holds.
	args := append([]string{"serve", "--listen", g.addr, "--data-dir", g.dir, "--admin-listen=", "--log-level", "info",
		"--set", "log.cache.keep.bytes=0"}, g.args...)
	cmd := exec.Command(g.bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		g.t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	g.cmd, g.exited, g.log = cmd, exited, f
}

// waitAccepting waits until the broker spawned accepts connections (a
// cluster's nodes all spawned first: a node listens once it reached the
// quorum).
func (g *process) waitAccepting() {
	g.t.Helper()
	for attempt := 0; ; attempt++ {
		deadline := time.Now().Add(30 * time.Second)
	wait:
		for {
			c, err := net.DialTimeout("tcp", g.addr, 100*time.Millisecond)
			if err == nil {
				c.Close()
				return
			}
			select {
			case err := <-g.exited:
				g.cmd = nil
				g.log.Close()
				if attempt < 20 && strings.Contains(g.logTail(), "address already in use") {
					// Another process took the port in between: rare,
					// and no fault of the broker's.
					time.Sleep(100 * time.Millisecond)
					g.spawn()
					break wait
				}
				g.t.Fatalf("gregor exited during start: %v\n%s", err, g.logTail())
			case <-time.After(10 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				g.t.Fatalf("gregor did not accept connections within 30 s\n%s", g.logTail())
			}
		}
	}
}

// kill SIGKILLs the broker and waits for it to die.
func (g *process) kill() {
	g.t.Helper()
	if g.cmd == nil {
		return
	}
	g.cmd.Process.Signal(syscall.SIGKILL)
	<-g.exited
	g.cmd = nil
	g.log.Close()
}

// stop shuts the broker down with SIGTERM and checks it exits cleanly.
func (g *process) stop() {
	g.t.Helper()
	if g.cmd == nil {
		return
	}
	g.cmd.Process.Signal(syscall.SIGTERM)
	var err error
	select {
	case err = <-g.exited:
	case <-time.After(30 * time.Second):
		g.kill()
		g.t.Fatalf("gregor did not stop within 30 s of SIGTERM\n%s", g.logTail())
	}
	g.cmd = nil
	g.log.Close()
	if err != nil {
		g.t.Errorf("gregor exited with %v after SIGTERM\n%s", err, g.logTail())
	}
	g.checkLog()
}

func (g *process) cleanup() {
	g.kill()
	if !g.t.Failed() {
		return
	}
	// The whole log may be long: its warnings and errors, then its end.
	b, _ := os.ReadFile(g.logPath)
	var notable []string
	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") || strings.HasPrefix(line, "=== start") {
			notable = append(notable, line)
		}
	}
	if len(notable) > 400 {
		notable = append(notable[:200], append([]string{"[...]"}, notable[len(notable)-200:]...)...)
	}
	g.t.Logf("broker log, starts, warnings and errors:\n%s", strings.Join(notable, "\n"))
	g.t.Logf("broker log, end:\n%s", g.logTail())
}

// checkLog fails on log lines that are bugs whatever happened: handler
// panics, data races (race-enabled binaries), corruption found in data
// a SIGKILL cannot corrupt.
func (g *process) checkLog() {
	g.t.Helper()
	b, err := os.ReadFile(g.logPath)
	if err != nil {
		g.t.Fatal(err)
	}
	for _, bad := range []string{"handler panic", "DATA RACE", "CORRUPT", "panic:"} {
		if i := bytes.Index(b, []byte(bad)); i >= 0 {
			start := max(0, i-2000)
			g.t.Errorf("broker log has %q:\n%s", bad, b[start:min(len(b), i+4000)])
		}
	}
}

// logTail returns the end of the broker's log.
func (g *process) logTail() string {
	b, _ := os.ReadFile(g.logPath)
	if len(b) > 8000 {
		b = b[len(b)-8000:]
	}
	return string(b)
}
