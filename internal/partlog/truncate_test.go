package partlog

import (
	"slices"
	"testing"

	"github.com/gregor-streaming/gregor/internal/batch"
)

func TestTruncateTo(t *testing.T) {
	for _, tc := range []struct {
		name   string
		offset func(segs []SegmentInfo) int64
	}{
		{"mid active segment", func(s []SegmentInfo) int64 { return s[len(s)-1].BaseOffset + 4 }},
		{"active base", func(s []SegmentInfo) int64 { return s[len(s)-1].BaseOffset }},
		{"inside a batch", func(s []SegmentInfo) int64 { return s[len(s)-1].BaseOffset + 1 }},
		{"closed segment", func(s []SegmentInfo) int64 { return s[1].BaseOffset + 5 }},
		{"closed segment base", func(s []SegmentInfo) int64 { return s[2].BaseOffset }},
		{"zero", func(s []SegmentInfo) int64 { return 0 }},
		{"LEO", func(s []SegmentInfo) int64 { return s[len(s)-1].NextOffset }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tl := openTest(t, nil, Config{SegmentBytes: 2000, IndexIntervalBytes: 150})
			want := fill(t, tl, 60, 50)
			tl.SetHighWatermark(tl.LogEndOffset())
			segs := tl.Segments()
			off := tc.offset(segs)
			if err := tl.TruncateTo(off); err != nil {
				t.Fatal(err)
			}
			// Expected content: batches whose last offset is below off.
			var keep [][]byte
			for _, b := range want {
				h, _ := batch.ParseHeader(b)
				if h.LastOffset() < off {
					keep = append(keep, b)
				}
			}
			wantLEO := int64(0)
			if n := len(keep); n > 0 {
				h, _ := batch.ParseHeader(keep[n-1])
				wantLEO = h.NextOffset()
			}
			if tl.LogEndOffset() != wantLEO || tl.HighWatermark() > wantLEO || tl.RecoveryPoint() > wantLEO {
				t.Fatalf("LEO %d (want %d) HW %d RP %d", tl.LogEndOffset(), wantLEO, tl.HighWatermark(), tl.RecoveryPoint())
			}
			for _, e := range tl.LeaderEpochs() {
				if e.StartOffset >= wantLEO {
					t.Fatalf("epoch %+v at or past LEO %d", e, wantLEO)
				}
			}
			checkContent(t, tl, keep)
			for _, s := range tl.Segments() {
				checkIndexFile(t, tl, s.BaseOffset)
			}
			// Append again, reopen cleanly, crash: all consistent.
			keep = append(keep, fill(t, tl, 20, 50)...)
			checkContent(t, tl, keep)
			_, tss := bruteTimes(t, tl)
			if _, ts, found, err := tl.MaxTimestamp(); !found || err != nil || ts != slices.Max(tss) {
				t.Fatalf("max timestamp %d %v %v, want %d", ts, found, err, slices.Max(tss))
			}
			tl.Close()
			tl.reopen()
			checkContent(t, tl, keep)
			tl.Sync()
			tl.crash()
			checkContent(t, tl, keep)
			for _, s := range tl.Segments() {
				checkIndexFile(t, tl, s.BaseOffset)
			}
		})
	}
}

func TestTruncateBelowLogStart(t *testing.T) {
	tl := openTest(t, nil, smallConfig())
	fill(t, tl, 30, 100)
	tl.SetHighWatermark(tl.LogEndOffset())
	if err := tl.SetLogStartOffset(20); err != nil {
		t.Fatal(err)
	}
	if err := tl.TruncateTo(10); err != nil {
		t.Fatal(err)
	}
	if tl.LogStartOffset() != 10 || tl.LogEndOffset() != 10 || len(tl.Segments()) != 1 {
		t.Fatalf("LSO %d LEO %d segs %d", tl.LogStartOffset(), tl.LogEndOffset(), len(tl.Segments()))
	}
	if b, _ := tl.append(mkBatch(t, 1, 1, 1)); b != 10 {
		t.Fatalf("next append at %d", b)
	}
}

