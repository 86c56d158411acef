package coord

import (
	"sync/atomic"
	"time"
)

// Shards is a coordinator's partitions, S being its shard type, from
// Start on. Start is called once, under the coordinator's mu.
type Shards[S interface{ Loaded() bool }] struct {
	p atomic.Pointer[shardSet[S]]
}

// shardSet is what Start publishes. Immutable.
type shardSet[S any] struct {
	shards []S
	// loaded is closed once every loader finished: each partition is
	// loaded, or loading stopped for shutdown.
	loaded chan struct{}
}

// Load returns the partitions by index; nil before Start.
func (s *Shards[S]) Load() []S {
	if set := s.p.Load(); set != nil {
		return set.shards
	}
	return nil
}

// Start publishes shards and loads each in the background with load,
// holding b's count while it does. Shards already started are kept.
func (s *Shards[S]) Start(b *Busy, shards []S, load func(S)) {
	if s.p.Load() != nil || len(shards) == 0 {
		return
	}
	set := &shardSet[S]{shards: shards, loaded: make(chan struct{})}
	s.p.Store(set)
	// A few loaders: replay is I/O and decoding, and a broker with
	// many keys should serve the first partitions early.
	n := int32(len(shards))
	var next atomic.Int32
	loaders := min(int(n), 4)
	var running atomic.Int32
	running.Store(int32(loaders))
	for range loaders {
		b.Acquire()
		go func() {
			defer b.Release()
			defer func() {
				if running.Add(-1) == 0 {
					close(set.loaded)
				}
			}()
			for {
				i := next.Add(1) - 1
				if i >= n {
					return
				}
				if shards[i].Loaded() {
					continue // another broker's (Shard.SetForeign)
				}
				load(shards[i])
			}
		}()
	}
}

// WaitLoaded waits until every partition is loaded, up to timeout; it
// reports whether they are (false before Start, and when loading
// stopped for shutdown).
func (s *Shards[S]) WaitLoaded(timeout time.Duration) bool {
	set := s.p.Load()
	if set == nil {
		return false
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-set.loaded:
	case <-t.C:
		return false
	}
	for _, sh := range set.shards {
		if !sh.Loaded() {
			return false
		}
	}
	return true
}

// Retry calls try until it succeeds, or fails once stop reports true,
// sleeping between attempts from 100ms, doubling up to 5s: a partition
// that failed to load is replayed again until shutdown.
func Retry(stop func() bool, try func() error) {
	backoff := 100 * time.Millisecond
	for try() != nil {
		if stop() {
			return
		}
		time.Sleep(backoff)
		backoff = min(2*backoff, 5*time.Second)
	}
}
