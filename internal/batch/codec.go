package batch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// MaxDecompressed bounds how large a batch's records may decompress to
// when no other limit is given (Decompress, Records, a zero Reader.Limit),
// so a small "zip bomb" cannot exhaust memory. Kafka itself sets no such
// bound; 64 MiB is far above any batch a producer builds under the default
// message.max.bytes. Set it before use, not concurrently with decoding.
var MaxDecompressed = 64 << 20

// Codec errors. Decompression failures wrap ErrDecompress (and the
// codec's own error): like the errors of Validate they mean corrupt input,
// CORRUPT_MESSAGE on the produce path.
var (
	ErrCodec      = errors.New("batch: unknown compression codec")
	ErrDecompress = errors.New("batch: cannot decompress records")
	ErrTooLarge   = errors.New("batch: records decompress to more than the limit")
)

// CodecName returns a codec's name as Kafka's compression.type spells it.
func CodecName(codec int) string {
	switch codec {
	case CodecNone:
		return "none"
	case CodecGzip:
		return "gzip"
	case CodecSnappy:
		return "snappy"
	case CodecLZ4:
		return "lz4"
	case CodecZstd:
		return "zstd"
	}
	return fmt.Sprintf("codec(%d)", codec)
}

// Compress appends src compressed with codec to dst and returns the
// extended slice. The formats are what Kafka clients produce: a gzip
// stream, a raw snappy block (as franz-go and librdkafka write it; Java
// reads it too), an LZ4 frame, a zstd frame. CodecNone appends src as is.
func Compress(codec int, dst, src []byte) ([]byte, error) {
	switch codec {
	case CodecNone:
		return append(dst, src...), nil
	case CodecGzip:
		w := gzipWriters.Get().(*gzipWriter)
		defer gzipWriters.Put(w)
		w.out.b = dst
		w.w.Reset(&w.out)
		_, err := w.w.Write(src)
		if cerr := w.w.Close(); err == nil {
			err = cerr
		}
		out := w.out.b
		w.out.b = nil
		return out, err
	case CodecSnappy:
		dst = slices.Grow(dst, s2.MaxEncodedLen(len(src)))
		block := s2.EncodeSnappy(dst[len(dst):cap(dst)], src)
		return dst[:len(dst)+len(block)], nil
	case CodecLZ4:
		w := lz4Writers.Get().(*lz4Writer)
		defer lz4Writers.Put(w)
		w.out.b = dst
		w.w.Reset(&w.out)
		_, err := w.w.Write(src)
		if cerr := w.w.Close(); err == nil {
			err = cerr
		}
		out := w.out.b
		w.out.b = nil
		return out, err
	case CodecZstd:
		enc, err := zstdEncoder()
		if err != nil {
			return dst, err
		}
		return enc.EncodeAll(src, dst), nil
	}
	return dst, fmt.Errorf("%w %d", ErrCodec, codec)
}

// Decompress returns src decompressed with codec, refusing output larger
// than MaxDecompressed with ErrTooLarge. CodecNone returns src itself.
// Snappy input may be a raw block or xerial-framed, as the Java client
// sends it.
func Decompress(codec int, src []byte) ([]byte, error) {
	if codec == CodecNone {
		return src, nil
	}
	return AppendDecompressed(nil, codec, src, MaxDecompressed)
}

// AppendDecompressed appends src decompressed with codec to dst, refusing
// to append more than limit bytes (ErrTooLarge). Memory use is bounded by
// the limit, not by sizes the input claims: a frame that claims more is
// refused before anything is allocated for it. dst's spare capacity is
// used first, so a caller can reuse a buffer.
func AppendDecompressed(dst []byte, codec int, src []byte, limit int) ([]byte, error) {
	if limit < 0 {
		limit = 0
	}
	var (
		out []byte
		err error
	)
	switch codec {
	case CodecNone:
		if len(src) > limit {
			return dst, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(src), limit)
		}
		return append(dst, src...), nil
	case CodecGzip:
		out, err = gunzip(dst, src, limit)
	case CodecSnappy:
		out, err = unsnappy(dst, src, limit)
	case CodecLZ4:
		out, err = unlz4(dst, src, limit)
	case CodecZstd:
		out, err = unzstd(dst, src, limit)
	default:
		return dst, fmt.Errorf("%w %d", ErrCodec, codec)
	}
	if err != nil {
		if errors.Is(err, ErrTooLarge) {
			return dst, fmt.Errorf("%s: %w (limit %d)", CodecName(codec), err, limit)
		}
		return dst, fmt.Errorf("%w: %s: %w", ErrDecompress, CodecName(codec), err)
	}
	return out, nil
}

