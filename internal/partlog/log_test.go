package partlog

import (
	"bytes"
	"encoding/binary"
	"slices"
	"testing"

	"github.com/gregor-streaming/gregor/internal/batch"
)

func TestAppendAssignsOffsetsAndEpoch(t *testing.T) {
	tl := openTest(t, nil, DefaultConfig())
	two := append(mkBatch(t, 3, 1000, 10), mkBatch(t, 2, 2000, 10)...)
	base, last, err := tl.Append(two, 7)
	if err != nil || base != 0 || last != 4 {
		t.Fatalf("Append = %d, %d, %v", base, last, err)
	}
	base, last = tl.append(mkBatch(t, 1, 3000, 10))
	if base != 5 || last != 5 || tl.LogEndOffset() != 6 {
		t.Fatalf("second append %d %d, LEO %d", base, last, tl.LogEndOffset())
	}
	out, err := tl.Read(nil, 0, 1<<20, 100, true)
	if err != nil {
		t.Fatal(err)
	}
	var bases []int64
	var epochs []int32
	for p := 0; p < len(out); {
		h, err := batch.Validate(out[p:])
		if err != nil {
			t.Fatal(err)
		}
		bases = append(bases, h.BaseOffset)
		epochs = append(epochs, h.PartitionLeaderEpoch)
		p += h.Size()
	}
	if !slices.Equal(bases, []int64{0, 3, 5}) || !slices.Equal(epochs, []int32{7, 7, 0}) {
		t.Fatalf("bases %v epochs %v", bases, epochs)
	}
	if got := tl.LeaderEpochs(); !slices.Equal(got, []EpochEntry{{7, 0}}) {
		t.Fatalf("epochs %v", got) // epoch 0 < 7 is not new
	}
}

func TestAppendRejectsGarbage(t *testing.T) {
	tl := openTest(t, nil, DefaultConfig())
	b := mkBatch(t, 1, 1, 1)
	for name, in := range map[string][]byte{
		"empty":     nil,
		"short":     b[:20],
		"truncated": b[:len(b)-1],
		"trailing":  append(bytes.Clone(b), 1, 2, 3),
	} {
		if _, _, err := tl.Append(in, 0); !errorsIs(err, ErrInvalidBatch) {
			t.Errorf("%s: err %v", name, err)
		}
	}
	if tl.LogEndOffset() != 0 {
		t.Fatal("LEO moved")
	}
}

func TestReadLimits(t *testing.T) {
	tl := openTest(t, nil, DefaultConfig())
	var sizes []int
	for i := range 5 {
		b := mkBatch(t, 2, int64(i*10), 100)
		sizes = append(sizes, len(b))
		tl.append(b)
	} // batches at offsets 0,2,4,6,8; LEO 10
	count := func(out []byte) (n int, first int64) {
		first = -1
		for p := 0; p < len(out); n++ {
			h, err := batch.Validate(out[p:])
			if err != nil {
				t.Fatal(err)
			}
			if first < 0 {
				first = h.BaseOffset
			}
			p += h.Size()
		}
		return n, first
	}
	tests := []struct {
		name      string
		off       int64
		maxBytes  int
		maxOffset int64
		minOne    bool
		want      int
		first     int64
		err       error
	}{
		{"all", 0, 1 << 20, 100, false, 5, 0, nil},
		{"mid batch", 3, 1 << 20, 100, false, 4, 2, nil},
		{"maxBytes two", 0, sizes[0] + sizes[1], 100, false, 2, 0, nil},
		{"maxBytes just short", 0, sizes[0] + sizes[1] - 1, 100, false, 1, 0, nil},
		{"maxBytes too small", 0, 10, 100, false, 0, -1, nil},
		{"minOne", 0, 10, 100, true, 1, 0, nil},
		{"maxBytes zero minOne", 4, 0, 100, true, 1, 4, nil},
		{"maxOffset", 0, 1 << 20, 6, false, 3, 0, nil},
		{"maxOffset mid", 0, 1 << 20, 5, false, 3, 0, nil},
		{"at maxOffset", 6, 1 << 20, 6, true, 0, -1, nil},
		{"at LEO", 10, 1 << 20, 100, true, 0, -1, nil},
		{"beyond LEO", 11, 1 << 20, 100, true, 0, -1, ErrOffsetOutOfRange},
		{"negative", -1, 1 << 20, 100, true, 0, -1, ErrOffsetOutOfRange},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prefix := []byte("prefix")
			out, err := tl.Read(bytes.Clone(prefix), tt.off, tt.maxBytes, tt.maxOffset, tt.minOne)
			if !errorsIs(err, tt.err) {
				t.Fatalf("err %v, want %v", err, tt.err)
			}
			if !bytes.HasPrefix(out, prefix) {
				t.Fatalf("dst prefix lost")
			}
			n, first := count(out[len(prefix):])
			if n != tt.want || first != tt.first {
				t.Fatalf("got %d batches from %d, want %d from %d", n, first, tt.want, tt.first)
			}
		})
	}
}

