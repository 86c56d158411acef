package vfs

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
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

// OpenWholeSyncer implements wholeSyncOpener with syncfs(2) on Linux 5.8
// or later; older kernels do not report writeback errors from syncfs.
func (osFS) OpenWholeSyncer(dir string) (WholeSyncer, error) {
	if !syncfsReportsErrors() {
		return nil, ErrNoWholeSync
	}
	d, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	return &osWholeSyncer{d: d}, nil
}

type osWholeSyncer struct{ d *os.File }

func (s *osWholeSyncer) SyncAll() error {
	for {
		err := unix.Syncfs(int(s.d.Fd()))
		if err != unix.EINTR {
			if err != nil {
				return &os.PathError{Op: "syncfs", Path: s.d.Name(), Err: err}
			}
			return nil
		}
	}
}

func (s *osWholeSyncer) Close() error { return s.d.Close() }

var syncfsOK = sync.OnceValue(func() bool {
	var u syscall.Utsname
	if err := syscall.Uname(&u); err != nil {
		return false
	}
	var b strings.Builder
	for _, c := range u.Release {
		if c == 0 {
			break
		}
		b.WriteByte(byte(c))
	}
	return kernelAtLeast(b.String(), 5, 8)
})

func syncfsReportsErrors() bool { return syncfsOK() }

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

// MetadataInPlace reports whether dir is on a file system whose syncs
// write the metadata of the data they cover in place, block by block:
// ext2/3/4 without a journal (Linux only; false wherever it cannot
// tell). There a sync after appends writes the block bitmap and group
// descriptor their allocation changed, which allocating ahead of the
// appends (Allocator) saves.
func MetadataInPlace(fs FS, dir string) bool {
	if fs != Default {
		return false
	}
	var sfs unix.Statfs_t
	if err := unix.Statfs(dir, &sfs); err != nil || sfs.Type != unix.EXT4_SUPER_MAGIC {
		return false
	}
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return false
	}
	// The block device's name, for its journal's entry in
	// /proc/fs/jbd2 ("vda-8": device, then the journal's inode).
	dev, err := os.Readlink("/sys/dev/block/" + strconv.FormatUint(uint64(unix.Major(st.Dev)), 10) + ":" + strconv.FormatUint(uint64(unix.Minor(st.Dev)), 10))
	if err != nil {
		return false
	}
	name := dev[strings.LastIndexByte(dev, '/')+1:]
	entries, err := os.ReadDir("/proc/fs/jbd2")
	if err != nil && !os.IsNotExist(err) {
		return false
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), name+"-") {
			return false // a journal
		}
	}
	return true
}
