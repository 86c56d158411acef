package server

import (
	"errors"
	"fmt"
	"io"
	"syscall"

	"github.com/gregor-streaming/gregor/internal/wire"
)

const canSendfile = true

// sendFileSyscall sends with sendfile(2), waiting for the socket through
// Go's poller; done=false (with no byte sent) asks for the portable path.
func sendFileSyscall(sc syscall.Conn, f wire.SendFile, off int64, n int) (done bool, err error) {
	rc, err := sc.SyscallConn()
	if err != nil {
		return false, nil
	}
	fc, err := f.SyscallConn()
	if err != nil {
		return false, nil
	}
	sent := 0
	var serr error
	cerr := fc.Control(func(ffd uintptr) {
		werr := rc.Write(func(sfd uintptr) bool {
			for sent < n {
				m, err := syscall.Sendfile(int(sfd), int(ffd), &off, n-sent)
				if m > 0 {
					sent += m
				}
				switch {
				case err == syscall.EAGAIN:
					return false // wait until the socket is writable
				case err == syscall.EINTR:
					continue
				case err != nil:
					serr = err
					return true
				case m == 0:
					// The file ended early: the frame promised n bytes.
					serr = io.ErrUnexpectedEOF
					return true
				}
			}
			return true
		})
		if serr == nil {
			serr = werr
		}
	})
	if cerr != nil && serr == nil {
		serr = cerr
	}
	if serr != nil {
		if sent == 0 && (errors.Is(serr, syscall.EINVAL) || errors.Is(serr, syscall.ENOSYS)) {
			return false, nil // this pair cannot sendfile: copy
		}
		return true, fmt.Errorf("sendfile: %w", serr)
	}
	return true, nil
}
