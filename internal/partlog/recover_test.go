package partlog

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"path"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gregor-streaming/gregor/internal/batch"
	"github.com/gregor-streaming/gregor/internal/vfs"
)

// fill appends n batches of 1-3 records and returns them as stored.
func fill(t *testing.T, tl *testLog, n int, valueSize int) [][]byte {
	t.Helper()
	var out [][]byte
	for i := range n {
		b := mkBatch(t, 1+i%3, int64(1000+i), valueSize)
		if _, _, err := tl.Append(b, int32(i/10)); err != nil {
			t.Fatal(err)
		}
		out = append(out, b) // rewritten in place by Append
	}
	return out
}

// checkContent verifies that the log holds exactly want, in order.
func checkContent(t *testing.T, tl *testLog, want [][]byte) {
	t.Helper()
	var got [][]byte
	off := tl.LogStartOffset()
	for off < tl.LogEndOffset() {
		out, err := tl.Read(nil, off, 1<<20, 1<<62, true)
		if err != nil {
			t.Fatalf("read %d: %v", off, err)
		}
		for p := 0; p < len(out); {
			h, err := batch.Validate(out[p:])
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, out[p:p+h.Size()])
			p += h.Size()
			off = h.NextOffset()
		}
	}
	if len(got) != len(want) {
		t.Fatalf("log holds %d batches, want %d", len(got), len(want))
	}
	for i := range got {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("batch %d differs", i)
		}
	}
}

func TestCleanReopen(t *testing.T) {
	tl := openTest(t, nil, smallConfig())
	want := fill(t, tl, 30, 100)
	tl.SetHighWatermark(20)
	leo, epochs, segs := tl.LogEndOffset(), tl.LeaderEpochs(), tl.Segments()
	if err := tl.Close(); err != nil {
		t.Fatal(err)
	}
	if err := tl.Close(); err != nil { // idempotent
		t.Fatal(err)
	}
	_, err := tl.Read(nil, 0, 100, 100, true)
	mustErr(t, err, ErrClosed)
	tl.logs.Reset()
	tl.reopen()
	if strings.Contains(tl.logs.String(), "recovering") {
		t.Fatalf("clean reopen recovered:\n%s", tl.logs)
	}
	if tl.LogEndOffset() != leo || tl.HighWatermark() != 20 || tl.RecoveryPoint() != leo || !slices.Equal(tl.LeaderEpochs(), epochs) {
		t.Fatalf("LEO %d HW %d RP %d epochs %v", tl.LogEndOffset(), tl.HighWatermark(), tl.RecoveryPoint(), tl.LeaderEpochs())
	}
	got := tl.Segments()
	for i := range got {
		got[i].LastModified, segs[i].LastModified = segs[i].LastModified, got[i].LastModified
	}
	if !slices.Equal(got, segs) {
		t.Fatalf("segments\n%+v\nwant\n%+v", got, segs)
	}
	checkContent(t, tl, want)
	// Appending after a clean reopen continues the indexes correctly.
	want = append(want, fill(t, tl, 10, 100)...)
	checkContent(t, tl, want)
	tl.Close()
	tl.reopen()
	checkContent(t, tl, want)
	for _, s := range tl.Segments() {
		checkIndexFile(t, tl, s.BaseOffset)
	}
}

func TestCrashKeepsSyncedData(t *testing.T) {
	tl := openTest(t, nil, smallConfig())
	want := fill(t, tl, 25, 100)
	if err := tl.Sync(); err != nil {
		t.Fatal(err)
	}
	synced := tl.LogEndOffset()
	fill(t, tl, 12, 100) // lost in the crash
	tl.crash()
	if tl.LogEndOffset() != synced {
		t.Fatalf("LEO %d after crash, synced %d", tl.LogEndOffset(), synced)
	}
	checkContent(t, tl, want)
	if tl.RecoveryPoint() != synced {
		t.Fatalf("recovery point %d", tl.RecoveryPoint())
	}
	for _, s := range tl.Segments() {
		checkIndexFile(t, tl, s.BaseOffset)
	}
	// The log goes on.
	want = append(want, fill(t, tl, 5, 100)...)
	tl.Sync()
	tl.crash()
	checkContent(t, tl, want)
}

