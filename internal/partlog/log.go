package partlog

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gregor-streaming/gregor/internal/vfs"
)

// Options configure Open.
type Options struct {
	// FS is the file system. Required.
	FS vfs.FS
	// Dir is the partition directory "<topic>-<partition>", created if
	// missing. Required.
	Dir string
	// Config holds the topic-level settings; zero fields take defaults.
	Config Config
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Syncer is the shared group-commit syncer. RequestSync needs it, and
	// it writes the lazy checkpoints; without it checkpoints are written
	// only by Sync, Close, TruncateTo and retention.
	Syncer *Syncer
	// Logger receives recovery and error reports; nil means
	// slog.Default().
	Logger *slog.Logger
	// OnRoll, when set, is called after the active segment rolled (a
	// closed segment was added), for example to run size retention
	// without waiting for its next pass. It runs with the log's lock
	// held: it must be quick, must not block and must not call the Log.
	OnRoll func()
	// JournalKey names this log in its Syncer's journal (UseJournal); it
	// must name one incarnation of the log, so a log deleted and created
	// again at the same directory never replays the old one's entries.
	// Empty means Dir.
	JournalKey string
	// DeferSync leaves what Open writes unsynced (the directory entry
	// of a Dir it creates, the files and checkpoint recovery rewrites):
	// the caller, opening many logs at once, makes them durable with one
	// Syncer.SyncAll before anything is appended. Until then a crash
	// recovers the log again from the same state.
	DeferSync bool
}

// Log is one partition's log: a directory of segments, each a .log file
// of RecordBatch v2 batches with a sparse .index and a .timeindex, plus a
// partition.checkpoint. Appends are serialized by mu; reads take mu only
// to snapshot positions and do their file I/O without it.
//
// Lock order: compactMu → ckptMu → syncMu → mu → Syncer.mu; fileCache.mu
// is a leaf. mu is held during the active segment's writes (an
// append's, or its buffer's: pend.go; one write call each, as Kafka
// holds its log lock), while rolling and during the renames of a
// compaction swap, never during fsync or reads of closed segments.
type Log struct {
	// Immutable after Open.
	fs       vfs.FS
	dir      string
	ckptName string
	now      func() time.Time
	syncer   *Syncer
	logger   *slog.Logger
	onRoll   func()
	openTime time.Time
	// deferSync: Options.DeferSync.
	deferSync bool

	// compactMu is held for a whole compaction pass (compact.go), so
	// passes over one log never overlap.
	compactMu sync.Mutex
	// ckptMu serializes checkpoint writes, and is held across operations
	// that must checkpoint before returning (TruncateTo, retention,
	// Reopen) and across a compaction's swap, so none of them interleave.
	ckptMu sync.Mutex
	// syncMu is held by whoever fsyncs the log's files (a Syncer worker,
	// Sync, Close, Reopen, a journal cycle), so syncs of one log never
	// overlap. A worker that finds it held leaves the log's requests to
	// the holder, so every holder releases it with unlockSync.
	syncMu sync.Mutex
	// cacheEpoch, guarded by syncMu: the Syncer's interval in which this
	// log last counted as busy (countBusy).
	cacheEpoch uint64
	// cacheTail, guarded by syncMu: the rolled segments of which the
	// cache window still holds pages, oldest first (dropCached), as of
	// readGen cacheTailGen.
	cacheTail    []cachedSeg
	cacheTailGen uint64

	// mu guards the fields below.
	mu sync.Mutex

	cfg Config
	// segs are the segments sorted by base offset; never empty after
	// Open; the last one is the active segment.
	segs []*segment
	// w is the active segment's .log opened for appending; the Log owns
	// one reference.
	w *rcFile
	// act is the active segment's appending state.
	act activeState

	// Invariant: logStartOffset <= highWatermark <= logEndOffset.
	logStartOffset int64
	highWatermark  int64
	// logEndOffset is the next offset to assign.
	logEndOffset int64
	// recoveryPoint: offsets below it are durable. <= logEndOffset.
	recoveryPoint int64
	// rpMark says where recoveryPoint lies in its segment, so recovery
	// after a crash validates only what follows it (recover.go).
	rpMark rpMark
	// epochs is the leader epoch history, epochs and start offsets
	// strictly increasing, every start offset in [logStartOffset,
	// logEndOffset).
	epochs []EpochEntry
	// cleanerOffset is the compactor's first dirty offset: every offset
	// below it was compacted by a finished pass. It may lag
	// logStartOffset (the effective first dirty offset is the larger).
	// Invariant: cleanerOffset <= logEndOffset.
	cleanerOffset int64
	// tombstoneDue is when a tombstone kept by the last compaction pass
	// may be removed (zero: none known), so a log with nothing new to
	// compact is still cleaned once its tombstones expire.
	tombstoneDue time.Time

	// jkey names the log in the journal. jEnd: every offset below it is
	// in synced segments or in the journal, so a sync request can be
	// answered by a journal sync when jEnd == logEndOffset; jSeq is the
	// journal sequence number of the log's last entry; jDurable: offsets
	// below it are durable in the journal (the segments may lag:
	// recoveryPoint). jEnd and jDurable are <= logEndOffset.
	jkey     string
	jEnd     int64
	jDurable int64
	jSeq     uint64
	// jListed: the log is on its journal's dirty list (guarded by the
	// journal's mu, not by mu).
	jListed bool

	// waiters are pending RequestSync callbacks.
	waiters []func(int64, error)
	// queued: the log is in its Syncer's queue.
	queued bool
	// rolled are segments that rolled since the last sync: their files
	// must be synced before the recovery point passes them.
	rolled []rolledSegment
	// dirDirty: files were created or removed since the last sync.
	dirDirty bool
	closed   bool
	// failed is sticky: after a failed fsync or a write that could not be
	// undone, the on-disk state is unknown and every append fails (an
	// fsync error cannot be retried safely).
	failed error
	// ckptDirty: state changed since the last checkpoint; ckptListed: the
	// log is on its Syncer's checkpoint list.
	ckptDirty, ckptListed bool
	// ckptDisk, guarded by ckptMu, is the checkpoint file's content as
	// this Log last read or wrote it; nil when unknown (after a failed
	// write). CloseLogs skips rewriting a file that holds its checkpoint
	// already.
	ckptDisk []byte
	// ckptSlots, guarded by ckptMu: where the checkpoint file's newest
	// checkpoint is and whether it is durable (writeCkptFile).
	ckptSlots ckptSlots
	// ckptProgress: all that changed since the last checkpoint is the
	// recovery point or high watermark moving forward, or leader epochs
	// that recovery would rebuild (markCkptEpochLocked). ckptRPSeg is the
	// base of the segment that held the last checkpoint's recovery
	// point, ckptPos its mark's position (-1: none), ckptAt when it was
	// taken: see checkpointDueLocked.
	ckptProgress bool
	ckptRPSeg    int64
	ckptPos      int64
	ckptAt       time.Time

	// truncGen is bumped (under mu) whenever bytes below the log end are
	// removed; readers retry when it changes under them.
	truncGen atomic.Uint64
	// swapGen is bumped (under mu) when a compaction swaps segment files:
	// readers retry (readGen), but unlike a truncation it does not stop
	// a concurrent sync from advancing the recovery point, since no
	// offset below the log end changed.
	swapGen atomic.Uint64
}

