package vfs

import (
	"errors"
	"os"
	"syscall"
	"testing"
	"time"
)

func newFaultMem(t *testing.T) (*FaultFS, *MemFS) {
	t.Helper()
	mem := NewMem()
	if err := mem.MkdirAll("/d/t-0"); err != nil {
		t.Fatal(err)
	}
	if err := mem.MkdirAll("/d/t-1"); err != nil {
		t.Fatal(err)
	}
	return NewFault(mem), mem
}

func openAppend(t *testing.T, fs FS, name string) File {
	t.Helper()
	f, err := fs.OpenAppend(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// write is one write and what it must return.
type write struct {
	data string
	n    int
	err  error // nil: success
}

func doWrites(t *testing.T, f File, ws []write) {
	t.Helper()
	for i, w := range ws {
		n, err := f.Write([]byte(w.data))
		if n != w.n || (w.err == nil) != (err == nil) || w.err != nil && !errors.Is(err, w.err) {
			t.Fatalf("write %d (%q) = %d, %v; want %d, %v", i, w.data, n, err, w.n, w.err)
		}
		var pe *os.PathError
		if err != nil && !errors.As(err, &pe) {
			t.Fatalf("write %d: error %T is not an *os.PathError", i, err)
		}
	}
}

var errBoom = errors.New("boom")

func TestFaultWrites(t *testing.T) {
	cases := []struct {
		name   string
		setup  func(f *FaultFS)
		writes []write
		want   string // content of /d/t-0/f after the writes
	}{
		{"None", func(f *FaultFS) {}, []write{{"abc", 3, nil}}, "abc"},
		{"SetWriteError", func(f *FaultFS) { f.SetWriteError(errBoom) },
			[]write{{"abc", 0, errBoom}, {"d", 0, errBoom}}, ""},
		{"SetWriteErrorCleared", func(f *FaultFS) { f.SetWriteError(errBoom); f.SetWriteError(nil) },
			[]write{{"abc", 3, nil}}, "abc"},
		{"InjectAfter", func(f *FaultFS) { f.InjectAfter(10, nil) },
			[]write{{"012345", 6, nil}, {"6789ab", 4, syscall.EIO}, {"c", 0, syscall.EIO}}, "0123456789"},
		{"InjectAfterZero", func(f *FaultFS) { f.InjectAfter(0, errBoom) },
			[]write{{"x", 0, errBoom}}, ""},
		{"PartialOnce", func(f *FaultFS) { f.Inject(Fault{Op: OpWrite, SkipBytes: 2, Times: 1, Err: errBoom}) },
			[]write{{"abcd", 2, errBoom}, {"ef", 2, nil}}, "abef"},
		{"SkipOps", func(f *FaultFS) { f.Inject(Fault{Op: OpWrite, Skip: 2, Times: 1}) },
			[]write{{"a", 1, nil}, {"b", 1, nil}, {"c", 0, syscall.EIO}, {"d", 1, nil}}, "abd"},
		{"OtherPrefix", func(f *FaultFS) { f.Inject(Fault{Prefix: "/d/t-1/"}) },
			[]write{{"abc", 3, nil}}, "abc"},
		{"MatchingPrefix", func(f *FaultFS) { f.Inject(Fault{Prefix: "/d/t-0/", Op: OpWrite, Err: errBoom}) },
			[]write{{"abc", 0, errBoom}}, ""},
		{"OtherOp", func(f *FaultFS) { f.Inject(Fault{Op: OpSync | OpRead}) },
			[]write{{"abc", 3, nil}}, "abc"},
		{"Capacity", func(f *FaultFS) { f.SetCapacity(5) },
			[]write{{"abc", 3, nil}, {"def", 2, syscall.ENOSPC}, {"g", 0, syscall.ENOSPC}}, "abcde"},
		{"FaultBeforeCapacity", func(f *FaultFS) { f.SetCapacity(5); f.InjectAfter(1, errBoom) },
			[]write{{"abc", 1, errBoom}}, "a"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fs, mem := newFaultMem(t)
			c.setup(fs)
			doWrites(t, openAppend(t, fs, "/d/t-0/f"), c.writes)
			if got := readAll(t, mem, "/d/t-0/f"); got != c.want {
				t.Fatalf("content %q, want %q", got, c.want)
			}
		})
	}
}

func TestFaultOps(t *testing.T) {
	cases := []struct {
		name  string
		fault Fault
		op    func(fs FS) error
		fails bool
	}{
		{"SyncFails", Fault{Op: OpSync}, func(fs FS) error { return openAppend(t, fs, "/d/t-0/f").Sync() }, true},
		{"SyncDirFails", Fault{Op: OpSyncDir}, func(fs FS) error { return fs.SyncDir("/d/t-0") }, true},
		{"SyncNotSyncDir", Fault{Op: OpSync}, func(fs FS) error { return fs.SyncDir("/d/t-0") }, false},
		{"Create", Fault{Op: OpCreate}, func(fs FS) error { _, err := fs.Create("/d/t-0/g"); return err }, true},
		{"Open", Fault{Op: OpOpen}, func(fs FS) error { _, err := fs.OpenAppend("/d/t-0/g"); return err }, true},
		{"ReadAt", Fault{Op: OpRead}, func(fs FS) error {
			f := openAppend(t, fs, "/d/t-0/f")
			if _, err := f.Write([]byte("x")); err != nil {
				return nil // not the op under test
			}
			_, err := f.ReadAt(make([]byte, 1), 0)
			return err
		}, true},
		{"Truncate", Fault{Op: OpTruncate}, func(fs FS) error { return openAppend(t, fs, "/d/t-0/f").Truncate(0) }, true},
		{"Remove", Fault{Op: OpRemove}, func(fs FS) error { return fs.RemoveAll("/d/t-1") }, true},
		{"RenameByNewName", Fault{Op: OpRename, Prefix: "/d/t-1"}, func(fs FS) error {
			openAppend(t, fs, "/d/t-0/f")
			return fs.Rename("/d/t-0/f", "/d/t-1/f")
		}, true},
		{"Mkdir", Fault{Op: OpMkdir}, func(fs FS) error { return fs.MkdirAll("/d/x") }, true},
		{"List", Fault{Op: OpList}, func(fs FS) error { _, err := fs.List("/d"); return err }, true},
		{"Stat", Fault{Op: OpStat}, func(fs FS) error { _, err := fs.Stat("/d"); return err }, true},
		{"Close", Fault{Op: OpClose}, func(fs FS) error {
			f, err := fs.Create("/d/t-0/g")
			if err != nil {
				return nil // not the op under test: report no injected failure
			}
			return f.Close()
		}, true},
		{"PrefixIsAPathPrefix", Fault{Prefix: "/d/t-1"}, func(fs FS) error { return fs.MkdirAll("/d/t-10") }, true},
		{"DirPrefixIsContents", Fault{Prefix: "/d/t-1/"}, func(fs FS) error { return fs.MkdirAll("/d/t-10") }, false},
		{"CleanedNames", Fault{Prefix: "/d/t-0/"}, func(fs FS) error { return fs.SyncDir("/d//t-0/./x/..") }, false},
		{"CleanedNamesInside", Fault{Prefix: "/d/t-0/"}, func(fs FS) error { return fs.MkdirAll("/d//t-0/./x/") }, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fs, _ := newFaultMem(t)
			in := fs.Inject(c.fault)
			err := c.op(fs)
			if c.fails {
				if !errors.Is(err, syscall.EIO) {
					t.Fatalf("error %v, want EIO", err)
				}
				var pe *os.PathError
				var le *os.LinkError
				if !errors.As(err, &pe) && !errors.As(err, &le) {
					t.Fatalf("error %T is not a path or link error", err)
				}
				if in.Fired() != 1 {
					t.Fatalf("Fired = %d, want 1", in.Fired())
				}
				in.Remove()
				in.Remove()
				if err := c.op(fs); err != nil {
					t.Fatalf("after Remove: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error %v", err)
			}
			if in.Fired() != 0 {
				t.Fatalf("Fired = %d, want 0", in.Fired())
			}
		})
	}
}

func TestSetSyncError(t *testing.T) {
	fs, _ := newFaultMem(t)
	f := openAppend(t, fs, "/d/t-0/f")
	fs.SetSyncError(syscall.EIO)
	wantErr(t, "Sync", f.Sync(), syscall.EIO)
	wantErr(t, "SyncDir", fs.SyncDir("/d"), syscall.EIO)
	fs.SetSyncError(nil)
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
}

// TestDiskFullRecovery is the disk-full story: writes fail with ENOSPC,
// and succeed again once space is freed or the capacity is raised.
func TestDiskFullRecovery(t *testing.T) {
	fs, _ := newFaultMem(t)
	fs.SetCapacity(100)
	old := openAppend(t, fs, "/d/t-0/old")
	doWrites(t, old, []write{{string(make([]byte, 80)), 80, nil}})
	active := openAppend(t, fs, "/d/t-1/active")
	doWrites(t, active, []write{{"0123456789", 10, nil}, {"0123456789abc", 10, syscall.ENOSPC}})
	if u := fs.Usage(); u != 100 {
		t.Fatalf("Usage = %d, want 100", u)
	}
	// Recovery truncates the torn tail: that frees its bytes.
	if err := active.Truncate(10); err != nil {
		t.Fatal(err)
	}
	if u := fs.Usage(); u != 90 {
		t.Fatalf("Usage after truncate = %d, want 90", u)
	}
	doWrites(t, active, []write{{"0123456789abc", 10, syscall.ENOSPC}})
	if err := active.Truncate(10); err != nil {
		t.Fatal(err)
	}
	// Retention deletes an old segment: space returns.
	if err := fs.Remove("/d/t-0/old"); err != nil {
		t.Fatal(err)
	}
	if u := fs.Usage(); u != 10 {
		t.Fatalf("Usage after remove = %d, want 10", u)
	}
	doWrites(t, active, []write{{"0123456789abc", 13, nil}})
	// Writes to the removed file's open handle count nothing.
	doWrites(t, old, []write{{"zzz", 3, nil}})
	if u := fs.Usage(); u != 23 {
		t.Fatalf("Usage = %d, want 23", u)
	}
	// Lowering the capacity below use deletes nothing; raising it frees.
	fs.SetCapacity(20)
	doWrites(t, active, []write{{"x", 0, syscall.ENOSPC}})
	fs.SetCapacity(-1)
	doWrites(t, active, []write{{"x", 1, nil}})
}

func TestUsageAccounting(t *testing.T) {
	fs, mem := newFaultMem(t)
	// A file that existed before counts from when it is opened for
	// appending.
	f, err := mem.Create("/d/t-0/pre")
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, f, "12345")
	f.Close()
	if u := fs.Usage(); u != 0 {
		t.Fatalf("Usage = %d before touching", u)
	}
	openAppend(t, fs, "/d/t-0/pre")
	if u := fs.Usage(); u != 5 {
		t.Fatalf("Usage = %d, want 5", u)
	}
	// Create truncates.
	g, err := fs.Create("/d/t-0/pre")
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	mustWrite(t, g, "ab")
	if u := fs.Usage(); u != 2 {
		t.Fatalf("Usage = %d after Create, want 2", u)
	}
	// Rename moves the count and its handles keep counting; a replaced
	// file's bytes are freed.
	h := mustCreate(t, fs, "/d/t-1/victim", "0123456789")
	if u := fs.Usage(); u != 12 {
		t.Fatalf("Usage = %d, want 12", u)
	}
	if err := fs.Rename("/d/t-0/pre", "/d/t-1/victim"); err != nil {
		t.Fatal(err)
	}
	if u := fs.Usage(); u != 2 {
		t.Fatalf("Usage = %d after replacing rename, want 2", u)
	}
	mustWrite(t, g, "cd")
	mustWrite(t, h, "not counted")
	if u := fs.Usage(); u != 4 {
		t.Fatalf("Usage = %d, want 4", u)
	}
	// Renaming a directory moves what is below it; RemoveAll frees it.
	if err := fs.Rename("/d/t-1", "/d/t-9"); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, g, "e")
	if err := fs.RemoveAll("/d/t-9"); err != nil {
		t.Fatal(err)
	}
	if u := fs.Usage(); u != 0 {
		t.Fatalf("Usage = %d after RemoveAll, want 0", u)
	}
}

