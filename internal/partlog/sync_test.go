package partlog

import (
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gregor-streaming/gregor/internal/batch"
	"github.com/gregor-streaming/gregor/internal/vfs"
)

// countingFS counts File.Sync calls.
type countingFS struct {
	vfs.FS
	syncs atomic.Int64
	block chan struct{} // if non-nil, each File.Sync waits for a receive
}

type countingFile struct {
	vfs.File
	fs *countingFS
}

func (c *countingFS) wrap(f vfs.File, err error) (vfs.File, error) {
	if err != nil {
		return nil, err
	}
	return countingFile{f, c}, nil
}
func (c *countingFS) Create(n string) (vfs.File, error)     { return c.wrap(c.FS.Create(n)) }
func (c *countingFS) OpenAppend(n string) (vfs.File, error) { return c.wrap(c.FS.OpenAppend(n)) }
func (c *countingFS) OpenWrite(n string) (vfs.File, error)  { return c.wrap(c.FS.OpenWrite(n)) }
func (c *countingFS) Open(n string) (vfs.File, error)       { return c.wrap(c.FS.Open(n)) }
func (f countingFile) Sync() error {
	f.fs.syncs.Add(1)
	if f.fs.block != nil {
		<-f.fs.block
	}
	return f.File.Sync()
}

func TestRequestSyncGroupCommit(t *testing.T) {
	s := NewSyncer(2)
	defer s.Close()
	cfs := &countingFS{FS: vfs.NewMem()}
	tl := openTest(t, cfs, DefaultConfig())
	tl.syn = s
	tl.Close()
	tl.reopen()
	tl.append(mkBatch(t, 1, 1, 10))
	block := make(chan struct{})
	cfs.block = block
	cfs.syncs.Store(0)

	var mu sync.Mutex
	var got []int64
	var wg sync.WaitGroup
	done := func(off int64, err error) {
		if err != nil {
			t.Error(err)
		}
		mu.Lock()
		got = append(got, off)
		mu.Unlock()
		wg.Done()
	}
	wg.Add(1)
	tl.RequestSync(done) // starts a sync that blocks in File.Sync
	deadline := time.Now().Add(5 * time.Second)
	for cfs.syncs.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	// While it runs: more appends and requests, served by ONE next sync.
	for range 10 {
		tl.append(mkBatch(t, 1, 1, 10))
		wg.Add(1)
		tl.RequestSync(done)
	}
	close(block) // let every sync through
	wg.Wait()
	cfs.block = nil
	// The first round's worker calls its callback after releasing the
	// log, so the second round's may come first: order is not promised.
	slices.Sort(got)
	if len(got) != 11 || got[0] != 1 {
		t.Fatalf("callbacks %v", got)
	}
	for _, off := range got[1:] {
		if off != 11 {
			t.Fatalf("callbacks %v", got)
		}
	}
	// One fsync of the log per round (plus the directory, not counted).
	if n := cfs.syncs.Load(); n > 4 {
		t.Fatalf("%d fsyncs for 2 rounds", n)
	}
	if tl.RecoveryPoint() != 11 {
		t.Fatalf("recovery point %d", tl.RecoveryPoint())
	}
}

