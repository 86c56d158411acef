package partlog

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path"
	"runtime"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/gregor-streaming/gregor/internal/batch"
	"github.com/gregor-streaming/gregor/internal/vfs"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// quietLogger drops log output unless a test wants it.
var quietLogger = slog.New(slog.NewTextHandler(io.Discard, nil))

// rec describes one record for mkBatch.
type rec struct {
	ts    int64
	value []byte
}

// mkBatch builds a producer batch of n records with timestamps ts, ts+1, …
// and values of size valueSize.
func mkBatch(t testing.TB, n int, ts int64, valueSize int) []byte {
	t.Helper()
	rs := make([]rec, n)
	for i := range rs {
		rs[i] = rec{ts: ts + int64(i), value: bytes.Repeat([]byte{byte('a' + i%26)}, valueSize)}
	}
	return mkBatchRecs(t, batch.CodecNone, rs)
}

func mkBatchRecs(t testing.TB, codec int, rs []rec) []byte {
	t.Helper()
	b := batch.NewBuilder(codec)
	for _, r := range rs {
		b.Add(batch.Record{Timestamp: r.ts, Value: r.value})
	}
	out, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// testLog bundles a Log with what tests need around it.
type testLog struct {
	*Log
	t   testing.TB
	fs  vfs.FS
	dir string
	cfg Config
	syn *Syncer
	now *fakeClock
	// deferSync opens with Options.DeferSync (as a broker's start).
	deferSync bool
	// logs collects the log's slog output.
	logs *lockedBuffer
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func (b *lockedBuffer) Reset() {
	b.mu.Lock()
	b.b.Reset()
	b.mu.Unlock()
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func smallConfig() Config {
	return Config{SegmentBytes: 4096, IndexIntervalBytes: 256}
}

// openTest opens a log in a fresh directory of fs (a new MemFS if nil).
func openTest(t testing.TB, fs vfs.FS, cfg Config) *testLog {
	t.Helper()
	if fs == nil {
		fs = vfs.NewMem()
	}
	tl := &testLog{t: t, fs: fs, dir: "data/topic-0", cfg: cfg, now: &fakeClock{t: time.Unix(1_700_000_000, 0)}, logs: &lockedBuffer{}}
	tl.reopen()
	t.Cleanup(func() { tl.Log.Close() })
	return tl
}

// reopen opens the log again on tl.fs (after Close or a crash).
func (tl *testLog) reopen() {
	tl.t.Helper()
	l, err := Open(Options{FS: tl.fs, Dir: tl.dir, Config: tl.cfg, Now: tl.now.Now, Syncer: tl.syn, Logger: slog.New(slog.NewTextHandler(tl.logs, nil)), DeferSync: tl.deferSync})
	if err != nil {
		tl.t.Fatal(err)
	}
	tl.Log = l
}

// crash simulates a machine crash and reopens: only synced data
// survives.
func (tl *testLog) crash() {
	tl.t.Helper()
	tl.crashFS()
	tl.reopen()
}

// crashFS replaces tl.fs by what survives a crash, dropping the log
// without a clean shutdown; reopen to recover.
func (tl *testLog) crashFS() {
	tl.t.Helper()
	mem := tl.fs.(*vfs.MemFS)
	tl.fs = mem.Crash()
	tl.Log.Delete() // drops handles; removes the pre-crash copy only
}

func (tl *testLog) append(b []byte) (int64, int64) {
	tl.t.Helper()
	base, last, err := tl.Append(bytes.Clone(b), 0)
	if err != nil {
		tl.t.Fatal(err)
	}
	return base, last
}

// readAll reads every batch from off to the end, checking each.
func (tl *testLog) readAll(off int64) []batch.Header {
	tl.t.Helper()
	var hs []batch.Header
	for {
		out, err := tl.Read(nil, off, 1<<20, 1<<62, true)
		if err != nil {
			tl.t.Fatalf("read at %d: %v", off, err)
		}
		if len(out) == 0 {
			if off != tl.LogEndOffset() {
				tl.t.Fatalf("read at %d returned nothing before LEO %d", off, tl.LogEndOffset())
			}
			return hs
		}
		for p := 0; p < len(out); {
			h, err := batch.Validate(out[p:])
			if err != nil {
				tl.t.Fatalf("read at %d: invalid batch: %v", off, err)
			}
			if len(hs) > 0 && h.BaseOffset < hs[len(hs)-1].NextOffset() {
				tl.t.Fatalf("read at %d: batch %d after %d", off, h.BaseOffset, hs[len(hs)-1].NextOffset())
			}
			hs = append(hs, h)
			p += h.Size()
			off = h.NextOffset()
		}
	}
}

func (tl *testLog) files() []string {
	names, err := tl.fs.List(tl.dir)
	if err != nil {
		tl.t.Fatal(err)
	}
	return names
}

func (tl *testLog) readFile(name string) []byte {
	return mustReadFile(tl.t, tl.fs, path.Join(tl.dir, name))
}

// mustReadFile reads a whole file of fs.
func mustReadFile(t testing.TB, fs vfs.FS, name string) []byte {
	t.Helper()
	b, err := vfs.ReadFile(fs, name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (tl *testLog) writeFile(name string, b []byte) {
	f, err := tl.fs.Create(path.Join(tl.dir, name))
	if err != nil {
		tl.t.Fatal(err)
	}
	if _, err := f.Write(b); err != nil {
		tl.t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		tl.t.Fatal(err)
	}
	f.Close()
}

func mustErr(t testing.TB, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("err = %v, want %v", err, want)
	}
}

func segName(base int64, suffix string) string { return fmt.Sprintf("%020d%s", base, suffix) }

func isErr(err, target error) bool { return errors.Is(err, target) }

// memFile returns a read-only file holding b.
func memFile(t testing.TB, b []byte) vfs.File {
	t.Helper()
	fs := vfs.NewMem()
	f, err := fs.Create("f")
	if err != nil {
		t.Fatal(err)
	}
	f.Write(b)
	t.Cleanup(func() { f.Close() })
	return f
}

// allocatedBy returns the bytes the process allocated while fn ran.
func allocatedBy(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// decodeCkptFileC decodes a checkpoint file's newest checkpoint.
func decodeCkptFileC(b []byte) (checkpoint, error) {
	cf, err := decodeCkptFile(b)
	return cf.c, err
}
