package partlog

import (
	"fmt"
	"math"

	"github.com/gregor-streaming/gregor/internal/batch"
	"github.com/gregor-streaming/gregor/internal/vfs"
)

// Append writes one or more back-to-back RecordBatch v2 batches that the
// caller already validated, assigning offsets from the log end offset: it
// rewrites each batch's baseOffset and stamps partitionLeaderEpoch (both
// outside the CRC) in b, which it owns only until it returns. It rolls the
// active segment first when needed, writes b with one write call and
// maintains the indexes. A leaderEpoch newer than the history's last entry
// starts a new entry at baseOffset. It returns the first batch's base
// offset and the last offset written.
func (l *Log) Append(b []byte, leaderEpoch int32) (baseOffset, lastOffset int64, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.writableLocked(); err != nil {
		return -1, -1, err
	}
	if len(b) == 0 {
		return -1, -1, fmt.Errorf("%w: empty append", ErrInvalidBatch)
	}
	base := l.logEndOffset
	next := base
	maxTs := int64(-1)
	for p := 0; p < len(b); {
		h, err := batch.ParseHeader(b[p:])
		if err != nil {
			return -1, -1, fmt.Errorf("%w at byte %d: %w", ErrInvalidBatch, p, err)
		}
		size := h.Size()
		if size > len(b)-p || h.LastOffsetDelta < 0 {
			return -1, -1, fmt.Errorf("%w at byte %d: length %d, lastOffsetDelta %d", ErrInvalidBatch, p, h.Length, h.LastOffsetDelta)
		}
		batch.SetBaseOffset(b[p:], next)
		batch.SetPartitionLeaderEpoch(b[p:], leaderEpoch)
		next += int64(h.LastOffsetDelta) + 1
		maxTs = max(maxTs, h.MaxTimestamp)
		p += size
	}
	if err := l.appendJournaledLocked(b, base, next-1, maxTs); err != nil {
		return -1, -1, err
	}
	if n := len(l.epochs); leaderEpoch >= 0 && (n == 0 || l.epochs[n-1].Epoch < leaderEpoch) {
		l.epochs = assignEpoch(l.epochs, leaderEpoch, base)
		l.markCkptEpochLocked(base)
	}
	return base, next - 1, nil
}

// AppendRaw appends batches keeping their offsets and leader epochs, as a
// follower does with what it fetched from the leader. Each batch is fully
// validated (CRC included); the first base offset must be >= the log end
// offset and each batch must start at or after the previous one's next
// offset (gaps from compaction are kept). The leader epoch history gains
// an entry for each batch whose epoch is newer than its last. It returns
// the last offset written.
func (l *Log) AppendRaw(b []byte) (lastOffset int64, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.writableLocked(); err != nil {
		return -1, err
	}
	if len(b) == 0 {
		return -1, fmt.Errorf("%w: empty append", ErrInvalidBatch)
	}
	prevNext := l.logEndOffset
	first := int64(-1)
	maxTs := int64(-1)
	for p := 0; p < len(b); {
		h, err := batch.Validate(b[p:])
		if err != nil {
			return -1, fmt.Errorf("%w at byte %d: %w", ErrInvalidBatch, p, err)
		}
		if h.BaseOffset < prevNext {
			return -1, fmt.Errorf("%w: batch at offset %d, expected >= %d", ErrNonMonotonicOffset, h.BaseOffset, prevNext)
		}
		if first < 0 {
			first = h.BaseOffset
		}
		prevNext = h.NextOffset()
		maxTs = max(maxTs, h.MaxTimestamp)
		p += h.Size()
	}
	last := prevNext - 1
	if last-first > math.MaxInt32 {
		return -1, fmt.Errorf("%w: batches span %d offsets", ErrNonMonotonicOffset, last-first+1)
	}
	if err := l.appendJournaledLocked(b, first, last, maxTs); err != nil {
		return -1, err
	}
	n := len(l.epochs)
	for p := 0; p < len(b); {
		h, _ := batch.ParseHeader(b[p:])
		l.epochs = assignEpoch(l.epochs, h.PartitionLeaderEpoch, h.BaseOffset)
		p += h.Size()
	}
	if len(l.epochs) != n {
		l.markCkptEpochLocked(first)
	}
	return last, nil
}

// appendJournaledLocked appends batches b holding [first, last] and adds
// them to the journal when they are small, syncs currently cover many
// logs at once, and every offset before them is durable or journaled
// already (see Journal). A journaled append waits in the pending buffer
// instead of being written at once (pend.go).
func (l *Log) appendJournaledLocked(b []byte, first, last, maxTs int64) error {
	j := l.journal()
	if j == nil || len(b) > JournalMaxAppend || l.jEnd != first || !l.syncer.manyLogs.Load() {
		return l.appendLocked(b, first, last, maxTs, false)
	}
	if err := l.appendLocked(b, first, last, maxTs, true); err != nil {
		return err
	}
	if seq := j.add(l, journalKindBatch, first, b); seq != 0 {
		l.jSeq, l.jEnd = seq, last+1
		return nil
	}
	// The journal failed: the segment must hold the bytes.
	return l.flushPendLocked()
}

