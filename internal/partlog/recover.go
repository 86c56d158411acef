package partlog

import (
	"bytes"
	"fmt"
	"math"
	"path"
	"slices"
	"strings"

	"github.com/gregor-streaming/gregor/internal/batch"
	"github.com/gregor-streaming/gregor/internal/vfs"
)

// load reads the partition directory and recovers the log (Open).
func (l *Log) load() error {
	fs := l.fs
	mkdir := mkdirDurable
	if l.deferSync {
		mkdir = vfs.FS.MkdirAll
	}
	if err := mkdir(fs, l.dir); err != nil {
		return err
	}
	names, err := fs.List(l.dir)
	if err != nil {
		return err
	}
	if changed, err := recoverSwaps(fs, l.dir, names, l.logger.Warn); err != nil {
		return fmt.Errorf("compaction swap recovery: %w", err)
	} else if changed {
		if names, err = fs.List(l.dir); err != nil {
			return err
		}
	}
	type present struct{ log, idx, tidx bool }
	found := map[int64]*present{}
	for _, n := range names {
		if strings.HasSuffix(n, ".tmp") { // an interrupted atomic write
			_ = fs.Remove(path.Join(l.dir, n))
			continue
		}
		base, suffix, ok := parseSegmentName(n)
		if !ok {
			continue
		}
		p := found[base]
		if p == nil {
			p = &present{}
			found[base] = p
		}
		switch suffix {
		case logSuffix:
			p.log = true
		case indexSuffix:
			p.idx = true
		case timeIndexSuffix:
			p.tidx = true
		}
	}
	var bases []int64
	for base, p := range found {
		if p.log {
			bases = append(bases, base)
			continue
		}
		orphan := newSegment(l.dir, base) // indexes without a log
		_ = fs.Remove(orphan.idxName)
		_ = fs.Remove(orphan.tidxName)
	}
	slices.Sort(bases)

	ckpt, cerr := l.readCheckpoint()
	haveCkpt := cerr == nil
	if cerr != nil && !vfs.IsNotExist(cerr) {
		l.logger.Warn("partlog: checkpoint unreadable; recovering the whole log", "err", cerr)
	}

	if len(bases) == 0 {
		start := int64(0)
		if haveCkpt {
			start = ckpt.logStartOffset
		}
		if err := l.startEmptyLocked(start); err != nil {
			return err
		}
		l.ckptRPSeg, l.ckptPos = start, l.rpMark.pos
		return nil
	}

	for i, base := range bases {
		s := newSegment(l.dir, base)
		if i > 0 {
			l.segs[i-1].next = base
		}
		l.segs = append(l.segs, s)
	}
	lso := l.segs[0].base
	if haveCkpt {
		lso = max(lso, ckpt.logStartOffset)
		l.epochs = ckpt.epochs
	}
	// Segments wholly below the log start offset: a crash came between
	// checkpointing it and deleting them.
	for len(l.segs) > 1 && l.segs[1].base <= lso {
		if err := l.removeSegmentFiles(l.segs[0]); err != nil {
			return err
		}
		l.segs = l.segs[1:]
		l.dirDirty = true
	}

	last := l.segs[len(l.segs)-1]
	clean, damaged := false, false
	// The active segment's index files exist once they hold entries.
	lp := found[last.base]
	if haveCkpt && ckpt.clean && ckpt.activeBase == last.base && lp != nil &&
		(lp.idx || ckpt.activeIdxEntries == 0) && (lp.tidx || ckpt.activeTidxEntries == 0) {
		if err := l.loadCleanActive(&ckpt); err != nil {
			// A segment that grew was appended to after the clean
			// start (then a crash): its checkpoint's mark holds. Any
			// other difference is damage.
			fi, serr := fs.Stat(last.logName)
			damaged = serr != nil || fi.Size <= ckpt.activeSize
			if damaged {
				l.logger.Warn("partlog: clean shutdown state does not match the files; recovering", "err", err)
			}
		} else {
			clean = true
		}
	}
	if !clean {
		rp, mark := int64(0), noMark
		if haveCkpt {
			rp, mark = ckpt.recoveryPoint, ckpt.rpMark
		}
		if damaged {
			mark = noMark // the files are not what the shutdown left: check them whole
		}
		if err := l.recoverFrom(l.findSegmentLocked(rp), rp, mark); err != nil {
			return err
		}
	}
	// Closed segments outside the recovery whose indexes are missing.
	for _, s := range l.segs[:len(l.segs)-1] {
		if p := found[s.base]; p != nil && (!p.idx || !p.tidx) && !s.metaLoaded {
			l.logger.Warn("partlog: index missing; rebuilding", "segment", s.logName)
			if err := l.rebuildIndexes(s); err != nil {
				return err
			}
		}
	}

	reset := lso > l.logEndOffset
	if reset {
		// Everything below the checkpointed start offset was deleted and
		// recovery lost the rest: start over at it, as Kafka does, so
		// deleted records never come back.
		l.logger.Warn("partlog: log start offset beyond recovered end; starting empty", "logStartOffset", lso, "logEndOffset", l.logEndOffset)
		if err := l.resetToLocked(lso); err != nil {
			return err
		}
	}
	l.logStartOffset = lso
	hw := lso
	if haveCkpt {
		hw = ckpt.highWatermark
		l.cleanerOffset = min(ckpt.cleanerOffset, l.logEndOffset)
		if l.cleanerOffset > lso {
			// Tombstones kept by earlier passes may have expired
			// while the log was closed: look once.
			l.tombstoneDue = l.openTime
		}
	}
	l.highWatermark = max(min(hw, l.logEndOffset), lso)
	l.epochs = truncateEpochsFromStart(truncateEpochsFromEnd(l.epochs, l.logEndOffset), lso)
	if clean {
		l.recoveryPoint, l.rpMark = ckpt.recoveryPoint, ckpt.rpMark
		if ckpt.recoveryPoint >= l.logEndOffset {
			l.recoveryPoint, l.rpMark = l.logEndOffset, l.endMarkLocked()
		}
		l.ckptRPSeg, l.ckptPos = l.segBaseLocked(l.recoveryPoint), l.rpMark.pos
		return nil
	}
	// Everything recovery validated is made durable before the recovery
	// point moves past it.
	l.recoveryPoint, l.rpMark = l.logEndOffset, l.endMarkLocked()
	// With DeferSync, the checkpoint on disk is left as it is when it
	// still holds: its recovery point lies in data recovery kept (that
	// data was synced before it was recorded), the epochs past it are
	// rebuilt by every recovery, and nothing else it records moved (no
	// checkpoint at all holds too: recovery then scans every segment).
	// Only the recovery point advanced, which is progress the
	// checkpoint rounds write once the caller's SyncAll has made the
	// recovered data durable, instead of a file created and renamed
	// here per partition: 10,000 of them were 0.8 s of a restart after
	// a crash. ckptRPSeg and ckptPos then say where the next recovery
	// would start scanning (checkpointDueLocked).
	if l.deferSync && !damaged && !reset {
		holds, rpSeg, pos := false, int64(0), int64(0)
		if haveCkpt {
			holds = ckpt.logStartOffset == lso && ckpt.highWatermark <= l.logEndOffset && ckpt.cleanerOffset <= l.logEndOffset
			rpSeg, pos = l.segBaseLocked(ckpt.recoveryPoint), ckpt.rpMark.pos
			if ckpt.rpMark.seg != rpSeg || pos < 0 {
				pos = 0 // recovery starts at the segment's start
			}
		} else if vfs.IsNotExist(cerr) {
			holds, rpSeg = true, l.segs[0].base
		}
		if holds {
			l.ckptRPSeg, l.ckptPos = rpSeg, pos
			l.ckptDirty, l.ckptProgress = true, true // listed by Open
			return nil
		}
	}
	c := l.checkpointLocked(false)
	l.ckptRPSeg, l.ckptPos = l.segBaseLocked(l.recoveryPoint), l.rpMark.pos
	return l.writeCkptFile(c.encode(), !l.deferSync)
}

