package partlog

import (
	"math"
	"slices"
	"sync"

	"github.com/gregor-streaming/gregor/internal/vfs"
)

// Page-cache advice: what a log releases behind its writers once
// durable (dropCached, after each sync) and prefetches ahead of readers
// that are far behind (prefetch, on each read). See KeepCached,
// Observers.CacheAdvice and docs/PERFORMANCE.md, "The page cache".

// DefaultCacheKeep is the default per-log cap on the page-cache window
// (Syncer.KeepCached): none, the budget alone sets the windows.
const DefaultCacheKeep = -1

// AutoCacheBudget is the default budget the windows of all busy logs
// share (Syncer.CacheBudget): half of the memory this process may use
// (vfs.MemoryLimit: the machine's, or its cgroup's limit), so consumers
// catching up on what the machine could hold read it from memory, as
// from Kafka, while the broker recycles its own oldest pages before the
// kernel would have to reclaim. -1 (no budget, nothing released) where
// the memory is unknown.
var AutoCacheBudget = sync.OnceValue(func() int64 {
	if m := vfs.MemoryLimit(); m > 0 {
		return m / 2
	}
	return -1
})

// dropCacheMin is the least a dropCached call releases (or the window,
// if smaller): fewer, larger calls.
const dropCacheMin = 4 << 20

// cacheWindowMin is the least window a log keeps however many logs share
// the budget.
const cacheWindowMin = 64 << 10

// KeepCached caps how many of the newest durable bytes of each log's
// segment files stay in the page cache; older durable pages are
// released after each sync. Negative: no cap of its own, the budget
// alone sets the window (CacheBudget); with no budget either, nothing
// is released, as Kafka leaves the page cache to the kernel.
//
// Streaming writes fill the page cache with pages nothing reads again
// once consumers have read them. Taking a fresh page costs far more
// than reusing one that was just released (in a VM whose host reclaims
// the guest's free memory, several times more: see docs/PERFORMANCE.md),
// and leaving the kernel to evict them under memory pressure makes every
// allocation slower. Consumers further behind than the window read from
// disk, as they would from a broker whose data outgrew its memory.
func (s *Syncer) KeepCached(n int64) { s.cacheKeep.Store(n) }

// CacheBudget sets how many bytes the page-cache windows of all busy
// logs share: each log synced in the last checkpoint interval keeps n
// divided among them (at least 64 KiB), or its KeepCached cap if that
// is smaller. 0: AutoCacheBudget. Negative: no budget, each log keeps
// its KeepCached window.
//
// With thousands of busy partitions a window each would never fill, so
// nothing would be released and every write would take a fresh page.
func (s *Syncer) CacheBudget(n int64) {
	if n == 0 {
		n = AutoCacheBudget()
	}
	s.cacheBudget.Store(n)
}

