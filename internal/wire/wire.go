// Package wire frames Kafka requests and responses and parses request
// headers.
//
// A request on the wire:
//
//	size          int32   bytes that follow
//	apiKey        int16
//	apiVersion    int16
//	correlationID int32
//	clientID      nullable string (int16 length)     header v1 and v2
//	tagged fields (uvarint count, tags)              header v2 (flexible)
//	body          (kmsg request at apiVersion)
//
// A response is size, correlationID, one empty tagged-field byte for
// flexible versions (response header v1) except ApiVersions, which always
// uses response header v0 (KIP-511), then the body.
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Errors from ReadFrame and ParseHeader. Each closes the connection.
var (
	ErrFrameTooLarge = errors.New("wire: frame larger than socket.request.max.bytes")
	ErrFrameSize     = errors.New("wire: invalid frame size")
	ErrHeader        = errors.New("wire: malformed request header")
)

// ApiVersionsKey is the API key of ApiVersions, whose framing is special.
const ApiVersionsKey = 18

// CheckFrameSize decodes a frame's 4-byte size and checks it against max,
// before anything is allocated for the frame.
func CheckFrameSize(hdr *[4]byte, max int32) (int32, error) {
	size := int32(binary.BigEndian.Uint32(hdr[:]))
	switch {
	case size < 8: // key + version + correlation id at least
		return 0, fmt.Errorf("%w: %d", ErrFrameSize, size)
	case size > max:
		return 0, fmt.Errorf("%w: %d > %d", ErrFrameTooLarge, size, max)
	}
	return size, nil
}

// Header is a parsed request header.
type Header struct {
	Key           int16
	Version       int16
	CorrelationID int32
	// ClientID is nil when the client sent a null client ID.
	ClientID *string
}

// PeekHeader reads the fixed part of a header (key, version, correlation
// ID) without knowing whether the version is flexible.
func PeekHeader(b []byte) (Header, error) {
	if len(b) < 8 {
		return Header{}, ErrHeader
	}
	return Header{
		Key:           int16(binary.BigEndian.Uint16(b[0:])),
		Version:       int16(binary.BigEndian.Uint16(b[2:])),
		CorrelationID: int32(binary.BigEndian.Uint32(b[4:])),
	}, nil
}

// ParseHeader parses the full header of the frame b and returns it with
// the body that follows. flexible selects request header v2 (tagged
// fields after the client ID).
func ParseHeader(b []byte, flexible bool) (Header, []byte, error) {
	h, err := PeekHeader(b)
	if err != nil {
		return h, nil, err
	}
	b = b[8:]
	if len(b) < 2 {
		return h, nil, ErrHeader
	}
	n := int16(binary.BigEndian.Uint16(b))
	b = b[2:]
	switch {
	case n == -1:
	case n < -1 || int(n) > len(b):
		return h, nil, ErrHeader
	default:
		s := string(b[:n])
		h.ClientID = &s
		b = b[n:]
	}
	if flexible {
		var err error
		if b, err = skipTags(b); err != nil {
			return h, nil, err
		}
	}
	return h, b, nil
}

// skipTags skips a tagged-field section.
func skipTags(b []byte) ([]byte, error) {
	count, n := binary.Uvarint(b)
	if n <= 0 || count > uint64(len(b)) {
		return nil, ErrHeader
	}
	b = b[n:]
	for range count {
		if _, n = binary.Uvarint(b); n <= 0 {
			return nil, ErrHeader
		}
		b = b[n:]
		size, n := binary.Uvarint(b)
		if n <= 0 || size > uint64(len(b)-n) {
			return nil, ErrHeader
		}
		b = b[n+int(size):]
	}
	return b, nil
}

// AppendResponse appends a complete response frame (size, header, body)
// to dst. The response's version must be set.
func AppendResponse(dst []byte, correlationID int32, resp kmsg.Response) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst = binary.BigEndian.AppendUint32(dst, uint32(correlationID))
	if resp.IsFlexible() && resp.Key() != ApiVersionsKey {
		dst = append(dst, 0)
	}
	dst = resp.AppendTo(dst)
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	return dst
}