// mkdirDurable creates dir and any missing parents, and syncs the parent
// of each directory it created so the new directories survive a crash.
func mkdirDurable(fs vfs.FS, dir string) error {
	var created []string
	for d := path.Clean(dir); d != "." && d != "/"; d = path.Dir(d) {
		if _, err := fs.Stat(d); err == nil {
			break
		}
		created = append(created, d)
	}
	if err := fs.MkdirAll(dir); err != nil {
		return err
	}
	for _, d := range created {
		if err := fs.SyncDir(path.Dir(d)); err != nil {
			return err
		}
	}
	return nil
}

// readCheckpoint reads the checkpoint file's newest valid checkpoint.
// Whether it is durable is unknown (a process crash leaves unsynced
// writes in the page cache), so it counts as durable only after the next
// whole-file-system sync; until then a new checkpoint replaces the file
// (see ckptSlots).
func (l *Log) readCheckpoint() (checkpoint, error) {
	b, err := vfs.ReadFile(l.fs, l.ckptName)
	if err != nil {
		l.ckptSlots = ckptSlots{missing: vfs.IsNotExist(err)}
		return checkpoint{}, err
	}
	cf, err := decodeCkptFile(b)
	if err != nil {
		l.ckptSlots = ckptSlots{} // replaced by the next write
		return checkpoint{}, err
	}
	l.ckptSlots = ckptSlots{exists: true, inPlace: cf.size <= ckptSlotSize, slot: cf.slot, seq: cf.seq}
	if l.syncer != nil {
		l.ckptSlots.gen = l.syncer.wholeSyncs()
	}
	l.ckptDisk = cf.c.encode()
	return cf.c, nil
}