func TestCrashWithTornTails(t *testing.T) {
	for seed := range uint64(40) {
		rng := rand.New(rand.NewPCG(seed, 1))
		tl := openTest(t, nil, Config{SegmentBytes: int64(1000 + rng.IntN(4000)), IndexIntervalBytes: int32(64 + rng.IntN(512))})
		var want [][]byte
		syncedN := 0
		for range 1 + rng.IntN(4) {
			want = append(want, fill(t, tl, rng.IntN(30), 1+rng.IntN(300))...)
			if rng.IntN(2) == 0 {
				if err := tl.Sync(); err != nil {
					t.Fatal(err)
				}
				syncedN = len(want)
			}
		}
		mem := tl.fs.(*vfs.MemFS)
		tl.fs = mem.CrashWithTornTails(rng)
		tl.Log.Delete()
		tl.reopen()
		// Everything synced survives; what else survived is a prefix of
		// what was appended, intact.
		got := tl.readAll(0)
		if len(got) < syncedN {
			t.Fatalf("seed %d: %d batches after crash, %d were synced", seed, len(got), syncedN)
		}
		checkContent(t, tl, want[:len(got)])
		for _, s := range tl.Segments() {
			checkIndexFile(t, tl, s.BaseOffset)
		}
		tl.Close()
	}
}

func TestTornTailTruncated(t *testing.T) {
	b := mkBatch(t, 2, 5, 50)
	flipped := bytes.Clone(b)
	flipped[len(flipped)-3] ^= 0x10
	tests := map[string][]byte{
		"partial batch":  b[:len(b)/2],
		"partial header": b[:20],
		"zeros":          make([]byte, 300),
		"garbage":        bytes.Repeat([]byte{0xde, 0xad, 0xbe, 0xef}, 100),
		"bad last batch": flipped,
		"bad then zeros": append(bytes.Clone(flipped), make([]byte, 100)...),
	}
	for name, tail := range tests {
		t.Run(name, func(t *testing.T) {
			tl := openTest(t, nil, smallConfig())
			want := fill(t, tl, 20, 100)
			leo := tl.LogEndOffset()
			active := tl.Segments()[len(tl.Segments())-1]
			tl.Close()
			f, err := tl.fs.OpenAppend(path.Join(tl.dir, segName(active.BaseOffset, ".log")))
			if err != nil {
				t.Fatal(err)
			}
			f.Write(tail)
			f.Sync()
			f.Close()
			tl.reopen()
			if tl.LogEndOffset() != leo {
				t.Fatalf("LEO %d, want %d", tl.LogEndOffset(), leo)
			}
			msg := "torn tail"
			if name == "zeros" {
				msg = "trimming zeros past the data"
			}
			if !strings.Contains(tl.logs.String(), msg) {
				t.Fatalf("no torn tail logged:\n%s", tl.logs)
			}
			if got := tl.Segments()[len(tl.Segments())-1].Size; got != active.Size {
				t.Fatalf("active size %d, want %d", got, active.Size)
			}
			checkContent(t, tl, want)
			want = append(want, fill(t, tl, 3, 10)...)
			checkContent(t, tl, want)
		})
	}
}

// flipInBatch flips a bit inside the records of the i-th batch of a
// segment file and returns the batch's offsets.
func flipInBatch(t *testing.T, tl *testLog, base int64, i int, at int) batch.Header {
	t.Helper()
	name := segName(base, ".log")
	b := tl.readFile(name)
	p := 0
	for range i {
		h, _ := batch.ParseHeader(b[p:])
		p += h.Size()
	}
	h, err := batch.Validate(b[p:])
	if err != nil {
		t.Fatal(err)
	}
	if at < 0 {
		at = h.Size() - 5
	}
	b[p+at] ^= 0x04
	tl.writeFile(name, b)
	return h
}

