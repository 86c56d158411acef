// Package vfs is the file system seen by the storage layers.
//
// Everything that touches disk (partition logs, checkpoints, the metadata
// log) goes through FS, so tests can swap the operating system's file
// system for an in-memory one that simulates crashes (unsynced data is
// lost) or a fault-injecting one (ENOSPC, EIO, torn writes) without a real
// crash. Names are slash-separated paths as the OS sees them.
//
// Three implementations:
//
//   - Default, the operating system's.
//   - NewMem, in memory, which tracks what File.Sync and SyncDir made
//     durable; Crash and CrashWith return the file system a crash would
//     leave (see MemFS for exactly what survives).
//   - NewFault, which wraps another FS and injects errors by operation and
//     path, partial writes, delays, and ENOSPC past a capacity (see
//     FaultFS).
package vfs

import (
	"errors"
	"io"
	"os"
)

// File is an open file. Writes made through a File opened with Create or
// OpenAppend go to the end of the file; a File opened with OpenWrite is
// written with WriteAt. Writes are durable only after Sync.
type File interface {
	io.Reader
	io.ReaderAt
	io.Writer
	// WriteAt writes at off. Handles opened with Create or OpenAppend
	// refuse it (their writes go to the end of the file).
	io.WriterAt
	io.Closer
	// Sync flushes the file's data to stable storage (fdatasync).
	Sync() error
	// Truncate changes the file's size. Later appends continue at the
	// new end.
	Truncate(size int64) error
	// Size returns the file's current size in bytes.
	Size() (int64, error)
}

// FS is a file system.
type FS interface {
	// Create creates name, truncating it if it exists, opened for
	// reading and appending.
	Create(name string) (File, error)
	// OpenAppend opens name for reading and appending, creating it empty
	// if it does not exist.
	OpenAppend(name string) (File, error)
	// OpenWrite opens name for reading and for writing at chosen
	// offsets (WriteAt), creating it empty if it does not exist.
	OpenWrite(name string) (File, error)
	// Open opens an existing file read-only.
	Open(name string) (File, error)
	// Remove removes a file or an empty directory.
	Remove(name string) error
	// RemoveAll removes a path and everything below it.
	RemoveAll(name string) error
	// Rename atomically replaces newname with oldname.
	Rename(oldname, newname string) error
	// MkdirAll creates a directory and any missing parents.
	MkdirAll(dir string) error
	// List returns the names of a directory's entries, sorted.
	List(dir string) ([]string, error)
	// Stat returns a file's size and whether it is a directory.
	Stat(name string) (FileInfo, error)
	// SyncDir makes a directory's entries (creations, renames,
	// removals) durable.
	SyncDir(dir string) error
}

// CacheAdvisor is a File that takes advice on its page cache (OSFile).
// Advice never changes a file's contents.
type CacheAdvisor interface {
	// DropCache asks the OS to release the cached pages of the byte
	// range [off, off+n) that hold no unwritten data: later reads of
	// them go to the disk.
	DropCache(off, n int64) error
	// Prefetch asks the OS to start reading [off, off+n) into the page
	// cache without waiting for it.
	Prefetch(off, n int64) error
}

// DropCache calls f's DropCache when f is a CacheAdvisor.
func DropCache(f File, off, n int64) error {
	if a, ok := f.(CacheAdvisor); ok && n > 0 {
		return a.DropCache(off, n)
	}
	return nil
}

// Prefetch calls f's Prefetch when f is a CacheAdvisor.
func Prefetch(f File, off, n int64) error {
	if a, ok := f.(CacheAdvisor); ok && n > 0 {
		return a.Prefetch(off, n)
	}
	return nil
}

// Preallocator is a File that can reserve disk space past its data
// (OSFile: writing zeros; MemFS). A durable write into reserved space of
// a file written with WriteAt does not change the file's size or its
// block map, so on a journaling file system its fdatasync does not wait
// for a metadata commit: on ext4 with a journal, a 1 KiB append plus
// fdatasync takes about 0.7 ms and the same write over zeros written
// and synced beforehand about 0.3 (docs/PERFORMANCE.md).
type Preallocator interface {
	// Preallocate makes the file at least size bytes long, the new bytes
	// reading as zeros, with their space allocated. Like any size
	// change it is durable after Sync.
	Preallocate(size int64) error
}

