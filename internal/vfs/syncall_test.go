package vfs

import (
	"errors"
	"path/filepath"
	"syscall"
	"testing"
)

func TestKernelAtLeast(t *testing.T) {
	for _, tc := range []struct {
		rel  string
		want bool
	}{{"6.18.44-fc", true}, {"5.8.0", true}, {"5.7.19", false}, {"4.19", false}, {"5.10-rc1", true}, {"x", false}} {
		if got := kernelAtLeast(tc.rel, 5, 8); got != tc.want {
			t.Errorf("%s: %v", tc.rel, got)
		}
	}
}

func TestWholeSyncerMem(t *testing.T) {
	fs := NewMem()
	fs.MkdirAll("/d/e")
	ws, err := OpenWholeSyncer(fs, "/d")
	if err != nil {
		t.Fatal(err)
	}
	f, _ := fs.Create("/d/e/f")
	f.Write([]byte("data"))
	if err := ws.SyncAll(); err != nil {
		t.Fatal(err)
	}
	c := fs.Crash()
	data, err := ReadFile(c, "/d/e/f")
	if err != nil || string(data) != "data" {
		t.Fatalf("after crash: %q %v", data, err)
	}
}

func TestWholeSyncerOS(t *testing.T) {
	dir := t.TempDir()
	ws, err := OpenWholeSyncer(Default, dir)
	if errors.Is(err, ErrNoWholeSync) {
		t.Skip("kernel older than 5.8: syncfs does not report errors, so it is not used")
	}
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	f, _ := Default.Create(filepath.Join(dir, "f"))
	f.Write([]byte("x"))
	f.Close()
	if err := ws.SyncAll(); err != nil {
		t.Fatal(err)
	}
}

func TestWholeSyncerFault(t *testing.T) {
	ffs := NewFault(NewMem())
	ws, err := OpenWholeSyncer(ffs, "/")
	if err != nil {
		t.Fatal(err)
	}
	ffs.SetSyncError(syscall.EIO)
	if err := ws.SyncAll(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("err = %v, want EIO", err)
	}
}

// On the real file system the writeback calls accept a written range
// and change nothing a read sees.
func TestOSWriteBack(t *testing.T) {
	fs := Default
	name := filepath.Join(t.TempDir(), "f")
	f, err := fs.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	data := make([]byte, 64<<10)
	for i := range data {
		data[i] = byte(i)
	}
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := StartWriteBack(f, 4096, 32<<10); err != nil {
		t.Fatalf("StartWriteBack: %v", err)
	}
	if err := WriteBack(f, 0, int64(len(data))); err != nil {
		t.Fatalf("WriteBack: %v", err)
	}
	got, err := ReadFile(fs, name)
	if err != nil || len(got) != len(data) || got[5000] != data[5000] {
		t.Fatalf("read back %d bytes, %v", len(got), err)
	}
}

// MetadataInPlace holds for ext4 without a journal only.
func TestMetadataInPlace(t *testing.T) {
	if MetadataInPlace(NewMem(), "data") {
		t.Error("a MemFS has metadata in place")
	}
	if MetadataInPlace(Default, "/proc") {
		t.Error("/proc has metadata in place")
	}
	dir := t.TempDir()
	t.Logf("%s: metadata in place %v", dir, MetadataInPlace(Default, dir))
}
