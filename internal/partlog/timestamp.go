package partlog

import (
	"fmt"
	"math"

	"github.com/gregor-streaming/gregor/internal/batch"
	"github.com/gregor-streaming/gregor/internal/vfs"
)

// OffsetForTimestamp answers ListOffsets by timestamp: the offset and
// timestamp of the first record (not batch) at or after LogStartOffset
// whose timestamp is >= ts. Record timestamps are baseTimestamp +
// timestampDelta, or the batch's maxTimestamp for LogAppendTime batches;
// compressed batches are decompressed. It finds the first segment whose
// max timestamp reaches ts, starts at its time index entry, and scans.
// found is false when no record qualifies. The special timestamps -1 and
// -2 (latest, earliest) are the caller's: use LogEndOffset and
// LogStartOffset.
func (l *Log) OffsetForTimestamp(ts int64) (offset int64, timestamp int64, found bool, err error) {
	segs, lso, err := l.segmentsFrom(-1)
	if err != nil {
		return -1, -1, false, err
	}
	for _, s := range segs {
		maxTs, err := l.segMaxTs(s)
		if err != nil {
			return -1, -1, false, err
		}
		if maxTs < ts {
			continue
		}
		from := max(lso, s.base)
		if e, ok, err := l.timeLookup(s, ts); err != nil {
			return -1, -1, false, err
		} else if ok {
			from = max(from, s.base+int64(e.rel))
		}
		var resOff, resTs int64 = -1, -1
		err = l.scanBatches(s, from, func(b []byte, h *batch.Header) (bool, error) {
			if h.MaxTimestamp < ts {
				return true, nil
			}
			err := forEachRecord(b, h, func(off, rts int64) bool {
				if off >= lso && rts >= ts {
					resOff, resTs = off, rts
					return false
				}
				return true
			})
			return resOff < 0, err
		})
		if err != nil {
			return -1, -1, false, err
		}
		if resOff >= 0 {
			return resOff, resTs, true, nil
		}
	}
	return -1, -1, false, nil
}

// MaxTimestamp answers ListOffsets MAX_TIMESTAMP (KIP-734): the offset
// and timestamp of the record with the largest timestamp at or after
// LogStartOffset, the first such record on ties. found is false on an
// empty log (or one without timestamps).
func (l *Log) MaxTimestamp() (offset int64, timestamp int64, found bool, err error) {
	segs, lso, err := l.segmentsFrom(-1)
	if err != nil {
		return -1, -1, false, err
	}
	var best *segment
	bestTs := int64(-1)
	var bestOff int64 = -1
	for _, s := range segs {
		if s.base < lso {
			// The segment holding the log start offset: only records at
			// or after it count, so find its max by scanning.
			off, ts, err := l.scanMax(s, lso, lso)
			if err != nil {
				return -1, -1, false, err
			}
			if off >= 0 && ts > bestTs {
				best, bestTs, bestOff = nil, ts, off
			}
			continue
		}
		maxTs, err := l.segMaxTs(s)
		if err != nil {
			return -1, -1, false, err
		}
		if maxTs > bestTs {
			best, bestTs, bestOff = s, maxTs, -1
		}
	}
	if bestTs < 0 {
		return -1, -1, false, nil
	}
	if best == nil {
		return bestOff, bestTs, true, nil
	}
	off, ts, err := l.scanMax(best, best.base, lso)
	if err != nil {
		return -1, -1, false, err
	}
	if off < 0 {
		return -1, -1, false, nil
	}
	return off, ts, true, nil
}

// segmentsFrom snapshots the segments holding offsets >= the log start
// offset.
func (l *Log) segmentsFrom(int64) ([]*segment, int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, 0, ErrClosed
	}
	var out []*segment
	for i, s := range l.segs {
		if i+1 < len(l.segs) && l.segs[i+1].base <= l.logStartOffset {
			continue
		}
		out = append(out, s)
	}
	if l.logStartOffset == l.logEndOffset {
		out = nil
	}
	return out, l.logStartOffset, nil
}