// WriteBacker is a File that can write the dirty cached pages of a byte
// range to the disk and wait for them, without flushing the device's
// cache or committing metadata (OSFile on Linux: sync_file_range(2)).
// Nothing becomes durable; the next Sync has that much less to write.
// Errors also reach the next Sync, as any failed writeback does.
type WriteBacker interface {
	WriteBack(off, n int64) error
}

// WriteBehinder is a File that can start writing the dirty cached pages
// of a byte range to the disk and return without waiting for them
// (OSFile on Linux: sync_file_range(2) with SYNC_FILE_RANGE_WRITE, which
// may still wait for room in the device's queue). As with WriteBacker,
// nothing becomes durable, and errors reach the next Sync.
type WriteBehinder interface {
	StartWriteBack(off, n int64) error
}

// Allocator is a File that can allocate disk blocks for a byte range
// without changing its size (OSFile on Linux: fallocate(2) with
// FALLOC_FL_KEEP_SIZE). The file's data and size are unchanged: reads
// past its end still find nothing, and a truncation to its size (or
// less) releases the blocks past it. Appends into allocated blocks need
// no block allocation when they are written back, which on ext4 is a
// bitmap and a group descriptor block written by each sync.
type Allocator interface {
	Allocate(off, n int64) error
}

// Allocate calls f's Allocate when f is an Allocator, and returns
// errors.ErrUnsupported otherwise.
func Allocate(f File, off, n int64) error {
	if a, ok := f.(Allocator); ok {
		return a.Allocate(off, n)
	}
	return errors.ErrUnsupported
}

// WriteBack calls f's WriteBack when f is a WriteBacker.
func WriteBack(f File, off, n int64) error {
	if w, ok := f.(WriteBacker); ok && n > 0 {
		return w.WriteBack(off, n)
	}
	return nil
}

// StartWriteBack calls f's StartWriteBack when f is a WriteBehinder.
func StartWriteBack(f File, off, n int64) error {
	if w, ok := f.(WriteBehinder); ok && n > 0 {
		return w.StartWriteBack(off, n)
	}
	return nil
}

// FileInfo is what Stat reports.
type FileInfo struct {
	Size  int64
	IsDir bool
}

// ErrNotExist is returned (wrapped) when a file does not exist; test with
// errors.Is(err, os.ErrNotExist) or IsNotExist.
var ErrNotExist = os.ErrNotExist

// IsNotExist reports whether err says a file does not exist.
func IsNotExist(err error) bool { return errors.Is(err, os.ErrNotExist) }

// WriteFileRenamed writes data to name through a temporary file renamed
// over name, with no fsync: a crash leaves the old or the new contents
// or, until the caller syncs (the file and the directory, or the whole
// file system), possibly neither.
func WriteFileRenamed(fs FS, name string, data []byte) error {
	return replaceFile(fs, name, data, false)
}

// WriteFileSyncedRenamed is WriteFileRenamed with the temporary file
// synced before the rename: a crash leaves name holding the old or the
// whole new content (never an empty or partial file), though the rename
// itself is durable only once the directory is synced.
func WriteFileSyncedRenamed(fs FS, name string, data []byte) error {
	return replaceFile(fs, name, data, true)
}

// WriteFileAtomic writes data to name through a temporary file that is
// synced and renamed over name, then syncs dir, so a crash leaves either
// the old or the new contents, never a mix.
func WriteFileAtomic(fs FS, dir, name string, data []byte) error {
	if err := replaceFile(fs, name, data, true); err != nil {
		return err
	}
	return fs.SyncDir(dir)
}

// replaceFile writes data to a temporary file, fsyncs it when sync is
// set, and renames it over name.
func replaceFile(fs FS, name string, data []byte, sync bool) error {
	tmp := name + ".tmp"
	f, err := fs.Create(tmp)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil && sync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return fs.Rename(tmp, name)
}

// ReadFile reads a whole file.
func ReadFile(fs FS, name string) ([]byte, error) {
	f, err := fs.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	n, err := f.Size()
	if err != nil {
		return nil, err
	}
	buf := make([]byte, n)
	if _, err := f.ReadAt(buf, 0); err != nil && !(errors.Is(err, io.EOF) && n == 0) {
		return nil, err
	}
	return buf, nil
}
