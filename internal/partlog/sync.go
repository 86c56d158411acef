package partlog

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gregor-streaming/gregor/internal/vfs"
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

	// whole, when set, syncs many dirty logs in one call; degraded is
	// set after it failed (UseWholeSync).
	whole    vfs.WholeSyncer
	degraded atomic.Bool
	// wholeStarted counts the whole-file-system syncs started; wholeDone
	// is the highest start number among those that succeeded. What was
	// written before wholeStarted read n is durable once wholeDone > n
	// (wholeSyncedSince).
	wholeStarted, wholeDone atomic.Uint64

	// journal, when set, answers syncs of small appends (UseJournal);
	// cycleMu serializes its cycles with CloseLogs, the other holder of
	// many logs' syncMu at once.
	journal         *Journal
	cycleMu         sync.Mutex
	journalInterval time.Duration
	// manyLogs: the last sync round found at least journalMinLogs logs
	// queued. Appends are journaled only then: for one busy log an
	// fdatasync of its segment costs what the journal's does, and the
	// journal would write every byte twice.
	manyLogs       atomic.Bool
	journalMinLogs int
	// pendBytes counts the memory of the logs' pending buffers
	// (pend.go).
	pendBytes atomic.Int64
	// lastMany is when a round last found journalMinLogs logs (guarded
	// by mu): manyLogs stays set for journalManyFor after it. Rounds are
	// often small even under many-partition load (four workers share
	// the queue, logs come back one at a time after a cycle), and an
	// append that is not journaled costs its log a segment sync.
	lastMany time.Time
	// cycleHeld, set by tests, runs while a cycle holds a log's syncMu.
	cycleHeld func(*Log)

	// cacheKeep, cacheBudget: see KeepCached and CacheBudget.
	// cacheBusy is how many logs synced in the last checkpoint
	// interval, cacheBusyNow how many so far in this one (epoch
	// cacheEpoch; Log.cacheEpoch says whether a log is counted).
	cacheKeep, cacheBudget  atomic.Int64
	cacheBusy, cacheBusyNow atomic.Int64
	cacheEpoch              atomic.Uint64
	// allocAhead: see AllocateAhead.
	allocAhead atomic.Int64

	interval time.Duration
	stop     chan struct{}
	// obs are the installed Observers (observe.go); nil = none.
	obs atomic.Pointer[Observers]
	wg  sync.WaitGroup

	// The reserver's queue (reserveLoop); resStopped is set when it
	// returns.
	resMu      sync.Mutex
	resJobs    []reserveJob
	resStopped bool
	resWake    chan struct{}
}

// NewSyncer starts a Syncer with the given number of fsync workers (at
// least 1) and a checkpoint writer.
func NewSyncer(workers int) *Syncer {
	return newSyncer(workers, DefaultCheckpointInterval)
}

func newSyncer(workers int, interval time.Duration) *Syncer {
	s := &Syncer{interval: interval, journalInterval: DefaultJournalCycleInterval, journalMinLogs: journalMinLogsDefault, stop: make(chan struct{}), resWake: make(chan struct{}, 1)}
	s.cond.L = &s.mu
	s.cacheKeep.Store(DefaultCacheKeep)
	s.cacheBudget.Store(AutoCacheBudget())
	s.cacheEpoch.Store(1)
	workers = max(workers, 1)
	s.wg.Add(workers + 2)
	for range workers {
		go s.worker()
	}
	go s.checkpointer()
	go s.reserveLoop()
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
	if s.journal != nil {
		if err := s.journal.close(); err != nil {
			s.journal.logger.Error("partlog: closing journal", "err", err)
		}
	}
}

