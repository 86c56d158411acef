package partlog

import "time"

// ObserveSyncs makes the Syncer report the duration of every fsync of its
// logs' files (one call per group commit, however many appends share
// it) to fn, for latency metrics and slow-disk logging. fn runs on the
// syncing goroutine, outside every log lock; it must be quick.
func (s *Syncer) ObserveSyncs(fn func(time.Duration)) {
	s.observer.Store(&fn)
}

// ObserveCacheAdvice makes the Syncer report the page-cache advice its
// logs give (KeepCached): bytes released behind the writers when drop
// is set, bytes prefetched for readers otherwise. fn must be quick.
func (s *Syncer) ObserveCacheAdvice(fn func(drop bool, n int64)) {
	s.adviceObserver.Store(&fn)
}

// ObservePreallocation makes the Syncer report the bytes of zeros its
// logs write past their active segments' data (prealloc.go) to fn. fn
// must be quick.
func (s *Syncer) ObservePreallocation(fn func(n int64)) {
	s.preallocObserver.Store(&fn)
}

func (s *Syncer) observePrealloc(n int64) {
	if s == nil {
		return
	}
	if fn := s.preallocObserver.Load(); fn != nil {
		(*fn)(n)
	}
}

func (s *Syncer) observeAdvice(drop bool, n int64) {
	if s == nil {
		return
	}
	if fn := s.adviceObserver.Load(); fn != nil {
		(*fn)(drop, n)
	}
}

// observeSync reports an fsync that began at start. A nil Syncer (a log
// opened without one) reports nothing.
func (s *Syncer) observeSync(start time.Time) {
	if s == nil {
		return
	}
	if fn := s.observer.Load(); fn != nil {
		(*fn)(time.Since(start))
	}
}
