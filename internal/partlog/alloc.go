package partlog

import "github.com/gregor-streaming/gregor/internal/vfs"

// Block allocation ahead of appends. A segment grown by appends gets its
// blocks when its pages are written back (delayed allocation), so every
// sync that covers new data also writes the allocation's metadata: on
// ext4, the block bitmap and group descriptor of the file's block group
// and the inode. Where one syncfs covers many partitions with a small
// append each (10,000 partitions, the sticky partitioner: ~28
// partitions of 62 KiB per request), those writes are most of the
// disk's: 44% of the block requests were 4 KiB metadata writes. So a
// writer allocates the blocks ahead of its appends with
// fallocate(FALLOC_FL_KEEP_SIZE) (vfs.Allocator), in steps of four times
// the segment's data, at least allocMinStep and at most the Syncer's
// AllocateAhead (log.allocate.ahead.bytes, 1 MiB by default): one
// allocation per step instead of one per sync. The space allocated past
// a segment's data is at most that (and 256 KiB for one that holds less
// than 64 KiB); Redpanda allocates in steps of 32 MiB. The size,
// and so everything that reads the log, is unchanged; a roll or a clean
// close truncates the segment to its data, which releases the rest,
// and after a crash the blocks stay past the end, unread, until the
// segment rolls or recovery truncates it. Logs that reserve space with
// zeros (prealloc.go) write into the reservation and never get here.
//
// Only where the file system has no journal (vfs.MetadataInPlace): there
// each sync writes those blocks in place, one by one. With a journal
// they go to the journal together with the inode, and blocks allocated
// ahead are converted from unwritten as their data lands, a journal
// update of its own: on a journaled ext4 the same workload was no
// faster, perhaps slower. docs/PERFORMANCE.md, stop 25, has the numbers.
const (
	allocMinStep = 256 << 10
	// allocAlign rounds the end of each allocation.
	allocAlign = 64 << 10
)

// allocateLocked allocates blocks past end, where an append that starts
// at off ends, up to maxStep bytes, unless they are allocated already.
// Errors (unsupported, no space) stop allocating for the writer: the
// append itself is what must succeed or fail. Called with w.res.mu
// held.
func (w *rcFile) allocateLocked(off, end, maxStep int64) {
	r := &w.res
	if r.allocOff || end <= r.allocEnd {
		return
	}
	step := min(max(4*end, allocMinStep), maxStep)
	from := max(r.allocEnd, off&^(pageSize-1))
	to := (end + step + allocAlign - 1) &^ (allocAlign - 1)
	if err := vfs.Allocate(w.f, from, to-from); err != nil {
		r.allocOff = true
		return
	}
	r.allocEnd = to
}

// AllocateAhead makes the logs of s allocate their active segments'
// blocks up to max bytes ahead of their appends (default
// DefaultAllocateAhead); 0 or less: not at all, the default of a new
// Syncer.
func (s *Syncer) AllocateAhead(max int64) { s.allocAhead.Store(max) }

// DefaultAllocateAhead is the largest step of the allocations ahead of
// appends.
const DefaultAllocateAhead = 1 << 20

// allocAhead is how far l's appends allocate ahead of themselves at
// most, 0 for not at all.
func (l *Log) allocAhead() int64 {
	if l.syncer == nil {
		return 0
	}
	return max(l.syncer.allocAhead.Load(), 0)
}
