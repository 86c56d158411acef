package server

import (
	"fmt"
	"io"
	"net"
	"sync"
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

// copyBufs pools copyFile's buffers: over TLS every fetched batch goes
// this way, and a fresh 256 KiB buffer per response span was allocated,
// zeroed and given back to the OS (madvise) over and over: 8% of the
// broker's CPU consuming over SASL_SSL.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, copyBufSize); return &b }}

const copyBufSize = 256 << 10

// copyFile is sendFile's portable path (and TLS's, which sendfile(2)
// cannot encrypt).
func copyFile(w io.Writer, f wire.SendFile, off int64, n int) error {
	p := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(p)
	buf := *p
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
