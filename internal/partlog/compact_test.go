package partlog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gregor-streaming/gregor/internal/batch"
	"github.com/gregor-streaming/gregor/internal/vfs"
)

// kv is one keyed record for the compaction tests; a nil value is a
// tombstone.
type kv struct {
	key, value []byte
}

func keyed(k int, v string) kv { return kv{key: fmt.Appendf(nil, "key-%d", k), value: []byte(v)} }

func tombstone(k int) kv { return kv{key: fmt.Appendf(nil, "key-%d", k)} }

// appendKeyed appends one batch of records with timestamp ts.
func (tl *testLog) appendKeyed(codec int, ts int64, recs ...kv) (int64, int64) {
	tl.t.Helper()
	b := batch.NewBuilder(codec)
	for _, r := range recs {
		b.Add(batch.Record{Timestamp: ts, Key: r.key, Value: r.value})
	}
	out, err := b.Build()
	if err != nil {
		tl.t.Fatal(err)
	}
	return tl.append(out)
}

// record is what a consumer sees of one record.
type record struct {
	off        int64
	key, value string
	tombstone  bool
}

// records reads every record from the log start, checking each batch.
func (tl *testLog) records() []record {
	tl.t.Helper()
	var out []record
	tl.readAll(tl.LogStartOffset()) // every batch readable, up to the log end
	off := tl.LogStartOffset()
	for off < tl.LogEndOffset() {
		data, err := tl.Read(nil, off, 1<<20, 1<<62, true)
		if err != nil {
			tl.t.Fatalf("read %d: %v", off, err)
		}
		if len(data) == 0 {
			break
		}
		for p := 0; p < len(data); {
			h, err := batch.Validate(data[p:])
			if err != nil {
				tl.t.Fatalf("read %d: %v", off, err)
			}
			if !h.IsControl() {
				err = batch.Records(data[p:p+h.Size()], func(r batch.Record) bool {
					out = append(out, record{off: r.Offset, key: string(r.Key), value: string(r.Value), tombstone: r.Value == nil})
					return true
				})
				if err != nil {
					tl.t.Fatal(err)
				}
			}
			p += h.Size()
			off = h.NextOffset()
		}
	}
	return out
}

// latest returns the last record of each key in recs, by offset.
func latest(recs []record) map[string]record {
	m := map[string]record{}
	for _, r := range recs {
		m[r.key] = r
	}
	return m
}

// settle makes everything appended cleanable: rolled, synced, below the
// high watermark.
func (tl *testLog) settle() {
	tl.t.Helper()
	if err := tl.Roll(); err != nil {
		tl.t.Fatal(err)
	}
	if err := tl.Sync(); err != nil {
		tl.t.Fatal(err)
	}
	tl.SetHighWatermark(tl.LogEndOffset())
}

func (tl *testLog) compact(o CompactOptions) CompactResult {
	tl.t.Helper()
	if o.Now.IsZero() {
		o.Now = tl.now.Now()
	}
	res, err := tl.Compact(context.Background(), o)
	if err != nil {
		tl.t.Fatal(err)
	}
	return res
}

func compactConfig() Config { return Config{SegmentBytes: 8 << 10, IndexIntervalBytes: 512} }