// appendBuffer is an io.Writer that appends to b.
type appendBuffer struct{ b []byte }

func (w *appendBuffer) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

type gzipWriter struct {
	w   *gzip.Writer
	out appendBuffer
}

var gzipWriters = sync.Pool{New: func() any {
	return &gzipWriter{w: gzip.NewWriter(nil)}
}}

type lz4Writer struct {
	w   *lz4.Writer
	out appendBuffer
}

var lz4Writers = sync.Pool{New: func() any {
	w := lz4.NewWriter(nil)
	// 64 KiB blocks, as the Java client writes them: a reader needs a
	// buffer of one block, 4 MiB with the library's default.
	_ = w.Apply(lz4.BlockSizeOption(lz4.Block64Kb))
	return &lz4Writer{w: w}
}}

// zstdEncoder is shared: EncodeAll is safe for concurrent use, with up to
// GOMAXPROCS encoders. A 64 KiB window, as franz-go uses, bounds what a
// consumer needs to decode our batches.
var zstdEncoder = sync.OnceValues(func() (*zstd.Encoder, error) {
	return zstd.NewWriter(nil,
		zstd.WithWindowSize(64<<10),
		zstd.WithZeroFrames(true),
	)
})

// gzipReader pools a decoder with the reader of its input and the limit
// on its output, so a decompression allocates none of them.
type gzipReader struct {
	r   gzip.Reader
	src bytes.Reader
	lim io.LimitedReader
}

var gzipReaders = sync.Pool{New: func() any {
	r := new(gzipReader)
	r.lim.R = &r.r
	return r
}}

func gunzip(dst, src []byte, limit int) ([]byte, error) {
	r := gzipReaders.Get().(*gzipReader)
	defer gzipReaders.Put(r)
	r.src.Reset(src)
	if err := r.r.Reset(&r.src); err != nil {
		return dst, err
	}
	// Java's GZIPInputStream reads concatenated members; so do we.
	r.r.Multistream(true)
	return readLimited(dst, &r.lim, limit, len(src))
}

type lz4Reader struct {
	r   *lz4.Reader
	src bytes.Reader
	lim io.LimitedReader
}

var lz4Readers = sync.Pool{New: func() any {
	r := &lz4Reader{r: lz4.NewReader(nil)}
	r.lim.R = r.r
	return r
}}

func unlz4(dst, src []byte, limit int) ([]byte, error) {
	r := lz4Readers.Get().(*lz4Reader)
	defer lz4Readers.Put(r)
	r.src.Reset(src)
	r.r.Reset(&r.src)
	return readLimited(dst, &r.lim, limit, len(src))
}

// readLimited appends what lim's reader yields to dst, failing with
// ErrTooLarge past limit bytes. The buffer grows with what is actually
// decoded (starting from a guess of a few times the input), never beyond
// limit+1 bytes of new data, so a lying size field costs nothing.
func readLimited(dst []byte, lim *io.LimitedReader, limit, srcLen int) ([]byte, error) {
	lim.N = int64(limit) + 1
	start := len(dst)
	grow := min(max(4*srcLen, 4<<10), limit+1)
	for {
		if len(dst) == cap(dst) {
			dst = slices.Grow(dst, grow)
			grow = min(2*grow, limit+1-(len(dst)-start))
		}
		n, err := lim.Read(dst[len(dst):cap(dst)])
		dst = dst[:len(dst)+n]
		if len(dst)-start > limit {
			return dst[:start], ErrTooLarge
		}
		if err == io.EOF {
			return dst, nil
		}
		if err != nil {
			return dst[:start], err
		}
	}
}

// xerialHeader starts snappy data framed by the Java client's xerial
// snappy-java SnappyOutputStream: this magic, then a big-endian int32
// version and minimum compatible version, then chunks of a big-endian
// int32 length and a raw snappy block.
var xerialHeader = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

const xerialHeaderSize = 16

// errXerial reports malformed xerial framing.
var errXerial = errors.New("malformed xerial snappy framing")

// maxSnappyRatio bounds the decoded size of a standard snappy block by its
// encoded size: the densest element, a 3-byte copy, yields 64 bytes. A
// claimed length beyond it cannot be honest, so it is refused before the
// decoder allocates it.
const maxSnappyRatio = 22

