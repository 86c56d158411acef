package vfs

import "golang.org/x/sys/unix"

// DropCache implements CacheAdvisor with posix_fadvise(POSIX_FADV_DONTNEED).
func (f OSFile) DropCache(off, n int64) error {
	return unix.Fadvise(int(f.File.Fd()), off, n, unix.FADV_DONTNEED)
}

// Prefetch implements CacheAdvisor with posix_fadvise(POSIX_FADV_WILLNEED).
func (f OSFile) Prefetch(off, n int64) error {
	return unix.Fadvise(int(f.File.Fd()), off, n, unix.FADV_WILLNEED)
}

// WriteBack implements WriteBacker with sync_file_range(2): start the
// range's writeback (after any already under way) and wait for it.
func (f OSFile) WriteBack(off, n int64) error {
	return unix.SyncFileRange(int(f.File.Fd()), off, n,
		unix.SYNC_FILE_RANGE_WAIT_BEFORE|unix.SYNC_FILE_RANGE_WRITE|unix.SYNC_FILE_RANGE_WAIT_AFTER)
}

// StartWriteBack implements WriteBehinder with sync_file_range(2): start
// the range's writeback and return.
func (f OSFile) StartWriteBack(off, n int64) error {
	return unix.SyncFileRange(int(f.File.Fd()), off, n, unix.SYNC_FILE_RANGE_WRITE)
}

// Allocate implements Allocator with fallocate(2) and
// FALLOC_FL_KEEP_SIZE.
func (f OSFile) Allocate(off, n int64) error {
	return retryEINTR("fallocate", f.Name(), func() error {
		return unix.Fallocate(int(f.File.Fd()), unix.FALLOC_FL_KEEP_SIZE, off, n)
	})
}
