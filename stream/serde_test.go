package stream_test

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"github.com/gregor-streaming/gregor/stream"
)

func TestSerdes(t *testing.T) {
	i64 := stream.Int64()
	for _, v := range []int64{0, 1, -1, 1 << 62, -(1 << 63)} {
		b, _ := i64.Encode(v)
		if got, err := i64.Decode(b); err != nil || got != v || len(b) != 8 {
			t.Errorf("int64 %d: %x -> %d, %v", v, b, got, err)
		}
	}
	// Kafka's LongSerializer: big-endian.
	if b, _ := i64.Encode(258); !bytes.Equal(b, []byte{0, 0, 0, 0, 0, 0, 1, 2}) {
		t.Errorf("Int64(258) = %x", b)
	}
	if v, err := i64.Decode(nil); v != 0 || err != nil {
		t.Errorf("Int64 null: %d, %v", v, err)
	}
	if _, err := i64.Decode([]byte{1, 2, 3}); err == nil {
		t.Error("Int64 accepted 3 bytes")
	}

	type point struct{ X, Y int }
	js := stream.JSON[point]()
	b, _ := js.Encode(point{1, 2})
	if p, err := js.Decode(b); err != nil || p != (point{1, 2}) {
		t.Errorf("JSON: %s -> %v, %v", b, p, err)
	}
	if _, err := js.Decode([]byte("{")); err == nil {
		t.Error("JSON accepted {")
	}
	if p, err := js.Decode(nil); err != nil || p != (point{}) {
		t.Errorf("JSON null: %v, %v", p, err)
	}

	ws := stream.WindowedSerde(stream.String(), time.Minute)
	start := time.Date(2025, 1, 1, 0, 1, 0, 0, time.UTC)
	b, _ = ws.Encode(stream.Windowed[string]{Key: "k", Start: start})
	// Kafka Streams' TimeWindowedSerializer: key bytes, then the start.
	if want := binary.BigEndian.AppendUint64([]byte("k"), uint64(start.UnixMilli())); !bytes.Equal(b, want) {
		t.Errorf("windowed key %x, want %x", b, want)
	}
	w, err := ws.Decode(b)
	if err != nil || w.Key != "k" || !w.Start.Equal(start) || !w.End.Equal(start.Add(time.Minute)) {
		t.Errorf("windowed decode: %v, %v", w, err)
	}
	if _, err := ws.Decode([]byte("short")); err == nil {
		t.Error("windowed key of 5 bytes accepted")
	}

	custom := stream.SerdeFuncs(func(s string) ([]byte, error) { return []byte("<" + s + ">"), nil },
		func(b []byte) (string, error) { return string(bytes.Trim(b, "<>")), nil })
	if b, _ := custom.Encode("x"); string(b) != "<x>" {
		t.Errorf("SerdeFuncs encode: %s", b)
	}
}

// The decoders never panic, and decode-encode is the identity on what
// they accept.
func FuzzDecoders(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 7})
	f.Add([]byte(`{"a":1}`))
	f.Add([]byte("key\x00\x00\x00\x00\x00\x00\x00\x01"))
	i64 := stream.Int64()
	js := stream.JSON[map[string]int]()
	ws := stream.WindowedSerde(stream.Bytes(), time.Second)
	f.Fuzz(func(t *testing.T, b []byte) {
		if v, err := i64.Decode(b); err == nil && len(b) == 8 {
			if enc, _ := i64.Encode(v); !bytes.Equal(enc, b) {
				t.Fatalf("int64 %x -> %d -> %x", b, v, enc)
			}
		}
		js.Decode(b)
		if w, err := ws.Decode(b); err == nil {
			if enc, _ := ws.Encode(w); !bytes.Equal(enc, b) {
				t.Fatalf("windowed %x -> %v -> %x", b, w, enc)
			}
		}
	})
}
