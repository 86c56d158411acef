package batch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// sampleRecords covers the shapes a record can take: null and empty keys
// and values (distinct), headers with null and empty values, timestamps
// before the first record's, and a large value.
func sampleRecords() []Record {
	return []Record{
		{Timestamp: 1_700_000_000_000, Key: []byte("k1"), Value: []byte("v1")},
		{Timestamp: 1_700_000_000_005, Key: nil, Value: []byte("no key")},
		{Timestamp: 1_699_999_999_000, Key: []byte{}, Value: []byte{}},
		{Timestamp: 1_700_000_000_001, Key: []byte("tombstone"), Value: nil},
		{Timestamp: 1_700_000_000_002, Key: []byte("h"), Value: []byte("v"), Headers: []RecordHeader{
			{Key: "trace", Value: []byte("abc")},
			{Key: "", Value: []byte{}},
			{Key: "null", Value: nil},
		}},
		{Timestamp: 1_700_000_000_003, Key: []byte("big"), Value: bytes.Repeat([]byte("0123456789"), 20000)},
	}
}

// withOffsets returns recs with offsets base, base+1, ….
func withOffsets(recs []Record, base int64) []Record {
	out := make([]Record, len(recs))
	for i, r := range recs {
		r.Offset = base + int64(i)
		out[i] = r
	}
	return out
}

func TestBuilderRoundTrip(t *testing.T) {
	for _, codec := range codecs {
		t.Run(CodecName(codec), func(t *testing.T) {
			in := sampleRecords()
			b := NewBuilder(codec).SetProducer(7, 3, 100).SetTransactional(true).SetBaseOffset(1000).SetPartitionLeaderEpoch(5)
			for _, r := range in {
				b.Add(r)
			}
			if b.Len() != len(in) {
				t.Fatalf("Len = %d", b.Len())
			}
			buf, err := b.Build()
			if err != nil {
				t.Fatal(err)
			}
			h, err := ValidateProduced(buf)
			if err != nil {
				t.Fatal(err)
			}
			want := Header{
				BaseOffset: 1000, Length: int32(len(buf) - LengthOverhead), PartitionLeaderEpoch: 5, Magic: 2,
				CRC: h.CRC, Attributes: int16(codec) | AttrTransactional, LastOffsetDelta: int32(len(in) - 1),
				BaseTimestamp: in[0].Timestamp, MaxTimestamp: 1_700_000_000_005,
				ProducerID: 7, ProducerEpoch: 3, BaseSequence: 100, NumRecords: int32(len(in)),
			}
			if h != want {
				t.Fatalf("header\n got %+v\nwant %+v", h, want)
			}
			if got := collect(t, buf); !reflect.DeepEqual(got, withOffsets(in, 1000)) {
				t.Fatalf("records differ:\n got %s\nwant %s", summarize(got), summarize(withOffsets(in, 1000)))
			}
			checkWithFranzGo(t, buf, in)
		})
	}
}

func summarize(recs []Record) string {
	var s string
	for _, r := range recs {
		s += fmt.Sprintf("{%d %d k=%q(nil %v) v=%d(nil %v) h=%v} ", r.Offset, r.Timestamp, r.Key, r.Key == nil, len(r.Value), r.Value == nil, r.Headers)
	}
	return s
}

// checkWithFranzGo decodes buf with franz-go's kmsg and decompressor, an
// independent decoder, and compares with in.
func checkWithFranzGo(t *testing.T, buf []byte, in []Record) {
	t.Helper()
	var kb kmsg.RecordBatch
	if err := kb.ReadFrom(buf); err != nil {
		t.Fatalf("kmsg: %v", err)
	}
	if int(kb.NumRecords) != len(in) || kb.FirstTimestamp != in[0].Timestamp {
		t.Fatalf("kmsg header %+v", kb)
	}
	raw, err := kgo.DefaultDecompressor().Decompress(kb.Records, kgo.CompressionCodecType(kb.Attributes&AttrCompressionMask))
	if err != nil {
		t.Fatalf("franz-go decompress: %v", err)
	}
	for i, want := range in {
		length, n := binary.Varint(raw)
		if n <= 0 || int(length)+n > len(raw) {
			t.Fatalf("record %d: bad length", i)
		}
		var kr kmsg.Record
		if err := kr.ReadFrom(raw[:n+int(length)]); err != nil {
			t.Fatalf("record %d: kmsg: %v", i, err)
		}
		raw = raw[n+int(length):]
		if kr.OffsetDelta != int32(i) || kb.FirstTimestamp+kr.TimestampDelta64 != want.Timestamp ||
			!bytes.Equal(kr.Key, want.Key) || (kr.Key == nil) != (want.Key == nil) ||
			!bytes.Equal(kr.Value, want.Value) || (kr.Value == nil) != (want.Value == nil) ||
			len(kr.Headers) != len(want.Headers) {
			t.Fatalf("record %d: kmsg read %+v", i, kr)
		}
		for j, h := range want.Headers {
			if kr.Headers[j].Key != h.Key || !bytes.Equal(kr.Headers[j].Value, h.Value) || (kr.Headers[j].Value == nil) != (h.Value == nil) {
				t.Fatalf("record %d header %d: %+v", i, j, kr.Headers[j])
			}
		}
	}
	if len(raw) != 0 {
		t.Fatalf("%d bytes after the records", len(raw))
	}
}

