package partlog

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gregor-streaming/gregor/internal/vfs"
)

// activeSizes returns the active segment's file name, its size in the
// log (its data) and the file's size (data and reserved space).
func activeSizes(t *testing.T, tl *testLog) (name string, data, file int64) {
	t.Helper()
	segs := tl.Segments()
	s := segs[len(segs)-1]
	name = path.Join(tl.dir, segName(s.BaseOffset, ".log"))
	fi, err := tl.fs.Stat(name)
	if err != nil {
		t.Fatal(err)
	}
	return name, s.Size, fi.Size
}

func preallocConfig() Config {
	cfg := DefaultConfig()
	cfg.SegmentBytes = 64 << 20
	return cfg
}

// fillSynced is fill with a sync after every batch: a log with small
// syncs, which reserves.
func fillSynced(t *testing.T, tl *testLog, n int, valueSize int) [][]byte {
	t.Helper()
	var out [][]byte
	for range n {
		out = append(out, fill(t, tl, 1, valueSize)...)
		syncLog(t, tl)
	}
	return out
}

func syncLog(t *testing.T, tl *testLog) {
	t.Helper()
	if err := tl.Sync(); err != nil {
		t.Fatal(err)
	}
}

// TestPreallocReservesAhead: a log synced on its own reserves space past
// its active segment's data once the segment holds 1 MiB, in steps of
// the segment's size; reads never see the zeros; a clean close trims
// the file and the next open trusts it.
func TestPreallocReservesAhead(t *testing.T) {
	tl := openTest(t, nil, preallocConfig())
	want := fill(t, tl, 40, 10_000) // ~400 KB: too small to reserve
	syncLog(t, tl)
	if _, data, file := activeSizes(t, tl); file != data {
		t.Fatalf("%d bytes of data in a %d-byte file: reserved below %d bytes", data, file, preallocMinData)
	}
	want = append(want, fillSynced(t, tl, 120, 10_000)...)
	// Space is reserved, never more than the data.
	if _, data, file := activeSizes(t, tl); data < preallocMinData || file <= data || file > 2*data {
		t.Fatalf("%d bytes of data in a %d-byte file", data, file)
	}
	// Appends go into the reserved space, which is extended in steps.
	grew := 0
	for range 60 {
		_, _, file := activeSizes(t, tl)
		want = append(want, fillSynced(t, tl, 1, 10_000)...)
		_, data2, file2 := activeSizes(t, tl)
		if file2 <= data2 || file2 > 2*data2 {
			t.Fatalf("%d bytes of data in a %d-byte file", data2, file2)
		}
		if file2 != file {
			grew++
		}
	}
	if grew > 3 {
		t.Fatalf("the file grew in %d of 60 syncs", grew)
	}
	checkContent(t, tl, want)
	name, data, _ := activeSizes(t, tl)
	if err := tl.Close(); err != nil {
		t.Fatal(err)
	}
	if fi, err := tl.fs.Stat(name); err != nil || fi.Size != data {
		t.Fatalf("closed: %d bytes of data in a %d-byte file (%v)", data, fi.Size, err)
	}
	tl.logs.Reset()
	tl.reopen()
	if strings.Contains(tl.logs.String(), "recovering") {
		t.Fatalf("clean close not trusted:\n%s", tl.logs)
	}
	checkContent(t, tl, want)
}

// TestPreallocRollTrimsDurably: a roll trims the old segment to its data
// and makes that durable before the next segment exists, so a power loss
// right after the roll finds no zeros in a segment that has a successor.
func TestPreallocRollTrimsDurably(t *testing.T) {
	cfg := preallocConfig()
	cfg.SegmentBytes = 3 << 20
	tl := openTest(t, nil, cfg)
	want := fillSynced(t, tl, 150, 10_000)
	name, _, _ := activeSizes(t, tl)
	capped := false
	for len(tl.Segments()) == 1 {
		_, data, file := activeSizes(t, tl)
		if file <= data || file > cfg.SegmentBytes {
			t.Fatalf("%d bytes of data in a %d-byte file (segment.bytes %d)", data, file, cfg.SegmentBytes)
		}
		capped = capped || file == cfg.SegmentBytes
		want = append(want, fill(t, tl, 1, 10_000)...)
		if len(tl.Segments()) == 1 { // not after the roll: the roll's own sync is tested
			syncLog(t, tl)
		}
	}
	if !capped {
		t.Fatal("the reservation never reached segment.bytes")
	}
	old := tl.Segments()[0]
	crashed := tl.fs.(*vfs.MemFS).Crash()
	for fs, what := range map[vfs.FS]string{tl.fs: "now", crashed: "after a power loss"} {
		fi, err := fs.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size != old.Size {
			t.Fatalf("rolled segment %s: %d bytes, want its data's %d", what, fi.Size, old.Size)
		}
	}
	syncLog(t, tl)
	tl.crash()
	checkContent(t, tl, want)
	if strings.Contains(tl.logs.String(), "torn tail") || strings.Contains(tl.logs.String(), "CORRUPT") {
		t.Fatalf("recovery found damage:\n%s", tl.logs)
	}
}

