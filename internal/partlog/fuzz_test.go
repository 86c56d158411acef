package partlog

import (
	"bytes"
	"errors"
	"path"
	"testing"

	"github.com/gregor-streaming/gregor/internal/batch"
	"github.com/gregor-streaming/gregor/internal/vfs"
)

// checkServes reads the whole log and fails on anything but whole,
// CRC-valid batches in increasing order, or ErrCorrupt.
func checkServes(t *testing.T, l *Log) {
	off := l.LogStartOffset()
	for range 500 {
		if off >= l.LogEndOffset() {
			return
		}
		out, err := l.Read(nil, off, 1<<16, 1<<62, true)
		if errors.Is(err, ErrCorrupt) {
			off++
			continue
		}
		if err != nil {
			t.Fatalf("read %d: %v", off, err)
		}
		if len(out) == 0 {
			return
		}
		prev := int64(-1)
		for p := 0; p < len(out); {
			h, err := batch.Validate(out[p:])
			if err != nil {
				t.Fatalf("read %d served an invalid batch: %v", off, err)
			}
			if h.BaseOffset < prev || (prev < 0 && h.LastOffset() < off) {
				t.Fatalf("read %d: batch %d..%d out of order", off, h.BaseOffset, h.LastOffset())
			}
			prev = h.NextOffset()
			p += h.Size()
		}
		off = prev
	}
}

func fuzzSeedSegment(f *testing.F) []byte {
	var seg []byte
	off := int64(0)
	for i := range 6 {
		b := mkBatch(f, 1+i%3, int64(100+i), 20*i)
		batch.SetBaseOffset(b, off)
		off += int64(1 + i%3)
		seg = append(seg, b...)
	}
	return seg
}

func FuzzRecover(f *testing.F) {
	seg := fuzzSeedSegment(f)
	f.Add(seg, []byte{})
	f.Add(seg[:len(seg)-7], []byte{})
	flipped := bytes.Clone(seg)
	flipped[100] ^= 0x20
	f.Add(flipped, seg[:200])
	f.Add(append(bytes.Clone(seg), make([]byte, 64)...), seg)
	f.Add([]byte{}, seg)
	f.Add(bytes.Repeat([]byte{2}, 300), []byte{0, 0, 0})
	f.Fuzz(func(t *testing.T, first, second []byte) {
		fs, dir, write := fuzzDir()
		write(segName(0, ".log"), first)
		if len(second) > 0 {
			write(segName(10, ".log"), second)
		}
		checkRecovers(t, fs, dir)
	})
}

// fuzzDir returns a file system with an empty log directory and a
// function writing a file in it.
func fuzzDir() (vfs.FS, string, func(name string, b []byte)) {
	fs := vfs.NewMem()
	dir := "d/t-0"
	fs.MkdirAll(dir)
	return fs, dir, func(name string, b []byte) {
		w, _ := fs.Create(path.Join(dir, name))
		w.Write(b)
		w.Close()
	}
}

// checkRecovers opens the log in dir of fs; when that succeeds the log
// must keep its invariants, serve only whole valid batches, take an
// append and reopen to the same end. It does so twice, on copies of fs:
// opened alone, and opened as a broker's start opens many (DeferSync,
// then one SyncAll), which leaves more to the checkpoint rounds; the
// latter is also killed right after the start and must reopen to the
// end it recovered.
func checkRecovers(t *testing.T, fs vfs.FS, dir string) {
	mem := fs.(*vfs.MemFS)
	checkRecoversAs(t, mem.Kill(), dir, false)
	checkRecoversAs(t, mem.Kill(), dir, true)
}

func checkRecoversAs(t *testing.T, fs *vfs.MemFS, dir string, deferSync bool) {
	opts := Options{FS: fs, Dir: dir, Config: Config{IndexIntervalBytes: 64}, Logger: quietLogger}
	if deferSync {
		ws, err := vfs.OpenWholeSyncer(fs, dir)
		if err != nil {
			t.Fatal(err)
		}
		s := NewSyncer(1)
		defer s.Close()
		s.UseWholeSync(ws)
		opts.Syncer, opts.DeferSync = s, true
	}
	l, err := Open(opts)
	if err != nil {
		return
	}
	defer l.Close()
	if deferSync {
		if err := opts.Syncer.SyncAll(); err != nil {
			t.Fatal(err)
		}
		leo := l.LogEndOffset()
		for _, after := range []*vfs.MemFS{fs.Kill(), fs.Crash()} {
			l2, err := Open(Options{FS: after, Dir: dir, Logger: quietLogger})
			if err != nil {
				t.Fatalf("reopen after the deferred start: %v", err)
			}
			if l2.LogEndOffset() != leo {
				t.Fatalf("LEO %d after a crash right after the deferred start, was %d", l2.LogEndOffset(), leo)
			}
			checkServes(t, l2)
			l2.Close()
		}
	}
	if l.LogStartOffset() > l.HighWatermark() || l.HighWatermark() > l.LogEndOffset() {
		t.Fatalf("LSO %d HW %d LEO %d", l.LogStartOffset(), l.HighWatermark(), l.LogEndOffset())
	}
	checkServes(t, l)
	l.OffsetForTimestamp(101)
	l.MaxTimestamp()
	l.Segments()
	if _, _, err := l.Append(mkBatch(t, 2, 500, 5), 1); err != nil {
		t.Fatal(err)
	}
	leo := l.LogEndOffset()
	l.Close()
	l2, err := Open(Options{FS: fs, Dir: dir, Logger: quietLogger})
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	if l2.LogEndOffset() != leo {
		t.Fatalf("LEO %d after reopen, was %d", l2.LogEndOffset(), leo)
	}
	checkServes(t, l2)
}

