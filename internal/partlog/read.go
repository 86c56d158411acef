package partlog

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/gregor-streaming/gregor/internal/batch"
	"github.com/gregor-streaming/gregor/internal/vfs"
)

// Read appends to dst whole batches starting with the batch that holds
// offset (or the first batch after it when offset falls in a gap),
// stopping before a batch whose baseOffset >= maxOffset (the high
// watermark or last stable offset), and before a batch that would make
// the appended bytes exceed maxBytes, except that the first batch is
// returned whole when minOne is set (Kafka returns at least one batch so
// a consumer never stalls on a large one). Like Kafka it reads from one
// segment per call. Every batch's CRC is checked on the way out: a
// corrupt first batch gives ErrCorrupt; a later one ends the read.
//
// Offsets outside [LogStartOffset, LogEndOffset] give ErrOffsetOutOfRange;
// offset == LogEndOffset (or >= maxOffset) reads nothing. With enough
// spare capacity in dst (maxBytes plus the index interval) Read does not
// allocate. The log's lock is held only to locate the segment; file reads
// run without it.
func (l *Log) Read(dst []byte, offset int64, maxBytes int, maxOffset int64, minOne bool) ([]byte, error) {
	return l.readAttempts(dst, nil, offset, maxBytes, maxOffset, minOne)
}

// ReadSpan is Read for a caller that can have the kernel send file bytes
// (sendfile): when the first batch read is at least SpanMinBatch bytes
// and the segment is an operating-system file, the batches are not
// copied into dst but described by sp (sp.Len > 0), which holds a
// reference to the file until sp.Release. Their CRCs are not checked on
// the way out, as Kafka's sendfile path does not: clients check them,
// and produce and recovery checked them on the way in. Otherwise it is
// Read, with sp.Len == 0.
//
// The span's bytes are read by the kernel after ReadSpan returns, so
// they must not change: reads stop at maxOffset, and only data above the
// high watermark (never handed to readers) is truncated, except by a
// Reopen of a failed log whose recovery finds synced data damaged; a span
// over bytes cut then sends short, and the server closes the connection.
func (l *Log) ReadSpan(dst []byte, sp *Span, offset int64, maxBytes int, maxOffset int64, minOne bool) ([]byte, error) {
	*sp = Span{}
	return l.readAttempts(dst, sp, offset, maxBytes, maxOffset, minOne)
}

// SpanMinBatch is the smallest first batch ReadSpan leaves to sendfile:
// below it, copying is cheaper than the extra header reads and system
// calls.
const SpanMinBatch = 8 << 10

// spanHeaderReadAhead is how much a span's header scan reads at a time:
// the headers of small batches after a large one come with one read.
const spanHeaderReadAhead = 4 << 10

// Span is a run of whole batches in a segment file that ReadSpan left
// for the kernel to send.
type Span struct {
	f       *rcFile
	Pos     int64 // file position of the first batch
	Len     int   // bytes; 0 when the read was copied instead
	Records int64 // records in the batches (for metrics)
}

// File is the span's segment file, a vfs.OSFile.
func (s *Span) File() vfs.File { return s.f.f }

// Release drops the span's reference to its file. Call it once the
// bytes were sent (or will not be); a zero Span is a no-op.
func (s *Span) Release() {
	if s.f != nil {
		s.f.release()
		s.f = nil
	}
}

func (l *Log) readAttempts(dst []byte, sp *Span, offset int64, maxBytes int, maxOffset int64, minOne bool) ([]byte, error) {
	start := len(dst)
	maxBytes = max(maxBytes, 0)
	for attempt := 0; ; attempt++ {
		out, retry, err := l.read(dst[:start], sp, offset, maxBytes, maxOffset, minOne)
		if retry {
			sp.releaseIfSet()
		}
		if !retry || attempt == 8 {
			return out, err
		}
	}
}

func (s *Span) releaseIfSet() {
	if s != nil {
		s.Release()
		*s = Span{}
	}
}

