package wire

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"io"
	"syscall"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Segment is a part of an encoded frame to be written at Pos of the frame
// buffer without being copied into it: the record batches of a fetch
// response, written with writev (Data), or N bytes of File from Off,
// which the kernel sends (sendfile) when File is set.
type Segment struct {
	Pos  int
	Data []byte
	File SendFile
	Off  int64
	N    int
}

// Len is the number of bytes the segment adds to the frame.
func (s *Segment) Len() int {
	if s.File != nil {
		return s.N
	}
	return len(s.Data)
}

// SendFile is a file whose bytes the kernel can send to a socket
// (*os.File); ReadAt serves connections that are not sockets.
type SendFile interface {
	io.ReaderAt
	SyscallConn() (syscall.RawConn, error)
}

// FileSpanner is implemented by responses whose record batches may stand
// for file ranges: FileSpan reports the range a RecordBatches placeholder
// stands for.
type FileSpanner interface {
	FileSpan(placeholder []byte) (f SendFile, off int64, n int, ok bool)
}

// Wrapper is implemented by responses that wrap a kmsg response (to carry
// pooled memory); Unwrap returns the wrapped response.
type Wrapper interface {
	Unwrap() kmsg.Response
}

// sentinel marks where record batches go in an encoded fetch response.
// 12 random bytes per process plus a 4-byte counter cannot collide with
// the other (small, structured) bytes of the response.
var sentinel = func() (s [12]byte) {
	rand.Read(s[:])
	return s
}()

const sentinelLen = 16

// AppendResponseSegments is AppendResponse, except that the record
// batches of a fetch response are not copied into dst: they are returned
// as segments to be written between dst's bytes. The frame size prefix
// accounts for them. Other responses are encoded whole.
func AppendResponseSegments(dst []byte, correlationID int32, resp kmsg.Response, segs []Segment) ([]byte, []Segment) {
	inner := resp
	if w, ok := resp.(Wrapper); ok {
		inner = w.Unwrap()
	}
	spanner, _ := resp.(FileSpanner)
	fr, ok := inner.(*kmsg.FetchResponse)
	if !ok {
		return AppendResponse(dst, correlationID, resp), segs
	}
	// Swap each non-empty RecordBatches for a numbered sentinel.
	var saved [][]byte
	var marks [][sentinelLen]byte
	for i := range fr.Topics {
		for j := range fr.Topics[i].Partitions {
			p := &fr.Topics[i].Partitions[j]
			if len(p.RecordBatches) < sentinelLen {
				continue // small enough to copy
			}
			var m [sentinelLen]byte
			copy(m[:], sentinel[:])
			binary.BigEndian.PutUint32(m[12:], uint32(len(saved)))
			marks = append(marks, m)
			saved = append(saved, p.RecordBatches)
			p.RecordBatches = marks[len(marks)-1][:]
		}
	}
	if len(saved) == 0 {
		return AppendResponse(dst, correlationID, resp), segs
	}
	start := len(dst)
	enc := AppendResponse(dst, correlationID, resp)
	// Restore the response before anything else can see it.
	k := 0
	for i := range fr.Topics {
		for j := range fr.Topics[i].Partitions {
			p := &fr.Topics[i].Partitions[j]
			if len(p.RecordBatches) == sentinelLen && k < len(saved) && bytes.Equal(p.RecordBatches, marks[k][:]) {
				p.RecordBatches = saved[k]
				k++
			}
		}
	}
	// Rebuild the frame without sentinels: copy the small bytes between
	// them, write each length prefix for the real batches, and note
	// where the batches go.
	flexible := fr.IsFlexible()
	frame := enc[start:]
	out := dst[:start]
	// The rebuilt bytes may be longer than the encoded ones (a varint
	// prefix grows), so build them in a fresh slice when dst aliases.
	buf := make([]byte, 0, len(frame)+5*len(saved))
	prev := 0
	total := 0
	for i, rec := range saved {
		at := bytes.Index(frame[prev:], marks[i][:])
		if at < 0 {
			// Cannot happen: every mark was encoded. Fall back to a
			// plain copy rather than send a broken frame.
			return AppendResponse(dst[:start], correlationID, resp), segs
		}
		at += prev
		prefixLen := 4
		if flexible {
			prefixLen = 1 // uvarint(16+1)
		}
		seg := Segment{Data: rec}
		if spanner != nil {
			if f, off, n, ok := spanner.FileSpan(rec); ok {
				seg = Segment{File: f, Off: off, N: n}
			}
		}
		n := seg.Len()
		buf = append(buf, frame[prev:at-prefixLen]...)
		if flexible {
			buf = binary.AppendUvarint(buf, uint64(n)+1)
		} else {
			buf = binary.BigEndian.AppendUint32(buf, uint32(n))
		}
		seg.Pos = start + len(buf)
		segs = append(segs, seg)
		total += n
		prev = at + sentinelLen
	}
	buf = append(buf, frame[prev:]...)
	binary.BigEndian.PutUint32(buf, uint32(len(buf)-4+total))
	out = append(out, buf...)
	return out, segs
}
