package partlog

import "fmt"

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
	if err := l.writeCheckpointCkptHeld(); err != nil {
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