// TestUsagePreallocated: reserving space counts against the capacity
// (ENOSPC changes nothing); writes into reserved space do not.
func TestUsagePreallocated(t *testing.T) {
	fs, _ := newFaultMem(t)
	fs.SetCapacity(100)
	f, err := fs.OpenWrite("/d/t-0/f")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt([]byte("0123456789"), 0); err != nil {
		t.Fatal(err)
	}
	pa := f.(Preallocator)
	if err := pa.Preallocate(60); err != nil {
		t.Fatal(err)
	}
	if u := fs.Usage(); u != 60 {
		t.Fatalf("Usage = %d, want 60", u)
	}
	if err := pa.Preallocate(101); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Preallocate past the capacity: %v", err)
	}
	if n, _ := f.Size(); n != 60 {
		t.Fatalf("Size = %d after a failed Preallocate", n)
	}
	if _, err := f.WriteAt(make([]byte, 50), 10); err != nil {
		t.Fatal(err)
	}
	if u := fs.Usage(); u != 60 {
		t.Fatalf("Usage = %d after writing into reserved space, want 60", u)
	}
	// Past the reservation only the growth counts, up to the capacity.
	n, err := f.WriteAt(make([]byte, 50), 55)
	if n != 45 || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("WriteAt past the capacity = %d, %v; want 45, ENOSPC", n, err)
	}
	if u := fs.Usage(); u != 100 {
		t.Fatalf("Usage = %d, want 100", u)
	}
}

