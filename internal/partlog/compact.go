package partlog

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/gregor-streaming/gregor/internal/batch"
	"github.com/gregor-streaming/gregor/internal/vfs"
)

// Compaction (Kafka's log cleaner, cleanup.policy=compact) keeps the
// newest record of each key. A pass:
//
//  1. finds the dirty part of the log: from the cleaner offset (the end
//     of the last finished pass, kept in the checkpoint) to the first
//     uncleanable offset — the active segment, the high watermark, the
//     recovery point and min.compaction.lag.ms all bound it, at segment
//     granularity, so the active segment is never compacted;
//  2. builds an offset map from the dirty part: a 128-bit hash of each
//     key → its latest offset (transactional records do not enter it,
//     so an aborted record never hides a committed one);
//  3. rewrites every closed segment from the log start to the end of the
//     map, in groups of consecutive segments that fit one segment: a
//     record stays when no later record has its key; a tombstone (null
//     value) also goes once it was compacted by an earlier pass and its
//     batch's max timestamp is older than delete.retention.ms; keyless
//     records go. Batches keep their base offset, last offset delta,
//     producer fields, leader epoch, codec and timestamp type, and get a
//     new CRC; untouched batches are copied byte for byte. Control
//     batches are always kept. A producer's last batch is kept even when
//     all its records go (as a batch of zero records, like Kafka), so
//     idempotent producer state is rebuilt correctly from the log.
//
// Swap, crash-safe like Kafka's .cleaned/.swap protocol. For a group of
// segments with base offsets b0 < … < bk followed by a segment at N:
//
//	b0.log.cleaned, b0.index.cleaned, b0.timeindex.cleaned  written, fsynced
//	directory fsync
//	b0.N.swap (empty marker)                                 created
//	directory fsync                                          ← commit point
//	under Log.mu: .cleaned indexes → b0.index, b0.timeindex;
//	  remove b1…bk; b0.log.cleaned → b0.log; new segment list
//	directory fsync; remove the marker
//
// Open finishes a committed swap (a marker exists: segments in (b0, N)
// are removed, b0.log.cleaned if still there becomes b0.log, b0's
// indexes are rebuilt) and rolls back an uncommitted one (.cleaned files
// without a marker are deleted).

const (
	cleanedSuffix = ".cleaned"
	swapSuffix    = ".swap"
)

// swapMarkerName names the commit marker of a swap of the segments in
// [base, next).
func swapMarkerName(base, next int64) string {
	return fmt.Sprintf("%020d.%020d%s", base, next, swapSuffix)
}

// parseSwapMarker parses a swap marker name.
func parseSwapMarker(name string) (base, next int64, ok bool) {
	if len(name) != 20+1+20+len(swapSuffix) || !strings.HasSuffix(name, swapSuffix) || name[20] != '.' {
		return 0, 0, false
	}
	b, err1 := strconv.ParseInt(name[:20], 10, 64)
	n, err2 := strconv.ParseInt(name[21:41], 10, 64)
	if err1 != nil || err2 != nil || b < 0 || n <= b {
		return 0, 0, false
	}
	return b, n, true
}

// CompactOptions configure one compaction pass.
type CompactOptions struct {
	// Now is the time of the pass.
	Now time.Time
	// DeleteRetentionMs is delete.retention.ms: a tombstone is removed
	// once an earlier pass compacted it and its batch's max timestamp is
	// more than this before Now.
	DeleteRetentionMs int64
	// MinCompactionLagMs is min.compaction.lag.ms: segments holding a
	// record newer than this are not compacted yet.
	MinCompactionLagMs int64
	// UnstableOffset, when positive, is the first offset of the earliest
	// open transaction (the last stable offset): like Kafka, compaction
	// stops before the segment holding it.
	UnstableOffset int64
	// MaxKeys bounds the offset map (log.cleaner.dedupe.buffer.size);
	// a pass cleans as far as the keys it could hold. 0 means
	// DefaultCompactMaxKeys.
	MaxKeys int
	// BufferSize is the read and write buffer (log.cleaner.io.buffer.size);
	// 0 means 1 MiB.
	BufferSize int
	// ProducerLastOffsets maps each producer ID to the last offset of
	// its latest batch; those batches are kept even when emptied.
	ProducerLastOffsets map[int64]int64
	// Throttle, when set, is called with each chunk of bytes read or
	// written and may sleep (log.cleaner.io.max.bytes.per.second).
	Throttle func(n int)
}

