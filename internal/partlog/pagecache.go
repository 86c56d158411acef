package partlog

import "github.com/gregor-streaming/gregor/internal/vfs"

// Page-cache advice: what a log releases behind its writers once
// durable (dropCached, after each sync) and prefetches ahead of readers
// that are far behind (prefetch, on each read). See KeepCached,
// Observers.CacheAdvice and docs/PERFORMANCE.md, "The page cache".

// DefaultCacheKeep is how many of the newest bytes of each partition's
// segments stay in the page cache once durable (Syncer.KeepCached).
const DefaultCacheKeep = 8 << 20

// DefaultCacheBudget is how many bytes the cache windows of all busy
// logs share (Syncer.CacheBudget).
const DefaultCacheBudget = 256 << 20

// dropCacheMin is the least a dropCached call releases (or the window,
// if smaller): fewer, larger calls.
const dropCacheMin = 4 << 20

// cacheWindowMin is the least window a log keeps however many logs share
// the budget.
const cacheWindowMin = 64 << 10

// KeepCached sets how many of the newest durable bytes of each log's
// segment files stay in the page cache; older durable pages are
// released after each sync. Negative: never release.
//
// Streaming writes fill the page cache with pages nothing reads again
// once consumers at the tail have read them. Taking a fresh page costs
// far more than reusing one that was just released (in a VM whose host
// reclaims the guest's free memory, several times more: see
// docs/PERFORMANCE.md), and leaving the kernel to evict them under
// memory pressure makes every allocation slower. Consumers further
// behind than the window read from disk, as they would from a broker
// whose data outgrew its memory.
func (s *Syncer) KeepCached(n int64) { s.cacheKeep.Store(n) }

// CacheBudget sets how many bytes the KeepCached windows of all busy
// logs share: with more logs synced in the last checkpoint interval
// than n/keep, each keeps n divided among them (at least 64 KiB).
// Negative: no budget, every log keeps the whole window.
//
// With thousands of busy partitions a window each would never fill, so
// nothing would be released and every write would take a fresh page.
func (s *Syncer) CacheBudget(n int64) { s.cacheBudget.Store(n) }

// cacheWindow is how many of l's newest durable bytes stay cached: the
// KeepCached window, or its share of the budget. DefaultCacheKeep for a
// log opened without a Syncer; negative: never release.
func (l *Log) cacheWindow() int64 {
	s := l.syncer
	if s == nil {
		return DefaultCacheKeep
	}
	keep, budget := s.cacheKeep.Load(), s.cacheBudget.Load()
	if keep <= cacheWindowMin || budget < 0 {
		return keep
	}
	busy := max(s.cacheBusy.Load(), s.cacheBusyNow.Load(), 1)
	return min(keep, max(budget/busy, cacheWindowMin))
}

// countBusy counts l among the logs busy this interval, once.
// Called with syncMu held.
func (l *Log) countBusy() {
	s := l.syncer
	if e := s.cacheEpoch.Load(); l.cacheEpoch != e {
		l.cacheEpoch = e
		s.cacheBusyNow.Add(1)
	}
}

// nextCacheEpoch starts another interval of counting busy logs
// (checkpointer). A log counted as the interval turns is counted twice,
// which only shrinks the windows a little for one interval.
func (s *Syncer) nextCacheEpoch() {
	s.cacheBusy.Store(s.cacheBusyNow.Swap(0))
	s.cacheEpoch.Add(1)
}

// pageSize is the page cache's unit on the platforms Gregor runs on:
// releases (dropCached) and write-behind (writeBehind) cover whole pages
// of it. Where pages are larger, a release skips a partial one, and a
// write-behind may start one early, which the sync writes again.
const pageSize = 4 << 10

// dropCached releases the cached pages of f, a segment file this log
// wrote, below size minus the Syncer's keep window; f's first size bytes
// were just made durable. final says f rolled and will not grow: what is
// due goes however little it is. Called with syncMu held.
func (l *Log) dropCached(f *rcFile, size int64, final bool) {
	if l.syncer == nil {
		return
	}
	l.countBusy()
	keep := l.cacheWindow()
	if keep < 0 {
		return
	}
	end := max(size-keep, 0) &^ (pageSize - 1)
	if end < f.dropped {
		f.dropped = end // truncated since: the rewritten pages are due again
	}
	if end-f.dropped < min(dropCacheMin, max(keep, cacheWindowMin)) && !(final && end > f.dropped) {
		return
	}
	_ = vfs.DropCache(f.f, f.dropped, end-f.dropped) // advice: nothing depends on it
	l.syncer.observeAdvice(true, end-f.dropped)
	f.dropped = end
}

// Prefetching: a reader more than the Syncer's cache window behind the
// end of the log is reading what is probably no longer cached, and the
// kernel's own readahead falls behind when several partitions are read
// in turn (8 files read round-robin 1 MiB at a time: 6 s for 2 GiB with
// readahead alone, 2.3 s with this). Such a read first asks for the
// next prefetchAhead bytes of its file (at most to the file's end),
// unless more than half of that was asked for already.
const (
	prefetchAhead = 8 << 20
	// prefetchMin: fewer bytes are left to the read itself.
	prefetchMin = 64 << 10
)

func (l *Log) prefetch(v *segView) {
	keep := l.cacheWindow()
	if keep < 0 || v.active && v.end-v.pos <= keep {
		return
	}
	from, to := v.pos, min(v.pos+prefetchAhead, v.end)
	if pf := v.f.prefetched.Load(); v.pos >= pf-2*prefetchAhead {
		// The window asked for last is this reader's (readers far
		// behind it are another's, and get their own).
		if v.pos < pf-prefetchAhead/2 {
			return
		}
		from = max(from, pf)
	}
	if to-from < prefetchMin {
		return
	}
	v.f.prefetched.Store(to)
	_ = vfs.Prefetch(v.f.f, from, to-from) // advice: nothing depends on it
	l.syncer.observeAdvice(false, to-from)
}
