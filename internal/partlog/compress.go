package partlog

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"

	"github.com/gregor-streaming/gregor/internal/batch"
)

// maxDecompressed bounds a decompressed records section, so a corrupt or
// hostile batch cannot exhaust memory. Only timestamp lookups decompress.
const maxDecompressed = 256 << 20

var errTooLarge = errors.New("partlog: decompressed batch too large")

// xerialHeader starts snappy data framed by Java's snappy-java
// (SnappyOutputStream), which Kafka's Java producer uses.
var xerialHeader = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

var (
	zstdOnce sync.Once
	zstdDec  *zstd.Decoder
	zstdErr  error
)

// decompress returns the records section of a batch compressed with
// codec. It is a local stand-in for batch.Decompress, which the batch
// package will provide.
func decompress(codec int, data []byte) ([]byte, error) {
	switch codec {
	case batch.CodecNone:
		return data, nil
	case batch.CodecGzip:
		r, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil, err
		}
		return readLimited(r)
	case batch.CodecSnappy:
		return decodeSnappy(data)
	case batch.CodecLZ4:
		return readLimited(lz4.NewReader(bytes.NewReader(data)))
	case batch.CodecZstd:
		zstdOnce.Do(func() {
			zstdDec, zstdErr = zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(maxDecompressed))
		})
		if zstdErr != nil {
			return nil, zstdErr
		}
		return zstdDec.DecodeAll(data, nil)
	default:
		return nil, fmt.Errorf("partlog: unknown compression codec %d", codec)
	}
}

func readLimited(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxDecompressed+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxDecompressed {
		return nil, errTooLarge
	}
	return b, nil
}

func decodeSnappy(data []byte) ([]byte, error) {
	if !bytes.HasPrefix(data, xerialHeader) {
		return snappyBlock(nil, data)
	}
	// xerial framing: header, version int32, compatible version int32,
	// then blocks of [length int32][snappy block].
	p := data[len(xerialHeader):]
	if len(p) < 8 {
		return nil, errors.New("partlog: short xerial snappy header")
	}
	p = p[8:]
	var out []byte
	for len(p) > 0 {
		if len(p) < 4 {
			return nil, errors.New("partlog: short xerial snappy block")
		}
		n := binary.BigEndian.Uint32(p)
		p = p[4:]
		if uint64(n) > uint64(len(p)) {
			return nil, errors.New("partlog: xerial snappy block past the end")
		}
		var err error
		if out, err = snappyBlock(out, p[:n]); err != nil {
			return nil, err
		}
		p = p[n:]
	}
	return out, nil
}

// snappyBlock appends one decoded snappy block to dst.
func snappyBlock(dst, block []byte) ([]byte, error) {
	n, err := s2.DecodedLen(block)
	if err != nil {
		return nil, err
	}
	if n > maxDecompressed-len(dst) {
		return nil, errTooLarge
	}
	out, err := s2.Decode(make([]byte, n), block)
	if err != nil {
		return nil, err
	}
	return append(dst, out...), nil
}
