package stream

import (
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Stream is an unbounded sequence of keyed records (Kafka Streams'
// KStream). Values of Stream come from Source and from operations on
// other streams; the zero Stream is not usable.
//
// Operations that keep the key and value types are methods; those that
// change them are functions (Go methods cannot add type parameters).
type Stream[K, V any] struct {
	b *Builder
	n *node
	// keyChanged is set once an operation may have changed the key, so
	// that grouping repartitions and a join refuses the stream.
	keyChanged bool
}

// KeyValue is one output record of FlatMap.
type KeyValue[K, V any] struct {
	Key   K
	Value V
}

// KV makes a KeyValue.
func KV[K, V any](k K, v V) KeyValue[K, V] { return KeyValue[K, V]{k, v} }

// Source reads topic, decoding keys and values with the serdes. A topic
// may be read by one Source only. The topic must exist when the App
// runs; an App new to its group starts at the earliest offset.
func Source[K, V any](b *Builder, topic string, key Serde[K], value Serde[V]) Stream[K, V] {
	if key == nil || value == nil {
		b.fail("source %q: nil serde", topic)
	}
	if topic == "" {
		b.fail("source: empty topic name")
	}
	if _, dup := b.sources[topic]; dup {
		b.fail("topic %q is read by two sources; reuse the Stream instead", topic)
	}
	n := b.addSource(topic, "", decodeWith(key, value))
	b.sources[topic] = n
	return Stream[K, V]{b: b, n: n}
}

// decodeWith decodes a record's key and value; a nil serde (already
// reported to the Builder) decodes nothing.
func decodeWith[K, V any](key Serde[K], value Serde[V]) func(*kgo.Record) (rec, error) {
	return func(r *kgo.Record) (rec, error) {
		if key == nil || value == nil {
			return rec{}, fmt.Errorf("nil serde")
		}
		k, err := key.Decode(r.Key)
		if err != nil {
			return rec{}, fmt.Errorf("decode key: %w", err)
		}
		v, err := value.Decode(r.Value)
		if err != nil {
			return rec{}, fmt.Errorf("decode value: %w", err)
		}
		return rec{key: k, value: v, ts: r.Timestamp.UnixMilli()}, nil
	}
}

// Filter keeps the records for which keep returns true.
func (s Stream[K, V]) Filter(keep func(K, V) bool) Stream[K, V] {
	n := s.b.add("filter", func(t *task, n *node, r rec) error {
		if keep(as[K](r.key), as[V](r.value)) {
			return n.forward(t, r)
		}
		return nil
	}, s.n)
	return Stream[K, V]{s.b, n, s.keyChanged}
}

// Peek calls fn for every record and passes the record on unchanged.
func (s Stream[K, V]) Peek(fn func(K, V)) Stream[K, V] {
	n := s.b.add("peek", func(t *task, n *node, r rec) error {
		fn(as[K](r.key), as[V](r.value))
		return n.forward(t, r)
	}, s.n)
	return Stream[K, V]{s.b, n, s.keyChanged}
}

// Merge interleaves the records of s and other, in the order the task
// processes them. Both streams must come from the same Builder.
func (s Stream[K, V]) Merge(other Stream[K, V]) Stream[K, V] {
	if other.b != s.b {
		s.b.fail("merge: streams of different builders")
		return s
	}
	n := s.b.add("merge", func(t *task, n *node, r rec) error { return n.forward(t, r) }, s.n, other.n)
	return Stream[K, V]{s.b, n, s.keyChanged || other.keyChanged}
}

// Branch splits s: a record goes to the stream of the first predicate
// it satisfies, and is dropped when it satisfies none (Kafka Streams'
// split/branch). The result has one stream per predicate.
func (s Stream[K, V]) Branch(preds ...func(K, V) bool) []Stream[K, V] {
	// The dispatcher forwards to exactly one of its children, which are
	// the branches in predicate order and nothing else.
	d := s.b.add("branch", func(t *task, n *node, r rec) error {
		k, v := as[K](r.key), as[V](r.value)
		for i, p := range preds {
			if p(k, v) {
				c := n.children[i]
				return c.process(t, c, r)
			}
		}
		return nil
	}, s.n)
	out := make([]Stream[K, V], len(preds))
	for i := range preds {
		n := s.b.add("branch-out", func(t *task, n *node, r rec) error { return n.forward(t, r) }, d)
		out[i] = Stream[K, V]{s.b, n, s.keyChanged}
	}
	return out
}

// To writes every record to topic, which must exist. Records are
// partitioned by the murmur2 hash of the encoded key, as Kafka's
// default partitioner does, and keep the timestamp of the input record
// they derive from.
func (s Stream[K, V]) To(topic string, key Serde[K], value Serde[V]) {
	if key == nil || value == nil {
		s.b.fail("sink %q: nil serde", topic)
		return
	}
	if topic == "" {
		s.b.fail("sink: empty topic name")
		return
	}
	n := s.b.add("sink", sinkProcess(topic, key, value), s.n)
	n.sinkTopic = topic
}

// sinkProcess encodes records and produces them to topic.
func sinkProcess[K, V any](topic string, key Serde[K], value Serde[V]) func(t *task, n *node, r rec) error {
	return func(t *task, _ *node, r rec) error { return sendRec(t, topic, key, value, r) }
}

// sendRec encodes r and produces it to topic. An encoding error stops
// the App (Kafka Streams' default production exception handler).
func sendRec[K, V any](t *task, topic string, key Serde[K], value Serde[V], r rec) error {
	kb, err := key.Encode(as[K](r.key))
	if err != nil {
		return fmt.Errorf("stream: encode key for %s: %w", topic, err)
	}
	var vb []byte
	if !r.del {
		if vb, err = value.Encode(as[V](r.value)); err != nil {
			return fmt.Errorf("stream: encode value for %s: %w", topic, err)
		}
	}
	t.send(&kgo.Record{Topic: topic, Key: kb, Value: vb, Timestamp: time.UnixMilli(r.ts)})
	return nil
}

// Map transforms each record's key and value. The key may change, so a
// grouping after Map repartitions.
func Map[K, V, K2, V2 any](s Stream[K, V], fn func(K, V) (K2, V2)) Stream[K2, V2] {
	n := s.b.add("map", func(t *task, n *node, r rec) error {
		k, v := fn(as[K](r.key), as[V](r.value))
		return n.forward(t, rec{key: k, value: v, ts: r.ts})
	}, s.n)
	return Stream[K2, V2]{s.b, n, true}
}

// MapValues transforms each record's value and keeps its key, so it
// never causes a repartition.
func MapValues[K, V, V2 any](s Stream[K, V], fn func(K, V) V2) Stream[K, V2] {
	n := s.b.add("map-values", func(t *task, n *node, r rec) error {
		return n.forward(t, rec{key: r.key, value: fn(as[K](r.key), as[V](r.value)), ts: r.ts})
	}, s.n)
	return Stream[K, V2]{s.b, n, s.keyChanged}
}

// FlatMap turns each record into zero or more records. The key may
// change, so a grouping after FlatMap repartitions.
func FlatMap[K, V, K2, V2 any](s Stream[K, V], fn func(K, V) []KeyValue[K2, V2]) Stream[K2, V2] {
	n := s.b.add("flat-map", func(t *task, n *node, r rec) error {
		for _, kv := range fn(as[K](r.key), as[V](r.value)) {
			if err := n.forward(t, rec{key: kv.Key, value: kv.Value, ts: r.ts}); err != nil {
				return err
			}
		}
		return nil
	}, s.n)
	return Stream[K2, V2]{s.b, n, true}
}

// FlatMapValues turns each record into zero or more records with the
// same key.
func FlatMapValues[K, V, V2 any](s Stream[K, V], fn func(K, V) []V2) Stream[K, V2] {
	n := s.b.add("flat-map-values", func(t *task, n *node, r rec) error {
		for _, v := range fn(as[K](r.key), as[V](r.value)) {
			if err := n.forward(t, rec{key: r.key, value: v, ts: r.ts}); err != nil {
				return err
			}
		}
		return nil
	}, s.n)
	return Stream[K, V2]{s.b, n, s.keyChanged}
}

// Repartition sends the stream through the internal topic
// "<application.id>-<name>-repartition", partitioned by the encoded
// key, so that records with equal keys meet in one task. Grouping
// repartitions by itself; call Repartition before a Join after a
// key-changing operation.
func Repartition[K, V any](s Stream[K, V], name string, key Serde[K], value Serde[V]) Stream[K, V] {
	return Stream[K, V]{s.b, repartitionNode(s.b, s.n, name, key, value), false}
}

// repartitionNode adds, below from, a sink to the repartition topic
// name and returns a new source node reading that topic: the cut
// between two sub-topologies.
func repartitionNode[K, V any](b *Builder, from *node, name string, key Serde[K], value Serde[V]) *node {
	if !validName(name) {
		b.fail("repartition name %q: use only letters, digits, '.', '_' and '-'", name)
	}
	if key == nil || value == nil {
		b.fail("repartition %q: nil serde", name)
	}
	if _, dup := b.repartitions[name]; dup {
		b.fail("repartition name %q used twice", name)
	}
	sink := b.add("repartition-sink", func(t *task, n *node, r rec) error {
		if key == nil || value == nil {
			return fmt.Errorf("stream: repartition %q: nil serde", name)
		}
		return sendRec(t, t.app.topo.repartitionTopic(name), key, value, r)
	}, from)
	sink.repartition = name
	src := b.addSource("", name, decodeWith(key, value))
	b.repartitions[name] = src
	return src
}