// TestRecordsOfFranzGoBatches parses batches encoded by kmsg.
func TestRecordsOfFranzGoBatches(t *testing.T) {
	for _, codec := range codecs {
		t.Run(CodecName(codec), func(t *testing.T) {
			krecs := []kmsg.Record{
				{OffsetDelta: 0, TimestampDelta64: 0, Key: []byte("a"), Value: []byte("1")},
				{OffsetDelta: 1, TimestampDelta64: -3, Key: nil, Value: nil,
					Headers: []kmsg.Header{{Key: "h", Value: []byte("x")}, {Key: "n", Value: nil}}},
				{OffsetDelta: 5, TimestampDelta64: 1 << 40, Key: []byte{}, Value: []byte{}},
			}
			hdr := kmsg.RecordBatch{FirstOffset: 42, PartitionLeaderEpoch: -1, LastOffsetDelta: 5,
				FirstTimestamp: 1000, MaxTimestamp: 1000 + 1<<40, ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1}
			want := []Record{
				{Offset: 42, Timestamp: 1000, Key: []byte("a"), Value: []byte("1")},
				{Offset: 43, Timestamp: 997, Headers: []RecordHeader{{"h", []byte("x")}, {"n", nil}}},
				{Offset: 47, Timestamp: 1000 + 1<<40, Key: []byte{}, Value: []byte{}},
			}
			if got := collect(t, kbatchOf(t, hdr, codec, krecs)); !reflect.DeepEqual(got, want) {
				t.Fatalf("got %s\nwant %s", summarize(got), summarize(want))
			}
			// LogAppendTime: every record reads as maxTimestamp.
			hdr.Attributes = AttrLogAppendTime
			for _, r := range collect(t, kbatchOf(t, hdr, codec, krecs)) {
				if r.Timestamp != hdr.MaxTimestamp {
					t.Fatalf("LogAppendTime record timestamp %d, want %d", r.Timestamp, hdr.MaxTimestamp)
				}
			}
		})
	}
}

// The fields of a hand-made record: ints become varints, []byte is
// copied, and withLength prefixes the length.
func fields(parts ...any) []byte {
	var out []byte
	for _, p := range parts {
		switch p := p.(type) {
		case int:
			out = binary.AppendVarint(out, int64(p))
		case int64:
			out = binary.AppendVarint(out, p)
		case []byte:
			out = append(out, p...)
		default:
			panic(fmt.Sprintf("fields: %T", p))
		}
	}
	return out
}

func withLength(body []byte) []byte {
	return append(binary.AppendVarint(nil, int64(len(body))), body...)
}

// goodRecord is a valid record: attributes 0, deltas 0, key "k", value "v",
// no headers.
var goodRecord = withLength(fields([]byte{0}, 0, 0, 1, []byte("k"), 1, []byte("v"), 0))

