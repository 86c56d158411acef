package partlog

import (
	"bytes"
	"hash/crc32"
	"math"
	"sync"

	"github.com/gregor-streaming/gregor/internal/batch"
	"github.com/gregor-streaming/gregor/internal/vfs"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// scanWindow is the read size of sequential segment scans.
const scanWindow = 256 << 10

// scanner reads a segment file sequentially through a window, for
// recovery and index rebuilds. Memory is bounded by the window, whatever
// the batch sizes.
type scanner struct {
	f    vfs.File
	size int64
	buf  []byte
	wpos int64 // file position of buf[0]
	wlen int   // valid bytes in buf
	// pooled is the pool's window buf is a prefix of.
	pooled *[]byte
}

// scanWindows pools the scanners' windows. Recovery scans the tail of
// every partition at start, and a fresh window each was most of what a
// start after a crash allocated at 10,000 partitions (10,000 × up to 256
// KiB), and so most of its garbage collection.
var scanWindows = sync.Pool{New: func() any {
	b := make([]byte, scanWindow)
	return &b
}}

// newScanner returns a scanner over f's first size bytes with a window
// of n bytes, at most scanWindow; n <= 0 means scanWindow. Call release
// when done: the window goes back to a pool.
func newScanner(f vfs.File, size int64, n int) *scanner {
	if n <= 0 || n > scanWindow {
		n = scanWindow
	}
	w := scanWindows.Get().(*[]byte)
	return &scanner{f: f, size: size, buf: (*w)[:n], pooled: w}
}

// tailWindow is the window for scanning from pos to size: no larger than
// what is left to read (at least a batch header), since a start scans the
// tail of each of thousands of partitions.
func tailWindow(pos, size int64) int {
	return int(min(max(size-pos, batch.HeaderSize), scanWindow))
}

// release returns the window to the pool. Nothing the scanner returned
// may be used after it.
func (s *scanner) release() {
	if s.pooled != nil {
		scanWindows.Put(s.pooled)
		s.pooled, s.buf = nil, nil
	}
}

// peek returns the file's bytes from pos to the end of the window,
// refilling it so at least min bytes (and at most the file's end) are
// there. min must not exceed the window.
func (s *scanner) peek(pos int64, min int) ([]byte, error) {
	if pos >= s.wpos && pos+int64(min) <= s.wpos+int64(s.wlen) {
		return s.buf[pos-s.wpos : s.wlen], nil
	}
	n := int(minI64(int64(len(s.buf)), s.size-pos))
	if n < 0 {
		n = 0
	}
	if err := readFullAt(s.f, s.buf[:n], pos); err != nil {
		return nil, err
	}
	s.wpos, s.wlen = pos, n
	return s.buf[:n], nil
}

// crc is CRC-32C over the file range [pos, end).
func (s *scanner) crc(pos, end int64) (uint32, error) {
	var c uint32
	for pos < end {
		w, err := s.peek(pos, int(minI64(end-pos, int64(len(s.buf)))))
		if err != nil {
			return 0, err
		}
		n := int(minI64(int64(len(w)), end-pos))
		c = crc32.Update(c, castagnoli, w[:n])
		pos += int64(n)
	}
	return c, nil
}

// batchAt checks the batch at pos completely, with the offset rules of a
// segment with base offset base: baseOffset >= prevNext, relative offsets
// fit in int32, and the last offset is below maxNext (the next segment's
// base) when maxNext >= 0. ok=false means there is no valid batch at pos;
// err is an I/O error.
func (s *scanner) batchAt(pos, base, prevNext, maxNext int64) (h batch.Header, ok bool, err error) {
	if pos+batch.HeaderSize > s.size {
		return h, false, nil
	}
	w, err := s.peek(pos, batch.HeaderSize)
	if err != nil {
		return h, false, err
	}
	h, perr := batch.ParseHeader(w)
	if perr != nil {
		return h, false, nil
	}
	if !plausible(&h, pos, s.size, base, prevNext, maxNext) {
		return h, false, nil
	}
	c, err := s.crc(pos+21, pos+int64(h.Size()))
	if err != nil {
		return h, false, err
	}
	return h, c == h.CRC, nil
}

// plausible applies every check on a parsed header short of the CRC.
func plausible(h *batch.Header, pos, size, base, prevNext, maxNext int64) bool {
	if pos+int64(h.Size()) > size {
		return false
	}
	if h.LastOffsetDelta < 0 || h.NumRecords < 0 || int64(h.NumRecords) > int64(h.LastOffsetDelta)+1 {
		return false
	}
	if h.BaseOffset < prevNext || h.BaseOffset < base {
		return false
	}
	last := h.BaseOffset + int64(h.LastOffsetDelta)
	if last < h.BaseOffset || last-base > math.MaxInt32 {
		return false
	}
	if maxNext >= 0 && last >= maxNext {
		return false
	}
	return true
}

// resync finds the first position >= from where a valid batch starts, for
// skipping a corrupt range. found=false means none before the end.
func (s *scanner) resync(from, base, prevNext, maxNext int64) (pos int64, h batch.Header, found bool, err error) {
	q := from
	for q+batch.HeaderSize <= s.size {
		w, err := s.peek(q, batch.HeaderSize)
		if err != nil {
			return 0, h, false, err
		}
		j := bytes.IndexByte(w[16:], 2) // the magic byte
		if j < 0 {
			q += int64(len(w) - 16)
			continue
		}
		cand := q + int64(j)
		h, ok, err := s.batchAt(cand, base, prevNext, maxNext)
		if err != nil {
			return 0, h, false, err
		}
		if ok {
			return cand, h, true, nil
		}
		q = cand + 1
	}
	return 0, h, false, nil
}

// segScan is the result of validating a whole segment.
type segScan struct {
	validEnd      int64 // end of the last valid batch (0 if none)
	next          int64 // offset after the last valid batch (prevNext if none)
	nValid        int
	corrupt       []corruptRange // between valid batches
	garbage       int64          // start of trailing bytes with no valid batch after, -1 if none
	idx           []indexEntry
	tidx          []timeEntry
	maxTs         int64
	maxTsOff      int64
	firstTs       int64 // maxTimestamp of the first valid batch, -1 if none
	bytesSinceIdx int64
	epochs        []EpochEntry // (epoch, baseOffset) where the batches' epoch rises above lastEpoch
}

// scanSegment validates every batch of a segment file of the given size
// and rebuilds its indexes with Kafka's rule (an entry when more than
// interval bytes were appended since the last one), plus an entry for the
// first batch after a corrupt range so that data stays reachable.
func scanSegment(f vfs.File, size, base, prevNext, maxNext int64, interval int32, lastEpoch int32) (segScan, error) {
	r := segScan{garbage: -1, maxTs: -1, maxTsOff: base, firstTs: -1, next: prevNext}
	return scanSegmentFrom(f, size, base, maxNext, interval, lastEpoch, r, 0, -1)
}

// scanSegmentFrom is scanSegment from position pos, with r describing the
// batches before it (r.next is the offset the batch at pos must not go
// below) and lastTs the timestamp of r.tidx's last entry (-1 if none).
func scanSegmentFrom(f vfs.File, size, base, maxNext int64, interval int32, lastEpoch int32, r segScan, pos, lastTs int64) (segScan, error) {
	s := newScanner(f, size, tailWindow(pos, size))
	defer s.release()
	prevNext := r.next
	forceIdx := false
	for pos < size {
		h, ok, err := s.batchAt(pos, base, prevNext, maxNext)
		if err != nil {
			return r, err
		}
		if !ok {
			q, qh, found, err := s.resync(pos+1, base, prevNext, maxNext)
			if err != nil {
				return r, err
			}
			if !found {
				r.garbage = pos
				break
			}
			r.corrupt = append(r.corrupt, corruptRange{start: pos, end: q, firstOff: prevNext, nextOff: qh.BaseOffset})
			pos, h = q, qh
			forceIdx = true
		}
		last := h.LastOffset()
		if r.nValid == 0 {
			r.firstTs = h.MaxTimestamp
		}
		if h.MaxTimestamp > r.maxTs {
			r.maxTs, r.maxTsOff = h.MaxTimestamp, last
		}
		if forceIdx || r.bytesSinceIdx > int64(interval) {
			r.idx = append(r.idx, indexEntry{rel: int32(last - base), pos: int32(pos)})
			if r.maxTs > lastTs {
				r.tidx = append(r.tidx, timeEntry{ts: r.maxTs, rel: int32(r.maxTsOff - base)})
				lastTs = r.maxTs
			}
			r.bytesSinceIdx = 0
			forceIdx = false
		}
		if h.PartitionLeaderEpoch > lastEpoch {
			r.epochs = append(r.epochs, EpochEntry{Epoch: h.PartitionLeaderEpoch, StartOffset: h.BaseOffset})
			lastEpoch = h.PartitionLeaderEpoch
		}
		bsz := int64(h.Size())
		pos += bsz
		r.bytesSinceIdx += bsz
		r.validEnd = pos
		r.next = h.NextOffset()
		prevNext = r.next
		r.nValid++
	}
	return r, nil
}

// finalTimeEntry returns the entry to append when a segment stops being
// active so the time index's last entry is the segment's max timestamp.
// lastTs is the timestamp of the index's last entry (-1 if empty).
func finalTimeEntry(lastTs, maxTs, maxTsOff, base int64) (timeEntry, bool) {
	if maxTs < 0 || lastTs >= maxTs {
		return timeEntry{}, false
	}
	return timeEntry{ts: maxTs, rel: int32(maxTsOff - base)}, true
}

func minI64(a, b int64) int64 {
	if a < b {
		return a
	}
	return b
}
