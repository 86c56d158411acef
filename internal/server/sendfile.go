package server

import (
	"fmt"
	"io"
	"net"
	"syscall"

	"github.com/gregor-streaming/gregor/internal/wire"
)

// sendFile writes n bytes of f from off to nc: with sendfile(2) when nc
// is a socket on Linux (the bytes go from the page cache to the socket
// without passing through user memory), else by reading and writing.
func sendFile(nc net.Conn, f wire.SendFile, off int64, n int) error {
	if sc, ok := nc.(syscall.Conn); ok && canSendfile {
		done, err := sendFileSyscall(sc, f, off, n)
		if done || err != nil {
			return err
		}
	}
	return copyFile(nc, f, off, n)
}

// copyFile is sendFile's portable path.
func copyFile(w io.Writer, f wire.SendFile, off int64, n int) error {
	buf := make([]byte, min(n, 256<<10))
	for n > 0 {
		chunk := buf[:min(n, len(buf))]
		if _, err := f.ReadAt(chunk, off); err != nil {
			return fmt.Errorf("read record batches to send: %w", err)
		}
		if _, err := w.Write(chunk); err != nil {
			return err
		}
		off += int64(len(chunk))
		n -= len(chunk)
	}
	return nil
}