func TestRecordsMalformed(t *testing.T) {
	hdr := kmsg.RecordBatch{LastOffsetDelta: 9, ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1}
	cases := []struct {
		name  string
		count int32
		raw   []byte
		want  error
	}{
		{"Good", 1, goodRecord, nil},
		{"CountAboveRecords", 2, goodRecord, ErrRecord},
		{"TrailingBytes", 1, append(bytes.Clone(goodRecord), 0), ErrRecord},
		{"CountUnfittable", 10, goodRecord, ErrRecord},
		{"Empty", 1, nil, ErrRecord},
		{"LengthBeyondData", 1, append(fields(100), goodRecord[1:]...), ErrRecord},
		{"LengthNegative", 1, append(fields(-1), goodRecord[1:]...), ErrRecord},
		{"LengthTooSmall", 1, append(fields(3), goodRecord[1:]...), ErrRecord},
		{"LengthShortOfFields", 2, append(fields(int(goodRecord[0])/2-1), append(goodRecord[1:], goodRecord...)...), ErrRecord},
		{"LengthPastFields", 1, withLength(fields([]byte{0}, 0, 0, 1, []byte("k"), 1, []byte("v"), 0, []byte{0})), ErrRecord},
		{"KeyLengthMinus2", 1, withLength(fields([]byte{0}, 0, 0, -2, 1, []byte("v"), 0)), ErrRecord},
		{"KeyBeyondRecord", 2, append(withLength(fields([]byte{0}, 0, 0, 8, -1, 0)), goodRecord...), ErrRecord},
		{"ValueBeyondRecord", 1, withLength(fields([]byte{0}, 0, 0, -1, 1000, 0)), ErrRecord},
		{"NullKeyAndValue", 1, withLength(fields([]byte{0}, 0, 0, -1, -1, 0)), nil},
		{"HeaderCountNegative", 1, withLength(fields([]byte{0}, 0, 0, -1, -1, -1)), ErrRecord},
		{"HeaderCountHuge", 1, withLength(fields([]byte{0}, 0, 0, -1, -1, 1<<30, 0, 0)), ErrRecord},
		{"HeaderKeyNull", 1, withLength(fields([]byte{0}, 0, 0, -1, -1, 1, -1, 0)), ErrRecord},
		{"HeaderValueNull", 1, withLength(fields([]byte{0}, 0, 0, -1, -1, 1, 1, []byte("h"), -1)), nil},
		{"HeaderValueBeyond", 1, withLength(fields([]byte{0}, 0, 0, -1, -1, 1, 1, []byte("h"), 5)), ErrRecord},
		{"HeaderCountAboveHeaders", 1, withLength(fields([]byte{0}, 0, 0, -1, -1, 2, 1, []byte("h"), -1)), ErrRecord},
		{"VarintOverflow", 1, withLength(fields([]byte{0}, bytes.Repeat([]byte{0xff}, 10), []byte{1}, 0, -1, -1, 0)), ErrRecord},
		{"VarintTruncated", 1, fields([]byte{0x80}), ErrRecord},
		{"OffsetDeltaOverInt32", 1, withLength(fields([]byte{0}, 0, int64(1)<<31, -1, -1, 0)), ErrRecord},
		{"LengthOverInt32", 1, append(fields(int64(1)<<32), goodRecord[1:]...), ErrRecord},
	}
	for _, c := range cases {
		for _, codec := range []int{CodecNone, CodecZstd} {
			t.Run(c.name+"/"+CodecName(codec), func(t *testing.T) {
				b := kbatch(t, hdr, codec, c.count, c.raw)
				err := Records(b, func(Record) bool { return true })
				if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
					t.Fatalf("error %v, want %v", err, c.want)
				}
			})
		}
	}
}

func TestRecordsBatchErrors(t *testing.T) {
	good := buildSample(t, CodecNone)
	gzipped := buildSample(t, CodecGzip)
	corruptComp := bytes.Clone(gzipped)
	corruptComp[HeaderSize+12] ^= 0xff
	UpdateCRC(corruptComp)
	badCRC := bytes.Clone(good)
	badCRC[len(badCRC)-1] ^= 1
	cases := []struct {
		name string
		b    []byte
		want error
	}{
		{"Truncated", good[:len(good)-1], ErrShort},
		{"HeaderOnly", good[:HeaderSize-1], ErrShort},
		{"BadCRC", badCRC, ErrCRC},
		{"CorruptCompressed", corruptComp, ErrDecompress},
		{"UnknownCodec", withAttrs(good, 6), ErrCodec},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			called := false
			err := Records(c.b, func(Record) bool { called = true; return true })
			if !errors.Is(err, c.want) {
				t.Fatalf("error %v, want %v", err, c.want)
			}
			if called && !errors.Is(c.want, ErrRecord) {
				t.Fatal("fn called for a batch that failed its checks")
			}
		})
	}
}

func withAttrs(b []byte, attrs uint16) []byte {
	b = bytes.Clone(b)
	binary.BigEndian.PutUint16(b[offAttributes:], attrs)
	UpdateCRC(b)
	return b
}