func TestEndOffsetForEpoch(t *testing.T) {
	tl := openTest(t, nil, DefaultConfig())
	if e, o := tl.EndOffsetForEpoch(0, -1); e != -1 || o != -1 {
		t.Fatalf("empty: %d %d", e, o)
	}
	for _, ep := range []int32{1, 1, 3, 3, 3, 6} {
		if _, _, err := tl.Append(mkBatch(t, 2, 1, 1), ep); err != nil {
			t.Fatal(err)
		}
	} // epochs: (1,0) (3,4) (6,10); LEO 12
	if got := tl.LeaderEpochs(); !slices.Equal(got, []EpochEntry{{1, 0}, {3, 4}, {6, 10}}) {
		t.Fatalf("epochs %v", got)
	}
	for _, tc := range []struct {
		epoch, wantEpoch int32
		wantOff          int64
	}{
		{0, 0, 0}, {1, 1, 4}, {2, 1, 4}, {3, 3, 10}, {4, 3, 10}, {5, 3, 10}, {6, 6, 12}, {7, -1, -1}, {-1, -1, -1},
	} {
		if e, o := tl.EndOffsetForEpoch(tc.epoch, -1); e != tc.wantEpoch || o != tc.wantOff {
			t.Errorf("EndOffsetForEpoch(%d) = %d, %d; want %d, %d", tc.epoch, e, o, tc.wantEpoch, tc.wantOff)
		}
	}
	tl.TruncateTo(6)
	if got := tl.LeaderEpochs(); !slices.Equal(got, []EpochEntry{{1, 0}, {3, 4}}) {
		t.Fatalf("after truncate: %v", got)
	}
	tl.SetHighWatermark(6)
	tl.SetLogStartOffset(5)
	if got := tl.LeaderEpochs(); !slices.Equal(got, []EpochEntry{{3, 5}}) {
		t.Fatalf("after DeleteRecords: %v", got)
	}
	tl.Close()
	tl.reopen()
	if got := tl.LeaderEpochs(); !slices.Equal(got, []EpochEntry{{3, 5}}) {
		t.Fatalf("after reopen: %v", got)
	}
}

// TestEndOffsetForLeaderEpoch: the leader's current epoch counts as
// entered at the log end offset while nothing was written under it, as
// Kafka's leader enters it in its cache when elected.
func TestEndOffsetForLeaderEpoch(t *testing.T) {
	tl := openTest(t, nil, DefaultConfig())
	type q struct {
		epoch, leader, wantEpoch int32
		wantOff                  int64
	}
	check := func(qs ...q) {
		t.Helper()
		for _, tc := range qs {
			if e, o := tl.EndOffsetForEpoch(tc.epoch, tc.leader); e != tc.wantEpoch || o != tc.wantOff {
				t.Errorf("EndOffsetForEpoch(%d, leader %d) = %d, %d; want %d, %d", tc.epoch, tc.leader, e, o, tc.wantEpoch, tc.wantOff)
			}
		}
	}
	// Empty log: the current epoch ends at 0, a newer one is unknown.
	check(q{0, 0, 0, 0}, q{1, 0, -1, -1}, q{-1, 0, -1, -1}, q{0, 2, 0, 0}, q{2, 2, 2, 0})
	for _, ep := range []int32{1, 3} {
		if _, _, err := tl.Append(mkBatch(t, 2, 1, 1), ep); err != nil {
			t.Fatal(err)
		}
	} // epochs: (1,0) (3,2); LEO 4
	check(
		// The leader of the last written epoch: the written history.
		q{3, 3, 3, 4}, q{2, 3, 1, 2}, q{1, 3, 1, 2}, q{0, 3, 0, 0}, q{4, 3, -1, -1},
		// Leader of epoch 5, nothing written under it yet: (5,4).
		q{5, 5, 5, 4}, q{4, 5, 3, 4}, q{3, 5, 3, 4}, q{1, 5, 1, 2}, q{0, 5, 0, 0}, q{6, 5, -1, -1},
	)
	if e, o := tl.EndOffsetForEpoch(4, -1); e != -1 || o != -1 {
		t.Errorf("EndOffsetForEpoch(4) = %d, %d after the leader's view; want -1, -1", e, o)
	}
	if got := tl.LeaderEpochs(); !slices.Equal(got, []EpochEntry{{1, 0}, {3, 2}}) {
		t.Fatalf("the leader's view changed the history: %v", got)
	}
}

// TestEpochForOffset: the epochs ListOffsets reports with an offset
// (Kafka's LeaderEpochFileCache.epochForOffset and earliestEntry).
func TestEpochForOffset(t *testing.T) {
	tl := openTest(t, nil, DefaultConfig())
	// Empty: the leader's epoch, entered at the log end offset 0.
	if e := tl.EarliestEpoch(4); e != 4 {
		t.Errorf("empty: EarliestEpoch(leader 4) = %d, want 4", e)
	}
	if e := tl.EpochForOffset(0); e != -1 {
		t.Errorf("empty: EpochForOffset(0) = %d, want -1", e)
	}
	for _, ep := range []int32{1, 1, 3, 3, 3, 6} {
		if _, _, err := tl.Append(mkBatch(t, 2, 1, 1), ep); err != nil {
			t.Fatal(err)
		}
	} // epochs: (1,0) (3,4) (6,10); LEO 12
	for off, want := range map[int64]int32{0: 1, 3: 1, 4: 3, 9: 3, 10: 6, 11: 6, 12: 6} {
		if e := tl.EpochForOffset(off); e != want {
			t.Errorf("EpochForOffset(%d) = %d, want %d", off, e, want)
		}
	}
	if e := tl.EarliestEpoch(7); e != 1 {
		t.Errorf("EarliestEpoch = %d, want 1", e)
	}
	tl.SetHighWatermark(12)
	tl.SetLogStartOffset(5) // history (3,5) (6,10)
	if e := tl.EarliestEpoch(7); e != 3 {
		t.Errorf("after DeleteRecords to 5: EarliestEpoch = %d, want 3", e)
	}
	if e := tl.EpochForOffset(4); e != -1 {
		t.Errorf("below the history: EpochForOffset(4) = %d, want -1", e)
	}
}