// read is one attempt of Read; retry reports that a truncation ran
// concurrently so the bytes read may mix old and new data.
func (l *Log) read(dst []byte, sp *Span, offset int64, maxBytes int, maxOffset int64, minOne bool) (out []byte, retry bool, err error) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return dst, false, ErrClosed
	}
	if offset < l.logStartOffset || offset > l.logEndOffset {
		lso, leo := l.logStartOffset, l.logEndOffset
		l.mu.Unlock()
		return dst, false, fmt.Errorf("%w: offset %d not in [%d, %d]", ErrOffsetOutOfRange, offset, lso, leo)
	}
	limit := min(maxOffset, l.logEndOffset)
	gen := l.readGen()
	i := l.findSegmentLocked(offset)
	for {
		if offset >= limit {
			l.mu.Unlock()
			return dst, false, nil
		}
		var v segView
		if err := l.viewLocked(&v, i, offset, limit); err != nil {
			l.mu.Unlock()
			return dst, false, err
		}
		v.gen = gen
		l.mu.Unlock()

		out, found, err := l.readView(dst, sp, &v, offset, maxBytes, limit, minOne)
		v.release()
		if l.readGen() != gen {
			return dst, true, nil
		}
		if err != nil && !v.active {
			// The segment may have been deleted under the read.
			l.mu.Lock()
			below := offset < l.logStartOffset
			lso, leo := l.logStartOffset, l.logEndOffset
			l.mu.Unlock()
			if below {
				return dst, false, fmt.Errorf("%w: offset %d not in [%d, %d]", ErrOffsetOutOfRange, offset, lso, leo)
			}
		}
		if err != nil || found {
			return out, false, err // readView leaves no span with an error
		}
		// Nothing at or after offset in this segment (a gap at its end):
		// continue with the first batch of the next one.
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			return dst, false, ErrClosed
		}
		i = l.findSegmentLocked(v.seg.base) + 1
		if i >= len(l.segs) || l.segs[i-1] != v.seg {
			l.mu.Unlock()
			return dst, l.readGen() != gen, nil
		}
		offset = l.segs[i].base
	}
}

// segView is what a read needs of one segment, snapshotted under the
// log's lock so the I/O can run without it.
type segView struct {
	seg      *segment
	active   bool
	f        *rcFile // acquired .log handle (active segment: the writer)
	end      int64   // readable size
	pos      int64   // where to start scanning
	expect   int64   // last offset of the batch at pos per the index, -1 if pos is 0
	idxN     int64   // offset index entries in the file to search, 0 for none
	corrupt  []corruptRange
	interval int
	gen      uint64 // Log.readGen() when the view was taken
}

func (v *segView) release() {
	if v.f != nil {
		v.f.release()
		v.f = nil
	}
}

// viewLocked fills v for reading offset from segment i, up to offset
// limit. For the active segment the start position comes from the index
// entries in memory when they cover offset, and buffered appends the
// read may reach are written first.
func (l *Log) viewLocked(v *segView, i int, offset, limit int64) error {
	s := l.segs[i]
	*v = segView{seg: s, corrupt: s.corrupt, expect: -1, interval: int(l.cfg.IndexIntervalBytes)}
	if s != l.act.seg {
		return nil // closed: metadata and file are loaded outside the lock
	}
	a := &l.act
	if len(a.pend) > 0 && limit > a.pendFirst {
		if err := l.flushPendLocked(); err != nil {
			return err
		}
	}
	v.active = true
	v.end = a.size - int64(len(a.pend)) // the read stops before pendFirst
	v.f = l.w
	v.f.acquire()
	rel := offset - s.base
	if rel < 0 {
		return nil
	}
	if n := len(a.idxPending); n > 0 && int64(a.idxPending[0].rel) <= rel {
		j, _ := slices.BinarySearchFunc(a.idxPending, rel, func(e indexEntry, t int64) int {
			if int64(e.rel) <= t {
				return -1
			}
			return 1
		})
		e := a.idxPending[j-1]
		v.pos, v.expect = int64(e.pos), s.base+int64(e.rel)
		return nil
	}
	if a.idxFlushed == 0 || s.idxBad.Load() {
		return nil
	}
	if len(a.idxPending) == 0 && a.hasIdx && int64(a.lastIdx.rel) <= rel {
		v.pos, v.expect = int64(a.lastIdx.pos), s.base+int64(a.lastIdx.rel)
		return nil
	}
	v.idxN = a.idxFlushed
	return nil
}

