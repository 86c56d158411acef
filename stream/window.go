package stream

import (
	"encoding/binary"
	"fmt"
	"time"
)

// Windows groups records by time: windows of a fixed size starting at
// multiples of the advance (tumbling windows when advance == size,
// hopping windows when it is smaller), on record timestamps. A record
// arriving after the window's end plus the grace period, measured in
// stream time (the largest timestamp the store has seen), is dropped
// as late; until then it still updates its window.
type Windows struct {
	size, advance, grace time.Duration
}

// TumblingWindows are back-to-back windows of size, each record in
// exactly one window.
func TumblingWindows(size, grace time.Duration) Windows {
	return Windows{size: size, advance: size, grace: grace}
}

// HoppingWindows are windows of size starting every advance, so a
// record lands in size/advance windows.
func HoppingWindows(size, advance, grace time.Duration) Windows {
	return Windows{size: size, advance: advance, grace: grace}
}

// Size is the length of each window.
func (w Windows) Size() time.Duration { return w.size }

func (w Windows) check() error {
	switch {
	case w.size < time.Millisecond:
		return fmt.Errorf("window size %v: must be at least 1ms", w.size)
	case w.advance < time.Millisecond || w.advance > w.size:
		return fmt.Errorf("window advance %v: must be between 1ms and the size %v", w.advance, w.size)
	case w.grace < 0:
		return fmt.Errorf("window grace %v: must not be negative", w.grace)
	}
	return nil
}

// startsFor returns the starts, in milliseconds and ascending, of the
// windows holding timestamp ts (ts >= 0), as Kafka's
// TimeWindows.windowsFor computes them.
func (w Windows) startsFor(ts int64) []int64 {
	size, adv := w.size.Milliseconds(), w.advance.Milliseconds()
	start := max(0, ts-size+adv) / adv * adv
	var out []int64
	for ; start <= ts; start += adv {
		out = append(out, start)
	}
	return out
}

// Windowed is the key of a windowed aggregation: the grouping key and
// the window, [Start, End).
type Windowed[K any] struct {
	Key        K
	Start, End time.Time
}

func (w Windowed[K]) String() string {
	return fmt.Sprintf("%v@[%s,%s)", w.Key, w.Start.Format(time.RFC3339Nano), w.End.Format(time.RFC3339Nano))
}

func newWindowed[K any](k K, start, size int64) Windowed[K] {
	return Windowed[K]{Key: k, Start: time.UnixMilli(start).UTC(), End: time.UnixMilli(start + size).UTC()}
}

// WindowedSerde encodes a windowed key as the key's bytes followed by
// the window start in milliseconds as a big-endian int64: Kafka
// Streams' TimeWindowedSerde, so its applications read it. Decode
// derives End from size.
func WindowedSerde[K any](key Serde[K], size time.Duration) Serde[Windowed[K]] {
	return windowedSerde[K]{key, size.Milliseconds()}
}

type windowedSerde[K any] struct {
	key  Serde[K]
	size int64
}

func (s windowedSerde[K]) Encode(w Windowed[K]) ([]byte, error) {
	kb, err := s.key.Encode(w.Key)
	if err != nil {
		return nil, err
	}
	return windowKey(kb, w.Start.UnixMilli()), nil
}

func (s windowedSerde[K]) Decode(b []byte) (Windowed[K], error) {
	kb, start, err := splitWindowKey(b)
	if err != nil {
		return Windowed[K]{}, err
	}
	k, err := s.key.Decode(kb)
	if err != nil {
		return Windowed[K]{}, err
	}
	return newWindowed(k, start, s.size), nil
}

// windowKey is a window store's key: the key bytes, then the window
// start as a big-endian int64.
func windowKey(kb []byte, start int64) []byte {
	out := make([]byte, 0, len(kb)+8)
	out = append(out, kb...)
	return binary.BigEndian.AppendUint64(out, uint64(start))
}

