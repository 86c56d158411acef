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