// activeState is the active segment's appending state. Guarded by Log.mu.
type activeState struct {
	seg  *segment
	size int64 // bytes written; readers read only below it
	// bytesSinceIdx counts bytes appended since the last index entry.
	bytesSinceIdx int64
	// idxPending and tidxPending are index entries not yet written to the
	// files (at most maxPendingIndexEntries each).
	idxPending  []indexEntry
	tidxPending []timeEntry
	// idxFlushed and tidxFlushed count entries in the files.
	idxFlushed, tidxFlushed int64
	// lastIdx is the last offset index entry (file or pending), if hasIdx.
	lastIdx indexEntry
	hasIdx  bool
	// lastTs is the last time index entry's timestamp, -1 if none.
	lastTs int64
	// maxTs is the largest batch max timestamp, maxTsOff the last offset
	// of the first batch that reached it (Kafka's shallow offset).
	maxTs, maxTsOff int64
	// firstTs is the first batch's max timestamp (-1: empty), for
	// segment.ms.
	firstTs  int64
	created  time.Time
	modified time.Time
	// pend holds the segment's last bytes, not written to the file yet
	// (pend.go); pendFirst is the first offset they hold.
	pend      []byte
	pendFirst int64
}

// rpMark places the recovery point in the segment holding it: the
// batches at positions [0, pos) of the segment with base offset seg hold
// the offsets below the recovery point, with largest max timestamp maxTs
// (reached by the batch whose last offset is maxTsOff) and first batch
// max timestamp firstTs. pos < 0: unknown, recovery scans the segment
// from its start.
type rpMark struct {
	seg, pos, maxTs, maxTsOff, firstTs int64
}

var noMark = rpMark{pos: -1}

// endMarkLocked is the mark of the log end offset.
func (l *Log) endMarkLocked() rpMark {
	a := &l.act
	return rpMark{seg: a.seg.base, pos: a.size, maxTs: a.maxTs, maxTsOff: a.maxTsOff, firstTs: a.firstTs}
}

type rolledSegment struct {
	seg  *segment
	f    *rcFile
	size int64 // bytes in the file
}

