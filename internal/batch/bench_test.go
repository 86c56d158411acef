package batch

import (
	"bytes"
	"fmt"
	"testing"
)

// benchBatch builds a batch of about size bytes of 100-byte text-like
// values.
func benchBatch(tb testing.TB, codec, size int) []byte {
	tb.Helper()
	b := NewBuilder(codec).SetProducer(1, 0, 0)
	value := bytes.Repeat([]byte("gregor-"), 15)[:100]
	for i := 0; b.Len()*(len(value)+20) < size; i++ {
		b.Add(Record{Timestamp: 1_700_000_000_000 + int64(i), Key: fmt.Appendf(nil, "key-%06d", i), Value: value})
	}
	buf, err := b.Build()
	if err != nil {
		tb.Fatal(err)
	}
	return buf
}

// TestZeroAllocs pins the produce path's header checks at no allocations.
func TestZeroAllocs(t *testing.T) {
	buf := benchBatch(t, CodecNone, 16<<10)
	for name, fn := range map[string]func(){
		"ParseHeader":             func() { _, _ = ParseHeader(buf) },
		"Validate":                func() { _, _ = Validate(buf) },
		"ValidateProduced":        func() { _, _ = ValidateProduced(buf) },
		"SetBaseOffset":           func() { SetBaseOffset(buf, 42) },
		"SetPartitionLeaderEpoch": func() { SetPartitionLeaderEpoch(buf, 7) },
		"UpdateCRC":               func() { UpdateCRC(buf) },
	} {
		if n := testing.AllocsPerRun(100, fn); n != 0 {
			t.Errorf("%s allocates %.1f times, want 0", name, n)
		}
	}
}

// BenchmarkValidate measures the header and CRC-32C check of the produce
// and recovery paths; its throughput is CRC-32C's.
func BenchmarkValidate(b *testing.B) {
	for _, size := range []int{1 << 10, 16 << 10, 1 << 20} {
		buf := benchBatch(b, CodecNone, size)
		b.Run(fmt.Sprintf("%dKiB", size>>10), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(buf)))
			for b.Loop() {
				if _, err := Validate(buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkParseHeader(b *testing.B) {
	buf := benchBatch(b, CodecNone, 1<<10)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseHeader(buf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRecords decodes a 64 KiB (uncompressed) batch with a reused
// Reader; bytes/s counts uncompressed record bytes.
func BenchmarkRecords(b *testing.B) {
	for _, codec := range codecs {
		buf := benchBatch(b, codec, 64<<10)
		raw := len(benchBatch(b, CodecNone, 64<<10))
		b.Run(CodecName(codec), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(raw))
			var r Reader
			for b.Loop() {
				n := 0
				if err := r.Records(buf, func(Record) bool { n++; return true }); err != nil || n == 0 {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkBuild builds the same 64 KiB batch, compressing it.
func BenchmarkBuild(b *testing.B) {
	value := bytes.Repeat([]byte("gregor-"), 15)[:100]
	for _, codec := range codecs {
		b.Run(CodecName(codec), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(512 * len(value)))
			bld := NewBuilder(codec)
			var out []byte
			for b.Loop() {
				bld.Reset()
				for i := range 512 {
					bld.Add(Record{Timestamp: int64(i), Key: []byte("key"), Value: value})
				}
				var err error
				if out, err = bld.AppendTo(out[:0]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
