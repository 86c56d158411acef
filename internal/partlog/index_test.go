package partlog

import (
	"encoding/binary"
	"path"
	"slices"
	"strings"
	"testing"

	"github.com/gregor-streaming/gregor/internal/batch"
	"github.com/gregor-streaming/gregor/internal/vfs"
)

// checkIndexFile verifies an offset index file against its log: entries
// strictly increasing and each pointing at the batch whose last offset it
// names.
func checkIndexFile(t *testing.T, tl *testLog, base int64) int {
	t.Helper()
	// An active segment has no index file until its first entry.
	idx, err := vfs.ReadFile(tl.fs, path.Join(tl.dir, segName(base, ".index")))
	if err != nil && !vfs.IsNotExist(err) {
		t.Fatal(err)
	}
	logb := tl.readFile(segName(base, ".log"))
	if len(idx)%8 != 0 {
		t.Fatalf("index size %d", len(idx))
	}
	prev := indexEntry{rel: -1, pos: -1}
	for p := 0; p < len(idx); p += 8 {
		e := getIndexEntry(idx[p:])
		if e.rel <= prev.rel || e.pos <= prev.pos {
			t.Fatalf("index %d: entry %+v after %+v", base, e, prev)
		}
		h, err := batch.Validate(logb[e.pos:])
		if err != nil || h.LastOffset() != base+int64(e.rel) {
			t.Fatalf("index %d: entry %+v points at batch %d..%d (%v)", base, e, h.BaseOffset, h.LastOffset(), err)
		}
		prev = e
	}
	return len(idx) / 8
}

func TestIndexEntriesAndLookups(t *testing.T) {
	// Large segments with a small index interval: lookups go through the
	// page search of the index file (more than 512 entries).
	cfg := Config{SegmentBytes: 4 << 20, IndexIntervalBytes: 100}
	tl := openTest(t, nil, cfg)
	var n int64
	for i := range 3000 {
		b := mkBatch(t, 1+i%3, int64(i), 60)
		tl.append(b)
		n += int64(1 + i%3)
		if i == 1500 {
			if err := tl.Roll(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tl.Close(); err != nil {
		t.Fatal(err)
	}
	segs := []int64{}
	for _, name := range tl.files() {
		if base, suf, ok := parseSegmentName(name); ok && suf == ".log" {
			segs = append(segs, base)
		}
	}
	total := 0
	for _, base := range segs {
		total += checkIndexFile(t, tl, base)
	}
	if total < 1024 {
		t.Fatalf("only %d index entries", total)
	}
	tl.reopen()
	for off := int64(0); off < n; off += 7 {
		out, err := tl.Read(nil, off, 1, 1<<62, true)
		if err != nil {
			t.Fatal(err)
		}
		h, err := batch.Validate(out)
		if err != nil || off < h.BaseOffset || off > h.LastOffset() {
			t.Fatalf("offset %d: batch %d..%d (%v)", off, h.BaseOffset, h.LastOffset(), err)
		}
	}
	// And on the active segment with entries both in the file and in
	// memory.
	for i := range 1000 {
		tl.append(mkBatch(t, 1, int64(5000+i), 60))
	}
	n += 1000
	for off := int64(0); off < n; off += 5 {
		out, err := tl.Read(nil, off, 1, 1<<62, true)
		if err != nil {
			t.Fatal(err)
		}
		h, _ := batch.Validate(out)
		if off < h.BaseOffset || off > h.LastOffset() {
			t.Fatalf("offset %d: batch %d..%d", off, h.BaseOffset, h.LastOffset())
		}
	}
}

func TestLookupIndexFile(t *testing.T) {
	for _, n := range []int{0, 1, 2, 511, 512, 513, 1024, 1500, 5000} {
		var b []byte
		for i := range n {
			var e [8]byte
			putIndexEntry(e[:], indexEntry{rel: int32(10 + 3*i), pos: int32(100 * (i + 1))})
			b = append(b, e[:]...)
		}
		f := memFile(t, b)
		for target := int32(0); target < int32(10+3*n+5); target++ {
			e, found, err := lookupIndexFile(f, int64(n), target)
			if err != nil {
				t.Fatal(err)
			}
			wantFound := target >= 10 && n > 0
			if found != wantFound {
				t.Fatalf("n=%d target=%d found=%v", n, target, found)
			}
			if found {
				i := min(int(target-10)/3, n-1)
				if e.rel != int32(10+3*i) || e.pos != int32(100*(i+1)) {
					t.Fatalf("n=%d target=%d got %+v", n, target, e)
				}
			}
		}
	}
	// Garbage is reported, not trusted.
	b := make([]byte, 8*600)
	for i := range 600 {
		binary.BigEndian.PutUint32(b[8*i:], uint32(600-i))
		binary.BigEndian.PutUint32(b[8*i+4:], uint32(i))
	}
	if _, _, err := lookupIndexFile(memFile(t, b), 600, 300); err == nil {
		t.Fatal("decreasing index accepted")
	}
}

// A segment's index files appear with their first entries, so creating
// a partition makes one data file, not three: on file systems where
// creating files is slow (ext4 without a journal, shortly after many
// deletions) that is most of a large topic's creation. An idle
// partition restarts clean without them, and every closed segment has
// both, empty or not.
func TestIndexFilesAppearWithEntries(t *testing.T) {
	tl := openTest(t, nil, Config{SegmentBytes: 1 << 20, IndexIntervalBytes: 4096})
	has := func(name string) bool { return slices.Contains(tl.files(), name) }
	if has(segName(0, ".index")) || has(segName(0, ".timeindex")) {
		t.Fatalf("a new log made index files: %v", tl.files())
	}

	// An idle log closes and reopens clean, still without them.
	tl.Close()
	tl.logs.Reset()
	tl.reopen()
	if s := tl.logs.String(); strings.Contains(s, "recovering") || strings.Contains(s, "rebuild") {
		t.Fatalf("an idle log without index files was recovered:\n%s", s)
	}
	if has(segName(0, ".index")) || has(segName(0, ".timeindex")) {
		t.Fatalf("close made index files: %v", tl.files())
	}

	// Small appends stay below the index interval: the segment closes
	// with no offset index entry, and gets empty files when it rolls.
	want := fill(t, tl, 3, 100)
	if err := tl.Roll(); err != nil {
		t.Fatal(err)
	}
	for _, suf := range []string{".index", ".timeindex"} {
		if !has(segName(0, suf)) {
			t.Errorf("closed segment without %s: %v", suf, tl.files())
		}
	}
	// The new active segment gets its files with its first entries.
	next := tl.LogEndOffset()
	want = append(want, fill(t, tl, 60, 200)...)
	tl.Close()
	for _, suf := range []string{".index", ".timeindex"} {
		if !has(segName(next, suf)) {
			t.Errorf("active segment with entries closed without %s: %v", suf, tl.files())
		}
	}
	tl.logs.Reset()
	tl.reopen()
	if s := tl.logs.String(); strings.Contains(s, "recovering") || strings.Contains(s, "rebuild") {
		t.Fatalf("clean reopen recovered or rebuilt:\n%s", s)
	}
	checkContent(t, tl, want)
	checkIndexFile(t, tl, 0)
	if n := checkIndexFile(t, tl, next); n == 0 {
		t.Fatalf("active segment's index has no entries after 12 KB")
	}
}
