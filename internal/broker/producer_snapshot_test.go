package broker

import (
	"reflect"
	"testing"
)

func TestProducerSnapshotEncoding(t *testing.T) {
	in := map[int64]*producerState{
		7:  {epoch: 2, lastTimestamp: 99, batches: []batchMeta{{0, 4, 10, 14}, {5, 5, 20, 20}}},
		42: {epoch: 0, lastTimestamp: 1},
	}
	data := encodeProducerSnapshot(1234, in)
	off, out, err := decodeProducerSnapshot(data)
	if err != nil || off != 1234 {
		t.Fatalf("decode: %v, offset %d", err, off)
	}
	for id, st := range in {
		got := out[id]
		if got == nil || got.epoch != st.epoch || got.lastTimestamp != st.lastTimestamp || len(got.batches) != len(st.batches) ||
			(len(st.batches) > 0 && !reflect.DeepEqual(got.batches, st.batches)) {
			t.Fatalf("producer %d: %+v, want %+v", id, got, st)
		}
	}
	for i := range data {
		bad := append([]byte(nil), data...)
		bad[i] ^= 0x10
		if _, _, err := decodeProducerSnapshot(bad); err == nil {
			t.Fatalf("bit flip at %d not detected", i)
		}
	}
}

func FuzzProducerSnapshot(f *testing.F) {
	f.Add(encodeProducerSnapshot(5, map[int64]*producerState{1: {batches: []batchMeta{{1, 2, 3, 4}}}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		decodeProducerSnapshot(b) // must not panic or allocate wildly
	})
}
