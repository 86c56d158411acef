// Package batch reads and rewrites Kafka RecordBatch v2 (magic 2) headers.
//
// A batch on the wire and on disk:
//
//	offset size field                  in CRC
//	     0    8 baseOffset             no   (the broker assigns it)
//	     8    4 batchLength            no   (bytes after this field)
//	    12    4 partitionLeaderEpoch   no   (the broker stamps it)
//	    16    1 magic (2)              no
//	    17    4 crc (CRC-32C)          -
//	    21    2 attributes             yes
//	    23    4 lastOffsetDelta        yes
//	    27    8 baseTimestamp          yes
//	    35    8 maxTimestamp           yes
//	    43    8 producerId             yes
//	    51    2 producerEpoch          yes
//	    53    4 baseSequence           yes
//	    57    4 recordsCount           yes
//	    61    … records (maybe compressed)
//
// The broker keeps batches as opaque bytes: it validates the header and the
// CRC, sets baseOffset and partitionLeaderEpoch (outside the CRC), and
// touches the inside only for LogAppendTime, which needs a fresh CRC.
//
// When it must look inside (compaction, internal topics, transaction
// markers, tests), Records decodes a batch's records after decompressing
// them (Decompress: gzip, snappy raw or xerial-framed, LZ4 frames, zstd;
// bounded by MaxDecompressed), Builder encodes records into a batch, and
// ControlBatch builds the end-transaction marker. Decoding never panics on
// input and never allocates from a length the input claims without
// checking it against the bytes there are.
package batch

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// Header layout offsets.
const (
	offBaseOffset      = 0
	offLength          = 8
	offLeaderEpoch     = 12
	offMagic           = 16
	offCRC             = 17
	offAttributes      = 21
	offLastOffsetDelta = 23
	offBaseTimestamp   = 27
	offMaxTimestamp    = 35
	offProducerID      = 43
	offProducerEpoch   = 51
	offBaseSequence    = 53
	offRecordsCount    = 57

	// HeaderSize is the size of a v2 batch header, records excluded.
	HeaderSize = 61
	// LengthOverhead is the number of bytes before and including
	// batchLength: a batch occupies batchLength+LengthOverhead bytes.
	LengthOverhead = 12
)

// Attribute bits.
const (
	AttrCompressionMask  = 0x07
	AttrLogAppendTime    = 0x08
	AttrTransactional    = 0x10
	AttrControl          = 0x20
	AttrDeleteHorizonSet = 0x40
)