func TestFlippedBitInMiddle(t *testing.T) {
	for _, tc := range []struct {
		name  string
		at    int  // byte inside the batch; -1: in the records
		clean bool // clean shutdown before the flip (found at read time)
	}{
		{"records after crash", -1, false},
		{"length field after crash", 10, false},
		{"attributes after crash", 22, false},
		{"records after clean shutdown", -1, true},
		// Damaged headers found by reads: the data after them must
		// stay readable although the batch's length cannot be trusted.
		{"length field after clean shutdown", 10, true},
		{"magic after clean shutdown", 16, true},
		{"lastOffsetDelta after clean shutdown", 26, true},
		{"lastOffsetDelta high byte after clean shutdown", 23, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tl := openTest(t, nil, Config{SegmentBytes: 1 << 20, IndexIntervalBytes: 256})
			want := fill(t, tl, 30, 100)
			leo := tl.LogEndOffset()
			if tc.clean {
				tl.Close()
			} else {
				tl.Sync()
				tl.crashFS()
				// Below a checkpointed recovery point recovery trusts
				// the synced bytes (reads find damage there, as after a
				// clean shutdown); without a checkpoint it checks all.
				if err := tl.fs.Remove(path.Join(tl.dir, checkpointName)); err != nil {
					t.Fatal(err)
				}
			}
			bad := flipInBatch(t, tl, 0, 15, tc.at)
			tl.logs.Reset()
			tl.reopen()
			if tl.LogEndOffset() != leo {
				t.Fatalf("LEO %d, want %d: acknowledged data dropped", tl.LogEndOffset(), leo)
			}
			if !tc.clean && !strings.Contains(tl.logs.String(), "CORRUPT") {
				t.Fatalf("corruption not logged:\n%s", tl.logs)
			}
			for off := bad.BaseOffset; off <= bad.LastOffset(); off++ {
				_, err := tl.Read(nil, off, 1<<20, 1<<62, true)
				mustErr(t, err, ErrCorrupt)
			}
			// Before it: served up to the corrupt batch, never past it.
			out, err := tl.Read(nil, 0, 1<<20, 1<<62, true)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out, bytes.Join(want[:15], nil)) {
				t.Fatalf("read from 0 returned %d bytes", len(out))
			}
			// After it: intact.
			out, err = tl.Read(nil, bad.NextOffset(), 1<<20, 1<<62, true)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out, bytes.Join(want[16:], nil)) {
				t.Fatalf("read after the corrupt batch returned %d bytes", len(out))
			}
			// Recovery again (crash) keeps it the same way.
			tl.Sync()
			tl.crashFS()
			tl.reopen()
			if tl.LogEndOffset() != leo {
				t.Fatalf("LEO %d after second recovery", tl.LogEndOffset())
			}
		})
	}
}

func TestFlippedBitInOldSegment(t *testing.T) {
	tl := openTest(t, nil, smallConfig())
	want := fill(t, tl, 40, 100)
	segs := tl.Segments()
	tl.Sync()
	tl.crashFS()
	bad := flipInBatch(t, tl, segs[1].BaseOffset, 1, -1) // below the recovery point: not rescanned
	tl.reopen()
	_, err := tl.Read(nil, bad.BaseOffset, 1<<20, 1<<62, true)
	mustErr(t, err, ErrCorrupt)
	out, err := tl.Read(nil, segs[1].BaseOffset, 1<<20, 1<<62, true)
	if err != nil || len(out) == 0 {
		t.Fatalf("batches before the corrupt one: %d bytes, %v", len(out), err)
	}
	out, err = tl.Read(nil, bad.NextOffset(), 1<<20, 1<<62, true)
	if err != nil || len(out) == 0 {
		t.Fatalf("batches after the corrupt one: %d bytes, %v", len(out), err)
	}
	_ = want
}