func TestCompactKeepsLatestPerKey(t *testing.T) {
	tl := openTest(t, nil, compactConfig())
	ts := tl.now.Now().UnixMilli()
	rng := rand.New(rand.NewPCG(1, 2))
	codecs := []int{batch.CodecNone, batch.CodecGzip, batch.CodecSnappy, batch.CodecLZ4, batch.CodecZstd}
	for i := range 600 {
		n := 1 + rng.IntN(4)
		var recs []kv
		for j := range n {
			recs = append(recs, keyed(rng.IntN(40), fmt.Sprintf("v%d-%d", i, j)))
		}
		tl.appendKeyed(codecs[i%len(codecs)], ts+int64(i), recs...)
	}
	before := tl.records()
	want := latest(before)
	tl.settle()
	sizeBefore := tl.Size()
	segsBefore := len(tl.Segments())

	res := tl.compact(CompactOptions{DeleteRetentionMs: 1000})
	got := tl.records()
	if len(got) != len(want) {
		t.Fatalf("%d records after compaction, want one per key: %d", len(got), len(want))
	}
	for _, r := range got {
		if w := want[r.key]; w != r {
			t.Fatalf("record %+v, want %+v", r, w)
		}
	}
	if res.RecordsRemoved != int64(len(before)-len(want)) || res.CleanedTo != tl.LogEndOffset() {
		t.Fatalf("result %+v; removed want %d, cleaned to want %d", res, len(before)-len(want), tl.LogEndOffset())
	}
	if tl.Size() >= sizeBefore/4 {
		t.Fatalf("size %d -> %d: did not shrink", sizeBefore, tl.Size())
	}
	for _, s := range tl.Segments() {
		checkIndexFile(t, tl, s.BaseOffset)
	}
	if slices.ContainsFunc(tl.files(), func(n string) bool { return strings.HasSuffix(n, cleanedSuffix) || strings.HasSuffix(n, swapSuffix) }) {
		t.Fatalf("leftover files: %v", tl.files())
	}
	// Fetching inside a gap returns the next kept batch; timestamps are
	// searchable.
	for _, r := range got {
		data, err := tl.Read(nil, r.off, 1, 1<<62, true)
		if err != nil || len(data) == 0 {
			t.Fatalf("read at %d: %v", r.off, err)
		}
		if _, _, found, err := tl.OffsetForTimestamp(ts); !found || err != nil {
			t.Fatalf("offset for timestamp: %v %v", found, err)
		}
	}
	// Nothing dirty: a second pass does nothing.
	if res := tl.compact(CompactOptions{DeleteRetentionMs: 1000}); res.Segments != 0 {
		t.Fatalf("second pass: %+v", res)
	}
	// New updates are compacted against the clean part.
	for k := range 40 {
		tl.appendKeyed(batch.CodecNone, ts+1000, keyed(k, "final"))
	}
	tl.settle()
	c, _ := tl.Cleanability(tl.now.Now(), 0, 0)
	if c.DirtyRatio() <= 0 || c.FirstDirty != res.CleanedTo {
		t.Fatalf("cleanability %+v", c)
	}
	tl.compact(CompactOptions{DeleteRetentionMs: 1000})
	// Like Kafka, groups are sized by the segments' sizes before a pass,
	// so this pass also merged the segments the first one shrank.
	if n := len(tl.Segments()); n >= segsBefore/2 {
		t.Fatalf("%d segments (from %d): not merged", n, segsBefore)
	}
	got = tl.records()
	if len(got) != 40 {
		t.Fatalf("%d records, want 40", len(got))
	}
	for _, r := range got {
		if r.value != "final" {
			t.Fatalf("record %+v", r)
		}
	}
	// Survives a clean reopen and a crash.
	tl.Close()
	tl.reopen()
	if got2 := tl.records(); !slices.Equal(got, got2) {
		t.Fatal("records changed across reopen")
	}
	if c, _ := tl.Cleanability(tl.now.Now(), 0, 0); c.FirstDirty != tl.LogEndOffset() {
		t.Fatalf("cleaner offset not kept across reopen: %+v (LEO %d)", c, tl.LogEndOffset())
	}
	tl.crash()
	if got2 := tl.records(); !slices.Equal(got, got2) {
		t.Fatal("records changed across crash")
	}
}

func TestCompactTombstones(t *testing.T) {
	tl := openTest(t, nil, compactConfig())
	ts := tl.now.Now().UnixMilli()
	for i := range 200 {
		tl.appendKeyed(batch.CodecNone, ts, keyed(i%20, fmt.Sprint(i)))
	}
	for k := range 10 {
		tl.appendKeyed(batch.CodecNone, ts, tombstone(k))
	}
	tl.settle()
	const retention = 60_000
	tl.compact(CompactOptions{DeleteRetentionMs: retention})
	got := tl.records()
	tombs := 0
	for _, r := range got {
		if r.tombstone {
			tombs++
		}
	}
	if len(got) != 20 || tombs != 10 {
		t.Fatalf("after first pass: %d records, %d tombstones; want 20, 10 (tombstones outlive their first pass)", len(got), tombs)
	}
	// Not yet due.
	tl.now.Add(30 * time.Second)
	if c, _ := tl.Cleanability(tl.now.Now(), 0, 0); c.TombstonesDue {
		t.Fatal("tombstones due before delete.retention.ms")
	}
	if res := tl.compact(CompactOptions{DeleteRetentionMs: retention}); res.TombstonesRemoved != 0 {
		t.Fatalf("removed %d tombstones early", res.TombstonesRemoved)
	}
	tl.now.Add(31 * time.Second)
	if c, _ := tl.Cleanability(tl.now.Now(), 0, 0); !c.TombstonesDue {
		t.Fatal("tombstones not due after delete.retention.ms")
	}
	res := tl.compact(CompactOptions{DeleteRetentionMs: retention})
	got = tl.records()
	if res.TombstonesRemoved != 10 || len(got) != 10 {
		t.Fatalf("result %+v, %d records left; want 10 tombstones removed, 10 left", res, len(got))
	}
	for _, r := range got {
		if r.tombstone {
			t.Fatalf("tombstone %+v kept", r)
		}
	}
	if c, _ := tl.Cleanability(tl.now.Now(), 0, 0); c.TombstonesDue {
		t.Fatal("tombstones still due")
	}
}

