package batch

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// ErrRecord reports a malformed record inside a batch whose header and CRC
// are fine: a corruption error like those of Validate.
var ErrRecord = errors.New("batch: malformed record")

// A record inside a batch (after decompression), every integer a zigzag
// varint except attributes:
//
//	length          varint  bytes after this field
//	attributes      int8    unused, 0
//	timestampDelta  varlong from the batch's baseTimestamp
//	offsetDelta     varint  from the batch's baseOffset
//	keyLength       varint  -1: null key
//	key             bytes
//	valueLength     varint  -1: null value (a tombstone)
//	value           bytes
//	headerCount     varint
//	headers         headerKeyLength varint (>= 0), headerKey,
//	                headerValueLength varint (-1: null), headerValue
//
// minRecordSize is the smallest record: one byte for each of the seven
// fields before and including headerCount, with empty key and value.
const minRecordSize = 7

// Record is a record of a batch as Records reports it, and what Builder
// takes.
type Record struct {
	// Offset is the batch's baseOffset plus the record's offsetDelta.
	Offset int64
	// Timestamp is the batch's baseTimestamp plus the record's
	// timestampDelta, or the batch's maxTimestamp when the batch has
	// the LogAppendTime attribute (Kafka ignores the record's own
	// timestamp then).
	Timestamp int64
	// Key is nil for a null key; a non-nil empty slice is an empty key.
	Key []byte
	// Value is nil for a null value (a tombstone); a non-nil empty slice
	// is an empty value.
	Value []byte
	// Headers are the record's headers, nil when it has none.
	Headers []RecordHeader
}

// RecordHeader is a record header. Kafka header keys are non-null
// strings; values are nullable bytes.
type RecordHeader struct {
	Key string
	// Value is nil for a null value.
	Value []byte
}

// Reader decodes the records of batches, reusing one buffer for
// decompressed data. A Reader is not safe for concurrent use; its zero
// value is ready to use.
type Reader struct {
	// Limit bounds the decompressed size of a batch's records; 0 means
	// MaxDecompressed.
	Limit int
	// buf holds the last decompressed records.
	buf []byte
}

// Records calls fn for each record of the batch at the start of b, in
// order, until fn returns false. It first checks the batch like Validate
// (so b may hold more batches after it), decompresses the records if
// needed (refusing more than MaxDecompressed bytes), and decodes every
// record strictly: any malformed or truncated field, a record length that
// does not match its fields, more or fewer records than the header's
// recordsCount, or bytes after the last record is an error wrapping
// ErrRecord (or Validate's and Decompress's errors). Records decoded before
// the error have been passed to fn.
//
// A Record's Key, Value and header values alias b, or for a compressed
// batch a buffer allocated for this call: they stay valid after Records
// returns, as long as b is not modified.
func Records(b []byte, fn func(r Record) bool) error {
	var r Reader
	return r.Records(b, fn)
}

// Records is the package's Records, except that a compressed batch's
// records are decompressed into r's buffer: a Record's Key, Value and
// header values then stay valid only until the next call on r.
func (r *Reader) Records(b []byte, fn func(rec Record) bool) error {
	h, err := Validate(b)
	if err != nil {
		return err
	}
	data := b[HeaderSize:h.Size()]
	if codec := h.Codec(); codec != CodecNone {
		limit := r.Limit
		if limit <= 0 {
			limit = MaxDecompressed
		}
		r.buf, err = AppendDecompressed(r.buf[:0], codec, data, limit)
		if err != nil {
			return err
		}
		data = r.buf
	}
	return decodeRecords(&h, data, fn)
}

// decodeRecords decodes h.NumRecords records from data.
func decodeRecords(h *Header, data []byte, fn func(Record) bool) error {
	if h.NumRecords < 0 {
		return fmt.Errorf("%w: negative record count %d", ErrRecord, h.NumRecords)
	}
	// Cheap early refusal of a count the bytes cannot hold.
	if int64(h.NumRecords)*minRecordSize > int64(len(data)) {
		return fmt.Errorf("%w: %d records cannot fit in %d bytes", ErrRecord, h.NumRecords, len(data))
	}
	d := decoder{b: data}
	for i := range h.NumRecords {
		rec, err := d.record(h)
		if err != nil {
			return fmt.Errorf("%w (record %d of %d)", err, i, h.NumRecords)
		}
		if !fn(rec) {
			return nil
		}
	}
	if d.off != len(d.b) {
		return fmt.Errorf("%w: %d bytes after the last of %d records", ErrRecord, len(d.b)-d.off, h.NumRecords)
	}
	return nil
}

