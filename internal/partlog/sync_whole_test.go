package partlog

import (
	"errors"
	"fmt"
	"github.com/gregor-streaming/gregor/internal/batch"
	"maps"
	"path"
	"slices"
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
	s := wholeSyncerOn(t, fs, 2)
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

// wholeSyncerOn makes fs's /data directory and returns a Syncer with
// workers that syncs fs whole (the caller closes it; the whole-file-system
// syncer closes when the test ends).
func wholeSyncerOn(t *testing.T, fs vfs.FS, workers int) *Syncer {
	t.Helper()
	if err := fs.MkdirAll("/data"); err != nil {
		t.Fatal(err)
	}
	ws, err := vfs.OpenWholeSyncer(fs, "/data")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	s := NewSyncer(workers)
	s.UseWholeSync(ws)
	return s
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

// TestDeferSyncRecoveryWritesNothingAtOpen: opened with DeferSync (a
// broker's start), a crashed log whose checkpoint still holds, or that
// has none, is recovered without writing the checkpoint or the active
// segment's index files at Open: the recovery point's progress and the
// rebuilt entries wait for the checkpoint rounds. A crash right after
// the start's SyncAll loses nothing, reads and index lookups are right,
// and the next due round writes the checkpoint.
func TestDeferSyncRecoveryWritesNothingAtOpen(t *testing.T) {
	for _, withCkpt := range []bool{false, true} {
		t.Run(fmt.Sprintf("checkpoint=%v", withCkpt), func(t *testing.T) {
			mem := vfs.NewMem()
			if err := mem.MkdirAll("/data"); err != nil {
				t.Fatal(err)
			}
			tl := &testLog{t: t, fs: mem, dir: "/data/t-0", cfg: smallConfig(), now: &fakeClock{t: time.Unix(1_700_000_000, 0)}, logs: &lockedBuffer{}, deferSync: true}
			start := func() {
				t.Helper()
				ws, err := vfs.OpenWholeSyncer(tl.fs, "/data")
				if err != nil {
					t.Fatal(err)
				}
				tl.syn = NewSyncer(1)
				s := tl.syn
				t.Cleanup(func() { s.Close() })
				s.UseWholeSync(ws)
				tl.reopen()
				if err := s.SyncAll(); err != nil { // the broker's end of start
					t.Fatal(err)
				}
			}
			start()
			t.Cleanup(func() { tl.Log.Close() })
			const batches = 40 // 3 records each, several 4 KiB segments
			for i := range batches {
				tl.append(mkBatch(t, 3, int64(1000+i), 50))
				if i == batches/2 && withCkpt {
					if err := tl.Sync(); err != nil {
						t.Fatal(err)
					}
					if err := tl.writeCheckpoint(); err != nil {
						t.Fatal(err)
					}
				}
			}
			if err := tl.Sync(); err != nil {
				t.Fatal(err)
			}
			if len(tl.Segments()) < 3 {
				t.Fatalf("%d segments, want several", len(tl.Segments()))
			}
			snapshot := func() map[string]string {
				t.Helper()
				m := map[string]string{}
				for _, n := range tl.files() {
					m[n] = string(tl.readFile(n))
				}
				return m
			}
			tl.crashFS()
			before := snapshot()
			if _, ok := before[checkpointName]; ok != withCkpt {
				t.Fatalf("checkpoint present %v before the restart, want %v", ok, withCkpt)
			}
			start()
			if after := snapshot(); !maps.Equal(before, after) {
				t.Errorf("Open changed the files:\nbefore %v\nafter  %v", slices.Sorted(maps.Keys(before)), slices.Sorted(maps.Keys(after)))
			}
			check := func() {
				t.Helper()
				if got := tl.LogEndOffset(); got != 3*batches {
					t.Fatalf("log end %d, want %d", got, 3*batches)
				}
				if hs := tl.readAll(0); len(hs) != batches {
					t.Fatalf("%d batches, want %d", len(hs), batches)
				}
				for off := int64(0); off < 3*batches; off += 7 { // index lookups
					out, err := tl.Read(nil, off, 1, 1<<62, true)
					if err != nil || len(out) == 0 {
						t.Fatalf("read at %d: %d bytes, %v", off, len(out), err)
					}
					h, err := batch.Validate(out)
					if err != nil || h.BaseOffset > off || h.NextOffset() <= off {
						t.Fatalf("read at %d: batch %+v, %v", off, h, err)
					}
				}
			}
			check()
			// Another crash before any checkpoint round: nothing lost.
			tl.crashFS()
			start()
			check()
			// The due round writes the checkpoint with the recovered end.
			tl.now.Add(ckptProgressInterval + time.Second)
			if !tl.checkpointIfDirty(true) {
				t.Fatal("no checkpoint written by the round")
			}
			if err := tl.syn.SyncAll(); err != nil {
				t.Fatal(err)
			}
			c, err := decodeCkptFileC(tl.readFile(checkpointName))
			if err != nil {
				t.Fatal(err)
			}
			if c.recoveryPoint != 3*batches {
				t.Fatalf("checkpointed recovery point %d, want %d", c.recoveryPoint, 3*batches)
			}
			tl.crashFS()
			start()
			check()
		})
	}
}

// ckptWrites counts the writes of checkpoint files of the FS it wraps:
// renames onto them and opens for writing in place.
type ckptWrites struct {
	vfs.FS
	n, renames atomic.Int64
}

func (c *ckptWrites) Rename(oldname, newname string) error {
	if path.Base(newname) == checkpointName {
		c.n.Add(1)
		c.renames.Add(1)
	}
	return c.FS.Rename(oldname, newname)
}

func (c *ckptWrites) OpenWrite(name string) (vfs.File, error) {
	if path.Base(name) == checkpointName {
		c.n.Add(1)
	}
	return c.FS.OpenWrite(name)
}

// TestCloseLogsSkipsUnchangedCheckpoints: CloseLogs leaves the
// checkpoint file of a log closed as it was opened after a clean
// shutdown (rewriting 10,000 of them took 3 s of an idle broker's
// shutdown), writes a new one for a log that changed, and every log
// reopens clean at its end.
func TestCloseLogsSkipsUnchangedCheckpoints(t *testing.T) {
	mem := vfs.NewMem()
	if err := mem.MkdirAll("/data"); err != nil {
		t.Fatal(err)
	}
	ws, err := vfs.OpenWholeSyncer(mem, "/data")
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	fs := &ckptWrites{FS: mem}
	const n = 4
	cycle := func(appendTo ...int) {
		t.Helper()
		s := NewSyncer(1)
		defer s.Close()
		s.UseWholeSync(ws)
		logs := make([]*Log, n)
		for i := range logs {
			l, err := Open(Options{FS: fs, Dir: fmt.Sprintf("/data/t-%d", i), Config: DefaultConfig(), Syncer: s, Logger: quietLogger})
			if err != nil {
				t.Fatal(err)
			}
			logs[i] = l
		}
		for _, i := range appendTo {
			if _, _, err := logs[i].Append(mkBatch(t, 2, 100, 10), 0); err != nil {
				t.Fatal(err)
			}
		}
		if err := CloseLogs(s, logs); err != nil {
			t.Fatal(err)
		}
	}
	cycle(0, 1, 2, 3)
	fs.n.Store(0)
	cycle(2)
	if got := fs.n.Load(); got != 1 {
		t.Errorf("%d checkpoints rewritten closing logs of which one changed, want 1", got)
	}
	for i := range n {
		b, err := vfs.ReadFile(mem, fmt.Sprintf("/data/t-%d/%s", i, checkpointName))
		if err != nil {
			t.Fatal(err)
		}
		c, err := decodeCkptFileC(b)
		if err != nil {
			t.Fatal(err)
		}
		want := int64(2)
		if i == 2 {
			want = 4
		}
		if !c.clean || c.logEndOffset != want {
			t.Errorf("log %d: checkpoint clean %v at %d, want clean at %d", i, c.clean, c.logEndOffset, want)
		}
	}
	// A clean start of the unchanged ones and a crash-free reopen.
	fs.n.Store(0)
	cycle()
	if got := fs.n.Load(); got != 0 {
		t.Errorf("%d checkpoints rewritten closing unchanged logs, want 0", got)
	}
}
