package partlog

import (
	"fmt"
	"maps"
	"path"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gregor-streaming/gregor/internal/vfs"
)

// advice is one call of a CacheAdvisor method.
type advice struct {
	name   string // base name
	path   string
	drop   bool // DropCache; else Prefetch
	off, n int64
}

// adviseFS wraps a MemFS so its files take page cache advice, records
// every call and checks that a drop covers only durable bytes. It also
// records the ranges whose writeback its files are asked to start
// (vfs.WriteBehinder), apart from the advice.
type adviseFS struct {
	*vfs.MemFS
	t       testing.TB
	mu      sync.Mutex
	as      []advice
	behinds [][2]int64 // off, n
	// allocs are the ranges its files allocated (vfs.Allocator), by
	// file name; allocErr, when set, is what Allocate returns.
	allocs   map[string][][2]int64
	allocErr error
	// truncs are the sizes its files were truncated to, by file name.
	truncs map[string][]int64
}

type adviseFile struct {
	vfs.File
	fs   *adviseFS
	name string
}

func (a *adviseFS) wrap(name string, f vfs.File, err error) (vfs.File, error) {
	if err != nil {
		return nil, err
	}
	return &adviseFile{File: f, fs: a, name: name}, nil
}

func (a *adviseFS) Create(name string) (vfs.File, error) {
	f, err := a.MemFS.Create(name)
	return a.wrap(name, f, err)
}

func (a *adviseFS) OpenAppend(name string) (vfs.File, error) {
	f, err := a.MemFS.OpenAppend(name)
	return a.wrap(name, f, err)
}

func (a *adviseFS) OpenWrite(name string) (vfs.File, error) {
	f, err := a.MemFS.OpenWrite(name)
	return a.wrap(name, f, err)
}

func (a *adviseFS) Open(name string) (vfs.File, error) {
	f, err := a.MemFS.Open(name)
	return a.wrap(name, f, err)
}

func (f *adviseFile) DropCache(off, n int64) error {
	// What a crash now would keep must hold every dropped byte.
	durable, err := f.fs.MemFS.Crash().Stat(f.name)
	if err != nil || durable.Size < off+n {
		f.fs.t.Errorf("DropCache(%s, %d, %d) of bytes not durable (durable size %d, %v)", f.name, off, n, durable.Size, err)
	}
	return f.record(advice{name: path.Base(f.name), path: f.name, drop: true, off: off, n: n})
}

func (f *adviseFile) Prefetch(off, n int64) error {
	return f.record(advice{name: path.Base(f.name), off: off, n: n})
}

func (f *adviseFile) record(a advice) error {
	f.fs.mu.Lock()
	f.fs.as = append(f.fs.as, a)
	f.fs.mu.Unlock()
	return nil
}

func (f *adviseFile) StartWriteBack(off, n int64) error {
	f.fs.mu.Lock()
	f.fs.behinds = append(f.fs.behinds, [2]int64{off, n})
	f.fs.mu.Unlock()
	return nil
}

func (f *adviseFile) Allocate(off, n int64) error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.fs.allocs == nil {
		f.fs.allocs = map[string][][2]int64{}
	}
	f.fs.allocs[path.Base(f.name)] = append(f.fs.allocs[path.Base(f.name)], [2]int64{off, n})
	return f.fs.allocErr
}

func (f *adviseFile) Truncate(size int64) error {
	f.fs.mu.Lock()
	if f.fs.truncs == nil {
		f.fs.truncs = map[string][]int64{}
	}
	f.fs.truncs[path.Base(f.name)] = append(f.fs.truncs[path.Base(f.name)], size)
	f.fs.mu.Unlock()
	return f.File.Truncate(size)
}

// takeBehinds returns the write-behind ranges recorded since the last
// call.
func (a *adviseFS) takeBehinds() [][2]int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := a.behinds
	a.behinds = nil
	return out
}

