package partlog

import (
	"bytes"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/gregor-streaming/gregor/internal/vfs"
)

// spanBytes reads what sp describes from its file.
func spanBytes(t *testing.T, sp *Span) []byte {
	t.Helper()
	b := make([]byte, sp.Len)
	if _, err := sp.File().ReadAt(b, sp.Pos); err != nil {
		t.Fatalf("read span [%d,+%d): %v", sp.Pos, sp.Len, err)
	}
	return b
}

// ReadSpan returns what Read returns, either copied or as a span of the
// segment file, for every offset and limit on a log of mixed batch sizes
// over several segments, the active one included.
func TestReadSpanMatchesRead(t *testing.T) {
	dir := t.TempDir()
	tl := &testLog{t: t, fs: vfs.Default, dir: dir + "/topic-0", cfg: Config{SegmentBytes: 256 << 10, IndexIntervalBytes: 4096},
		now: &fakeClock{t: time.Unix(1_700_000_000, 0)}, logs: &lockedBuffer{}}
	tl.reopen()
	t.Cleanup(func() { tl.Log.Close() })
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 300 {
		n, size := 1+rng.IntN(20), 20+rng.IntN(100)
		if rng.IntN(3) == 0 {
			size = 1000 + rng.IntN(3000) // batches of 1-60 KiB
		}
		tl.append(mkBatch(t, n, int64(i), size))
	}
	leo := tl.LogEndOffset()
	spans := 0
	for range 2000 {
		off := rng.Int64N(leo + 1)
		maxBytes := []int{1, 4 << 10, 20 << 10, 100 << 10, 1 << 20}[rng.IntN(5)]
		maxOffset := []int64{leo, off + 1 + rng.Int64N(50), 1 << 62}[rng.IntN(3)]
		minOne := rng.IntN(4) != 0
		want, err := tl.Read(nil, off, maxBytes, maxOffset, minOne)
		if err != nil {
			t.Fatal(err)
		}
		var sp Span
		got, err := tl.ReadSpan(make([]byte, 0, 8), &sp, off, maxBytes, maxOffset, minOne)
		if err != nil {
			t.Fatal(err)
		}
		if sp.Len > 0 {
			spans++
			if len(got) != 0 {
				t.Fatalf("offset %d: span and %d copied bytes", off, len(got))
			}
			got = spanBytes(t, &sp)
			if sp.Records <= 0 {
				t.Fatalf("offset %d: span of %d bytes counts %d records", off, sp.Len, sp.Records)
			}
			sp.Release()
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("offset %d maxBytes %d maxOffset %d minOne %v: ReadSpan gave %d bytes (span %v), Read %d",
				off, maxBytes, maxOffset, minOne, len(got), sp.Len > 0, len(want))
		}
	}
	if spans == 0 {
		t.Fatal("no read was left to sendfile")
	}
}

// A span keeps its file readable after the segment is deleted by
// retention and the log closed, until it is released.
func TestSpanOutlivesSegment(t *testing.T) {
	dir := t.TempDir()
	tl := &testLog{t: t, fs: vfs.Default, dir: dir + "/topic-0", cfg: Config{SegmentBytes: 64 << 10, IndexIntervalBytes: 4096},
		now: &fakeClock{t: time.Unix(1_700_000_000, 0)}, logs: &lockedBuffer{}}
	tl.reopen()
	first := mkBatch(t, 10, 1, 2000)
	tl.append(first)
	for i := range 20 {
		tl.append(mkBatch(t, 10, int64(i+2), 2000))
	}
	var sp Span
	if _, err := tl.ReadSpan(nil, &sp, 0, 1<<20, tl.LogEndOffset(), true); err != nil || sp.Len == 0 {
		t.Fatalf("span %+v, err %v", sp, err)
	}
	before := spanBytes(t, &sp)
	leo := tl.LogEndOffset()
	if err := tl.SetLogStartOffset(leo); err != nil {
		t.Fatal(err)
	}
	if names := tl.files(); len(names) > 0 && names[0] == "00000000000000000000.log" {
		t.Fatalf("first segment not deleted: %v", names)
	}
	tl.Log.Close()
	after := spanBytes(t, &sp)
	sp.Release()
	if !bytes.Equal(before, after) || len(before) < len(first) {
		t.Fatal("span bytes changed after the segment was deleted")
	}
}

// On file systems without file descriptors (MemFS), ReadSpan copies.
func TestReadSpanCopiesOnMemFS(t *testing.T) {
	tl := openTest(t, nil, Config{SegmentBytes: 1 << 20, IndexIntervalBytes: 4096})
	tl.append(mkBatch(t, 10, 1, 2000))
	var sp Span
	out, err := tl.ReadSpan(nil, &sp, 0, 1<<20, tl.LogEndOffset(), true)
	if err != nil || sp.Len != 0 || len(out) == 0 {
		t.Fatalf("out %d bytes, span %+v, err %v", len(out), sp, err)
	}
}

// A large batch followed by hundreds of small ones: the span runs to
// maxBytes as the copying read does, not to a batch count (a short span
// made a fetch wait MaxWait for data it had).
func TestReadSpanManySmallBatchesAfterLarge(t *testing.T) {
	dir := t.TempDir()
	tl := &testLog{t: t, fs: vfs.Default, dir: dir + "/topic-0", cfg: Config{SegmentBytes: 64 << 20, IndexIntervalBytes: 4096},
		now: &fakeClock{t: time.Unix(1_700_000_000, 0)}, logs: &lockedBuffer{}}
	tl.reopen()
	t.Cleanup(func() { tl.Log.Close() })
	tl.append(mkBatch(t, 5, 1, 2000))
	for i := range 500 {
		tl.append(mkBatch(t, 1, int64(i+10), 30))
	}
	want, err := tl.Read(nil, 0, 1<<20, 1<<62, true)
	if err != nil {
		t.Fatal(err)
	}
	var sp Span
	if _, err := tl.ReadSpan(nil, &sp, 0, 1<<20, 1<<62, true); err != nil || sp.Len == 0 {
		t.Fatalf("span %+v, err %v", sp, err)
	}
	defer sp.Release()
	if got := spanBytes(t, &sp); !bytes.Equal(got, want) {
		t.Fatalf("span of %d bytes (%d records), Read returned %d bytes", len(got), sp.Records, len(want))
	}
	if sp.Records != 505 {
		t.Fatalf("span counts %d records, want 505", sp.Records)
	}
}