// DefaultCompactMaxKeys is the offset map bound when CompactOptions
// gives none: about 128 MiB of map, Kafka's default dedupe buffer.
const DefaultCompactMaxKeys = 4 << 20

// CompactResult reports a compaction pass.
type CompactResult struct {
	// CleanedTo is the first dirty offset after the pass.
	CleanedTo int64
	// Segments counts the segments read and rewritten; Groups the
	// segments written.
	Segments, Groups int
	// BytesBefore and BytesAfter are the sizes of the rewritten
	// segments before and after.
	BytesBefore, BytesAfter int64
	// RecordsRemoved counts removed records, TombstonesRemoved the
	// tombstones among them.
	RecordsRemoved, TombstonesRemoved int64
}

// Cleanability tells how much a compaction pass would clean, for
// choosing the dirtiest log as Kafka's cleaner does.
type Cleanability struct {
	// FirstDirty is where the dirty part starts; FirstUncleanable where
	// the cleanable part ends (a segment boundary).
	FirstDirty, FirstUncleanable int64
	// CleanBytes and DirtyBytes are the sizes of the clean segments and
	// of the cleanable dirty ones.
	CleanBytes, DirtyBytes int64
	// FirstDirtyTimestamp is the largest timestamp of the first
	// cleanable dirty segment, -1 if none (for max.compaction.lag.ms).
	FirstDirtyTimestamp int64
	// TombstonesDue reports that a tombstone kept by an earlier pass may
	// be removable now.
	TombstonesDue bool
	// ActiveSize and ActiveMaxTimestamp describe the active segment,
	// which is never compacted: a caller enforcing
	// max.compaction.lag.ms rolls it once it is idle that long.
	ActiveSize, ActiveMaxTimestamp int64
}

// DirtyRatio is DirtyBytes / (CleanBytes + DirtyBytes), Kafka's
// min.cleanable.dirty.ratio measure.
func (c Cleanability) DirtyRatio() float64 {
	if c.DirtyBytes == 0 {
		return 0
	}
	return float64(c.DirtyBytes) / float64(c.CleanBytes+c.DirtyBytes)
}

// Cleanability measures the log for compaction at now with
// min.compaction.lag.ms minLagMs and, when positive, the first offset of
// an open transaction unstable (see CompactOptions).
func (l *Log) Cleanability(now time.Time, minLagMs, unstable int64) (Cleanability, error) {
	c, _, err := l.cleanability(now, minLagMs, unstable)
	return c, err
}

// cleanability also returns the segment infos it used.
func (l *Log) cleanability(now time.Time, minLagMs, unstable int64) (Cleanability, []SegmentInfo, error) {
	var c Cleanability
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return c, nil, ErrClosed
	}
	firstDirty := max(l.cleanerOffset, l.logStartOffset)
	bound := min(l.highWatermark, l.recoveryPoint)
	if unstable > 0 {
		bound = min(bound, unstable)
	}
	due := !l.tombstoneDue.IsZero() && !now.Before(l.tombstoneDue)
	l.mu.Unlock()
	segs := l.Segments()
	c.FirstDirty, c.FirstDirtyTimestamp, c.TombstonesDue = firstDirty, -1, due
	c.FirstUncleanable = firstDirty
	lagLimit := now.UnixMilli() - minLagMs
	if n := len(segs); n > 0 {
		c.ActiveSize, c.ActiveMaxTimestamp = segs[n-1].Size, segs[n-1].MaxTimestamp
	}
	for _, si := range segs {
		if si.Active || si.NextOffset > bound || (minLagMs > 0 && si.MaxTimestamp > lagLimit) {
			break
		}
		c.FirstUncleanable = max(c.FirstUncleanable, si.NextOffset)
		if si.NextOffset <= firstDirty {
			c.CleanBytes += si.Size
			continue
		}
		if c.DirtyBytes == 0 {
			c.FirstDirtyTimestamp = si.MaxTimestamp
		}
		c.DirtyBytes += si.Size
	}
	return c, segs, nil
}

// keyHash is a 128-bit hash of a record key (Kafka uses MD5 in its
// offset map); two independently seeded maphashes make collisions
// negligible.
type keyHash struct{ a, b uint64 }

type offsetMap struct {
	s1, s2 maphash.Seed
	m      map[keyHash]int64
}