// startEmptyLocked makes a new log whose first segment starts at start.
func (l *Log) startEmptyLocked(start int64) error {
	s := newSegment(l.dir, start)
	f, err := createWriter(l.fs, s.logName)
	if err != nil {
		return err
	}
	l.segs = []*segment{s}
	l.w = newRCFile(f, 1)
	l.act = activeState{seg: s, lastTs: -1, maxTs: -1, maxTsOff: start, firstTs: -1, created: l.openTime, modified: l.openTime}
	l.logStartOffset, l.highWatermark, l.logEndOffset, l.recoveryPoint = start, start, start, start
	l.rpMark = rpMark{seg: start, maxTs: -1, maxTsOff: start, firstTs: -1}
	l.jEnd, l.jDurable = start, start
	l.cleanerOffset = start
	l.epochs = nil
	l.dirDirty = true
	return nil
}

// resetToLocked deletes every segment and starts empty at start.
func (l *Log) resetToLocked(start int64) error {
	l.dropPendLocked()
	for _, s := range l.segs {
		if err := l.removeSegmentFiles(s); err != nil {
			return err
		}
	}
	if l.w != nil {
		l.w.release()
		l.w = nil
	}
	l.segs = nil
	return l.startEmptyLocked(start)
}

// loadCleanActive trusts the active segment after a clean shutdown once
// its size and index sizes match the checkpoint and the batches after
// the last index entry check out and end at the checkpointed end offset.
func (l *Log) loadCleanActive(c *checkpoint) error {
	s := l.segs[len(l.segs)-1]
	f, err := l.fs.OpenWrite(s.logName)
	if err != nil {
		return err
	}
	a, err := l.checkCleanActive(s, f, c)
	if err != nil {
		f.Close()
		return err
	}
	l.act = a
	l.w = newRCFile(f, 1)
	l.logEndOffset = c.logEndOffset
	s.next = c.logEndOffset
	return nil
}

func (l *Log) checkCleanActive(s *segment, f vfs.File, c *checkpoint) (activeState, error) {
	a := activeState{seg: s, lastTs: -1, maxTs: -1, maxTsOff: s.base, firstTs: -1, created: l.openTime, modified: l.openTime}
	size, err := f.Size()
	if err != nil {
		return a, err
	}
	if size != c.activeSize {
		return a, fmt.Errorf("active segment has %d bytes, checkpoint says %d", size, c.activeSize)
	}
	ii, err := statIndex(l.fs, s.idxName)
	if err != nil {
		return a, err
	}
	ti, err := statIndex(l.fs, s.tidxName)
	if err != nil {
		return a, err
	}
	if ii.Size != int64(c.activeIdxEntries)*offsetIndexEntrySize || ti.Size != int64(c.activeTidxEntries)*timeIndexEntrySize {
		return a, fmt.Errorf("active index sizes %d/%d do not match the checkpoint", ii.Size, ti.Size)
	}
	a.size = size
	a.idxFlushed, a.tidxFlushed = int64(c.activeIdxEntries), int64(c.activeTidxEntries)
	pos, prevNext := int64(0), s.base
	expect := int64(-1)
	if a.idxFlushed > 0 {
		idx, err := l.fs.Open(s.idxName)
		if err != nil {
			return a, err
		}
		var b [offsetIndexEntrySize]byte
		err = readFullAt(idx, b[:], ii.Size-offsetIndexEntrySize)
		idx.Close()
		if err != nil {
			return a, err
		}
		a.lastIdx, a.hasIdx = getIndexEntry(b[:]), true
		pos, expect = int64(a.lastIdx.pos), s.base+int64(a.lastIdx.rel)
	}
	// Check the tail: whole valid batches from the last index entry to
	// the end of the file, ending at the checkpointed end offset.
	// The window fits the tail (the bytes after the last index entry):
	// at start every partition comes through here, and with 10,000 of
	// them neither a full window each nor reads past the tail are free.
	sc := newScanner(f, size, tailWindow(pos, size))
	defer sc.release()
	next := s.base
	for p := pos; p < size; {
		h, ok, err := sc.batchAt(p, s.base, prevNext, -1)
		if err != nil {
			return a, err
		}
		if !ok || (expect >= 0 && h.LastOffset() != expect) {
			return a, fmt.Errorf("no valid batch at position %d", p)
		}
		expect = -1
		prevNext, next = h.NextOffset(), h.NextOffset()
		p += int64(h.Size())
	}
	if size > 0 && next != c.logEndOffset || size == 0 && s.base != c.logEndOffset {
		return a, fmt.Errorf("active segment ends at offset %d, checkpoint says %d", next, c.logEndOffset)
	}
	a.bytesSinceIdx = size - pos
	if size > 0 {
		var w [batch.HeaderSize]byte
		if err := readFullAt(f, w[:min(size, batch.HeaderSize)], 0); err != nil {
			return a, err
		}
		h, err := batch.ParseHeader(w[:min(size, batch.HeaderSize)])
		if err != nil {
			return a, err
		}
		a.firstTs = h.MaxTimestamp
	}
	ts, off := int64(-1), s.base
	if ti.Size > 0 {
		if ts, off, err = lastTimeIndexEntry(l.fs, s.tidxName, s.base); err != nil {
			return a, err
		}
	}
	a.lastTs, a.maxTs, a.maxTsOff = ts, ts, off
	return a, nil
}