func (a *adviseFS) take() []advice {
	a.mu.Lock()
	defer a.mu.Unlock()
	as := a.as
	a.as = nil
	return as
}

// windowLimits is, for segment files named by base offset with the
// sizes given, how much of each lies further back than the log's newest
// keep bytes.
func windowLimits(size map[string]int64, keep int64) map[string]int64 {
	names := slices.Sorted(maps.Keys(size))
	limit := map[string]int64{}
	after := int64(0)
	for _, name := range slices.Backward(names) {
		limit[name] = max(size[name]-max(keep-after, 0), 0)
		after += size[name]
	}
	return limit
}

// checkDrops checks that the drops of each file are page-aligned,
// contiguous from 0 (each from the previous end, or from that rounded
// down to releaseAlign) and end at or below limit(name), and returns
// where each file's drops end.
func checkDrops(t *testing.T, as []advice, limit func(name string) int64) map[string]int64 {
	t.Helper()
	end := map[string]int64{}
	for _, a := range as {
		if !a.drop {
			continue
		}
		if a.off%4096 != 0 || (a.off+a.n)%4096 != 0 {
			t.Errorf("%s: drop [%d, %d) not page-aligned", a.name, a.off, a.off+a.n)
		}
		if a.off != end[a.name] && (a.off != end[a.name]&^(releaseAlign-1) || a.off+a.n <= end[a.name]) {
			t.Errorf("%s: drop starts at %d, previous ended at %d", a.name, a.off, end[a.name])
		}
		end[a.name] = a.off + a.n
		if lim := limit(a.name); end[a.name] > lim {
			t.Errorf("%s: drop up to %d, beyond %d", a.name, end[a.name], lim)
		}
	}
	return end
}