func TestCompactProducerStateAndControlBatches(t *testing.T) {
	tl := openTest(t, nil, compactConfig())
	ts := tl.now.Now().UnixMilli()
	// An idempotent producer writes key 1 twice, then its last batch is
	// superseded by a plain write: the batch must stay, emptied.
	mk := func(pid int64, seq int32, recs ...kv) []byte {
		b := batch.NewBuilder(batch.CodecGzip).SetProducer(pid, 3, seq)
		for _, r := range recs {
			b.Add(batch.Record{Timestamp: ts, Key: r.key, Value: r.value})
		}
		out, err := b.Build()
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	tl.append(mk(7, 0, keyed(1, "a"), keyed(2, "a")))
	_, pLast := tl.append(mk(7, 2, keyed(1, "b"), keyed(2, "b"), keyed(3, "b")))
	// A transaction marker of another producer, and a transactional
	// record that must not hide the committed value of key 4.
	tl.appendKeyed(batch.CodecNone, ts, keyed(4, "committed"))
	txb := batch.NewBuilder(batch.CodecNone).SetProducer(9, 0, 0).SetTransactional(true)
	txb.Add(batch.Record{Timestamp: ts, Key: []byte("key-4"), Value: []byte("maybe-aborted")})
	txo, _ := txb.Build()
	tl.append(txo)
	tl.append(batch.ControlBatch(9, 0, false, 1, ts))
	tl.appendKeyed(batch.CodecNone, ts, keyed(1, "c"), keyed(2, "c"), keyed(3, "c"))
	tl.settle()
	tl.compact(CompactOptions{ProducerLastOffsets: map[int64]int64{7: pLast}})

	var hs []batch.Header
	for _, h := range tl.readAll(tl.LogStartOffset()) {
		hs = append(hs, h)
	}
	found := false
	controls := 0
	for _, h := range hs {
		if h.ProducerID == 7 {
			if h.LastOffset() != pLast || h.NumRecords != 0 || h.BaseSequence != 2 || h.LastSequence() != 4 || h.ProducerEpoch != 3 {
				t.Fatalf("producer batch %+v, want empty batch ending at %d with sequences 2..4", h, pLast)
			}
			found = true
		}
		if h.IsControl() {
			controls++
		}
	}
	if !found || controls != 1 {
		t.Fatalf("producer batch kept: %v, control batches: %d", found, controls)
	}
	vals := map[string][]string{}
	for _, r := range tl.records() {
		vals[r.key] = append(vals[r.key], r.value)
	}
	if !slices.Equal(vals["key-4"], []string{"committed", "maybe-aborted"}) {
		t.Fatalf("key-4 values %v: a transactional record hid a committed one", vals["key-4"])
	}
	for _, k := range []string{"key-1", "key-2", "key-3"} {
		if !slices.Equal(vals[k], []string{"c"}) {
			t.Fatalf("%s values %v", k, vals[k])
		}
	}
}

func TestCompactMinLagAndActiveSegment(t *testing.T) {
	tl := openTest(t, nil, compactConfig())
	now := tl.now.Now().UnixMilli()
	for i := range 100 {
		tl.appendKeyed(batch.CodecNone, now-100_000, keyed(i%5, fmt.Sprint(i)))
	}
	tl.settle()
	for i := range 100 {
		tl.appendKeyed(batch.CodecNone, now, keyed(i%5, fmt.Sprint(i)))
	}
	tl.settle()
	for i := range 10 { // active segment: never compacted
		tl.appendKeyed(batch.CodecNone, now, keyed(i%5, fmt.Sprint(i)))
	}
	tl.Sync()
	tl.SetHighWatermark(tl.LogEndOffset())
	c, _ := tl.Cleanability(tl.now.Now(), 50_000, 0)
	tl.compact(CompactOptions{MinCompactionLagMs: 50_000})
	got := tl.records()
	old := 0
	for _, r := range got {
		if r.off < c.FirstUncleanable {
			old++
		}
	}
	if old != 5 || len(got) != 5+110 {
		t.Fatalf("%d records below %d and %d in all; want 5 and 115", old, c.FirstUncleanable, len(got))
	}
}

func TestCompactMaxKeysProgresses(t *testing.T) {
	tl := openTest(t, nil, compactConfig())
	ts := tl.now.Now().UnixMilli()
	for i := range 400 {
		tl.appendKeyed(batch.CodecNone, ts, keyed(i%100, fmt.Sprint(i)))
	}
	tl.settle()
	want := latest(tl.records())
	for pass := 0; ; pass++ {
		res := tl.compact(CompactOptions{MaxKeys: 30})
		if res.CleanedTo == tl.LogEndOffset() {
			break
		}
		if pass > 100 {
			t.Fatal("no progress")
		}
	}
	tl.compact(CompactOptions{})
	got := tl.records()
	if len(got) != len(want) {
		t.Fatalf("%d records, want %d", len(got), len(want))
	}
	for _, r := range got {
		if want[r.key] != r {
			t.Fatalf("record %+v, want %+v", r, want[r.key])
		}
	}
}

// TestCompactSwapCrash interrupts the swap at every file operation and
// crashes: recovery must finish or roll back the swap, never lose the
// latest value of a key or leave overlapping segments.
func TestCompactSwapCrash(t *testing.T) {
	const dir = "data/topic-0/"
	z := segName(0, "")
	type step struct {
		name  string
		fault func(segs []SegmentInfo) vfs.Fault
	}
	steps := []step{
		{"cleaned log write", func([]SegmentInfo) vfs.Fault {
			return vfs.Fault{Op: vfs.OpWrite, Prefix: dir + z + ".log.cleaned"}
		}},
		{"index write", func([]SegmentInfo) vfs.Fault {
			return vfs.Fault{Op: vfs.OpCreate, Prefix: dir + z + ".index.cleaned"}
		}},
		{"marker create", func([]SegmentInfo) vfs.Fault { return vfs.Fault{Op: vfs.OpCreate, Prefix: dir + z + ".0"} }},
		{"commit dir sync", func([]SegmentInfo) vfs.Fault { return vfs.Fault{Op: vfs.OpSyncDir, Skip: 1} }},
		{"index rename", func([]SegmentInfo) vfs.Fault {
			return vfs.Fault{Op: vfs.OpRename, Prefix: dir + z + ".index.cleaned"}
		}},
		{"old segment removal", func(segs []SegmentInfo) vfs.Fault {
			return vfs.Fault{Op: vfs.OpRemove, Prefix: dir + segName(segs[1].BaseOffset, ".log")}
		}},
		{"second old segment removal", func(segs []SegmentInfo) vfs.Fault {
			return vfs.Fault{Op: vfs.OpRemove, Prefix: dir + segName(segs[2].BaseOffset, ".")}
		}},
		{"log rename", func([]SegmentInfo) vfs.Fault {
			return vfs.Fault{Op: vfs.OpRename, Prefix: dir + z + ".log.cleaned"}
		}},
		{"final dir sync", func([]SegmentInfo) vfs.Fault { return vfs.Fault{Op: vfs.OpSyncDir, Skip: 2} }},
		{"marker removal", func([]SegmentInfo) vfs.Fault { return vfs.Fault{Op: vfs.OpRemove, Prefix: dir + z + ".0"} }},
	}
	for _, st := range steps {
		for _, crashMode := range []string{"crash", "crashWith"} {
			t.Run(st.name+"/"+crashMode, func(t *testing.T) {
				mem := vfs.NewMem()
				ffs := vfs.NewFault(mem)
				tl := openTest(t, ffs, compactConfig())
				ts := tl.now.Now().UnixMilli()
				// A first pass leaves small segments that the second
				// one merges: groups of several segments.
				for i := range 300 {
					tl.appendKeyed(batch.CodecNone, ts, keyed(i%30, fmt.Sprint(i)))
				}
				tl.settle()
				tl.compact(CompactOptions{})
				for i := range 300 {
					tl.appendKeyed(batch.CodecNone, ts, keyed(i%30, fmt.Sprint(i)))
				}
				tl.settle()
				want := latest(tl.records())
				in := ffs.Inject(st.fault(tl.Segments()))
				_, err := tl.Compact(context.Background(), CompactOptions{Now: tl.now.Now()})
				if in.Fired() == 0 {
					t.Fatalf("fault never fired (err %v)", err)
				}
				if err == nil {
					t.Fatal("compaction hid an I/O error")
				}
				in.Remove()
				// Whatever happened, the live log still reads right.
				if tl.Failed() == nil {
					checkLatest(t, tl, want)
				}
				// Crash, recover.
				var crashed *vfs.MemFS
				if crashMode == "crash" {
					crashed = mem.Crash()
				} else {
					crashed = mem.CrashWith(vfs.CrashOptions{Rand: rand.New(rand.NewPCG(3, 4)), TornTails: true, UnsyncedDirs: true})
				}
				tl.Log.Delete()
				tl.fs = crashed
				tl.reopen()
				checkLatest(t, tl, want)
				for _, n := range tl.files() {
					if strings.HasSuffix(n, cleanedSuffix) || strings.HasSuffix(n, swapSuffix) {
						t.Fatalf("leftover %s after recovery: %v", n, tl.files())
					}
				}
				// And compaction still works.
				tl.SetHighWatermark(tl.LogEndOffset())
				tl.compact(CompactOptions{})
				checkLatest(t, tl, want)
				if n := len(tl.records()); n != len(want) {
					t.Fatalf("%d records after a clean pass, want %d", n, len(want))
				}
			})
		}
	}
}

// checkLatest verifies the log reads cleanly and holds the latest value
// of every key in want as its last record for that key.
func checkLatest(t *testing.T, tl *testLog, want map[string]record) {
	t.Helper()
	got := latest(tl.records())
	if len(got) != len(want) {
		t.Fatalf("%d keys, want %d", len(got), len(want))
	}
	for k, w := range want {
		if got[k] != w {
			t.Fatalf("key %s: latest %+v, want %+v", k, got[k], w)
		}
	}
}

func TestCompactRacesRetention(t *testing.T) {
	tl := openTest(t, nil, compactConfig())
	ts := tl.now.Now().UnixMilli()
	for i := range 300 {
		tl.appendKeyed(batch.CodecNone, ts, keyed(i%30, fmt.Sprint(i)))
	}
	tl.settle()
	done := make(chan error)
	go func() {
		for range 20 {
			if _, err := tl.Compact(context.Background(), CompactOptions{Now: tl.now.Now()}); err != nil {
				done <- err
				return
			}
			tl.appendKeyed(batch.CodecNone, ts, keyed(1, "x"))
			tl.Roll()
			tl.Sync()
			tl.SetHighWatermark(tl.LogEndOffset())
		}
		done <- nil
	}()
	for i := range 20 {
		segs := tl.Segments()
		if len(segs) > 2 {
			if _, err := tl.DeleteSegmentsBefore(segs[1].NextOffset); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := tl.Read(nil, tl.LogStartOffset(), 1<<20, 1<<62, true); err != nil {
			t.Fatalf("read %d: %v", i, err)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	tl.records()
}

func TestSwapMarkerName(t *testing.T) {
	n := swapMarkerName(5, 4711)
	b, nx, ok := parseSwapMarker(n)
	if !ok || b != 5 || nx != 4711 {
		t.Fatalf("%s → %d %d %v", n, b, nx, ok)
	}
	for _, bad := range []string{"00000000000000000005.log", "00000000000000000005.00000000000000000005.swap", "x.swap"} {
		if _, _, ok := parseSwapMarker(bad); ok {
			t.Errorf("%s parsed", bad)
		}
	}
	if _, _, ok := parseSegmentName(n); ok {
		t.Errorf("marker parses as a segment")
	}
}

func TestEnforceRetention(t *testing.T) {
	t.Run("time", func(t *testing.T) {
		tl := openTest(t, nil, smallConfig())
		now := tl.now.Now().UnixMilli()
		for i := range 60 {
			tl.append(mkBatch(t, 2, now-int64(60-i)*1000, 100))
		}
		tl.Sync()
		tl.SetHighWatermark(tl.LogEndOffset())
		segs := tl.Segments()
		// Segments whose newest record is older than 30 s go.
		var wantStart int64
		for _, s := range segs {
			if now-s.MaxTimestamp <= 30_000 {
				wantStart = s.BaseOffset
				break
			}
		}
		res, err := tl.EnforceRetention(Retention{Ms: 30_000, Bytes: -1, Now: tl.now.Now()})
		if err != nil {
			t.Fatal(err)
		}
		if !res.ByTime || res.LogStartOffset != wantStart || tl.LogStartOffset() != wantStart {
			t.Fatalf("result %+v, LSO %d, want %d", res, tl.LogStartOffset(), wantStart)
		}
		if _, err := tl.Read(nil, wantStart-1, 100, 1<<62, true); !errors.Is(err, ErrOffsetOutOfRange) {
			t.Fatalf("read below LSO: %v", err)
		}
		// Everything expired: the active segment rolls and goes too.
		tl.now.Add(time.Hour)
		res, err = tl.EnforceRetention(Retention{Ms: 30_000, Bytes: -1, Now: tl.now.Now()})
		if err != nil {
			t.Fatal(err)
		}
		if tl.LogStartOffset() != tl.LogEndOffset() || len(tl.Segments()) != 1 || tl.Size() != 0 {
			t.Fatalf("result %+v: LSO %d LEO %d segments %d", res, tl.LogStartOffset(), tl.LogEndOffset(), len(tl.Segments()))
		}
		leo := tl.LogEndOffset()
		tl.append(mkBatch(t, 1, now, 10))
		tl.Close()
		tl.reopen()
		if tl.LogStartOffset() != leo {
			t.Fatalf("LSO %d after reopen, want %d", tl.LogStartOffset(), leo)
		}
	})
	t.Run("size", func(t *testing.T) {
		tl := openTest(t, nil, smallConfig())
		for i := range 100 {
			tl.append(mkBatch(t, 1, int64(i), 300))
		}
		tl.Sync()
		tl.SetHighWatermark(tl.LogEndOffset())
		const limit = 10_000
		res, err := tl.EnforceRetention(Retention{Ms: -1, Bytes: limit, Now: tl.now.Now()})
		if err != nil {
			t.Fatal(err)
		}
		segs := tl.Segments()
		if !res.BySize || tl.Size() < limit || tl.Size()-segs[0].Size >= limit {
			t.Fatalf("result %+v: size %d (first segment %d), limit %d", res, tl.Size(), segs[0].Size, limit)
		}
	})
	t.Run("high watermark bounds it", func(t *testing.T) {
		tl := openTest(t, nil, smallConfig())
		for i := range 100 {
			tl.append(mkBatch(t, 1, int64(i), 300))
		}
		tl.SetHighWatermark(0)
		res, err := tl.EnforceRetention(Retention{Ms: 0, Bytes: 0, Now: tl.now.Now()})
		if err != nil || res.Segments != 0 {
			t.Fatalf("deleted %d segments above the high watermark: %v", res.Segments, err)
		}
	})
}

func TestAppendOutOfSpaceKeepsLogUsable(t *testing.T) {
	mem := vfs.NewMem()
	ffs := vfs.NewFault(mem)
	tl := openTest(t, ffs, smallConfig())
	want := fill(t, tl, 20, 100)
	if err := tl.Sync(); err != nil {
		t.Fatal(err)
	}
	ffs.SetCapacity(ffs.Usage() + 150) // room for a partial batch only
	for range 5 {
		if _, _, err := tl.Append(mkBatch(t, 1, 1, 500), 0); !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("append on a full disk: %v", err)
		}
	}
	if err := tl.Failed(); err != nil {
		t.Fatalf("a rolled-back write failed the log: %v", err)
	}
	checkContent(t, tl, want)
	ffs.SetCapacity(-1)
	want = append(want, fill(t, tl, 20, 100)...)
	checkContent(t, tl, want)
	tl.Sync()
	crashed := mem.Crash()
	tl.Log.Delete()
	tl.fs = crashed
	tl.reopen()
	checkContent(t, tl, want)
}

func TestReopenAfterFailedSync(t *testing.T) {
	ffs := vfs.NewFault(vfs.NewMem())
	tl := openTest(t, ffs, smallConfig())
	want := fill(t, tl, 30, 100)
	if err := tl.Sync(); err != nil {
		t.Fatal(err)
	}
	tl.append(mkBatch(t, 1, 1, 100)) // never acknowledged
	ffs.SetSyncError(syscall.EIO)
	if err := tl.Sync(); err == nil {
		t.Fatal("sync succeeded")
	}
	if tl.Failed() == nil {
		t.Fatal("log not failed after a failed fsync")
	}
	if _, _, err := tl.Append(mkBatch(t, 1, 1, 10), 0); err == nil {
		t.Fatal("append to a failed log")
	}
	if err := tl.Reopen(); err == nil {
		t.Fatal("reopen succeeded while fsync still fails")
	}
	ffs.SetSyncError(nil)
	if err := tl.Reopen(); err != nil {
		t.Fatal(err)
	}
	if tl.Failed() != nil {
		t.Fatal("still failed")
	}
	// CloseLogs skips a checkpoint equal to what the log thinks its
	// file holds: after the reopen's recovery that must be the file.
	if disk, err := decodeCkptFileC(tl.readFile(checkpointName)); err != nil || !bytes.Equal(tl.ckptDisk, disk.encode()) {
		t.Fatalf("the reopened log's checkpoint file: remembered %x, holds %+v (%v)", tl.ckptDisk, disk, err)
	}
	got := tl.readAll(0)
	if len(got) < len(want) {
		t.Fatalf("%d batches after reopen, want at least %d", len(got), len(want))
	}
	want = append(want, fill(t, tl, 5, 100)...)
	if err := tl.Sync(); err != nil {
		t.Fatal(err)
	}
	got = tl.readAll(0)
	if len(got) < len(want) {
		t.Fatalf("%d batches, want at least %d", len(got), len(want))
	}
	tl.Close()
	tl.reopen()
	tl.readAll(0)
}

func TestCheckpointVersions(t *testing.T) {
	c := checkpoint{logStartOffset: 1, highWatermark: 5, recoveryPoint: 4, logEndOffset: 9, cleanerOffset: 3,
		epochs: []EpochEntry{{Epoch: 1, StartOffset: 1}}}
	got, err := decodeCheckpoint(c.encode())
	if err != nil || got.cleanerOffset != 3 || got.logEndOffset != 9 || len(got.epochs) != 1 {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	// A version 1 file (written before compaction existed) still loads.
	v2 := c.encode()
	v1 := append([]byte(nil), v2[:checkpointFixedV1]...)
	v1[5] = 1
	v1 = append(v1, v2[checkpointFixed:len(v2)-4]...)
	v1 = append(v1, 0, 0, 0, 0)
	sum := batch.Checksum(v1[:len(v1)-4])
	v1[len(v1)-4], v1[len(v1)-3], v1[len(v1)-2], v1[len(v1)-1] = byte(sum>>24), byte(sum>>16), byte(sum>>8), byte(sum)
	got, err = decodeCheckpoint(v1)
	if err != nil || got.cleanerOffset != 0 || got.logEndOffset != 9 || len(got.epochs) != 1 {
		t.Fatalf("version 1: %+v %v", got, err)
	}
}

var _ = path.Join

func TestCompactStopsAtUnstableOffset(t *testing.T) {
	tl := openTest(t, nil, compactConfig())
	ts := tl.now.Now().UnixMilli()
	for i := range 200 {
		tl.appendKeyed(batch.CodecNone, ts, keyed(i%5, fmt.Sprint(i)))
	}
	tl.settle()
	unstable := tl.LogEndOffset()
	for i := range 200 { // after an open transaction's first offset
		tl.appendKeyed(batch.CodecNone, ts, keyed(i%5, fmt.Sprint(i)))
	}
	tl.settle()
	c, _ := tl.Cleanability(tl.now.Now(), 0, unstable)
	if c.FirstUncleanable != unstable {
		t.Fatalf("first uncleanable %d, want the unstable offset %d", c.FirstUncleanable, unstable)
	}
	tl.compact(CompactOptions{UnstableOffset: unstable})
	above := 0
	for _, r := range tl.records() {
		if r.off >= unstable {
			above++
		}
	}
	if above != 200 {
		t.Fatalf("%d records at or above the unstable offset, want all 200 untouched", above)
	}
}
