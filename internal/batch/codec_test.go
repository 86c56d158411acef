package batch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/klauspost/compress/s2"
	"github.com/twmb/franz-go/pkg/kgo"
)

var codecs = []int{CodecNone, CodecGzip, CodecSnappy, CodecLZ4, CodecZstd}

var compressedCodecs = codecs[1:]

// testInputs are payloads of different shapes: empty, tiny, text-like,
// incompressible, and highly compressible.
func testInputs() map[string][]byte {
	rng := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, 300<<10)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	return map[string][]byte{
		"empty":  {},
		"byte":   {42},
		"text":   bytes.Repeat([]byte("the quick brown fox jumps over the lazy dog; "), 2000),
		"random": random,
		"zeros":  make([]byte, 1<<20),
	}
}

func TestCompressRoundTrip(t *testing.T) {
	for name, in := range testInputs() {
		for _, codec := range codecs {
			t.Run(CodecName(codec)+"/"+name, func(t *testing.T) {
				comp, err := Compress(codec, []byte("prefix"), in)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.HasPrefix(comp, []byte("prefix")) {
					t.Fatal("Compress did not append to dst")
				}
				out, err := Decompress(codec, comp[len("prefix"):])
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(out, in) {
					t.Fatalf("round trip: got %d bytes, want %d", len(out), len(in))
				}
				// AppendDecompressed appends, and an exact limit is enough.
				out, err = AppendDecompressed([]byte("x"), codec, comp[len("prefix"):], len(in))
				if err != nil || !bytes.Equal(out, append([]byte("x"), in...)) {
					t.Fatalf("AppendDecompressed: %d bytes, %v", len(out), err)
				}
			})
		}
	}
}

// TestDecompressLimit: a bomb (small input, huge output) is refused with
// ErrTooLarge, by every codec, without allocating the output.
func TestDecompressLimit(t *testing.T) {
	bomb := make([]byte, 16<<20)
	for _, codec := range codecs {
		t.Run(CodecName(codec), func(t *testing.T) {
			comp, err := Compress(codec, nil, bomb)
			if err != nil {
				t.Fatal(err)
			}
			const limit = 1 << 20
			AppendDecompressed(nil, codec, comp, limit) // warm the pools
			before := allocBytes()
			out, err := AppendDecompressed([]byte("keep"), codec, comp, limit)
			allocated := allocBytes() - before
			if !errors.Is(err, ErrTooLarge) {
				t.Fatalf("error %v, want ErrTooLarge", err)
			}
			if string(out) != "keep" {
				t.Fatalf("dst changed to %d bytes", len(out))
			}
			// Growing the output buffer to the limit costs about twice
			// the limit; pool misses (frequent under -race) add a few
			// decoder buffers. Far below the 16 MiB the bomb asks for.
			if allocated > 6*limit {
				t.Fatalf("allocated %d bytes with a limit of %d", allocated, limit)
			}
			// Limit one byte short of the output.
			_, err = AppendDecompressed(nil, codec, comp, len(bomb)-1)
			if !errors.Is(err, ErrTooLarge) {
				t.Fatalf("limit len-1: error %v, want ErrTooLarge", err)
			}
		})
	}
}

func TestDecompressErrors(t *testing.T) {
	valid := map[int][]byte{}
	for _, codec := range compressedCodecs {
		valid[codec], _ = Compress(codec, nil, bytes.Repeat([]byte("abcdefgh"), 1000))
	}
	cases := []struct {
		name  string
		codec int
		in    []byte
		want  error
	}{
		{"UnknownCodec", 5, []byte{1}, ErrCodec},
		{"UnknownCodec7", 7, nil, ErrCodec},
		{"GzipGarbage", CodecGzip, []byte("not gzip at all"), ErrDecompress},
		{"GzipTruncated", CodecGzip, valid[CodecGzip][:len(valid[CodecGzip])/2], ErrDecompress},
		{"GzipEmpty", CodecGzip, nil, ErrDecompress},
		{"LZ4Garbage", CodecLZ4, []byte("not lz4 at all"), ErrDecompress},
		{"LZ4Truncated", CodecLZ4, valid[CodecLZ4][:len(valid[CodecLZ4])/2], ErrDecompress},
		{"ZstdGarbage", CodecZstd, []byte("not zstd at all"), ErrDecompress},
		{"ZstdTruncated", CodecZstd, valid[CodecZstd][:len(valid[CodecZstd])/2], ErrDecompress},
		{"SnappyGarbage", CodecSnappy, []byte{0x05, 0xff, 0xff}, ErrDecompress},
		{"SnappyTruncated", CodecSnappy, valid[CodecSnappy][:len(valid[CodecSnappy])/2], ErrDecompress},
		{"SnappyEmpty", CodecSnappy, nil, ErrDecompress},
		// A raw block claiming 500 KiB in 3 bytes: implausible, refused
		// before allocating.
		{"SnappyLyingLength", CodecSnappy, binary.AppendUvarint(nil, 500<<10), ErrDecompress},
		{"SnappyOverLimit", CodecSnappy, binary.AppendUvarint(nil, 1<<30), ErrTooLarge},
		{"XerialShortChunkHeader", CodecSnappy, append(xerialFrame(nil), 0, 0), ErrDecompress},
		{"XerialChunkBeyondInput", CodecSnappy, binary.BigEndian.AppendUint32(xerialFrame(nil), 100), ErrDecompress},
		{"XerialBadChunk", CodecSnappy, append(binary.BigEndian.AppendUint32(xerialFrame(nil), 2), 0x05, 0xff), ErrDecompress},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, err := AppendDecompressed(nil, c.codec, c.in, 1<<20)
			if !errors.Is(err, c.want) {
				t.Fatalf("error %v, want %v", err, c.want)
			}
			if len(out) != 0 {
				t.Fatalf("returned %d bytes with an error", len(out))
			}
		})
	}
	if _, err := Compress(6, nil, []byte("x")); !errors.Is(err, ErrCodec) {
		t.Fatalf("Compress(6): %v", err)
	}
}

