package broker

import "testing"

// TestProducerTableLastLookupCoherent: the cached last state never
// answers for a producer that was removed or replaced.
func TestProducerTableLastLookupCoherent(t *testing.T) {
	var tb producerTable
	a, b := &producerState{id: 1}, &producerState{id: 2}
	tb.put(a)
	tb.put(b)
	if tb.get(1) != a || tb.get(2) != b || tb.get(3) != nil || tb.len() != 2 {
		t.Fatal("lookups after put")
	}
	tb.remove(2) // the cached one
	if tb.get(2) != nil || tb.get(1) != a {
		t.Fatal("removed producer still found")
	}
	a2 := &producerState{id: 1, epoch: 1}
	tb.put(a2)
	if tb.get(1) != a2 {
		t.Fatal("replaced producer answered by the old state")
	}
	tb.get(1)
	for id := range tb.all() {
		tb.remove(id)
	}
	if tb.get(1) != nil || tb.len() != 0 {
		t.Fatal("state left after removing all")
	}
	// A table from a decoded snapshot starts without a cached entry.
	tb = producerTable{m: map[int64]*producerState{7: {id: 7}}}
	if st := tb.get(7); st == nil || st.id != 7 {
		t.Fatal("snapshot state not found")
	}
	var zero producerTable // a partition before loadProducers
	if zero.get(1) != nil {
		t.Fatal("empty table found a producer")
	}
	zero.put(a)
	if zero.get(1) != a {
		t.Fatal("put on a zero table")
	}
}