func TestRetention(t *testing.T) {
	tl := openTest(t, nil, smallConfig())
	want := fill(t, tl, 50, 100)
	segs := tl.Segments()
	n, err := tl.DeleteSegmentsBefore(segs[2].NextOffset) // segments 0..2
	if err != nil || n != 3 {
		t.Fatalf("deleted %d, %v", n, err)
	}
	if tl.LogStartOffset() != segs[3].BaseOffset || tl.HighWatermark() < tl.LogStartOffset() {
		t.Fatalf("LSO %d HW %d", tl.LogStartOffset(), tl.HighWatermark())
	}
	for _, name := range tl.files() {
		if base, _, ok := parseSegmentName(name); ok && base < segs[3].BaseOffset {
			t.Fatalf("file %s not deleted", name)
		}
	}
	_, err = tl.Read(nil, segs[3].BaseOffset-1, 100, 1<<62, true)
	mustErr(t, err, ErrOffsetOutOfRange)
	// Never the active segment.
	n, _ = tl.DeleteSegmentsBefore(1 << 40)
	if len(tl.Segments()) != 1 || n != len(segs)-4 {
		t.Fatalf("deleted %d, %d segments left", n, len(tl.Segments()))
	}
	checkContent(t, tl, want[len(want)-countBatchesIn(t, tl):])
	if err := tl.SetLogStartOffset(tl.LogEndOffset() + 1); err == nil {
		t.Fatal("log start offset past LEO accepted")
	}
}

func countBatchesIn(t *testing.T, tl *testLog) int { return len(tl.readAll(tl.LogStartOffset())) }

func TestAppendRaw(t *testing.T) {
	leader := openTest(t, nil, smallConfig())
	want := fill(t, leader, 30, 100)
	follower := openTest(t, nil, smallConfig())
	follower.dir = "data/topic-1"
	follower.reopen()
	for i := 0; i < len(want); i += 4 {
		var chunk []byte
		for _, b := range want[i:min(i+4, len(want))] {
			chunk = append(chunk, b...)
		}
		if _, err := follower.AppendRaw(chunk); err != nil {
			t.Fatal(err)
		}
	}
	checkContent(t, follower, want)
	if !slices.Equal(follower.LeaderEpochs(), leader.LeaderEpochs()) {
		t.Fatalf("epochs %v vs %v", follower.LeaderEpochs(), leader.LeaderEpochs())
	}
	// Offsets below the LEO or overlapping are refused; a gap is fine.
	_, err := follower.AppendRaw(want[0])
	mustErr(t, err, ErrNonMonotonicOffset)
	b := mkBatch(t, 2, 5000, 10)
	batch.SetBaseOffset(b, follower.LogEndOffset()+100)
	last, err := follower.AppendRaw(b)
	if err != nil || last != follower.LogEndOffset()-1 {
		t.Fatalf("gap append: %d %v", last, err)
	}
	out, err := follower.Read(nil, last-50, 1<<20, 1<<62, true) // in the gap
	if err != nil {
		t.Fatal(err)
	}
	if h, _ := batch.Validate(out); h.BaseOffset != last-1 {
		t.Fatalf("read in gap returned batch %d", h.BaseOffset)
	}
	// A corrupt batch is refused.
	c := mkBatch(t, 1, 1, 10)
	batch.SetBaseOffset(c, follower.LogEndOffset())
	c[len(c)-1] ^= 1
	_, err = follower.AppendRaw(c)
	mustErr(t, err, ErrInvalidBatch)
	// Offsets beyond int32 of the segment base roll a new segment.
	d := mkBatch(t, 1, 1, 10)
	batch.SetBaseOffset(d, follower.LogEndOffset()+1<<33)
	if _, err := follower.AppendRaw(d); err != nil {
		t.Fatal(err)
	}
	segs := follower.Segments()
	if segs[len(segs)-1].BaseOffset != follower.LogEndOffset()-1 {
		t.Fatalf("no roll for a far offset: %+v", segs[len(segs)-1])
	}
	follower.Close()
	follower.reopen()
	if follower.LogEndOffset() != segs[len(segs)-1].NextOffset {
		t.Fatalf("LEO %d after reopen", follower.LogEndOffset())
	}
}
