package partlog

import "time"

// ObserveSyncs makes the Syncer report the duration of every fsync of its
// logs' files (one call per group commit, however many appends share
// it) to fn, for latency metrics and slow-disk logging. fn runs on the
// syncing goroutine, outside every log lock; it must be quick.
func (s *Syncer) ObserveSyncs(fn func(time.Duration)) {
	s.observer.Store(&fn)
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