func TestRequestSyncExactlyOnce(t *testing.T) {
	s := NewSyncer(2)
	defer s.Close()
	var logs []*testLog
	for i := range 4 {
		tl := openTest(t, nil, smallConfig())
		tl.syn = s
		tl.dir = "data/t-" + string(rune('0'+i))
		tl.Close()
		tl.reopen()
		logs = append(logs, tl)
	}
	const perLog = 300
	var calls sync.Map // id -> count
	var wg sync.WaitGroup
	var closedErrs atomic.Int64
	caller := make(chan struct{})
	for li, tl := range logs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perLog {
				if _, _, err := tl.Append(mkBatch(t, 1, 1, 10), 0); err != nil && !errors.Is(err, ErrClosed) {
					t.Error(err)
				}
				id := li*perLog + i
				var n atomic.Int32
				calls.Store(id, &n)
				tl.RequestSync(func(off int64, err error) {
					select {
					case <-caller:
					default:
					}
					if n.Add(1) != 1 {
						t.Errorf("callback %d called twice", id)
					}
					if errors.Is(err, ErrClosed) {
						closedErrs.Add(1)
					} else if err != nil {
						t.Error(err)
					}
				})
				if li == 0 && i == perLog/2 {
					tl.Close() // the rest of log 0's requests fail
				}
			}
		}()
	}
	wg.Wait()
	for _, tl := range logs {
		tl.Close()
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		missing := 0
		calls.Range(func(_, v any) bool {
			if v.(*atomic.Int32).Load() != 1 {
				missing++
			}
			return true
		})
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d callbacks never called", missing)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if closedErrs.Load() == 0 {
		t.Fatal("no request failed with ErrClosed")
	}
}

func TestRequestSyncWithoutSyncer(t *testing.T) {
	tl := openTest(t, nil, DefaultConfig())
	ch := make(chan error, 1)
	tl.RequestSync(func(_ int64, err error) { ch <- err })
	mustErr(t, <-ch, ErrNoSyncer)
	s := NewSyncer(1)
	tl.syn = s
	tl.Close()
	tl.reopen()
	s.Close()
	tl.RequestSync(func(_ int64, err error) { ch <- err })
	mustErr(t, <-ch, ErrNoSyncer)
}

func TestSyncFailureIsSticky(t *testing.T) {
	ffs := vfs.NewFault(vfs.NewMem())
	tl := openTest(t, ffs, DefaultConfig())
	tl.append(mkBatch(t, 1, 1, 10))
	ffs.SetSyncError(errors.New("EIO"))
	if err := tl.Sync(); err == nil {
		t.Fatal("sync error lost")
	}
	ffs.Reset()
	if _, _, err := tl.Append(mkBatch(t, 1, 1, 10), 0); err == nil {
		t.Fatal("append after a failed fsync accepted")
	}
	if err := tl.Sync(); err == nil {
		t.Fatal("sync after a failed fsync succeeded")
	}
	if tl.RecoveryPoint() != 0 {
		t.Fatalf("recovery point %d", tl.RecoveryPoint())
	}
	// Reads still work.
	if out, err := tl.Read(nil, 0, 100, 10, true); err != nil || len(out) == 0 {
		t.Fatal(err)
	}
}

func TestWriteFailureUndone(t *testing.T) {
	ffs := vfs.NewFault(vfs.NewMem())
	tl := openTest(t, ffs, DefaultConfig())
	want := [][]byte{}
	b := mkBatch(t, 1, 1, 100)
	tl.Append(b, 0)
	want = append(want, b)
	ffs.SetWriteError(errors.New("ENOSPC"))
	if _, _, err := tl.Append(mkBatch(t, 1, 1, 100), 0); err == nil {
		t.Fatal("write error lost")
	}
	ffs.Reset()
	b = mkBatch(t, 1, 2, 100)
	tl.Append(b, 0)
	want = append(want, b)
	checkContent(t, tl, want)
}