// decoder reads varint-encoded fields from b with bounds checks.
type decoder struct {
	b   []byte
	off int
}

var (
	errTruncated = fmt.Errorf("%w: truncated", ErrRecord)
	errVarint    = fmt.Errorf("%w: bad varint", ErrRecord)
)

func (d *decoder) varlong() (int64, error) {
	v, n := binary.Varint(d.b[d.off:])
	if n <= 0 {
		if n == 0 {
			return 0, errTruncated
		}
		return 0, errVarint
	}
	d.off += n
	return v, nil
}

// varint reads a varint that must fit an int32, as Kafka's are.
func (d *decoder) varint() (int32, error) {
	v, err := d.varlong()
	if err != nil {
		return 0, err
	}
	if v < math.MinInt32 || v > math.MaxInt32 {
		return 0, errVarint
	}
	return int32(v), nil
}

// bytes reads a varint length and that many bytes; length -1 is null when
// nullable.
func (d *decoder) bytes(what string, nullable bool) ([]byte, error) {
	n, err := d.varint()
	if err != nil {
		return nil, err
	}
	switch {
	case n == -1 && nullable:
		return nil, nil
	case n < 0:
		return nil, fmt.Errorf("%w: %s length %d", ErrRecord, what, n)
	case int(n) > len(d.b)-d.off:
		return nil, fmt.Errorf("%w: %s length %d beyond the record", ErrRecord, what, n)
	}
	v := d.b[d.off : d.off+int(n) : d.off+int(n)]
	d.off += int(n)
	return v, nil
}

// record decodes one record; its fields alias d.b.
func (d *decoder) record(h *Header) (Record, error) {
	var rec Record
	length, err := d.varint()
	if err != nil {
		return rec, err
	}
	if length < minRecordSize-1 || int(length) > len(d.b)-d.off {
		return rec, fmt.Errorf("%w: record length %d with %d bytes left", ErrRecord, length, len(d.b)-d.off)
	}
	// Decode within the record's own bytes, so no field can read into
	// the next record.
	end := d.off + int(length)
	body := decoder{b: d.b[:end], off: d.off}
	d.off = end

	body.off++ // attributes: unused
	tsDelta, err := body.varlong()
	if err != nil {
		return rec, err
	}
	offDelta, err := body.varint()
	if err != nil {
		return rec, err
	}
	if rec.Key, err = body.bytes("key", true); err != nil {
		return rec, err
	}
	if rec.Value, err = body.bytes("value", true); err != nil {
		return rec, err
	}
	count, err := body.varint()
	if err != nil {
		return rec, err
	}
	// Each header takes at least two bytes (two lengths): refuse a count
	// the record cannot hold before allocating for it.
	if count < 0 || int(count) > (len(body.b)-body.off)/2 {
		return rec, fmt.Errorf("%w: %d headers with %d bytes left", ErrRecord, count, len(body.b)-body.off)
	}
	if count > 0 {
		rec.Headers = make([]RecordHeader, count)
		for i := range rec.Headers {
			k, err := body.bytes("header key", false)
			if err != nil {
				return rec, err
			}
			rec.Headers[i].Key = string(k)
			if rec.Headers[i].Value, err = body.bytes("header value", true); err != nil {
				return rec, err
			}
		}
	}
	if body.off != end {
		return rec, fmt.Errorf("%w: record length %d, fields take %d", ErrRecord, length, int(length)-(end-body.off))
	}
	rec.Offset = h.BaseOffset + int64(offDelta)
	if h.Attributes&AttrLogAppendTime != 0 {
		rec.Timestamp = h.MaxTimestamp
	} else {
		rec.Timestamp = h.BaseTimestamp + tsDelta
	}
	return rec, nil
}
