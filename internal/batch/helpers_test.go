package batch

import (
	"encoding/binary"
	"runtime/metrics"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// allocBytes returns the bytes allocated on the heap so far, for bounds on
// what a call allocates. It is process-wide: callers must not run in
// parallel with other allocating tests.
func allocBytes() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// krecord encodes a record with franz-go's kmsg, with the right length.
func krecord(r kmsg.Record) []byte {
	r.Length = 0
	body := r.AppendTo(nil)[1:] // a zero length is one varint byte
	r.Length = int32(len(body))
	return r.AppendTo(nil)
}

// kbatch encodes a batch with franz-go's kmsg around raw (uncompressed,
// encoded) records, compressing them with our Compress, and sets the
// length and CRC: an independent encoder to check ours against.
func kbatch(t testing.TB, h kmsg.RecordBatch, codec int, numRecords int32, raw []byte) []byte {
	t.Helper()
	comp, err := Compress(codec, nil, raw)
	if err != nil {
		t.Fatal(err)
	}
	h.Magic = 2
	h.Attributes = h.Attributes&^AttrCompressionMask | int16(codec)
	h.NumRecords = numRecords
	h.Records = comp
	b := h.AppendTo(nil)
	binary.BigEndian.PutUint32(b[offLength:], uint32(len(b)-LengthOverhead))
	UpdateCRC(b)
	return b
}

// kbatchOf is kbatch of kmsg records.
func kbatchOf(t testing.TB, h kmsg.RecordBatch, codec int, recs []kmsg.Record) []byte {
	t.Helper()
	var raw []byte
	for _, r := range recs {
		raw = append(raw, krecord(r)...)
	}
	return kbatch(t, h, codec, int32(len(recs)), raw)
}

// collect returns the records of a batch, failing the test on error.
func collect(t testing.TB, b []byte) []Record {
	t.Helper()
	var out []Record
	if err := Records(b, func(r Record) bool { out = append(out, r); return true }); err != nil {
		t.Fatal(err)
	}
	return out
}
