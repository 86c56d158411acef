package vfs

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// fsUnderTest is a file system and a directory in it to work in.
type fsUnderTest struct {
	name string
	fs   FS
	dir  string
}

// conformers returns the OS file system and a MemFS, so each behaviour is
// checked against the real thing.
func conformers(t *testing.T) []fsUnderTest {
	t.Helper()
	mem := func() *MemFS {
		fs := NewMem()
		if err := fs.MkdirAll("/work"); err != nil {
			t.Fatal(err)
		}
		return fs
	}
	return []fsUnderTest{
		{"os", Default, t.TempDir()},
		{"mem", mem(), "/work"},
		{"fault(mem)", NewFault(mem()), "/work"},
		{"fault(os)", NewFault(Default), t.TempDir()},
	}
}

func mustWrite(t *testing.T, f File, s string) {
	t.Helper()
	if n, err := f.Write([]byte(s)); err != nil || n != len(s) {
		t.Fatalf("Write(%q) = %d, %v", s, n, err)
	}
}

func mustCreate(t *testing.T, fsys FS, name, content string) File {
	t.Helper()
	f, err := fsys.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	mustWrite(t, f, content)
	return f
}

func readAll(t *testing.T, fsys FS, name string) string {
	t.Helper()
	b, err := ReadFile(fsys, name)
	if err != nil {
		t.Fatalf("ReadFile(%s): %v", name, err)
	}
	return string(b)
}

func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: error %v, want %v", what, err, target)
	}
}