func TestFaultDelay(t *testing.T) {
	fs, _ := newFaultMem(t)
	f := openAppend(t, fs, "/d/t-0/f")
	const d = 20 * time.Millisecond
	fs.SetDelay(OpSync, d)
	start := time.Now()
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < d {
		t.Fatalf("Sync took %v, want at least %v", el, d)
	}
	fs.Reset()
	start = time.Now()
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el >= d {
		t.Fatalf("Sync took %v after Reset", el)
	}
}

func TestFaultReset(t *testing.T) {
	fs, _ := newFaultMem(t)
	f := openAppend(t, fs, "/d/t-0/f")
	fs.SetWriteError(errBoom)
	fs.SetSyncError(errBoom)
	fs.Inject(Fault{})
	fs.SetCapacity(0)
	fs.Reset()
	doWrites(t, f, []write{{"abc", 3, nil}})
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
}

func TestFaultReadOnlyHandle(t *testing.T) {
	fs, _ := newFaultMem(t)
	mustCreate(t, fs, "/d/t-0/f", "x")
	f, err := fs.Open("/d/t-0/f")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, err = f.Write([]byte("y"))
	wantErr(t, "Write on Open handle", err, syscall.EBADF)
}

func TestOpString(t *testing.T) {
	for _, c := range []struct {
		op   Op
		want string
	}{
		{0, "none"},
		{OpWrite, "write"},
		{OpSync | OpSyncDir, "sync|syncdir"},
		{OpAll, "create|open|read|write|sync|truncate|close|remove|rename|mkdir|list|stat|syncdir"},
	} {
		if got := c.op.String(); got != c.want {
			t.Errorf("%d.String() = %q, want %q", c.op, got, c.want)
		}
	}
}

// TestFaultCrash combines the two: the bytes a full disk let through are
// lost in a crash until synced, and after a sync they survive as a torn
// tail that recovery must truncate.
func TestFaultCrash(t *testing.T) {
	mem := durableDir(t)
	fs := NewFault(mem)
	f := openAppend(t, fs, "/d/seg")
	syncDir(t, fs, "/d")
	doWrites(t, f, []write{{"batch1", 6, nil}})
	mustSync(t, f)
	fs.SetCapacity(8)
	doWrites(t, f, []write{{"batch2", 2, syscall.ENOSPC}})
	if got := readAll(t, mem.Crash(), "/d/seg"); got != "batch1" {
		t.Fatalf("crash before sync: %q", got)
	}
	mustSync(t, f)
	if got := readAll(t, mem.Crash(), "/d/seg"); got != "batch1ba" {
		t.Fatalf("crash after sync: %q", got)
	}
}