func TestIndexFilesRebuilt(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(tl *testLog, base int64)
	}{
		{"missing index", func(tl *testLog, base int64) { tl.fs.Remove(path.Join(tl.dir, segName(base, ".index"))) }},
		{"missing timeindex", func(tl *testLog, base int64) { tl.fs.Remove(path.Join(tl.dir, segName(base, ".timeindex"))) }},
		{"garbage index", func(tl *testLog, base int64) {
			n := len(tl.readFile(segName(base, ".index")))
			tl.writeFile(segName(base, ".index"), bytes.Repeat([]byte{0x7f, 1, 2, 3}, n/4))
		}},
		{"odd-sized index", func(tl *testLog, base int64) { tl.writeFile(segName(base, ".index"), []byte{1, 2, 3}) }},
		{"shifted index", func(tl *testLog, base int64) {
			b := tl.readFile(segName(base, ".index"))
			for i := 4; i < len(b); i += 8 { // positions off by 3
				b[i+3] += 3
			}
			tl.writeFile(segName(base, ".index"), b)
		}},
		{"garbage timeindex", func(tl *testLog, base int64) { tl.writeFile(segName(base, ".timeindex"), []byte{9, 9, 9, 9, 9}) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tl := openTest(t, nil, Config{SegmentBytes: 8192, IndexIntervalBytes: 200})
			want := fill(t, tl, 60, 100)
			segs := tl.Segments()
			tl.Close()
			for _, s := range segs {
				tc.damage(tl, s.BaseOffset)
			}
			tl.reopen()
			checkContent(t, tl, want)
			for off := int64(0); off < tl.LogEndOffset(); off += 3 {
				out, err := tl.Read(nil, off, 1, 1<<62, true)
				if err != nil {
					t.Fatal(err)
				}
				h, _ := batch.Validate(out)
				if off < h.BaseOffset || off > h.LastOffset() {
					t.Fatalf("offset %d: batch %d..%d", off, h.BaseOffset, h.LastOffset())
				}
			}
			if got := tl.Segments(); len(got) != len(segs) || got[0].MaxTimestamp != segs[0].MaxTimestamp {
				t.Fatalf("segments %+v", got)
			}
			if _, _, found, err := tl.OffsetForTimestamp(1030); !found || err != nil {
				t.Fatal("time lookup", err)
			}
			for _, s := range segs[:len(segs)-1] {
				checkIndexFile(t, tl, s.BaseOffset)
			}
		})
	}
}

func TestCheckpointDamage(t *testing.T) {
	for name, damage := range map[string]func(tl *testLog){
		"missing": func(tl *testLog) { tl.fs.Remove(path.Join(tl.dir, checkpointName)) },
		"garbage": func(tl *testLog) {
			tl.writeFile(checkpointName, []byte("not a checkpoint at all, no no no no no no no no no no no no no no no"))
		},
		"flipped": func(tl *testLog) {
			b := tl.readFile(checkpointName)
			b[20] ^= 1
			tl.writeFile(checkpointName, b)
		},
		"truncated": func(tl *testLog) { tl.writeFile(checkpointName, tl.readFile(checkpointName)[:30]) },
	} {
		t.Run(name, func(t *testing.T) {
			tl := openTest(t, nil, smallConfig())
			want := fill(t, tl, 30, 100)
			leo := tl.LogEndOffset()
			epochs := tl.LeaderEpochs()
			tl.Close()
			damage(tl)
			tl.reopen()
			if tl.LogEndOffset() != leo || tl.LogStartOffset() != 0 || tl.HighWatermark() != 0 {
				t.Fatalf("LEO %d LSO %d HW %d", tl.LogEndOffset(), tl.LogStartOffset(), tl.HighWatermark())
			}
			if !slices.Equal(tl.LeaderEpochs(), epochs) {
				t.Fatalf("epochs %v, want %v (rebuilt from batches)", tl.LeaderEpochs(), epochs)
			}
			checkContent(t, tl, want)
		})
	}
}

func TestStateSurvivesReopen(t *testing.T) {
	tl := openTest(t, nil, smallConfig())
	want := fill(t, tl, 40, 100)
	segs := tl.Segments()
	tl.SetHighWatermark(tl.LogEndOffset())
	if err := tl.SetLogStartOffset(segs[2].BaseOffset + 1); err != nil {
		t.Fatal(err)
	}
	lso := tl.LogStartOffset()
	tl.Sync()
	tl.crash()
	if tl.LogStartOffset() != lso || tl.HighWatermark() != tl.LogEndOffset() {
		t.Fatalf("LSO %d (want %d) HW %d LEO %d", tl.LogStartOffset(), lso, tl.HighWatermark(), tl.LogEndOffset())
	}
	_, err := tl.Read(nil, lso-1, 100, 1<<62, true)
	mustErr(t, err, ErrOffsetOutOfRange)
	if tl.Segments()[0].BaseOffset != segs[2].BaseOffset {
		t.Fatalf("first segment %d", tl.Segments()[0].BaseOffset)
	}
	_ = want
}

