package partlog

import (
	"fmt"
	"math"
	"path"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gregor-streaming/gregor/internal/vfs"
)

// File name suffixes, as in Kafka.
const (
	logSuffix       = ".log"
	indexSuffix     = ".index"
	timeIndexSuffix = ".timeindex"
	checkpointName  = "partition.checkpoint"
)

// segmentName is the 20-digit zero-padded base offset followed by suffix.
func segmentName(base int64, suffix string) string {
	return fmt.Sprintf("%020d%s", base, suffix)
}

// parseSegmentName returns the base offset and suffix of a segment file
// name, or ok=false for other names.
func parseSegmentName(name string) (base int64, suffix string, ok bool) {
	dot := strings.IndexByte(name, '.')
	if dot != 20 {
		return 0, "", false
	}
	suffix = name[dot:]
	switch suffix {
	case logSuffix, indexSuffix, timeIndexSuffix:
	default:
		return 0, "", false
	}
	base, err := strconv.ParseInt(name[:dot], 10, 64)
	if err != nil || base < 0 {
		return 0, "", false
	}
	return base, suffix, true
}

// corruptRange is a byte range of a segment that holds no valid batch,
// found by recovery between valid batches, with the offsets it spans.
// Read never serves it.
type corruptRange struct {
	start, end        int64 // file positions [start, end)
	firstOff, nextOff int64 // offsets [firstOff, nextOff) it covers
}

// segment is one segment of a Log: files <base>.log, .index, .timeindex.
// The active segment's changing state lives in Log (activeState); a
// closed segment is immutable on disk apart from truncation and
// retention, and its metadata is loaded lazily.
type segment struct {
	// base is the segment's base offset. Immutable.
	base int64
	// logName, idxName, tidxName are the files' paths. Immutable.
	logName, idxName, tidxName string

	// next is the offset after the segment's last offset: the base of
	// the following segment, or for the active segment the LEO. Guarded
	// by Log.mu.
	next int64
	// corrupt lists ranges recovery found unreadable. Guarded by Log.mu;
	// the slice is replaced, never modified in place.
	corrupt []corruptRange

	// metaMu guards the lazily loaded metadata of a closed segment.
	metaMu     sync.Mutex
	metaLoaded bool
	size       int64     // .log size in bytes
	maxTs      int64     // largest batch maxTimestamp, -1 if none
	maxTsOff   int64     // last offset of the first batch with maxTs
	idxEntries int64     // entries in .index
	modified   time.Time // when this process last wrote it, else Open time

	// idxBad is set when a lookup found the offset index inconsistent;
	// lookups then scan from the start until it is rebuilt.
	idxBad atomic.Bool
	// rebuilding serializes index rebuilds.
	rebuilding atomic.Bool

	// cacheFrom is, for a closed segment, where the pages its log still
	// keeps cached start (pagecache.go): reads below it prefetch, and
	// releases of the log's cacheTail go on from it (written under the
	// log's syncMu). 0 while the segment is active (its log's window
	// decides) and until its roll's sync; math.MaxInt64 for a segment
	// found at open, released whole, or no longer tracked.
	cacheFrom atomic.Int64

	// File cache state, guarded by fileCache.mu.
	cLog, cIdx   *rcFile
	cPrev, cNext *segment
	cIn, cDead   bool
}

func newSegment(dir string, base int64) *segment {
	s := &segment{
		base:     base,
		next:     base,
		logName:  path.Join(dir, segmentName(base, logSuffix)),
		idxName:  path.Join(dir, segmentName(base, indexSuffix)),
		tidxName: path.Join(dir, segmentName(base, timeIndexSuffix)),
		maxTs:    -1,
		maxTsOff: base,
	}
	s.cacheFrom.Store(math.MaxInt64)
	return s
}

// segMeta is a copy of a closed segment's metadata.
type segMeta struct {
	size       int64
	maxTs      int64
	maxTsOff   int64
	idxEntries int64
	modified   time.Time
}

