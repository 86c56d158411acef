package batch

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// ErrBuild reports a batch that Builder cannot encode.
var ErrBuild = errors.New("batch: cannot build")

// Builder builds a RecordBatch v2 from records, the way a Kafka producer
// does: baseTimestamp is the first record's timestamp, maxTimestamp the
// largest, offset deltas count from 0 (or follow AddAt), and the CRC is
// computed over the final bytes. The broker uses it to write internal
// topics and transaction markers; tests use it to make batches.
//
// Settings apply to the next Build and may be changed between records.
// Add and AddAt record the first error, which Build returns. A Builder is
// not safe for concurrent use.
type Builder struct {
	codec         int
	attrs         int16 // transactional and control bits
	baseOffset    int64
	leaderEpoch   int32
	producerID    int64
	producerEpoch int16
	baseSequence  int32
	// lastOffsetDelta is what SetLastOffsetDelta set, -1 if nothing.
	lastOffsetDelta int32

	// records are the encoded records, uncompressed.
	records []byte
	// count is the number of records added.
	count int32
	// nextDelta is the smallest offset delta the next record may have.
	nextDelta int64
	// baseTimestamp and maxTimestamp are meaningful when count > 0.
	baseTimestamp, maxTimestamp int64
	// err is the first error of Add or AddAt.
	err error
}

// NewBuilder returns a Builder of batches compressed with codec, without
// a producer (producerId, producerEpoch and baseSequence -1, as a
// non-idempotent producer sends), baseOffset 0 and partitionLeaderEpoch -1.
func NewBuilder(codec int) *Builder {
	b := &Builder{codec: codec, lastOffsetDelta: -1, leaderEpoch: -1}
	return b.SetProducer(-1, -1, -1)
}

// SetProducer sets the producer ID, epoch and the base sequence of the
// batch, for idempotent and transactional batches.
func (b *Builder) SetProducer(id int64, epoch int16, baseSequence int32) *Builder {
	b.producerID, b.producerEpoch, b.baseSequence = id, epoch, baseSequence
	return b
}

// SetTransactional sets or clears the transactional attribute.
func (b *Builder) SetTransactional(on bool) *Builder { return b.setAttr(AttrTransactional, on) }

// SetControl sets or clears the control attribute (transaction markers).
func (b *Builder) SetControl(on bool) *Builder { return b.setAttr(AttrControl, on) }

func (b *Builder) setAttr(bit int16, on bool) *Builder {
	if on {
		b.attrs |= bit
	} else {
		b.attrs &^= bit
	}
	return b
}

// SetBaseOffset sets the batch's baseOffset, from which AddAt's offsets
// count.
func (b *Builder) SetBaseOffset(off int64) *Builder {
	b.baseOffset = off
	return b
}

// SetPartitionLeaderEpoch sets the batch's partitionLeaderEpoch.
func (b *Builder) SetPartitionLeaderEpoch(epoch int32) *Builder {
	b.leaderEpoch = epoch
	return b
}

// SetLastOffsetDelta makes lastOffsetDelta at least delta, as compaction
// does to keep a batch's offset range (and its producer's sequence range)
// when records are dropped; a batch may then hold fewer records than
// lastOffsetDelta+1, or none.
func (b *Builder) SetLastOffsetDelta(delta int32) *Builder {
	b.lastOffsetDelta = delta
	return b
}

// Len returns the number of records added since the last Reset.
func (b *Builder) Len() int { return int(b.count) }

// Reset drops the records added (and any error), keeping the settings.
func (b *Builder) Reset() {
	b.records = b.records[:0]
	b.count, b.nextDelta, b.err = 0, 0, nil
}

// Add appends a record at the next offset: delta 0 for the first, then
// one more than the previous. r.Offset is ignored.
func (b *Builder) Add(r Record) { b.add(b.nextDelta, r) }

// AddAt appends a record at r.Offset, which must be at least the batch's
// baseOffset and above the previous record's offset (a compacted batch
// has gaps).
func (b *Builder) AddAt(r Record) {
	delta := r.Offset - b.baseOffset
	if delta < b.nextDelta && b.err == nil {
		b.err = fmt.Errorf("%w: offset %d is not after the previous record's (base %d, next delta %d)",
			ErrBuild, r.Offset, b.baseOffset, b.nextDelta)
	}
	b.add(delta, r)
}

