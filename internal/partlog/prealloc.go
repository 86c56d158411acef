package partlog

import (
	"sync"
	"sync/atomic"

	"github.com/gregor-streaming/gregor/internal/vfs"
)

// Segment preallocation. On a file system with a journal (ext4, XFS), an
// fdatasync after an append that grew the file must commit the new size
// and block allocation to the journal, and that commit is most of a
// small durable append's latency: on ext4, 0.70-0.76 ms for 1 KiB
// against about 0.3 ms for the same write over zeros written and synced
// beforehand (docs/PERFORMANCE.md, "On a file system with a journal").
// So a log that syncs its own active segment keeps space reserved past
// the segment's data, and its appends are written at the data's end
// (WriteAt) instead of the file's.
//
// The space is reserved by writing zeros (vfs.OSFile.Preallocate says
// why not fallocate), so every reserved byte is written to the disk
// twice. That pays only where syncs are small: a log whose syncs cover
// more than preallocMaxSyncBytes on average (a throughput log) does not
// reserve, since there the extra write costs more than the commit it
// saves (one partition at full speed, ~1 MB a sync: 20% fewer records/s
// and 25% more CPU per GiB when it reserved). Only logs synced file by
// file reserve at all: where one syncfs covers many logs, or the journal
// acknowledges small appends, the segment's own fdatasync is not on the
// acknowledgement path. The reservation grows in steps of the segment's
// size, at least preallocMinData and at most preallocMaxStep, so idle
// and small logs reserve nothing and the space reserved is never more
// than the data the active segment holds. The zeros are written by the
// Syncer's reserver goroutine (reserveLoop), never by a sync an
// acknowledgement waits for.
//
// The zeros past the data must never be mistaken for data or damage:
// a roll trims the old segment to its data and makes the trim durable
// before the next segment's file exists, and a clean close trims before
// its sync and checkpoint. After a crash, recovery truncates the last
// segment at its first invalid batch header, which the zeros are.

const (
	// preallocMinData is the least an active segment must hold before
	// its log reserves space ahead of it.
	preallocMinData = 1 << 20
	// preallocMaxStep bounds the space reserved past the data.
	preallocMaxStep = 8 << 20
	// preallocMaxSyncBytes is the most a log's syncs may cover on
	// average for it to reserve.
	preallocMaxSyncBytes = 64 << 10
)

// reservation is the space reserved past an active segment writer's
// data. Its mutex is taken after Log.mu or syncMu, never before.
//
// Zeros must never land where data goes. The appender (under Log.mu)
// and a sync reserving space (under syncMu) run concurrently, so end
// orders them: an append that fits below end writes without mu; one
// that reaches past it, a reservation (which writes zeros from the
// file's end on), and a truncation of the writer take mu.
type reservation struct {
	mu sync.Mutex
	// end is at most the file's size: the end of the data written
	// through the writer or of the zeros reserved past it, whichever is
	// further (0 until the first append or reservation).
	end atomic.Int64
	// off stops reserving: the segment rolled or closed, or reserving
	// failed once (unsupported, or no space).
	off bool
	// synced is the data size the last sync covered (valid once seen);
	// perSync a moving average of the bytes each later sync added (0
	// before the first).
	synced, perSync int64
	seen            bool
	// busy is set while the Syncer's reserver has a job for the writer.
	busy bool
	// allocEnd is where the blocks allocated ahead of the appends end
	// (alloc.go); allocOff stops allocating.
	allocEnd int64
	allocOff bool
}

