package stream

import "fmt"

// Grouped is a stream prepared for aggregation by key (Kafka Streams'
// KGroupedStream): it carries the serdes for the repartition topic and
// the store's changelog.
type Grouped[K, V any] struct {
	s     Stream[K, V]
	key   Serde[K]
	value Serde[V]
}

// GroupByKey groups the stream by its key. If an operation upstream
// may have changed the key (Map, FlatMap), the aggregation reads the
// stream through a repartition topic named after its store.
func (s Stream[K, V]) GroupByKey(key Serde[K], value Serde[V]) Grouped[K, V] {
	return Grouped[K, V]{s, key, value}
}

// GroupBy groups the stream by a new key, which always repartitions:
// the aggregation reads the re-keyed records through the topic
// "<application.id>-<store>-repartition".
func GroupBy[K, V, K2 any](s Stream[K, V], by func(K, V) K2, key Serde[K2], value Serde[V]) Grouped[K2, V] {
	n := s.b.add("select-key", func(t *task, n *node, r rec) error {
		return n.forward(t, rec{key: by(as[K](r.key), as[V](r.value)), value: r.value, ts: r.ts})
	}, s.n)
	return Grouped[K2, V]{Stream[K2, V]{s.b, n, true}, key, value}
}

// input returns the node feeding the aggregation with store name: the
// grouped stream itself, or the source of its repartition topic when
// the key may have changed.
func (g Grouped[K, V]) input(name string) *node {
	if g.key == nil || g.value == nil {
		g.s.b.fail("grouping for %q: nil serde", name)
	}
	if g.s.keyChanged {
		return repartitionNode(g.s.b, g.s.n, name, g.key, g.value)
	}
	return g.s.n
}

// Count counts the records per key in the store name. The table emits
// the new count after each record.
func (g Grouped[K, V]) Count(name string) Table[K, int64] {
	return Aggregate(g, name, func() int64 { return 0 }, func(_ K, _ V, n int64) int64 { return n + 1 }, Int64())
}

// Reduce combines the values per key: the first value of a key is
// kept as is, each later one is combined with reduce(aggregate, value).
func (g Grouped[K, V]) Reduce(name string, reduce func(agg, v V) V) Table[K, V] {
	return aggregateKV(g, name, g.value, func(_ K, v V, agg V, found bool) V {
		if !found {
			return v
		}
		return reduce(agg, v)
	})
}

// Aggregate folds the values per key into an A, starting from init(),
// in the store name; aggSerde encodes A for the changelog.
func Aggregate[K, V, A any](g Grouped[K, V], name string, init func() A, add func(K, V, A) A, aggSerde Serde[A]) Table[K, A] {
	return aggregateKV(g, name, aggSerde, func(k K, v V, agg A, found bool) A {
		if !found {
			agg = init()
		}
		return add(k, v, agg)
	})
}

// aggregateKV adds a key-value store name and the node updating it with
// step, which receives the current aggregate and whether there is one.
func aggregateKV[K, V, A any](g Grouped[K, V], name string, aggSerde Serde[A], step func(K, V, A, bool) A) Table[K, A] {
	b := g.s.b
	if aggSerde == nil {
		b.fail("aggregate %q: nil serde", name)
	}
	in := g.input(name)
	b.addStore(newStoreSpec(name, nil, g.key, aggSerde))
	n := b.add("aggregate", func(t *task, n *node, r rec) error {
		k := as[K](r.key)
		kb, err := g.key.Encode(k)
		if err != nil {
			return fmt.Errorf("stream: store %s: encode key: %w", name, err)
		}
		st := t.kv(name)
		e, found := st.get(kb)
		agg := step(k, as[V](r.value), as[A](e.value), found)
		if err := st.put(t, kb, k, agg, r.ts); err != nil {
			return err
		}
		return n.forward(t, rec{key: k, value: agg, ts: r.ts})
	}, in)
	n.stores = []string{name}
	return Table[K, A]{b: b, n: n, store: name, key: g.key, value: aggSerde}
}
