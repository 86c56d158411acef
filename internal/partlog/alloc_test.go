package partlog

import (
	"syscall"
	"testing"

	"github.com/gregor-streaming/gregor/internal/vfs"
)

// Appends allocate their segment's blocks ahead of them, in steps that
// grow with the segment's data up to allocMaxStep, never more than that
// past the data; a roll releases what the old segment did not use.
func TestAllocateAhead(t *testing.T) {
	fs := &adviseFS{MemFS: vfs.NewMem(), t: t}
	cfg := DefaultConfig()
	cfg.SegmentBytes = 6 << 20
	tl := openAllocating(t, fs, cfg, DefaultAllocateAhead)

	b := mkBatch(t, 60, 1, 1000) // ~62 KiB, a sticky producer's batch
	first := segmentName(0, logSuffix)
	var appends int
	for tl.act.seg.base == 0 {
		start := tl.act.size
		tl.append(b)
		appends++
		if tl.act.seg.base != 0 {
			break // rolled: this append went to the next segment
		}
		end := start + int64(len(b))
		fs.mu.Lock()
		as := fs.allocs[first]
		fs.mu.Unlock()
		if len(as) == 0 {
			t.Fatalf("append of [%d, %d): nothing allocated", start, end)
		}
		allocEnd := int64(0)
		for i, a := range as {
			if i > 0 && a[0] != allocEnd {
				t.Fatalf("allocation %d at %d, the previous one ended at %d: %v", i, a[0], allocEnd, as)
			}
			allocEnd = a[0] + a[1]
		}
		if allocEnd < end {
			t.Fatalf("append of [%d, %d): allocated up to %d only", start, end, allocEnd)
		}
		if ahead := allocEnd - end; ahead > max(4*end, allocMinStep)+allocAlign || ahead > DefaultAllocateAhead+allocAlign {
			t.Fatalf("append of [%d, %d): %d bytes allocated past it", start, end, ahead)
		}
	}
	fs.mu.Lock()
	calls := len(fs.allocs[first])
	truncs := fs.truncs[first]
	fs.mu.Unlock()
	// 6 MiB: a step of 256 KiB, then 1 MiB each.
	if calls > 8 {
		t.Errorf("%d allocations for %d appends of %d bytes", calls, appends, len(b))
	}
	fi, err := fs.Stat(tl.dir + "/" + first)
	if err != nil {
		t.Fatal(err)
	}
	size := fi.Size
	if len(truncs) == 0 || truncs[len(truncs)-1] != size {
		t.Errorf("rolled segment of %d bytes truncated to %v: want its size last", size, truncs)
	}
	if err := tl.Sync(); err != nil {
		t.Fatal(err)
	}
}

// A failed allocation (no space, or unsupported) stops the writer's
// allocations; the appends go on.
func TestAllocateFailureStopsAllocating(t *testing.T) {
	fs := &adviseFS{MemFS: vfs.NewMem(), t: t, allocErr: syscall.ENOSPC}
	tl := openAllocating(t, fs, DefaultConfig(), DefaultAllocateAhead)
	for range 40 {
		tl.append(mkBatch(t, 60, 1, 1000))
	}
	if err := tl.Sync(); err != nil {
		t.Fatal(err)
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if n := len(fs.allocs[segmentName(0, logSuffix)]); n != 1 {
		t.Errorf("%d allocations after the first failed, want 1", n)
	}
	if got := len(tl.readAll(0)); got != 40 {
		t.Errorf("read %d batches, want 40", got)
	}
}

// Logs whose Syncer was not told to allocate ahead (file systems with a
// journal) do not.
func TestAllocateOnlyWhenAsked(t *testing.T) {
	fs := &adviseFS{MemFS: vfs.NewMem(), t: t}
	tl := openAllocating(t, fs, DefaultConfig(), 0)
	for range 10 {
		tl.append(mkBatch(t, 60, 1, 1000))
	}
	if err := tl.Sync(); err != nil {
		t.Fatal(err)
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if len(fs.allocs) != 0 {
		t.Errorf("allocated %v", fs.allocs)
	}
}

// openAllocating opens a test log whose Syncer allocates up to
// allocAhead bytes ahead (0: not at all).
func openAllocating(t *testing.T, fs vfs.FS, cfg Config, allocAhead int64) *testLog {
	t.Helper()
	s := NewSyncer(1)
	t.Cleanup(func() { s.Close() })
	s.AllocateAhead(allocAhead)
	tl := openTest(t, fs, cfg)
	tl.syn = s
	tl.Close()
	tl.reopen()
	return tl
}