func buildSample(t testing.TB, codec int) []byte {
	t.Helper()
	b := NewBuilder(codec)
	for _, r := range sampleRecords() {
		b.Add(r)
	}
	out, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestRecordsStopsEarlyAndReadsOneBatch(t *testing.T) {
	two := append(buildSample(t, CodecLZ4), buildSample(t, CodecNone)...)
	n := 0
	if err := Records(two, func(Record) bool { n++; return n < 2 }); err != nil || n != 2 {
		t.Fatalf("stopped after %d, err %v", n, err)
	}
	if got := len(collect(t, two)); got != len(sampleRecords()) {
		t.Fatalf("read %d records from the first of two batches", got)
	}
}

func TestReaderReusesBuffer(t *testing.T) {
	var r Reader
	b := buildSample(t, CodecZstd)
	for range 3 {
		var got []Record
		if err := r.Records(b, func(rec Record) bool { got = append(got, rec); return true }); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, withOffsets(sampleRecords(), 0)) {
			t.Fatal("records differ")
		}
	}
	// The only allocations: the one record with headers needs their
	// slice and two non-empty key strings. The buffer is reused.
	if avg := testing.AllocsPerRun(10, func() { _ = r.Records(b, func(Record) bool { return true }) }); !raceEnabled && avg > 3 {
		t.Fatalf("Reader.Records allocates %.0f times per batch, want 3", avg)
	}
	r.Limit = 1000
	if err := r.Records(b, func(Record) bool { return true }); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Limit: %v", err)
	}
}

func TestLogAppendTime(t *testing.T) {
	b := buildSample(t, CodecSnappy)
	SetLogAppendTime(b, 123)
	for _, r := range collect(t, b) {
		if r.Timestamp != 123 {
			t.Fatalf("timestamp %d, want 123", r.Timestamp)
		}
	}
}

func TestBuilderOffsets(t *testing.T) {
	t.Run("AddAtGaps", func(t *testing.T) {
		b := NewBuilder(CodecNone).SetBaseOffset(100).SetLastOffsetDelta(9)
		b.AddAt(Record{Offset: 101, Value: []byte("a")})
		b.AddAt(Record{Offset: 105, Value: []byte("b")})
		buf, err := b.Build()
		if err != nil {
			t.Fatal(err)
		}
		h, err := Validate(buf)
		if err != nil {
			t.Fatal(err)
		}
		if h.LastOffsetDelta != 9 || h.NumRecords != 2 || h.NextOffset() != 110 {
			t.Fatalf("header %+v", h)
		}
		if _, err := ValidateProduced(buf); !errors.Is(err, ErrRecordsCount) {
			t.Fatalf("ValidateProduced of a compacted batch: %v", err)
		}
		got := collect(t, buf)
		if len(got) != 2 || got[0].Offset != 101 || got[1].Offset != 105 {
			t.Fatalf("offsets %s", summarize(got))
		}
	})
	t.Run("AddAtBackwards", func(t *testing.T) {
		b := NewBuilder(CodecNone).SetBaseOffset(100)
		b.AddAt(Record{Offset: 105})
		b.AddAt(Record{Offset: 105})
		if _, err := b.Build(); !errors.Is(err, ErrBuild) {
			t.Fatalf("error %v", err)
		}
		b.Reset()
		b.AddAt(Record{Offset: 99})
		if _, err := b.Build(); !errors.Is(err, ErrBuild) {
			t.Fatalf("below base: %v", err)
		}
		b.Reset()
		b.AddAt(Record{Offset: 100 + 1<<31})
		if _, err := b.Build(); !errors.Is(err, ErrBuild) {
			t.Fatalf("delta over int32: %v", err)
		}
	})
	t.Run("Empty", func(t *testing.T) {
		if _, err := NewBuilder(CodecNone).Build(); !errors.Is(err, ErrBuild) {
			t.Fatalf("empty batch: %v", err)
		}
		buf, err := NewBuilder(CodecZstd).SetLastOffsetDelta(4).Build()
		if err != nil {
			t.Fatal(err)
		}
		h, err := Validate(buf)
		if err != nil || h.NumRecords != 0 || h.LastOffsetDelta != 4 || h.BaseTimestamp != -1 || h.MaxTimestamp != -1 {
			t.Fatalf("header %+v, %v", h, err)
		}
		if got := collect(t, buf); len(got) != 0 {
			t.Fatalf("records %v", got)
		}
	})
	t.Run("ResetAndAppendTo", func(t *testing.T) {
		b := NewBuilder(CodecGzip)
		b.Add(Record{Value: []byte("first")})
		b.Reset()
		b.Add(Record{Value: []byte("second")})
		buf, err := b.AppendTo([]byte("prefix"))
		if err != nil || !bytes.HasPrefix(buf, []byte("prefix")) {
			t.Fatal(err)
		}
		got := collect(t, buf[len("prefix"):])
		if len(got) != 1 || string(got[0].Value) != "second" || got[0].Offset != 0 {
			t.Fatalf("got %s", summarize(got))
		}
	})
	t.Run("Attributes", func(t *testing.T) {
		b := NewBuilder(CodecNone).SetTransactional(true).SetControl(true).SetControl(false)
		b.Add(Record{})
		buf, _ := b.Build()
		h, _ := Validate(buf)
		if !h.IsTransactional() || h.IsControl() || h.ProducerID != -1 || h.PartitionLeaderEpoch != -1 {
			t.Fatalf("header %+v", h)
		}
	})
	t.Run("UnknownCodec", func(t *testing.T) {
		b := NewBuilder(5)
		b.Add(Record{})
		if _, err := b.Build(); !errors.Is(err, ErrCodec) {
			t.Fatalf("error %v", err)
		}
	})
}