func newOffsetMap() *offsetMap {
	return &offsetMap{s1: maphash.MakeSeed(), s2: maphash.MakeSeed(), m: map[keyHash]int64{}}
}

func (o *offsetMap) hash(key []byte) keyHash {
	return keyHash{maphash.Bytes(o.s1, key), maphash.Bytes(o.s2, key)}
}

// errCompactAborted ends a group whose segments changed under the pass.
var errCompactAborted = errors.New("partlog: compaction aborted: segments changed")

// Compact runs one compaction pass (see the package's compaction notes
// at the top of compact.go). Passes of one log are serialized; appends
// and reads run concurrently, and retention or truncation that change
// the segments being rewritten make the pass skip them. It returns what
// it did; a log with nothing to clean returns quickly.
func (l *Log) Compact(ctx context.Context, o CompactOptions) (CompactResult, error) {
	l.compactMu.Lock()
	defer l.compactMu.Unlock()
	var res CompactResult
	if o.MaxKeys <= 0 {
		o.MaxKeys = DefaultCompactMaxKeys
	}
	if o.BufferSize <= 0 {
		o.BufferSize = 1 << 20
	}
	c, infos, err := l.cleanability(o.Now, o.MinCompactionLagMs, o.UnstableOffset)
	if err != nil {
		return res, err
	}
	res.CleanedTo = c.FirstDirty
	l.mu.Lock()
	var segs []segSnap
	for _, s := range l.segs {
		if s != l.act.seg && s.next <= c.FirstUncleanable {
			segs = append(segs, segSnap{s: s, base: s.base, next: s.next, corrupt: len(s.corrupt) > 0})
		}
	}
	cfg := l.cfg
	l.mu.Unlock()
	if len(segs) == 0 || (c.FirstDirty >= c.FirstUncleanable && !c.TombstonesDue) {
		return res, nil
	}
	sizes := make(map[int64]int64, len(infos))
	for _, si := range infos {
		sizes[si.BaseOffset] = si.Size
	}

	// The offset map over the dirty part.
	m := newOffsetMap()
	end, err := l.buildOffsetMap(ctx, segs, c.FirstDirty, c.FirstUncleanable, m, &o)
	if errors.Is(err, errCompactAborted) {
		return res, nil // segments went away: the next pass starts over
	}
	if err != nil {
		return res, err
	}
	if !c.TombstonesDue && end <= c.FirstDirty {
		return res, nil
	}
	p := &compactPass{l: l, o: &o, m: m, end: end, firstDirty: c.FirstDirty,
		horizon: o.Now.UnixMilli() - o.DeleteRetentionMs, due: math.MaxInt64}

	// Rewrite groups of segments from the log start to the map's end.
	complete := true
	for i := 0; i < len(segs) && segs[i].base < end; {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		if segs[i].corrupt {
			// Never rewrite around unreadable data; its records stay.
			i++
			continue
		}
		j := i + 1
		size, idxBytes := sizes[segs[i].base], int64(0)
		for j < len(segs) && segs[j].base < end && !segs[j].corrupt {
			if size+sizes[segs[j].base] > cfg.SegmentBytes || segs[j].next-1-segs[i].base > math.MaxInt32 {
				break
			}
			if m, err := l.segMeta(segs[j].s); err == nil {
				idxBytes += m.idxEntries * offsetIndexEntrySize
			}
			if idxBytes > int64(cfg.SegmentIndexBytes) {
				break
			}
			size += sizes[segs[j].base]
			j++
		}
		group := segs[i:j]
		i = j
		gr, err := p.cleanGroup(ctx, group, cfg)
		switch {
		case errors.Is(err, errCompactAborted):
			complete = false
			continue
		case err != nil:
			return res, err
		}
		res.Segments += len(group)
		if gr.rewritten {
			res.Groups++
		}
		res.BytesBefore += gr.before
		res.BytesAfter += gr.after
		res.RecordsRemoved += gr.removed
		res.TombstonesRemoved += gr.tombstones
	}
	l.mu.Lock()
	if complete && !l.closed {
		if end > l.cleanerOffset {
			l.cleanerOffset = min(end, l.logEndOffset)
			l.markCkptDirtyLocked()
		}
		l.tombstoneDue = time.Time{}
		if p.due != math.MaxInt64 {
			l.tombstoneDue = time.UnixMilli(p.due + o.DeleteRetentionMs + 1)
		}
	}
	res.CleanedTo = max(l.cleanerOffset, l.logStartOffset)
	l.mu.Unlock()
	return res, nil
}