// createWriter creates (or empties) a segment file for appending at the
// data's end.
func createWriter(fs vfs.FS, name string) (vfs.File, error) {
	f, err := fs.OpenWrite(name)
	if err != nil {
		return nil, err
	}
	if err := f.Truncate(0); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// reserveAhead reserves space past the data of the active segment this
// file-by-file sync covers, so that the appends of the next syncs do
// not grow the file. Called with the log's syncMu held, before the
// sync's fdatasync.
//
// With a Syncer the zeros are written by its reserver (reserveLoop),
// not here: a sync that wrote them before its fdatasync carried the
// step's megabytes to the disk while every acknowledgement behind it
// waited (2.5 such syncs a second of 3-5 ms each at 10k records/s of
// 1 KiB, most of the e2e p999). Without one (Log.Sync on a log of its
// own) they are written here and this sync commits them.
func (p *syncPrep) reserveAhead() {
	size := p.size
	r := &p.w.res
	r.mu.Lock()
	defer r.mu.Unlock()
	if d := size - r.synced; r.seen && d > 0 {
		if r.perSync == 0 {
			r.perSync = d
		}
		r.perSync += (d - r.perSync) / 8
	}
	// The first sync of a writer may cover data written before it was
	// opened (a segment reopened after a restart): not a sync's worth.
	r.synced, r.seen = size, true
	step := min(size, preallocMaxStep)
	end := r.end.Load()
	if size < preallocMinData || r.perSync > preallocMaxSyncBytes || r.off || r.busy || end-size >= step/2 {
		return
	}
	if _, ok := p.w.f.(vfs.Preallocator); !ok {
		return
	}
	target := min(size+step, p.limit)
	if target <= max(end, size) {
		return
	}
	if s := p.l.syncer; s != nil {
		r.busy = true
		p.w.acquire() // the prep's reference keeps it open meanwhile
		if !s.queueReserve(reserveJob{l: p.l, w: p.w, target: target}) {
			r.busy = false
			p.w.release()
		}
		return
	}
	p.w.reserveLocked(p.l, target, nil)
}

// reserveLocked writes zeros from the file's end to target in pieces of
// reserveChunk, moving end after each. With stop non-nil (the reserver)
// it writes each piece to the disk before the next, letting go of r.mu
// meanwhile, and ends early when stop closes. It also ends when the
// segment is sealed (off) or reserving fails, which turns reserving off
// for the segment. Called with r.mu held; returns with it held.
func (w *rcFile) reserveLocked(l *Log, target int64, stop <-chan struct{}) {
	r := &w.res
	pa := w.f.(vfs.Preallocator)
	for {
		if r.off || stopped(stop) {
			return
		}
		from := r.end.Load()
		if from >= target {
			return
		}
		to := min(from+reserveChunk, target)
		// Appends past end wait for mu: the zeros go only where no
		// data is.
		if err := pa.Preallocate(to); err != nil {
			// The file may have grown partly: let the seal trim it.
			r.end.Store(to)
			r.off = true
			l.logger.Debug("partlog: not reserving space ahead of the active segment", "dir", l.dir, "err", err)
			return
		}
		r.end.Store(to)
		l.syncer.observePrealloc(to - from)
		if stop == nil {
			continue
		}
		r.mu.Unlock()
		err := vfs.WriteBack(w.f, from, to-from)
		r.mu.Lock()
		if err != nil {
			// The next fdatasync reports it too (and writes the
			// pieces itself); only stop reserving.
			r.off = true
			l.logger.Debug("partlog: not reserving space ahead of the active segment", "dir", l.dir, "err", err)
			return
		}
	}
}

// reserveChunk is how much of a reservation the reserver writes at a
// time, and so the most written-back zeros a concurrent sync of the
// segment can find in flight and wait for.
const reserveChunk = 256 << 10

// reserveJob is a reservation for the Syncer's reserver: zeros up to
// target past the data of w, the active segment writer of l. It holds a
// reference to w.
type reserveJob struct {
	l      *Log
	w      *rcFile
	target int64
}

// queueReserve hands j to the reserver; false once the Syncer stopped.
func (s *Syncer) queueReserve(j reserveJob) bool {
	s.resMu.Lock()
	defer s.resMu.Unlock()
	if s.resStopped {
		return false
	}
	s.resJobs = append(s.resJobs, j)
	select {
	case s.resWake <- struct{}{}:
	default:
	}
	return true
}

// reserveLoop writes the reservations the syncs queue, one at a time:
// zeros through the page cache, each piece written back before the
// next, so that no sync of the segment finds more than a piece in
// flight, and nothing it must write but the new size. Each piece is
// visible to appends (end) as soon as it is written, so an append that
// catches up with the reserver writes into zeros that may still be
// dirty, which is correct, only no faster.
func (s *Syncer) reserveLoop() {
	defer s.wg.Done()
	for {
		select {
		case <-s.stop:
			s.resMu.Lock()
			jobs := s.resJobs
			s.resJobs, s.resStopped = nil, true
			s.resMu.Unlock()
			for _, j := range jobs {
				j.done()
			}
			return
		case <-s.resWake:
		}
		for {
			s.resMu.Lock()
			if len(s.resJobs) == 0 {
				s.resMu.Unlock()
				break
			}
			j := s.resJobs[0]
			s.resJobs = s.resJobs[1:]
			s.resMu.Unlock()
			r := &j.w.res
			r.mu.Lock()
			j.w.reserveLocked(j.l, j.target, s.stop)
			r.mu.Unlock()
			j.done()
		}
	}
}

// stopped reports whether stop (nil: never) is closed.
func stopped(stop <-chan struct{}) bool {
	select {
	case <-stop:
		return true
	default:
		return false
	}
}

// done ends j: its writer may be reserved for again.
func (j reserveJob) done() {
	r := &j.w.res
	r.mu.Lock()
	r.busy = false
	r.mu.Unlock()
	j.w.release()
}

// writeData writes b at off, the data's end, in w's file (see
// reservation), allocating blocks up to allocAhead bytes past it
// (alloc.go; 0: none).
func (w *rcFile) writeData(b []byte, off, allocAhead int64) (int, error) {
	r := &w.res
	if off+int64(len(b)) <= r.end.Load() {
		return w.f.WriteAt(b, off) // into reserved space
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if allocAhead > 0 {
		w.allocateLocked(off, off+int64(len(b)), allocAhead)
	}
	n, err := w.f.WriteAt(b, off)
	if e := off + int64(n); e > r.end.Load() {
		r.end.Store(e)
	}
	return n, err
}

// truncateData truncates w's file to size (its data, or less), dropping
// any reservation with the bytes past it.
func (w *rcFile) truncateData(size int64) error {
	w.res.mu.Lock()
	defer w.res.mu.Unlock()
	return w.truncateResLocked(size)
}

// truncateResLocked truncates w's file to size and moves the reserved
// end there. The caller holds w.res.mu.
func (w *rcFile) truncateResLocked(size int64) error {
	if err := w.f.Truncate(size); err != nil {
		return err
	}
	w.res.end.Store(size)
	w.res.allocEnd = size // the blocks past the size went with it
	return nil
}

// seal stops reserving space for w and trims it to size, its data, if
// anything was reserved; sync makes the trim durable. Called with the
// log's mu held.
func (w *rcFile) seal(size int64, sync bool) error {
	r := &w.res
	r.mu.Lock()
	defer r.mu.Unlock()
	r.off, r.allocOff = true, true
	if r.end.Load() <= size {
		if r.allocEnd > size {
			// Blocks allocated ahead and not written: release them. Not
			// a matter of durability (a crash leaves them past the
			// end, unread), so no sync.
			_ = w.truncateResLocked(size)
		}
		return nil
	}
	if err := w.truncateResLocked(size); err != nil {
		return err
	}
	if sync {
		return w.f.Sync()
	}
	return nil
}
