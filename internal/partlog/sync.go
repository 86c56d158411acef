package partlog

import (
	"sync"
	"sync/atomic"
	"time"
)

// DefaultCheckpointInterval is how often a Syncer writes the checkpoints
// of logs whose recovery point, high watermark or log start offset
// changed. A stale recovery point only costs a longer recovery scan; a
// stale high watermark is recomputed by replication.
const DefaultCheckpointInterval = 5 * time.Second

// Syncer is a small pool of goroutines shared by all logs that runs their
// fsyncs (group commit: every RequestSync that arrives before a sync
// starts shares it) and writes their lazy checkpoints, so 10,000
// partitions do not need 10,000 goroutines.
type Syncer struct {
	mu     sync.Mutex
	cond   sync.Cond
	queue  []*Log // logs with pending sync requests, FIFO from head
	head   int
	dirty  []*Log // logs whose checkpoint is stale
	closed bool

	interval time.Duration
	stop     chan struct{}
	// observer receives fsync durations (observe.go); nil = none.
	observer atomic.Pointer[func(time.Duration)]
	wg       sync.WaitGroup
}

// NewSyncer starts a Syncer with the given number of fsync workers (at
// least 1) and a checkpoint writer.
func NewSyncer(workers int) *Syncer {
	return newSyncer(workers, DefaultCheckpointInterval)
}

func newSyncer(workers int, interval time.Duration) *Syncer {
	s := &Syncer{interval: interval, stop: make(chan struct{})}
	s.cond.L = &s.mu
	workers = max(workers, 1)
	s.wg.Add(workers + 1)
	for range workers {
		go s.worker()
	}
	go s.checkpointer()
	return s
}

// Close stops the Syncer after serving the logs already queued, and
// waits for its goroutines. Later RequestSync calls fail with
// ErrNoSyncer.
func (s *Syncer) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.cond.Broadcast()
	s.mu.Unlock()
	close(s.stop)
	s.wg.Wait()
}

// enqueue adds l to the sync queue; false if the Syncer is closed.
func (s *Syncer) enqueue(l *Log) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.queue = append(s.queue, l)
	s.cond.Signal()
	return true
}

// addDirty lists l for the next checkpoint round; false if closed.
func (s *Syncer) addDirty(l *Log) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.dirty = append(s.dirty, l)
	return true
}

func (s *Syncer) worker() {
	defer s.wg.Done()
	for {
		s.mu.Lock()
		for s.head == len(s.queue) && !s.closed {
			s.cond.Wait()
		}
		if s.head == len(s.queue) {
			s.mu.Unlock()
			return
		}
		l := s.queue[s.head]
		s.queue[s.head] = nil
		s.head++
		if s.head == len(s.queue) {
			s.queue, s.head = s.queue[:0], 0
		}
		s.mu.Unlock()
		l.serviceSync()
	}
}

func (s *Syncer) checkpointer() {
	defer s.wg.Done()
	t := time.NewTicker(s.interval)
	defer t.Stop()
	var batch []*Log
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		s.mu.Lock()
		batch, s.dirty = s.dirty, batch[:0]
		s.mu.Unlock()
		for i, l := range batch {
			l.checkpointIfDirty()
			batch[i] = nil
		}
	}
}

// checkpointIfDirty writes the checkpoint if it is stale (checkpointer).
func (l *Log) checkpointIfDirty() {
	l.mu.Lock()
	l.ckptListed = false
	dirty := l.ckptDirty && !l.closed
	l.mu.Unlock()
	if !dirty {
		return
	}
	if err := l.writeCheckpoint(); err != nil && err != ErrClosed {
		l.logger.Error("partlog: checkpoint", "err", err)
	}
}

// RequestSync asks that everything appended so far be fsynced. done is
// called exactly once from a Syncer goroutine, never the caller's and
// never under the log's lock: with the recovery point once every offset
// below the log end offset at request time is durable, or with an error
// (ErrClosed when the log closes first). Requests that arrive before a
// sync starts share it; one arriving during a sync is served by the next.
func (l *Log) RequestSync(done func(durableOffset int64, err error)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.waiters = append(l.waiters, done)
	l.enqueueLocked()
}

// enqueueLocked puts the log on its Syncer's queue unless it is there.
func (l *Log) enqueueLocked() {
	if l.queued || len(l.waiters) == 0 {
		return
	}
	if l.syncer != nil && l.syncer.enqueue(l) {
		l.queued = true
		return
	}
	// No Syncer to run the callbacks: hand them to a goroutine of their
	// own, which only calls them (the caller must not run them).
	ws, rp := l.waiters, l.recoveryPoint
	l.waiters = nil
	err := ErrNoSyncer
	if l.closed {
		err = ErrClosed
	}
	go callWaiters(ws, rp, err)
}