// recoverFrom validates segments k.. to the end (see Open), rebuilds
// their indexes, truncates a torn tail and makes the last segment active.
// rp is the checkpointed recovery point (segments k.. hold it) and mark
// where it lies: segment k is validated from there when the mark checks
// out, from its start otherwise.
func (l *Log) recoverFrom(k int, rp int64, mark rpMark) error {
	segs := l.segs
	maxNextOf := func(i int) int64 {
		if i+1 < len(segs) {
			return segs[i+1].base
		}
		return -1
	}
	from, fast, err := l.markedScan(segs[k], rp, mark, maxNextOf(k))
	if err != nil {
		return err
	}
	l.epochs = truncateEpochsFromEnd(l.epochs, from)
	lastEpoch := int32(-1)
	if n := len(l.epochs); n > 0 {
		lastEpoch = l.epochs[n-1].Epoch
	}
	attrs := []any{"fromSegment", segs[k].logName, "segments", len(segs) - k}
	if fast != nil {
		attrs = append(attrs, "position", mark.pos, "offset", rp)
	}
	l.logger.Info("partlog: recovering", attrs...)
	results := make([]segScan, len(segs)-k)
	sizes := make([]int64, len(segs)-k)
	for i := k; i < len(segs); i++ {
		s := segs[i]
		var r segScan
		var size int64
		var err error
		if i == k && fast != nil {
			r, size, err = fast(lastEpoch)
		} else {
			r, size, err = l.scanFile(s, maxNextOf(i), lastEpoch)
		}
		if err != nil {
			return err
		}
		if n := len(r.epochs); n > 0 {
			lastEpoch = r.epochs[n-1].Epoch
		}
		results[i-k], sizes[i-k] = r, size
	}

	lastValid := -1
	for j := len(segs) - 1; j >= k; j-- {
		if results[j-k].nValid > 0 {
			lastValid = j
			break
		}
	}
	if jl := l.journal(); jl != nil {
		// With a journal, damage past the recovery point is usually a
		// torn write of data never synced in its segment. When the
		// journal holds the first damaged batch, cut the log there and
		// let the replay restore what the journal holds, rather than
		// keep the damage as a hole the replay cannot fill: what
		// follows and is not in the journal was never acknowledged,
		// since a segment sync acknowledging it would have synced the
		// damaged bytes too. Otherwise (a flipped bit in synced data)
		// the damage is kept and never served, as without a journal.
		for j := k; j < len(segs); j++ {
			r := &results[j-k]
			pos, off := int64(-1), int64(-1)
			if len(r.corrupt) > 0 {
				pos, off = r.corrupt[0].start, r.corrupt[0].firstOff
			} else if r.garbage >= 0 && j < lastValid {
				pos, off = r.garbage, r.next
			} else if j < len(segs)-1 && r.next < segs[j+1].base {
				// The segment's tail is gone and the next segment's
				// file survived: a gap (legitimate only below the
				// recovery point, after compaction).
				pos, off = r.validEnd, r.next
			}
			if pos < 0 {
				continue
			}
			if off < rp || !jl.holds(l.jkey, off) {
				break
			}
			if err := l.cutForReplay(segs, j, pos); err != nil {
				return err
			}
			return l.recoverFrom(k, rp, mark)
		}
	}
	garbageAfter := func(j int) bool {
		for i := j; i < len(segs); i++ {
			if sizes[i-k] > 0 {
				return true
			}
		}
		return false
	}
	cut, truncSeg, truncAt := len(segs), -1, int64(-1)
	switch {
	case lastValid >= 0 && results[lastValid-k].garbage >= 0:
		cut, truncSeg, truncAt = lastValid+1, lastValid, results[lastValid-k].garbage
	case lastValid >= 0:
		switch next := results[lastValid-k].next; {
		case garbageAfter(lastValid + 1):
			cut = lastValid + 1
		case next < rp:
			// Below the recovery point a gap is compaction's, and the
			// offsets in it were given out: they stay skipped.
		case lastValid+1 < len(segs) && segs[lastValid+1].base != next:
			// The last data ends before the next segment begins: that
			// segment's file (empty, like any after it) survived a
			// crash that took the unsynced tail before it. Keeping it
			// would leave a hole no read can cross until more data
			// comes; the log continues at the end of its data instead.
			cut = lastValid + 1
		case lastValid+2 < len(segs):
			cut = lastValid + 2 // empty segments past an empty one
		}
	case garbageAfter(k) && k > 0:
		cut = k // the last trusted segment becomes active, recovered below
	case garbageAfter(k):
		cut, truncSeg, truncAt = 1, 0, 0
	}
	if truncSeg >= 0 {
		name, n := segs[truncSeg].logName, sizes[truncSeg-k]-truncAt
		// Only the start is looked at: the message is all it decides,
		// and space reserved ahead is megabytes per log.
		if allZeros(l.fs, name, truncAt, min(n, 64<<10)) {
			// Space reserved past the data (prealloc.go), or
			// never-synced appends into it.
			l.logger.Info("partlog: trimming zeros past the data", "segment", name, "position", truncAt, "bytes", n)
		} else {
			l.logger.Warn("partlog: truncating torn tail", "segment", name, "position", truncAt, "bytes", n)
		}
	}
	for _, s := range segs[cut:] {
		l.logger.Warn("partlog: deleting segment after torn tail", "segment", s.logName)
		if err := l.removeSegmentFiles(s); err != nil {
			return err
		}
		l.dirDirty = true
	}
	l.segs = segs[:cut]
	if cut == k {
		return l.recoverFrom(k-1, rp, mark)
	}

	for j := k; j < cut; j++ {
		s, r, size := segs[j], results[j-k], sizes[j-k]
		active := j == cut-1
		if j == truncSeg {
			size = truncAt
		} else if r.garbage >= 0 {
			// Unreadable bytes at the end of a segment with valid data
			// after it: keep them, never serve them.
			r.corrupt = append(r.corrupt, corruptRange{start: r.garbage, end: size, firstOff: r.next, nextOff: s.next})
		}
		for _, cr := range r.corrupt {
			l.logger.Error("partlog: CORRUPT batch range kept and never served; data after it is intact",
				"segment", s.logName, "positions", fmt.Sprintf("[%d,%d)", cr.start, cr.end), "offsets", fmt.Sprintf("[%d,%d)", cr.firstOff, cr.nextOff))
		}
		s.corrupt = r.corrupt
		l.epochs = append(l.epochs, r.epochs...)
		tidx := r.tidx
		lastTs := int64(-1)
		if n := len(tidx); n > 0 {
			lastTs = tidx[n-1].ts
		}
		if !active {
			if e, ok := finalTimeEntry(lastTs, r.maxTs, r.maxTsOff, s.base); ok {
				tidx = append(tidx, e)
			}
		}
		idxFlushed, tidxFlushed := int64(len(r.idx)), int64(len(tidx))
		if active {
			// The active segment's index files are checked, not trusted,
			// by the next recovery (markedScan), and the clean shutdown
			// syncs them. When they hold a prefix of what recovery
			// rebuilt (a missing file is empty), the rest waits with
			// the appends' entries for the next checkpoint, roll or
			// close; otherwise what differs is written, without an
			// fsync here.
			idxB := appendIndexEntries(make([]byte, 0, len(r.idx)*offsetIndexEntrySize), r.idx)
			tidxB := appendTimeEntries(make([]byte, 0, len(tidx)*timeIndexEntrySize), tidx)
			ni, ok1, err := prefixLen(l.fs, s.idxName, idxB)
			if err != nil {
				return err
			}
			nt, ok2, err := prefixLen(l.fs, s.tidxName, tidxB)
			if err != nil {
				return err
			}
			ok1 = ok1 && ni%offsetIndexEntrySize == 0 // not a torn entry
			ok2 = ok2 && nt%timeIndexEntrySize == 0
			ni /= offsetIndexEntrySize
			nt /= timeIndexEntrySize
			if ok1 && ok2 && len(r.idx)-ni < maxPendingIndexEntries && len(tidx)-nt < maxPendingIndexEntries {
				idxFlushed, tidxFlushed = int64(ni), int64(nt)
			} else {
				c1, err := updateFile(l.fs, s.idxName, idxB)
				if err != nil {
					return err
				}
				c2, err := updateFile(l.fs, s.tidxName, tidxB)
				if err != nil {
					return err
				}
				l.dirDirty = l.dirDirty || c1 || c2
			}
		} else if err := writeIndexFiles(l.fs, s, r.idx, tidx); err != nil {
			return err
		}
		if !active {
			s.setMeta(segMeta{size: size, maxTs: r.maxTs, maxTsOff: r.maxTsOff, idxEntries: int64(len(r.idx)), modified: l.openTime})
			continue
		}
		f, err := l.fs.OpenWrite(s.logName)
		if err != nil {
			return err
		}
		if j == truncSeg {
			if err := f.Truncate(truncAt); err != nil {
				f.Close()
				return err
			}
		}
		l.w = newRCFile(f, 1)
		a := activeState{seg: s, size: size, bytesSinceIdx: r.bytesSinceIdx,
			idxFlushed: idxFlushed, tidxFlushed: tidxFlushed,
			idxPending: r.idx[idxFlushed:], tidxPending: tidx[tidxFlushed:],
			lastTs: lastTs, maxTs: r.maxTs, maxTsOff: r.maxTsOff, firstTs: r.firstTs,
			created: l.openTime, modified: l.openTime}
		if n := len(r.idx); n > 0 {
			a.lastIdx, a.hasIdx = r.idx[n-1], true
		}
		l.act = a
		l.logEndOffset = s.base
		if r.nValid > 0 {
			l.logEndOffset = max(r.next, s.base)
		}
		s.next = l.logEndOffset
	}
	// Make the recovered state durable.
	if l.deferSync {
		l.dirDirty = false
		return nil // the caller's SyncAll does, before any append
	}
	for j := k; j < cut; j++ {
		s := segs[j]
		if j == cut-1 {
			if err := l.w.f.Sync(); err != nil {
				return err
			}
			continue
		}
		if err := syncFile(l.fs, s.logName); err != nil {
			return err
		}
		if err := syncFile(l.fs, s.idxName); err != nil {
			return err
		}
		if err := syncFile(l.fs, s.tidxName); err != nil {
			return err
		}
	}
	if !l.dirDirty && cut-k == 1 {
		// No file created or removed here. Open writes the checkpoint
		// next, which syncs the directory: that also makes durable a
		// segment file whose creation was not synced before the crash.
		return nil
	}
	l.dirDirty = false
	return l.fs.SyncDir(l.dir)
}