func unsnappy(dst, src []byte, limit int) ([]byte, error) {
	if len(src) >= xerialHeaderSize && bytes.Equal(src[:len(xerialHeader)], xerialHeader) {
		return unxerial(dst, src[xerialHeaderSize:], limit)
	}
	return appendSnappyBlock(dst, src, limit)
}

// appendSnappyBlock decodes one raw snappy block into dst's spare
// capacity, growing it as needed, if its claimed length is plausible and
// within limit.
func appendSnappyBlock(dst, block []byte, limit int) ([]byte, error) {
	n, err := s2.DecodedLen(block)
	if err != nil {
		return dst, err
	}
	if n > limit {
		return dst, ErrTooLarge
	}
	if n > maxSnappyRatio*len(block) {
		return dst, s2.ErrCorrupt
	}
	dst = slices.Grow(dst, n)
	out, err := s2.Decode(dst[len(dst):len(dst)+n], block)
	if err != nil {
		return dst, err
	}
	if len(out) != n { // cannot happen: Decode returns the claimed length
		return dst, s2.ErrCorrupt
	}
	return dst[:len(dst)+n], nil
}

func unxerial(dst, src []byte, limit int) ([]byte, error) {
	start := len(dst)
	for len(src) > 0 {
		if len(src) < 4 {
			return dst[:start], errXerial
		}
		size := binary.BigEndian.Uint32(src)
		src = src[4:]
		if uint64(size) > uint64(len(src)) {
			return dst[:start], errXerial
		}
		var err error
		dst, err = appendSnappyBlock(dst, src[:size], limit-(len(dst)-start))
		if err != nil {
			return dst[:start], err
		}
		src = src[size:]
	}
	return dst, nil
}

// zstdReader is a pooled zstd decoder used only through DecodeAll. With
// concurrency 1 it runs on the caller's goroutine. limit is the
// WithDecoderMaxMemory it was last set to.
type zstdReader struct {
	d     *zstd.Decoder
	limit uint64
}

var zstdReaders = sync.Pool{New: func() any {
	d, err := zstd.NewReader(nil,
		zstd.WithDecoderLowmem(true),
		zstd.WithDecoderConcurrency(1),
	)
	if err != nil {
		return err // constant options: cannot happen, but reported, not a panic
	}
	r := &zstdReader{d: d}
	runtime.AddCleanup(r, func(d *zstd.Decoder) { d.Close() }, d)
	return r
}}

// zstdMinMaxMemory is the least max memory a zstd decoder is given:
// the decoder also refuses frames whose window exceeds it, and producers'
// frames declare windows of up to 8 MiB (zstd's default at level 3) even
// for small content. So zstd may use up to this much memory for a smaller
// limit; the limit itself is still enforced on the output.
const zstdMinMaxMemory = 8 << 20

func unzstd(dst, src []byte, limit int) ([]byte, error) {
	// Refuse an honest frame that declares too much before any work.
	var fh zstd.Header
	if fh.Decode(src) == nil && fh.HasFCS && fh.FrameContentSize > uint64(limit) {
		return dst, ErrTooLarge
	}
	got := zstdReaders.Get()
	r, ok := got.(*zstdReader)
	if !ok {
		return dst, fmt.Errorf("zstd decoder: %v", got)
	}
	defer zstdReaders.Put(r)
	// The decoder refuses a frame whose declared content size, window or
	// decoded output exceeds its max memory, before allocating for it.
	if want := uint64(max(limit, zstdMinMaxMemory)); r.limit != want {
		if err := r.d.ResetWithOptions(nil, zstd.WithDecoderMaxMemory(want)); err != nil {
			return dst, err
		}
		r.limit = want
	}
	// Decode into dst's spare capacity as a slice of its own: the decoder
	// counts dst's existing length against its max memory.
	out, err := r.d.DecodeAll(src, dst[len(dst):len(dst)])
	switch {
	case errors.Is(err, zstd.ErrDecoderSizeExceeded), errors.Is(err, zstd.ErrWindowSizeExceeded):
		return dst, fmt.Errorf("%w: %w", ErrTooLarge, err)
	case err != nil:
		return dst, err
	case len(out) > limit:
		return dst, ErrTooLarge
	}
	if len(out) > 0 && cap(dst) > len(dst) && &out[0] == &dst[:len(dst)+1][len(dst)] {
		return dst[:len(dst)+len(out)], nil // decoded in place
	}
	return append(dst, out...), nil
}