func callWaiters(ws []func(int64, error), off int64, err error) {
	for _, w := range ws {
		w(off, err)
	}
}

// failWaitersAsync makes a Syncer goroutine fail the pending callbacks of
// a closed log.
func (l *Log) failWaitersAsync() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.enqueueLocked()
}

// serviceSync runs on a Syncer worker for a queued log.
func (l *Log) serviceSync() {
	l.mu.Lock()
	l.queued = false
	if l.closed {
		ws, rp := l.waiters, l.recoveryPoint
		l.waiters = nil
		l.mu.Unlock()
		callWaiters(ws, rp, ErrClosed)
		return
	}
	l.mu.Unlock()
	if !l.syncMu.TryLock() {
		// A sync is running (another worker, Sync or Close); it requeues
		// the log after it releases syncMu if requests remain.
		return
	}
	rp, ws, err := l.syncSyncMuHeld(true)
	l.syncMu.Unlock()
	l.mu.Lock()
	l.enqueueLocked()
	l.mu.Unlock()
	callWaiters(ws, rp, err)
}

// Sync synchronously flushes everything appended so far and advances the
// recovery point to the log end offset. It runs on the caller's
// goroutine; the produce path uses RequestSync instead.
func (l *Log) Sync() error {
	l.syncMu.Lock()
	_, _, err := l.syncSyncMuHeld(false)
	l.syncMu.Unlock()
	l.mu.Lock()
	l.enqueueLocked() // callbacks waiting on a skipped worker run
	write := l.syncer == nil && l.ckptDirty && !l.closed
	l.mu.Unlock()
	if err == nil && write {
		err = l.writeCheckpoint()
	}
	return err
}

// syncSyncMuHeld fsyncs the active segment, segments rolled since the
// last sync (with their indexes) and the directory, then advances the
// recovery point to the log end offset captured before the fsyncs.
// takeWaiters moves the pending RequestSync callbacks (all of which asked
// for offsets below the captured end) to the caller, which calls them.
func (l *Log) syncSyncMuHeld(takeWaiters bool) (rp int64, ws []func(int64, error), err error) {
	l.mu.Lock()
	if takeWaiters {
		ws = l.waiters
		l.waiters = nil
	}
	if l.closed {
		rp = l.recoveryPoint
		l.mu.Unlock()
		return rp, ws, ErrClosed
	}
	if l.failed != nil {
		rp = l.recoveryPoint
		l.mu.Unlock()
		return rp, ws, l.failed
	}
	target := l.logEndOffset
	gen := l.truncGen.Load()
	if target <= l.recoveryPoint && len(l.rolled) == 0 && !l.dirDirty {
		rp = l.recoveryPoint
		l.mu.Unlock()
		return rp, ws, nil
	}
	w := l.w
	w.acquire()
	rolled := l.rolled
	l.rolled = nil
	dirDirty := l.dirDirty
	l.dirDirty = false
	l.mu.Unlock()

	start := time.Now()
	err = l.syncFiles(w, rolled, dirDirty, nil)
	l.syncer.observeSync(start)
	w.release()

	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.failLocked(err)
	} else if gen == l.truncGen.Load() && target > l.recoveryPoint {
		l.recoveryPoint = min(target, l.logEndOffset)
		l.markCkptDirtyLocked()
	}
	return l.recoveryPoint, ws, err
}

// syncFiles fsyncs rolled segments (log and indexes, releasing their
// references), the active writer w, the active segment's index files when
// active is non-nil, and the directory when dir is set.
func (l *Log) syncFiles(w *rcFile, rolled []rolledSegment, dir bool, active *segment) error {
	var first error
	keep := func(err error) {
		if err != nil && first == nil {
			first = err
		}
	}
	for _, r := range rolled {
		keep(r.f.f.Sync())
		r.f.release()
		keep(syncFile(l.fs, r.seg.idxName))
		keep(syncFile(l.fs, r.seg.tidxName))
	}
	if w != nil {
		keep(w.f.Sync())
	}
	if active != nil {
		keep(syncFile(l.fs, active.idxName))
		keep(syncFile(l.fs, active.tidxName))
	}
	if dir || len(rolled) > 0 {
		keep(l.fs.SyncDir(l.dir))
	}
	return first
}

// failLocked makes the log fail every later append and sync: after an
// fsync error the page cache may have dropped data, so retrying would
// report lost data as durable.
func (l *Log) failLocked(err error) {
	if l.failed == nil {
		l.failed = err
		l.logger.Error("partlog: log failed; appends and syncs are refused until it is reopened", "err", err)
	}
}
