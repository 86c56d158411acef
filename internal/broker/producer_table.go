package broker

import "iter"

// producerTable is a partition's producer state by producer ID. Most
// partitions see one producer, and with thousands of partitions each
// batch finds its partition's map cold in the CPU cache: the last state
// looked up or stored is kept beside the map, so the common lookup
// touches only the state it returns. The zero value is empty; the map
// is allocated by the first put.
type producerTable struct {
	m    map[int64]*producerState
	last *producerState // nil, or m[last.id]
}

// get returns pid's state, nil when it has none.
func (t *producerTable) get(pid int64) *producerState {
	if st := t.last; st != nil && st.id == pid {
		return st
	}
	st := t.m[pid]
	if st != nil {
		t.last = st
	}
	return st
}

// put stores st (st.id is its producer ID).
func (t *producerTable) put(st *producerState) {
	if t.m == nil {
		t.m = map[int64]*producerState{}
	}
	t.m[st.id] = st
	t.last = st
}

// remove forgets pid's state.
func (t *producerTable) remove(pid int64) {
	delete(t.m, pid)
	if t.last != nil && t.last.id == pid {
		t.last = nil
	}
}

func (t *producerTable) len() int { return len(t.m) }

// all yields every producer ID and state; the body may remove the one
// it was given.
func (t *producerTable) all() iter.Seq2[int64, *producerState] {
	return func(yield func(int64, *producerState) bool) {
		for id, st := range t.m {
			if !yield(id, st) {
				return
			}
		}
	}
}
