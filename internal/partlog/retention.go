package partlog

import (
	"fmt"
	"time"
)

// Retention is a delete policy (Kafka's cleanup.policy=delete):
// EnforceRetention deletes the oldest segments that break it.
type Retention struct {
	// Ms is retention.ms: a segment whose largest record timestamp is
	// more than Ms before Now is deleted (its LastModified when it has no
	// timestamp). Negative: no time limit.
	Ms int64
	// Bytes is retention.bytes: the oldest segments are deleted while
	// the log without them is still at least Bytes large. Negative: no
	// size limit.
	Bytes int64
	// Now is the time of the pass.
	Now time.Time
}

// RetentionResult reports what EnforceRetention did.
type RetentionResult struct {
	// Segments and Bytes count the deleted segments and their .log
	// bytes.
	Segments int
	Bytes    int64
	// ByTime and BySize report which limits were breached.
	ByTime, BySize bool
	// LogStartOffset is the log start offset afterwards.
	LogStartOffset int64
}

// EnforceRetention deletes, oldest first, the segments that break r, as
// Kafka's retention does: a segment goes when its largest timestamp is
// older than r.Ms, or while the log would still hold r.Bytes without
// it. Only segments wholly below the high watermark are deleted. When
// every segment breaks the policy the active one is rolled first so it
// can go too (Kafka's rule), leaving an empty active segment at the log
// end offset. The log start offset advances to the first kept segment.
func (l *Log) EnforceRetention(r Retention) (RetentionResult, error) {
	var res RetentionResult
	segs := l.Segments()
	if len(segs) == 0 {
		return res, ErrClosed
	}
	hw := l.HighWatermark()
	eligible := func(si SegmentInfo) bool {
		return si.NextOffset <= hw && !(si.Active && si.Size == 0)
	}
	byTime := 0
	if r.Ms >= 0 {
		now := r.Now.UnixMilli()
		for _, si := range segs {
			ts := si.MaxTimestamp
			if ts < 0 {
				ts = si.LastModified.UnixMilli()
			}
			if !eligible(si) || now-ts <= r.Ms {
				break
			}
			byTime++
		}
	}
	bySize := 0
	if r.Bytes >= 0 {
		var total int64
		for _, si := range segs {
			total += si.Size
		}
		excess := total - r.Bytes
		for _, si := range segs {
			if !eligible(si) || excess-si.Size < 0 {
				break
			}
			excess -= si.Size
			bySize++
		}
	}
	n := max(byTime, bySize)
	if n == 0 {
		res.LogStartOffset = l.LogStartOffset()
		return res, nil
	}
	res.ByTime, res.BySize = byTime > 0, bySize > 0
	last := segs[n-1]
	if last.Active {
		if err := l.Roll(); err != nil {
			return res, err
		}
	}
	for _, si := range segs[:n] {
		res.Bytes += si.Size
	}
	deleted, err := l.DeleteSegmentsBefore(last.NextOffset)
	res.Segments = deleted
	if deleted < n {
		// Appends or another deletion moved segments under us: count
		// only what went.
		res.Bytes = 0
		for _, si := range segs[:deleted] {
			res.Bytes += si.Size
		}
	}
	res.LogStartOffset = l.LogStartOffset()
	return res, err
}

// DeleteSegmentsBefore deletes the closed segments whose NextOffset is <=
// offset (never the active one) and advances LogStartOffset to at least
// the new first segment's base offset. The checkpoint is written before
// any file is removed. It returns how many segments it deleted. Retention
// policy (time, size) is the caller's.
func (l *Log) DeleteSegmentsBefore(offset int64) (deleted int, err error) {
	l.ckptMu.Lock()
	defer l.ckptMu.Unlock()
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return 0, ErrClosed
	}
	victims := l.coveredSegmentsLocked(offset)
	if len(victims) > 0 {
		l.advanceStartLocked(l.segs[0].base)
	}
	l.mu.Unlock()
	return len(victims), l.removeAfterCheckpoint(victims)
}

// SetLogStartOffset advances LogStartOffset to off (DeleteRecords; the
// caller clamps it to the high watermark), writes the checkpoint, then
// deletes the closed segments wholly below it. Reads below it fail with
// ErrOffsetOutOfRange. Lower offsets are ignored; offsets above
// LogEndOffset are an error.
func (l *Log) SetLogStartOffset(off int64) error {
	l.ckptMu.Lock()
	defer l.ckptMu.Unlock()
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	if off > l.logEndOffset {
		leo := l.logEndOffset
		l.mu.Unlock()
		return fmt.Errorf("%w: log start offset %d beyond log end offset %d", ErrOffsetOutOfRange, off, leo)
	}
	if off <= l.logStartOffset {
		l.mu.Unlock()
		return nil
	}
	l.advanceStartLocked(off)
	victims := l.coveredSegmentsLocked(off)
	l.mu.Unlock()
	return l.removeAfterCheckpoint(victims)
}

// coveredSegmentsLocked unlinks from segs the closed segments whose next
// offset is <= offset and returns them.
func (l *Log) coveredSegmentsLocked(offset int64) []*segment {
	n := 0
	for n < len(l.segs)-1 && l.segs[n+1].base <= offset {
		n++
	}
	if n == 0 {
		return nil
	}
	victims := append([]*segment(nil), l.segs[:n]...)
	l.segs = append([]*segment(nil), l.segs[n:]...)
	// A rolled segment not yet synced needs no sync any more: drop it
	// from the list, or the syncer would recreate its removed indexes.
	kept := l.rolled[:0]
	for _, r := range l.rolled {
		if r.seg.next <= offset && r.seg.base < l.segs[0].base {
			r.f.release()
			continue
		}
		kept = append(kept, r)
	}
	clear(l.rolled[len(kept):])
	l.rolled = kept
	return victims
}

// advanceStartLocked raises LogStartOffset to off, keeping the
// invariants.
func (l *Log) advanceStartLocked(off int64) {
	if off <= l.logStartOffset {
		return
	}
	l.logStartOffset = off
	l.highWatermark = max(l.highWatermark, off)
	l.epochs = truncateEpochsFromStart(l.epochs, off)
	l.markCkptDirtyLocked()
}

// removeAfterCheckpoint writes the checkpoint (so a crash never brings
// deleted offsets back), then removes the victims' files. ckptMu is held.
func (l *Log) removeAfterCheckpoint(victims []*segment) error {
	if len(victims) == 0 {
		return nil
	}
	if err := l.writeCheckpointCkptHeld(false); err != nil {
		// The segments are gone from the log already; Open deletes the
		// files below the checkpointed start offset, or they stay
		// unreachable until the next deletion.
		l.logger.Error("partlog: checkpoint before segment deletion", "err", err)
	}
	var first error
	for _, s := range victims {
		if err := l.removeSegmentFiles(s); err != nil && first == nil {
			first = err
		}
	}
	l.mu.Lock()
	l.dirDirty = true
	l.mu.Unlock()
	if first != nil {
		return fmt.Errorf("partlog: delete segments: %w", first)
	}
	return nil
}