// TestConformance runs each case against the OS and MemFS: MemFS must
// behave like the OS.
func TestConformance(t *testing.T) {
	cases := []struct {
		name string
		fn   func(t *testing.T, fsys FS, dir string)
	}{
		{"CreateTruncatesAndAppends", func(t *testing.T, fsys FS, dir string) {
			name := filepath.Join(dir, "f")
			mustCreate(t, fsys, name, "hello world")
			f := mustCreate(t, fsys, name, "ab")
			mustWrite(t, f, "cd")
			if got := readAll(t, fsys, name); got != "abcd" {
				t.Fatalf("content %q, want abcd", got)
			}
			if n, err := f.Size(); err != nil || n != 4 {
				t.Fatalf("Size = %d, %v", n, err)
			}
		}},
		{"OpenAppendCreatesAndAppends", func(t *testing.T, fsys FS, dir string) {
			name := filepath.Join(dir, "f")
			f, err := fsys.OpenAppend(name)
			if err != nil {
				t.Fatal(err)
			}
			mustWrite(t, f, "one")
			f.Close()
			g, err := fsys.OpenAppend(name)
			if err != nil {
				t.Fatal(err)
			}
			defer g.Close()
			mustWrite(t, g, "two")
			if got := readAll(t, fsys, name); got != "onetwo" {
				t.Fatalf("content %q", got)
			}
		}},
		{"OpenWriteWritesAt", func(t *testing.T, fsys FS, dir string) {
			name := filepath.Join(dir, "f")
			mustCreate(t, fsys, name, "hello")
			f, err := fsys.OpenWrite(name)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			for _, w := range []struct {
				off  int64
				data string
				want string
			}{
				{2, "XY", "heXYo"},
				{5, "!", "heXYo!"},
				{8, "z", "heXYo!\x00\x00z"},
			} {
				if n, err := f.WriteAt([]byte(w.data), w.off); err != nil || n != len(w.data) {
					t.Fatalf("WriteAt(%q, %d) = %d, %v", w.data, w.off, n, err)
				}
				if got := readAll(t, fsys, name); got != w.want {
					t.Fatalf("after WriteAt(%q, %d): %q, want %q", w.data, w.off, got, w.want)
				}
			}
			g, err := fsys.OpenWrite(filepath.Join(dir, "new"))
			if err != nil {
				t.Fatal(err)
			}
			g.Close()
			if got := readAll(t, fsys, filepath.Join(dir, "new")); got != "" {
				t.Fatalf("new file %q", got)
			}
		}},
		{"WriteAtRefusedOnAppendHandles", func(t *testing.T, fsys FS, dir string) {
			f := mustCreate(t, fsys, filepath.Join(dir, "f"), "abc")
			if _, err := f.WriteAt([]byte("x"), 0); err == nil {
				t.Fatal("WriteAt on a Create handle succeeded")
			}
		}},
		{"PreallocateReadsAsZeros", func(t *testing.T, fsys FS, dir string) {
			name := filepath.Join(dir, "f")
			f, err := fsys.OpenWrite(name)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.WriteAt([]byte("abc"), 0); err != nil {
				t.Fatal(err)
			}
			pa, ok := f.(Preallocator)
			if !ok {
				t.Fatalf("%T is not a Preallocator", f)
			}
			if err := pa.Preallocate(8); err != nil {
				t.Fatal(err)
			}
			if err := pa.Preallocate(5); err != nil { // never shrinks
				t.Fatal(err)
			}
			if n, err := f.Size(); err != nil || n != 8 {
				t.Fatalf("Size = %d, %v; want 8", n, err)
			}
			if got := readAll(t, fsys, name); got != "abc\x00\x00\x00\x00\x00" {
				t.Fatalf("content %q", got)
			}
			if _, err := f.WriteAt([]byte("de"), 3); err != nil {
				t.Fatal(err)
			}
			if got := readAll(t, fsys, name); got != "abcde\x00\x00\x00" {
				t.Fatalf("content %q", got)
			}
			buf := make([]byte, 10)
			if n, err := f.ReadAt(buf, 4); n != 4 || err != io.EOF || string(buf[:n]) != "e\x00\x00\x00" {
				t.Fatalf("ReadAt = %d %q, %v", n, buf[:n], err)
			}
			// An appending handle writes after the reserved space.
			g, err := fsys.OpenAppend(name)
			if err != nil {
				t.Fatal(err)
			}
			mustWrite(t, g, "Z")
			g.Close()
			if got := readAll(t, fsys, name); got != "abcde\x00\x00\x00Z" {
				t.Fatalf("content %q", got)
			}
			if err := f.Truncate(5); err != nil {
				t.Fatal(err)
			}
			if err := pa.Preallocate(7); err != nil {
				t.Fatal(err)
			}
			if err := f.Truncate(6); err != nil {
				t.Fatal(err)
			}
			if got := readAll(t, fsys, name); got != "abcde\x00" {
				t.Fatalf("content %q", got)
			}
		}},
		{"OpenIsReadOnly", func(t *testing.T, fsys FS, dir string) {
			name := filepath.Join(dir, "f")
			mustCreate(t, fsys, name, "data")
			f, err := fsys.Open(name)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			_, err = f.Write([]byte("x"))
			wantErr(t, "Write on Open handle", err, syscall.EBADF)
			if err := f.Truncate(0); err == nil {
				t.Fatal("Truncate on Open handle succeeded")
			}
			if got := readAll(t, fsys, name); got != "data" {
				t.Fatalf("content %q", got)
			}
		}},
		{"OpenMissing", func(t *testing.T, fsys FS, dir string) {
			_, err := fsys.Open(filepath.Join(dir, "nope"))
			wantErr(t, "Open", err, os.ErrNotExist)
			if !IsNotExist(err) {
				t.Fatal("IsNotExist false")
			}
			_, err = fsys.Create(filepath.Join(dir, "nodir", "f"))
			wantErr(t, "Create in missing dir", err, os.ErrNotExist)
			_, err = fsys.OpenAppend(filepath.Join(dir, "nodir", "f"))
			wantErr(t, "OpenAppend in missing dir", err, os.ErrNotExist)
		}},
		{"CreateDirectory", func(t *testing.T, fsys FS, dir string) {
			_, err := fsys.Create(dir)
			wantErr(t, "Create(dir)", err, syscall.EISDIR)
		}},
		{"ReadAtEOF", func(t *testing.T, fsys FS, dir string) {
			name := filepath.Join(dir, "f")
			f := mustCreate(t, fsys, name, "0123456789")
			buf := make([]byte, 4)
			for _, c := range []struct {
				off  int64
				n    int
				err  error
				data string
			}{
				{0, 4, nil, "0123"},
				{6, 4, nil, "6789"},
				{8, 2, io.EOF, "89"},
				{10, 0, io.EOF, ""},
				{100, 0, io.EOF, ""},
			} {
				n, err := f.ReadAt(buf, c.off)
				if n != c.n || err != c.err || string(buf[:n]) != c.data {
					t.Errorf("ReadAt(off %d) = %d %q %v, want %d %q %v", c.off, n, buf[:n], err, c.n, c.data, c.err)
				}
			}
			if _, err := f.ReadAt(buf, -1); err == nil {
				t.Error("ReadAt(-1) succeeded")
			}
		}},
		{"ReadSequential", func(t *testing.T, fsys FS, dir string) {
			name := filepath.Join(dir, "f")
			mustCreate(t, fsys, name, "abcdefg")
			f, err := fsys.Open(name)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			b, err := io.ReadAll(f)
			if err != nil || string(b) != "abcdefg" {
				t.Fatalf("ReadAll = %q, %v", b, err)
			}
			if n, err := f.Read(make([]byte, 1)); n != 0 || err != io.EOF {
				t.Fatalf("Read at end = %d, %v", n, err)
			}
		}},
		{"Truncate", func(t *testing.T, fsys FS, dir string) {
			name := filepath.Join(dir, "f")
			f := mustCreate(t, fsys, name, "0123456789")
			if err := f.Truncate(4); err != nil {
				t.Fatal(err)
			}
			mustWrite(t, f, "ab")
			if got := readAll(t, fsys, name); got != "0123ab" {
				t.Fatalf("after shrink+append: %q", got)
			}
			if err := f.Truncate(8); err != nil {
				t.Fatal(err)
			}
			mustWrite(t, f, "z")
			if got := readAll(t, fsys, name); got != "0123ab\x00\x00z" {
				t.Fatalf("after grow+append: %q", got)
			}
			wantErr(t, "Truncate(-1)", f.Truncate(-1), syscall.EINVAL)
		}},
		{"List", func(t *testing.T, fsys FS, dir string) {
			for _, n := range []string{"b", "c", "a"} {
				mustCreate(t, fsys, filepath.Join(dir, n), "")
			}
			if err := fsys.MkdirAll(filepath.Join(dir, "d", "e")); err != nil {
				t.Fatal(err)
			}
			got, err := fsys.List(dir)
			if err != nil || !slices.Equal(got, []string{"a", "b", "c", "d"}) {
				t.Fatalf("List = %v, %v", got, err)
			}
			got, err = fsys.List(filepath.Join(dir, "d", "e"))
			if err != nil || len(got) != 0 {
				t.Fatalf("List(empty) = %v, %v", got, err)
			}
			_, err = fsys.List(filepath.Join(dir, "nope"))
			wantErr(t, "List(missing)", err, os.ErrNotExist)
			_, err = fsys.List(filepath.Join(dir, "a"))
			wantErr(t, "List(file)", err, syscall.ENOTDIR)
		}},
		{"Stat", func(t *testing.T, fsys FS, dir string) {
			mustCreate(t, fsys, filepath.Join(dir, "f"), "12345")
			fi, err := fsys.Stat(filepath.Join(dir, "f"))
			if err != nil || fi.Size != 5 || fi.IsDir {
				t.Fatalf("Stat(file) = %+v, %v", fi, err)
			}
			fi, err = fsys.Stat(dir)
			if err != nil || !fi.IsDir {
				t.Fatalf("Stat(dir) = %+v, %v", fi, err)
			}
			_, err = fsys.Stat(filepath.Join(dir, "nope"))
			wantErr(t, "Stat(missing)", err, os.ErrNotExist)
			_, err = fsys.Stat(filepath.Join(dir, "f", "x"))
			wantErr(t, "Stat(file/x)", err, syscall.ENOTDIR)
		}},
		{"MkdirAll", func(t *testing.T, fsys FS, dir string) {
			p := filepath.Join(dir, "a", "b", "c")
			if err := fsys.MkdirAll(p); err != nil {
				t.Fatal(err)
			}
			if err := fsys.MkdirAll(p); err != nil {
				t.Fatalf("MkdirAll again: %v", err)
			}
			mustCreate(t, fsys, filepath.Join(dir, "f"), "")
			wantErr(t, "MkdirAll(file)", fsys.MkdirAll(filepath.Join(dir, "f")), syscall.ENOTDIR)
			wantErr(t, "MkdirAll(file/x)", fsys.MkdirAll(filepath.Join(dir, "f", "x")), syscall.ENOTDIR)
		}},
		{"Remove", func(t *testing.T, fsys FS, dir string) {
			mustCreate(t, fsys, filepath.Join(dir, "f"), "x")
			if err := fsys.Remove(filepath.Join(dir, "f")); err != nil {
				t.Fatal(err)
			}
			wantErr(t, "Remove(missing)", fsys.Remove(filepath.Join(dir, "f")), os.ErrNotExist)
			sub := filepath.Join(dir, "sub")
			if err := fsys.MkdirAll(sub); err != nil {
				t.Fatal(err)
			}
			mustCreate(t, fsys, filepath.Join(sub, "g"), "x")
			wantErr(t, "Remove(non-empty dir)", fsys.Remove(sub), syscall.ENOTEMPTY)
			if err := fsys.RemoveAll(sub); err != nil {
				t.Fatal(err)
			}
			if err := fsys.RemoveAll(sub); err != nil {
				t.Fatalf("RemoveAll(missing) = %v", err)
			}
			if err := fsys.MkdirAll(sub); err != nil {
				t.Fatal(err)
			}
			if err := fsys.Remove(sub); err != nil {
				t.Fatalf("Remove(empty dir) = %v", err)
			}
		}},
		{"Rename", func(t *testing.T, fsys FS, dir string) {
			a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
			mustCreate(t, fsys, a, "new")
			mustCreate(t, fsys, b, "old")
			if err := fsys.Rename(a, b); err != nil {
				t.Fatal(err)
			}
			if got := readAll(t, fsys, b); got != "new" {
				t.Fatalf("renamed content %q", got)
			}
			_, err := fsys.Stat(a)
			wantErr(t, "Stat(old name)", err, os.ErrNotExist)
			wantErr(t, "Rename(missing)", fsys.Rename(a, b), os.ErrNotExist)
			sub := filepath.Join(dir, "sub")
			if err := fsys.MkdirAll(sub); err != nil {
				t.Fatal(err)
			}
			wantErr(t, "Rename(file, dir)", fsys.Rename(b, sub), os.ErrExist)
			if err := fsys.Rename(b, b); err != nil {
				t.Fatalf("Rename to itself: %v", err)
			}
			wantErr(t, "Rename into missing dir", fsys.Rename(b, filepath.Join(dir, "nodir", "x")), os.ErrNotExist)
			// Directories move with their contents.
			mustCreate(t, fsys, filepath.Join(sub, "x"), "inner")
			sub2 := filepath.Join(dir, "sub2")
			if err := fsys.Rename(sub, sub2); err != nil {
				t.Fatal(err)
			}
			if got := readAll(t, fsys, filepath.Join(sub2, "x")); got != "inner" {
				t.Fatalf("moved dir content %q", got)
			}
			wantErr(t, "Rename dir below itself", fsys.Rename(sub2, filepath.Join(sub2, "deeper")), syscall.EINVAL)
		}},
		{"HandleOutlivesName", func(t *testing.T, fsys FS, dir string) {
			a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
			f := mustCreate(t, fsys, a, "1")
			if err := fsys.Rename(a, b); err != nil {
				t.Fatal(err)
			}
			mustWrite(t, f, "2")
			if got := readAll(t, fsys, b); got != "12" {
				t.Fatalf("write after rename: %q", got)
			}
			if err := fsys.Remove(b); err != nil {
				t.Fatal(err)
			}
			mustWrite(t, f, "3")
			buf := make([]byte, 3)
			if n, err := f.ReadAt(buf, 0); n != 3 || err != nil || string(buf) != "123" {
				t.Fatalf("ReadAt removed file = %d %q %v", n, buf, err)
			}
		}},
		{"Closed", func(t *testing.T, fsys FS, dir string) {
			f, err := fsys.Create(filepath.Join(dir, "f"))
			if err != nil {
				t.Fatal(err)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			wantErr(t, "Close twice", f.Close(), os.ErrClosed)
			_, err = f.Write([]byte("x"))
			wantErr(t, "Write after Close", err, os.ErrClosed)
			_, err = f.ReadAt(make([]byte, 1), 0)
			wantErr(t, "ReadAt after Close", err, os.ErrClosed)
		}},
		{"WriteFileAtomic", func(t *testing.T, fsys FS, dir string) {
			name := filepath.Join(dir, "checkpoint")
			for _, v := range []string{"v1", "version two"} {
				if err := WriteFileAtomic(fsys, dir, name, []byte(v)); err != nil {
					t.Fatal(err)
				}
				if got := readAll(t, fsys, name); got != v {
					t.Fatalf("content %q, want %q", got, v)
				}
			}
			names, _ := fsys.List(dir)
			if !slices.Equal(names, []string{"checkpoint"}) {
				t.Fatalf("left %v", names)
			}
		}},
		{"SyncDir", func(t *testing.T, fsys FS, dir string) {
			if err := fsys.SyncDir(dir); err != nil {
				t.Fatal(err)
			}
			wantErr(t, "SyncDir(missing)", fsys.SyncDir(filepath.Join(dir, "nope")), os.ErrNotExist)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, u := range conformers(t) {
				t.Run(u.name, func(t *testing.T) { c.fn(t, u.fs, u.dir) })
			}
		})
	}
}

// fileState is a file's name and content after a crash, or absent.
type fileState struct {
	name    string
	content string // "" and absent false: an empty file
	absent  bool
}

func checkFiles(t *testing.T, fsys FS, want []fileState) {
	t.Helper()
	for _, w := range want {
		b, err := ReadFile(fsys, w.name)
		switch {
		case w.absent && err == nil:
			t.Errorf("%s survived with %q, want it gone", w.name, b)
		case w.absent && !IsNotExist(err):
			t.Errorf("%s: %v, want not-exist", w.name, err)
		case !w.absent && err != nil:
			t.Errorf("%s: %v, want %q", w.name, err, w.content)
		case !w.absent && string(b) != w.content:
			t.Errorf("%s = %q, want %q", w.name, b, w.content)
		}
	}
}

// durableDir makes /d exist durably, as a test's starting point.
func durableDir(t *testing.T) *MemFS {
	t.Helper()
	fs := NewMem()
	if err := fs.MkdirAll("/d"); err != nil {
		t.Fatal(err)
	}
	if err := fs.SyncDir("/"); err != nil {
		t.Fatal(err)
	}
	return fs
}

func mustSync(t *testing.T, f File) {
	t.Helper()
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
}

func syncDir(t *testing.T, fs FS, dir string) {
	t.Helper()
	if err := fs.SyncDir(dir); err != nil {
		t.Fatal(err)
	}
}

// TestCrash pins what survives Crash.
func TestCrash(t *testing.T) {
	cases := []struct {
		name string
		run  func(t *testing.T, fs *MemFS)
		want []fileState
	}{
		{"NothingSynced", func(t *testing.T, fs *MemFS) {
			mustCreate(t, fs, "/d/f", "data")
		}, []fileState{{name: "/d/f", absent: true}}},
		{"FileSyncedDirNot", func(t *testing.T, fs *MemFS) {
			mustSync(t, mustCreate(t, fs, "/d/f", "data"))
		}, []fileState{{name: "/d/f", absent: true}}},
		{"DirSyncedFileNot", func(t *testing.T, fs *MemFS) {
			mustCreate(t, fs, "/d/f", "data")
			syncDir(t, fs, "/d")
		}, []fileState{{name: "/d/f", content: ""}}},
		{"BothSynced", func(t *testing.T, fs *MemFS) {
			f := mustCreate(t, fs, "/d/f", "data")
			syncDir(t, fs, "/d")
			mustSync(t, f) // after SyncDir: the entry refers to the file itself
		}, []fileState{{name: "/d/f", content: "data"}}},
		{"UnsyncedAppendLost", func(t *testing.T, fs *MemFS) {
			f := mustCreate(t, fs, "/d/f", "synced")
			mustSync(t, f)
			syncDir(t, fs, "/d")
			mustWrite(t, f, "-lost")
		}, []fileState{{name: "/d/f", content: "synced"}}},
		{"TruncateUndone", func(t *testing.T, fs *MemFS) {
			f := mustCreate(t, fs, "/d/f", "0123456789")
			mustSync(t, f)
			syncDir(t, fs, "/d")
			if err := f.Truncate(3); err != nil {
				t.Fatal(err)
			}
			mustWrite(t, f, "xyz")
		}, []fileState{{name: "/d/f", content: "0123456789"}}},
		{"TruncateSynced", func(t *testing.T, fs *MemFS) {
			f := mustCreate(t, fs, "/d/f", "0123456789")
			syncDir(t, fs, "/d")
			mustSync(t, f)
			if err := f.Truncate(3); err != nil {
				t.Fatal(err)
			}
			mustSync(t, f)
			mustWrite(t, f, "lost")
		}, []fileState{{name: "/d/f", content: "012"}}},
		{"CreateTruncationUndone", func(t *testing.T, fs *MemFS) {
			mustSync(t, mustCreate(t, fs, "/d/f", "old"))
			syncDir(t, fs, "/d")
			mustCreate(t, fs, "/d/f", "new")
		}, []fileState{{name: "/d/f", content: "old"}}},
		{"RenameNotSynced", func(t *testing.T, fs *MemFS) {
			mustSync(t, mustCreate(t, fs, "/d/a", "A"))
			mustSync(t, mustCreate(t, fs, "/d/b", "B"))
			syncDir(t, fs, "/d")
			if err := fs.Rename("/d/a", "/d/b"); err != nil {
				t.Fatal(err)
			}
		}, []fileState{{name: "/d/a", content: "A"}, {name: "/d/b", content: "B"}}},
		{"RenameSynced", func(t *testing.T, fs *MemFS) {
			mustSync(t, mustCreate(t, fs, "/d/a", "A"))
			mustSync(t, mustCreate(t, fs, "/d/b", "B"))
			syncDir(t, fs, "/d")
			if err := fs.Rename("/d/a", "/d/b"); err != nil {
				t.Fatal(err)
			}
			syncDir(t, fs, "/d")
		}, []fileState{{name: "/d/a", absent: true}, {name: "/d/b", content: "A"}}},
		{"RemoveNotSynced", func(t *testing.T, fs *MemFS) {
			mustSync(t, mustCreate(t, fs, "/d/f", "kept"))
			syncDir(t, fs, "/d")
			if err := fs.Remove("/d/f"); err != nil {
				t.Fatal(err)
			}
		}, []fileState{{name: "/d/f", content: "kept"}}},
		{"RemoveSynced", func(t *testing.T, fs *MemFS) {
			mustSync(t, mustCreate(t, fs, "/d/f", "gone"))
			syncDir(t, fs, "/d")
			if err := fs.Remove("/d/f"); err != nil {
				t.Fatal(err)
			}
			syncDir(t, fs, "/d")
		}, []fileState{{name: "/d/f", absent: true}}},
		{"MkdirParentNotSynced", func(t *testing.T, fs *MemFS) {
			if err := fs.MkdirAll("/d/sub"); err != nil {
				t.Fatal(err)
			}
			mustSync(t, mustCreate(t, fs, "/d/sub/f", "x"))
			syncDir(t, fs, "/d/sub")
		}, []fileState{{name: "/d/sub/f", absent: true}}},
		{"MkdirParentSynced", func(t *testing.T, fs *MemFS) {
			if err := fs.MkdirAll("/d/sub"); err != nil {
				t.Fatal(err)
			}
			syncDir(t, fs, "/d")
			mustSync(t, mustCreate(t, fs, "/d/sub/f", "x"))
			syncDir(t, fs, "/d/sub")
		}, []fileState{{name: "/d/sub/f", content: "x"}}},
		{"WriteFileAtomic", func(t *testing.T, fs *MemFS) {
			if err := WriteFileAtomic(fs, "/d", "/d/cp", []byte("one")); err != nil {
				t.Fatal(err)
			}
			if err := WriteFileAtomic(fs, "/d", "/d/cp", []byte("two")); err != nil {
				t.Fatal(err)
			}
		}, []fileState{{name: "/d/cp", content: "two"}, {name: "/d/cp.tmp", absent: true}}},
		{"CrossDirRenameTargetSynced", func(t *testing.T, fs *MemFS) {
			if err := fs.MkdirAll("/d/x"); err != nil {
				t.Fatal(err)
			}
			if err := fs.MkdirAll("/d/y"); err != nil {
				t.Fatal(err)
			}
			syncDir(t, fs, "/d")
			mustSync(t, mustCreate(t, fs, "/d/x/f", "F"))
			syncDir(t, fs, "/d/x")
			if err := fs.Rename("/d/x/f", "/d/y/f"); err != nil {
				t.Fatal(err)
			}
			syncDir(t, fs, "/d/y")
		}, []fileState{{name: "/d/x/f", content: "F"}, {name: "/d/y/f", content: "F"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fs := durableDir(t)
			c.run(t, fs)
			before := snapshot(t, fs)
			crashed := fs.Crash()
			checkFiles(t, crashed, c.want)
			if after := snapshot(t, fs); !slices.Equal(before, after) {
				t.Errorf("Crash changed the original:\n%v\n%v", before, after)
			}
		})
	}
}

// snapshot lists every file and its content, to compare states.
func snapshot(t *testing.T, fs FS) []string {
	t.Helper()
	var out []string
	var walk func(dir string)
	walk = func(dir string) {
		names, err := fs.List(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			p := filepath.Join(dir, n)
			fi, err := fs.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if fi.IsDir {
				out = append(out, p+"/")
				walk(p)
				continue
			}
			out = append(out, p+"="+readAll(t, fs, p))
		}
	}
	walk("/")
	return out
}

func TestCrashedFSIsUsableAndDurable(t *testing.T) {
	fs := durableDir(t)
	f := mustCreate(t, fs, "/d/f", "abc")
	syncDir(t, fs, "/d")
	mustSync(t, f)
	c := fs.Crash()
	// The original and its handles go on independently.
	mustWrite(t, f, "def")
	if got := readAll(t, c, "/d/f"); got != "abc" {
		t.Fatalf("crashed copy sees %q", got)
	}
	g, err := c.OpenAppend("/d/f")
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	mustWrite(t, g, "XYZ")
	if got := readAll(t, fs, "/d/f"); got != "abcdef" {
		t.Fatalf("original sees %q", got)
	}
	// What survived one crash is durable: a second crash keeps it.
	if got := readAll(t, c.Crash(), "/d/f"); got != "abc" {
		t.Fatalf("second crash: %q", got)
	}
}

func TestCrashWithTornTails(t *testing.T) {
	const synced, appended = "synced|", "0123456789"
	lengths := map[int]bool{}
	for seed := range uint64(200) {
		fs := durableDir(t)
		f := mustCreate(t, fs, "/d/f", synced)
		syncDir(t, fs, "/d")
		mustSync(t, f)
		mustWrite(t, f, appended)
		got := readAll(t, fs.CrashWithTornTails(rand.New(rand.NewPCG(seed, 1))), "/d/f")
		if got != synced+appended[:len(got)-len(synced)] {
			t.Fatalf("seed %d: %q is not the synced content plus a prefix of the appended bytes", seed, got)
		}
		lengths[len(got)-len(synced)] = true
	}
	// 200 draws from 11 equally likely lengths: all show up unless the
	// draw is broken.
	if len(lengths) != len(appended)+1 {
		t.Fatalf("kept-tail lengths seen %v, want all of 0..%d", lengths, len(appended))
	}

	// A file rewritten below its synced length gets its synced content.
	fs := durableDir(t)
	f := mustCreate(t, fs, "/d/f", "0123456789")
	syncDir(t, fs, "/d")
	mustSync(t, f)
	if err := f.Truncate(2); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, f, "abcdefghijklmnop")
	for seed := range uint64(20) {
		if got := readAll(t, fs.CrashWithTornTails(rand.New(rand.NewPCG(seed, 2))), "/d/f"); got != "0123456789" {
			t.Fatalf("seed %d: %q", seed, got)
		}
	}
}

// TestCrashWithTornWrites: a file overwritten in place since its last
// Sync keeps each 512-byte sector of its synced length from the old or
// the new content, and over many crashes every mix shows up.
func TestCrashWithTornWrites(t *testing.T) {
	old := strings.Repeat("a", 1024) + strings.Repeat("b", 100)
	seen := map[string]bool{}
	for seed := range uint64(100) {
		fs := durableDir(t)
		f := mustCreate(t, fs, "/d/f", "")
		syncDir(t, fs, "/d")
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		w, err := fs.OpenWrite("/d/f")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.WriteAt([]byte(old), 0); err != nil {
			t.Fatal(err)
		}
		mustSync(t, w)
		if _, err := w.WriteAt([]byte(strings.Repeat("X", 1124)), 0); err != nil {
			t.Fatal(err)
		}
		got := readAll(t, fs.CrashWith(CrashOptions{Rand: rand.New(rand.NewPCG(seed, 3)), TornWrites: true}), "/d/f")
		if len(got) != len(old) {
			t.Fatalf("seed %d: %d bytes, want the synced %d", seed, len(got), len(old))
		}
		key := ""
		for off := 0; off < len(got); off += 512 {
			end := min(off+512, len(got))
			switch got[off:end] {
			case old[off:end]:
				key += "o"
			case strings.Repeat("X", end-off):
				key += "n"
			default:
				t.Fatalf("seed %d: sector at %d mixes contents: %q", seed, off, got[off:end])
			}
		}
		seen[key] = true
		w.Close()
	}
	if len(seen) != 8 {
		t.Fatalf("sector mixes seen %v, want all 8", seen)
	}
}

func TestCrashWithUnsyncedDirs(t *testing.T) {
	seen := map[bool]bool{}
	for seed := range uint64(64) {
		fs := durableDir(t)
		mustSync(t, mustCreate(t, fs, "/d/new", "x"))
		c := fs.CrashWith(CrashOptions{Rand: rand.New(rand.NewPCG(seed, 3)), UnsyncedDirs: true})
		_, err := c.Stat("/d/new")
		if err != nil && !IsNotExist(err) {
			t.Fatal(err)
		}
		if err == nil {
			checkFiles(t, c, []fileState{{name: "/d/new", content: "x"}})
		}
		seen[err == nil] = true
	}
	if !seen[true] || !seen[false] {
		t.Fatalf("outcomes seen %v, want both", seen)
	}
}

// TestMemConcurrent exercises MemFS from many goroutines under -race.
func TestMemConcurrent(t *testing.T) {
	fs := durableDir(t)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			name := fmt.Sprintf("/d/f%d", g)
			f, err := fs.OpenAppend(name)
			if err != nil {
				t.Error(err)
				return
			}
			defer f.Close()
			for i := range 200 {
				if _, err := f.Write([]byte{byte(i)}); err != nil {
					t.Error(err)
					return
				}
				if i%10 == 0 {
					f.Sync()
					fs.SyncDir("/d")
				}
				if i%50 == 0 {
					fs.Crash()
					fs.List("/d")
				}
			}
		})
	}
	wg.Wait()
	for g := range 4 {
		fi, err := fs.Stat(fmt.Sprintf("/d/f%d", g))
		if err != nil || fi.Size != 200 {
			t.Fatalf("f%d: %+v, %v", g, fi, err)
		}
	}
}

