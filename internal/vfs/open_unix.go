//go:build unix

package vfs

import (
	"os"
	"syscall"
)

// openFile opens name as os.OpenFile does, without what os.OpenFile
// does for a descriptor that might be pollable: on Linux it makes every
// new descriptor non-blocking, tries to register it with the network
// poller (which refuses regular files) and makes it blocking again,
// four fcntl calls and an epoll_ctl per open. Opening the 30,000-odd
// files of 10,000 partitions at a start spent an eighth of its CPU
// there. os.NewFile asks once whether the descriptor is non-blocking.
func openFile(name string, flag int, perm os.FileMode) (*os.File, error) {
	for {
		fd, err := syscall.Open(name, flag|syscall.O_CLOEXEC, uint32(perm.Perm()))
		if err == nil {
			return os.NewFile(uintptr(fd), name), nil
		}
		if err != syscall.EINTR {
			return nil, &os.PathError{Op: "open", Path: name, Err: err}
		}
	}
}
