package partlog

import (
	"fmt"

	"github.com/gregor-streaming/gregor/internal/batch"
	"github.com/gregor-streaming/gregor/internal/vfs"
)

// TruncateTo removes every batch holding an offset >= offset (a follower
// whose log diverged from the leader's), fixing the indexes, the leader
// epoch history, the high watermark and the recovery point, and writes
// the checkpoint before returning. Truncation is at batch boundaries:
// when offset falls inside a batch the whole batch goes, and
// LogEndOffset afterwards is that batch's base offset. An offset below
// LogStartOffset empties the log and restarts it at offset (Kafka's
// truncateFullyAndStartAt).
func (l *Log) TruncateTo(offset int64) error { return l.truncate(offset, false) }

// TruncateFullyAndStartAt empties the log and restarts it at offset,
// whatever its log end offset: a follower whose log ends below the
// leader's log start offset (Kafka's truncateFullyAndStartAt).
func (l *Log) TruncateFullyAndStartAt(offset int64) error { return l.truncate(offset, true) }

func (l *Log) truncate(offset int64, fully bool) error {
	l.ckptMu.Lock()
	defer l.ckptMu.Unlock()
	l.mu.Lock()
	if err := l.writableLocked(); err != nil {
		l.mu.Unlock()
		return err
	}
	if offset >= l.logEndOffset && !fully {
		l.mu.Unlock()
		return nil
	}
	if err := l.flushPendLocked(); err != nil {
		l.mu.Unlock()
		return fmt.Errorf("partlog: truncate %s to %d: %w", l.dir, offset, err)
	}
	if err := l.journalCutLocked(offset); err != nil {
		l.mu.Unlock()
		return fmt.Errorf("partlog: truncate %s to %d: journal: %w", l.dir, offset, err)
	}
	var err error
	if fully || offset < l.logStartOffset || offset < 0 {
		offset = max(offset, 0)
		l.logger.Warn("partlog: truncating below the log start offset; starting over", "offset", offset)
		l.truncGen.Add(1)
		if err = l.resetToLocked(offset); err != nil {
			l.failLocked(err)
		}
	} else {
		err = l.truncateLocked(offset)
	}
	l.mu.Unlock()
	if err != nil {
		return fmt.Errorf("partlog: truncate %s to %d: %w", l.dir, offset, err)
	}
	return l.writeCheckpointCkptHeld(false)
}

