package vfs

import (
	"errors"
	"path/filepath"
	"syscall"
	"testing"
)

// Allocate takes blocks past the data without changing the size or what
// reads return; a truncation to the size releases them.
func TestOSAllocate(t *testing.T) {
	fs := Default
	name := filepath.Join(t.TempDir(), "f")
	f, err := fs.OpenWrite(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	data := make([]byte, 10_000)
	for i := range data {
		data[i] = byte(i)
	}
	if _, err := f.WriteAt(data, 0); err != nil {
		t.Fatal(err)
	}
	blocks := func() int64 {
		var st syscall.Stat_t
		if err := syscall.Stat(name, &st); err != nil {
			t.Fatal(err)
		}
		return st.Blocks * 512
	}
	before := blocks()
	if err := Allocate(f, 8192, 1<<20); err != nil {
		if errors.Is(err, syscall.EOPNOTSUPP) {
			t.Skipf("the temporary directory's file system: %v", err)
		}
		t.Fatalf("Allocate: %v", err)
	}
	if got := blocks(); got < before+(1<<20)-8192 {
		t.Errorf("%d bytes of blocks after allocating 1 MiB, %d before", got, before)
	}
	if fi, err := fs.Stat(name); err != nil || fi.Size != int64(len(data)) {
		t.Fatalf("size %d after Allocate (%v), want %d", fi.Size, err, len(data))
	}
	if _, err := f.WriteAt(data[:5000], int64(len(data))); err != nil {
		t.Fatal(err)
	}
	got, err := ReadFile(fs, name)
	if err != nil || len(got) != len(data)+5000 || got[9999] != data[9999] || got[10_000] != data[0] {
		t.Fatalf("read back %d bytes, %v", len(got), err)
	}
	if err := f.Truncate(int64(len(got))); err != nil {
		t.Fatal(err)
	}
	if b := blocks(); b > 64<<10 {
		t.Errorf("%d bytes of blocks for %d bytes after the truncation", b, len(got))
	}
}