// Open opens the partition log in opts.Dir, creating it if missing, and
// recovers it: after a clean shutdown the files are trusted once the
// active segment's tail checks out; otherwise every batch from the
// segment holding the recovery point on is validated, torn tails are
// truncated, corrupt ranges with valid data after them are kept but never
// served, and indexes are rebuilt.
func Open(opts Options) (*Log, error) {
	if opts.FS == nil || opts.Dir == "" {
		return nil, errors.New("partlog: Open needs FS and Dir")
	}
	l := &Log{
		fs:       opts.FS,
		dir:      opts.Dir,
		ckptName: path.Join(opts.Dir, checkpointName),
		now:      opts.Now,
		syncer:   opts.Syncer,
		logger:   opts.Logger,
		onRoll:   opts.OnRoll,
		cfg:      opts.Config.normalized(),
		jkey:     opts.JournalKey,

		deferSync: opts.DeferSync,
	}
	if l.jkey == "" {
		l.jkey = opts.Dir
	}
	if l.now == nil {
		l.now = time.Now
	}
	if l.logger == nil {
		l.logger = slog.Default()
	}
	l.logger = l.logger.With("partlog", opts.Dir)
	l.openTime = l.now()
	if err := l.load(); err != nil {
		l.releaseFiles()
		return nil, fmt.Errorf("partlog: open %s: %w", opts.Dir, err)
	}
	// load set ckptRPSeg and ckptPos from the checkpoint on disk, and
	// ckptDirty when recovery left the recovery point ahead of it.
	l.ckptAt = l.openTime
	if l.ckptDirty {
		l.mu.Lock()
		l.listCkptLocked()
		l.mu.Unlock()
	}
	if err := l.replayJournal(); err != nil {
		l.releaseFiles()
		return nil, fmt.Errorf("partlog: open %s: journal replay: %w", opts.Dir, err)
	}
	return l, nil
}

// SetConfig changes the topic-level settings; they apply from the next
// append.
func (l *Log) SetConfig(c Config) {
	l.mu.Lock()
	l.cfg = c.normalized()
	l.mu.Unlock()
}

// Config returns the settings in use.
func (l *Log) Config() Config {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cfg
}

// Dir returns the partition directory.
func (l *Log) Dir() string { return l.dir }

// LogStartOffset is the first offset that may be read.
func (l *Log) LogStartOffset() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.logStartOffset
}

// LogEndOffset is the next offset to be assigned.
func (l *Log) LogEndOffset() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.logEndOffset
}

// HighWatermark returns the stored high watermark.
func (l *Log) HighWatermark() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.highWatermark
}

// SetHighWatermark stores the high watermark, clamped to
// [LogStartOffset, LogEndOffset]; it is checkpointed lazily. The caller
// owns its semantics (replication).
func (l *Log) SetHighWatermark(off int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	off = max(min(off, l.logEndOffset), l.logStartOffset)
	if off != l.highWatermark {
		progress := off > l.highWatermark
		l.highWatermark = off
		if progress {
			l.markCkptProgressLocked()
		} else {
			l.markCkptDirtyLocked()
		}
	}
}

// RecoveryPoint is the offset below which the log's segment files are
// durable (synced). With a journal, acknowledged offsets may be ahead of
// it: see DurableOffset.
func (l *Log) RecoveryPoint() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.recoveryPoint
}

// DurableOffset is the offset below which the log survives a crash, in
// its segments or in the journal.
func (l *Log) DurableOffset() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.durableLocked()
}

func (l *Log) durableLocked() int64 { return max(l.recoveryPoint, l.jDurable) }

func (l *Log) isClosed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closed
}

// LeaderEpochs returns a copy of the leader epoch history.
func (l *Log) LeaderEpochs() []EpochEntry {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]EpochEntry(nil), l.epochs...)
}

// EndOffsetForEpoch answers OffsetForLeaderEpoch as the leader of
// leaderEpoch (-1: from the written history alone): for the latest
// epoch, (epoch, LogEndOffset); for an older one, the largest known
// epoch <= epoch and the start offset of the first epoch above it; (-1,
// -1) when epoch is unknown and newer than every entry, or the history
// is empty. While no batch was written under leaderEpoch, the history is
// taken to end with (leaderEpoch, LogEndOffset), as a Kafka leader
// enters its epoch in the cache when elected (Partition.makeLeader), so
// the current epoch is always known: its end is the log end offset, even
// on an empty log, and older epochs end where it starts.
func (l *Log) EndOffsetForEpoch(epoch, leaderEpoch int32) (epoch2 int32, endOffset int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return endOffsetForEpoch(l.leaderHistoryLocked(leaderEpoch), epoch, l.logEndOffset)
}

// leaderHistoryLocked is the epoch history as the leader of leaderEpoch
// sees it (-1: as written): ending with (leaderEpoch, LogEndOffset)
// while nothing was written under it. Clipped, l.epochs is copied by
// assignEpoch's append, never changed.
func (l *Log) leaderHistoryLocked(leaderEpoch int32) []EpochEntry {
	return assignEpoch(slices.Clip(l.epochs), leaderEpoch, l.logEndOffset)
}