// TestKill: a process crash keeps every write, and what it kept is only
// as durable as before: a later power loss drops what was never synced.
func TestKill(t *testing.T) {
	fs := durableDir(t)
	f := mustCreate(t, fs, "/d/f", "synced|")
	syncDir(t, fs, "/d")
	mustSync(t, f)
	mustWrite(t, f, "written")
	mustCreate(t, fs, "/d/new", "x") // entry never synced
	k := fs.Kill()
	mustWrite(t, f, "|after") // the original goes on; the copy does not see it
	if got := readAll(t, k, "/d/f"); got != "synced|written" {
		t.Fatalf("after kill: %q", got)
	}
	if got := readAll(t, k, "/d/new"); got != "x" {
		t.Fatalf("after kill, unsynced entry: %q", got)
	}
	g, err := k.OpenAppend("/d/f")
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, g, "+more")
	if got := readAll(t, fs, "/d/f"); got != "synced|written|after" {
		t.Fatalf("original after the copy's write: %q", got)
	}
	c := k.Crash()
	if got := readAll(t, c, "/d/f"); got != "synced|" {
		t.Fatalf("power loss after kill: %q", got)
	}
	if _, err := c.Stat("/d/new"); !IsNotExist(err) {
		t.Fatalf("power loss after kill kept an unsynced entry: %v", err)
	}
}

