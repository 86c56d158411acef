//go:build unix

package vfs

import (
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestOSOpenPlainDescriptor: the OS file system's opens give blocking,
// close-on-exec descriptors that the runtime's poller never saw, and
// errors that name the path and still read as IsNotExist.
func TestOSOpenPlainDescriptor(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "f")
	if err := WriteFileAtomic(Default, dir, name, []byte("abc")); err != nil {
		t.Fatal(err)
	}
	f, err := Default.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fd := f.(OSFile).Fd()
	fl, _, errno := syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_GETFL, 0)
	if errno != 0 || fl&syscall.O_NONBLOCK != 0 {
		t.Errorf("flags %#x (%v): want a blocking descriptor", fl, errno)
	}
	fdfl, _, errno := syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_GETFD, 0)
	if errno != 0 || fdfl&syscall.FD_CLOEXEC == 0 {
		t.Errorf("descriptor flags %#x (%v): want close-on-exec", fdfl, errno)
	}
	b := make([]byte, 3)
	if _, err := f.ReadAt(b, 0); err != nil || string(b) != "abc" {
		t.Errorf("read %q, %v", b, err)
	}
	_, err = Default.Open(filepath.Join(dir, "missing"))
	if !IsNotExist(err) || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing file: %v, want a not-exist error naming it", err)
	}
}