// EarliestEpoch is the leader epoch ListOffsets reports with the log
// start offset (EARLIEST): the first entry of the history when it starts
// at or before the log start offset, else UndefinedEpoch, as Kafka's
// UnifiedLog.fetchOffsetByTimestamp. As in EndOffsetForEpoch, a history
// with nothing written yet holds (leaderEpoch, LogEndOffset), the entry a
// Kafka leader makes when elected.
func (l *Log) EarliestEpoch(leaderEpoch int32) int32 {
	l.mu.Lock()
	defer l.mu.Unlock()
	es := l.leaderHistoryLocked(leaderEpoch)
	if len(es) > 0 && es[0].StartOffset <= l.logStartOffset {
		return es[0].Epoch
	}
	return UndefinedEpoch
}

// EpochForOffset returns the leader epoch the batch holding offset was
// written under, from the history (Kafka's epochForOffset), or
// UndefinedEpoch when the history starts after it. The history is made
// of the epochs batches carry (Append, recovery), so it agrees with the
// batch itself, which Kafka reads for lookups by timestamp.
func (l *Log) EpochForOffset(offset int64) int32 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return epochForOffset(l.epochs, offset)
}

// Size is the number of bytes of all segments' .log files.
func (l *Log) Size() int64 {
	var total int64
	for _, si := range l.Segments() {
		total += si.Size
	}
	return total
}

// Segments describes the segments, oldest first; the last is active.
// Closed segments' sizes and max timestamps are loaded lazily (without
// holding the log's lock) and cached.
func (l *Log) Segments() []SegmentInfo {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	segs := append([]*segment(nil), l.segs...)
	nexts := make([]int64, len(segs))
	for i, s := range segs {
		nexts[i] = s.next
	}
	a := l.act
	nexts[len(segs)-1] = l.logEndOffset
	l.mu.Unlock()

	out := make([]SegmentInfo, len(segs))
	for i, s := range segs {
		si := SegmentInfo{BaseOffset: s.base, NextOffset: nexts[i]}
		if s == a.seg {
			si.Size, si.MaxTimestamp, si.Active, si.LastModified = a.size, a.maxTs, true, a.modified
		} else if m, err := l.segMeta(s); err == nil {
			si.Size, si.MaxTimestamp, si.LastModified = m.size, m.maxTs, m.modified
		} else {
			l.logger.Warn("partlog: segment metadata", "segment", s.logName, "err", err)
			si.MaxTimestamp, si.LastModified = -1, l.openTime
		}
		out[i] = si
	}
	return out
}

// segMeta loads a closed segment's metadata, rebuilding its indexes when
// they are missing or corrupt.
func (l *Log) segMeta(s *segment) (segMeta, error) {
	l.mu.Lock()
	next := s.next
	l.mu.Unlock()
	m, err := s.meta(l.fs, l.openTime, next)
	if err == nil {
		return m, nil
	}
	if !errors.Is(err, errIndexCorrupt) && !vfs.IsNotExist(err) {
		return m, err
	}
	if _, serr := l.fs.Stat(s.logName); serr != nil {
		return m, err // the segment itself is gone (deleted meanwhile)
	}
	l.logger.Warn("partlog: rebuilding indexes", "segment", s.logName, "reason", err)
	if rerr := l.rebuildIndexes(s); rerr != nil {
		return m, rerr
	}
	return s.meta(l.fs, l.openTime, next)
}

func (l *Log) markCkptDirtyLocked() {
	l.ckptProgress = false
	l.listCkptLocked()
}

// markCkptProgressLocked is markCkptDirtyLocked for the recovery point or
// high watermark moving forward.
func (l *Log) markCkptProgressLocked() {
	if !l.ckptDirty {
		l.ckptProgress = true
	}
	l.listCkptLocked()
}

// markCkptEpochLocked marks the checkpoint stale for leader epoch
// entries added from offset start on. Recovery rebuilds the epochs from
// the batches it validates (from the checkpointed recovery point, or the
// start of its segment), and a journal replay assigns them too, so
// entries starting in or after that segment are progress, not structure:
// a new topic's first append on each of 10,000 partitions otherwise
// rewrote 10,000 checkpoint files in one round.
func (l *Log) markCkptEpochLocked(start int64) {
	if start >= l.ckptRPSeg {
		l.markCkptProgressLocked()
	} else {
		l.markCkptDirtyLocked()
	}
}

// ckptProgressInterval is how often a log whose checkpoint is stale only
// in progress within the same segment writes it anyway (Kafka writes its
// recovery points every 60 s), so the high watermark stays fresh.
const ckptProgressInterval = 60 * time.Second

// ckptProgressBytes is how far the recovery point may move past the
// checkpointed one before progress alone is written: what recovery
// after a crash rescans per partition, whatever its rate (a minute of
// a busy partition is gigabytes). The producer state snapshots bound
// their replay by the same measure (broker.producerSnapshotEvery).
const ckptProgressBytes = 64 << 20

