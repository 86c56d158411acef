package partlog

import (
	"errors"
	"log/slog"
	"math"
	"syscall"
	"testing"
	"time"

	"github.com/gregor-streaming/gregor/internal/vfs"
)

// fileSize is the size of name as the file system holds it.
func fileSize(t testing.TB, fs vfs.FS, name string) int64 {
	t.Helper()
	fi, err := fs.Stat(name)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size
}

func TestPendingAppendsWrittenTogether(t *testing.T) {
	e := newJenv(t, "a-0")
	l := e.logs["a-0"]
	seg := l.Segments()[0]
	name := segmentName(seg.BaseOffset, ".log")
	name = "a-0/" + name
	var want [][2]int64
	for i := range 6 {
		base, crc := appendCRC(t, l, mkBatch(t, 2, int64(i), 100))
		want = append(want, [2]int64{base, crc})
	}
	logical := l.Segments()[0].Size
	if got := fileSize(t, e.fs, name); got != 0 || logical == 0 {
		t.Fatalf("after journaled appends the segment file holds %d bytes (logical size %d), want 0", got, logical)
	}
	// A journal sync acknowledges them without writing the segment.
	if d := syncNow(t, l); d != 12 {
		t.Fatalf("durable offset %d, want 12", d)
	}
	if got := fileSize(t, e.fs, name); got != 0 {
		t.Fatalf("journal sync wrote %d bytes to the segment", got)
	}
	// A read that stops before the buffered offsets leaves them buffered.
	if b, err := l.Read(nil, 0, 1<<20, 0, true); err != nil || len(b) != 0 {
		t.Fatalf("read below the buffer: %d bytes, %v", len(b), err)
	}
	if got := fileSize(t, e.fs, name); got != 0 {
		t.Fatalf("a read that needed nothing buffered wrote %d bytes", got)
	}
	// A read that reaches them writes them, with one write.
	expectBatches(t, l, want)
	if got := fileSize(t, e.fs, name); got != logical {
		t.Fatalf("after a read the file holds %d bytes, want %d", got, logical)
	}
	// Appends after the read are buffered again; the cycle writes and
	// syncs them.
	for i := range 4 {
		base, crc := appendCRC(t, l, mkBatch(t, 2, int64(10+i), 100))
		want = append(want, [2]int64{base, crc})
	}
	syncNow(t, l)
	if !e.syn.JournalCycle() {
		t.Fatal("cycle failed")
	}
	if rp := l.RecoveryPoint(); rp != 20 {
		t.Fatalf("recovery point %d after the cycle, want 20", rp)
	}
	if got, logical := fileSize(t, e.fs, name), l.Segments()[0].Size; got != logical {
		t.Fatalf("after the cycle the file holds %d bytes, want %d", got, logical)
	}
	if n := e.syn.pendBytes.Load(); n != 0 {
		t.Fatalf("%d bytes still counted as buffered", n)
	}
	// The cycle made the segment durable: no journal needed.
	e.crashWithoutJournal()
	expectBatches(t, e.logs["a-0"], want)
}

func TestPendingAppendsSurvivePowerLossThroughJournal(t *testing.T) {
	e := newJenv(t, "a-0")
	l := e.logs["a-0"]
	var want [][2]int64
	for i := range 5 {
		base, crc := appendCRC(t, l, mkBatch(t, 1, int64(i), 200))
		want = append(want, [2]int64{base, crc})
	}
	syncNow(t, l)
	// Unacknowledged appends may go; acknowledged ones must not.
	appendCRC(t, l, mkBatch(t, 1, 99, 200))
	e.crash(vfs.CrashOptions{})
	got := crcs(t, e.logs["a-0"], false)
	if len(got) < len(want) {
		t.Fatalf("after power loss: %v, want at least %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("after power loss batch %d is %v, want %v", i, got[i], want[i])
		}
	}
}

