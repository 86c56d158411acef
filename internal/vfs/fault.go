package vfs

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Op is a kind of file system operation, a bit in a set of them.
type Op uint32

// The operations a Fault can target.
const (
	OpCreate   Op = 1 << iota // FS.Create
	OpOpen                    // FS.Open, FS.OpenAppend and FS.OpenWrite
	OpRead                    // File.Read and File.ReadAt
	OpWrite                   // File.Write and File.WriteAt
	OpSync                    // File.Sync
	OpTruncate                // File.Truncate and Preallocator.Preallocate
	OpClose                   // File.Close
	OpRemove                  // FS.Remove and FS.RemoveAll
	OpRename                  // FS.Rename
	OpMkdir                   // FS.MkdirAll
	OpList                    // FS.List
	OpStat                    // FS.Stat and File.Size
	OpSyncDir                 // FS.SyncDir

	// OpAll is every operation.
	OpAll Op = 1<<iota - 1
)

var opNames = [...]string{"create", "open", "read", "write", "sync", "truncate", "close",
	"remove", "rename", "mkdir", "list", "stat", "syncdir"}

// String names the operations in o, joined by "|".
func (o Op) String() string {
	var parts []string
	for i, name := range opNames {
		if o&(1<<i) != 0 {
			parts = append(parts, name)
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "|")
}

// Fault describes errors to inject. The zero Fault fails every operation
// with EIO.
type Fault struct {
	// Op is the set of operations the fault applies to; 0 means OpAll.
	Op Op
	// Prefix restricts the fault to names that start with it, compared
	// after filepath.Clean on both; "" matches every name. A Rename
	// matches if either name does. Note "data/t-1" is also a prefix of
	// "data/t-10": end the prefix with "/" to mean a directory's contents.
	Prefix string
	// Err is the error a firing operation returns, wrapped in an
	// *os.PathError (*os.LinkError for Rename); nil means syscall.EIO.
	Err error
	// Skip lets the first Skip matching operations succeed.
	Skip int
	// SkipBytes, for writes, lets the next SkipBytes bytes of matching
	// writes (counted after Skip) succeed. The write that crosses the
	// budget is a partial write: it writes the bytes up to the budget and
	// returns that count with the error. Ignored for other operations.
	SkipBytes int64
	// Times is how often the fault fires before it is spent; 0 means no
	// limit.
	Times int
}

// Injection is a Fault installed in a FaultFS.
type Injection struct {
	// fs is the FaultFS it was injected into; its mu guards the fields
	// below. Immutable; never nil.
	fs    *FaultFS
	fault Fault
	// prefix is fault.Prefix cleaned, "" for none. Immutable.
	prefix string
	// skipped counts matching operations let through by Skip.
	skipped int
	// budget is what remains of SkipBytes.
	budget int64
	// fired counts the operations it failed.
	fired int
}

// Fired returns how many operations the fault has failed so far.
func (in *Injection) Fired() int {
	in.fs.mu.Lock()
	defer in.fs.mu.Unlock()
	return in.fired
}

// Remove uninstalls the fault; operations already under way are not
// affected. Removing twice is harmless.
func (in *Injection) Remove() {
	in.fs.mu.Lock()
	defer in.fs.mu.Unlock()
	in.fs.removeLocked(in)
}

func (in *Injection) matches(op Op, names ...string) bool {
	if in.fault.Op != 0 && in.fault.Op&op == 0 {
		return false
	}
	if in.fault.Times > 0 && in.fired >= in.fault.Times {
		return false
	}
	if in.prefix == "" {
		return true
	}
	for _, name := range names {
		if strings.HasPrefix(filepath.Clean(name), in.prefix) {
			return true
		}
	}
	return false
}

// FaultFS wraps an FS and injects errors, for tests of disk failures.
//
// Three mechanisms, checked in this order for every operation:
//
//  1. Delays (SetDelay): a matching operation first sleeps, without
//     holding any lock, to model a slow disk.
//  2. Faults (Inject, and the shorthands SetWriteError, SetSyncError,
//     InjectAfter): installed faults are consulted in the order they were
//     installed; the first one that fires decides the operation's error,
//     and later ones do not see the operation. A fault that lets an
//     operation through (Skip, SkipBytes) keeps counting. A failed
//     operation does not reach the wrapped FS, except that a failed Close
//     still closes the file and a partial write writes its allowed bytes.
//  3. Capacity (SetCapacity): a write that would bring Usage above the
//     capacity writes what fits and fails with syscall.ENOSPC, like a full
//     disk. Raising the capacity, or removing or truncating files through
//     the FaultFS, frees space, and later writes succeed again.
//
// Usage is the sum of the sizes of the files this FaultFS has created or
// opened for appending (a file that already existed counts with its size
// at that moment) as changed through it since: writes add, Truncate and
// Create set, Remove and RemoveAll subtract, Rename moves (and subtracts a
// replaced file). Files it never opened for writing count nothing, and
// writes to a file after its removal count nothing. Truncate and Create
// never fail for lack of space; nor does anything but File.Write.
//
// Errors are *os.PathError (*os.LinkError for Rename) around the injected
// error, so errors.Is(err, syscall.ENOSPC) and the like work. FaultFS is
// safe for concurrent use; the wrapped FS's operations run outside its
// lock except for the Stat that counts a file opened for appending.
type FaultFS struct {
	// fs is the wrapped file system. Immutable; never nil.
	fs FS

	// mu guards the fields below and every Injection's counters.
	mu sync.Mutex
	// faults are the installed faults, in installation order.
	faults []*Injection
	// writeFault and syncFault are the faults of SetWriteError and
	// SetSyncError, nil when unset; they are also in faults.
	writeFault, syncFault *Injection
	// delays holds each operation bit's delay.
	delays [len(opNames)]time.Duration
	// capacity is the byte limit on Usage; negative means none.
	capacity int64
	// used is Usage. Invariant: used is the sum of the sizes in files.
	used int64
	// files holds the space accounting of each counted file, by
	// filepath.Clean'ed name.
	files map[string]*usage
}

// usage is the counted size of a file. A handle keeps its file's record,
// so a rename (which moves the record to the new name) keeps the handle's
// writes counted; a removal unlinks it.
type usage struct {
	size   int64
	linked bool
}

// NewFault wraps fs. Until told otherwise it injects nothing and has no
// capacity limit.
func NewFault(fs FS) *FaultFS {
	return &FaultFS{fs: fs, capacity: -1, files: map[string]*usage{}}
}

// Inject installs a fault and returns it, to remove it or count how often
// it fired.
func (f *FaultFS) Inject(fault Fault) *Injection {
	in := f.newInjection(fault)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults = append(f.faults, in)
	return in
}

func (f *FaultFS) newInjection(fault Fault) *Injection {
	in := &Injection{fs: f, fault: fault, budget: fault.SkipBytes}
	if fault.Prefix != "" {
		in.prefix = filepath.Clean(fault.Prefix)
		if strings.HasSuffix(fault.Prefix, "/") && in.prefix != "/" {
			in.prefix += "/"
		}
	}
	return in
}

func (f *FaultFS) removeLocked(in *Injection) {
	for i, x := range f.faults {
		if x == in {
			f.faults = append(f.faults[:i:i], f.faults[i+1:]...)
			break
		}
	}
	if f.writeFault == in {
		f.writeFault = nil
	}
	if f.syncFault == in {
		f.syncFault = nil
	}
}

// setSlot replaces the fault in *slot by one failing ops with err, or
// removes it when err is nil.
func (f *FaultFS) setSlot(slot **Injection, ops Op, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if *slot != nil {
		f.removeLocked(*slot)
	}
	if err != nil {
		*slot = f.newInjection(Fault{Op: ops, Err: err})
		f.faults = append(f.faults, *slot)
	}
}

// SetWriteError makes every File.Write fail with err, writing nothing;
// nil stops it. It replaces the previous SetWriteError.
func (f *FaultFS) SetWriteError(err error) { f.setSlot(&f.writeFault, OpWrite, err) }

// SetSyncError makes every File.Sync and FS.SyncDir fail with err; nil
// stops it. It replaces the previous SetSyncError.
func (f *FaultFS) SetSyncError(err error) { f.setSlot(&f.syncFault, OpSync|OpSyncDir, err) }

// InjectAfter lets the next n bytes of writes through and then fails
// every write with err (nil: EIO); the write that crosses n is partial.
// It is Inject(Fault{Op: OpWrite, SkipBytes: n, Err: err}).
func (f *FaultFS) InjectAfter(n int64, err error) *Injection {
	return f.Inject(Fault{Op: OpWrite, SkipBytes: n, Err: err})
}

// SetDelay makes every operation in ops sleep d before it runs; 0 removes
// the delay.
func (f *FaultFS) SetDelay(ops Op, d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.delays {
		if ops&(1<<i) != 0 {
			f.delays[i] = d
		}
	}
}

// SetCapacity limits Usage to bytes (a full disk, see FaultFS); a negative
// value removes the limit. Lowering it below Usage deletes nothing: writes
// fail until space is freed.
func (f *FaultFS) SetCapacity(bytes int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.capacity = bytes
}

// Usage returns the bytes counted against the capacity (see FaultFS).
func (f *FaultFS) Usage() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.used
}