// readView reads from the segment of v; found=false means the segment
// holds no batch at or after offset.
func (l *Log) readView(dst []byte, sp *Span, v *segView, offset int64, maxBytes int, limit int64, minOne bool) ([]byte, bool, error) {
	s := v.seg
	if !v.active {
		m, err := l.segMeta(s)
		if err != nil {
			return dst, false, fmt.Errorf("partlog: read %s: %w", s.logName, err)
		}
		v.end, v.idxN = m.size, m.idxEntries
		if s.idxBad.Load() {
			v.idxN = 0
		}
		f, err := files.get(s, cacheLog, func() (vfs.File, error) { return l.fs.Open(s.logName) })
		if err != nil {
			return dst, false, fmt.Errorf("partlog: read %s: %w", s.logName, err)
		}
		v.f = f
	}
	if v.idxN > 0 && offset > s.base {
		l.lookupFileIndex(v, offset)
	}
	l.prefetch(v)
	resync := func(p, prevNext int64) (corruptRange, bool, error) { return l.resyncDamaged(v, p, prevNext) }
	var span *Span // only operating-system files can be sent by the kernel
	if _, ok := v.f.f.(vfs.OSFile); ok && sp != nil {
		span = sp
	}
	out, found, idxBad, err := readSegment(dst, v, offset, maxBytes, limit, minOne, resync, span)
	if span != nil && span.Len > 0 {
		if err != nil {
			*span = Span{}
		} else {
			v.f.acquire()
			span.f = v.f
		}
	}
	if idxBad {
		l.indexInconsistent(s, v.active)
	}
	return out, found, err
}

// lookupFileIndex sets v.pos from the segment's index file, leaving it
// at 0 if the index cannot be used.
func (l *Log) lookupFileIndex(v *segView, offset int64) {
	s := v.seg
	rel := offset - s.base
	if rel > 1<<31-1 {
		rel = 1<<31 - 1
	}
	idx, err := files.get(s, cacheIndex, func() (vfs.File, error) { return l.fs.Open(s.idxName) })
	if err != nil {
		l.indexInconsistent(s, v.active)
		return
	}
	e, found, err := lookupIndexFile(idx.f, v.idxN, int32(rel))
	idx.release()
	if err != nil || (found && int64(e.pos) >= v.end) {
		l.indexInconsistent(s, v.active)
		return
	}
	if found {
		v.pos, v.expect = int64(e.pos), s.base+int64(e.rel)
	}
}

// indexInconsistent handles an offset index that failed a check: reads
// of the segment scan from its start until it is rebuilt. A closed
// segment is rebuilt at once; the active one when it rolls.
func (l *Log) indexInconsistent(s *segment, active bool) {
	if s.idxBad.Swap(true) {
		return
	}
	l.logger.Warn("partlog: offset index inconsistent; rebuilding", "segment", s.idxName)
	if !active {
		if err := l.rebuildIndexes(s); err != nil {
			l.logger.Error("partlog: rebuild index", "segment", s.idxName, "err", err)
		}
	}
}

// maxReadAhead bounds one read of a segment into the caller's buffer.
const maxReadAhead = 1 << 20

// window is a read buffer in the spare capacity of the caller's dst:
// buf[start:start+have] holds the file's bytes [pos, pos+have). buf is
// always sliced to its capacity.
type window struct {
	f     vfs.File
	buf   []byte
	start int
	pos   int64
	have  int
	end   int64
}

