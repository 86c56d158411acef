package stream_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/gregor-streaming/gregor/stream"
)

const (
	crashWorkerEnv = "GREGOR_STREAM_CRASH_WORKER" // the broker's address
	crashLinesEnv  = "GREGOR_STREAM_CRASH_LINES"  // lines to commit before freezing
	crashApp       = "crash"
	crashInstance  = "worker-1"
)

// crashWorker runs the word count with ExactlyOnce until it has seen
// more distinct lines than crashLinesEnv says; the commit after that
// flushes its transaction's records to the broker, prints READY and
// hangs, holding the transaction open until the test kills the
// process.
func crashWorker(addr string) int {
	limit, err := strconv.Atoi(os.Getenv(crashLinesEnv))
	if err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		return 2
	}
	var mu sync.Mutex
	seen := map[string]bool{}
	b := wordCount("crash-lines", "crash-counts", func(key, _ string) {
		mu.Lock()
		seen[key] = true
		mu.Unlock()
	})
	app, err := stream.New(b, stream.Config{
		ApplicationID: crashApp, Brokers: []string{addr}, ProcessingGuarantee: stream.ExactlyOnce,
		InstanceID: crashInstance, ClientOpts: quickGroup(),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		return 2
	}
	stream.SetHookBeforeCommit(app, func(cl *kgo.Client) {
		mu.Lock()
		n := len(seen)
		mu.Unlock()
		if n <= limit {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := cl.Flush(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "worker: flush:", err)
			os.Exit(2)
		}
		fmt.Println("READY")
		select {} // killed here, mid-transaction
	})
	if err := app.Run(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		return 1
	}
	return 0
}

// Exactly-once across a crash: a worker process is SIGKILLed with a
// transaction open (its records already on the broker); a new instance
// with the same InstanceID fences it, aborts that transaction, restores
// the store from the committed changelog and goes on. read_committed
// readers see every line counted exactly once: each word's counts are
// 1, 2, ..., n with no repeat or gap.
func TestExactlyOnceCrash(t *testing.T) {
	br := newBroker(t)
	br.CreateTopic("crash-lines", 2, nil)
	br.CreateTopic("crash-counts", 2, nil)

	a, countA := lines("crash-lines", "a", 150, 10)
	produce(t, br, a...)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashWorkerEnv+"="+br.Addr, crashLinesEnv+"="+strconv.Itoa(len(a)))
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if sc.Text() == "READY" {
				close(ready)
			}
		}
	}()
	killed := false
	kill := func() {
		if !killed {
			killed = true
			cmd.Process.Kill()
			cmd.Wait()
			<-readerDone
		}
	}
	t.Cleanup(kill)

	// The worker commits batch a, then freezes inside the transaction
	// holding part of batch b.
	waitFor(t, 30*time.Second, func() (bool, string) {
		got, _ := countsOf(t, br, "crash-counts", true)
		diff := sameCounts(got, countA)
		return diff == "", "batch a: " + diff
	})
	b, countB := lines("crash-lines", "b", 150, 11)
	produce(t, br, b...)
	select {
	case <-ready:
	case <-time.After(30 * time.Second):
		t.Fatal("worker never froze mid-transaction")
	}
	ctx := ctxT(t, 10*time.Second)
	txns, err := br.Admin().DescribeTransactions(ctx, crashApp+"-"+crashInstance)
	if err != nil {
		t.Fatal(err)
	}
	if d, ok := txns[crashApp+"-"+crashInstance]; !ok || d.State != "Ongoing" {
		t.Fatalf("worker's transaction: %+v, want Ongoing", d)
	}
	kill()

	c, countC := lines("crash-lines", "c", 100, 12)
	produce(t, br, c...)
	r := start(t, wordCount("crash-lines", "crash-counts", nil), stream.Config{
		ApplicationID: crashApp, Brokers: []string{br.Addr}, ProcessingGuarantee: stream.ExactlyOnce,
		InstanceID: crashInstance, ClientOpts: quickGroup(),
	})
	want := addCounts(countA, countB, countC)
	waitFor(t, 30*time.Second, func() (bool, string) {
		got, _ := countsOf(t, br, "crash-counts", true)
		diff := sameCounts(got, want)
		return diff == "", diff
	}, r)
	_, seq := countsOf(t, br, "crash-counts", true)
	checkExactlyOnce(t, seq)
	// The killed transaction's records (words of batch b sent to the
	// repartition topic) are in the log, aborted: only read_uncommitted
	// sees them.
	rep := crashApp + "-counts-repartition"
	if all, committed := len(readTopic(t, br, rep, false)), len(readTopic(t, br, rep, true)); all <= committed {
		t.Errorf("%s: read_uncommitted sees %d records, read_committed %d: the killed transaction left none", rep, all, committed)
	}
	if err := r.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if s := r.app.Stats(); s.Restored == 0 {
		t.Errorf("stats %+v: the new instance restored nothing", s)
	}
}