// TestCrashPreallocated: a reservation made durable keeps the file's
// size across a crash; writes into it that were not synced read as
// zeros (or, with torn tails, as a prefix of what was written).
func TestCrashPreallocated(t *testing.T) {
	fs := durableDir(t)
	f, err := fs.OpenWrite("/d/f")
	if err != nil {
		t.Fatal(err)
	}
	syncDir(t, fs, "/d")
	if _, err := f.WriteAt([]byte("abc"), 0); err != nil {
		t.Fatal(err)
	}
	if err := f.(Preallocator).Preallocate(10); err != nil {
		t.Fatal(err)
	}
	mustSync(t, f)
	if _, err := f.WriteAt([]byte("defg"), 3); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, fs.Crash(), "/d/f"); got != "abc"+strings.Repeat("\x00", 7) {
		t.Fatalf("after a crash: %q", got)
	}
	if got := readAll(t, fs.Kill(), "/d/f"); got != "abcdefg\x00\x00\x00" {
		t.Fatalf("after a kill: %q", got)
	}
	seen := map[string]bool{}
	for seed := range uint64(40) {
		got := readAll(t, fs.CrashWithTornTails(rand.New(rand.NewPCG(seed, 2))), "/d/f")
		if len(got) != 10 || !strings.HasPrefix("abcdefg", strings.TrimRight(got, "\x00")) {
			t.Fatalf("after a crash with torn tails: %q", got)
		}
		seen[got] = true
	}
	if len(seen) < 3 {
		t.Fatalf("torn tails gave only %d outcomes", len(seen))
	}
	mustSync(t, f)
	if got := readAll(t, fs.Crash(), "/d/f"); got != "abcdefg\x00\x00\x00" {
		t.Fatalf("synced, then a crash: %q", got)
	}
}