// enqueue adds logs to the sync queue; false if the Syncer is closed.
func (s *Syncer) enqueue(logs ...*Log) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.queue = append(s.queue, logs...)
	if len(logs) == 1 || s.CanSyncAll() && len(s.queue)-s.head >= wholeSyncMin {
		s.cond.Signal() // one worker syncs them all
	} else {
		for range logs {
			s.cond.Signal() // an fsync each, in parallel
		}
	}
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
	var sc syncScratch
	for {
		s.mu.Lock()
		for s.head == len(s.queue) && !s.closed {
			s.cond.Wait()
		}
		if s.head == len(s.queue) {
			s.mu.Unlock()
			return
		}
		if now := time.Now(); len(s.queue)-s.head >= s.journalMinLogs {
			s.lastMany = now
			s.manyLogs.Store(true)
		} else if now.Sub(s.lastMany) > journalManyFor {
			s.manyLogs.Store(false)
		}
		if s.CanSyncAll() && len(s.queue)-s.head >= wholeSyncMin {
			// Many logs are dirty: one syncfs for all of them.
			sc.logs = append(sc.logs[:0], s.queue[s.head:]...)
			clear(s.queue[s.head:])
			s.queue, s.head = s.queue[:0], 0
			s.mu.Unlock()
			s.syncBatch(&sc)
			sc.reset()
			continue
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

// syncScratch is a worker's memory for its sync rounds, reused from one
// to the next: a round of many logs had allocated its batch and its
// preparations afresh, about a quarter of the broker's allocations
// producing one-record batches to 10,000 partitions.
type syncScratch struct {
	logs  []*Log
	preps []syncPrep
	jps   []journalPrep
}

// reset drops the references a round left, keeping the memory of up to
// syncScratchMax logs (a worker then holds at most ~1 MiB).
func (sc *syncScratch) reset() {
	clear(sc.logs)
	clear(sc.preps)
	clear(sc.jps)
	sc.logs, sc.preps, sc.jps = keepScratch(sc.logs), keepScratch(sc.preps), keepScratch(sc.jps)
}

const syncScratchMax = 4096

func keepScratch[T any](s []T) []T {
	if cap(s) > syncScratchMax {
		return nil
	}
	return s[:0]
}

// journalManyFor is how long appends stay journaled after a sync round
// found many logs.
const journalManyFor = time.Second

// wholeSyncMin is how many dirty logs make one syncfs cheaper than an
// fsync each.
const wholeSyncMin = 4

// journalMinLogsDefault is how many logs a sync round must find for
// appends to go to the journal. Below it a few busy logs sync their own
// files: 32 gave 8 busy partitions a 2-4x better e2e tail than 4 (the
// journal cycle's syncfs burst stalls the journal's fdatasyncs), and the
// journal still pays where rounds cover hundreds of logs.
const journalMinLogsDefault = 32

// UseWholeSync makes the Syncer sync many dirty logs with one call of
// ws (Linux syncfs) instead of an fsync per file. Call it before opening
// the logs it serves, with ws opened before any of their data was
// written (see vfs.WholeSyncer). After a SyncAll error the Syncer goes
// back to per-file fsyncs for good, since syncfs cannot say which file
// lost data and reports an error only once; each file's own descriptor
// still reports it.
func (s *Syncer) UseWholeSync(ws vfs.WholeSyncer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.whole = ws
}

// CanSyncAll reports whether SyncAll works: the Syncer has a
// whole-file-system sync (UseWholeSync) that has not failed.
func (s *Syncer) CanSyncAll() bool { return s.whole != nil && !s.degraded.Load() }

// SyncAll makes everything written to the Syncer's file system durable
// with one whole-file-system sync, for example the files and directories
// of many logs just created with Options.DeferSync. It fails when
// CanSyncAll is false.
func (s *Syncer) SyncAll() error {
	if !s.CanSyncAll() {
		return errors.New("partlog: no whole-file-system sync")
	}
	start := time.Now()
	err := s.syncAll()
	s.observeSync(start)
	return err
}

// syncAll runs the whole-file-system sync; after an error the Syncer
// syncs file by file for good (see UseWholeSync).
func (s *Syncer) syncAll() error {
	n := s.wholeStarted.Add(1)
	err := s.whole.SyncAll()
	if err != nil {
		s.degraded.Store(true)
		return err
	}
	for {
		d := s.wholeDone.Load()
		if d >= n || s.wholeDone.CompareAndSwap(d, n) {
			return nil
		}
	}
}

// wholeSyncs returns how many whole-file-system syncs have started: a
// write that returned before the call is durable once
// wholeSyncedSince(the result).
func (s *Syncer) wholeSyncs() uint64 { return s.wholeStarted.Load() }

// wholeSyncedSince reports whether a whole-file-system sync that started
// after wholeSyncs returned n has succeeded.
func (s *Syncer) wholeSyncedSince(n uint64) bool { return s.wholeDone.Load() > n }

// syncBatch makes a batch of logs durable: those whose unsynced
// offsets are all journaled with one journal sync, the others with one
// SyncAll. The logs are sc.logs; the round is built in sc, the calling
// worker's scratch, which the worker resets afterwards.
func (s *Syncer) syncBatch(sc *syncScratch) {
	for _, l := range sc.logs {
		l.mu.Lock()
		l.queued = false
		if l.closed {
			ws, rp := l.waiters, l.recoveryPoint
			l.waiters = nil
			l.mu.Unlock()
			callWaiters(ws, rp, ErrClosed)
			continue
		}
		if jp, ok := l.takeJournalWaitersLocked(); ok {
			l.mu.Unlock()
			sc.jps = append(sc.jps, jp)
			continue
		}
		l.mu.Unlock()
		if !l.syncMu.TryLock() {
			continue // a running sync requeues the log when it ends
		}
		p := l.prepareSyncSyncMuHeld(true)
		if p.done {
			l.unlockSync()
			callWaiters(p.ws, p.rp, p.err)
			continue
		}
		sc.preps = append(sc.preps, p)
	}
	preps := sc.preps
	if len(sc.jps) > 0 {
		s.syncJournal(sc.jps)
	}
	if len(preps) == 0 {
		return
	}
	errs := s.syncPrepared(preps)
	for i := range preps {
		p := &preps[i]
		l := p.l
		rp := l.finishSyncSyncMuHeld(p, errs[i])
		l.unlockSync()
		callWaiters(p.ws, rp, errs[i])
	}
}

// syncPrepared makes what preps captured durable, with one SyncAll when
// the Syncer has a whole-file-system sync and file by file otherwise,
// releases the preps' file references and returns each log's error.
func (s *Syncer) syncPrepared(preps []syncPrep) []error {
	errs := make([]error, len(preps))
	var err error
	whole := s.CanSyncAll()
	if whole {
		if err = s.SyncAll(); err != nil {
			preps[0].l.logger.Error("partlog: syncfs failed; syncing files one by one from now on", "err", err)
		}
	}
	for i := range preps {
		p := &preps[i]
		if !whole || err != nil {
			// Each file's own descriptor reports whether it lost data.
			p.reserveAhead()
			errs[i] = p.l.syncFiles(p.w, p.rolled, p.dirDirty, nil)
		} else {
			for _, r := range p.rolled {
				p.l.dropCached(r.f, r.size, r.seg)
				r.f.release()
			}
		}
		p.releaseActive(errs[i])
	}
	return errs
}

// journalPrep is a sync request answered by a journal sync.
type journalPrep struct {
	l      *Log
	target int64
	seq    uint64
	gen    uint64
	ws     []func(int64, error)
}

// takeJournalWaitersLocked takes the pending callbacks when every offset
// they wait for is durable or journaled, so a journal sync answers them.
func (l *Log) takeJournalWaitersLocked() (journalPrep, bool) {
	if l.journal() == nil || l.failed != nil || l.jEnd != l.logEndOffset {
		return journalPrep{}, false
	}
	p := journalPrep{l: l, target: l.logEndOffset, seq: l.jSeq, gen: l.truncGen.Load(), ws: l.waiters}
	l.waiters = nil
	return p, true
}

// syncJournal answers requests with one sync of the journal.
func (s *Syncer) syncJournal(jps []journalPrep) {
	var seq uint64
	for _, jp := range jps {
		seq = max(seq, jp.seq)
	}
	start := time.Now()
	err := s.journal.syncTo(seq)
	s.observeSync(start)
	for i := range jps {
		jps[i].finish(err)
	}
}

// finish records the outcome of the journal sync and calls the
// callbacks. After a journal failure they wait for a segment sync
// instead: the journal is out of use from then on.
func (p *journalPrep) finish(err error) {
	l := p.l
	l.mu.Lock()
	if err != nil {
		l.waiters = append(p.ws, l.waiters...)
		l.enqueueLocked()
		l.mu.Unlock()
		return
	}
	if p.gen == l.truncGen.Load() && p.target > l.jDurable {
		l.jDurable = min(p.target, l.logEndOffset)
	}
	d := l.durableLocked()
	l.mu.Unlock()
	callWaiters(p.ws, d, nil)
}

// DefaultJournalCycleInterval is how often a Syncer with a journal makes
// the segments of journaled logs durable and deletes the journal files
// that covered them.
const DefaultJournalCycleInterval = 5 * time.Second

// UseJournal makes the Syncer answer sync requests of small appends with
// syncs of j (see Journal) and run j's cycles. Call it before opening the
// logs it serves; the Syncer closes j when it closes.
func (s *Syncer) UseJournal(j *Journal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.journal != nil || s.closed {
		return
	}
	s.journal = j
	s.wg.Add(1)
	go s.journaler()
}

func (s *Syncer) journaler() {
	defer s.wg.Done()
	t := time.NewTicker(s.journalInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		case <-s.journal.kick:
		}
		s.JournalCycle()
	}
}

// JournalCycle rolls the journal, makes the segments of every log that
// journaled since the last cycle durable and deletes the journal files
// they no longer need. The Syncer runs it periodically; it reports
// whether it completed.
func (s *Syncer) JournalCycle() bool {
	j := s.journal
	if j == nil || !j.active.Load() {
		return false
	}
	s.cycleMu.Lock()
	defer s.cycleMu.Unlock()
	logs, old, err := j.roll()
	if err != nil {
		j.logger.Warn("partlog: journal cycle", "err", err)
		return false
	}
	if !s.syncSegments(logs) {
		j.relist(logs)
		return false
	}
	j.remove(old)
	return true
}

// syncSegments makes the segment files of logs durable up to their
// current log end offsets (recovery points advance); false if one of
// them could not be synced. It holds every log's syncMu meanwhile, so
// it runs under cycleMu, which CloseLogs takes too.
func (s *Syncer) syncSegments(logs []*Log) bool {
	ok := true
	preps := make([]syncPrep, 0, len(logs))
	for _, l := range logs {
		l.syncMu.Lock()
		p := l.prepareSyncSyncMuHeld(false)
		if s.cycleHeld != nil {
			s.cycleHeld(l)
		}
		if p.done {
			l.unlockSync()
			if p.err != nil && !errors.Is(p.err, ErrClosed) {
				ok = false
			}
			continue
		}
		preps = append(preps, p)
	}
	if len(preps) == 0 {
		return ok
	}
	errs := s.syncPrepared(preps)
	for i := range preps {
		p := &preps[i]
		l := p.l
		l.finishSyncSyncMuHeld(p, errs[i])
		l.unlockSync()
		if errs[i] != nil {
			ok = false
		}
	}
	return ok
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
		s.nextCacheEpoch()
		s.mu.Lock()
		batch, s.dirty = s.dirty, batch[:0]
		s.mu.Unlock()
		// With a whole-file-system sync, checkpoints are written without
		// an fsync each and made durable together.
		lazy := s.CanSyncAll() && len(batch) >= wholeSyncMin
		wrote := false
		for i, l := range batch {
			wrote = l.checkpointIfDirty(lazy) || wrote
			batch[i] = nil
		}
		if lazy && wrote {
			// Checkpoints are hints: a lost one only means a longer
			// recovery scan. After an error data syncs go file by file.
			_ = s.syncAll()
		}
	}
}

