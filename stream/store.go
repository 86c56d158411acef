package stream

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// storeSpec describes a store of the topology: its name, windows (nil
// for a key-value store) and the serdes, boxed, for its changelog.
type storeSpec struct {
	name        string
	windows     *Windows
	encodeValue func(any) ([]byte, error)
	decodeKey   func([]byte) (any, error)
	decodeValue func([]byte) (any, error)
}

func newStoreSpec[K, V any](name string, w *Windows, key Serde[K], value Serde[V]) *storeSpec {
	return &storeSpec{
		name:    name,
		windows: w,
		encodeValue: func(v any) ([]byte, error) {
			return value.Encode(as[V](v))
		},
		decodeKey: func(b []byte) (any, error) {
			return key.Decode(b)
		},
		decodeValue: func(b []byte) (any, error) {
			return value.Decode(b)
		},
	}
}

// store is one task's instance of a storeSpec. Stores are owned by the
// App's Run goroutine, like the task holding them.
type store interface {
	// restore applies one record of the changelog.
	restore(r *kgo.Record) error
}

// newStore makes an empty store writing its changelog to partition of
// topic.
func newStore(spec *storeSpec, topic string, partition int32) store {
	if spec.windows == nil {
		return &kvStore{spec: spec, topic: topic, partition: partition, data: map[string]kvEntry{}}
	}
	return &windowStore{
		spec: spec, topic: topic, partition: partition,
		size:       spec.windows.size.Milliseconds(),
		grace:      spec.windows.grace.Milliseconds(),
		data:       map[string]kvEntry{},
		byStart:    map[int64]map[string]struct{}{},
		streamTime: -1,
	}
}

type kvEntry struct{ key, value any }

// kvStore is an in-memory key-value store keyed by the encoded key.
// Every change is produced to its changelog partition.
type kvStore struct {
	spec      *storeSpec
	topic     string
	partition int32
	data      map[string]kvEntry
}

func (s *kvStore) get(kb []byte) (kvEntry, bool) {
	e, ok := s.data[string(kb)]
	return e, ok
}

// put sets key's value and logs it. A value encoding to null is a
// deletion, as it is when the changelog is restored.
func (s *kvStore) put(t *task, kb []byte, key, value any, ts int64) error {
	vb, err := s.spec.encodeValue(value)
	if err != nil {
		return fmt.Errorf("stream: store %s: encode value: %w", s.spec.name, err)
	}
	if vb == nil {
		delete(s.data, string(kb))
	} else {
		s.data[string(kb)] = kvEntry{key, value}
	}
	t.send(&kgo.Record{Topic: s.topic, Partition: s.partition, Key: kb, Value: vb, Timestamp: time.UnixMilli(ts)})
	return nil
}

// delete removes key and logs a tombstone.
func (s *kvStore) delete(t *task, kb []byte, ts int64) {
	delete(s.data, string(kb))
	t.send(&kgo.Record{Topic: s.topic, Partition: s.partition, Key: kb, Timestamp: time.UnixMilli(ts)})
}

func (s *kvStore) restore(r *kgo.Record) error {
	if r.Value == nil {
		delete(s.data, string(r.Key))
		return nil
	}
	k, err := s.spec.decodeKey(r.Key)
	if err != nil {
		return fmt.Errorf("decode key at offset %d: %w", r.Offset, err)
	}
	v, err := s.spec.decodeValue(r.Value)
	if err != nil {
		return fmt.Errorf("decode value at offset %d: %w", r.Offset, err)
	}
	s.data[string(r.Key)] = kvEntry{k, v}
	return nil
}

// windowStore is an in-memory store of windows keyed by windowKey
// (the encoded key and the window start). It keeps windows until
// stream time closes them, then deletes them and logs tombstones.
//
// Invariant: starts is the sorted set of byStart's keys, and byStart
// indexes exactly the keys of data.
type windowStore struct {
	spec        *storeSpec
	topic       string
	partition   int32
	size, grace int64 // milliseconds
	data        map[string]kvEntry
	byStart     map[int64]map[string]struct{}
	starts      []int64
	// streamTime is the largest record timestamp the store has seen,
	// -1 before the first. Restore recovers it from the changelog's
	// timestamps, which are those of the records that made the updates.
	streamTime int64
}

func (s *windowStore) observe(ts int64) { s.streamTime = max(s.streamTime, ts) }

// closed reports whether the window starting at start no longer takes
// records: stream time has reached its end plus the grace period.
func (s *windowStore) closed(start int64) bool {
	return start+s.size+s.grace <= s.streamTime
}

func (s *windowStore) get(kb []byte, start int64) (kvEntry, bool) {
	e, ok := s.data[string(windowKey(kb, start))]
	return e, ok
}

func (s *windowStore) put(t *task, kb []byte, key any, start int64, value any, ts int64) error {
	vb, err := s.spec.encodeValue(value)
	if err != nil {
		return fmt.Errorf("stream: store %s: encode value: %w", s.spec.name, err)
	}
	wk := windowKey(kb, start)
	if vb == nil {
		s.remove(string(wk), start)
	} else {
		s.set(string(wk), start, kvEntry{key, value})
	}
	t.send(&kgo.Record{Topic: s.topic, Partition: s.partition, Key: wk, Value: vb, Timestamp: time.UnixMilli(ts)})
	return nil
}

func (s *windowStore) set(wk string, start int64, e kvEntry) {
	if _, ok := s.data[wk]; !ok {
		keys := s.byStart[start]
		if keys == nil {
			keys = map[string]struct{}{}
			s.byStart[start] = keys
			i, _ := slices.BinarySearch(s.starts, start)
			s.starts = slices.Insert(s.starts, i, start)
		}
		keys[wk] = struct{}{}
	}
	s.data[wk] = e
}

func (s *windowStore) remove(wk string, start int64) {
	if _, ok := s.data[wk]; !ok {
		return
	}
	delete(s.data, wk)
	keys := s.byStart[start]
	delete(keys, wk)
	if len(keys) == 0 {
		delete(s.byStart, start)
		if i, found := slices.BinarySearch(s.starts, start); found {
			s.starts = slices.Delete(s.starts, i, i+1)
		}
	}
}

// expire deletes the windows stream time has closed (the retention is
// the window size plus the grace period) and logs their tombstones.
func (s *windowStore) expire(t *task) {
	for len(s.starts) > 0 && s.closed(s.starts[0]) {
		start := s.starts[0]
		for _, wk := range slices.Sorted(maps.Keys(s.byStart[start])) {
			delete(s.data, wk)
			t.send(&kgo.Record{Topic: s.topic, Partition: s.partition, Key: []byte(wk), Timestamp: time.UnixMilli(s.streamTime)})
		}
		delete(s.byStart, start)
		s.starts = s.starts[1:]
	}
}

func (s *windowStore) restore(r *kgo.Record) error {
	s.observe(r.Timestamp.UnixMilli())
	kb, start, err := splitWindowKey(r.Key)
	if err != nil {
		return fmt.Errorf("offset %d: %w", r.Offset, err)
	}
	if r.Value == nil {
		s.remove(string(r.Key), start)
		return nil
	}
	k, err := s.spec.decodeKey(kb)
	if err != nil {
		return fmt.Errorf("decode key at offset %d: %w", r.Offset, err)
	}
	v, err := s.spec.decodeValue(r.Value)
	if err != nil {
		return fmt.Errorf("decode value at offset %d: %w", r.Offset, err)
	}
	s.set(string(r.Key), start, kvEntry{k, v})
	return nil
}