// segSnap is a segment with the fields a pass needs, read under Log.mu.
type segSnap struct {
	s          *segment
	base, next int64
	corrupt    bool
}

// buildOffsetMap fills m with the latest offset of every key in
// [from, to) of segs, and returns where it stopped: to, or an earlier
// batch boundary when MaxKeys keys were reached.
func (l *Log) buildOffsetMap(ctx context.Context, segs []segSnap, from, to int64, m *offsetMap, o *CompactOptions) (int64, error) {
	var rr batch.Reader
	for _, sn := range segs {
		if sn.next <= from {
			continue
		}
		if sn.base >= to {
			break
		}
		stop := int64(-1)
		err := l.eachBatch(sn.s, o, func(b []byte, h *batch.Header) (bool, error) {
			if err := ctx.Err(); err != nil {
				return false, err
			}
			if h.LastOffset() < from {
				return true, nil
			}
			if h.BaseOffset >= to {
				return false, nil
			}
			if h.IsControl() || h.IsTransactional() {
				return true, nil
			}
			if len(m.m)+int(h.NumRecords) > o.MaxKeys && h.BaseOffset > from {
				stop = h.BaseOffset
				return false, nil
			}
			err := rr.Records(b, func(r batch.Record) bool {
				if r.Offset >= from && r.Offset < to && r.Key != nil {
					m.m[m.hash(r.Key)] = r.Offset
				}
				return true
			})
			if err != nil {
				return false, fmt.Errorf("%w: batch at offset %d of %s: %w", ErrCorrupt, h.BaseOffset, sn.s.logName, err)
			}
			return true, nil
		})
		if err != nil {
			return from, err
		}
		if stop >= 0 {
			return stop, nil
		}
	}
	return to, nil
}

// eachBatch calls fn with every whole batch of closed segment s, in
// order, from its own handle, skipping known corrupt ranges. A batch that
// fails its checks ends the scan with ErrCorrupt.
func (l *Log) eachBatch(s *segment, o *CompactOptions, fn func(b []byte, h *batch.Header) (bool, error)) error {
	f, err := l.fs.Open(s.logName)
	if err != nil {
		if vfs.IsNotExist(err) {
			return errCompactAborted // deleted meanwhile
		}
		return err
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return err
	}
	l.mu.Lock()
	corrupt := s.corrupt
	l.mu.Unlock()
	r := batchReader{f: f, size: size, buf: make([]byte, 0, o.BufferSize), throttle: o.Throttle}
	for r.pos < size {
		if cr := corruptAt(corrupt, r.pos); cr != nil {
			r.pos = cr.end
			continue
		}
		b, h, err := r.next()
		if err != nil {
			return fmt.Errorf("%w: %s at position %d: %w", ErrCorrupt, s.logName, r.pos, err)
		}
		more, err := fn(b, &h)
		if err != nil || !more {
			return err
		}
	}
	return nil
}

// batchReader reads whole batches of a file sequentially through a
// buffer.
type batchReader struct {
	f        vfs.File
	size     int64
	pos      int64 // position of the next batch
	buf      []byte
	bufPos   int64 // file position of buf[0]
	throttle func(int)
}

// next returns the batch at pos, validated (CRC included), and moves past
// it. The bytes are valid until the next call.
func (r *batchReader) next() ([]byte, batch.Header, error) {
	hb, err := r.bytes(batch.HeaderSize)
	if err != nil {
		return nil, batch.Header{}, err
	}
	h, err := batch.ParseHeader(hb)
	if err != nil {
		return nil, h, err
	}
	b, err := r.bytes(h.Size())
	if err != nil {
		return nil, h, err
	}
	if h, err = batch.Validate(b); err != nil {
		return nil, h, err
	}
	r.pos += int64(h.Size())
	return b, h, nil
}