func FuzzIndex(f *testing.F) {
	good := make([]byte, 0, 64)
	for i := range 8 {
		var e [8]byte
		putIndexEntry(e[:], indexEntry{rel: int32(3 * i), pos: int32(150 * i)})
		good = append(good, e[:]...)
	}
	f.Add(good, []byte{}, int32(7))
	f.Add(good[:13], []byte{1, 2, 3}, int32(0))
	f.Add(bytes.Repeat([]byte{0xff}, 40), bytes.Repeat([]byte{0x7f}, 24), int32(100))
	f.Fuzz(func(t *testing.T, idx, tidx []byte, target int32) {
		// Direct lookups never panic and never answer above the target.
		e, found, err := lookupIndexFile(memFile(t, idx), int64(len(idx)/8), target)
		if err == nil && found && e.rel > target {
			t.Fatalf("entry %+v above target %d", e, target)
		}
		// A log whose closed segment has these index files still reads
		// every offset correctly.
		fs := vfs.NewMem()
		l, err := Open(Options{FS: fs, Dir: "d/t-0", Config: Config{SegmentBytes: 1500, IndexIntervalBytes: 100}, Logger: quietLogger})
		if err != nil {
			t.Fatal(err)
		}
		var want []int64 // batch base for each offset
		for i := range 12 {
			b := mkBatch(t, 1+i%3, int64(i), 100)
			base, last, err := l.Append(b, 0)
			if err != nil {
				t.Fatal(err)
			}
			for range last - base + 1 {
				want = append(want, base)
			}
		}
		l.Close()
		for _, w := range []struct {
			name string
			b    []byte
		}{{segName(0, ".index"), idx}, {segName(0, ".timeindex"), tidx}} {
			fw, _ := fs.Create(path.Join("d/t-0", w.name))
			fw.Write(w.b)
			fw.Close()
		}
		l, err = Open(Options{FS: fs, Dir: "d/t-0", Logger: quietLogger})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		for off := range int64(len(want)) {
			out, err := l.Read(nil, off, 1, 1<<62, true)
			if err != nil {
				t.Fatalf("read %d: %v", off, err)
			}
			h, err := batch.Validate(out)
			if err != nil || h.BaseOffset != want[off] {
				t.Fatalf("read %d: batch %d, want %d (%v)", off, h.BaseOffset, want[off], err)
			}
		}
		if _, _, found, err := l.OffsetForTimestamp(5); !found || err != nil {
			t.Fatalf("time lookup: %v %v", found, err)
		}
	})
}

// FuzzRecoverFromMark: recovery after a crash with a checkpoint whose
// recovery point mark and index files may not match the segment (a bug
// elsewhere, damage, a file from another time) never panics, and the log
// it opens serves only whole, valid batches and reopens to the same end.
func FuzzRecoverFromMark(f *testing.F) {
	seg := fuzzSeedSegment(f)
	// Batch boundaries of the seed: offsets 0,1,3,4,5,7 at growing positions.
	var ends []int64
	var nexts []int64
	for p := 0; p < len(seg); {
		h, _ := batch.ParseHeader(seg[p:])
		p += h.Size()
		ends, nexts = append(ends, int64(p)), append(nexts, h.NextOffset())
	}
	idx := appendIndexEntries(nil, []indexEntry{{rel: int32(nexts[1] - 1), pos: int32(ends[0])}})
	f.Add(seg, idx, nexts[2], ends[2], int64(105), int64(0))
	f.Add(seg, idx, nexts[2], ends[2]+1, int64(105), int64(0))
	f.Add(seg[:ends[3]+10], idx, nexts[2], ends[2], int64(101), int64(3))
	f.Add(seg, []byte{0, 0, 0, 0, 0, 0, 0, 0}, nexts[4], ends[4], int64(-1), int64(7))
	f.Add(seg, idx, nexts[2], ends[1], int64(105), int64(0))
	f.Fuzz(func(t *testing.T, log, index []byte, rp, pos, maxTs, maxTsOff int64) {
		fs, dir, write := fuzzDir()
		write(segName(0, ".log"), log)
		write(segName(0, ".index"), index)
		c := checkpoint{recoveryPoint: max(rp, 0), logEndOffset: max(rp, 0), highWatermark: max(rp, 0),
			rpMark: rpMark{seg: 0, pos: pos, maxTs: maxTs, maxTsOff: maxTsOff, firstTs: 100}}
		write(checkpointName, c.encode())
		checkRecovers(t, fs, dir)
	})
}
