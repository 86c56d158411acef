package wire

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Segment is a slice of bytes to be written at Pos of an encoded frame
// buffer: the record batches of a fetch response, which are not copied
// into the buffer but written with writev.
type Segment struct {
	Pos  int
	Data []byte
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
		buf = append(buf, frame[prev:at-prefixLen]...)
		if flexible {
			buf = binary.AppendUvarint(buf, uint64(len(rec))+1)
		} else {
			buf = binary.BigEndian.AppendUint32(buf, uint32(len(rec)))
		}
		segs = append(segs, Segment{Pos: start + len(buf), Data: rec})
		total += len(rec)
		prev = at + sentinelLen
	}
	buf = append(buf, frame[prev:]...)
	binary.BigEndian.PutUint32(buf, uint32(len(buf)-4+total))
	out = append(out, buf...)
	return out, segs
}