func TestRollAndSegments(t *testing.T) {
	cfg := smallConfig()
	tl := openTest(t, nil, cfg)
	var total int64
	for i := range 40 {
		b := mkBatch(t, 3, int64(1000+i), 200) // ~ 700 bytes
		total += int64(len(b))
		tl.append(b)
	}
	segs := tl.Segments()
	if len(segs) < 5 {
		t.Fatalf("%d segments", len(segs))
	}
	var size int64
	for i, s := range segs {
		size += s.Size
		if s.Size > cfg.SegmentBytes {
			t.Errorf("segment %d has %d bytes", s.BaseOffset, s.Size)
		}
		if i > 0 && segs[i-1].NextOffset != s.BaseOffset {
			t.Errorf("segment %d next %d, following base %d", i-1, segs[i-1].NextOffset, s.BaseOffset)
		}
		if s.Active != (i == len(segs)-1) {
			t.Errorf("segment %d active %v", i, s.Active)
		}
		if s.MaxTimestamp < 1000 {
			t.Errorf("segment %d max timestamp %d", i, s.MaxTimestamp)
		}
	}
	if size != total || tl.Size() != total {
		t.Fatalf("size %d/%d, appended %d", size, tl.Size(), total)
	}
	if last := segs[len(segs)-1]; last.NextOffset != 120 {
		t.Fatalf("active next %d", last.NextOffset)
	}
	// Every closed segment has its index files; the active one gets
	// them with its first entries.
	names := tl.files()
	for _, s := range segs {
		sufs := []string{".log", ".index", ".timeindex"}
		if s.Active {
			sufs = sufs[:1]
		}
		for _, suf := range sufs {
			if !slices.Contains(names, segName(s.BaseOffset, suf)) {
				t.Errorf("missing %s", segName(s.BaseOffset, suf))
			}
		}
	}
	// Every offset reads back its batch, across segments.
	for off := int64(0); off < 120; off++ {
		out, err := tl.Read(nil, off, 1, 1<<62, true)
		if err != nil {
			t.Fatal(err)
		}
		h, err := batch.Validate(out)
		if err != nil || off < h.BaseOffset || off > h.LastOffset() || len(out) != h.Size() {
			t.Fatalf("offset %d: batch %d..%d (%v)", off, h.BaseOffset, h.LastOffset(), err)
		}
	}
	if hs := tl.readAll(0); len(hs) != 40 {
		t.Fatalf("%d batches", len(hs))
	}
	// Closed segments' time index ends with the segment's max timestamp.
	for _, s := range segs[:len(segs)-1] {
		ti := tl.readFile(segName(s.BaseOffset, ".timeindex"))
		if len(ti) == 0 || int64(binary.BigEndian.Uint64(ti[len(ti)-12:])) != s.MaxTimestamp {
			t.Errorf("segment %d time index does not end at %d", s.BaseOffset, s.MaxTimestamp)
		}
	}
}

func TestRollRules(t *testing.T) {
	day := int64(24 * 3600 * 1000)
	tests := []struct {
		name  string
		cfg   Config
		ts    func(i int) int64
		size  int
		rolls bool
	}{
		{"no roll", DefaultConfig(), func(i int) int64 { return int64(i) }, 100, false},
		{"segment.bytes", Config{SegmentBytes: 1000}, func(i int) int64 { return int64(i) }, 300, true},
		{"segment.ms", Config{SegmentMs: day}, func(i int) int64 { return int64(i) * day / 2 }, 100, true},
		{"segment.ms old data no roll", Config{SegmentMs: day}, func(i int) int64 { return int64(i) }, 100, false},
		{"segment.index.bytes", Config{SegmentIndexBytes: 24, IndexIntervalBytes: 1}, func(i int) int64 { return int64(i) }, 100, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tl := openTest(t, nil, tt.cfg)
			for i := range 10 {
				tl.append(mkBatch(t, 1, tt.ts(i), tt.size))
			}
			if rolled := len(tl.Segments()) > 1; rolled != tt.rolls {
				t.Fatalf("rolled %v, want %v (%d segments)", rolled, tt.rolls, len(tl.Segments()))
			}
			if hs := tl.readAll(0); len(hs) != 10 {
				t.Fatalf("%d batches", len(hs))
			}
		})
	}
}

func TestSetConfigLive(t *testing.T) {
	tl := openTest(t, nil, DefaultConfig())
	for range 5 {
		tl.append(mkBatch(t, 1, 1, 500))
	}
	tl.SetConfig(Config{SegmentBytes: 1000})
	for range 5 {
		tl.append(mkBatch(t, 1, 1, 500))
	}
	if n := len(tl.Segments()); n < 5 {
		t.Fatalf("%d segments after lowering segment.bytes", n)
	}
	if tl.Config().SegmentBytes != 1000 || tl.Config().IndexIntervalBytes != DefaultIndexIntervalBytes {
		t.Fatalf("config %+v", tl.Config())
	}
}

func TestRollForce(t *testing.T) {
	tl := openTest(t, nil, DefaultConfig())
	if err := tl.Roll(); err != nil || len(tl.Segments()) != 1 {
		t.Fatal("rolled an empty segment", err)
	}
	tl.append(mkBatch(t, 2, 1, 1))
	if err := tl.Roll(); err != nil {
		t.Fatal(err)
	}
	segs := tl.Segments()
	if len(segs) != 2 || segs[1].BaseOffset != 2 || segs[0].NextOffset != 2 {
		t.Fatalf("%+v", segs)
	}
}

func errorsIs(err, target error) bool {
	if target == nil {
		return err == nil
	}
	return err != nil && bytes.Contains([]byte(err.Error()), []byte(target.Error())) && isErr(err, target)
}