// truncateLocked implements TruncateTo for offset in [LogStartOffset,
// LogEndOffset). It does file I/O under mu: truncation is rare and must
// not race appends.
func (l *Log) truncateLocked(offset int64) error {
	i := l.findSegmentLocked(offset)
	s := l.segs[i]
	wasActive := s == l.act.seg
	if wasActive {
		if err := l.flushIndexLocked(); err != nil {
			l.failLocked(err)
			return err
		}
	}
	// Open the segment's log for writing (the writer, if active).
	var f vfs.File
	if wasActive {
		f = l.w.f
	} else {
		var err error
		if f, err = l.fs.OpenWrite(s.logName); err != nil {
			return err
		}
	}
	size, err := f.Size()
	if err != nil {
		return l.truncFail(f, wasActive, err)
	}
	if wasActive {
		size = l.act.size
	}
	idxBytes, err := vfs.ReadFile(l.fs, s.idxName)
	if err != nil && !vfs.IsNotExist(err) {
		return l.truncFail(f, wasActive, err)
	}
	tidxBytes, err := vfs.ReadFile(l.fs, s.tidxName)
	if err != nil && !vfs.IsNotExist(err) {
		return l.truncFail(f, wasActive, err)
	}
	idx := decodeIndexEntries(idxBytes, size)
	tidx := decodeTimeEntries(tidxBytes)

	// Find the cut: the first batch whose last offset is >= offset.
	rel := offset - s.base
	start := int64(0)
	k := 0
	for k < len(idx) && int64(idx[k].rel) < rel {
		k++
	}
	if k > 0 {
		start = int64(idx[k-1].pos)
	}
	sc := newScanner(f, size, 0)
	defer sc.release()
	cut, newEnd := size, offset
	for p := start; p < size; {
		if cr := corruptAt(s.corrupt, p); cr != nil {
			if cr.nextOff > offset {
				cut = p
				break
			}
			p = cr.end
			continue
		}
		w, err := sc.peek(p, min(batch.HeaderSize, int(size-p)))
		if err != nil {
			return l.truncFail(f, wasActive, err)
		}
		h, perr := batch.ParseHeader(w)
		if perr != nil || p+int64(h.Size()) > size {
			cut = p // unreadable: nothing valid can be kept from here
			break
		}
		if h.LastOffset() >= offset {
			cut = p
			newEnd = min(offset, h.BaseOffset)
			break
		}
		p += int64(h.Size())
	}
	newEnd = max(newEnd, s.base)

	// Keep index entries below the cut.
	for len(idx) > 0 && int64(idx[len(idx)-1].pos) >= cut {
		idx = idx[:len(idx)-1]
	}
	for len(tidx) > 0 && s.base+int64(tidx[len(tidx)-1].rel) >= newEnd {
		tidx = tidx[:len(tidx)-1]
	}
	// The new active state: scan from the last kept index entry.
	a := activeState{seg: s, size: cut, lastTs: -1, maxTs: -1, maxTsOff: s.base, firstTs: -1,
		created: l.now(), modified: l.now(),
		idxPending: l.act.idxPending[:0], tidxPending: l.act.tidxPending[:0]}
	from := int64(0)
	if n := len(idx); n > 0 {
		a.lastIdx, a.hasIdx = idx[n-1], true
		from = int64(idx[n-1].pos)
	}
	if n := len(tidx); n > 0 {
		a.lastTs, a.maxTs, a.maxTsOff = tidx[n-1].ts, tidx[n-1].ts, s.base+int64(tidx[n-1].rel)
	}
	a.bytesSinceIdx = cut - from
	for p := from; p < cut; {
		if cr := corruptAt(s.corrupt, p); cr != nil {
			p = cr.end
			continue
		}
		w, err := sc.peek(p, batch.HeaderSize)
		if err != nil {
			return l.truncFail(f, wasActive, err)
		}
		h, _ := batch.ParseHeader(w)
		if h.MaxTimestamp > a.maxTs {
			a.maxTs, a.maxTsOff = h.MaxTimestamp, h.LastOffset()
		}
		p += int64(h.Size())
	}
	if cut > 0 {
		w, err := sc.peek(0, batch.HeaderSize)
		if err != nil {
			return l.truncFail(f, wasActive, err)
		}
		h, _ := batch.ParseHeader(w)
		a.firstTs = h.MaxTimestamp
	}
	a.idxFlushed, a.tidxFlushed = int64(len(idx)), int64(len(tidx))

	// Point of no return: change the files.
	l.truncGen.Add(1)
	truncate := f.Truncate
	if wasActive {
		truncate = l.w.truncateData // the reservation goes too
	}
	if err := truncate(cut); err != nil {
		l.failLocked(err)
		return l.truncFail(f, wasActive, err)
	}
	if err := f.Sync(); err != nil { // a truncation that is undone by a crash would resurrect divergent data
		l.failLocked(err)
		return l.truncFail(f, wasActive, err)
	}
	if err := writeIndexFiles(l.fs, s, idx, tidx); err != nil {
		l.failLocked(err)
		return l.truncFail(f, wasActive, err)
	}
	files.drop(s, cacheIndex)
	for _, t := range l.segs[i+1:] {
		if err := l.removeSegmentFiles(t); err != nil {
			l.logger.Warn("partlog: remove truncated segment", "segment", t.logName, "err", err)
		}
	}
	if !wasActive {
		// The closed segment becomes the active one: a fresh segment
		// value, since the old one may be cached as closed.
		l.w.release()
		ns := newSegment(l.dir, s.base)
		files.remove(s)
		a.seg = ns
		s = ns
		l.w = newRCFile(f, 1)
	}
	var keep []corruptRange
	for _, cr := range l.segs[i].corrupt {
		if cr.end <= cut {
			keep = append(keep, cr)
		}
	}
	s.corrupt = keep
	s.next = newEnd
	l.segs = append(l.segs[:i:i], s)
	l.act = a
	l.logEndOffset = newEnd
	l.highWatermark = min(l.highWatermark, newEnd)
	if newEnd < l.recoveryPoint {
		l.recoveryPoint, l.rpMark = newEnd, noMark
	}
	l.jEnd, l.jDurable = min(l.jEnd, newEnd), min(l.jDurable, newEnd)
	l.cleanerOffset = min(l.cleanerOffset, newEnd)
	l.epochs = truncateEpochsFromEnd(l.epochs, newEnd)
	l.dirDirty = true
	l.markCkptDirtyLocked()
	return nil
}

func (l *Log) truncFail(f vfs.File, wasActive bool, err error) error {
	if !wasActive {
		f.Close()
	}
	return err
}

// decodeIndexEntries decodes an offset index, keeping the longest prefix
// of strictly increasing entries inside the log.
func decodeIndexEntries(b []byte, logSize int64) []indexEntry {
	es := make([]indexEntry, 0, len(b)/offsetIndexEntrySize)
	for len(b) >= offsetIndexEntrySize {
		e := getIndexEntry(b)
		b = b[offsetIndexEntrySize:]
		if n := len(es); e.rel < 0 || e.pos < 0 || int64(e.pos) >= logSize || n > 0 && (e.rel <= es[n-1].rel || e.pos <= es[n-1].pos) {
			break
		}
		es = append(es, e)
	}
	return es
}

// decodeTimeEntries decodes a time index, keeping the longest prefix of
// increasing entries.
func decodeTimeEntries(b []byte) []timeEntry {
	es := make([]timeEntry, 0, len(b)/timeIndexEntrySize)
	for len(b) >= timeIndexEntrySize {
		e := getTimeEntry(b)
		b = b[timeIndexEntrySize:]
		if n := len(es); e.rel < 0 || n > 0 && (e.ts <= es[n-1].ts || e.rel < es[n-1].rel) {
			break
		}
		es = append(es, e)
	}
	return es
}
