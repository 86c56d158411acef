package coord

import (
	"sync"
	"sync/atomic"
)

// Shard is one partition of a coordinator's internal topic: the
// mailboxes M of the keys it holds. A coordinator embeds it in its own
// shard type, which may add fields guarded by the same lock. The zero
// value, with Partition set, is ready to use.
//
// # Leadership
//
// In a cluster the partition's leadership moves: the broker becomes its
// leader at a new leader epoch (ElectLocked) or stops leading it
// (ResignLocked), as Kafka's GroupCoordinator.onElection and
// onResignation are told. Each change that takes effect starts a new
// generation: the mailboxes of the previous one are handed back for the
// coordinator to retire, and a load begun for an older generation knows
// it is stale (Current) and discards what it replayed. Changes with an
// epoch older than the last seen are ignored, so a late notification
// never undoes a newer one.
type Shard[M comparable] struct {
	// Partition is the internal topic's partition. Immutable.
	Partition int32
	// loaded is set once the partition's records are replayed, and for
	// a foreign partition (nothing to load here).
	loaded atomic.Bool
	// foreign is set for a partition another broker leads: it is not
	// loaded and its keys are served elsewhere.
	foreign atomic.Bool
	// gen numbers the shard's leaderships; written with mu held, read
	// without it by loads checking they are still current.
	gen atomic.Uint64
	// mu guards m (the map only, never a mailbox's state), the fields
	// below, the changes of loaded, foreign and gen once the shard is
	// published (Start), and what the embedding type says it guards.
	mu sync.Mutex
	m  map[string]M
	// claimed is set once a load of the current generation began
	// (Claim): each leadership is loaded once, whichever of Start's
	// loaders and an Elect's gets to it first.
	claimed bool
	// epoch is the leader epoch of the last Elect or Resign that took
	// effect, when hasEpoch; elected is set when that was an Elect.
	epoch    int32
	hasEpoch bool
	elected  bool
}

// Loaded reports whether the partition's records are replayed (or it
// is another broker's).
func (s *Shard[M]) Loaded() bool { return s.loaded.Load() }

// SetLoaded marks the partition replayed; requests are served from now.
// A load installing its results calls it with the lock held, after
// checking Current.
func (s *Shard[M]) SetLoaded() { s.loaded.Store(true) }

// SetForeign marks the partition as another broker's, before Start: it
// counts as loaded (there is nothing to load here) and its keys get
// NOT_COORDINATOR (Foreign). Later changes go through ResignLocked.
func (s *Shard[M]) SetForeign() {
	s.foreign.Store(true)
	s.loaded.Store(true)
}

// Foreign reports whether another broker coordinates the partition.
func (s *Shard[M]) Foreign() bool { return s.foreign.Load() }

// serving reports whether the shard serves its keys now.
func (s *Shard[M]) serving() bool { return s.loaded.Load() && !s.foreign.Load() }

// ElectLocked records that this broker leads the partition from leader
// epoch epoch on. An epoch not newer than the last Elect or Resign seen
// is ignored (ok false). Otherwise a new generation starts: the shard
// is neither foreign nor loaded (its keys get
// COORDINATOR_LOAD_IN_PROGRESS), and its mailboxes, of the previous
// generation, are removed and returned for the caller to retire. The
// caller then loads the shard (Claim). The caller holds the lock.
func (s *Shard[M]) ElectLocked(epoch int32) (old []M, ok bool) {
	if s.hasEpoch && epoch <= s.epoch {
		return nil, false
	}
	s.epoch, s.hasEpoch, s.elected = epoch, true, true
	// Not loaded before not foreign: a lock-free reader never sees the
	// shard as serving in between.
	s.loaded.Store(false)
	s.foreign.Store(false)
	return s.newGenLocked(), true
}

// ResignLocked records that this broker no longer leads the partition,
// since leader epoch epoch. An epoch older than the last Elect or
// Resign seen is ignored (ok false). Otherwise a new generation starts:
// the shard is foreign (its keys get NOT_COORDINATOR), a load in
// progress is stale, and its mailboxes are removed and returned for the
// caller to retire. The caller holds the lock.
func (s *Shard[M]) ResignLocked(epoch int32) (old []M, ok bool) {
	if s.hasEpoch && epoch < s.epoch {
		return nil, false
	}
	s.epoch, s.hasEpoch, s.elected = epoch, true, false
	s.foreign.Store(true)
	s.loaded.Store(true)
	return s.newGenLocked(), true
}

// newGenLocked starts a generation and returns the previous one's
// mailboxes.
func (s *Shard[M]) newGenLocked() []M {
	old := s.SnapshotLocked()
	s.m = nil
	s.claimed = false
	s.gen.Add(1)
	return old
}

// Claim begins loading the shard's current generation, which gen
// names. It reports false when there is nothing to load (another
// broker's, or loaded) or another loader claimed it.
func (s *Shard[M]) Claim() (gen uint64, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.claimed || s.loaded.Load() || s.foreign.Load() {
		return 0, false
	}
	s.claimed = true
	return s.gen.Load(), true
}

// Current reports whether gen is still the shard's generation. A load
// checks it while replaying, to stop early, and with the lock held
// before installing what it replayed, to discard it when the
// leadership changed meanwhile.
func (s *Shard[M]) Current(gen uint64) bool { return s.gen.Load() == gen }

// LeaderEpochLocked returns the leader epoch the shard was elected at;
// false when it is served without an Elect (Start's owned partitions)
// or is another broker's. The caller holds the lock.
func (s *Shard[M]) LeaderEpochLocked() (int32, bool) { return s.epoch, s.elected }

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

// Lookup is Get for a request: ok is false when the shard does not
// serve its keys (another broker's, or loading), checked with the lock
// held, so a request never takes a mailbox from a generation that ended
// or reads a missing key from a map that was just emptied; the caller
// routes it again.
func (s *Shard[M]) Lookup(id string) (mb M, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.serving() {
		return mb, false
	}
	return s.m[id], true
}

// LookupOrCreate is GetOrCreate for a request, refusing as Lookup does:
// no mailbox is made in a shard that does not serve its keys.
func (s *Shard[M]) LookupOrCreate(id string, create func() M) (mb M, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.serving() {
		return mb, false
	}
	mb, found := s.m[id]
	if !found {
		mb = create()
		s.PutLocked(id, mb)
	}
	return mb, true
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