func (b *Builder) add(delta int64, r Record) {
	if b.err != nil {
		return
	}
	if delta > math.MaxInt32 || b.count == math.MaxInt32 {
		b.err = fmt.Errorf("%w: offset delta %d or record count out of range", ErrBuild, delta)
		return
	}
	if b.count == 0 {
		b.baseTimestamp, b.maxTimestamp = r.Timestamp, r.Timestamp
	}
	b.maxTimestamp = max(b.maxTimestamp, r.Timestamp)
	b.records = appendRecord(b.records, int32(delta), r.Timestamp-b.baseTimestamp, r.Key, r.Value, r.Headers)
	b.count++
	b.nextDelta = delta + 1
}

// appendRecord appends one encoded record (see the layout in records.go).
func appendRecord(dst []byte, offsetDelta int32, timestampDelta int64, key, value []byte, headers []RecordHeader) []byte {
	size := 1 + varlongLen(timestampDelta) + varlongLen(int64(offsetDelta)) +
		bytesLen(key) + bytesLen(value) + varlongLen(int64(len(headers)))
	for _, h := range headers {
		size += varlongLen(int64(len(h.Key))) + len(h.Key) + bytesLen(h.Value)
	}
	dst = binary.AppendVarint(dst, int64(size))
	dst = append(dst, 0) // attributes
	dst = binary.AppendVarint(dst, timestampDelta)
	dst = binary.AppendVarint(dst, int64(offsetDelta))
	dst = appendBytes(dst, key)
	dst = appendBytes(dst, value)
	dst = binary.AppendVarint(dst, int64(len(headers)))
	for _, h := range headers {
		dst = binary.AppendVarint(dst, int64(len(h.Key)))
		dst = append(dst, h.Key...)
		dst = appendBytes(dst, h.Value)
	}
	return dst
}

// appendBytes appends a varint length and b, or -1 for nil.
func appendBytes(dst, b []byte) []byte {
	if b == nil {
		return binary.AppendVarint(dst, -1)
	}
	return append(binary.AppendVarint(dst, int64(len(b))), b...)
}

func bytesLen(b []byte) int {
	if b == nil {
		return 1
	}
	return varlongLen(int64(len(b))) + len(b)
}

// varlongLen is the encoded size of a zigzag varint.
func varlongLen(v int64) int {
	u := uint64(v<<1) ^ uint64(v>>63)
	n := 1
	for u >= 0x80 {
		u >>= 7
		n++
	}
	return n
}

// Build returns the batch.
func (b *Builder) Build() ([]byte, error) { return b.AppendTo(nil) }

// AppendTo appends the batch to dst and returns the extended slice. A batch
// needs at least one record, unless SetLastOffsetDelta gave it an offset
// range. On error dst is returned unchanged.
func (b *Builder) AppendTo(dst []byte) ([]byte, error) {
	if b.err != nil {
		return dst, b.err
	}
	lastDelta := max(int64(b.lastOffsetDelta), b.nextDelta-1)
	if lastDelta < 0 {
		return dst, fmt.Errorf("%w: no records", ErrBuild)
	}
	baseTS, maxTS := b.baseTimestamp, b.maxTimestamp
	if b.count == 0 {
		baseTS, maxTS = -1, -1 // Kafka's NO_TIMESTAMP
	}
	start := len(dst)
	out := append(dst, make([]byte, HeaderSize)...)
	out, err := Compress(b.codec, out, b.records)
	if err != nil {
		return dst, fmt.Errorf("%w: %w", ErrBuild, err)
	}
	length := len(out) - start - LengthOverhead
	if length > math.MaxInt32 {
		return dst, fmt.Errorf("%w: batch of %d bytes", ErrBuild, length)
	}
	h := out[start:]
	be := binary.BigEndian
	be.PutUint64(h[offBaseOffset:], uint64(b.baseOffset))
	be.PutUint32(h[offLength:], uint32(length))
	be.PutUint32(h[offLeaderEpoch:], uint32(b.leaderEpoch))
	h[offMagic] = 2
	be.PutUint16(h[offAttributes:], uint16(b.attrs|int16(b.codec&AttrCompressionMask)))
	be.PutUint32(h[offLastOffsetDelta:], uint32(lastDelta))
	be.PutUint64(h[offBaseTimestamp:], uint64(baseTS))
	be.PutUint64(h[offMaxTimestamp:], uint64(maxTS))
	be.PutUint64(h[offProducerID:], uint64(b.producerID))
	be.PutUint16(h[offProducerEpoch:], uint16(b.producerEpoch))
	be.PutUint32(h[offBaseSequence:], uint32(b.baseSequence))
	be.PutUint32(h[offRecordsCount:], uint32(b.count))
	UpdateCRC(h)
	return out, nil
}
