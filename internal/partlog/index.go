package partlog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/gregor-streaming/gregor/internal/vfs"
)

// Index entry sizes, as in Kafka.
const (
	offsetIndexEntrySize = 8  // relativeOffset int32, position int32
	timeIndexEntrySize   = 12 // timestamp int64, relativeOffset int32

	// indexPageEntries is how many offset index entries a lookup reads at
	// once after its binary search over pages (4 KiB).
	indexPageEntries = 512
	// maxPendingIndexEntries bounds the active segment's index entries
	// kept in memory before they are written to the index files, so an
	// idle partition holds at most a few KiB of them.
	maxPendingIndexEntries = 128
)

// errIndexCorrupt marks an index file that fails its sanity checks; the
// index is rebuilt from the log.
var errIndexCorrupt = errors.New("partlog: index corrupt")

// indexEntry is an offset index entry: the batch whose last offset is
// base+rel starts at file position pos (Kafka's semantics).
type indexEntry struct {
	rel int32
	pos int32
}

// timeEntry is a time index entry: the largest batch max timestamp in
// the segment up to the batch with last offset base+rel is ts, and that
// batch is the first to reach it.
type timeEntry struct {
	ts  int64
	rel int32
}

func putIndexEntry(b []byte, e indexEntry) {
	binary.BigEndian.PutUint32(b, uint32(e.rel))
	binary.BigEndian.PutUint32(b[4:], uint32(e.pos))
}

func getIndexEntry(b []byte) indexEntry {
	return indexEntry{rel: int32(binary.BigEndian.Uint32(b)), pos: int32(binary.BigEndian.Uint32(b[4:]))}
}

func putTimeEntry(b []byte, e timeEntry) {
	binary.BigEndian.PutUint64(b, uint64(e.ts))
	binary.BigEndian.PutUint32(b[8:], uint32(e.rel))
}

func getTimeEntry(b []byte) timeEntry {
	return timeEntry{ts: int64(binary.BigEndian.Uint64(b)), rel: int32(binary.BigEndian.Uint32(b[8:]))}
}

// pageBuf is a scratch buffer for index reads; pooled so lookups do not
// allocate.
type pageBuf [indexPageEntries * offsetIndexEntrySize]byte

var pagePool = sync.Pool{New: func() any { return new(pageBuf) }}

// readFullAt reads len(p) bytes at off; a short read is an error.
func readFullAt(f vfs.File, p []byte, off int64) error {
	n, err := f.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// searchIndexEntries returns the index of the last entry in b (encoded
// entries) whose rel <= target, or -1. It reports corrupt when entries
// are not strictly increasing in both fields.
func searchIndexEntries(b []byte, target int32) (i int, corrupt bool) {
	n := len(b) / offsetIndexEntrySize
	lo, hi := 0, n // invariant: entries [0,lo) <= target, [hi,n) > target
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if getIndexEntry(b[m*offsetIndexEntrySize:]).rel <= target {
			lo = m + 1
		} else {
			hi = m
		}
	}
	// Check monotonicity around the answer: cheap and catches garbage.
	for j := max(lo-2, 0); j+1 < min(lo+1, n); j++ {
		a, c := getIndexEntry(b[j*offsetIndexEntrySize:]), getIndexEntry(b[(j+1)*offsetIndexEntrySize:])
		if c.rel <= a.rel || c.pos <= a.pos {
			return -1, true
		}
	}
	return lo - 1, false
}

