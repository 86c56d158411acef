package coord

import (
	"sync"
	"sync/atomic"
	"time"
)

// Shards is a coordinator's partitions, S being its shard type, from
// Start on. Start is called once, under the coordinator's mu.
type Shards[S interface{ Loaded() bool }] struct {
	p atomic.Pointer[shardSet[S]]
}

// shardSet is what Start publishes. shards is immutable.
type shardSet[S any] struct {
	shards []S
	// mu guards running and changed.
	mu sync.Mutex
	// running counts the loaders at work: Start's, and Reload's.
	running int
	// changed is closed, and replaced, whenever a loader finishes, for
	// WaitLoaded.
	changed chan struct{}
}

// finish ends one loader.
func (set *shardSet[S]) finish() {
	set.mu.Lock()
	set.running--
	close(set.changed)
	set.changed = make(chan struct{})
	set.mu.Unlock()
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
	// A few loaders: replay is I/O and decoding, and a broker with
	// many keys should serve the first partitions early.
	n := int32(len(shards))
	loaders := min(int(n), 4)
	set := &shardSet[S]{shards: shards, running: loaders, changed: make(chan struct{})}
	s.p.Store(set)
	var next atomic.Int32
	for range loaders {
		b.Acquire()
		go func() {
			defer b.Release()
			defer set.finish()
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

// Reload loads sh again in the background with load, holding b's count
// while it does: this broker was elected leader of its partition after
// Start (Shard.ElectLocked). Nothing happens before Start.
func (s *Shards[S]) Reload(b *Busy, sh S, load func(S)) {
	set := s.p.Load()
	if set == nil {
		return
	}
	set.mu.Lock()
	set.running++
	set.mu.Unlock()
	b.Acquire()
	go func() {
		defer b.Release()
		defer set.finish()
		load(sh)
	}()
}

// WaitLoaded waits until every partition is loaded, up to timeout; it
// reports whether they are (false before Start, and when no loader is
// left to load one: loading stopped for shutdown).
func (s *Shards[S]) WaitLoaded(timeout time.Duration) bool {
	set := s.p.Load()
	if set == nil {
		return false
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		// The loaders are counted before the shards are looked at: a
		// loader that finishes in between has closed changed.
		set.mu.Lock()
		running, changed := set.running, set.changed
		set.mu.Unlock()
		all := true
		for _, sh := range set.shards {
			if !sh.Loaded() {
				all = false
				break
			}
		}
		switch {
		case all:
			return true
		case running == 0:
			return false
		}
		select {
		case <-changed:
		case <-t.C:
			return false
		}
	}
}

// Retry calls try until it succeeds, or fails once stop reports true,
// sleeping between attempts from 100ms, doubling up to 5s: a partition
// that failed to load is replayed again until shutdown (or until its
// leadership changed).
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
