package partlog

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gregor-streaming/gregor/internal/vfs"
)

// openWholeLogs opens n logs on fs served by one Syncer that uses a
// whole-file-system sync.
func openWholeLogs(t *testing.T, fs vfs.FS, n int) (*Syncer, []*Log) {
	t.Helper()
	if err := fs.MkdirAll("/data"); err != nil {
		t.Fatal(err)
	}
	ws, err := vfs.OpenWholeSyncer(fs, "/data")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	s := NewSyncer(2)
	s.UseWholeSync(ws)
	logs := make([]*Log, n)
	for i := range logs {
		l, err := Open(Options{FS: fs, Dir: fmt.Sprintf("/data/t-%d", i), Config: DefaultConfig(), Syncer: s, Logger: quietLogger})
		if err != nil {
			t.Fatal(err)
		}
		logs[i] = l
	}
	return s, logs
}

// TestWholeSyncDurable: many logs acknowledged through the batched
// syncfs path keep every acknowledged batch through a power loss, and a
// CloseLogs shutdown is clean.
func TestWholeSyncDurable(t *testing.T) {
	fs := vfs.NewMem()
	s, logs := openWholeLogs(t, fs, 32)
	var wg sync.WaitGroup
	acked := make([]int64, len(logs)) // per log: offsets below are acknowledged
	var mu sync.Mutex
	for round := range 5 {
		for i, l := range logs {
			if _, _, err := l.Append(mkBatch(t, 3, int64(round), 10), 0); err != nil {
				t.Fatal(err)
			}
			wg.Add(1)
			l.RequestSync(func(rp int64, err error) {
				defer wg.Done()
				if err != nil {
					t.Errorf("sync: %v", err)
					return
				}
				mu.Lock()
				acked[i] = max(acked[i], rp)
				mu.Unlock()
			})
		}
		wg.Wait()
	}
	crashed := fs.Crash()
	for i := range logs {
		if acked[i] != 15 {
			t.Fatalf("log %d: recovery point %d, want 15", i, acked[i])
		}
	}
	// Recover the crashed copy: everything acknowledged is there.
	s2 := NewSyncer(1)
	defer s2.Close()
	for i := range logs {
		l, err := Open(Options{FS: crashed, Dir: fmt.Sprintf("/data/t-%d", i), Config: DefaultConfig(), Syncer: s2, Logger: quietLogger})
		if err != nil {
			t.Fatal(err)
		}
		if leo := l.LogEndOffset(); leo < acked[i] {
			t.Fatalf("log %d: %d offsets after power loss, %d were acknowledged", i, leo, acked[i])
		}
		l.Close()
	}
	if err := CloseLogs(s, logs); err != nil {
		t.Fatal(err)
	}
	s.Close()
	// After CloseLogs the shutdown was clean and nothing is lost, even
	// through a power loss right after.
	crashed = fs.Crash()
	for i := range logs {
		l, err := Open(Options{FS: crashed, Dir: fmt.Sprintf("/data/t-%d", i), Config: DefaultConfig(), Syncer: s2, Logger: quietLogger})
		if err != nil {
			t.Fatal(err)
		}
		if leo := l.LogEndOffset(); leo != 15 {
			t.Fatalf("log %d after CloseLogs and power loss: %d offsets, want 15", i, leo)
		}
		l.Close()
	}
}

// TestWholeSyncErrorFallsBack: a failing syncfs fails nobody wrongly and
// sends the Syncer back to per-file fsyncs, which report per log.
func TestWholeSyncErrorFallsBack(t *testing.T) {
	ffs := vfs.NewFault(vfs.NewMem())
	s, logs := openWholeLogs(t, ffs, 8)
	defer func() {
		for _, l := range logs {
			l.Close()
		}
		s.Close()
	}()
	ffs.SetSyncError(syscall.EIO)
	var wg sync.WaitGroup
	errs := make([]error, len(logs))
	reqs := make([]SyncRequest, len(logs))
	for i, l := range logs {
		if _, _, err := l.Append(mkBatch(t, 1, 1, 10), 0); err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		reqs[i] = SyncRequest{Log: l, Done: func(_ int64, err error) { errs[i] = err; wg.Done() }}
	}
	// Queued together, as a produce request's partitions are, so one
	// round finds all 8 and tries syncfs (one RequestSync at a time let
	// a worker take the first logs in rounds of fewer than
	// wholeSyncMin, which fsync file by file: the test was flaky).
	RequestSyncs(reqs)
	wg.Wait()
	for i, err := range errs {
		if !errors.Is(err, syscall.EIO) {
			t.Fatalf("log %d: sync err %v, want EIO", i, err)
		}
	}
	if !s.degraded.Load() {
		t.Fatal("syncer still uses syncfs after it failed")
	}
}

// countingSyncer counts SyncAll calls.
type countingSyncer struct {
	vfs.WholeSyncer
	n atomic.Int32
}

func (c *countingSyncer) SyncAll() error {
	c.n.Add(1)
	return c.WholeSyncer.SyncAll()
}

// RequestSyncs hands a request's logs to the Syncer together: one
// whole-file-system sync serves them all, every callback runs once with
// its offsets durable, and a Syncer that closed first still calls them.
func TestRequestSyncsOneWholeSync(t *testing.T) {
	fs := vfs.NewMem()
	s, logs := openWholeLogs(t, fs, 8)
	ws, err := vfs.OpenWholeSyncer(fs, "/data")
	if err != nil {
		t.Fatal(err)
	}
	cs := &countingSyncer{WholeSyncer: ws}
	s.UseWholeSync(cs)
	defer ws.Close()
	var syncs atomic.Int32 // every sync, per file or whole
	s.Observe(Observers{Sync: func(time.Duration) { syncs.Add(1) }})
	for round := range 20 {
		var wg sync.WaitGroup
		reqs := make([]SyncRequest, len(logs))
		got := make([]int64, len(logs))
		for i, l := range logs {
			if _, _, err := l.Append(mkBatch(t, 2, int64(round), 10), 0); err != nil {
				t.Fatal(err)
			}
			wg.Add(1)
			reqs[i] = SyncRequest{Log: l, Done: func(rp int64, err error) {
				defer wg.Done()
				if err != nil {
					t.Errorf("log %d: %v", i, err)
				}
				got[i] = rp
			}}
		}
		before, beforeAll := cs.n.Load(), syncs.Load()
		RequestSyncs(reqs)
		wg.Wait()
		for i, rp := range got {
			if want := int64(2 * (round + 1)); rp < want {
				t.Fatalf("round %d log %d: durable %d, want %d", round, i, rp, want)
			}
		}
		// (The checkpointer's own whole syncs are not observed.)
		if n, all := cs.n.Load()-before, syncs.Load()-beforeAll; n < 1 || all != 1 {
			t.Fatalf("round %d: %d syncs (%d whole) for one request's logs, want 1 whole", round, all, n)
		}
	}
	if err := CloseLogs(s, logs); err != nil {
		t.Fatal(err)
	}
	s.Close()

	// A closed Syncer: the callbacks still run, with an error.
	var wg sync.WaitGroup
	errs := make([]error, len(logs))
	reqs := make([]SyncRequest, len(logs))
	for i, l := range logs {
		wg.Add(1)
		reqs[i] = SyncRequest{Log: l, Done: func(_ int64, err error) { errs[i] = err; wg.Done() }}
	}
	RequestSyncs(reqs)
	wg.Wait()
	for i, err := range errs {
		if err == nil {
			t.Fatalf("log %d: no error after the Syncer closed", i)
		}
	}
}