// bytes returns the file's [pos, pos+n), refilling the buffer as needed.
func (r *batchReader) bytes(n int) ([]byte, error) {
	if r.pos+int64(n) > r.size {
		return nil, fmt.Errorf("batch runs past the end of the file (%d bytes at %d of %d)", n, r.pos, r.size)
	}
	if r.pos >= r.bufPos && r.pos+int64(n) <= r.bufPos+int64(len(r.buf)) {
		off := r.pos - r.bufPos
		return r.buf[off : off+int64(n)], nil
	}
	want := max(n, cap(r.buf))
	want = int(min(int64(want), r.size-r.pos))
	if cap(r.buf) < want {
		r.buf = make([]byte, want)
	}
	r.buf = r.buf[:want]
	if err := readFullAt(r.f, r.buf, r.pos); err != nil {
		return nil, err
	}
	if r.throttle != nil {
		r.throttle(want)
	}
	r.bufPos = r.pos
	return r.buf[:n], nil
}

// compactPass is the state of one pass shared by its groups.
type compactPass struct {
	l          *Log
	o          *CompactOptions
	m          *offsetMap
	end        int64 // records at or after end are kept
	firstDirty int64 // tombstones below it may be removed
	horizon    int64 // tombstones in batches with max timestamp <= horizon may be removed
	// due is the smallest max timestamp of a batch holding a kept
	// tombstone, MaxInt64 if none.
	due int64

	rr   batch.Reader
	kept []batch.Record
}

type groupResult struct {
	rewritten           bool
	before, after       int64
	removed, tombstones int64
}