func splitWindowKey(b []byte) (kb []byte, start int64, err error) {
	if len(b) < 8 {
		return nil, 0, fmt.Errorf("stream: windowed key needs at least 8 bytes, got %d", len(b))
	}
	n := len(b) - 8
	return b[:n:n], int64(binary.BigEndian.Uint64(b[n:])), nil
}

// WindowedGrouped is a grouped stream aggregated per window (Kafka
// Streams' TimeWindowedKStream).
type WindowedGrouped[K, V any] struct {
	g Grouped[K, V]
	w Windows
}

// WindowedBy aggregates per key and window.
func (g Grouped[K, V]) WindowedBy(w Windows) WindowedGrouped[K, V] {
	return WindowedGrouped[K, V]{g, w}
}

// The windowed aggregations are functions, not methods of
// WindowedGrouped: a method returning Table[Windowed[K], ...] would
// make Go instantiate Windowed[Windowed[K]] and so on without end.

// WindowedCount counts the records per key and window in the window
// store name. After each record the table emits the window's new count.
func WindowedCount[K, V any](g WindowedGrouped[K, V], name string) Table[Windowed[K], int64] {
	return WindowedAggregate(g, name, func() int64 { return 0 }, func(_ K, _ V, n int64) int64 { return n + 1 }, Int64())
}

// WindowedReduce combines the values per key and window, as
// Grouped.Reduce.
func WindowedReduce[K, V any](g WindowedGrouped[K, V], name string, reduce func(agg, v V) V) Table[Windowed[K], V] {
	return aggregateWindows(g, name, g.g.value, func(_ K, v V, agg V, found bool) V {
		if !found {
			return v
		}
		return reduce(agg, v)
	})
}

// WindowedAggregate folds the values per key and window into an A,
// starting from init(), as Aggregate.
func WindowedAggregate[K, V, A any](g WindowedGrouped[K, V], name string, init func() A, add func(K, V, A) A, aggSerde Serde[A]) Table[Windowed[K], A] {
	return aggregateWindows(g, name, aggSerde, func(k K, v V, agg A, found bool) A {
		if !found {
			agg = init()
		}
		return add(k, v, agg)
	})
}

// aggregateWindows adds a window store name and the node updating it.
// The store keeps a window until stream time passes its end plus the
// grace period, then deletes it (a tombstone in the changelog).
func aggregateWindows[K, V, A any](wg WindowedGrouped[K, V], name string, aggSerde Serde[A], step func(K, V, A, bool) A) Table[Windowed[K], A] {
	g, w := wg.g, wg.w
	b := g.s.b
	if err := w.check(); err != nil {
		b.fail("windowed aggregate %q: %v", name, err)
	}
	if aggSerde == nil {
		b.fail("windowed aggregate %q: nil serde", name)
	}
	in := g.input(name)
	b.addStore(newStoreSpec(name, &w, g.key, aggSerde))
	size := w.size.Milliseconds()
	n := b.add("window-aggregate", func(t *task, n *node, r rec) error {
		st := t.window(name)
		if r.ts < 0 {
			t.app.stats.droppedLate.Add(1)
			return nil
		}
		st.observe(r.ts)
		k := as[K](r.key)
		kb, err := g.key.Encode(k)
		if err != nil {
			return fmt.Errorf("stream: store %s: encode key: %w", name, err)
		}
		for _, start := range w.startsFor(r.ts) {
			if st.closed(start) {
				t.app.stats.droppedLate.Add(1)
				continue
			}
			e, found := st.get(kb, start)
			agg := step(k, as[V](r.value), as[A](e.value), found)
			if err := st.put(t, kb, k, start, agg, r.ts); err != nil {
				return err
			}
			if err := n.forward(t, rec{key: newWindowed(k, start, size), value: agg, ts: r.ts}); err != nil {
				return err
			}
		}
		st.expire(t)
		return nil
	}, in)
	n.stores = []string{name}
	var ws Serde[Windowed[K]]
	if g.key != nil {
		ws = WindowedSerde(g.key, w.size)
	}
	return Table[Windowed[K], A]{b: b, n: n, store: name, key: ws, value: aggSerde, windowed: true}
}