// journal returns the Syncer's journal while it is in use.
func (l *Log) journal() *Journal {
	if l.syncer == nil || l.syncer.journal == nil || !l.syncer.journal.active.Load() {
		return nil
	}
	return l.syncer.journal
}

func (l *Log) writableLocked() error {
	if l.closed {
		return ErrClosed
	}
	return l.failed
}

// appendLocked writes whole, offset-assigned batches b holding offsets
// [first, last] with largest batch max timestamp maxTs to the active
// segment, rolling first if needed. buffer lets it keep b in the pending
// buffer (the caller journals b).
func (l *Log) appendLocked(b []byte, first, last, maxTs int64, buffer bool) error {
	if l.shouldRollLocked(int64(len(b)), first, last, maxTs) {
		if err := l.rollLocked(first); err != nil {
			return err
		}
	}
	a := &l.act
	buffered := false
	if buffer {
		var err error
		if buffered, err = l.bufferLocked(b, first); err != nil {
			return err
		}
	}
	if !buffered {
		if err := l.flushPendLocked(); err != nil {
			return err
		}
		n, err := l.w.writeData(b, a.size, l.allocAhead())
		if err != nil || n != len(b) {
			if err == nil {
				err = fmt.Errorf("short write: %d of %d bytes", n, len(b))
			}
			// Undo a partial write so the file ends at a batch boundary.
			if terr := l.w.truncateData(a.size); terr != nil {
				l.failLocked(fmt.Errorf("partlog: undo partial write of %s: %w (after %w)", a.seg.logName, terr, err))
			}
			return fmt.Errorf("partlog: append to %s: %w", a.seg.logName, err)
		}
		if len(b) >= writeBehindMin {
			l.writeBehind(a.size, int64(len(b)))
		}
	}
	interval := int64(l.cfg.IndexIntervalBytes)
	segBase := a.seg.base
	pos := a.size
	for p := 0; p < len(b); {
		h, _ := batch.ParseHeader(b[p:])
		bl := h.LastOffset()
		if pos == 0 {
			a.firstTs = h.MaxTimestamp
		}
		if h.MaxTimestamp > a.maxTs {
			a.maxTs, a.maxTsOff = h.MaxTimestamp, bl
		}
		if a.bytesSinceIdx > interval {
			e := indexEntry{rel: int32(bl - segBase), pos: int32(pos)}
			a.idxPending = append(a.idxPending, e)
			a.lastIdx, a.hasIdx = e, true
			if a.maxTs > a.lastTs {
				a.tidxPending = append(a.tidxPending, timeEntry{ts: a.maxTs, rel: int32(a.maxTsOff - segBase)})
				a.lastTs = a.maxTs
			}
			a.bytesSinceIdx = 0
		}
		size := int64(h.Size())
		pos += size
		a.bytesSinceIdx += size
		p += int(size)
	}
	a.size = pos
	a.modified = l.now()
	l.logEndOffset = last + 1
	a.seg.next = last + 1
	if len(a.idxPending) >= maxPendingIndexEntries || len(a.tidxPending) >= maxPendingIndexEntries {
		if err := l.flushIndexLocked(); err != nil {
			// The index files may hold a partial write now; refuse
			// further appends rather than serve a misaligned index.
			l.failLocked(fmt.Errorf("partlog: write index of %s: %w", a.seg.logName, err))
		}
	}
	return nil
}

// shouldRollLocked applies Kafka's roll rules to an append of n bytes
// holding offsets [first, last] with largest max timestamp maxTs.
func (l *Log) shouldRollLocked(n, first, last, maxTs int64) bool {
	a := &l.act
	if last-a.seg.base > math.MaxInt32 || first < a.seg.base {
		return true // relative offsets must fit the indexes' int32
	}
	if a.size == 0 {
		return false
	}
	c := &l.cfg
	if a.size+n > c.SegmentBytes {
		return true
	}
	if a.firstTs >= 0 {
		if maxTs-a.firstTs > c.SegmentMs {
			return true
		}
	} else if l.now().Sub(a.created).Milliseconds() > c.SegmentMs {
		return true
	}
	maxIdx := int64(c.SegmentIndexBytes)
	if (a.idxFlushed+int64(len(a.idxPending))+1)*offsetIndexEntrySize > maxIdx ||
		(a.tidxFlushed+int64(len(a.tidxPending))+1)*timeIndexEntrySize > maxIdx {
		return true
	}
	return false
}

