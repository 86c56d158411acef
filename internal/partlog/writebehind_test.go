package partlog

import (
	"sync"
	"testing"
	"time"

	"github.com/gregor-streaming/gregor/internal/vfs"
)

// behindFS records the ranges whose writeback its files are asked to
// start.
type behindFS struct {
	vfs.FS
	mu     sync.Mutex
	starts [][2]int64 // off, n
}

type behindFile struct {
	vfs.File
	fs *behindFS
}

func (b *behindFS) OpenWrite(n string) (vfs.File, error) {
	f, err := b.FS.OpenWrite(n)
	if err != nil {
		return nil, err
	}
	return behindFile{f, b}, nil
}

func (f behindFile) StartWriteBack(off, n int64) error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	f.fs.starts = append(f.fs.starts, [2]int64{off, n})
	return nil
}

func (b *behindFS) taken() [][2]int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := b.starts
	b.starts = nil
	return out
}

// A large append starts the writeback of its whole pages at once, so
// that the sync acknowledging it finds the I/O under way; the partial
// pages at its ends, and small appends, are left to the sync.
func TestWriteBehindLargeAppends(t *testing.T) {
	fs := &behindFS{FS: vfs.NewMem()}
	tl := &testLog{t: t, fs: fs, dir: "data/topic-0", cfg: DefaultConfig(),
		now: &fakeClock{t: time.Unix(1_700_000_000, 0)}, logs: &lockedBuffer{}}
	tl.reopen()
	defer tl.Close()

	for _, small := range [][]byte{mkBatch(t, 3, 1, 100), mkBatch(t, 200, 1, 1000)} {
		if len(small) >= writeBehindMin {
			t.Fatalf("small batch of %d bytes", len(small))
		}
		tl.append(small)
		if got := fs.taken(); len(got) != 0 {
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
		got := fs.taken()
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