// xerialFrame frames chunks the way the Java client's snappy-java
// SnappyOutputStream does.
func xerialFrame(chunks [][]byte) []byte {
	out := append([]byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}, 0, 0, 0, 1, 0, 0, 0, 1)
	for _, c := range chunks {
		block := s2.EncodeSnappy(nil, c)
		out = binary.BigEndian.AppendUint32(out, uint32(len(block)))
		out = append(out, block...)
	}
	return out
}

func TestXerialSnappy(t *testing.T) {
	in := testInputs()["text"]
	cases := map[string][][]byte{
		"none":      nil,
		"one":       {in},
		"32KiB":     {in[:32<<10], in[32<<10 : 64<<10], in[64<<10:]},
		"withEmpty": {in[:10], {}, in[10:20]},
	}
	for name, chunks := range cases {
		t.Run(name, func(t *testing.T) {
			out, err := Decompress(CodecSnappy, xerialFrame(chunks))
			if err != nil {
				t.Fatal(err)
			}
			if want := bytes.Join(chunks, nil); !bytes.Equal(out, want) {
				t.Fatalf("got %d bytes, want %d", len(out), len(want))
			}
		})
	}
	// The limit counts all chunks together.
	frame := xerialFrame([][]byte{in[:1000], in[1000:2000]})
	if _, err := AppendDecompressed(nil, CodecSnappy, frame, 1999); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("two chunks over the limit: %v", err)
	}
	if out, err := AppendDecompressed(nil, CodecSnappy, frame, 2000); err != nil || len(out) != 2000 {
		t.Fatalf("two chunks at the limit: %d, %v", len(out), err)
	}
}

// TestCodecsInteropFranzGo checks that franz-go's client reads what we
// compress and we read what it compresses.
func TestCodecsInteropFranzGo(t *testing.T) {
	kcodecs := map[int]kgo.CompressionCodec{
		CodecGzip:   kgo.GzipCompression(),
		CodecSnappy: kgo.SnappyCompression(),
		CodecLZ4:    kgo.Lz4Compression(),
		CodecZstd:   kgo.ZstdCompression(),
	}
	dec := kgo.DefaultDecompressor()
	for name, in := range testInputs() {
		for _, codec := range compressedCodecs {
			t.Run(CodecName(codec)+"/"+name, func(t *testing.T) {
				comp, err := Compress(codec, nil, in)
				if err != nil {
					t.Fatal(err)
				}
				out, err := dec.Decompress(comp, kgo.CompressionCodecType(codec))
				if err != nil || !bytes.Equal(out, in) {
					t.Fatalf("franz-go decompressing ours: %d bytes, %v", len(out), err)
				}
				enc, err := kgo.DefaultCompressor(kcodecs[codec])
				if err != nil {
					t.Fatal(err)
				}
				theirs, used := enc.Compress(new(bytes.Buffer), in)
				if int(used) != codec {
					t.Fatalf("franz-go used codec %d", used)
				}
				out, err = Decompress(codec, theirs)
				if err != nil || !bytes.Equal(out, in) {
					t.Fatalf("decompressing franz-go's: %d bytes, %v", len(out), err)
				}
			})
		}
	}
}

// TestGzipMultistream: Java's GZIPInputStream reads concatenated gzip
// members as one stream, so we do too.
func TestGzipMultistream(t *testing.T) {
	a, _ := Compress(CodecGzip, nil, []byte("hello "))
	ab, _ := Compress(CodecGzip, a, []byte("world"))
	out, err := Decompress(CodecGzip, ab)
	if err != nil || string(out) != "hello world" {
		t.Fatalf("got %q, %v", out, err)
	}
}

func TestDecompressNoneAliases(t *testing.T) {
	in := []byte("raw")
	out, err := Decompress(CodecNone, in)
	if err != nil || &out[0] != &in[0] {
		t.Fatalf("Decompress(none) copied or failed: %v", err)
	}
	if _, err := AppendDecompressed(nil, CodecNone, in, 2); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("none over limit: %v", err)
	}
}

func TestCodecName(t *testing.T) {
	for codec, want := range map[int]string{0: "none", 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd", 5: "codec(5)"} {
		if got := CodecName(codec); got != want {
			t.Errorf("CodecName(%d) = %q, want %q", codec, got, want)
		}
	}
}