// checkpointDueLocked reports whether the lazy checkpoint should be
// written now: at once for structure (and a recovery point entering
// another segment), and for progress within one after
// ckptProgressInterval or ckptProgressBytes. Recovery after a crash
// validates from the checkpointed recovery point, so those bound what
// it rescans; with 10,000 busy partitions rewriting every checkpoint
// each round (a file created and renamed per partition) cost a sixth of
// the broker's CPU.
func (l *Log) checkpointDueLocked() bool {
	if !l.ckptProgress {
		return true
	}
	if l.segBaseLocked(l.recoveryPoint) != l.ckptRPSeg {
		return true
	}
	if m := l.rpMark; m.pos >= 0 && m.seg == l.ckptRPSeg && (l.ckptPos < 0 || m.pos-l.ckptPos >= ckptProgressBytes) {
		return true
	}
	return l.now().Sub(l.ckptAt) >= ckptProgressInterval
}

func (l *Log) listCkptLocked() {
	l.ckptDirty = true
	if !l.ckptListed && l.syncer != nil && !l.closed {
		if l.syncer.addDirty(l) {
			l.ckptListed = true
		}
	}
}

// checkpointLocked builds the current checkpoint.
func (l *Log) checkpointLocked(clean bool) checkpoint {
	c := checkpoint{
		clean:          clean,
		logStartOffset: l.logStartOffset,
		highWatermark:  l.highWatermark,
		recoveryPoint:  l.recoveryPoint,
		rpMark:         l.rpMark,
		logEndOffset:   l.logEndOffset,
		cleanerOffset:  l.cleanerOffset,
		epochs:         append([]EpochEntry(nil), l.epochs...),
	}
	if clean {
		c.activeBase = l.act.seg.base
		c.activeSize = l.act.size
		c.activeIdxEntries = int32(l.act.idxFlushed)
		c.activeTidxEntries = int32(l.act.tidxFlushed)
	}
	return c
}

// writeCheckpoint writes partition.checkpoint atomically with the current
// state (not clean). It does nothing on a closed log.
func (l *Log) writeCheckpoint() error {
	l.ckptMu.Lock()
	defer l.ckptMu.Unlock()
	return l.writeCheckpointCkptHeld(false)
}

// writeCheckpointCkptHeld is writeCheckpoint for a caller holding ckptMu.
// lazy skips the fsyncs: the caller syncs the whole file system after.
func (l *Log) writeCheckpointCkptHeld(lazy bool) error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	// The index entries below the recovery point go to the files first,
	// durable before the checkpoint (a lazy caller's whole-file-system
	// sync covers them): recovery after a crash keeps the ones it finds
	// there and scans only from the checkpoint's mark (markedScan).
	var flushed *segment
	if len(l.act.idxPending)+len(l.act.tidxPending) > 0 {
		flushed = l.act.seg
	}
	if err := l.flushIndexLocked(); err != nil {
		err = fmt.Errorf("partlog: write index of %s: %w", l.act.seg.logName, err)
		l.failLocked(err)
		l.mu.Unlock()
		return err
	}
	c := l.checkpointLocked(false)
	l.ckptDirty, l.ckptProgress = false, false
	l.ckptRPSeg, l.ckptPos, l.ckptAt = l.segBaseLocked(c.recoveryPoint), c.rpMark.pos, l.now()
	l.mu.Unlock()
	var err error
	if flushed != nil && !lazy {
		for _, name := range []string{flushed.idxName, flushed.tidxName} {
			if serr := syncFile(l.fs, name); serr != nil && !vfs.IsNotExist(serr) && err == nil {
				err = serr // a missing file: retention or a truncation removed the segment meanwhile
			}
		}
	}
	if err == nil {
		err = l.writeCkptFile(c.encode(), !lazy)
	}
	if err != nil {
		l.mu.Lock()
		l.markCkptDirtyLocked()
		l.mu.Unlock()
		return fmt.Errorf("partlog: write checkpoint: %w", err)
	}
	return nil
}

