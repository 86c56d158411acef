package partlog

import (
	"math/rand/v2"
	"testing"

	"github.com/gregor-streaming/gregor/internal/vfs"
)

// openBench opens a log on the OS file system in a temporary directory.
func openBench(tb testing.TB, cfg Config) *Log {
	tb.Helper()
	l, err := Open(Options{FS: vfs.Default, Dir: tb.TempDir() + "/t-0", Config: cfg, Logger: quietLogger})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { l.Close() })
	return l
}

func BenchmarkAppend(b *testing.B) {
	for _, size := range []struct {
		name  string
		bytes int
	}{{"1KiB", 1 << 10}, {"16KiB", 16 << 10}} {
		b.Run(size.name, func(b *testing.B) {
			l := openBench(b, DefaultConfig())
			bt := mkBatch(b, 10, 1, size.bytes/10-20)
			b.SetBytes(int64(len(bt)))
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := l.Append(bt, 1); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// fillBench appends ~total bytes of 1 KiB batches.
func fillBench(tb testing.TB, l *Log, total int) {
	bt := mkBatch(tb, 10, 1, 80)
	for n := 0; n < total; n += len(bt) {
		if _, _, err := l.Append(bt, 1); err != nil {
			tb.Fatal(err)
		}
	}
}

func BenchmarkRead(b *testing.B) {
	l := openBench(b, Config{SegmentBytes: 8 << 20})
	fillBench(b, l, 64<<20)
	leo := l.LogEndOffset()
	dst := make([]byte, 0, 2<<20)
	b.Run("tail", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			out, err := l.Read(dst[:0], leo-50, 1<<20, leo, true)
			if err != nil || len(out) == 0 {
				b.Fatal(err)
			}
		}
	})
	b.Run("middle-64KiB", func(b *testing.B) {
		rng := rand.New(rand.NewPCG(1, 1))
		b.ReportAllocs()
		var n int64
		for b.Loop() {
			out, err := l.Read(dst[:0], rng.Int64N(leo-1000), 64<<10, leo, true)
			if err != nil || len(out) == 0 {
				b.Fatal(err)
			}
			n += int64(len(out))
		}
		b.SetBytes(n / int64(b.N))
	})
	b.Run("middle-1MiB", func(b *testing.B) {
		rng := rand.New(rand.NewPCG(1, 1))
		b.ReportAllocs()
		var n int64
		for b.Loop() {
			out, err := l.Read(dst[:0], rng.Int64N(leo-20000), 1<<20, leo, true)
			if err != nil || len(out) == 0 {
				b.Fatal(err)
			}
			n += int64(len(out))
		}
		b.SetBytes(n / int64(b.N))
	})
}

func BenchmarkIndexLookup(b *testing.B) {
	const n = 262144 // a full 1 GiB segment at the default interval
	buf := make([]byte, 0, n*offsetIndexEntrySize)
	for i := range n {
		var e [offsetIndexEntrySize]byte
		putIndexEntry(e[:], indexEntry{rel: int32(4 * i), pos: int32(4096 * i)})
		buf = append(buf, e[:]...)
	}
	f, err := vfs.Default.Create(b.TempDir() + "/x.index")
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	f.Write(buf)
	rng := rand.New(rand.NewPCG(1, 1))
	b.ReportAllocs()
	for b.Loop() {
		if _, found, err := lookupIndexFile(f, n, int32(rng.IntN(4*n))); err != nil || !found {
			b.Fatal(err)
		}
	}
}

func BenchmarkRequestSync(b *testing.B) {
	s := NewSyncer(2)
	defer s.Close()
	l, err := Open(Options{FS: vfs.Default, Dir: b.TempDir() + "/t-0", Syncer: s, Logger: quietLogger})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	bt := mkBatch(b, 10, 1, 80)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ch := make(chan error, 1)
		for pb.Next() {
			if _, _, err := l.Append(append([]byte(nil), bt...), 1); err != nil {
				b.Error(err)
				return
			}
			l.RequestSync(func(_ int64, err error) { ch <- err })
			if err := <-ch; err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func TestAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under the race detector")
	}
	l := openBench(t, DefaultConfig())
	small := mkBatch(t, 10, 1, 80)
	big := mkBatch(t, 10, 1, 1600)
	for range 1000 { // warm up: index buffers at capacity
		l.Append(small, 1)
	}
	if n := testing.AllocsPerRun(1000, func() { l.Append(small, 1) }); n != 0 {
		t.Errorf("Append 1 KiB: %v allocs", n)
	}
	if n := testing.AllocsPerRun(200, func() { l.Append(big, 1) }); n != 0 {
		t.Errorf("Append 16 KiB: %v allocs", n)
	}
	leo := l.LogEndOffset()
	dst := make([]byte, 0, 2<<20)
	if n := testing.AllocsPerRun(100, func() { l.Read(dst[:0], leo-20, 1<<20, leo, true) }); n != 0 {
		t.Errorf("tail Read: %v allocs", n)
	}
	if n := testing.AllocsPerRun(100, func() { l.Read(dst[:0], 5000, 1<<20, leo, true) }); n != 0 {
		t.Errorf("Read via index: %v allocs", n)
	}
	// Closed segments through the file cache.
	l.Roll()
	l.Append(small, 1)
	if n := testing.AllocsPerRun(100, func() { l.Read(dst[:0], 100, 64<<10, leo, true) }); n != 0 {
		t.Errorf("closed segment Read: %v allocs", n)
	}
}

// TestScanWindowPooled pins that scanning a segment's tail reuses a
// pooled window: a start scans the tail of every partition, and a fresh
// window each (up to 256 KiB) was most of what recovery allocated at
// 10,000 partitions (docs/PERFORMANCE.md, "Restart").
func TestScanWindowPooled(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under the race detector")
	}
	dir := t.TempDir() + "/t-0"
	l, err := Open(Options{FS: vfs.Default, Dir: dir, Config: DefaultConfig(), Logger: quietLogger})
	if err != nil {
		t.Fatal(err)
	}
	bt := mkBatch(t, 10, 1, 1600) // ~16 KiB
	for range 40 {
		if _, _, err := l.Append(bt, 1); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	f, err := vfs.Default.Open(dir + "/" + segName(0, logSuffix))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		t.Fatal(err)
	}
	if size < scanWindow {
		t.Fatalf("segment holds %d bytes, want more than a window", size)
	}
	scan := func() {
		r, err := scanSegment(f, size, 0, 0, -1, 4096, -1)
		if err != nil || r.nValid != 40 {
			t.Fatalf("scan: %d batches valid, err %v", r.nValid, err)
		}
	}
	scan() // warm the pool
	const runs = 20
	total := allocatedBy(func() {
		for range runs {
			scan()
		}
	})
	if perRun := total / runs; perRun > scanWindow/4 {
		t.Errorf("a tail scan allocates %d bytes, want its window from the pool (window %d)", perRun, scanWindow)
	}
}