// checkpointIfDirty writes the checkpoint if it is stale (checkpointer)
// and reports whether it wrote one; lazy skips the fsyncs.
func (l *Log) checkpointIfDirty(lazy bool) bool {
	l.mu.Lock()
	l.ckptListed = false
	dirty := l.ckptDirty && !l.closed
	if dirty && !l.checkpointDueLocked() {
		dirty = false
		l.listCkptLocked() // look again next round
	}
	l.mu.Unlock()
	if !dirty {
		return false
	}
	l.ckptMu.Lock()
	err := l.writeCheckpointCkptHeld(lazy)
	l.ckptMu.Unlock()
	if err != nil && err != ErrClosed {
		l.logger.Error("partlog: checkpoint", "err", err)
	}
	return err == nil
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

// SyncRequest is one request of RequestSyncs: RequestSync(Done) on Log.
type SyncRequest struct {
	Log  *Log
	Done func(durableOffset int64, err error)
}

// RequestSyncs is RequestSync for several logs at once (the partitions
// one produce request appended to): the logs of a Syncer reach its queue
// together, so one worker finds them all and syncs them with one
// whole-file-system sync, instead of starting an fsync of the first
// while the others are still being queued.
func RequestSyncs(reqs []SyncRequest) {
	if len(reqs) == 1 {
		reqs[0].Log.RequestSync(reqs[0].Done)
		return
	}
	var s *Syncer
	var batch []*Log
	for _, r := range reqs {
		l := r.Log
		l.mu.Lock()
		l.waiters = append(l.waiters, r.Done)
		if s == nil && l.syncer != nil {
			s = l.syncer
		}
		if !l.queued && l.syncer != nil && l.syncer == s {
			l.queued = true // queued below, with the others
			batch = append(batch, l)
		} else {
			l.enqueueLocked()
		}
		l.mu.Unlock()
	}
	if len(batch) == 0 || s.enqueue(batch...) {
		return
	}
	// The Syncer closed meanwhile: enqueueLocked hands the callbacks to
	// a goroutine of their own.
	for _, l := range batch {
		l.mu.Lock()
		l.queued = false
		l.enqueueLocked()
		l.mu.Unlock()
	}
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
	if jp, ok := l.takeJournalWaitersLocked(); ok {
		l.mu.Unlock()
		l.syncer.syncJournal([]journalPrep{jp})
		return
	}
	l.mu.Unlock()
	if !l.syncMu.TryLock() {
		// A sync is running (another worker, Sync or Close); it requeues
		// the log after it releases syncMu if requests remain.
		return
	}
	rp, ws, err := l.syncSyncMuHeld(true)
	l.unlockSync()
	callWaiters(ws, rp, err)
}

// unlockSync releases syncMu and queues the log again if requests
// arrived meanwhile: a worker that found syncMu held left them to the
// holder (serviceSync, syncBatch). Every holder of syncMu releases it
// through here.
func (l *Log) unlockSync() {
	l.syncMu.Unlock()
	l.mu.Lock()
	l.enqueueLocked()
	l.mu.Unlock()
}

// Sync synchronously flushes everything appended so far and advances the
// recovery point to the log end offset. It runs on the caller's
// goroutine; the produce path uses RequestSync instead.
func (l *Log) Sync() error {
	l.syncMu.Lock()
	_, _, err := l.syncSyncMuHeld(false)
	l.unlockSync()
	l.mu.Lock()
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
	p := l.prepareSyncSyncMuHeld(takeWaiters)
	if p.done {
		return p.rp, p.ws, p.err
	}
	p.reserveAhead()
	start := time.Now()
	err = l.syncFiles(p.w, p.rolled, p.dirDirty, nil)
	l.syncer.observeSync(start)
	p.releaseActive(err)
	return l.finishSyncSyncMuHeld(&p, err), p.ws, err
}

// releaseActive ends the sync's use of the active writer: once synced
// (err nil), its durable pages behind the cache window are released.
func (p *syncPrep) releaseActive(err error) {
	if err == nil {
		p.l.dropCached(p.w, p.size, nil)
	}
	p.w.release()
}

// syncPrep is what a sync captured of a log under its lock, so the I/O
// runs without it.
type syncPrep struct {
	l      *Log
	target int64
	mark   rpMark // where target lies
	gen    uint64
	w      *rcFile
	size   int64 // bytes written to w, all of which the sync covers
	limit  int64 // the segment size at which the active segment rolls
	rolled []rolledSegment
	// dirDirty is set when the directory's entries changed.
	dirDirty bool
	ws       []func(int64, error)
	// done is set when there is nothing to sync (or the log cannot be
	// synced): rp and err are the answer.
	done bool
	rp   int64
	err  error
}

// prepareSyncSyncMuHeld captures what a sync must make durable.
func (l *Log) prepareSyncSyncMuHeld(takeWaiters bool) syncPrep {
	l.mu.Lock()
	defer l.mu.Unlock()
	p := syncPrep{l: l}
	if takeWaiters {
		p.ws = l.waiters
		l.waiters = nil
	}
	switch {
	case l.closed:
		p.done, p.rp, p.err = true, l.recoveryPoint, ErrClosed
		return p
	case l.failed != nil:
		p.done, p.rp, p.err = true, l.recoveryPoint, l.failed
		return p
	}
	if err := l.flushPendLocked(); err != nil {
		p.done, p.rp, p.err = true, l.recoveryPoint, err
		return p
	}
	p.target, p.mark = l.logEndOffset, l.endMarkLocked()
	p.gen = l.truncGen.Load()
	if p.target <= l.recoveryPoint && len(l.rolled) == 0 && !l.dirDirty {
		p.done, p.rp = true, l.recoveryPoint
		return p
	}
	p.w = l.w
	p.w.acquire()
	p.size = l.act.size
	p.limit = l.cfg.SegmentBytes
	p.rolled = l.rolled
	l.rolled = nil
	p.dirDirty = l.dirDirty
	l.dirDirty = false
	return p
}

// finishSyncSyncMuHeld records the outcome of the sync p prepared and
// returns the recovery point. The caller released p's file references.
func (l *Log) finishSyncSyncMuHeld(p *syncPrep, err error) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.failLocked(err)
	} else if p.gen == l.truncGen.Load() && p.target > l.recoveryPoint {
		l.recoveryPoint, l.rpMark = p.target, p.mark
		if p.target > l.logEndOffset { // not expected: the generation moves with every truncation
			l.recoveryPoint, l.rpMark = l.logEndOffset, noMark
		}
		l.markCkptProgressLocked()
		// Journal coverage resumes from the synced offset.
		l.jEnd = max(l.jEnd, l.recoveryPoint)
	}
	return l.durableLocked()
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
		err := r.f.f.Sync()
		if err == nil {
			l.dropCached(r.f, r.size, r.seg)
		}
		keep(err)
		r.f.release()
		keep(syncFile(l.fs, r.seg.idxName))
		keep(syncFile(l.fs, r.seg.tidxName))
	}
	if w != nil {
		keep(w.f.Sync())
	}
	if active != nil {
		keep(syncIfExists(l.fs, active.idxName))
		keep(syncIfExists(l.fs, active.tidxName))
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
