package vfs

import (
	"errors"
	"strconv"
	"strings"
)

// WholeSyncer makes everything written to a file system durable in one
// call: Linux syncfs(2). One call replaces an fsync per file when many
// files are dirty (10,000 partitions written a little each), which costs
// a fraction of the time and CPU.
//
// Writeback errors: syncfs reports an error that happened anywhere on the
// file system since the WholeSyncer was opened (Linux 5.8 and later), once.
// It cannot say which file failed, so after an error the caller must
// fsync files one by one again (each file's descriptor still reports its
// own error).
type WholeSyncer interface {
	// SyncAll makes every file and directory of the file system durable.
	SyncAll() error
	// Close releases the syncer.
	Close() error
}

// ErrNoWholeSync says the file system cannot sync everything at once.
var ErrNoWholeSync = errors.New("vfs: file system cannot sync as a whole")

// wholeSyncOpener is implemented by file systems that support SyncAll.
type wholeSyncOpener interface {
	OpenWholeSyncer(dir string) (WholeSyncer, error)
}

// OpenWholeSyncer returns a WholeSyncer for the file system holding dir,
// or ErrNoWholeSync. Open it before writing the data it must cover:
// writeback errors from before the open are not reported.
func OpenWholeSyncer(fs FS, dir string) (WholeSyncer, error) {
	if o, ok := fs.(wholeSyncOpener); ok {
		return o.OpenWholeSyncer(dir)
	}
	return nil, ErrNoWholeSync
}

// kernelAtLeast parses "6.18.44-whatever" and compares major.minor.
func kernelAtLeast(release string, major, minor int) bool {
	parts := strings.SplitN(release, ".", 3)
	if len(parts) < 2 {
		return false
	}
	maj, err1 := strconv.Atoi(parts[0])
	min := parts[1]
	if i := strings.IndexFunc(min, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
		min = min[:i]
	}
	mn, err2 := strconv.Atoi(min)
	if err1 != nil || err2 != nil {
		return false
	}
	return maj > major || (maj == major && mn >= minor)
}

// OpenWholeSyncer implements wholeSyncOpener: SyncAll makes every file's
// data and every directory's entries durable.
func (fs *MemFS) OpenWholeSyncer(string) (WholeSyncer, error) { return memWholeSyncer{fs}, nil }

type memWholeSyncer struct{ fs *MemFS }

func (s memWholeSyncer) SyncAll() error {
	s.fs.mu.Lock()
	defer s.fs.mu.Unlock()
	var walk func(n *memNode)
	walk = func(n *memNode) {
		n.syncLocked()
		for _, c := range n.children {
			walk(c)
		}
	}
	walk(s.fs.root)
	return nil
}

func (memWholeSyncer) Close() error { return nil }

// OpenWholeSyncer implements wholeSyncOpener when the wrapped file system
// does; injected Sync faults (OpSync) apply to SyncAll.
func (f *FaultFS) OpenWholeSyncer(dir string) (WholeSyncer, error) {
	ws, err := OpenWholeSyncer(f.fs, dir)
	if err != nil {
		return nil, err
	}
	return &faultWholeSyncer{f: f, dir: dir, ws: ws}, nil
}

type faultWholeSyncer struct {
	f   *FaultFS
	dir string
	ws  WholeSyncer
}

func (s *faultWholeSyncer) SyncAll() error {
	if err := s.f.check(OpSync, s.dir); err != nil {
		return wrapPath("syncfs", s.dir, err)
	}
	return s.ws.SyncAll()
}

func (s *faultWholeSyncer) Close() error { return s.ws.Close() }