// TestPreallocCrash: after a process kill the zeros past the data are
// trimmed and every written batch is kept; after a power loss, with or
// without torn writes into the reserved space, everything synced is kept
// and what follows is a valid prefix of what was written.
func TestPreallocCrash(t *testing.T) {
	run := func(t *testing.T, crash func(*vfs.MemFS) *vfs.MemFS, check func(tl *testLog, synced, all [][]byte)) {
		tl := openTest(t, nil, preallocConfig())
		synced := fillSynced(t, tl, 150, 10_000)
		all := append(synced[:len(synced):len(synced)], fill(t, tl, 40, 10_000)...)
		if _, data, file := activeSizes(t, tl); file <= data {
			t.Fatalf("nothing reserved: %d bytes of data in a %d-byte file", data, file)
		}
		tl.fs = crash(tl.fs.(*vfs.MemFS))
		tl.Log.Delete()
		tl.logs.Reset()
		tl.reopen()
		check(tl, synced, all)
		if _, data, file := activeSizes(t, tl); file != data {
			t.Fatalf("recovered: %d bytes of data in a %d-byte file", data, file)
		}
	}
	t.Run("kill", func(t *testing.T) {
		run(t, (*vfs.MemFS).Kill, func(tl *testLog, _, all [][]byte) {
			checkContent(t, tl, all)
			if !strings.Contains(tl.logs.String(), "trimming zeros past the data") {
				t.Fatalf("no trim logged:\n%s", tl.logs)
			}
		})
	})
	t.Run("power loss", func(t *testing.T) {
		run(t, (*vfs.MemFS).Crash, func(tl *testLog, synced, _ [][]byte) {
			checkContent(t, tl, synced)
			// Zeros follow the checkpoint's mark: recovery starts there.
			if !strings.Contains(tl.logs.String(), fmt.Sprintf("offset=%d", tl.LogEndOffset())) {
				t.Fatalf("recovery did not start at the mark:\n%s", tl.logs)
			}
		})
	})
	for seed := range uint64(5) {
		t.Run("torn", func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 1))
			run(t, func(m *vfs.MemFS) *vfs.MemFS { return m.CrashWithTornTails(rng) }, func(tl *testLog, synced, all [][]byte) {
				got := len(tl.readAll(tl.LogStartOffset()))
				if got < len(synced) || got > len(all) {
					t.Fatalf("recovered %d batches, want %d to %d", got, len(synced), len(all))
				}
				checkContent(t, tl, all[:got])
			})
		})
	}
}

// TestPreallocTruncate: truncating the active segment drops the
// reservation with the bytes past the cut; appends continue at the cut.
func TestPreallocTruncate(t *testing.T) {
	tl := openTest(t, nil, preallocConfig())
	want := fillSynced(t, tl, 160, 10_000)
	if _, data, file := activeSizes(t, tl); file <= data {
		t.Fatalf("nothing reserved: %d bytes of data in a %d-byte file", data, file)
	}
	hs := tl.readAll(tl.LogStartOffset())
	keep := len(hs) - 20
	if err := tl.TruncateTo(hs[keep].BaseOffset); err != nil {
		t.Fatal(err)
	}
	if _, data, file := activeSizes(t, tl); file != data {
		t.Fatalf("truncated: %d bytes of data in a %d-byte file", data, file)
	}
	want = append(want[:keep], fillSynced(t, tl, 60, 10_000)...)
	checkContent(t, tl, want)
	tl.crash()
	checkContent(t, tl, want)
}