// ckptSlots is what a Log knows of its checkpoint file's two slots.
//
// A checkpoint is written in place, into one of two slots (offsets 0 and
// ckptSlotSize), each encoding carrying a sequence number; a read takes
// the valid slot with the higher one (decodeCkptFile). Rewriting the
// file through a temporary one and a rename, as before, cost a create,
// a rename and a freed block per checkpoint: a checkpoint round of
// 10,000 busy partitions took 4.9 s of the checkpointer, 1.0 s in place
// (on a file system mounted with discard, every freed block also waits
// for the disk).
//
// A write may tear its slot, so a slot is written only while the other
// holds the newest durable checkpoint, as the old file did until a
// rename replaced it:
//   - when the newest checkpoint is durable (fsynced, or written before a
//     whole-file-system sync that has since succeeded), the next one goes
//     to the other slot;
//   - when it is not (a lazy write whose sync is still due), the next
//     one overwrites it, since the other slot holds the durable one.
//
// Otherwise (the layout or the slots' durability unknown: a new file, one
// read at open before any sync, a write that failed, a checkpoint larger
// than a slot) the file is replaced through a rename, holding slot 0
// only.
type ckptSlots struct {
	// exists: the file exists and may hold a durable checkpoint, which a
	// rename must not replace with a file whose content a crash can
	// lose. missing: the file is known not to exist (a new log), so a
	// lazy first checkpoint creates it in place (a crash can lose it,
	// but nothing durable).
	exists, missing bool
	// inPlace: the file holds the slot layout, so slots may be written.
	inPlace bool
	// slot and seq are the newest checkpoint's.
	slot int
	seq  uint64
	// durable: the newest is durable; otherwise, with a Syncer, it is
	// once wholeSyncedSince(gen) (every write without an fsync is
	// followed by a whole-file-system sync).
	durable bool
	gen     uint64
	// otherDurable: the other slot holds the newest durable checkpoint
	// (set when the newest was written in place).
	otherDurable bool
}

// ckptNewestDurable reports whether the newest checkpoint is durable.
func (l *Log) ckptNewestDurable() bool {
	st := &l.ckptSlots
	return st.durable || l.syncer != nil && l.syncer.wholeSyncedSince(st.gen)
}

// writeCkptFile writes the checkpoint encoded as enc (by encode; ckptMu
// held): synced, or without an fsync for a whole-file-system sync to
// make durable. See ckptSlots.
func (l *Log) writeCkptFile(enc []byte, synced bool) error {
	st := &l.ckptSlots
	b := stampSeq(enc, st.seq+1)
	newestDurable := l.ckptNewestDurable()
	slot := -1
	switch {
	case len(b) > ckptSlotSize:
	case st.missing && !synced:
		slot = 0
	case st.inPlace && newestDurable:
		slot = 1 - st.slot
	case st.inPlace && st.otherDurable:
		slot = st.slot
	}
	l.ckptDisk = nil
	var err error
	if slot >= 0 {
		err = l.writeCkptSlot(b, slot, synced)
	} else if synced {
		err = vfs.WriteFileAtomic(l.fs, l.dir, l.ckptName, b)
	} else if st.exists {
		err = vfs.WriteFileSyncedRenamed(l.fs, l.ckptName, b)
	} else {
		err = vfs.WriteFileRenamed(l.fs, l.ckptName, b) // nothing durable to lose
	}
	if err != nil {
		// The slot written may be torn, and a failed rename may have
		// left either file: replace the file next time, keeping what
		// may be durable.
		st.inPlace, st.exists, st.missing = false, true, false
		return err
	}
	next := ckptSlots{exists: true, inPlace: len(b) <= ckptSlotSize, seq: st.seq + 1, durable: synced}
	if slot >= 0 {
		next.slot = slot
		// Nothing durable at all counts as the other slot's: until
		// the created file is durable, its slot 0 is overwritten.
		next.otherDurable = st.missing || slot == st.slot && st.otherDurable || slot != st.slot && newestDurable
	}
	if !synced && l.syncer != nil {
		next.gen = l.syncer.wholeSyncs()
	}
	*st = next
	l.ckptDisk = enc
	return nil
}

// writeCkptSlot writes b into the checkpoint file's slot. synced makes
// the log's directory durable first (the files a truncation removed or
// a first index entry created, on which the checkpoint counts, as the
// rename's directory sync did) and then the slot.
func (l *Log) writeCkptSlot(b []byte, slot int, synced bool) error {
	if synced {
		if err := l.fs.SyncDir(l.dir); err != nil {
			return err
		}
	}
	f, err := l.fs.OpenWrite(l.ckptName)
	if err != nil {
		return err
	}
	_, err = f.WriteAt(b, int64(slot)*ckptSlotSize)
	if err == nil && synced {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// closeCkptWorkers is how many goroutines CloseLogs writes checkpoints
// with: each is a file created and renamed in its log's directory, and
// one at a time 10,000 of them took 3 s of a shutdown.
const closeCkptWorkers = 8

// writeCleanCheckpoints writes the clean checkpoints of a CloseLogs
// whose data sync succeeded, without an fsync each (its second sync
// makes them durable), skipping files that hold theirs already: a log
// closed as it was opened after a clean shutdown.
func writeCleanCheckpoints(cs []closing) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(closeCkptWorkers, len(cs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(cs) {
					return
				}
				c := &cs[i]
				if !c.sync {
					continue
				}
				if b := c.ckpt.encode(); !bytes.Equal(b, c.l.ckptDisk) {
					c.err = c.l.writeCkptFile(b, false)
				}
			}
		}()
	}
	wg.Wait()
}

// Close syncs everything, writes a clean-shutdown checkpoint and closes
// the files. Pending RequestSync callbacks get ErrClosed. Idempotent.
func (l *Log) Close() error { return l.close(true) }

