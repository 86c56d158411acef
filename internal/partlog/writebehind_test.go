package partlog

import (
	"testing"

	"github.com/gregor-streaming/gregor/internal/vfs"
)

// A large append starts the writeback of its whole pages at once, so
// that the sync acknowledging it finds the I/O under way; the partial
// pages at its ends, and small appends, are left to the sync.
func TestWriteBehindLargeAppends(t *testing.T) {
	fs := &adviseFS{MemFS: vfs.NewMem(), t: t}
	tl := openTest(t, fs, DefaultConfig())

	for _, small := range [][]byte{mkBatch(t, 3, 1, 100), mkBatch(t, 200, 1, 1000)} {
		if len(small) >= writeBehindMin {
			t.Fatalf("small batch of %d bytes", len(small))
		}
		tl.append(small)
		if got := fs.takeBehinds(); len(got) != 0 {
			t.Fatalf("a %d-byte append started writeback %v", len(small), got)
		}
	}
	for range 3 {
		start := tl.act.size
		big := mkBatch(t, 270, 1, 1000)
		if len(big) < writeBehindMin {
			t.Fatalf("batch of %d bytes, want at least %d", len(big), writeBehindMin)
		}
		tl.append(big)
		end := start + int64(len(big))
		got := fs.takeBehinds()
		if len(got) != 1 {
			t.Fatalf("append of [%d, %d): writeback started %v, want one range", start, end, got)
		}
		off, n := got[0][0], got[0][1]
		if off%pageSize != 0 || n%pageSize != 0 {
			t.Errorf("range [%d, %d) is not whole pages", off, off+n)
		}
		if off < start || off+n > end || off-start >= pageSize || end-(off+n) >= pageSize {
			t.Errorf("range [%d, %d) for an append of [%d, %d): want its whole pages", off, off+n, start, end)
		}
	}
	if err := tl.Sync(); err != nil {
		t.Fatal(err)
	}
}
