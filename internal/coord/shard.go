package coord

import (
	"sync"
	"sync/atomic"
)

// Shard is one partition of a coordinator's internal topic: the
// mailboxes M of the keys it holds. A coordinator embeds it in its own
// shard type, which may add fields guarded by the same lock. The zero
// value, with Partition set, is ready to use.
type Shard[M comparable] struct {
	// Partition is the internal topic's partition. Immutable.
	Partition int32
	// loaded is set once the partition's records are replayed.
	loaded atomic.Bool
	// foreign is set for a partition another broker leads: it is never
	// loaded and its keys are served elsewhere.
	foreign atomic.Bool
	// mu guards m (the map only, never a mailbox's state) and what the
	// embedding type says it guards.
	mu sync.Mutex
	m  map[string]M
}

// Loaded reports whether the partition's records are replayed.
func (s *Shard[M]) Loaded() bool { return s.loaded.Load() }

// SetLoaded marks the partition replayed; requests are served from now.
func (s *Shard[M]) SetLoaded() { s.loaded.Store(true) }

// SetForeign marks the partition as another broker's, before Start: it
// counts as loaded (there is nothing to load here) and its keys get
// NOT_COORDINATOR (Foreign).
func (s *Shard[M]) SetForeign() {
	s.foreign.Store(true)
	s.loaded.Store(true)
}

// Foreign reports whether another broker coordinates the partition.
func (s *Shard[M]) Foreign() bool { return s.foreign.Load() }

// Lock locks the shard, for a caller that changes the map together
// with its own fields (see PutLocked, SnapshotLocked).
func (s *Shard[M]) Lock() { s.mu.Lock() }

// Unlock unlocks the shard.
func (s *Shard[M]) Unlock() { s.mu.Unlock() }

// Get returns the mailbox of id, or the zero M.
func (s *Shard[M]) Get(id string) M {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[id]
}

// GetOrCreate returns the mailbox of id, made by create (with the shard
// locked) when there is none.
func (s *Shard[M]) GetOrCreate(id string, create func() M) M {
	s.mu.Lock()
	defer s.mu.Unlock()
	mb, ok := s.m[id]
	if !ok {
		mb = create()
		s.PutLocked(id, mb)
	}
	return mb
}

// PutLocked sets the mailbox of id; the caller holds the lock.
func (s *Shard[M]) PutLocked(id string, mb M) {
	if s.m == nil {
		s.m = map[string]M{}
	}
	s.m[id] = mb
}

// Snapshot returns the shard's mailboxes, in no order.
func (s *Shard[M]) Snapshot() []M {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.SnapshotLocked()
}

// SnapshotLocked is Snapshot with the lock held.
func (s *Shard[M]) SnapshotLocked() []M {
	out := make([]M, 0, len(s.m))
	for _, mb := range s.m {
		out = append(out, mb)
	}
	return out
}

// RemoveIf forgets the mailbox of id if it is still mb: a key that
// died is removed, unless a new one took its ID.
func (s *Shard[M]) RemoveIf(id string, mb M) {
	s.mu.Lock()
	if s.m[id] == mb {
		delete(s.m, id)
	}
	s.mu.Unlock()
}