// Delete closes the log without syncing and removes its directory.
func (l *Log) Delete() error {
	_ = l.close(false)
	return l.fs.RemoveAll(l.dir)
}

func (l *Log) close(flush bool) error {
	l.ckptMu.Lock()
	defer l.ckptMu.Unlock()
	l.syncMu.Lock() // waits for an in-flight sync
	defer l.unlockSync()
	c, ok := l.beginCloseHeld(flush)
	if !ok {
		return nil
	}
	if c.sync {
		c.err = l.syncFiles(c.w, c.rolled, true, c.act)
		if c.err == nil {
			c.err = l.writeCkptFile(c.ckpt.encode(), true)
		}
		c.rolled = nil // syncFiles released them
	}
	return l.endCloseHeld(&c)
}

// closing is a close in progress, between beginCloseHeld and
// endCloseHeld.
type closing struct {
	l      *Log
	sync   bool // flush the files and write a clean checkpoint
	err    error
	rolled []rolledSegment
	segs   []*segment
	act    *segment
	w      *rcFile
	wait   bool // RequestSync callbacks to fail
	ckpt   checkpoint
}

// beginCloseHeld marks the log closed and captures what closing must
// flush; ok is false if it was closed already. The caller holds ckptMu
// and syncMu until endCloseHeld.
func (l *Log) beginCloseHeld(flush bool) (c closing, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return c, false
	}
	c.l = l
	if flush && l.failed == nil {
		c.err = l.flushPendLocked()
		if c.err == nil {
			c.err = l.finishActiveIndexLocked()
		}
		if c.err == nil {
			// The close's sync makes the trim durable before the
			// clean checkpoint vouches for the size.
			c.err = l.w.seal(l.act.size, false)
		}
	}
	l.dropPendLocked()
	c.sync = flush && l.failed == nil && c.err == nil
	l.closed = true
	c.rolled = l.rolled
	l.rolled = nil
	c.segs = l.segs
	c.act = l.act.seg
	c.w = l.w
	l.w = nil
	c.wait = len(l.waiters) > 0
	c.ckpt = l.checkpointLocked(true)
	c.ckpt.recoveryPoint, c.ckpt.rpMark = l.logEndOffset, l.endMarkLocked()
	return c, true
}

// endCloseHeld releases what beginCloseHeld captured.
func (l *Log) endCloseHeld(c *closing) error {
	for _, r := range c.rolled {
		r.f.release()
	}
	if c.wait {
		l.failWaitersAsync()
	}
	for _, s := range c.segs {
		files.remove(s)
	}
	if c.w != nil {
		c.w.release()
	}
	if c.err != nil {
		return fmt.Errorf("partlog: close %s: %w", l.dir, c.err)
	}
	return nil
}

// CloseLogs closes many logs served by s, as Close does for each, but
// with two whole-file-system syncs in all instead of several fsyncs per
// log when s uses one (UseWholeSync): shutting down a broker with
// 10,000 partitions then takes a moment instead of tens of seconds. The
// order still makes a clean checkpoint durable only after the data it
// vouches for.
func CloseLogs(s *Syncer, logs []*Log) error {
	if s == nil || !s.CanSyncAll() {
		var errs []error
		for _, l := range logs {
			errs = append(errs, l.Close())
		}
		return errors.Join(errs...)
	}
	// A journal cycle holds many logs' syncMu too.
	s.cycleMu.Lock()
	defer s.cycleMu.Unlock()
	cs := make([]closing, 0, len(logs))
	for _, l := range logs {
		l.ckptMu.Lock()
		l.syncMu.Lock()
		c, ok := l.beginCloseHeld(true)
		if !ok {
			l.unlockSync()
			l.ckptMu.Unlock()
			continue
		}
		cs = append(cs, c)
	}
	// Data, indexes and directories first; then the clean checkpoints,
	// written without an fsync each, made durable by the second sync.
	if err := s.syncAll(); err == nil {
		writeCleanCheckpoints(cs)
		if err := s.syncAll(); err != nil {
			for i := range cs {
				if cs[i].sync && cs[i].err == nil {
					cs[i].err = err
				}
			}
		}
	} else {
		// The whole-file-system sync failed: log by log, as Close.
		for i := range cs {
			c := &cs[i]
			if !c.sync {
				continue
			}
			c.err = c.l.syncFiles(c.w, c.rolled, true, c.act)
			c.rolled = nil
			if c.err == nil {
				c.err = c.l.writeCkptFile(c.ckpt.encode(), true)
			}
		}
	}
	var errs []error
	for i := range cs {
		c := &cs[i]
		errs = append(errs, c.l.endCloseHeld(c))
		c.l.unlockSync()
		c.l.ckptMu.Unlock()
	}
	return errors.Join(errs...)
}