// Roll closes the active segment and starts a new one at the log end
// offset, unless the active segment is empty. Retention uses it to make
// an expired active segment deletable, as Kafka does.
func (l *Log) Roll() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.writableLocked(); err != nil {
		return err
	}
	if l.act.size == 0 {
		return nil
	}
	return l.rollLocked(l.logEndOffset)
}

// rollLocked makes a new active segment with base offset newBase. An
// empty active segment is replaced instead of closed.
func (l *Log) rollLocked(newBase int64) error {
	if err := l.flushPendLocked(); err != nil {
		return fmt.Errorf("partlog: roll: %w", err)
	}
	// No later segment may exist while this one has reserved space
	// past its data: recovery would take the zeros for damage.
	if err := l.w.seal(l.act.size, true); err != nil {
		err = fmt.Errorf("partlog: roll: trim %s: %w", l.act.seg.logName, err)
		l.failLocked(err) // as after any failed fsync
		return err
	}
	seg := newSegment(l.dir, newBase)
	f, err := createWriter(l.fs, seg.logName)
	if err != nil {
		return fmt.Errorf("partlog: roll: %w", err)
	}
	now := l.now()
	a := &l.act
	old, oldW := a.seg, l.w
	closedOne := a.size > 0
	if a.size == 0 {
		oldW.release()
		if err := l.removeSegmentFiles(old); err != nil {
			l.logger.Warn("partlog: remove empty segment", "segment", old.logName, "err", err)
		}
		l.segs = l.segs[:len(l.segs)-1]
	} else {
		old.cacheFrom.Store(0) // just written: cached until its sync says
		// A closed segment always has both index files, empty or not
		// (the active one gets them with its first entries).
		ierr := l.finishActiveIndexLocked()
		if ierr == nil {
			ierr = ensureIndexFiles(l.fs, old, a.idxFlushed, a.tidxFlushed)
		}
		if ierr != nil {
			l.failLocked(fmt.Errorf("partlog: write index of %s: %w", old.logName, ierr))
		}
		old.next = newBase
		old.setMeta(segMeta{size: a.size, maxTs: a.maxTs, maxTsOff: a.maxTsOff, idxEntries: a.idxFlushed, modified: a.modified})
		oldW.acquire()
		l.rolled = append(l.rolled, rolledSegment{seg: old, f: oldW, size: a.size})
		files.adopt(old, oldW) // the Log's reference becomes the cache's
	}
	l.segs = append(l.segs, seg)
	l.w = newRCFile(f, 1)
	l.act = activeState{
		seg:         seg,
		idxPending:  a.idxPending[:0],
		tidxPending: a.tidxPending[:0],
		lastTs:      -1,
		maxTs:       -1,
		maxTsOff:    newBase,
		firstTs:     -1,
		created:     now,
		modified:    now,
	}
	if l.logEndOffset < newBase {
		l.logEndOffset = newBase
	}
	l.dirDirty = true
	l.markCkptDirtyLocked()
	if l.onRoll != nil && closedOne {
		l.onRoll()
	}
	return nil
}

// writeBehindMin is the smallest append whose pages are handed to the
// disk at once (writeBehind). Each call costs the broker CPU that pays
// only for enough I/O: at 64 KiB, 100 B records to 8 partitions
// (appends of ~110 KB) gained 2-9% records/s for 16% more CPU per GiB,
// while 1 KiB records (~440 KB) gained 15-20% for 8%.
const writeBehindMin = 256 << 10

// writeBehind starts writing the whole pages of the n bytes just
// appended at off to the disk, without waiting, so that the sync that
// acknowledges them finds their I/O under way or done: an append of a
// throughput producer's request no longer waits until the last
// partition of the request is written and the round's syncfs starts.
// The partial page at either end is left to the sync: it would be
// written again with the next append. Nothing is made durable here and
// an error is not reported: a failed writeback fails the next sync.
//
// Eight partitions of 1 KiB records, one producer (`loadgen produce`,
// fresh brokers alternating): 563k/565k/566k → 666k/655k/637k records/s
// at 0.76-0.79 → 0.84-0.89 CPU-s/GiB (the writeback's submission, which
// the kernel's flusher did for syncfs, now runs in the broker;
// docs/PERFORMANCE.md, "Write-behind").
func (l *Log) writeBehind(off, n int64) {
	from := (off + pageSize - 1) &^ (pageSize - 1)
	to := (off + n) &^ (pageSize - 1)
	if to > from {
		_ = vfs.StartWriteBack(l.w.f, from, to-from)
	}
}