// Reset removes every fault and delay and the capacity limit. Usage is
// kept.
func (f *FaultFS) Reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults, f.writeFault, f.syncFault = nil, nil, nil
	f.delays = [len(opNames)]time.Duration{}
	f.capacity = -1
}

// check runs the delay and the faults for an operation that is not a
// write. It returns the injected error, or nil to go ahead.
func (f *FaultFS) check(op Op, names ...string) error {
	f.delay(op)
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, in := range f.faults {
		if !in.matches(op, names...) {
			continue
		}
		if in.skipped < in.fault.Skip {
			in.skipped++
			continue
		}
		return in.fireLocked()
	}
	return nil
}

func (in *Injection) fireLocked() error {
	in.fired++
	if in.fault.Err == nil {
		return syscall.EIO
	}
	return in.fault.Err
}

func (f *FaultFS) delay(op Op) {
	f.mu.Lock()
	var d time.Duration
	for i := range f.delays {
		if op&(1<<i) != 0 {
			d = max(d, f.delays[i])
		}
	}
	f.mu.Unlock()
	if d > 0 {
		time.Sleep(d)
	}
}

// reserveWrite decides how many of n bytes a write to name at off (-1:
// at the end) may write, and the error to return after writing them, and
// counts the bytes the file grows by against the capacity.
func (f *FaultFS) reserveWrite(name string, u *usage, n int, off int64) (int, error) {
	f.delay(OpWrite)
	f.mu.Lock()
	defer f.mu.Unlock()
	allow, err := int64(n), error(nil)
	for _, in := range f.faults {
		if !in.matches(OpWrite, name) {
			continue
		}
		if in.skipped < in.fault.Skip {
			in.skipped++
			continue
		}
		if in.budget >= allow {
			in.budget -= allow
			continue
		}
		allow, in.budget = max(in.budget, 0), 0
		err = in.fireLocked()
		break
	}
	if off < 0 {
		off = u.size
	}
	grow := max(off+allow-u.size, 0)
	if f.capacity >= 0 && u.linked && f.used+grow > f.capacity {
		allow = max(min(allow, u.size-off+f.capacity-f.used), 0)
		grow = max(off+allow-u.size, 0)
		if err == nil {
			err = syscall.ENOSPC
		}
	}
	if u.linked {
		u.size += grow
		f.used += grow
	}
	return int(allow), err
}