// releaseFiles drops everything a failed Open had opened.
func (l *Log) releaseFiles() {
	for _, s := range l.segs {
		files.remove(s)
	}
	if l.w != nil {
		l.w.release()
		l.w = nil
	}
}

// finishActiveIndexLocked writes the active segment's pending index
// entries and a final time index entry holding the segment's max
// timestamp (Kafka does the same when a segment becomes inactive or is
// closed), so the files are complete.
func (l *Log) finishActiveIndexLocked() error {
	a := &l.act
	if e, ok := finalTimeEntry(a.lastTs, a.maxTs, a.maxTsOff, a.seg.base); ok {
		a.tidxPending = append(a.tidxPending, e)
		a.lastTs = e.ts
	}
	return l.flushIndexLocked()
}

// flushIndexLocked appends the active segment's pending index entries to
// its index files.
func (l *Log) flushIndexLocked() error {
	a := &l.act
	if len(a.idxPending) > 0 {
		b := appendIndexEntries(nil, a.idxPending)
		if err := appendFile(l.fs, a.seg.idxName, b); err != nil {
			return err
		}
		a.idxFlushed += int64(len(a.idxPending))
		a.idxPending = a.idxPending[:0]
	}
	if len(a.tidxPending) > 0 {
		b := appendTimeEntries(nil, a.tidxPending)
		if err := appendFile(l.fs, a.seg.tidxName, b); err != nil {
			return err
		}
		a.tidxFlushed += int64(len(a.tidxPending))
		a.tidxPending = a.tidxPending[:0]
	}
	return nil
}

// appendFile appends b to name, creating it if missing.
func appendFile(fs vfs.FS, name string, b []byte) error {
	f, err := fs.OpenAppend(name)
	if err != nil {
		return err
	}
	if len(b) > 0 {
		if _, err := f.Write(b); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}

// ensureIndexFiles creates s's index files that are still missing: an
// index file appears with its first entry, and a segment that closes
// with none has empty ones, so that every closed segment has both.
func ensureIndexFiles(fs vfs.FS, s *segment, idxEntries, tidxEntries int64) error {
	if idxEntries == 0 {
		if err := appendFile(fs, s.idxName, nil); err != nil {
			return err
		}
	}
	if tidxEntries == 0 {
		return appendFile(fs, s.tidxName, nil)
	}
	return nil
}

// statIndex is Stat for the active segment's index files, which do not
// exist until their first entry: a missing one is an empty one.
func statIndex(fs vfs.FS, name string) (vfs.FileInfo, error) {
	fi, err := fs.Stat(name)
	if vfs.IsNotExist(err) {
		return vfs.FileInfo{}, nil
	}
	return fi, err
}

// syncIfExists fsyncs name unless it does not exist (an active
// segment's index file before its first entry).
func syncIfExists(fs vfs.FS, name string) error {
	f, err := fs.Open(name)
	if vfs.IsNotExist(err) {
		return nil
	}
	return syncAndClose(f, err)
}

// writeIndexFiles replaces a segment's index files with the given entries
// (not synced: the caller syncs when it needs them durable).
func writeIndexFiles(fs vfs.FS, s *segment, idx []indexEntry, tidx []timeEntry) error {
	if err := writeFile(fs, s.idxName, appendIndexEntries(make([]byte, 0, len(idx)*offsetIndexEntrySize), idx)); err != nil {
		return err
	}
	return writeFile(fs, s.tidxName, appendTimeEntries(make([]byte, 0, len(tidx)*timeIndexEntrySize), tidx))
}

func writeFile(fs vfs.FS, name string, b []byte) error {
	f, err := fs.Create(name)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// syncFile opens name and fsyncs it.
func syncFile(fs vfs.FS, name string) error {
	return syncAndClose(fs.OpenAppend(name))
}

// syncAndClose fsyncs and closes f, which an open returned with err.
func syncAndClose(f vfs.File, err error) error {
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// removeSegmentFiles deletes a segment's files (missing ones are fine).
func (l *Log) removeSegmentFiles(s *segment) error {
	files.remove(s)
	var first error
	for _, name := range []string{s.logName, s.idxName, s.tidxName} {
		if err := l.fs.Remove(name); err != nil && !vfs.IsNotExist(err) && first == nil {
			first = err
		}
	}
	return first
}

// readGen changes whenever segment bytes that a reader may have located
// change under it (truncation, compaction swap, Reopen); readers retry
// when it moved.
func (l *Log) readGen() uint64 { return l.truncGen.Load() + l.swapGen.Load() }

// segBaseLocked is the base offset of the segment holding off.
func (l *Log) segBaseLocked(off int64) int64 { return l.segs[l.findSegmentLocked(off)].base }

// findSegmentLocked returns the index of the segment holding off: the
// last one whose base is <= off (0 if off is below every base).
func (l *Log) findSegmentLocked(off int64) int {
	lo, hi := 0, len(l.segs)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if l.segs[m].base <= off {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return max(lo-1, 0)
}