// TestCheckpointerWritesProgressByBytes: a busy log's checkpoint follows
// its recovery point every ckptProgressBytes, not only once a minute, so
// recovery after a crash rescans a bounded amount of it.
func TestCheckpointerWritesProgressByBytes(t *testing.T) {
	tl := openCheckpointed(t)
	checkpointed := func() int64 {
		c, err := decodeCkptFileC(tl.readFile(checkpointName))
		if err != nil {
			t.Fatal(err)
		}
		return c.recoveryPoint
	}
	b := mkBatch(t, 64, 1, 16<<10) // 1 MiB
	for range ckptProgressBytes/(1<<20) - 2 {
		tl.append(b)
	}
	tl.syncWait()
	time.Sleep(50 * time.Millisecond) // rounds run; progress is not due
	if rp := checkpointed(); rp != 0 {
		t.Fatalf("checkpointed recovery point %d before %d bytes", rp, ckptProgressBytes)
	}
	for range 4 {
		tl.append(b)
	}
	tl.syncWait()
	want := tl.LogEndOffset()
	deadline := time.Now().Add(5 * time.Second)
	for checkpointed() != want {
		if time.Now().After(deadline) {
			t.Fatalf("checkpointed recovery point %d, want %d", checkpointed(), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// openCheckpointed opens a log with a Syncer whose checkpoint rounds
// run every 10 ms.
func openCheckpointed(t *testing.T) *testLog {
	s := newSyncer(1, 10*time.Millisecond)
	t.Cleanup(func() { s.Close() })
	tl := openTest(t, nil, DefaultConfig())
	tl.syn = s
	tl.Close()
	tl.reopen()
	return tl
}

// syncWait requests a sync and waits for its callback.
func (tl *testLog) syncWait() {
	ch := make(chan struct{})
	tl.RequestSync(func(int64, error) { close(ch) })
	<-ch
}

func TestCheckpointerWritesLazily(t *testing.T) {
	tl := openCheckpointed(t)
	tl.append(mkBatch(t, 5, 1, 10))
	tl.SetHighWatermark(5)
	tl.now.Add(ckptProgressInterval) // progress alone is written once a minute
	tl.syncWait()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := decodeCkptFileC(tl.readFile(checkpointName))
		if err == nil && c.highWatermark == 5 && c.recoveryPoint == 5 && !c.clean {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("checkpoint %+v %v", c, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestConcurrentAppendReadSync(t *testing.T) {
	s := NewSyncer(2)
	defer s.Close()
	tl := openTest(t, nil, Config{SegmentBytes: 20000, IndexIntervalBytes: 300})
	tl.syn = s
	tl.Close()
	tl.reopen()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var synced atomic.Int64
	// callbacks counts the sync requests not yet answered: each must be
	// answered before the crash below closes the log (ErrClosed).
	var callbacks sync.WaitGroup
	wg.Add(1)
	go func() { // appender
		defer wg.Done()
		defer close(stop)
		for i := range 1500 {
			if _, _, err := tl.Append(mkBatch(t, 1+i%4, int64(i), 50+i%200), int32(i/500)); err != nil {
				t.Error(err)
				return
			}
			if i%10 == 0 {
				callbacks.Add(1)
				tl.RequestSync(func(off int64, err error) {
					defer callbacks.Done()
					if err != nil {
						t.Error(err)
					}
					for {
						cur := synced.Load()
						if off <= cur || synced.CompareAndSwap(cur, off) {
							return
						}
					}
				})
			}
			if i == 700 {
				if _, err := tl.DeleteSegmentsBefore(tl.LogEndOffset() / 4); err != nil {
					t.Error(err)
				}
			}
		}
	}()
	for r := range 3 {
		wg.Add(1)
		go func() { // readers: tail and random
			defer wg.Done()
			buf := make([]byte, 0, 64<<10)
			off := int64(0)
			for {
				select {
				case <-stop:
					return
				default:
				}
				if r == 0 {
					off = max(tl.LogEndOffset()-3, 0)
				}
				out, err := tl.Read(buf[:0], off, 16<<10, tl.LogEndOffset(), true)
				if errors.Is(err, ErrOffsetOutOfRange) {
					off = tl.LogStartOffset()
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				prev := int64(-1)
				for p := 0; p < len(out); {
					h, err := batch.Validate(out[p:])
					if err != nil || h.BaseOffset < prev || (prev < 0 && h.LastOffset() < off) {
						t.Errorf("reader %d read at %d: batch %d..%d after %d: %v; LSO %d segs %+v", r, off, h.BaseOffset, h.LastOffset(), prev, err, tl.LogStartOffset(), tl.Segments())
						return
					}
					prev = h.NextOffset()
					p += h.Size()
				}
				if prev > 0 {
					off = prev
				}
				_ = tl.Segments()
				_, _, _, _ = tl.OffsetForTimestamp(int64(off))
			}
		}()
	}
	wg.Wait()
	callbacks.Wait()
	if err := tl.Sync(); err != nil {
		t.Fatal(err)
	}
	if tl.RecoveryPoint() != tl.LogEndOffset() {
		t.Fatalf("RP %d LEO %d", tl.RecoveryPoint(), tl.LogEndOffset())
	}
	tl.readAll(tl.LogStartOffset())
	tl.crash()
	tl.readAll(tl.LogStartOffset())
}

// TestCrashKeepsAcknowledged: every offset whose RequestSync succeeded
// survives a crash at any moment.
func TestCrashKeepsAcknowledged(t *testing.T) {
	for seed := range uint64(10) {
		s := NewSyncer(2)
		tl := openTest(t, nil, Config{SegmentBytes: 3000, IndexIntervalBytes: 200})
		tl.syn = s
		tl.Close()
		tl.reopen()
		var acked atomic.Int64
		var wg sync.WaitGroup
		var mu sync.Mutex
		var stored [][]byte
		for i := range 200 {
			b := mkBatch(t, 1+i%3, int64(i), 50)
			mu.Lock()
			if _, _, err := tl.Append(b, 0); err != nil {
				t.Fatal(err)
			}
			stored = append(stored, b)
			mu.Unlock()
			wg.Add(1)
			tl.RequestSync(func(off int64, err error) {
				defer wg.Done()
				for err == nil {
					cur := acked.Load()
					if off <= cur || acked.CompareAndSwap(cur, off) {
						break
					}
				}
			})
			if i == 100+int(seed)*7 {
				// Crash now: copy what is durable while syncs are in flight.
				mem := tl.fs.(*vfs.MemFS)
				ackedAtCrash := acked.Load()
				crashed := mem.Crash()
				wg.Wait()
				s.Close()
				tl.Log.Close()
				tl.fs, tl.syn = crashed, nil
				tl.reopen()
				if tl.LogEndOffset() < ackedAtCrash {
					t.Fatalf("seed %d: LEO %d after crash, %d was acknowledged", seed, tl.LogEndOffset(), ackedAtCrash)
				}
				got := tl.readAll(0)
				checkContent(t, tl, stored[:len(got)])
				tl.Close()
				break
			}
		}
	}
}

// The lazy checkpoint is rewritten when its recovery point would move to
// another segment, or once a minute, not on every sync: recovery starts
// at the segment's beginning anyway.
func TestCheckpointProgressWithinSegmentDeferred(t *testing.T) {
	tl := openTest(t, nil, Config{SegmentBytes: 2048, IndexIntervalBytes: 256})
	s := newSyncer(1, time.Hour) // the test runs the checkpoint rounds
	defer s.Close()
	tl.Close()
	tl.syn = s
	tl.reopen()
	rp := func() int64 {
		t.Helper()
		b, err := vfs.ReadFile(tl.fs, tl.dir+"/"+checkpointName)
		if err != nil {
			t.Fatal(err)
		}
		c, err := decodeCkptFileC(b)
		if err != nil {
			t.Fatal(err)
		}
		return c.recoveryPoint
	}
	round := func() bool {
		t.Helper()
		return tl.checkpointIfDirty(false)
	}
	// The first append also starts epoch 0's entry: recovery would
	// rebuild it from the batches, so it is progress too.
	tl.append(mkBatch(t, 1, 1, 100))
	syncNow(t, tl.Log)
	if round() || rp() != 0 {
		t.Fatalf("checkpoint rewritten for progress within the segment: recovery point %d", rp())
	}
	tl.append(mkBatch(t, 1, 2, 100))
	syncNow(t, tl.Log)
	if round() || rp() != 0 {
		t.Fatalf("checkpoint rewritten for progress within the segment: recovery point %d", rp())
	}
	// Past the segment: rewritten.
	for i := range 20 {
		tl.append(mkBatch(t, 1, int64(3+i), 100))
	}
	if len(tl.Segments()) < 2 {
		t.Fatal("no roll")
	}
	syncNow(t, tl.Log)
	if !round() || rp() != 22 {
		t.Fatalf("checkpoint after the recovery point left its segment: recovery point %d", rp())
	}
	// Within the new segment: deferred, until a minute passed.
	tl.append(mkBatch(t, 1, 30, 100))
	syncNow(t, tl.Log)
	if round() {
		t.Fatal("checkpoint rewritten within the segment")
	}
	tl.now.Add(ckptProgressInterval)
	if !round() || rp() != 23 {
		t.Fatalf("checkpoint a minute later: recovery point %d, want 23", rp())
	}
	// A structural change is written at the next round.
	if err := tl.Roll(); err != nil {
		t.Fatal(err)
	}
	if !round() {
		t.Fatal("checkpoint after a roll deferred")
	}
	// An epoch entry starting before the checkpointed recovery point's
	// segment is structure (recovery would not rebuild it); one in it
	// is progress.
	if _, _, err := tl.Append(mkBatch(t, 1, 40, 100), 2); err != nil {
		t.Fatal(err)
	}
	if round() {
		t.Fatal("checkpoint rewritten for an epoch entry recovery rebuilds")
	}
	if _, err := tl.AppendRaw(leaderEpochBatch(t, tl.LogEndOffset(), 3)); err != nil {
		t.Fatal(err)
	}
	if round() {
		t.Fatal("checkpoint rewritten for a follower's epoch entry recovery rebuilds")
	}
}

// leaderEpochBatch is a one-record batch at offset base stamped with
// leader epoch epoch, as a follower receives it.
func leaderEpochBatch(t *testing.T, base int64, epoch int32) []byte {
	t.Helper()
	b := mkBatch(t, 1, 50, 100)
	batch.SetBaseOffset(b, base)
	batch.SetPartitionLeaderEpoch(b, epoch)
	return b
}

// TestDeferredEpochEntriesRebuiltAfterCrash: epoch entries left out of
// the checkpoint (markCkptEpochLocked) come back from the batches when a
// crash leaves the checkpoint behind: by recovery when the batches
// reached a synced segment, by replay when only the journal has them.
func TestDeferredEpochEntriesRebuiltAfterCrash(t *testing.T) {
	fill := func(t *testing.T, l *Log, round func()) []EpochEntry {
		t.Helper()
		for e := int32(0); e < 4; e++ {
			for range 3 {
				if _, _, err := l.Append(mkBatch(t, 2, 1, 100), e); err != nil {
					t.Fatal(err)
				}
			}
			syncNow(t, l)
			round()
			if l.checkpointIfDirty(false) {
				t.Fatalf("checkpoint written for epoch %d", e)
			}
		}
		want := l.LeaderEpochs()
		if len(want) != 4 {
			t.Fatalf("epochs %v", want)
		}
		return want
	}
	check := func(t *testing.T, l *Log, want []EpochEntry) {
		t.Helper()
		if got := l.LeaderEpochs(); !slices.Equal(got, want) || l.LogEndOffset() != 24 {
			t.Fatalf("after the crash: epochs %v LEO %d, want %v and 24", got, l.LogEndOffset(), want)
		}
	}
	t.Run("segments", func(t *testing.T) {
		tl := openTest(t, nil, smallConfig())
		s := newSyncer(1, time.Hour)
		defer s.Close()
		tl.syn = s
		tl.Close()
		tl.reopen()
		want := fill(t, tl.Log, func() {})
		tl.crash()
		check(t, tl.Log, want)
	})
	t.Run("journal", func(t *testing.T) {
		e := newJenv(t, "a-0")
		want := fill(t, e.logs["a-0"], func() {})
		e.crash(vfs.CrashOptions{})
		check(t, e.logs["a-0"], want)
	})
	t.Run("journal cycled", func(t *testing.T) {
		e := newJenv(t, "a-0")
		want := fill(t, e.logs["a-0"], func() {
			if !e.syn.JournalCycle() {
				t.Fatal("cycle failed")
			}
		})
		e.crashWithoutJournal()
		check(t, e.logs["a-0"], want)
	})
}
