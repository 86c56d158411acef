package partlog

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gregor-streaming/gregor/internal/vfs"
)

// openFilesFS counts open file handles.
type openFilesFS struct {
	vfs.FS
	open, peak atomic.Int64
}

type openFile struct {
	vfs.File
	fs     *openFilesFS
	closed atomic.Bool
}

func (o *openFilesFS) wrap(f vfs.File, err error) (vfs.File, error) {
	if err != nil {
		return nil, err
	}
	n := o.open.Add(1)
	for {
		p := o.peak.Load()
		if n <= p || o.peak.CompareAndSwap(p, n) {
			break
		}
	}
	return &openFile{File: f, fs: o}, nil
}
func (o *openFilesFS) Create(n string) (vfs.File, error)     { return o.wrap(o.FS.Create(n)) }
func (o *openFilesFS) OpenAppend(n string) (vfs.File, error) { return o.wrap(o.FS.OpenAppend(n)) }
func (o *openFilesFS) OpenWrite(n string) (vfs.File, error)  { return o.wrap(o.FS.OpenWrite(n)) }
func (o *openFilesFS) Open(n string) (vfs.File, error)       { return o.wrap(o.FS.Open(n)) }
func (f *openFile) Close() error {
	if !f.closed.Swap(true) {
		f.fs.open.Add(-1)
	}
	return f.File.Close()
}

// TestManyPartitions opens many partitions with a few segments each:
// opening is fast, an idle partition costs a few KiB of heap, and open
// files stay at one per partition plus the bounded reader cache.
func TestManyPartitions(t *testing.T) {
	n := 10000
	if raceEnabled || testing.Short() {
		n = 1000
	}
	SetOpenSegmentFiles(200)
	defer SetOpenSegmentFiles(DefaultOpenSegmentFiles)
	ofs := &openFilesFS{FS: vfs.NewMem()}
	cfg := Config{SegmentBytes: 600}
	b := mkBatch(t, 2, 1, 200)
	dir := func(i int) string { return fmt.Sprintf("data/topic-%d", i) }
	for i := range n {
		l, err := Open(Options{FS: ofs, Dir: dir(i), Config: cfg, Logger: quietLogger})
		if err != nil {
			t.Fatal(err)
		}
		for range 4 { // 2 records per batch, two batches per segment
			l.Append(b, 1)
		}
		l.Close()
	}

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	logs := make([]*Log, n)
	for i := range n {
		l, err := Open(Options{FS: ofs, Dir: dir(i), Config: cfg, Logger: quietLogger})
		if err != nil {
			t.Fatal(err)
		}
		logs[i] = l
	}
	elapsed := time.Since(start)
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	perLog := (int64(after.HeapAlloc) - int64(before.HeapAlloc)) / int64(n)
	t.Logf("opened %d partitions in %v; %d bytes of heap each; %d files open", n, elapsed, perLog, ofs.open.Load())
	if perLog > 6<<10 {
		t.Errorf("%d bytes of heap per idle partition", perLog)
	}
	if !raceEnabled && elapsed > 10*time.Second {
		t.Errorf("opening %d partitions took %v", n, elapsed)
	}
	// Reading old segments of every partition goes through the bounded
	// cache.
	ofs.peak.Store(ofs.open.Load())
	for _, l := range logs {
		if out, err := l.Read(nil, 0, 1<<20, 1<<62, true); err != nil || len(out) == 0 {
			t.Fatal(err)
		}
	}
	if peak := ofs.peak.Load(); peak > int64(n)+2*200+10 {
		t.Errorf("%d files open at once for %d partitions", peak, n)
	}
	for _, l := range logs {
		l.Close()
	}
	if open := ofs.open.Load(); open != 0 {
		t.Errorf("%d files open after closing every log", open)
	}
}
