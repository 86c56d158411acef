package partlog

import "time"

// Observers receive what a Syncer's logs do, for metrics and slow-disk
// logging. Each runs on the goroutine doing the work, outside every log
// lock, and must be quick; a nil one is skipped.
type Observers struct {
	// Sync receives the duration of every fsync of the logs' files (one
	// call per group commit, however many appends share it).
	Sync func(time.Duration)
	// CacheAdvice receives the page-cache advice the logs give
	// (KeepCached): bytes released behind the writers when drop is set,
	// bytes prefetched for readers otherwise.
	CacheAdvice func(drop bool, n int64)
	// Preallocated receives the bytes of zeros the logs write past their
	// active segments' data (prealloc.go).
	Preallocated func(n int64)
}

// Observe installs o, replacing the observers installed before.
func (s *Syncer) Observe(o Observers) { s.obs.Store(&o) }

// noObservers is what a Syncer without observers, or a log opened
// without a Syncer, reports to.
var noObservers Observers

func (s *Syncer) observers() *Observers {
	if s != nil {
		if o := s.obs.Load(); o != nil {
			return o
		}
	}
	return &noObservers
}

// observeSync reports an fsync that began at start.
func (s *Syncer) observeSync(start time.Time) {
	if fn := s.observers().Sync; fn != nil {
		fn(time.Since(start))
	}
}

func (s *Syncer) observeAdvice(drop bool, n int64) {
	if fn := s.observers().CacheAdvice; fn != nil {
		fn(drop, n)
	}
}

func (s *Syncer) observePrealloc(n int64) {
	if fn := s.observers().Preallocated; fn != nil {
		fn(n)
	}
}