// cacheWindow is how many of l's newest durable bytes stay cached: its
// share of the budget, at most the KeepCached cap. Negative: never
// release (no cap and no budget, or a log opened without a Syncer).
func (l *Log) cacheWindow() int64 {
	s := l.syncer
	if s == nil {
		return -1
	}
	keep, budget := s.cacheKeep.Load(), s.cacheBudget.Load()
	if keep >= 0 && keep <= cacheWindowMin || budget < 0 {
		return keep
	}
	busy := max(s.cacheBusy.Load(), s.cacheBusyNow.Load(), 1)
	share := max(budget/busy, cacheWindowMin)
	if keep < 0 {
		return share
	}
	return min(keep, share)
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
// wrote, that fell out of the log's cache window: below size minus the
// window, where f's first size bytes were just made durable, and of
// the log's rolled segments (cacheTail) what lies further back than
// the window. rolled is f's segment when it rolled and will not grow:
// what is due goes however little it is, and what is not yet due waits
// in cacheTail for later syncs. Called with syncMu held.
func (l *Log) dropCached(f *rcFile, size int64, rolled *segment) {
	if l.syncer == nil {
		return
	}
	l.countBusy()
	keep := l.cacheWindow()
	if keep < 0 {
		return
	}
	if gen := l.readGen(); gen != l.cacheTailGen {
		// Truncated or compacted since: the files behind may be others.
		for _, c := range l.cacheTail {
			c.seg.cacheFrom.Store(math.MaxInt64)
		}
		l.cacheTail, l.cacheTailGen = nil, gen
	}
	step := min(dropCacheMin, max(keep, cacheWindowMin))
	end := max(size-keep, 0) &^ (pageSize - 1)
	if end < f.dropped {
		f.dropped = end // truncated since: the rewritten pages are due again
	}
	if end-f.dropped >= step || rolled != nil && end > f.dropped {
		l.release(f.f, f.dropped, end)
		f.dropped = end
	}
	if rolled != nil {
		if f.dropped < size&^(pageSize-1) {
			rolled.cacheFrom.Store(f.dropped)
			l.cacheTail = append(l.cacheTail, cachedSeg{seg: rolled, size: size})
		} else {
			rolled.cacheFrom.Store(math.MaxInt64) // released whole
		}
		return
	}
	l.dropTail(keep-size, step)
}

// releaseAlign: the page cache holds a file's pages in folios of up to
// 2 MiB (large folios, aligned to their size), and POSIX_FADV_DONTNEED
// drops only the folios wholly inside its range. When each release
// began where the last one ended, the folio across that boundary stayed
// cached for good: 8% of 1 KiB records produced to 8 partitions, in runs
// of 64-512 KiB at every 4 MiB release (Linux 6.18, ext4). A release
// therefore starts at the previous one's end rounded down to this.
const releaseAlign = 2 << 20

// release drops f's cached pages in [from, to), where from is where
// the previous release ended: from releaseAlign before it.
func (l *Log) release(f vfs.File, from, to int64) {
	start := from &^ (releaseAlign - 1)
	_ = vfs.DropCache(f, start, to-start) // advice: nothing depends on it
	l.syncer.observeAdvice(true, to-from)
}

// cachedSeg is a rolled segment of size bytes of which the log's cache
// window still holds pages, from seg.cacheFrom on.
type cachedSeg struct {
	seg  *segment
	size int64
}

// maxCachedSegs bounds a log's cacheTail: with windows over more
// segments than this (small segments), the oldest are released whole.
const maxCachedSegs = 256

// dropTail releases what of the rolled segments in cacheTail lies
// further back than left, the part of the window behind the active
// segment, newest first, and forgets the segments released whole.
// Called with syncMu held.
func (l *Log) dropTail(left, step int64) {
	for i := len(l.cacheTail) - 1; i >= 0; i-- {
		c := l.cacheTail[i]
		whole := c.size &^ (pageSize - 1)
		end := whole
		if i >= len(l.cacheTail)-maxCachedSegs {
			end = max(c.size-max(left, 0), 0) &^ (pageSize - 1)
		}
		left -= c.size
		if dropped := c.seg.cacheFrom.Load(); end-dropped >= step || end == whole && end > dropped {
			if fh, err := l.fs.Open(c.seg.logName); err == nil { // gone: deleted, pages with it
				l.release(fh, dropped, end)
				_ = fh.Close()
			}
			c.seg.cacheFrom.Store(end)
		}
	}
	n := 0
	for n < len(l.cacheTail) && l.cacheTail[n].seg.cacheFrom.Load() >= l.cacheTail[n].size&^(pageSize-1) {
		l.cacheTail[n].seg.cacheFrom.Store(math.MaxInt64)
		n++
	}
	if n > 0 {
		l.cacheTail = slices.Delete(l.cacheTail, 0, n)
	}
}

// Prefetching: a reader more than the cache window behind the end of
// the log is reading what is probably no longer cached (in the active
// segment: further from its end than the window; in a closed one: below
// its cacheFrom), and the
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
	if keep < 0 || v.active && v.end-v.pos <= keep || !v.active && v.pos >= v.seg.cacheFrom.Load() {
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