// lookupIndexFile finds the last entry with rel <= target among the first
// n entries of an offset index file. found is false when every entry is
// above target (scan from the segment start). A structural inconsistency
// returns errIndexCorrupt.
func lookupIndexFile(f vfs.File, n int64, target int32) (e indexEntry, found bool, err error) {
	if n <= 0 {
		return indexEntry{}, false, nil
	}
	buf := pagePool.Get().(*pageBuf)
	defer pagePool.Put(buf)
	pages := (n + indexPageEntries - 1) / indexPageEntries
	page := int64(0)
	if pages > 1 {
		// Binary search for the last page whose first entry <= target.
		lo, hi := int64(0), pages
		for lo < hi {
			m := (lo + hi) / 2
			if err := readFullAt(f, buf[:offsetIndexEntrySize], m*indexPageEntries*offsetIndexEntrySize); err != nil {
				return indexEntry{}, false, err
			}
			if getIndexEntry(buf[:]).rel <= target {
				lo = m + 1
			} else {
				hi = m
			}
		}
		if lo == 0 {
			return indexEntry{}, false, nil
		}
		page = lo - 1
	}
	cnt := min(n-page*indexPageEntries, indexPageEntries)
	b := buf[:cnt*offsetIndexEntrySize]
	if err := readFullAt(f, b, page*indexPageEntries*offsetIndexEntrySize); err != nil {
		return indexEntry{}, false, err
	}
	i, corrupt := searchIndexEntries(b, target)
	if corrupt {
		return indexEntry{}, false, errIndexCorrupt
	}
	if i < 0 {
		if page > 0 {
			return indexEntry{}, false, errIndexCorrupt // the page's first entry was <= target
		}
		return indexEntry{}, false, nil
	}
	e = getIndexEntry(b[i*offsetIndexEntrySize:])
	if e.rel < 0 || e.pos < 0 {
		return indexEntry{}, false, errIndexCorrupt
	}
	return e, true, nil
}

// searchTimeEntries returns the index of the last entry with ts <= target
// in encoded time index entries, or -1.
func searchTimeEntries(b []byte, target int64) int {
	n := len(b) / timeIndexEntrySize
	lo, hi := 0, n
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if getTimeEntry(b[m*timeIndexEntrySize:]).ts <= target {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo - 1
}

// lookupTimeIndex returns the last time index entry with ts <= target in
// the whole file (read at once: time lookups are rare), or found=false.
func lookupTimeIndex(fs vfs.FS, name string, target int64) (e timeEntry, found bool, err error) {
	b, err := vfs.ReadFile(fs, name)
	if vfs.IsNotExist(err) {
		return timeEntry{}, false, nil // no entries yet (an active segment's)
	}
	if err != nil {
		return timeEntry{}, false, err
	}
	if len(b)%timeIndexEntrySize != 0 {
		return timeEntry{}, false, fmt.Errorf("%w: %s: size %d", errIndexCorrupt, name, len(b))
	}
	i := searchTimeEntries(b, target)
	if i < 0 {
		return timeEntry{}, false, nil
	}
	return getTimeEntry(b[i*timeIndexEntrySize:]), true, nil
}

// lastTimeIndexEntry returns the timestamp and absolute offset of a time
// index file's last entry, or (-1, base) for an empty one.
func lastTimeIndexEntry(fs vfs.FS, name string, base int64) (ts, off int64, err error) {
	f, err := fs.Open(name)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return 0, 0, err
	}
	if size%timeIndexEntrySize != 0 {
		return 0, 0, fmt.Errorf("%w: %s: size %d not a multiple of %d", errIndexCorrupt, name, size, timeIndexEntrySize)
	}
	if size == 0 {
		return -1, base, nil
	}
	var b [timeIndexEntrySize]byte
	if err := readFullAt(f, b[:], size-timeIndexEntrySize); err != nil {
		return 0, 0, err
	}
	e := getTimeEntry(b[:])
	if e.rel < 0 {
		return 0, 0, fmt.Errorf("%w: %s: negative offset", errIndexCorrupt, name)
	}
	return e.ts, base + int64(e.rel), nil
}

// appendIndexEntries encodes entries onto dst.
func appendIndexEntries(dst []byte, es []indexEntry) []byte {
	for _, e := range es {
		var b [offsetIndexEntrySize]byte
		putIndexEntry(b[:], e)
		dst = append(dst, b[:]...)
	}
	return dst
}

func appendTimeEntries(dst []byte, es []timeEntry) []byte {
	for _, e := range es {
		var b [timeIndexEntrySize]byte
		putTimeEntry(b[:], e)
		dst = append(dst, b[:]...)
	}
	return dst
}
