package stream

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Table is a changelog stream viewed as the latest value per key,
// materialized in a store (Kafka Streams' KTable). Tables come from
// aggregations and from SourceTable.
type Table[K, V any] struct {
	b        *Builder
	n        *node
	store    string
	key      Serde[K]
	value    Serde[V]
	windowed bool
}

// ToStream returns the table's updates as a stream: one record per
// update, carrying the new value.
func (t Table[K, V]) ToStream() Stream[K, V] { return Stream[K, V]{t.b, t.n, false} }

// StoreName is the name of the store holding the table; its changelog
// topic is "<application.id>-<name>-changelog".
func (t Table[K, V]) StoreName() string { return t.store }

// SourceTable reads topic as a table in the store name: each record
// sets its key's value, a null value (tombstone) deletes the key.
// Updates are forwarded to ToStream; deletions only change the store.
func SourceTable[K, V any](b *Builder, topic, name string, key Serde[K], value Serde[V]) Table[K, V] {
	if key == nil || value == nil {
		b.fail("table %q: nil serde", topic)
	}
	if _, dup := b.sources[topic]; dup {
		b.fail("topic %q is read by two sources; reuse the Table instead", topic)
	}
	dec := decodeWith(key, value)
	src := b.addSource(topic, "", func(r *kgo.Record) (rec, error) {
		if r.Value != nil {
			return dec(r)
		}
		if key == nil {
			return rec{}, fmt.Errorf("nil serde")
		}
		k, err := key.Decode(r.Key)
		if err != nil {
			return rec{}, fmt.Errorf("decode key: %w", err)
		}
		return rec{key: k, ts: r.Timestamp.UnixMilli(), del: true}, nil
	})
	b.sources[topic] = src
	b.addStore(newStoreSpec(name, nil, key, value))
	n := b.add("table", func(t *task, n *node, r rec) error {
		kb, err := key.Encode(as[K](r.key))
		if err != nil {
			return fmt.Errorf("stream: store %s: encode key: %w", name, err)
		}
		st := t.kv(name)
		if r.del {
			st.delete(t, kb, r.ts)
			return nil
		}
		if err := st.put(t, kb, r.key, r.value, r.ts); err != nil {
			return err
		}
		return n.forward(t, r)
	}, src)
	n.stores = []string{name}
	return Table[K, V]{b: b, n: n, store: name, key: key, value: value}
}

// Join enriches each record of s with the value its key has in table,
// dropping records whose key the table lacks (an inner stream-table
// join). The stream and the table must be co-partitioned: their topics
// have the same partition count and are partitioned by the same key
// bytes, so that a key's records and its table entry meet in one task.
// If s's key may have changed since its source, Repartition it first.
//
// Only stream records trigger output; a table update never does.
// Records are processed in fetch order, so the table holds what its
// topic had when the task reached the stream record (Kafka Streams
// instead orders by timestamp across the two topics).
func Join[K, V, VT, VR any](s Stream[K, V], table Table[K, VT], joiner func(K, V, VT) VR) Stream[K, VR] {
	return joinNode(s, table, "join", func(k K, v V, vt VT, found bool) (VR, bool) {
		if !found {
			var zero VR
			return zero, false
		}
		return joiner(k, v, vt), true
	})
}

// LeftJoin is Join that keeps records whose key the table lacks:
// joiner then receives VT's zero value and found false.
func LeftJoin[K, V, VT, VR any](s Stream[K, V], table Table[K, VT], joiner func(k K, v V, vt VT, found bool) VR) Stream[K, VR] {
	return joinNode(s, table, "left-join", func(k K, v V, vt VT, found bool) (VR, bool) {
		return joiner(k, v, vt, found), true
	})
}

func joinNode[K, V, VT, VR any](s Stream[K, V], table Table[K, VT], kind string, join func(K, V, VT, bool) (VR, bool)) Stream[K, VR] {
	b := s.b
	switch {
	case table.b != b:
		b.fail("%s: stream and table of different builders", kind)
	case s.keyChanged:
		b.fail("%s with table %q: the stream's key may have changed since its source; Repartition it first", kind, table.store)
	case table.windowed:
		b.fail("%s with windowed table %q is not supported", kind, table.store)
	}
	name := table.store
	n := b.add(kind, func(t *task, n *node, r rec) error {
		k := as[K](r.key)
		kb, err := table.key.Encode(k)
		if err != nil {
			return fmt.Errorf("stream: join with %s: encode key: %w", name, err)
		}
		e, found := t.kv(name).get(kb)
		out, ok := join(k, as[V](r.value), as[VT](e.value), found)
		if !ok {
			return nil
		}
		return n.forward(t, rec{key: r.key, value: out, ts: r.ts})
	}, s.n)
	n.stores = []string{name}
	return Stream[K, VR]{b, n, false}
}