// updateFile makes name hold b, writing only what differs: nothing when
// it does, the rest when the file holds a prefix of b, the whole file
// otherwise. created reports a new directory entry.
func updateFile(fs vfs.FS, name string, b []byte) (created bool, err error) {
	cur, err := vfs.ReadFile(fs, name)
	switch {
	case err != nil && !vfs.IsNotExist(err):
		return false, err
	case err == nil && bytes.Equal(cur, b):
		return false, nil
	case err == nil && len(cur) < len(b) && bytes.Equal(cur, b[:len(cur)]):
		return false, appendFile(fs, name, b[len(cur):])
	case err != nil && len(b) == 0:
		return false, nil // an index file appears with its first entry
	}
	return err != nil, writeFile(fs, name, b)
}

// prefixLen reports whether name holds a prefix of b (a missing file
// holds the empty one) and how long it is.
func prefixLen(fs vfs.FS, name string, b []byte) (int, bool, error) {
	cur, err := vfs.ReadFile(fs, name)
	if vfs.IsNotExist(err) {
		return 0, true, nil
	}
	if err != nil {
		return 0, false, err
	}
	return len(cur), len(cur) <= len(b) && bytes.Equal(cur, b[:len(cur)]), nil
}

// cutForReplay truncates segment j's file at pos and deletes the
// segments after it (recoverFrom with a journal).
func (l *Log) cutForReplay(segs []*segment, j int, pos int64) error {
	l.logger.Warn("partlog: damage past the recovery point; truncating for journal replay", "segment", segs[j].logName, "position", pos)
	f, err := l.fs.OpenAppend(segs[j].logName)
	if err != nil {
		return err
	}
	err = f.Truncate(pos)
	if serr := f.Sync(); err == nil {
		err = serr
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	for _, s := range segs[j+1:] {
		if err := l.removeSegmentFiles(s); err != nil {
			return err
		}
	}
	l.segs = segs[:j+1]
	l.dirDirty = true
	return nil
}

// scanFile validates a whole segment file.
func (l *Log) scanFile(s *segment, maxNext int64, lastEpoch int32) (segScan, int64, error) {
	f, err := l.fs.Open(s.logName)
	if err != nil {
		return segScan{}, 0, err
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return segScan{}, 0, err
	}
	r, err := scanSegment(f, size, s.base, s.base, maxNext, l.cfg.IndexIntervalBytes, lastEpoch)
	return r, size, err
}

// rebuildIndexes rebuilds a closed segment's .index and .timeindex from
// its log, replacing the files atomically so concurrent readers see the
// old or the new one. Concurrent calls for one segment run once.
func (l *Log) rebuildIndexes(s *segment) error {
	if !s.rebuilding.CompareAndSwap(false, true) {
		return nil
	}
	defer s.rebuilding.Store(false)
	l.mu.Lock()
	if i := l.findSegmentLocked(s.base); len(l.segs) > 0 && l.segs[i] != s && l.segs != nil {
		// Replaced (compaction) or deleted meanwhile: its file names may
		// belong to another segment now.
		l.mu.Unlock()
		return nil
	}
	maxNext := s.next
	interval := l.cfg.IndexIntervalBytes
	l.mu.Unlock()
	f, err := l.fs.Open(s.logName)
	if err != nil {
		return err
	}
	size, err := f.Size()
	if err != nil {
		f.Close()
		return err
	}
	r, err := scanSegment(f, size, s.base, s.base, maxNext, interval, math.MaxInt32)
	f.Close()
	if err != nil {
		return err
	}
	tidx := r.tidx
	lastTs := int64(-1)
	if n := len(tidx); n > 0 {
		lastTs = tidx[n-1].ts
	}
	if e, ok := finalTimeEntry(lastTs, r.maxTs, r.maxTsOff, s.base); ok {
		tidx = append(tidx, e)
	}
	if r.garbage >= 0 {
		r.corrupt = append(r.corrupt, corruptRange{start: r.garbage, end: size, firstOff: r.next, nextOff: maxNext})
	}
	for _, cr := range r.corrupt {
		l.logger.Error("partlog: CORRUPT batch range found while rebuilding indexes; never served",
			"segment", s.logName, "positions", fmt.Sprintf("[%d,%d)", cr.start, cr.end), "offsets", fmt.Sprintf("[%d,%d)", cr.firstOff, cr.nextOff))
	}
	for _, w := range []struct {
		name string
		b    []byte
	}{
		{s.idxName, appendIndexEntries(nil, r.idx)},
		{s.tidxName, appendTimeEntries(nil, tidx)},
	} {
		if err := vfs.WriteFileAtomic(l.fs, l.dir, w.name, w.b); err != nil {
			return err
		}
	}
	files.drop(s, cacheIndex)
	l.mu.Lock()
	if len(r.corrupt) > 0 {
		s.corrupt = r.corrupt
	}
	l.mu.Unlock()
	s.setMeta(segMeta{size: size, maxTs: r.maxTs, maxTsOff: r.maxTsOff, idxEntries: int64(len(r.idx)), modified: l.openTime})
	s.idxBad.Store(false)
	return nil
}

// allZeros reports whether the n bytes of name from off are all zero.
func allZeros(fs vfs.FS, name string, off, n int64) bool {
	f, err := fs.Open(name)
	if err != nil {
		return false
	}
	defer f.Close()
	buf := make([]byte, min(n, 64<<10))
	for n > 0 {
		b := buf[:min(n, int64(len(buf)))]
		if err := readFullAt(f, b, off); err != nil {
			return false
		}
		for _, c := range b {
			if c != 0 {
				return false
			}
		}
		off += int64(len(b))
		n -= int64(len(b))
	}
	return true
}

// markedScan prepares validating segment s from the checkpointed recovery
// point rp rather than from the segment's start. Everything below rp was
// synced before a checkpoint recorded the mark, so only what follows can
// be torn; Kafka rescans the whole segment holding its recovery point,
// which after a crash is up to segment.bytes per partition. The mark is
// used when it places rp in s and the file agrees: it ends at the mark,
// the header there is a batch starting at rp (its CRC is checked by the
// scan), or zeros reserved ahead start there. Otherwise (nil fast) the
// segment is scanned from its start.
// from is the first offset the scan revalidates.
func (l *Log) markedScan(s *segment, rp int64, m rpMark, maxNext int64) (from int64, fast func(lastEpoch int32) (segScan, int64, error), err error) {
	if m.pos <= 0 || m.pos > math.MaxInt32 || m.seg != s.base || rp <= s.base || m.maxTsOff < s.base || m.maxTsOff >= rp {
		return s.base, nil, nil
	}
	f, err := l.fs.Open(s.logName)
	if err != nil {
		return 0, nil, err
	}
	keep := false // f goes to fast
	defer func() {
		if !keep {
			f.Close()
		}
	}()
	whole := func(why string, args ...any) (int64, func(int32) (segScan, int64, error), error) {
		l.logger.Info("partlog: "+why+"; scanning the segment whole", append([]any{"segment", s.logName, "position", m.pos}, args...)...)
		return s.base, nil, nil
	}
	size, err := f.Size()
	if err != nil {
		return 0, nil, err
	}
	if size != m.pos {
		if size < m.pos+batch.HeaderSize {
			return whole("recovery point mark does not match the segment", "size", size)
		}
		h, w, perr, err := headerAt(f, m.pos)
		if err != nil {
			return 0, nil, err
		}
		agrees := perr == nil && h.BaseOffset == rp && plausible(&h, m.pos, size, s.base, rp, maxNext) ||
			w == [batch.HeaderSize]byte{} // space reserved past the data (prealloc.go)
		if !agrees {
			return whole("recovery point mark does not match the segment", "size", size)
		}
	}
	idx, tidx := l.indexBelow(s, rp, m)
	indexed := int64(0)
	if n := len(idx); n > 0 {
		// The last entry kept must point at its batch: a stale or
		// damaged index means more is wrong than a crash explains.
		e := idx[n-1]
		indexed = int64(e.pos)
		h, _, perr, err := headerAt(f, indexed)
		if err != nil || perr != nil || h.LastOffset() != s.base+int64(e.rel) || indexed+int64(h.Size()) > m.pos {
			return whole("index does not match the segment below the recovery point")
		}
	}
	if m.pos-indexed > maxPendingIndexEntries*max(int64(l.cfg.IndexIntervalBytes), 4096) {
		// The index entries of the checkpoint's time are missing (lost
		// with a power failure): reads of this segment would scan
		// megabytes from its start until it rolls. Rebuild them.
		return whole("index below the recovery point incomplete", "indexedTo", indexed)
	}
	r := segScan{garbage: -1, maxTs: m.maxTs, maxTsOff: m.maxTsOff, firstTs: m.firstTs, next: rp,
		validEnd: m.pos, nValid: 1, idx: idx, tidx: tidx, bytesSinceIdx: m.pos - indexed}
	lastTs := int64(-1)
	if n := len(tidx); n > 0 {
		lastTs = tidx[n-1].ts
	}
	keep = true
	return rp, func(lastEpoch int32) (segScan, int64, error) {
		defer f.Close()
		r, err := scanSegmentFrom(f, size, s.base, maxNext, l.cfg.IndexIntervalBytes, lastEpoch, r, m.pos, lastTs)
		return r, size, err
	}, nil
}

// headerAt reads the batch header at pos of f: w holds its bytes, perr
// says whether they parse, err whether they could be read.
func headerAt(f vfs.File, pos int64) (h batch.Header, w [batch.HeaderSize]byte, perr, err error) {
	if err = readFullAt(f, w[:], pos); err != nil {
		return h, w, nil, err
	}
	h, perr = batch.ParseHeader(w[:])
	return h, w, perr, nil
}

// indexBelow returns the entries of s's index files that describe
// batches below rp, as far as they are well formed. They were written
// before the recovery point moved past them but not necessarily synced,
// so a crash may have cut them short; the ones kept are consistent
// (strictly increasing, inside the mark), and a read checks the batch an
// offset index entry points at before trusting it.
func (l *Log) indexBelow(s *segment, rp int64, m rpMark) ([]indexEntry, []timeEntry) {
	var idx []indexEntry
	if b, err := vfs.ReadFile(l.fs, s.idxName); err == nil {
		for p := 0; p+offsetIndexEntrySize <= len(b); p += offsetIndexEntrySize {
			e := getIndexEntry(b[p:])
			if e.pos <= 0 || int64(e.pos) >= m.pos || e.rel < 0 || s.base+int64(e.rel) >= rp {
				break
			}
			if n := len(idx); n > 0 && (e.rel <= idx[n-1].rel || e.pos <= idx[n-1].pos) {
				break
			}
			idx = append(idx, e)
		}
	}
	var tidx []timeEntry
	if b, err := vfs.ReadFile(l.fs, s.tidxName); err == nil {
		for p := 0; p+timeIndexEntrySize <= len(b); p += timeIndexEntrySize {
			e := getTimeEntry(b[p:])
			if e.rel < 0 || s.base+int64(e.rel) >= rp || e.ts > m.maxTs {
				break
			}
			if n := len(tidx); n > 0 && (e.ts <= tidx[n-1].ts || e.rel <= tidx[n-1].rel) {
				break
			}
			tidx = append(tidx, e)
		}
	}
	return idx, tidx
}