func TestCleanShutdownWithDamagedActiveIndex(t *testing.T) {
	for name, damage := range map[string]func(tl *testLog, base int64){
		"missing index": func(tl *testLog, base int64) { tl.fs.Remove(path.Join(tl.dir, segName(base, ".index"))) },
		"short index": func(tl *testLog, base int64) {
			tl.writeFile(segName(base, ".index"), tl.readFile(segName(base, ".index"))[:8])
		},
		"garbage timeidx": func(tl *testLog, base int64) { tl.writeFile(segName(base, ".timeindex"), make([]byte, 24)) },
		"log grew": func(tl *testLog, base int64) {
			tl.writeFile(segName(base, ".log"), append(tl.readFile(segName(base, ".log")), 0, 0, 0))
		},
		"log shrank": func(tl *testLog, base int64) {
			b := tl.readFile(segName(base, ".log"))
			tl.writeFile(segName(base, ".log"), b[:len(b)-1])
		},
		"stale index tail": func(tl *testLog, base int64) {
			b := tl.readFile(segName(base, ".index"))
			b[len(b)-1]++
			tl.writeFile(segName(base, ".index"), b)
		},
	} {
		t.Run(name, func(t *testing.T) {
			tl := openTest(t, nil, Config{SegmentBytes: 1 << 20, IndexIntervalBytes: 200})
			want := fill(t, tl, 40, 100)
			tl.Close()
			damage(tl, 0)
			tl.logs.Reset()
			tl.reopen()
			if !strings.Contains(tl.logs.String(), "recovering") {
				t.Fatalf("damage not noticed:\n%s", tl.logs)
			}
			if name == "log shrank" {
				want = want[:len(want)-1]
			}
			checkContent(t, tl, want)
			checkIndexFile(t, tl, 0)
		})
	}
}

func TestOSFileSystem(t *testing.T) {
	dir := t.TempDir()
	// Not openTest: its relative default directory would land in the
	// source tree.
	tl := &testLog{t: t, fs: vfs.Default, dir: dir + "/new/topic-3", cfg: smallConfig(), now: &fakeClock{t: time.Unix(1_700_000_000, 0)}, logs: &lockedBuffer{}}
	tl.reopen()
	t.Cleanup(func() { tl.Log.Close() })
	want := fill(t, tl, 30, 100)
	tl.Close()
	tl.writeFile(checkpointName+".tmp", []byte("left by a crash"))
	tl.reopen()
	checkContent(t, tl, want)
	if slices.Contains(tl.files(), checkpointName+".tmp") {
		t.Fatal("temporary file not removed")
	}
	if err := tl.Delete(); err != nil {
		t.Fatal(err)
	}
	if _, err := vfs.Default.Stat(tl.dir); !vfs.IsNotExist(err) {
		t.Fatalf("directory left: %v", err)
	}
	tl.reopen() // a fresh, empty log
	if tl.LogEndOffset() != 0 {
		t.Fatal("not empty")
	}
}

// readCountFS counts the bytes read through its files.
type readCountFS struct {
	vfs.FS
	n *atomic.Int64
}

type readCountFile struct {
	vfs.File
	n *atomic.Int64
}

func (f readCountFile) Read(b []byte) (int, error) {
	n, err := f.File.Read(b)
	f.n.Add(int64(n))
	return n, err
}

func (f readCountFile) ReadAt(b []byte, off int64) (int, error) {
	n, err := f.File.ReadAt(b, off)
	f.n.Add(int64(n))
	return n, err
}

func (fs readCountFS) wrap(f vfs.File, err error) (vfs.File, error) {
	if err != nil {
		return nil, err
	}
	return readCountFile{f, fs.n}, nil
}

func (fs readCountFS) Open(name string) (vfs.File, error)   { return fs.wrap(fs.FS.Open(name)) }
func (fs readCountFS) Create(name string) (vfs.File, error) { return fs.wrap(fs.FS.Create(name)) }
func (fs readCountFS) OpenAppend(name string) (vfs.File, error) {
	return fs.wrap(fs.FS.OpenAppend(name))
}
func (fs readCountFS) OpenWrite(name string) (vfs.File, error) {
	return fs.wrap(fs.FS.OpenWrite(name))
}

