package wire

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestCheckFrameSize(t *testing.T) {
	for _, tt := range []struct {
		size int32
		err  error
	}{{8, nil}, {100, nil}, {7, ErrFrameSize}, {-1, ErrFrameSize}, {101, ErrFrameTooLarge}} {
		var hdr [4]byte
		binary.BigEndian.PutUint32(hdr[:], uint32(tt.size))
		_, err := CheckFrameSize(&hdr, 100)
		if !errors.Is(err, tt.err) && !(err == nil && tt.err == nil) {
			t.Errorf("size %d: err %v, want %v", tt.size, err, tt.err)
		}
	}
}

func TestParseHeaderRoundTrip(t *testing.T) {
	for _, req := range []kmsg.Request{
		&kmsg.MetadataRequest{Version: 4},  // header v1
		&kmsg.MetadataRequest{Version: 12}, // header v2
	} {
		f := kmsg.NewRequestFormatter(kmsg.FormatterClientID("cli"))
		frame := f.AppendRequest(nil, req, 42)
		h, body, err := ParseHeader(frame[4:], req.IsFlexible())
		if err != nil {
			t.Fatal(err)
		}
		if h.Key != 3 || h.Version != req.GetVersion() || h.CorrelationID != 42 || h.ClientID == nil || *h.ClientID != "cli" {
			t.Fatalf("header %+v", h)
		}
		got := kmsg.NewPtrMetadataRequest()
		got.SetVersion(req.GetVersion())
		if err := got.ReadFrom(body); err != nil {
			t.Fatal(err)
		}
	}
}

func TestAppendResponseHeaders(t *testing.T) {
	av := kmsg.NewPtrApiVersionsResponse()
	av.Version = 3
	out := AppendResponse(nil, 7, av)
	// ApiVersions: no tag byte even though v3 is flexible (KIP-511).
	if got := av.AppendTo(nil); len(out) != 8+len(got) {
		t.Fatalf("ApiVersions framing: %d bytes, body %d", len(out), len(got))
	}
	md := kmsg.NewPtrMetadataResponse()
	md.Version = 12
	out = AppendResponse(nil, 7, md)
	if got := md.AppendTo(nil); len(out) != 9+len(got) {
		t.Fatalf("flexible framing: %d bytes, body %d", len(out), len(got))
	}
	if int(binary.BigEndian.Uint32(out)) != len(out)-4 {
		t.Fatal("size prefix wrong")
	}
}

func FuzzParseHeader(f *testing.F) {
	fr := kmsg.NewRequestFormatter(kmsg.FormatterClientID("c"))
	f.Add(fr.AppendRequest(nil, &kmsg.MetadataRequest{Version: 12}, 1)[4:], true)
	f.Add(fr.AppendRequest(nil, &kmsg.MetadataRequest{Version: 1}, 1)[4:], false)
	f.Fuzz(func(t *testing.T, b []byte, flexible bool) {
		_, body, err := ParseHeader(b, flexible)
		if err == nil && len(body) > len(b) {
			t.Fatal("body longer than input")
		}
	})
}

// TestParseHeaderNullClientIDAndTags: a null client ID (Kafka's
// RequestHeader allows it) and a header v2 carrying a tagged field, which
// is skipped whole.
func TestParseHeaderNullClientIDAndTags(t *testing.T) {
	hdr := []byte{0, 3, 0, 12, 0, 0, 0, 9, 0xff, 0xff}
	body := kmsg.NewPtrMetadataRequest().AppendTo(nil) // v0 body, any bytes will do
	// One tag: number 5, 3 bytes.
	flex := append(append(append([]byte{}, hdr...), 1, 5, 3, 'a', 'b', 'c'), body...)
	h, rest, err := ParseHeader(flex, true)
	if err != nil {
		t.Fatal(err)
	}
	if h.ClientID != nil || h.CorrelationID != 9 || string(rest) != string(body) {
		t.Fatalf("header %+v, body %x", h, rest)
	}
	h, rest, err = ParseHeader(append(append([]byte{}, hdr...), body...), false)
	if err != nil || h.ClientID != nil || string(rest) != string(body) {
		t.Fatalf("header v1: %+v %x %v", h, rest, err)
	}
	// A tag running past the frame is malformed.
	if _, _, err := ParseHeader(append(append([]byte{}, hdr...), 1, 5, 9, 'a'), true); !errors.Is(err, ErrHeader) {
		t.Fatalf("truncated tag: %v", err)
	}
}