// reserveSize counts a file growing to size against the capacity, or
// fails with ENOSPC changing nothing.
func (f *FaultFS) reserveSize(u *usage, size int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	grow := size - u.size
	if !u.linked || grow <= 0 {
		return nil
	}
	if f.capacity >= 0 && f.used+grow > f.capacity {
		return syscall.ENOSPC
	}
	u.size = size
	f.used += grow
	return nil
}

// counted returns name's usage record, creating it, with the file's
// current size on the wrapped FS, if it has none.
func (f *FaultFS) counted(name string, truncated bool) *usage {
	key := filepath.Clean(name)
	f.mu.Lock()
	u, ok := f.files[key]
	f.mu.Unlock()
	if ok {
		if truncated {
			f.setSize(u, 0)
		}
		return u
	}
	var size int64
	if !truncated {
		if fi, err := f.fs.Stat(name); err == nil {
			size = fi.Size
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if u, ok := f.files[key]; ok { // counted concurrently
		return u
	}
	u = &usage{size: size, linked: true}
	f.files[key] = u
	f.used += size
	return u
}

func (f *FaultFS) setSize(u *usage, size int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if u.linked {
		f.used += size - u.size
		u.size = size
	}
}

// uncount stops counting name and, when all is set, every name below it.
func (f *FaultFS) uncount(name string, all bool) {
	key := filepath.Clean(name)
	f.mu.Lock()
	defer f.mu.Unlock()
	for k, u := range f.files {
		if k == key || all && isBelow(k, key) {
			f.used -= u.size
			u.size, u.linked = 0, false
			delete(f.files, k)
		}
	}
}

// isBelow reports whether the cleaned name k is inside the directory dir.
func isBelow(k, dir string) bool {
	if dir == "/" {
		return strings.HasPrefix(k, "/")
	}
	if dir == "." {
		return !strings.HasPrefix(k, "/")
	}
	return strings.HasPrefix(k, dir+"/")
}

// moveCounts renames the usage records at and below oldname.
func (f *FaultFS) moveCounts(oldname, newname string) {
	okey, nkey := filepath.Clean(oldname), filepath.Clean(newname)
	f.mu.Lock()
	defer f.mu.Unlock()
	if u, ok := f.files[nkey]; ok { // replaced
		f.used -= u.size
		u.size, u.linked = 0, false
		delete(f.files, nkey)
	}
	for k, u := range f.files {
		switch {
		case k == okey:
			delete(f.files, k)
			f.files[nkey] = u
		case isBelow(k, okey):
			delete(f.files, k)
			f.files[nkey+k[len(okey):]] = u
		}
	}
}

func wrapPath(op, name string, err error) error {
	return &os.PathError{Op: op, Path: name, Err: err}
}

// Create implements FS.
func (f *FaultFS) Create(name string) (File, error) {
	return f.open(OpCreate, name, f.fs.Create, true, true)
}

// OpenAppend implements FS.
func (f *FaultFS) OpenAppend(name string) (File, error) {
	return f.open(OpOpen, name, f.fs.OpenAppend, true, false)
}

// OpenWrite implements FS.
func (f *FaultFS) OpenWrite(name string) (File, error) {
	return f.open(OpOpen, name, f.fs.OpenWrite, true, false)
}

// Open implements FS.
func (f *FaultFS) Open(name string) (File, error) {
	return f.open(OpOpen, name, f.fs.Open, false, false)
}

// open checks op on name and wraps the file open returns. A writable
// handle counts its file's size toward the capacity (from zero if
// created: the open truncated it).
func (f *FaultFS) open(op Op, name string, open func(string) (File, error), writable, created bool) (File, error) {
	if err := f.check(op, name); err != nil {
		return nil, wrapPath("open", name, err)
	}
	file, err := open(name)
	if err != nil {
		return nil, err
	}
	ff := &faultFile{fs: f, f: file, name: name}
	if writable {
		ff.usage = f.counted(name, created)
	}
	return ff, nil
}

// Remove implements FS.
func (f *FaultFS) Remove(name string) error {
	if err := f.check(OpRemove, name); err != nil {
		return wrapPath("remove", name, err)
	}
	if err := f.fs.Remove(name); err != nil {
		return err
	}
	f.uncount(name, false)
	return nil
}

// RemoveAll implements FS.
func (f *FaultFS) RemoveAll(name string) error {
	if err := f.check(OpRemove, name); err != nil {
		return wrapPath("unlinkat", name, err)
	}
	if err := f.fs.RemoveAll(name); err != nil {
		return err
	}
	f.uncount(name, true)
	return nil
}

// Rename implements FS.
func (f *FaultFS) Rename(oldname, newname string) error {
	if err := f.check(OpRename, oldname, newname); err != nil {
		return &os.LinkError{Op: "rename", Old: oldname, New: newname, Err: err}
	}
	if err := f.fs.Rename(oldname, newname); err != nil {
		return err
	}
	f.moveCounts(oldname, newname)
	return nil
}

// MkdirAll implements FS.
func (f *FaultFS) MkdirAll(dir string) error {
	if err := f.check(OpMkdir, dir); err != nil {
		return wrapPath("mkdir", dir, err)
	}
	return f.fs.MkdirAll(dir)
}

// List implements FS.
func (f *FaultFS) List(dir string) ([]string, error) {
	if err := f.check(OpList, dir); err != nil {
		return nil, wrapPath("open", dir, err)
	}
	return f.fs.List(dir)
}

// Stat implements FS.
func (f *FaultFS) Stat(name string) (FileInfo, error) {
	if err := f.check(OpStat, name); err != nil {
		return FileInfo{}, wrapPath("stat", name, err)
	}
	return f.fs.Stat(name)
}

// SyncDir implements FS.
func (f *FaultFS) SyncDir(dir string) error {
	if err := f.check(OpSyncDir, dir); err != nil {
		return wrapPath("sync", dir, err)
	}
	return f.fs.SyncDir(dir)
}

// faultFile is a File of a FaultFS.
type faultFile struct {
	// fs is the FaultFS the file was opened through. Immutable; never nil.
	fs *FaultFS
	// f is the wrapped file. Immutable; never nil.
	f File
	// name is the name it was opened by. Immutable.
	name string
	// usage is the file's space accounting; nil for a read-only handle.
	// Immutable pointer; its fields are guarded by fs.mu.
	usage *usage
}

func (f *faultFile) Read(p []byte) (int, error) {
	if err := f.fs.check(OpRead, f.name); err != nil {
		return 0, wrapPath("read", f.name, err)
	}
	return f.f.Read(p)
}

func (f *faultFile) ReadAt(p []byte, off int64) (int, error) {
	if err := f.fs.check(OpRead, f.name); err != nil {
		return 0, wrapPath("read", f.name, err)
	}
	return f.f.ReadAt(p, off)
}

func (f *faultFile) Write(p []byte) (int, error) {
	if f.usage == nil { // read-only: let the wrapped file refuse
		return f.f.Write(p)
	}
	return f.write(p, -1)
}

// WriteAt writes through like Write, with the same faults and with the
// bytes the file grows by counted against the capacity.
func (f *faultFile) WriteAt(p []byte, off int64) (int, error) {
	if f.usage == nil || off < 0 { // let the wrapped file refuse
		return f.f.WriteAt(p, off)
	}
	return f.write(p, off)
}

// write is Write (off < 0) and WriteAt: the injected faults decide how
// much is written, and the capacity counts what the file grows by.
func (f *faultFile) write(p []byte, off int64) (int, error) {
	allow, ierr := f.fs.reserveWrite(f.name, f.usage, len(p), off)
	n, err := 0, error(nil)
	switch {
	case allow == 0:
	case off < 0:
		n, err = f.f.Write(p[:allow])
	default:
		n, err = f.f.WriteAt(p[:allow], off)
	}
	if n < allow { // count what the file holds, not what was reserved
		if size, serr := f.f.Size(); serr == nil {
			f.fs.setSize(f.usage, size)
		}
	}
	if err != nil {
		return n, err
	}
	if ierr != nil {
		return n, wrapPath("write", f.name, ierr)
	}
	return n, nil
}

// Preallocate implements Preallocator when the wrapped file does. It
// counts as a truncation for faults and as growth for the capacity.
func (f *faultFile) Preallocate(size int64) error {
	p, ok := f.f.(Preallocator)
	if !ok {
		return errors.ErrUnsupported
	}
	if f.usage == nil { // read-only: let the wrapped file refuse
		return p.Preallocate(size)
	}
	if err := f.fs.check(OpTruncate, f.name); err != nil {
		return wrapPath("fallocate", f.name, err)
	}
	if err := f.fs.reserveSize(f.usage, size); err != nil {
		return wrapPath("fallocate", f.name, err)
	}
	return p.Preallocate(size)
}

// WriteBack implements WriteBacker when the wrapped file does; faults
// count it as a sync.
func (f *faultFile) WriteBack(off, n int64) error {
	if err := f.fs.check(OpSync, f.name); err != nil {
		return wrapPath("sync_file_range", f.name, err)
	}
	return WriteBack(f.f, off, n)
}

// StartWriteBack implements WriteBehinder when the wrapped file does.
// It is not an operation faults apply to: its callers ignore its errors
// (the sync after it reports a failed writeback), so an injected fault
// it took would never be seen.
func (f *faultFile) StartWriteBack(off, n int64) error {
	return StartWriteBack(f.f, off, n)
}

// Allocate implements Allocator when the wrapped file does. Like
// StartWriteBack it is not an operation faults apply to: its callers
// stop allocating on any error and nothing depends on it, and the
// capacity the fault FS models is that of the files' sizes, which it
// leaves alone.
func (f *faultFile) Allocate(off, n int64) error {
	return Allocate(f.f, off, n)
}

func (f *faultFile) Sync() error {
	if err := f.fs.check(OpSync, f.name); err != nil {
		return wrapPath("sync", f.name, err)
	}
	return f.f.Sync()
}

func (f *faultFile) Truncate(size int64) error {
	if err := f.fs.check(OpTruncate, f.name); err != nil {
		return wrapPath("truncate", f.name, err)
	}
	if err := f.f.Truncate(size); err != nil {
		return err
	}
	if f.usage != nil {
		f.fs.setSize(f.usage, size)
	}
	return nil
}

func (f *faultFile) Size() (int64, error) {
	if err := f.fs.check(OpStat, f.name); err != nil {
		return 0, wrapPath("stat", f.name, err)
	}
	return f.f.Size()
}

// Close closes the wrapped file even when it injects an error, as close(2)
// releases the descriptor even when it reports one.
func (f *faultFile) Close() error {
	ierr := f.fs.check(OpClose, f.name)
	err := f.f.Close()
	if ierr != nil {
		return wrapPath("close", f.name, ierr)
	}
	return err
}
