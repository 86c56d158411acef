package vfs

import (
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// Sync implements File with fdatasync: segment metadata other than the
// size does not need to be durable.
func (f OSFile) Sync() error {
	return retryEINTR("fdatasync", f.Name(), func() error { return unix.Fdatasync(int(f.File.Fd())) })
}

// retryEINTR runs call until it is not interrupted by a signal, and
// names op and path in its error.
func retryEINTR(op, path string, call func() error) error {
	for {
		err := call()
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return &os.PathError{Op: op, Path: path, Err: err}
		}
		return nil
	}
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
	return retryEINTR("syncfs", s.d.Name(), func() error { return unix.Syncfs(int(s.d.Fd())) })
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

// OnlineDiscard reports whether dir is on a file system mounted with
// the discard option (Linux only; false wherever it cannot tell). There
// every freed block is discarded on the disk before the call that freed
// it returns, so each file deleted, truncated or renamed over waits for
// the disk: half or more of a 10,000-partition shutdown on such a
// mount, which periodic fstrim avoids.
func OnlineDiscard(fs FS, dir string) bool {
	if fs != Default {
		return false
	}
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return false
	}
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	return mountinfoDiscard(string(b), unix.Major(st.Dev), unix.Minor(st.Dev))
}

// mountinfoDiscard reports whether a mount of device major:minor in
// mountinfo (proc(5)'s format) has discard among its mount or super
// block options.
func mountinfoDiscard(mountinfo string, major, minor uint32) bool {
	dev := strconv.FormatUint(uint64(major), 10) + ":" + strconv.FormatUint(uint64(minor), 10)
	for line := range strings.SplitSeq(mountinfo, "\n") {
		f := strings.Fields(line)
		if len(f) < 10 || f[2] != dev {
			continue
		}
		// Fields: ID, parent, major:minor, root, mount point, mount
		// options, optional fields, "-", type, source, super options.
		opts := f[5]
		for i := 6; i < len(f)-1; i++ {
			if f[i] == "-" {
				if i+3 < len(f) {
					opts += "," + f[i+3]
				}
				break
			}
		}
		for o := range strings.SplitSeq(opts, ",") {
			if o == "discard" {
				return true
			}
		}
	}
	return false
}
