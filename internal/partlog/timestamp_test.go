package partlog

import (
	"math/rand/v2"
	"testing"

	"github.com/gregor-streaming/gregor/internal/batch"
)

// bruteTimes returns every record's (offset, timestamp) from offset lso.
func bruteTimes(t *testing.T, tl *testLog) (offs, tss []int64) {
	t.Helper()
	off := tl.LogStartOffset()
	for off < tl.LogEndOffset() {
		out, err := tl.Read(nil, off, 1<<20, 1<<62, true)
		if err != nil {
			t.Fatal(err)
		}
		for p := 0; p < len(out); {
			h, _ := batch.Validate(out[p:])
			err := batch.Records(out[p:], func(r batch.Record) bool {
				if r.Offset >= tl.LogStartOffset() {
					offs, tss = append(offs, r.Offset), append(tss, r.Timestamp)
				}
				return true
			})
			if err != nil {
				t.Fatal(err)
			}
			p += h.Size()
			off = h.NextOffset()
		}
	}
	return offs, tss
}

func TestOffsetForTimestampAndMax(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	codecs := []int{batch.CodecNone, batch.CodecGzip, batch.CodecSnappy, batch.CodecLZ4, batch.CodecZstd}
	tl := openTest(t, nil, Config{SegmentBytes: 3000, IndexIntervalBytes: 150})
	for i := range 80 {
		n := 1 + rng.IntN(5)
		rs := make([]rec, n)
		for j := range rs {
			// Mostly rising, with out-of-order records inside batches.
			rs[j] = rec{ts: int64(10*i + rng.IntN(25)), value: make([]byte, rng.IntN(80))}
		}
		b := mkBatchRecs(t, codecs[i%len(codecs)], rs)
		if i%7 == 3 {
			batch.SetLogAppendTime(b, int64(10*i+5))
		}
		tl.append(b)
	}
	check := func(name string) {
		offs, tss := bruteTimes(t, tl)
		for ts := int64(-5); ts < 850; ts += 3 {
			wantOff, wantTs, wantFound := int64(-1), int64(-1), false
			for i := range offs {
				if tss[i] >= ts {
					wantOff, wantTs, wantFound = offs[i], tss[i], true
					break
				}
			}
			off, gotTs, found, err := tl.OffsetForTimestamp(ts)
			if err != nil || found != wantFound || off != wantOff || gotTs != wantTs {
				t.Fatalf("%s: OffsetForTimestamp(%d) = %d, %d, %v, %v; want %d, %d, %v", name, ts, off, gotTs, found, err, wantOff, wantTs, wantFound)
			}
		}
		maxOff, maxTs := int64(-1), int64(-1)
		for i := range offs {
			if tss[i] > maxTs {
				maxOff, maxTs = offs[i], tss[i]
			}
		}
		off, ts, found, err := tl.MaxTimestamp()
		if err != nil || !found || off != maxOff || ts != maxTs {
			t.Fatalf("%s: MaxTimestamp = %d, %d, %v, %v; want %d, %d", name, off, ts, found, err, maxOff, maxTs)
		}
	}
	check("live")
	tl.Close()
	tl.reopen()
	check("reopened")
	// With the log start offset inside a segment.
	segs := tl.Segments()
	if err := tl.SetLogStartOffset(segs[1].BaseOffset + 2); err != nil {
		t.Fatal(err)
	}
	check("after DeleteRecords")
	tl.Sync()
	tl.crash()
	check("recovered")
}

func TestTimestampsEmptyLog(t *testing.T) {
	tl := openTest(t, nil, DefaultConfig())
	if _, _, found, err := tl.MaxTimestamp(); found || err != nil {
		t.Fatal("max timestamp on empty log", err)
	}
	if _, _, found, err := tl.OffsetForTimestamp(0); found || err != nil {
		t.Fatal("offset for timestamp on empty log", err)
	}
	tl.append(mkBatch(t, 3, 100, 1))
	if off, ts, found, _ := tl.OffsetForTimestamp(101); !found || off != 1 || ts != 101 {
		t.Fatalf("got %d %d %v", off, ts, found)
	}
	if _, _, found, _ := tl.OffsetForTimestamp(103); found {
		t.Fatal("found a timestamp past the max")
	}
	if off, ts, found, _ := tl.MaxTimestamp(); !found || off != 2 || ts != 102 {
		t.Fatalf("max %d %d %v", off, ts, found)
	}
}