// ensure makes the window hold the file's [p, p+n) (p >= w.pos),
// dropping bytes before p when it must read, and reading up to hint
// bytes ahead when dst has room for them.
func (w *window) ensure(p int64, n int, hint int) error {
	if p+int64(n) <= w.pos+int64(w.have) {
		return nil
	}
	w.shiftTo(p)
	need := n - w.have
	avail := w.end - (w.pos + int64(w.have))
	if int64(need) > avail {
		return fmt.Errorf("%w: batch runs past the segment end", ErrCorrupt)
	}
	room := cap(w.buf) - w.start - w.have
	readN := need
	if hint > need {
		want := int(minI64(int64(hint), avail))
		if room >= need {
			readN = max(need, min(want, room)) // no growth for read-ahead
		} else {
			readN = want // growing anyway: grow once for the hint
		}
	}
	if room < readN {
		w.buf = slices.Grow(w.buf[:w.start+w.have], readN)
		w.buf = w.buf[:cap(w.buf)]
	}
	b := w.buf[w.start+w.have : w.start+w.have+readN]
	if err := readFullAt(w.f, b, w.pos+int64(w.have)); err != nil {
		return err
	}
	w.have += readN
	return nil
}

// shiftTo drops the window's bytes before p.
func (w *window) shiftTo(p int64) {
	if p <= w.pos {
		return
	}
	if d := p - w.pos; d < int64(w.have) {
		copy(w.buf[w.start:], w.buf[w.start+int(d):w.start+w.have])
		w.have -= int(d)
	} else {
		w.have = 0
	}
	w.pos = p
}

// bytesAt returns the window's bytes from file position p on.
func (w *window) bytesAt(p int64) []byte {
	return w.buf[w.start+int(p-w.pos) : w.start+w.have]
}

func corruptAt(rs []corruptRange, p int64) *corruptRange {
	for i := range rs {
		if rs[i].start == p {
			return &rs[i]
		}
	}
	return nil
}