// setMeta records metadata known without I/O (a segment that just rolled).
func (s *segment) setMeta(m segMeta) {
	s.metaMu.Lock()
	s.size, s.maxTs, s.maxTsOff, s.idxEntries, s.modified = m.size, m.maxTs, m.maxTsOff, m.idxEntries, m.modified
	s.metaLoaded = true
	s.metaMu.Unlock()
}

// invalidateMeta makes the next meta call reload from disk.
func (s *segment) invalidateMeta() {
	s.metaMu.Lock()
	s.metaLoaded = false
	s.metaMu.Unlock()
}

// meta returns a closed segment's metadata, loading it from disk on first
// use: the .log and .index sizes and the last time index entry, which is
// the segment's max timestamp because a final entry is appended when a
// segment stops being active (as Kafka does). Must not be called with
// Log.mu held (it does I/O).
func (s *segment) meta(fs vfs.FS, openTime time.Time, next int64) (segMeta, error) {
	s.metaMu.Lock()
	defer s.metaMu.Unlock()
	if s.metaLoaded {
		return segMeta{s.size, s.maxTs, s.maxTsOff, s.idxEntries, s.modified}, nil
	}
	li, err := fs.Stat(s.logName)
	if err != nil {
		return segMeta{}, err
	}
	ii, err := fs.Stat(s.idxName)
	if err != nil {
		return segMeta{}, err
	}
	if ii.Size%offsetIndexEntrySize != 0 {
		return segMeta{}, fmt.Errorf("%w: %s: size %d not a multiple of %d", errIndexCorrupt, s.idxName, ii.Size, offsetIndexEntrySize)
	}
	if err := checkIndexEnds(fs, s.idxName, ii.Size, li.Size, next-s.base); err != nil {
		return segMeta{}, err
	}
	ts, off, err := lastTimeIndexEntry(fs, s.tidxName, s.base)
	if err != nil {
		return segMeta{}, err
	}
	if ts >= 0 && off >= next {
		return segMeta{}, fmt.Errorf("%w: %s: last entry at offset %d beyond %d", errIndexCorrupt, s.tidxName, off, next)
	}
	s.size, s.idxEntries = li.Size, ii.Size/offsetIndexEntrySize
	s.maxTs, s.maxTsOff = ts, off
	if s.modified.IsZero() {
		s.modified = openTime
	}
	s.metaLoaded = true
	return segMeta{s.size, s.maxTs, s.maxTsOff, s.idxEntries, s.modified}, nil
}

// checkIndexEnds is Kafka's index sanity check: the first and last
// entries of an offset index must lie inside the segment.
func checkIndexEnds(fs vfs.FS, name string, size, logSize, relNext int64) error {
	if size == 0 {
		return nil
	}
	f, err := fs.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	var b [2 * offsetIndexEntrySize]byte
	if err := readFullAt(f, b[:offsetIndexEntrySize], 0); err != nil {
		return err
	}
	if err := readFullAt(f, b[offsetIndexEntrySize:], size-offsetIndexEntrySize); err != nil {
		return err
	}
	first, last := getIndexEntry(b[:]), getIndexEntry(b[offsetIndexEntrySize:])
	if first.rel < 0 || first.pos < 0 || int64(last.rel) >= relNext || int64(last.pos) >= logSize ||
		last.rel < first.rel || last.pos < first.pos {
		return fmt.Errorf("%w: %s: entries %+v..%+v outside the segment", errIndexCorrupt, name, first, last)
	}
	return nil
}

// SegmentInfo describes one segment, for retention and DeleteRecords.
type SegmentInfo struct {
	// BaseOffset is the segment's base offset (its file name).
	BaseOffset int64
	// NextOffset is the offset after the segment: the next segment's base
	// offset, or the log end offset for the active segment. Every offset
	// stored in the segment is below it.
	NextOffset int64
	// Size is the .log file's size in bytes.
	Size int64
	// MaxTimestamp is the largest batch max timestamp in the segment, -1
	// if it has none (retention.ms uses it, as in Kafka).
	MaxTimestamp int64
	// Active marks the active (last, appendable) segment.
	Active bool
	// LastModified is when this process last appended to the segment, or
	// when the Log was opened for segments not written since (vfs does
	// not report file times). Retention by time falls back to it when
	// MaxTimestamp is -1.
	LastModified time.Time
}