// cleanGroup rewrites the segments of group into one (or leaves them
// when nothing would change).
func (p *compactPass) cleanGroup(ctx context.Context, group []segSnap, cfg Config) (groupResult, error) {
	l := p.l
	var gr groupResult
	base, next := group[0].base, group[len(group)-1].next
	cleaned := newSegment(l.dir, base)
	logName := cleaned.logName + cleanedSuffix
	idxName := cleaned.idxName + cleanedSuffix
	tidxName := cleaned.tidxName + cleanedSuffix
	removeCleaned := func() {
		for _, n := range []string{logName, idxName, tidxName} {
			_ = l.fs.Remove(n)
		}
	}

	f, err := l.fs.Create(logName)
	if err != nil {
		return gr, fmt.Errorf("partlog: compact %s: %w", l.dir, err)
	}
	w := &bufWriter{f: f, buf: make([]byte, 0, p.o.BufferSize), throttle: p.o.Throttle}
	changed := len(group) > 1 // merging segments is a change too
	// lastDropped is the header of the last batch when it was dropped:
	// it is written back empty at the end, so the group still ends with
	// its last offset and a consumer fetching in a trailing gap moves on
	// instead of waiting at an offset nothing follows.
	var lastDropped []byte
	for _, sn := range group {
		s := sn.s
		err := l.eachBatch(s, p.o, func(b []byte, h *batch.Header) (bool, error) {
			if err := ctx.Err(); err != nil {
				return false, err
			}
			gr.before += int64(len(b))
			out, removed, tombs, err := p.filterBatch(b, h)
			if err != nil {
				return false, fmt.Errorf("%w: batch at offset %d of %s: %w", ErrCorrupt, h.BaseOffset, s.logName, err)
			}
			if removed > 0 || len(out) != len(b) {
				changed = true
			}
			gr.removed += removed
			gr.tombstones += tombs
			if out == nil {
				lastDropped = append(lastDropped[:0], b[:batch.HeaderSize]...)
				return true, nil
			}
			lastDropped = lastDropped[:0]
			gr.after += int64(len(out))
			return true, w.write(out)
		})
		if err != nil {
			f.Close()
			removeCleaned()
			if errors.Is(err, errCompactAborted) {
				return gr, err
			}
			return gr, fmt.Errorf("partlog: compact %s: %w", l.dir, err)
		}
	}
	if len(lastDropped) > 0 {
		e := emptyBatch(lastDropped, false)
		gr.after += int64(len(e))
		if err := w.write(e); err != nil {
			f.Close()
			removeCleaned()
			return gr, fmt.Errorf("partlog: compact %s: %w", l.dir, err)
		}
	}
	if err := w.flush(); err != nil {
		f.Close()
		removeCleaned()
		return gr, fmt.Errorf("partlog: compact %s: %w", l.dir, err)
	}
	if !changed {
		f.Close()
		removeCleaned()
		return gr, nil
	}
	gr.rewritten = true
	size := w.written
	// Indexes from the written file, which also checks every batch.
	r, err := scanSegment(f, size, base, base, next, cfg.IndexIntervalBytes, math.MaxInt32)
	if err == nil && (r.garbage >= 0 || len(r.corrupt) > 0) {
		err = fmt.Errorf("%w: compacted segment %s does not scan back", ErrCorrupt, logName)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	tidx := r.tidx
	lastTs := int64(-1)
	if n := len(tidx); n > 0 {
		lastTs = tidx[n-1].ts
	}
	if e, ok := finalTimeEntry(lastTs, r.maxTs, r.maxTsOff, base); ok {
		tidx = append(tidx, e)
	}
	if err == nil {
		err = writeSynced(l.fs, idxName, appendIndexEntries(nil, r.idx))
	}
	if err == nil {
		err = writeSynced(l.fs, tidxName, appendTimeEntries(nil, tidx))
	}
	if err == nil {
		err = l.fs.SyncDir(l.dir)
	}
	if err != nil {
		removeCleaned()
		return gr, fmt.Errorf("partlog: compact %s: %w", l.dir, err)
	}
	cleaned.next = next
	cleaned.setMeta(segMeta{size: size, maxTs: r.maxTs, maxTsOff: r.maxTsOff, idxEntries: int64(len(r.idx)), modified: l.now()})
	if err := l.swapIn(group, cleaned, next); err != nil {
		removeCleaned()
		return gr, err
	}
	return gr, nil
}

// filterBatch returns the batch as it should be written: b itself when
// every record stays, a rebuilt batch with the kept records, an empty
// batch that keeps a producer's last batch, or nothing.
func (p *compactPass) filterBatch(b []byte, h *batch.Header) (out []byte, removed, tombstones int64, err error) {
	if h.IsControl() {
		return b, 0, 0, nil
	}
	p.kept = p.kept[:0]
	total := int64(0)
	keptTombstone := false
	err = p.rr.Records(b, func(r batch.Record) bool {
		total++
		keep := true
		switch {
		case r.Offset >= p.end:
		case r.Key == nil:
			keep = false // Kafka's cleaner discards keyless records
		default:
			if latest, ok := p.m.m[p.m.hash(r.Key)]; ok && r.Offset < latest {
				keep = false
			} else if r.Value == nil && r.Offset < p.firstDirty && h.MaxTimestamp <= p.horizon {
				keep = false
				tombstones++
			}
		}
		if keep {
			if r.Value == nil {
				keptTombstone = true
			}
			p.kept = append(p.kept, r)
		}
		return true
	})
	if err != nil {
		return nil, 0, 0, err
	}
	if keptTombstone {
		p.due = min(p.due, h.MaxTimestamp)
	}
	removed = total - int64(len(p.kept))
	if removed == 0 {
		return b, 0, 0, nil
	}
	if len(p.kept) == 0 {
		if h.ProducerID >= 0 && p.o.ProducerLastOffsets[h.ProducerID] == h.LastOffset() {
			return emptyBatch(b[:batch.HeaderSize], true), removed, tombstones, nil
		}
		return nil, removed, tombstones, nil
	}
	bld := batch.NewBuilder(h.Codec()).
		SetProducer(h.ProducerID, h.ProducerEpoch, h.BaseSequence).
		SetTransactional(h.IsTransactional()).
		SetBaseOffset(h.BaseOffset).
		SetPartitionLeaderEpoch(h.PartitionLeaderEpoch).
		SetLastOffsetDelta(h.LastOffsetDelta)
	for _, r := range p.kept {
		bld.AddAt(r)
	}
	out, err = bld.Build()
	if err != nil {
		return nil, 0, 0, err
	}
	if h.Attributes&batch.AttrLogAppendTime != 0 {
		batch.SetLogAppendTime(out, h.MaxTimestamp)
	}
	return out, removed, tombstones, nil
}

// emptyBatch returns a batch of zero records with the header fields of
// hdr (offsets, timestamps, leader epoch, attributes without a codec),
// as Kafka writes for a producer's emptied last batch. Without
// keepProducer the producer fields and the transactional bit are
// cleared: the batch only marks where the offsets end.
func emptyBatch(hdr []byte, keepProducer bool) []byte {
	out := append([]byte(nil), hdr...)
	const lengthAfterField = batch.HeaderSize - batch.LengthOverhead
	out[8], out[9], out[10], out[11] = 0, 0, 0, lengthAfterField
	attrs := uint16(out[21])<<8 | uint16(out[22])
	attrs &^= batch.AttrCompressionMask
	if !keepProducer {
		attrs &^= batch.AttrTransactional
		for i := 43; i < 57; i++ { // producer ID, epoch, base sequence: -1
			out[i] = 0xff
		}
	}
	out[21], out[22] = byte(attrs>>8), byte(attrs)
	out[57], out[58], out[59], out[60] = 0, 0, 0, 0 // records count
	batch.UpdateCRC(out)
	return out
}

// bufWriter buffers appends to a file.
type bufWriter struct {
	f        vfs.File
	buf      []byte
	written  int64
	throttle func(int)
}

func (w *bufWriter) write(b []byte) error {
	if len(w.buf)+len(b) > cap(w.buf) {
		if err := w.flush(); err != nil {
			return err
		}
		if len(b) > cap(w.buf) {
			return w.writeOut(b)
		}
	}
	w.buf = append(w.buf, b...)
	return nil
}

func (w *bufWriter) flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	err := w.writeOut(w.buf)
	w.buf = w.buf[:0]
	return err
}