// TestPreallocUnsupported: a file system without preallocation works as
// before.
func TestPreallocUnsupported(t *testing.T) {
	tl := openTest(t, &countingFS{FS: vfs.NewMem()}, preallocConfig())
	want := fillSynced(t, tl, 200, 10_000)
	if _, data, file := activeSizes(t, tl); file != data {
		t.Fatalf("%d bytes of data in a %d-byte file", data, file)
	}
	checkContent(t, tl, want)
}

// TestPreallocNotForLargeSyncs: a log whose syncs cover much data (a
// throughput log) does not reserve: there the zeros cost more than the
// commits they save.
func TestPreallocNotForLargeSyncs(t *testing.T) {
	tl := openTest(t, nil, preallocConfig())
	for range 20 {
		fill(t, tl, 10, 10_000) // ~100 KB a sync
		syncLog(t, tl)
	}
	if _, data, file := activeSizes(t, tl); file != data {
		t.Fatalf("%d bytes of data in a %d-byte file", data, file)
	}
}

// TestPreallocConcurrentAppends: on the OS's file system, where
// reserving writes zeros, appends racing the syncs that reserve (small
// syncs, an appender that outruns them) never lose data to the zeros.
func TestPreallocConcurrentAppends(t *testing.T) {
	s := NewSyncer(1)
	defer s.Close()
	var reserved atomic.Int64
	s.Observe(Observers{Preallocated: func(n int64) { reserved.Add(n) }})
	tl := &testLog{t: t, fs: vfs.Default, dir: t.TempDir(), cfg: preallocConfig(), syn: s,
		now: &fakeClock{t: time.Unix(1_700_000_000, 0)}, logs: &lockedBuffer{}}
	tl.reopen()
	defer tl.Log.Close()
	var want [][]byte
	var wg sync.WaitGroup
	for i := range 3000 {
		b := mkBatch(t, 1, int64(i), 1000+i%3000)
		if _, _, err := tl.Append(b, 0); err != nil {
			t.Fatal(err)
		}
		want = append(want, b)
		wg.Add(1)
		tl.RequestSync(func(int64, error) { wg.Done() })
		if i%50 == 0 {
			wg.Wait() // let the syncs catch up now and then, so they are small
		}
	}
	wg.Wait()
	if reserved.Load() == 0 {
		t.Fatal("nothing reserved: the race went untested")
	}
	checkContent(t, tl, want)
	if err := tl.Close(); err != nil {
		t.Fatal(err)
	}
	tl.reopen()
	checkContent(t, tl, want)
	if strings.Contains(tl.logs.String(), "CORRUPT") || strings.Contains(tl.logs.String(), "torn") {
		t.Fatalf("damage found:\n%s", tl.logs)
	}
}

// gatedFS holds the reserver's write-back of reserved zeros (WriteBack)
// until gate closes; entered closes at the first.
type gatedFS struct {
	vfs.FS
	gate, entered chan struct{}
	once          sync.Once
	// err, if set, is what each WriteBack returns (without waiting).
	err error
}

type gatedFile struct {
	vfs.File
	fs *gatedFS
}

func (g *gatedFS) OpenWrite(n string) (vfs.File, error) {
	f, err := g.FS.OpenWrite(n)
	if err != nil {
		return nil, err
	}
	return gatedFile{f, g}, nil
}

func (f gatedFile) Preallocate(size int64) error { return f.File.(vfs.Preallocator).Preallocate(size) }

func (f gatedFile) WriteBack(off, n int64) error {
	f.fs.once.Do(func() { close(f.fs.entered) })
	if f.fs.err != nil {
		return f.fs.err
	}
	<-f.fs.gate
	return nil
}

// openGated opens a test log on fs with a Syncer of its own; the log
// closes before the Syncer, and both after the test's defers.
func openGated(t *testing.T, fs *gatedFS) *testLog {
	s := NewSyncer(1)
	t.Cleanup(s.Close)
	tl := &testLog{t: t, fs: fs, dir: "data/topic-0", cfg: preallocConfig(), syn: s,
		now: &fakeClock{t: time.Unix(1_700_000_000, 0)}, logs: &lockedBuffer{}}
	tl.reopen()
	t.Cleanup(func() { tl.Log.Close() })
	return tl
}

