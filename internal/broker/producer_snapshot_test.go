package broker

import (
	"encoding/binary"
	"reflect"
	"testing"

	"github.com/gregor-streaming/gregor/internal/batch"
)

func TestProducerSnapshotEncoding(t *testing.T) {
	in := map[int64]*producerState{
		7:  {epoch: 2, lastTimestamp: 99, coordinatorEpoch: 3, batches: []batchMeta{{0, 4, 10, 14}, {5, 5, 20, 20}}},
		42: {epoch: 0, lastTimestamp: 1, coordinatorEpoch: -1},
	}
	ongoing := map[int64]int64{7: 10}
	data := encodeProducerSnapshot(1234, in, ongoing)
	off, out, err := decodeProducerSnapshot(data)
	if err != nil || off != 1234 {
		t.Fatalf("decode: %v, offset %d", err, off)
	}
	for id, st := range in {
		got := out.producers[id]
		if got == nil || got.id != id || got.epoch != st.epoch || got.lastTimestamp != st.lastTimestamp || got.coordinatorEpoch != st.coordinatorEpoch ||
			len(got.batches) != len(st.batches) || (len(st.batches) > 0 && !reflect.DeepEqual(got.batches, st.batches)) {
			t.Fatalf("producer %d: %+v, want %+v", id, got, st)
		}
	}
	if !reflect.DeepEqual(out.ongoing, ongoing) {
		t.Fatalf("ongoing %v, want %v", out.ongoing, ongoing)
	}
	for i := range data {
		bad := append([]byte(nil), data...)
		bad[i] ^= 0x10
		if _, _, err := decodeProducerSnapshot(bad); err == nil {
			t.Fatalf("bit flip at %d not detected", i)
		}
	}
}

// TestProducerSnapshotV1 reads a snapshot written before transactions
// (version 1: no coordinator epoch, no open transaction).
func TestProducerSnapshotV1(t *testing.T) {
	b := append([]byte(nil), "GPST"...)
	b = binary.BigEndian.AppendUint16(b, 1)
	b = binary.BigEndian.AppendUint64(b, 77)
	b = binary.BigEndian.AppendUint32(b, 1)
	b = binary.BigEndian.AppendUint64(b, 5)  // producer ID
	b = binary.BigEndian.AppendUint16(b, 3)  // epoch
	b = binary.BigEndian.AppendUint64(b, 99) // last timestamp
	b = append(b, 1)
	for _, v := range []uint32{0, 9} {
		b = binary.BigEndian.AppendUint32(b, v)
	}
	b = binary.BigEndian.AppendUint64(b, 60)
	b = binary.BigEndian.AppendUint64(b, 69)
	b = binary.BigEndian.AppendUint32(b, batch.Checksum(b))
	off, snap, err := decodeProducerSnapshot(b)
	if err != nil || off != 77 {
		t.Fatalf("decode v1: %v %d", err, off)
	}
	st := snap.producers[5]
	if st == nil || st.epoch != 3 || st.coordinatorEpoch != -1 || len(st.batches) != 1 || st.batches[0] != (batchMeta{0, 9, 60, 69}) || len(snap.ongoing) != 0 {
		t.Fatalf("v1 state %+v %v", st, snap.ongoing)
	}
}

func FuzzProducerSnapshot(f *testing.F) {
	f.Add(encodeProducerSnapshot(5, map[int64]*producerState{1: {batches: []batchMeta{{1, 2, 3, 4}}}}, map[int64]int64{1: 3}))
	f.Fuzz(func(t *testing.T, b []byte) {
		decodeProducerSnapshot(b) // must not panic or allocate wildly
	})
}