func (w *bufWriter) writeOut(b []byte) error {
	n, err := w.f.Write(b)
	w.written += int64(n)
	if err == nil && n != len(b) {
		err = fmt.Errorf("short write: %d of %d bytes", n, len(b))
	}
	if w.throttle != nil {
		w.throttle(n)
	}
	return err
}

// writeSynced creates name with b and fsyncs it.
func writeSynced(fs vfs.FS, name string, b []byte) error {
	f, err := fs.Create(name)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// swapIn replaces group (whose last segment ends at next) by cleaned,
// whose files are written and synced under .cleaned names. See the swap
// protocol at the top of this file.
func (l *Log) swapIn(snaps []segSnap, cleaned *segment, next int64) error {
	group := make([]*segment, len(snaps))
	for i, sn := range snaps {
		group[i] = sn.s
	}
	l.ckptMu.Lock()
	defer l.ckptMu.Unlock()
	if err := l.checkGroup(group, next); err != nil {
		return err
	}
	marker := path.Join(l.dir, swapMarkerName(cleaned.base, next))
	if err := writeSynced(l.fs, marker, nil); err != nil {
		_ = l.fs.Remove(marker)
		return fmt.Errorf("partlog: compact %s: swap marker: %w", l.dir, err)
	}
	if err := l.fs.SyncDir(l.dir); err != nil {
		// Unknown whether the marker is durable: recovery may finish
		// the swap, which is as good as doing it now.
		l.mu.Lock()
		l.failLocked(fmt.Errorf("partlog: compaction swap commit: %w", err))
		l.mu.Unlock()
		return fmt.Errorf("partlog: compact %s: %w", l.dir, err)
	}

	l.mu.Lock()
	i, err := l.groupIndexLocked(group, next)
	if err != nil {
		// Only Reopen or Close change segments under ckptMu's holder;
		// roll the commit back.
		l.mu.Unlock()
		l.undoMarker(marker)
		return err
	}
	// Renames and removals only (no fsync) under mu, so a reader either
	// sees the old segments with the old files or the new one with the
	// new files; readers in flight see readGen move and retry.
	l.swapGen.Add(1)
	err = func() error {
		if err := l.fs.Rename(cleaned.idxName+cleanedSuffix, cleaned.idxName); err != nil {
			return err
		}
		if err := l.fs.Rename(cleaned.tidxName+cleanedSuffix, cleaned.tidxName); err != nil {
			return err
		}
		for _, s := range group[1:] {
			if err := l.removeSegmentFiles(s); err != nil {
				return err
			}
		}
		return l.fs.Rename(cleaned.logName+cleanedSuffix, cleaned.logName)
	}()
	if err != nil {
		// Half swapped: the marker makes recovery finish it.
		l.failLocked(fmt.Errorf("partlog: compaction swap: %w", err))
		l.mu.Unlock()
		return fmt.Errorf("partlog: compact %s: %w", l.dir, err)
	}
	segs := make([]*segment, 0, len(l.segs)-len(group)+1)
	segs = append(segs, l.segs[:i]...)
	segs = append(segs, cleaned)
	segs = append(segs, l.segs[i+len(group):]...)
	l.segs = segs
	if l.rpMark.seg >= group[0].base && l.rpMark.seg < next {
		// The recovery point is at the end of the group (compaction
		// stops below it): its position moved.
		l.rpMark = noMark
	}
	l.swapGen.Add(1)
	l.mu.Unlock()
	for _, s := range group {
		files.remove(s)
	}

	if err := l.fs.SyncDir(l.dir); err != nil {
		l.mu.Lock()
		l.failLocked(fmt.Errorf("partlog: compaction swap: %w", err))
		l.mu.Unlock()
		return fmt.Errorf("partlog: compact %s: %w", l.dir, err)
	}
	// The marker's removal must be durable before another pass may
	// write b0's .cleaned files, or a crash could revive the marker and
	// make recovery swap in a half-written file.
	err = l.fs.Remove(marker)
	if err == nil {
		err = l.fs.SyncDir(l.dir)
	}
	if err != nil {
		l.mu.Lock()
		l.failLocked(fmt.Errorf("partlog: compaction swap: remove marker: %w", err))
		l.mu.Unlock()
		return fmt.Errorf("partlog: compact %s: %w", l.dir, err)
	}
	return nil
}

// checkGroup verifies that group is still in the log, followed by a
// segment at next.
func (l *Log) checkGroup(group []*segment, next int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, err := l.groupIndexLocked(group, next)
	return err
}

func (l *Log) groupIndexLocked(group []*segment, next int64) (int, error) {
	if l.closed {
		return 0, ErrClosed
	}
	if l.failed != nil {
		return 0, l.failed
	}
	i := l.findSegmentLocked(group[0].base)
	if i+len(group) >= len(l.segs) {
		return 0, errCompactAborted
	}
	for j, s := range group {
		if l.segs[i+j] != s {
			return 0, errCompactAborted
		}
	}
	if l.segs[i+len(group)].base != next {
		return 0, errCompactAborted
	}
	return i, nil
}

// undoMarker rolls back a committed swap that could not proceed: the
// marker must be gone durably before the .cleaned files are.
func (l *Log) undoMarker(marker string) {
	if err := l.fs.Remove(marker); err == nil {
		err = l.fs.SyncDir(l.dir)
		if err == nil {
			return
		}
	}
	l.mu.Lock()
	l.failLocked(fmt.Errorf("partlog: cannot roll back compaction swap %s", marker))
	l.mu.Unlock()
}

// recoverSwaps finishes committed compaction swaps and rolls back
// uncommitted ones in a directory listing (Open). It returns whether it
// changed anything, so the caller lists the directory again.
func recoverSwaps(fs vfs.FS, dir string, names []string, logf func(msg string, args ...any)) (bool, error) {
	type swap struct{ base, next int64 }
	var swaps []swap
	var cleaned []string
	for _, n := range names {
		if b, nx, ok := parseSwapMarker(n); ok {
			swaps = append(swaps, swap{b, nx})
		} else if strings.HasSuffix(n, cleanedSuffix) {
			cleaned = append(cleaned, n)
		}
	}
	if len(swaps) == 0 && len(cleaned) == 0 {
		return false, nil
	}
	for _, sw := range swaps {
		logf("partlog: finishing an interrupted compaction swap", "base", sw.base, "next", sw.next)
		for _, n := range names {
			if base, _, ok := parseSegmentName(n); ok && base > sw.base && base < sw.next {
				if err := fs.Remove(path.Join(dir, n)); err != nil && !vfs.IsNotExist(err) {
					return false, err
				}
			}
		}
		s := newSegment(dir, sw.base)
		if err := fs.Rename(s.logName+cleanedSuffix, s.logName); err != nil && !vfs.IsNotExist(err) {
			return false, err
		}
		// Rebuilt by Open from the log.
		for _, n := range []string{s.idxName, s.tidxName, s.idxName + cleanedSuffix, s.tidxName + cleanedSuffix} {
			if err := fs.Remove(n); err != nil && !vfs.IsNotExist(err) {
				return false, err
			}
		}
	}
	if err := fs.SyncDir(dir); err != nil {
		return false, err
	}
	for _, sw := range swaps {
		if err := fs.Remove(path.Join(dir, swapMarkerName(sw.base, sw.next))); err != nil && !vfs.IsNotExist(err) {
			return false, err
		}
	}
	for _, n := range cleaned {
		// Without a marker the swap never committed: roll it back.
		if err := fs.Remove(path.Join(dir, n)); err != nil && !vfs.IsNotExist(err) {
			return false, err
		}
	}
	return true, fs.SyncDir(dir)
}