func TestPendingLargeAppendFlushesBufferFirst(t *testing.T) {
	e := newJenv(t, "a-0")
	l := e.logs["a-0"]
	l.SetConfig(Config{SegmentBytes: 1 << 20, IndexIntervalBytes: 256})
	var want [][2]int64
	for i := range 3 {
		base, crc := appendCRC(t, l, mkBatch(t, 1, int64(i), 100))
		want = append(want, [2]int64{base, crc})
	}
	// Too large for the journal: written at once, after the buffer.
	base, crc := appendCRC(t, l, mkBatch(t, 1, 3, JournalMaxAppend+1))
	want = append(want, [2]int64{base, crc})
	name := "a-0/" + segmentName(0, ".log")
	if got, logical := fileSize(t, e.fs, name), l.Segments()[0].Size; got != logical {
		t.Fatalf("file holds %d bytes, logical size %d", got, logical)
	}
	expectBatches(t, l, want)
	// Filling the buffer writes it.
	for i := range 2 * pendMax / 1000 {
		base, crc := appendCRC(t, l, mkBatch(t, 1, int64(10+i), 900))
		want = append(want, [2]int64{base, crc})
	}
	if got, logical := fileSize(t, e.fs, name), l.Segments()[0].Size; logical-got > pendMax || got == 0 {
		t.Fatalf("file holds %d bytes of %d: the buffer grew past %d", got, logical, pendMax)
	}
	syncNow(t, l)
	e.crash(vfs.CrashOptions{})
	expectBatches(t, e.logs["a-0"], want)
}

// A write of the buffer that fails fails the log; Reopen brings the
// buffered appends back from the journal (it writes out the journal's
// pending entries first), and appends go on after them.
func TestPendingWriteFailureReopensFromJournal(t *testing.T) {
	mem := vfs.NewMem()
	ffs := vfs.NewFault(mem)
	logger := slog.New(slog.NewTextHandler(&lockedBuffer{}, nil))
	open := func(fs vfs.FS) (*Syncer, *Log) {
		t.Helper()
		j, err := OpenJournal(fs, "journal", logger)
		if err != nil {
			t.Fatal(err)
		}
		syn := newSyncer(2, time.Hour)
		syn.journalInterval = time.Hour
		syn.journalMinLogs = 0
		syn.manyLogs.Store(true)
		syn.UseJournal(j)
		l, err := Open(Options{FS: fs, Dir: "a-0", Config: Config{SegmentBytes: 1 << 20}, Syncer: syn, Logger: logger, JournalKey: "a-0@1"})
		if err != nil {
			t.Fatal(err)
		}
		j.ReplayDone()
		return syn, l
	}
	syn, l := open(ffs)
	var want [][2]int64
	for i := range 5 {
		base, crc := appendCRC(t, l, mkBatch(t, 1, int64(i), 100))
		want = append(want, [2]int64{base, crc})
	}
	syncNow(t, l)
	in := ffs.Inject(vfs.Fault{Op: vfs.OpWrite, Prefix: "a-0/", Err: syscall.ENOSPC})
	// Journaled, not synced yet.
	base, crc := appendCRC(t, l, mkBatch(t, 1, 50, 100))
	want = append(want, [2]int64{base, crc})
	if _, err := l.Read(nil, 0, 1<<20, math.MaxInt64, true); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("read needing the buffer: %v, want ENOSPC", err)
	}
	if l.Failed() == nil {
		t.Fatal("log not failed after its buffer could not be written")
	}
	in.Remove()
	if err := l.Reopen(); err != nil {
		t.Fatal(err)
	}
	expectBatches(t, l, want)
	for i := range 2 {
		base, crc := appendCRC(t, l, mkBatch(t, 1, int64(60+i), 100))
		want = append(want, [2]int64{base, crc})
	}
	syncNow(t, l)
	expectBatches(t, l, want)
	next := mem.CrashWith(vfs.CrashOptions{})
	l.Close()
	syn.Close()
	syn, l = open(next)
	defer syn.Close()
	defer l.Close()
	expectBatches(t, l, want)
}