// Compression codecs (attributes bits 0-2).
const (
	CodecNone   = 0
	CodecGzip   = 1
	CodecSnappy = 2
	CodecLZ4    = 3
	CodecZstd   = 4
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Errors returned by Parse and Validate. They are corruption errors: on
// the produce path they map to CORRUPT_MESSAGE/INVALID_RECORD, in recovery
// they mark where a log is truncated.
var (
	ErrShort        = errors.New("batch: truncated")
	ErrMagic        = errors.New("batch: unsupported magic")
	ErrLength       = errors.New("batch: bad length")
	ErrCRC          = errors.New("batch: CRC mismatch")
	ErrRecordsCount = errors.New("batch: record count does not match lastOffsetDelta")
)

// Header is a decoded batch header.
type Header struct {
	BaseOffset           int64
	Length               int32
	PartitionLeaderEpoch int32
	Magic                int8
	CRC                  uint32
	Attributes           int16
	LastOffsetDelta      int32
	BaseTimestamp        int64
	MaxTimestamp         int64
	ProducerID           int64
	ProducerEpoch        int16
	BaseSequence         int32
	NumRecords           int32
}

// Size is the number of bytes the batch occupies.
func (h *Header) Size() int { return int(h.Length) + LengthOverhead }

// LastOffset is the offset of the batch's last record.
func (h *Header) LastOffset() int64 { return h.BaseOffset + int64(h.LastOffsetDelta) }

// NextOffset is the offset after the batch's last record.
func (h *Header) NextOffset() int64 { return h.LastOffset() + 1 }

// Codec is the batch's compression codec.
func (h *Header) Codec() int { return int(h.Attributes & AttrCompressionMask) }

// IsTransactional reports the transactional attribute bit.
func (h *Header) IsTransactional() bool { return h.Attributes&AttrTransactional != 0 }

// IsLogAppendTime reports the timestamp-type attribute bit.
func (h *Header) IsLogAppendTime() bool { return h.Attributes&AttrLogAppendTime != 0 }

// IsControl reports the control attribute bit.
func (h *Header) IsControl() bool { return h.Attributes&AttrControl != 0 }

// LastSequence is the sequence number of the batch's last record, wrapping
// at MaxInt32 like Kafka.
func (h *Header) LastSequence() int32 {
	if h.BaseSequence < 0 {
		return -1
	}
	return IncrementSequence(h.BaseSequence, h.LastOffsetDelta)
}

// IncrementSequence adds inc to seq wrapping at MaxInt32 to 0, as Kafka
// producers do.
func IncrementSequence(seq, inc int32) int32 {
	if seq > 0x7fffffff-inc {
		return inc - (0x7fffffff - seq) - 1
	}
	return seq + inc
}

// ParseHeader decodes the header at the start of b without checking the
// CRC. b may hold more than one batch. It checks the magic and that the
// batch's declared length is sane, but not that b holds the whole batch.
func ParseHeader(b []byte) (Header, error) {
	var h Header
	if len(b) < offMagic+1 {
		return h, ErrShort
	}
	h.BaseOffset = int64(binary.BigEndian.Uint64(b[offBaseOffset:]))
	h.Length = int32(binary.BigEndian.Uint32(b[offLength:]))
	h.PartitionLeaderEpoch = int32(binary.BigEndian.Uint32(b[offLeaderEpoch:]))
	h.Magic = int8(b[offMagic])
	if h.Magic != 2 {
		return h, fmt.Errorf("%w %d", ErrMagic, h.Magic)
	}
	if h.Length < HeaderSize-LengthOverhead {
		return h, fmt.Errorf("%w %d", ErrLength, h.Length)
	}
	if len(b) < HeaderSize {
		return h, ErrShort
	}
	h.CRC = binary.BigEndian.Uint32(b[offCRC:])
	h.Attributes = int16(binary.BigEndian.Uint16(b[offAttributes:]))
	h.LastOffsetDelta = int32(binary.BigEndian.Uint32(b[offLastOffsetDelta:]))
	h.BaseTimestamp = int64(binary.BigEndian.Uint64(b[offBaseTimestamp:]))
	h.MaxTimestamp = int64(binary.BigEndian.Uint64(b[offMaxTimestamp:]))
	h.ProducerID = int64(binary.BigEndian.Uint64(b[offProducerID:]))
	h.ProducerEpoch = int16(binary.BigEndian.Uint16(b[offProducerEpoch:]))
	h.BaseSequence = int32(binary.BigEndian.Uint32(b[offBaseSequence:]))
	h.NumRecords = int32(binary.BigEndian.Uint32(b[offRecordsCount:]))
	return h, nil
}

// Validate parses the batch at the start of b and checks it completely:
// magic, that b holds the whole batch, the CRC-32C, and that the record
// count agrees with lastOffsetDelta. It returns the header; the batch is
// b[:h.Size()].
func Validate(b []byte) (Header, error) {
	h, err := ParseHeader(b)
	if err != nil {
		return h, err
	}
	size := h.Size()
	if size > len(b) {
		return h, ErrShort
	}
	if got := crc32.Checksum(b[offAttributes:size], castagnoli); got != h.CRC {
		return h, fmt.Errorf("%w: have %08x, computed %08x", ErrCRC, h.CRC, got)
	}
	// Compaction may leave fewer records than lastOffsetDelta+1 (gaps,
	// even none), so only a count above it is wrong for a stored batch;
	// ValidateProduced is stricter.
	if h.LastOffsetDelta < 0 || h.NumRecords < 0 || int64(h.NumRecords) > int64(h.LastOffsetDelta)+1 {
		return h, fmt.Errorf("%w: %d records, lastOffsetDelta %d", ErrRecordsCount, h.NumRecords, h.LastOffsetDelta)
	}
	return h, nil
}

// ValidateProduced is Validate plus the rules for a batch a producer
// sent: at least one record and exactly lastOffsetDelta+1 of them.
func ValidateProduced(b []byte) (Header, error) {
	h, err := Validate(b)
	if err != nil {
		return h, err
	}
	if h.NumRecords <= 0 || h.NumRecords != h.LastOffsetDelta+1 {
		return h, fmt.Errorf("%w: %d records, lastOffsetDelta %d", ErrRecordsCount, h.NumRecords, h.LastOffsetDelta)
	}
	return h, nil
}

// SetBaseOffset rewrites the baseOffset of the batch at the start of b.
func SetBaseOffset(b []byte, off int64) {
	binary.BigEndian.PutUint64(b[offBaseOffset:], uint64(off))
}

// SetPartitionLeaderEpoch rewrites the partitionLeaderEpoch of the batch
// at the start of b.
func SetPartitionLeaderEpoch(b []byte, epoch int32) {
	binary.BigEndian.PutUint32(b[offLeaderEpoch:], uint32(epoch))
}

// SetLogAppendTime sets the timestamp type to LogAppendTime and
// maxTimestamp to ts, then recomputes the CRC, as Kafka's LogValidator
// does; clients read every record's timestamp as maxTimestamp then. b must hold the whole batch.
func SetLogAppendTime(b []byte, ts int64) {
	attrs := binary.BigEndian.Uint16(b[offAttributes:]) | AttrLogAppendTime
	binary.BigEndian.PutUint16(b[offAttributes:], attrs)
	binary.BigEndian.PutUint64(b[offMaxTimestamp:], uint64(ts))
	UpdateCRC(b)
}

// ClearLogAppendTime sets the timestamp type back to CreateTime and
// recomputes the CRC; maxTimestamp is kept. b must hold the whole batch.
func ClearLogAppendTime(b []byte) {
	attrs := binary.BigEndian.Uint16(b[offAttributes:]) &^ AttrLogAppendTime
	binary.BigEndian.PutUint16(b[offAttributes:], attrs)
	UpdateCRC(b)
}

// UpdateCRC recomputes the CRC of the whole batch at the start of b.
func UpdateCRC(b []byte) {
	size := int(int32(binary.BigEndian.Uint32(b[offLength:]))) + LengthOverhead
	binary.BigEndian.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:size], castagnoli))
}

// Checksum is CRC-32C over data, for other on-disk structures.
func Checksum(data []byte) uint32 { return crc32.Checksum(data, castagnoli) }