// TestDropCachedBehindDurable: after syncs, the pages of durable segment
// bytes older than the keep window are released, contiguously, never
// those of unsynced bytes, through both Sync and RequestSync; a rolled
// segment is released up to its keep window whatever the amount.
func TestDropCachedBehindDurable(t *testing.T) {
	const keep = 1 << 20
	s := NewSyncer(1)
	defer s.Close()
	s.KeepCached(keep)
	afs := &adviseFS{MemFS: vfs.NewMem(), t: t}
	tl := openTest(t, afs, Config{SegmentBytes: 24 << 20})
	tl.syn = s
	tl.Close()
	tl.reopen()

	b := mkBatch(t, 16, 1, 8<<10) // ~128 KiB
	size := map[string]int64{}
	active := func() string { return segName(tl.act.seg.base, logSuffix) }
	for i := range 300 {
		tl.append(b)
		size[active()] += int64(len(b))
		switch {
		case i%10 == 3:
			if err := tl.Sync(); err != nil {
				t.Fatal(err)
			}
		case i%10 == 7:
			done := make(chan error, 1)
			tl.RequestSync(func(_ int64, err error) { done <- err })
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tl.Sync(); err != nil {
		t.Fatal(err)
	}
	as := afs.take()
	// The window is the log's newest keep bytes, across segments.
	limit := windowLimits(size, keep)
	end := checkDrops(t, as, func(name string) int64 { return limit[name] })
	if len(size) < 2 {
		t.Fatalf("want a rolled segment, have %v", size)
	}
	for name := range size {
		want := limit[name] &^ 4095
		if name != active() && end[name] != want {
			t.Errorf("rolled %s: dropped up to %d, want %d", name, end[name], want)
		}
		if name == active() && end[name] < want-dropCacheMin {
			t.Errorf("active %s: dropped up to %d, want at least %d", name, end[name], want-dropCacheMin)
		}
	}
	// The log reads back whole.
	if hs := tl.readAll(0); len(hs) != 300 {
		t.Fatalf("read %d batches, want 300", len(hs))
	}

	// No cap and no budget: nothing is released, as Kafka.
	s.KeepCached(-1)
	s.CacheBudget(-1)
	afs.take()
	for range 100 {
		tl.append(b)
	}
	if err := tl.Sync(); err != nil {
		t.Fatal(err)
	}
	for _, a := range afs.take() {
		if a.drop {
			t.Fatalf("KeepCached(-1), CacheBudget(-1): drop %+v", a)
		}
	}
}

// TestCacheBudgetSharedByBusyLogs: once more logs sync in an interval
// than the budget holds windows for, each keeps its share of the budget
// (never less than cacheWindowMin) and releases what is behind it;
// without a budget the same logs release nothing.
func TestCacheBudgetSharedByBusyLogs(t *testing.T) {
	const (
		keep   = 1 << 20
		budget = 1 << 20
		logs   = 8
		share  = budget / logs // 128 KiB
	)
	s := newSyncer(1, time.Hour) // the test turns the intervals
	defer s.Close()
	s.KeepCached(keep)
	s.CacheBudget(budget)
	afs := &adviseFS{MemFS: vfs.NewMem(), t: t}
	tls := make([]*testLog, logs)
	for i := range tls {
		tls[i] = &testLog{t: t, fs: afs, dir: fmt.Sprintf("data/topic-%d", i), cfg: Config{SegmentBytes: 64 << 20},
			now: &fakeClock{t: time.Unix(1_700_000_000, 0)}, logs: &lockedBuffer{}, syn: s}
		tls[i].reopen()
		t.Cleanup(func() { tls[i].Log.Close() })
	}
	b := mkBatch(t, 8, 1, 8<<10) // ~64 KiB
	// round appends batches to each log, syncs it, and returns the bytes
	// newly released.
	released := map[string]int64{} // by file: where releases end
	round := func(batches int) int64 {
		for _, tl := range tls {
			for range batches {
				tl.append(b)
			}
			if err := tl.Sync(); err != nil {
				t.Fatal(err)
			}
		}
		var dropped int64
		for _, a := range afs.take() {
			if a.drop {
				dropped += max(a.off+a.n-released[a.path], 0)
				released[a.path] = max(released[a.path], a.off+a.n)
			}
		}
		return dropped
	}

	// One interval to count the busy logs (the last ones to sync there
	// already see the budget shared); then each keeps its share.
	first := round(4)
	s.nextCacheEpoch()
	if got := s.cacheBusy.Load(); got != logs {
		t.Fatalf("%d busy logs counted, want %d", got, logs)
	}
	for _, tl := range tls {
		if w := tl.cacheWindow(); w != share {
			t.Fatalf("window %d, want %d", w, share)
		}
	}
	size := int64(16 * len(b)) // after the next round: ~1 MiB each
	if got, want := first+round(12), logs*((size-share)&^4095); got != want {
		t.Errorf("released %d bytes, want %d (%d logs of %d bytes, share %d)", got, want, logs, size, share)
	}

	// Without a cap of its own a log keeps its share.
	s.KeepCached(-1)
	if w := tls[0].cacheWindow(); w != share {
		t.Fatalf("window %d without a cap, want %d", w, share)
	}
	s.KeepCached(keep)
	// A budget shared by many logs still leaves each cacheWindowMin.
	s.CacheBudget(logs * cacheWindowMin / 4)
	if w := tls[0].cacheWindow(); w != cacheWindowMin {
		t.Fatalf("window %d, want %d", w, cacheWindowMin)
	}
	// Without a budget each keeps the whole window: nothing more is due.
	s.CacheBudget(-1)
	if w := tls[0].cacheWindow(); w != keep {
		t.Fatalf("window %d without a budget, want %d", w, keep)
	}
	// Nor a cap: never released.
	s.KeepCached(-1)
	if w := tls[0].cacheWindow(); w >= 0 {
		t.Fatalf("window %d without a budget or a cap, want none", w)
	}
	s.KeepCached(keep)
	if dropped := round(4); dropped != 0 {
		t.Fatalf("released %d bytes without a budget", dropped)
	}
	// 0 is the automatic budget: half of the memory, where Linux says.
	s.CacheBudget(0)
	if got, want := s.cacheBudget.Load(), AutoCacheBudget(); got != want || runtime.GOOS == "linux" && got <= 0 {
		t.Fatalf("CacheBudget(0) set %d, want AutoCacheBudget() %d", got, want)
	}
	// Idle logs stop counting after an interval without syncs.
	s.CacheBudget(budget)
	s.nextCacheEpoch()
	s.nextCacheEpoch()
	if w := tls[0].cacheWindow(); w != keep {
		t.Fatalf("window %d with no busy logs, want %d", w, keep)
	}
}

// TestPrefetchForLaggingReader: a reader far behind the end asks for the
// file ahead of it, a window at a time, not on every read; a reader at
// the tail asks for nothing.
func TestPrefetchForLaggingReader(t *testing.T) {
	s := NewSyncer(1)
	defer s.Close()
	s.KeepCached(1 << 20)
	afs := &adviseFS{MemFS: vfs.NewMem(), t: t}
	tl := openTest(t, afs, Config{SegmentBytes: 64 << 20})
	tl.syn = s
	tl.Close()
	tl.reopen()
	b := mkBatch(t, 16, 1, 8<<10)
	for range 400 { // ~50 MiB: a closed segment and the active one
		tl.append(b)
	}
	if err := tl.Sync(); err != nil {
		t.Fatal(err)
	}
	afs.take()

	var read int64
	for off := int64(0); off < tl.LogEndOffset(); {
		out, err := tl.Read(nil, off, 1<<20, 1<<62, true)
		if err != nil {
			t.Fatal(err)
		}
		if len(out) == 0 {
			t.Fatalf("nothing read at %d", off)
		}
		read += int64(len(out))
		off += int64(len(out)/len(b)) * 16
	}
	var prefetched int64
	var calls int
	for _, a := range afs.take() {
		if a.drop {
			continue
		}
		if !strings.HasSuffix(a.name, logSuffix) || a.n <= 0 || a.n > prefetchAhead {
			t.Errorf("prefetch %+v", a)
		}
		calls++
		prefetched += a.n
	}
	// Everything but the active segment's last keep window came ahead
	// of its reads, each byte once, in about one call per half window.
	if prefetched < read-(2<<20) || prefetched > read+prefetchAhead || calls > int(read/(prefetchAhead/2))+3 {
		t.Fatalf("prefetched %d bytes in %d calls for %d bytes read", prefetched, calls, read)
	}

	// A reader at the tail asks for nothing.
	end := tl.LogEndOffset()
	tl.append(b)
	if _, err := tl.Read(nil, end, 1<<20, 1<<62, true); err != nil {
		t.Fatal(err)
	}
	for _, a := range afs.take() {
		if !a.drop {
			t.Fatalf("tail read prefetched %+v", a)
		}
	}
}

// TestDropCachedOSFiles runs the real advice (posix_fadvise on Linux):
// released pages read back from the disk intact.
func TestDropCachedOSFiles(t *testing.T) {
	s := NewSyncer(1)
	defer s.Close()
	s.KeepCached(0)
	tl := &testLog{t: t, fs: vfs.Default, dir: path.Join(t.TempDir(), "topic-0"), cfg: Config{SegmentBytes: 6 << 20},
		now: &fakeClock{t: time.Unix(1_700_000_000, 0)}, logs: &lockedBuffer{}, syn: s}
	tl.reopen()
	t.Cleanup(func() { tl.Log.Close() })
	var want int
	for i := range 120 {
		tl.append(mkBatch(t, 4, int64(i), 16<<10))
		want++
		if i%20 == 19 {
			if err := tl.Sync(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if hs := tl.readAll(0); len(hs) != want {
		t.Fatalf("read %d batches, want %d", len(hs), want)
	}
	tl.Close()
	tl.reopen()
	if hs := tl.readAll(0); len(hs) != want {
		t.Fatalf("after reopen: read %d batches, want %d", len(hs), want)
	}
}

// TestCacheWindowAcrossSegments: a window larger than a segment keeps
// the log's newest bytes cached across the rolled segments that hold
// them, releases each as the window passes it (whole once it is all
// behind), reads inside the window prefetch nothing while reads behind
// it do, and a window over more segments than maxCachedSegs releases
// the oldest of them whole.
func TestCacheWindowAcrossSegments(t *testing.T) {
	for _, c := range []struct {
		name     string
		segBytes int64
		keep     int64
	}{
		{"window over a few segments", 1 << 20, 4 << 20},
		{"window over more than maxCachedSegs", 32 << 10, 16 << 20},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := NewSyncer(1)
			defer s.Close()
			s.KeepCached(c.keep)
			s.CacheBudget(-1)
			afs := &adviseFS{MemFS: vfs.NewMem(), t: t}
			tl := openTest(t, afs, Config{SegmentBytes: c.segBytes})
			tl.syn = s
			tl.Close()
			tl.reopen()
			b := mkBatch(t, 4, 1, 8<<10) // ~32 KiB
			size := map[string]int64{}
			active := func() string { return segName(tl.act.seg.base, logSuffix) }
			for i := range 640 { // ~20 MiB
				tl.append(b)
				size[active()] += int64(len(b))
				if i%8 == 7 {
					if err := tl.Sync(); err != nil {
						t.Fatal(err)
					}
				}
				tl.syncMu.Lock()
				n := len(tl.cacheTail)
				tl.syncMu.Unlock()
				if n > maxCachedSegs {
					t.Fatalf("%d rolled segments tracked", n)
				}
			}
			if err := tl.Sync(); err != nil {
				t.Fatal(err)
			}
			// The window, but over the newest maxCachedSegs rolled
			// segments and the active one at most.
			names := slices.Sorted(maps.Keys(size))
			newest := names[max(len(names)-maxCachedSegs-1, 0):]
			tracked := map[string]int64{}
			window := int64(0)
			for _, name := range newest {
				tracked[name] = size[name]
				window += size[name]
			}
			window = min(window, c.keep)
			limit := windowLimits(tracked, window)
			for _, name := range names[:len(names)-len(newest)] {
				limit[name] = size[name]
			}
			end := checkDrops(t, afs.take(), func(name string) int64 { return limit[name] })
			for name, n := range size {
				if limit[name] == n && end[name] != n&^4095 {
					t.Errorf("%s behind the window: released up to %d of %d", name, end[name], n)
				}
			}
			var cached int64
			for name := range size {
				cached += size[name] - end[name]
			}
			if cached < window-4096*int64(len(newest)) || cached > window+dropCacheMin+2*c.segBytes {
				t.Errorf("%d bytes left cached, window %d", cached, window)
			}

			// Reads: from the window's start on nothing is prefetched,
			// from the log's start on the released segments are.
			readFrom := func(off int64) (prefetched int64) {
				for off < tl.LogEndOffset() {
					out, err := tl.Read(nil, off, 256<<10, 1<<62, true)
					if err != nil {
						t.Fatal(err)
					}
					off += int64(len(out)/len(b)) * 4
				}
				for _, a := range afs.take() {
					if !a.drop {
						prefetched += a.n
					}
				}
				return prefetched
			}
			// The window's oldest batches: keep bytes back from the end.
			inWindow := tl.LogEndOffset() - 4*(window-c.segBytes)/int64(len(b))
			if n := readFrom(inWindow); n != 0 {
				t.Errorf("reads inside the window prefetched %d bytes", n)
			}
			// (Segments smaller than prefetchMin are left to the reads.)
			if n := readFrom(0); c.segBytes >= prefetchMin && n < (20<<20-window)/2 {
				t.Errorf("reads from the start prefetched %d bytes, want the ~%d released", n, 20<<20-window)
			}
		})
	}
}