// TestCleanReopenReadsOnlyTheTail: reopening after a clean close checks
// the active segment's batches after its last index entry and reads the
// first batch's header, nothing more. A broker opens every partition this
// way at start, so with a cold page cache each byte read is disk time
// (10,000 partitions took 18-23 s when this read 256 KiB from the start
// and the tail of each).
func TestCleanReopenReadsOnlyTheTail(t *testing.T) {
	tl := openTest(t, nil, Config{SegmentBytes: 64 << 20, IndexIntervalBytes: 4096})
	for range 64 {
		tl.append(mkBatch(t, 16, 1_700_000_000_000, 1000)) // ~16 KiB each
	}
	size := tl.Segments()[0].Size
	if err := tl.Close(); err != nil {
		t.Fatal(err)
	}
	var n atomic.Int64
	tl.fs = readCountFS{tl.fs, &n}
	tl.logs.Reset()
	tl.reopen()
	if strings.Contains(tl.logs.String(), "recovering") {
		t.Fatalf("clean reopen recovered:\n%s", tl.logs)
	}
	// The tail is at most one index interval plus one batch; the files
	// besides the segment (checkpoint, index entries) are small.
	if got := n.Load(); got > 48<<10 {
		t.Fatalf("clean reopen read %d bytes of a %d-byte segment", got, size)
	}
	if tl.LogEndOffset() != 64*16 {
		t.Fatalf("log end offset %d", tl.LogEndOffset())
	}
}

// TestCrashAfterRollKeepsNoHole: a sync round prepared before a roll
// syncs the directory after it, making the new segment's (empty) file
// durable while the old segment's newest appends are not. A crash then
// keeps the new segment and loses the tail before it; recovery must
// continue the log at the end of the surviving data, not at the new
// segment's base, which would leave offsets no read can cross
// (TestCrashKeepsAcknowledged hit this 2 times in 300).
func TestCrashAfterRollKeepsNoHole(t *testing.T) {
	tl := openTest(t, nil, Config{SegmentBytes: 1 << 20, IndexIntervalBytes: 4096})
	for range 5 {
		tl.append(mkBatch(t, 2, 1_700_000_000_000, 100))
	}
	if err := tl.Sync(); err != nil {
		t.Fatal(err)
	}
	durable := tl.LogEndOffset()
	for range 3 { // never synced
		tl.append(mkBatch(t, 2, 1_700_000_000_000, 100))
	}
	if err := tl.Roll(); err != nil {
		t.Fatal(err)
	}
	// The directory sync of a round that began before the roll.
	if err := tl.fs.SyncDir(tl.dir); err != nil {
		t.Fatal(err)
	}
	tl.crash()
	if leo := tl.LogEndOffset(); leo != durable {
		t.Fatalf("log end offset %d after the crash, want %d (the synced data's end)", leo, durable)
	}
	if hs := tl.readAll(0); len(hs) != 5 {
		t.Fatalf("%d batches after the crash, want 5", len(hs))
	}
	// Appends continue where the data ends.
	if base, _ := tl.append(mkBatch(t, 1, 1_700_000_000_000, 100)); base != durable {
		t.Fatalf("next append at %d, want %d", base, durable)
	}
	tl.readAll(0)
}