// segMaxTs returns a segment's largest batch max timestamp.
func (l *Log) segMaxTs(s *segment) (int64, error) {
	l.mu.Lock()
	if s == l.act.seg {
		ts := l.act.maxTs
		l.mu.Unlock()
		return ts, nil
	}
	l.mu.Unlock()
	m, err := l.segMeta(s)
	return m.maxTs, err
}

// timeLookup returns the segment's last time index entry with ts <=
// target.
func (l *Log) timeLookup(s *segment, target int64) (timeEntry, bool, error) {
	l.mu.Lock()
	var pending []timeEntry
	if s == l.act.seg {
		pending = append(pending, l.act.tidxPending...)
	}
	l.mu.Unlock()
	if len(pending) > 0 && pending[0].ts <= target {
		i := len(pending) - 1
		for pending[i].ts > target {
			i--
		}
		return pending[i], true, nil
	}
	e, ok, err := lookupTimeIndex(l.fs, s.tidxName, target)
	if err != nil {
		l.logger.Warn("partlog: time index unusable; scanning", "segment", s.tidxName, "err", err)
		return timeEntry{}, false, nil
	}
	return e, ok, nil
}

// scanMax finds the record with the largest timestamp (first on ties) in
// segment s among records with offset >= minOff, scanning from offset
// from.
func (l *Log) scanMax(s *segment, from, minOff int64) (off, ts int64, err error) {
	off, ts = -1, -1
	err = l.scanBatches(s, from, func(b []byte, h *batch.Header) (bool, error) {
		if h.MaxTimestamp <= ts {
			return true, nil
		}
		return true, forEachRecord(b, h, func(o, rts int64) bool {
			if o >= minOff && rts > ts {
				off, ts = o, rts
			}
			return true
		})
	})
	return off, ts, err
}

// scanBatches calls fn for each whole, CRC-valid batch of segment s whose
// last offset is >= from, in order, until fn returns false. It stops
// quietly at corrupt data.
func (l *Log) scanBatches(s *segment, from int64, fn func(b []byte, h *batch.Header) (bool, error)) error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	i := -1
	for j, t := range l.segs {
		if t == s {
			i = j
		}
	}
	if i < 0 {
		l.mu.Unlock()
		return nil // deleted meanwhile
	}
	var v segView
	if err := l.viewLocked(&v, i, from, math.MaxInt64); err != nil {
		l.mu.Unlock()
		return err
	}
	l.mu.Unlock()
	defer v.release()
	if !v.active {
		m, err := l.segMeta(s)
		if err != nil {
			return err
		}
		v.end, v.idxN = m.size, m.idxEntries
		f, err := files.get(s, cacheLog, func() (vfs.File, error) { return l.fs.Open(s.logName) })
		if err != nil {
			return err
		}
		v.f = f
	}
	if v.idxN > 0 && from > s.base && !s.idxBad.Load() {
		l.lookupFileIndex(&v, from)
	}
	sc := newScanner(v.f.f, v.end, 0)
	defer sc.release()
	var buf []byte
	for p := v.pos; p < v.end; {
		if cr := corruptAt(v.corrupt, p); cr != nil {
			p = cr.end
			continue
		}
		h, ok, err := sc.batchAt(p, s.base, s.base, -1)
		if err != nil {
			return err
		}
		if !ok {
			return nil
		}
		p += int64(h.Size())
		if h.LastOffset() < from {
			continue
		}
		if cap(buf) < h.Size() {
			buf = make([]byte, h.Size())
		}
		b := buf[:h.Size()]
		if err := readFullAt(v.f.f, b, p-int64(h.Size())); err != nil {
			return err
		}
		more, err := fn(b, &h)
		if err != nil || !more {
			return err
		}
	}
	return nil
}

// forEachRecord calls fn with each record's offset and timestamp until it
// returns false, decompressing the batch if needed (batch.Records gives
// LogAppendTime batches' records the batch's maxTimestamp).
func forEachRecord(b []byte, h *batch.Header, fn func(off, ts int64) bool) error {
	err := batch.Records(b, func(r batch.Record) bool { return fn(r.Offset, r.Timestamp) })
	if err != nil {
		return fmt.Errorf("%w: batch at offset %d: %w", ErrCorrupt, h.BaseOffset, err)
	}
	return nil
}
