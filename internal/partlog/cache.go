package partlog

import (
	"sync"
	"sync/atomic"

	"github.com/gregor-streaming/gregor/internal/vfs"
)

// DefaultOpenSegmentFiles bounds the package-wide cache of open read
// handles of segment files (.log and .index of closed segments and the
// .index of active ones). Active segments' .log writers are not counted:
// each Log keeps exactly one open for appends.
const DefaultOpenSegmentFiles = 1000

// files is the package-wide LRU of open segment read handles, shared by
// every Log so that 10,000 partitions need not keep 30,000 files open.
var files = newFileCache(DefaultOpenSegmentFiles)

// SetOpenSegmentFiles changes the bound of the package-wide cache of open
// segment read handles (two files per cached segment at most). n < 1
// means 1.
func SetOpenSegmentFiles(n int) {
	if n < 1 {
		n = 1
	}
	files.mu.Lock()
	files.max = n
	victims := files.evictLocked(nil)
	files.mu.Unlock()
	releaseAll(victims)
}

// rcFile is a reference-counted open file: it is closed when the last
// reference is released, so a reader can keep using a handle that the
// cache evicted or a retention delete dropped meanwhile.
type rcFile struct {
	f    vfs.File
	refs atomic.Int32
	// dropped is, for a segment file a Log wrote, the position below
	// which its cached pages were released (dropCached). Guarded by the
	// writing Log's syncMu.
	dropped int64
	// prefetched is the end of the range last prefetched for readers.
	prefetched atomic.Int64
	// res is the space reserved past the data of an active segment's
	// writer (prealloc.go).
	res reservation
}

func newRCFile(f vfs.File, refs int32) *rcFile {
	r := &rcFile{f: f}
	r.refs.Store(refs)
	return r
}

func (r *rcFile) acquire() { r.refs.Add(1) }

func (r *rcFile) release() {
	if r.refs.Add(-1) == 0 {
		_ = r.f.Close() // read handles or already-synced writers: nothing to lose
	}
}

func releaseAll(rs []*rcFile) {
	for _, r := range rs {
		r.release()
	}
}

// cacheKind selects one of a segment's cached files.
type cacheKind int

const (
	cacheLog cacheKind = iota
	cacheIndex
)

// fileCache is an LRU of segments with open read handles. Its mutex is a
// leaf: it is never held during I/O and nothing else is locked under it.
type fileCache struct {
	mu         sync.Mutex
	max        int
	n          int
	head, tail *segment // most / least recently used
}

func newFileCache(max int) *fileCache { return &fileCache{max: max} }

func (c *fileCache) slot(s *segment, k cacheKind) **rcFile {
	if k == cacheLog {
		return &s.cLog
	}
	return &s.cIdx
}

// get returns an acquired handle of s's file of kind k, opening it with
// open on a miss. The caller releases it.
func (c *fileCache) get(s *segment, k cacheKind, open func() (vfs.File, error)) (*rcFile, error) {
	c.mu.Lock()
	if r := *c.slot(s, k); r != nil {
		r.acquire()
		c.touchLocked(s)
		c.mu.Unlock()
		return r, nil
	}
	c.mu.Unlock()

	f, err := open()
	if err != nil {
		return nil, err
	}
	r := newRCFile(f, 2) // the cache's reference and the caller's

	c.mu.Lock()
	if s.cDead {
		c.mu.Unlock()
		r.refs.Store(1)
		return r, nil
	}
	if old := *c.slot(s, k); old != nil { // lost a race with another opener
		old.acquire()
		c.touchLocked(s)
		c.mu.Unlock()
		_ = f.Close()
		return old, nil
	}
	*c.slot(s, k) = r
	c.touchLocked(s)
	victims := c.evictLocked(s)
	c.mu.Unlock()
	releaseAll(victims)
	return r, nil
}

// adopt hands r (with one reference owned by the caller) to the cache as
// s's log handle, as when the active segment rolls and its writer becomes
// a reader.
func (c *fileCache) adopt(s *segment, r *rcFile) {
	c.mu.Lock()
	if s.cDead || s.cLog != nil {
		c.mu.Unlock()
		r.release()
		return
	}
	s.cLog = r
	c.touchLocked(s)
	victims := c.evictLocked(s)
	c.mu.Unlock()
	releaseAll(victims)
}

// drop closes s's cached handle of kind k (after the file was replaced).
func (c *fileCache) drop(s *segment, k cacheKind) {
	c.mu.Lock()
	p := c.slot(s, k)
	r := *p
	*p = nil
	if s.cLog == nil && s.cIdx == nil && s.cIn {
		c.unlinkLocked(s)
	}
	c.mu.Unlock()
	if r != nil {
		r.release()
	}
}

// remove drops s for good: its handles are released and it is never
// cached again (the segment was deleted or its Log closed).
func (c *fileCache) remove(s *segment) {
	c.mu.Lock()
	s.cDead = true
	rl, ri := s.cLog, s.cIdx
	s.cLog, s.cIdx = nil, nil
	if s.cIn {
		c.unlinkLocked(s)
	}
	c.mu.Unlock()
	if rl != nil {
		rl.release()
	}
	if ri != nil {
		ri.release()
	}
}

func (c *fileCache) touchLocked(s *segment) {
	if s.cIn {
		if c.head == s {
			return
		}
		c.unlinkLocked(s)
	}
	s.cIn = true
	s.cPrev = nil
	s.cNext = c.head
	if c.head != nil {
		c.head.cPrev = s
	}
	c.head = s
	if c.tail == nil {
		c.tail = s
	}
	c.n++
}

func (c *fileCache) unlinkLocked(s *segment) {
	if s.cPrev != nil {
		s.cPrev.cNext = s.cNext
	} else {
		c.head = s.cNext
	}
	if s.cNext != nil {
		s.cNext.cPrev = s.cPrev
	} else {
		c.tail = s.cPrev
	}
	s.cPrev, s.cNext = nil, nil
	s.cIn = false
	c.n--
}

// evictLocked unlinks least recently used segments (never keep) until the
// cache is within its bound and returns their handles for release outside
// the lock.
func (c *fileCache) evictLocked(keep *segment) []*rcFile {
	var victims []*rcFile
	for c.n > c.max && c.tail != nil && c.tail != keep {
		s := c.tail
		c.unlinkLocked(s)
		if s.cLog != nil {
			victims = append(victims, s.cLog)
		}
		if s.cIdx != nil {
			victims = append(victims, s.cIdx)
		}
		s.cLog, s.cIdx = nil, nil
	}
	return victims
}