// TestKillRecoveryScansFromTheRecoveryPoint: after a process crash,
// recovery validates the active segment from the checkpointed recovery
// point on, not from its start (a whole active segment per partition,
// up to segment.bytes, is what made a restart after kill -9 slow), and
// ends in the state a whole scan reaches: same log end, index entries,
// time index, max timestamp and leader epochs.
func TestKillRecoveryScansFromTheRecoveryPoint(t *testing.T) {
	cfg := Config{SegmentBytes: 64 << 20, IndexIntervalBytes: 4096}
	tl := openTest(t, nil, cfg)
	const ts = 1_700_000_000_000
	var want [][]byte
	add := func(epoch int32, t0 int64) {
		b := mkBatch(t, 16, t0, 1000) // ~16 KiB
		if _, _, err := tl.Append(b, epoch); err != nil {
			t.Fatal(err)
		}
		want = append(want, b) // rewritten in place by Append
	}
	for i := range 64 {
		ts := int64(ts + i)
		if i == 40 {
			ts += 1_000_000 // the largest timestamp is below the recovery point
		}
		add(1, ts)
	}
	if err := tl.Sync(); err != nil { // the checkpoint records the mark
		t.Fatal(err)
	}
	rp := tl.LogEndOffset()
	for i := range 4 {
		add(2, ts+int64(64+i)) // written, not synced: a new epoch
	}
	tl.fs = tl.fs.(*vfs.MemFS).Kill()
	tl.Log.Delete()
	whole := tl.fs.(*vfs.MemFS).Kill() // the same files, for a whole scan
	if err := whole.Remove(path.Join(tl.dir, checkpointName)); err != nil {
		t.Fatal(err)
	}

	var n atomic.Int64
	tl.fs = readCountFS{tl.fs, &n}
	tl.logs.Reset()
	tl.reopen()
	if !strings.Contains(tl.logs.String(), fmt.Sprintf("offset=%d", rp)) {
		t.Fatalf("recovery did not start at the recovery point %d:\n%s", rp, tl.logs)
	}
	// Four batches after the mark, one before it (the last index
	// entry's header), the index files and the checkpoint.
	if got := n.Load(); got > 5*17<<10+8<<10 {
		t.Fatalf("recovery read %d bytes", got)
	}
	checkContent(t, tl, want)
	checkIndexFile(t, tl, 0)

	wl := &testLog{t: t, fs: whole, dir: tl.dir, cfg: cfg, now: tl.now, logs: &lockedBuffer{}}
	wl.reopen()
	defer wl.Close()
	for _, name := range []string{segName(0, ".index"), segName(0, ".timeindex")} {
		if a, b := tl.readFile(name), wl.readFile(name); !bytes.Equal(a, b) {
			t.Errorf("%s: %d bytes after recovery from the mark, %d after a whole scan", name, len(a), len(b))
		}
	}
	if a, b := tl.Segments(), wl.Segments(); a[0].MaxTimestamp != b[0].MaxTimestamp || a[0].NextOffset != b[0].NextOffset || a[0].Size != b[0].Size {
		t.Errorf("segment %+v after recovery from the mark, %+v after a whole scan", a[0], b[0])
	}
	if a, b := tl.LeaderEpochs(), wl.LeaderEpochs(); !slices.Equal(a, b) || len(a) != 2 {
		t.Errorf("epochs %v after recovery from the mark, %v after a whole scan", a, b)
	}
	for _, q := range []int64{ts, ts + 30, ts + 500_000, ts + 1_000_040, ts + 2_000_000} {
		o1, t1, f1, err1 := tl.OffsetForTimestamp(q)
		o2, t2, f2, err2 := wl.OffsetForTimestamp(q)
		if o1 != o2 || t1 != t2 || f1 != f2 || err1 != nil || err2 != nil {
			t.Errorf("timestamp %d: %d/%d/%v/%v from the mark, %d/%d/%v/%v whole", q, o1, t1, f1, err1, o2, t2, f2, err2)
		}
	}
	// Recovery wrote a mark at the new end: a second crash scans nothing.
	tl.fs = tl.fs.(readCountFS).FS.(*vfs.MemFS).Kill()
	tl.Log.Delete()
	tl.logs.Reset()
	tl.reopen()
	if !strings.Contains(tl.logs.String(), fmt.Sprintf("offset=%d", tl.LogEndOffset())) {
		t.Fatalf("second recovery:\n%s", tl.logs)
	}
	checkContent(t, tl, want)

	// A crash after appends that followed a clean start: the clean
	// checkpoint's size no longer matches, and its mark still holds.
	if err := tl.Close(); err != nil {
		t.Fatal(err)
	}
	tl.reopen()
	end := tl.LogEndOffset()
	add(3, ts+100)
	tl.fs = tl.fs.(*vfs.MemFS).Kill()
	tl.Log.Delete()
	tl.logs.Reset()
	tl.reopen()
	if !strings.Contains(tl.logs.String(), fmt.Sprintf("offset=%d", end)) {
		t.Fatalf("recovery after a clean start did not use its mark:\n%s", tl.logs)
	}
	checkContent(t, tl, want)
	checkIndexFile(t, tl, 0)
}