// fillUntilReserving appends and syncs one batch at a time (one call of
// step) until a sync queues a reservation, waits for the reserver to
// reach its first write-back, and returns the batches written. It stops
// appending once the job is queued: appends made while the reserver is
// still on its way would eat into the reservation's target, which the
// caller's own appends must not pass.
func fillUntilReserving(t *testing.T, tl *testLog, fs *gatedFS, step func() [][]byte) [][]byte {
	t.Helper()
	var out [][]byte
	for i := 0; ; i++ {
		out = append(out, step()...)
		if busy, _ := reservationState(tl); busy {
			break
		}
		select {
		case <-fs.entered:
			return out
		default:
			if i > 1000 {
				t.Fatal("nothing reserved")
			}
		}
	}
	select {
	case <-fs.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the reserver never reached its write-back")
	}
	return out
}

// reservationState reports the active writer's reservation flags.
func reservationState(tl *testLog) (busy, off bool) {
	tl.mu.Lock()
	w := tl.w
	tl.mu.Unlock()
	w.res.mu.Lock()
	defer w.res.mu.Unlock()
	return w.res.busy, w.res.off
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal(what)
		}
	}
}

// TestPreallocOffTheSyncPath: with a Syncer, the zeros are written by
// its reserver, not by the sync that finds the reservation short, so
// syncs (acknowledgements) go on while a reservation is being written;
// appends that catch up with it are kept, and the reservation lands.
func TestPreallocOffTheSyncPath(t *testing.T) {
	fs := &gatedFS{FS: vfs.NewMem(), gate: make(chan struct{}), entered: make(chan struct{})}
	released := false
	release := func() {
		if !released {
			released = true
			close(fs.gate)
		}
	}
	defer release()
	tl := openGated(t, fs)
	syncOne := func() {
		t.Helper()
		done := make(chan error, 1)
		tl.RequestSync(func(_ int64, err error) { done <- err })
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a sync waited for the reservation")
		}
	}
	step := func() [][]byte {
		b := fill(t, tl, 1, 10_000)
		syncOne()
		return b
	}
	want := fillUntilReserving(t, tl, fs, step)
	// The reserver waits in its first write-back; appends (past its
	// first piece) and their syncs go on.
	for range 50 {
		want = append(want, step()...)
	}
	release()
	waitFor(t, "the reservation did not finish", func() bool { busy, _ := reservationState(tl); return !busy })
	if _, data, file := activeSizes(t, tl); file <= data || file > 2*data {
		t.Fatalf("%d bytes of data in a %d-byte file", data, file)
	}
	checkContent(t, tl, want)
	if err := tl.Close(); err != nil {
		t.Fatal(err)
	}
	tl.reopen()
	checkContent(t, tl, want)
	if strings.Contains(tl.logs.String(), "recovering") {
		t.Fatalf("clean close not trusted:\n%s", tl.logs)
	}
}

// TestPreallocWriteBackFails: a reservation whose write-back fails
// stops reserving for the segment and leaves the log working: appends
// and syncs go on, and what was written is kept.
func TestPreallocWriteBackFails(t *testing.T) {
	fs := &gatedFS{FS: vfs.NewMem(), entered: make(chan struct{}), err: errors.New("injected writeback failure")}
	tl := openGated(t, fs)
	want := fillUntilReserving(t, tl, fs, func() [][]byte { return fillSynced(t, tl, 1, 10_000) })
	waitFor(t, "reserving not turned off after a failed write-back", func() bool {
		busy, off := reservationState(tl)
		return off && !busy
	})
	_, _, file := activeSizes(t, tl)
	want = append(want, fillSynced(t, tl, 100, 10_000)...)
	if _, data, file2 := activeSizes(t, tl); file2 > max(file, data) {
		t.Fatalf("reserved again after the failure: %d bytes of data in a %d-byte file (%d before)", data, file2, file)
	}
	checkContent(t, tl, want)
	// Every batch was synced: a power loss keeps them all.
	tl.fs = fs.FS.(*vfs.MemFS).Crash()
	tl.Log.Delete()
	tl.reopen()
	checkContent(t, tl, want)
}
