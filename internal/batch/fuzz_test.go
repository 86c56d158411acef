package batch

import (
	"bytes"
	"encoding/binary"
	"reflect"
	"testing"
)

// seedBatches are valid batches of every codec for the fuzzers' corpora.
func seedBatches(t testing.TB) [][]byte {
	var out [][]byte
	for _, codec := range codecs {
		b := NewBuilder(codec).SetProducer(1, 2, 3)
		b.Add(Record{Timestamp: 5, Key: []byte("k"), Value: []byte("v"), Headers: []RecordHeader{{Key: "h", Value: nil}}})
		b.Add(Record{Timestamp: 3, Key: nil, Value: []byte{}})
		buf, err := b.Build()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, buf)
	}
	return append(out, ControlBatch(1, 0, true, 2, 3))
}

// FuzzValidate: arbitrary bytes never panic ParseHeader or Validate, and a
// batch Validate accepts lies within the input.
func FuzzValidate(f *testing.F) {
	for _, b := range seedBatches(f) {
		f.Add(b)
		f.Add(b[:len(b)-1])
		f.Add(append(bytes.Clone(b), b...))
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		if h, err := ParseHeader(data); err == nil && (h.Magic != 2 || h.Size() < HeaderSize) {
			t.Fatalf("ParseHeader accepted %+v", h)
		}
		h, err := Validate(data)
		if err != nil {
			return
		}
		if size := h.Size(); size > len(data) || size < HeaderSize {
			t.Fatalf("Validate accepted a batch of %d bytes in %d", size, len(data))
		}
		if h.NumRecords < 0 || int64(h.NumRecords) > int64(h.LastOffsetDelta)+1 {
			t.Fatalf("Validate accepted %d records for lastOffsetDelta %d", h.NumRecords, h.LastOffsetDelta)
		}
	})
}

// fuzzLimit is the decompression limit of the fuzzers, so that allocation
// bounds are meaningful.
const fuzzLimit = 1 << 20

// FuzzRecords: any input with a valid header and CRC (the fuzzer's bytes
// get a correct length, magic and CRC, to reach the record decoder) never
// panics Records, allocates in proportion to the input and the limit,
// never reports more records than recordsCount, and what decodes
// re-encodes to the same records.
func FuzzRecords(f *testing.F) {
	for _, b := range seedBatches(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < HeaderSize {
			return
		}
		data = bytes.Clone(data)
		binary.BigEndian.PutUint32(data[offLength:], uint32(len(data)-LengthOverhead))
		data[offMagic] = 2
		UpdateCRC(data)
		h, err := Validate(data)
		if err != nil {
			return
		}
		r := Reader{Limit: fuzzLimit}
		var recs []Record
		before := allocBytes()
		err = r.Records(data, func(rec Record) bool {
			recs = append(recs, rec)
			return true
		})
		allocated := allocBytes() - before
		// Decompression is bounded by the limit (zstd by its floor), and
		// decoded records by what they decode from: at worst a
		// RecordHeader (40 bytes) per two bytes, plus the Record slice.
		if bound := 4*fuzzLimit + 2*zstdMinMaxMemory + 64*(fuzzLimit+len(data)); allocated > uint64(bound) {
			t.Fatalf("allocated %d bytes for a %d-byte batch", allocated, len(data))
		}
		if len(recs) > int(h.NumRecords) {
			t.Fatalf("%d records reported, recordsCount %d", len(recs), h.NumRecords)
		}
		if err != nil {
			return
		}
		// Re-encode what decoded, if its offsets allow it, and decode
		// again: the same records.
		b := NewBuilder(h.Codec()).SetBaseOffset(h.BaseOffset).SetLastOffsetDelta(h.LastOffsetDelta)
		for _, rec := range recs {
			b.AddAt(rec)
		}
		again, err := b.Build()
		if err != nil {
			return // offsets out of order, or beyond lastOffsetDelta: not encodable by Builder
		}
		if h.Attributes&AttrLogAppendTime != 0 {
			SetLogAppendTime(again, h.MaxTimestamp)
		}
		var recs2 []Record
		if err := Records(again, func(rec Record) bool { recs2 = append(recs2, rec); return true }); err != nil {
			t.Fatalf("re-encoded batch does not decode: %v", err)
		}
		if !reflect.DeepEqual(recs, recs2) {
			t.Fatalf("re-encoding changed the records:\n%s\n%s", summarize(recs), summarize(recs2))
		}
	})
}

// fuzzDecompress: arbitrary input never panics the codec's decoder, never
// yields more than the limit, and what it yields round-trips.
func fuzzDecompress(f *testing.F, codec int, extraSeeds ...[]byte) {
	for _, in := range [][]byte{nil, []byte("x"), bytes.Repeat([]byte("abc"), 1000), make([]byte, 2*fuzzLimit)} {
		comp, err := Compress(codec, nil, in)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(comp)
	}
	for _, s := range extraSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		before := allocBytes()
		out, err := AppendDecompressed(nil, codec, data, fuzzLimit)
		allocated := allocBytes() - before
		if bound := 4*fuzzLimit + 2*zstdMinMaxMemory + 4*len(data); allocated > uint64(bound) {
			t.Fatalf("allocated %d bytes decompressing %d", allocated, len(data))
		}
		if err != nil {
			return
		}
		if len(out) > fuzzLimit {
			t.Fatalf("%d bytes out, limit %d", len(out), fuzzLimit)
		}
		comp, err := Compress(codec, nil, out)
		if err != nil {
			t.Fatal(err)
		}
		again, err := AppendDecompressed(nil, codec, comp, fuzzLimit)
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("round trip of decoded output failed: %v", err)
		}
	})
}

func FuzzDecompressGzip(f *testing.F) { fuzzDecompress(f, CodecGzip) }

func FuzzDecompressSnappy(f *testing.F) {
	fuzzDecompress(f, CodecSnappy,
		xerialFrame(nil),
		xerialFrame([][]byte{[]byte("hello"), bytes.Repeat([]byte("z"), 5000)}))
}

func FuzzDecompressLZ4(f *testing.F) { fuzzDecompress(f, CodecLZ4) }

func FuzzDecompressZstd(f *testing.F) { fuzzDecompress(f, CodecZstd) }