func TestControlBatch(t *testing.T) {
	for _, commit := range []bool{false, true} {
		t.Run(fmt.Sprint("commit=", commit), func(t *testing.T) {
			buf := ControlBatch(9001, 4, commit, 17, 1_700_000_000_000)
			h, err := ValidateProduced(buf)
			if err != nil {
				t.Fatal(err)
			}
			if !h.IsControl() || !h.IsTransactional() || h.Codec() != CodecNone || h.ProducerID != 9001 ||
				h.ProducerEpoch != 4 || h.BaseSequence != -1 || h.NumRecords != 1 ||
				h.BaseTimestamp != 1_700_000_000_000 || h.MaxTimestamp != 1_700_000_000_000 {
				t.Fatalf("header %+v", h)
			}
			// Byte-for-byte what kmsg's control-record types encode.
			typ := kmsg.ControlRecordKeyTypeAbort
			if commit {
				typ = kmsg.ControlRecordKeyTypeCommit
			}
			key := (&kmsg.ControlRecordKey{Version: 0, Type: typ}).AppendTo(nil)
			value := (&kmsg.EndTxnMarker{Version: 0, CoordinatorEpoch: 17}).AppendTo(nil)
			want := kbatchOf(t, kmsg.RecordBatch{PartitionLeaderEpoch: -1,
				Attributes: AttrTransactional | AttrControl, FirstTimestamp: 1_700_000_000_000,
				MaxTimestamp: 1_700_000_000_000, ProducerID: 9001, ProducerEpoch: 4, FirstSequence: -1},
				CodecNone, []kmsg.Record{{Key: key, Value: value}})
			if !bytes.Equal(buf, want) {
				t.Fatalf("control batch\n got %x\nwant %x", buf, want)
			}
			recs := collect(t, buf)
			ct, err := ParseControlKey(recs[0].Key)
			if err != nil || (ct == ControlCommit) != commit || (ct == ControlAbort) == commit {
				t.Fatalf("ParseControlKey = %v, %v", ct, err)
			}
			if epoch, err := ParseEndTxnMarker(recs[0].Value); err != nil || epoch != 17 {
				t.Fatalf("ParseEndTxnMarker = %d, %v", epoch, err)
			}
		})
	}
}

func TestParseControlErrors(t *testing.T) {
	for _, c := range []struct {
		name  string
		key   []byte
		value []byte
	}{
		{"Short", []byte{0, 0, 0}, []byte{0, 0, 0, 0, 0}},
		{"NegativeVersion", []byte{0xff, 0xff, 0, 1}, []byte{0xff, 0xff, 0, 0, 0, 1}},
		{"Nil", nil, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := ParseControlKey(c.key); !errors.Is(err, ErrRecord) {
				t.Errorf("ParseControlKey: %v", err)
			}
			if _, err := ParseEndTxnMarker(c.value); !errors.Is(err, ErrRecord) {
				t.Errorf("ParseEndTxnMarker: %v", err)
			}
		})
	}
	// A later version is read, as Kafka does.
	if ct, err := ParseControlKey([]byte{0, 1, 0, 1, 9}); err != nil || ct != ControlCommit {
		t.Fatalf("version 1 key: %v, %v", ct, err)
	}
}
