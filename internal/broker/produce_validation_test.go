package broker_test

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/gregor-streaming/gregor/internal/batch"
	"github.com/gregor-streaming/gregor/internal/ktest"
)

// TestProduceBatchValidationErrors checks the error code of each batch
// Kafka refuses before appending. Kafka tells a malformed batch
// (INVALID_RECORD, which clients do not retry) from damaged bytes
// (CORRUPT_MESSAGE, which they retry): ProduceRequest.validateRecords,
// LogValidator.validateBatch and UnifiedLog.analyzeAndValidateRecords.
// Nothing refused is stored.
func TestProduceBatchValidationErrors(t *testing.T) {
	b := ktest.NewBroker(t)
	b.CreateTopic("valid", 1, nil)

	bad := func(mutate func([]byte) []byte) []byte { return mutate(goodBatch(t, 5)) }
	withCRC := func(mutate func([]byte)) []byte {
		return bad(func(b []byte) []byte { mutate(b); batch.UpdateCRC(b); return b })
	}
	idempotent := func(seq int32) []byte {
		bb := batch.NewBuilder(batch.CodecNone).SetProducer(7777, 0, seq)
		bb.Add(batch.Record{Value: []byte("v"), Timestamp: time.Now().UnixMilli()})
		out, err := bb.Build()
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	cases := []struct {
		name    string
		records []byte
		want    *kerr.Error
	}{
		{"base offset not 0", bad(func(b []byte) []byte { binary.BigEndian.PutUint64(b, 42); return b }), kerr.InvalidRecord},
		{"producer ID without a sequence", idempotent(-1), kerr.InvalidRecord},
		{"record count above lastOffsetDelta+1", withCRC(func(b []byte) { binary.BigEndian.PutUint32(b[57:], 6) }), kerr.InvalidRecord},
		{"record count below lastOffsetDelta+1", withCRC(func(b []byte) { binary.BigEndian.PutUint32(b[57:], 4) }), kerr.InvalidRecord},
		{"zero records", withCRC(func(b []byte) {
			binary.BigEndian.PutUint32(b[57:], 0)
			binary.BigEndian.PutUint32(b[23:], 0xffffffff)
		}), kerr.InvalidRecord},
		{"negative lastOffsetDelta", withCRC(func(b []byte) { binary.BigEndian.PutUint32(b[23:], 0xffffffff) }), kerr.InvalidRecord},
		{"magic 1", bad(func(b []byte) []byte { b[16] = 1; return b }), kerr.InvalidRecord},
		{"truncated batch", bad(func(b []byte) []byte { return b[:len(b)-7] }), kerr.InvalidRecord},
		{"batch length beyond the records", bad(func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[8:], uint32(len(b)+100))
			return b
		}), kerr.InvalidRecord},
		{"empty records", []byte{}, kerr.InvalidRecord},
		// Damaged bytes stay CORRUPT_MESSAGE, as in Kafka.
		{"bad CRC", bad(func(b []byte) []byte { b[len(b)-2] ^= 1; return b }), kerr.CorruptMessage},
		{"batch length below a header", bad(func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[8:], 10)
			return b
		}), kerr.CorruptMessage},
		{"magic 3", bad(func(b []byte) []byte { b[16] = 3; return b }), kerr.CorruptMessage},
	}
	c := dialRaw(t, b.Addr)
	for i, tc := range cases {
		got, err := c.produceV7("valid", tc.records, int32(i+1))
		if err != nil {
			t.Fatalf("%s: no produce answer: %v", tc.name, err)
		}
		if got != tc.want {
			t.Errorf("%s: produce error %v, want %v", tc.name, got, tc.want)
		}
	}
	// A well-formed idempotent batch is still accepted.
	if got, err := c.produceV7("valid", idempotent(0), 100); err != nil || got != nil {
		t.Fatalf("good idempotent batch: %v, %v", got, err)
	}
	ends, err := b.Admin().ListEndOffsets(ctxT(t, 5*time.Second), "valid")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := ends.Lookup("valid", 0); o.Offset != 1 {
		t.Fatalf("log end offset %d, want 1: a refused batch was stored", o.Offset)
	}
}

// TestProduceLogAppendTimeFromProducer: the timestamp type of a stored
// batch is the topic's (LogValidator). A producer's batch marked
// LogAppendTime is refused INVALID_TIMESTAMP by a LogAppendTime topic,
// and stored as CreateTime by a CreateTime topic, so consumers read each
// record's own timestamp rather than the batch's maxTimestamp for all.
func TestProduceLogAppendTimeFromProducer(t *testing.T) {
	b := ktest.NewBroker(t)
	b.CreateTopic("create-time", 1, nil)
	lat := "LogAppendTime"
	b.CreateTopic("append-time", 1, map[string]*string{"message.timestamp.type": &lat})

	base := time.Now().Add(-time.Minute).UnixMilli()
	bb := batch.NewBuilder(batch.CodecNone)
	for i := range 3 {
		bb.Add(batch.Record{Value: []byte{byte('a' + i)}, Timestamp: base + int64(i)*1000})
	}
	marked, err := bb.Build()
	if err != nil {
		t.Fatal(err)
	}
	binary.BigEndian.PutUint16(marked[21:], binary.BigEndian.Uint16(marked[21:])|batch.AttrLogAppendTime)
	batch.UpdateCRC(marked)

	c := dialRaw(t, b.Addr)
	if got, err := c.produceV7("append-time", append([]byte(nil), marked...), 1); err != nil || got != kerr.InvalidTimestamp {
		t.Fatalf("LogAppendTime topic: %v, %v; want INVALID_TIMESTAMP", got, err)
	}
	if got, err := c.produceV7("create-time", append([]byte(nil), marked...), 2); err != nil || got != nil {
		t.Fatalf("CreateTime topic: %v, %v; want it stored", got, err)
	}
	recs := consumeN(t, b, "create-time", 3)
	for i, r := range recs {
		if want := base + int64(i)*1000; r.Timestamp.UnixMilli() != want {
			t.Errorf("record %d: timestamp %d, want its own %d", i, r.Timestamp.UnixMilli(), want)
		}
		if r.Attrs.TimestampType() != 0 {
			t.Errorf("record %d: timestamp type %d, want CreateTime", i, r.Attrs.TimestampType())
		}
	}
}