// readSegment finds the batch holding offset by scanning headers from
// v.pos, then appends whole checked batches to dst. idxBad reports that
// the index entry v.pos came from did not match the log.
//
// Damaged bytes found on the way (a header that does not parse, or the
// first batch failing its checks) go to resync, which finds the next
// valid batch and records the damaged range: offsets below that batch
// get ErrCorrupt, later ones are read on from it, so one flipped bit does
// not make the rest of the segment unreadable. resync may be nil
// (every damaged range is ErrCorrupt).
//
// With span set, a first batch of at least SpanMinBatch bytes is not
// read: the batches are described by span (span.Len > 0; the caller
// attaches the file) for sendfile.
func readSegment(dst []byte, v *segView, offset int64, maxBytes int, limit int64, minOne bool,
	resync func(p, prevNext int64) (corruptRange, bool, error), span *Span) (out []byte, found, idxBad bool, err error) {
	start := len(dst)
	w := window{f: v.f.f, buf: dst[:cap(dst)], start: start, pos: v.pos, end: v.end}
	// Read ahead what the fetch may return, in chunks of at most
	// maxReadAhead so a read bounded by maxOffset far below the segment's
	// end does not read (or allocate) much more than it returns.
	fullHint := min(maxBytes, maxReadAhead) + v.interval + batch.HeaderSize
	hint := fullHint
	if span != nil {
		// Locate with header reads only: the batches may not be read.
		hint = min(fullHint, v.interval+batch.HeaderSize)
	}
	corruptErr := func(p int64, why string) error {
		return fmt.Errorf("%w: %s at position %d of %s (reading offset %d)", ErrCorrupt, why, p, v.seg.logName, offset)
	}

	// skipDamage handles damaged bytes at p following a batch whose
	// next offset is prevNext (-1: unknown): skip reports that offset
	// lies after them, and where the next valid batch starts.
	skipDamage := func(p, prevNext int64, why string) (next int64, skip bool, err error) {
		if resync != nil {
			cr, ok, err := resync(p, prevNext)
			if err != nil {
				return 0, false, err
			}
			if ok && offset >= cr.nextOff {
				return cr.end, true, nil
			}
			if ok {
				return 0, false, fmt.Errorf("%w: %s at position %d of %s: offsets [%d, %d) are unreadable (reading offset %d)", ErrCorrupt, why, p, v.seg.logName, cr.firstOff, cr.nextOff, offset)
			}
		}
		return 0, false, corruptErr(p, why)
	}

	// Phase 1: locate the first batch whose last offset is >= offset.
	p, expect := v.pos, v.expect
	prevNext1 := int64(-1)
	if p == 0 {
		prevNext1 = v.seg.base
	}
phase1:
	for {
		if p >= v.end {
			return dst, false, idxBad, nil
		}
		if cr := corruptAt(v.corrupt, p); cr != nil {
			if offset < cr.nextOff {
				return dst, true, idxBad, fmt.Errorf("%w: offsets [%d, %d) at positions [%d, %d) of %s are unreadable", ErrCorrupt, cr.firstOff, cr.nextOff, cr.start, cr.end, v.seg.logName)
			}
			p, expect, prevNext1 = cr.end, -1, cr.nextOff
			continue
		}
		why := ""
		var base, last int64
		var size int
		if v.end-p < batch.HeaderSize {
			why = "truncated batch header"
		} else if err := w.ensure(p, batch.HeaderSize, hint); err != nil {
			return dst, true, idxBad, err
		} else {
			hb := w.bytesAt(p)
			length := int32(binary.BigEndian.Uint32(hb[8:]))
			base = int64(binary.BigEndian.Uint64(hb))
			last = base + int64(int32(binary.BigEndian.Uint32(hb[23:])))
			size = int(length) + batch.LengthOverhead
			switch {
			case hb[16] != 2:
				why = "bad magic"
			case length < batch.HeaderSize-batch.LengthOverhead || p+int64(size) > v.end:
				why = "bad batch length"
			case last < base:
				why = "bad lastOffsetDelta"
			}
		}
		if why == "" && expect >= 0 && last != expect {
			why = "index mismatch"
		}
		if why != "" {
			if expect >= 0 {
				// The index pointed somewhere wrong: scan from the start.
				idxBad = true
				p, expect, prevNext1 = 0, -1, v.seg.base
				w.pos, w.have = 0, 0
				continue
			}
			next, skip, err := skipDamage(p, prevNext1, why)
			if !skip {
				return dst, true, idxBad, err
			}
			p, prevNext1 = next, -1
			continue
		}
		expect = -1
		if last >= offset {
			break
		}
		p += int64(size)
		prevNext1 = last + 1
	}

	if span != nil {
		if ok, err := spanSegment(&w, v, span, p, offset, maxBytes, limit, minOne); ok || err != nil {
			return dst, true, idxBad, err
		}
		hint = fullHint
	}

	// Phase 2: append whole batches from p.
	// A first batch that fails its checks is damage: back to phase 1
	// after it when offset lies beyond it.
	damaged := func(bp int64, why string) error {
		next, skip, err := skipDamage(bp, prevNext1, why)
		if skip {
			p, expect, prevNext1 = next, -1, -1
			return nil
		}
		return err
	}
	w.shiftTo(p)
	if err := w.ensure(p, batch.HeaderSize, hint); err != nil {
		return dst, true, idxBad, err
	}
	fpos := p
	total := 0
	prevNext := int64(-1)
	for {
		bp := fpos + int64(total)
		if bp >= v.end {
			break
		}
		if corruptAt(v.corrupt, bp) != nil {
			if total == 0 {
				return dst, true, idxBad, corruptErr(bp, "known corrupt range")
			}
			break
		}
		if v.end-bp < batch.HeaderSize {
			if total == 0 {
				if err := damaged(bp, "truncated batch header"); err != nil {
					return dst, true, idxBad, err
				}
				goto phase1
			}
			break
		}
		if err := w.ensure(w.pos, total+batch.HeaderSize, hint-total); err != nil {
			return dst, true, idxBad, err
		}
		h, perr := batch.ParseHeader(w.buf[w.start+total : w.start+w.have])
		size := h.Size()
		if perr != nil || bp+int64(size) > v.end {
			if total == 0 {
				if err := damaged(bp, "bad batch header"); err != nil {
					return dst, true, idxBad, err
				}
				goto phase1
			}
			break
		}
		if h.BaseOffset >= limit || (total > 0 && h.BaseOffset < prevNext) {
			break
		}
		if total+size > maxBytes && !(total == 0 && minOne) {
			break
		}
		if err := w.ensure(w.pos, total+size, hint-total); err != nil {
			return dst, true, idxBad, err
		}
		if _, verr := batch.Validate(w.buf[w.start+total : w.start+total+size]); verr != nil {
			if total == 0 {
				if err := damaged(bp, fmt.Sprintf("batch at offset %d: %v", h.BaseOffset, verr)); err != nil {
					return dst, true, idxBad, err
				}
				goto phase1
			}
			break
		}
		prevNext = h.NextOffset()
		total += size
	}
	return w.buf[:start+total], true, idxBad, nil
}

// resyncDamaged is called by a read that found damaged bytes at position
// p of v's segment, after a batch whose next offset is prevNext (-1:
// unknown). It finds the first valid batch after p (as recovery does)
// and records [p, there) as a corrupt range, so reads skip it from now
// on and serve the data after it; ok=false when no valid batch follows.
// Nothing is recorded when the log was truncated since v was taken: the
// bytes may have been a concurrent truncation's, not damage.
func (l *Log) resyncDamaged(v *segView, p, prevNext int64) (cr corruptRange, ok bool, err error) {
	s := v.seg
	l.mu.Lock()
	for _, c := range s.corrupt {
		if c.start <= p && p < c.end {
			l.mu.Unlock()
			return c, true, nil
		}
	}
	l.mu.Unlock()
	from := max(prevNext, s.base)
	sc := newScanner(v.f.f, v.end, 0)
	q, h, found, err := sc.resync(p+1, s.base, from, -1)
	sc.release()
	if err != nil || !found {
		return cr, false, err
	}
	cr = corruptRange{start: p, end: q, firstOff: from, nextOff: h.BaseOffset}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.readGen() != v.gen || l.closed {
		return cr, true, nil
	}
	for _, c := range s.corrupt {
		if c.start == p {
			return c, true, nil
		}
	}
	s.corrupt = append(slices.Clip(s.corrupt), cr)
	l.logger.Error("partlog: CORRUPT batch range found by a read; never served, data after it is served",
		"segment", s.logName, "positions", fmt.Sprintf("[%d,%d)", cr.start, cr.end), "offsets", fmt.Sprintf("[%d,%d)", cr.firstOff, cr.nextOff))
	return cr, true, nil
}

// spanSegment describes in span the batches from p (located by phase 1,
// its header in w) that a read would return, reading only their headers,
// when the first is at least SpanMinBatch bytes. ok=false leaves the
// read to the copying path (a small first batch, or one that fails its
// header checks: the copying path handles damage).
func spanSegment(w *window, v *segView, span *Span, p, offset int64, maxBytes int, limit int64, minOne bool) (ok bool, err error) {
	total := 0
	var records int64
	prevNext := int64(-1)
	for {
		bp := p + int64(total)
		if bp >= v.end || v.end-bp < batch.HeaderSize || corruptAt(v.corrupt, bp) != nil {
			break
		}
		w.shiftTo(bp)
		if err := w.ensure(bp, batch.HeaderSize, spanHeaderReadAhead); err != nil {
			if total == 0 {
				return false, err
			}
			break
		}
		h, perr := batch.ParseHeader(w.bytesAt(bp))
		size := h.Size()
		if perr != nil || bp+int64(size) > v.end || h.LastOffsetDelta < 0 {
			break
		}
		if total == 0 && (size < SpanMinBatch || h.LastOffset() < offset) {
			return false, nil
		}
		if h.BaseOffset >= limit || (total > 0 && h.BaseOffset < prevNext) {
			break
		}
		if total+size > maxBytes && !(total == 0 && minOne) {
			break
		}
		prevNext = h.NextOffset()
		total += size
		records += int64(h.NumRecords)
	}
	if total == 0 {
		return false, nil
	}
	span.Pos, span.Len, span.Records = p, total, records
	return true, nil
}
