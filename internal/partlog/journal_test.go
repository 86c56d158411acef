package partlog

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gregor-streaming/gregor/internal/batch"
	"github.com/gregor-streaming/gregor/internal/vfs"
)

// jenv is a set of logs sharing a Syncer with a journal on a MemFS.
type jenv struct {
	t    testing.TB
	fs   *vfs.MemFS
	syn  *Syncer
	j    *Journal
	logs map[string]*Log
	keys map[string]string // dir → journal key
	out  *lockedBuffer
}

func newJenv(t testing.TB, dirs ...string) *jenv {
	e := &jenv{t: t, fs: vfs.NewMem(), keys: map[string]string{}, out: &lockedBuffer{}}
	for _, d := range dirs {
		e.keys[d] = d + "@1"
	}
	e.open()
	t.Cleanup(e.close)
	return e
}

func (e *jenv) open() {
	e.t.Helper()
	logger := slog.New(slog.NewTextHandler(e.out, nil))
	j, err := OpenJournal(e.fs, "journal", logger)
	if err != nil {
		e.t.Fatal(err)
	}
	e.j = j
	e.syn = newSyncer(2, time.Hour)
	e.syn.journalInterval = time.Hour // cycles only when a test runs one
	e.syn.journalMinLogs = 0          // journal even syncs of one log
	e.syn.manyLogs.Store(true)
	e.syn.UseJournal(j)
	e.logs = map[string]*Log{}
	for d, k := range e.keys {
		l, err := Open(Options{FS: e.fs, Dir: d, Config: smallConfig(), Syncer: e.syn, Logger: logger, JournalKey: k})
		if err != nil {
			e.t.Fatal(err)
		}
		e.logs[d] = l
	}
	j.ReplayDone()
}

func (e *jenv) close() {
	if e.syn == nil {
		return
	}
	for _, l := range e.logs {
		l.Close()
	}
	e.syn.Close()
	e.syn = nil
}

// powerOff keeps what a power loss leaves of the files; open to
// recover.
func (e *jenv) powerOff(opts vfs.CrashOptions) {
	next := e.fs.CrashWith(opts)
	e.close() // on the old file system: no effect on next
	e.fs = next
}

// crash is powerOff and open.
func (e *jenv) crash(opts vfs.CrashOptions) {
	e.t.Helper()
	e.powerOff(opts)
	e.open()
}

// kill is a process crash and a restart: every byte written survives,
// synced or not, and nothing held in memory (pending buffers, journal
// entries not written yet) does.
func (e *jenv) kill() {
	e.t.Helper()
	next := e.fs.Kill()
	e.close() // on the old file system: no effect on next
	e.fs = next
	e.open()
}

// writeUnsynced writes the pending entries without the fdatasync that
// follows, as a process killed between the two leaves them.
func (j *Journal) writeUnsynced() {
	j.syncMu.Lock()
	defer j.syncMu.Unlock()
	j.mu.Lock()
	chunks := j.pending
	j.pending = nil
	j.mu.Unlock()
	for _, c := range chunks {
		if _, err := j.f.Write(c); err != nil {
			panic(err)
		}
	}
}

// crashWithoutJournal deletes the journal durably, then crashes and
// reopens: what survives was in synced segments.
func (e *jenv) crashWithoutJournal() {
	e.t.Helper()
	if err := e.fs.RemoveAll("journal"); err != nil {
		e.t.Fatal(err)
	}
	if err := e.fs.SyncDir("."); err != nil {
		e.t.Fatal(err)
	}
	e.crash(vfs.CrashOptions{})
}

// syncNow requests a sync of l and waits for its answer.
func syncNow(t testing.TB, l *Log) int64 {
	t.Helper()
	ch := make(chan int64, 1)
	l.RequestSync(func(off int64, err error) {
		if err != nil {
			t.Errorf("sync: %v", err)
		}
		ch <- off
	})
	return <-ch
}

// crcs lists (base offset, CRC) of every batch of l; skipCorrupt steps
// over offsets kept as corrupt (the damage of a torn write of data never
// acknowledged may be kept so) instead of failing.
func crcs(t testing.TB, l *Log, skipCorrupt bool) [][2]int64 {
	t.Helper()
	var out [][2]int64
	for off := l.LogStartOffset(); off < l.LogEndOffset(); {
		b, err := l.Read(nil, off, 1<<20, 1<<62, true)
		if skipCorrupt && errors.Is(err, ErrCorrupt) {
			off++
			continue
		}
		if err != nil {
			t.Fatalf("read at %d: %v", off, err)
		}
		if len(b) == 0 {
			break
		}
		for p := 0; p < len(b); {
			h, err := batch.Validate(b[p:])
			if err != nil {
				t.Fatalf("read at %d: %v", off, err)
			}
			out = append(out, [2]int64{h.BaseOffset, int64(h.CRC)})
			p += h.Size()
			off = h.NextOffset()
		}
	}
	return out
}

// expectBatches fails unless l holds exactly the batches want.
func expectBatches(t testing.TB, l *Log, want [][2]int64) {
	t.Helper()
	if got := crcs(t, l, false); !slices.Equal(got, want) {
		t.Fatalf("%s: %v, want %v", l.Dir(), got, want)
	}
}

func appendCRC(t testing.TB, l *Log, b []byte) (base int64, crc int64) {
	t.Helper()
	h, err := batch.ParseHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	base, _, err = l.Append(bytes.Clone(b), 0)
	if err != nil {
		t.Fatal(err)
	}
	return base, int64(h.CRC)
}

func TestJournalAcknowledgesWithoutSegmentSync(t *testing.T) {
	e := newJenv(t, "a-0", "b-0")
	var want = map[string][][2]int64{}
	for i := range 20 {
		for _, d := range []string{"a-0", "b-0"} {
			base, crc := appendCRC(t, e.logs[d], mkBatch(t, 3, int64(i), 50))
			want[d] = append(want[d], [2]int64{base, crc})
		}
	}
	for _, d := range []string{"a-0", "b-0"} {
		l := e.logs[d]
		if got := syncNow(t, l); got != 60 {
			t.Fatalf("%s: durable offset %d, want 60", d, got)
		}
		if rp := l.RecoveryPoint(); rp != 0 {
			t.Fatalf("%s: recovery point %d: the segments were synced, not the journal", d, rp)
		}
		if d := l.DurableOffset(); d != 60 {
			t.Fatalf("durable offset %d", d)
		}
	}
	e.crash(vfs.CrashOptions{})
	for d, w := range want {
		expectBatches(t, e.logs[d], w)
	}
	if !strings.Contains(e.out.String(), "replayed journal") {
		t.Fatalf("no replay logged:\n%s", e.out)
	}
}

func TestJournalCycleSyncsSegmentsAndDeletesFiles(t *testing.T) {
	e := newJenv(t, "a-0")
	l := e.logs["a-0"]
	for i := range 10 {
		appendCRC(t, l, mkBatch(t, 2, int64(i), 100))
	}
	syncNow(t, l)
	if !e.syn.JournalCycle() {
		t.Fatal("cycle failed")
	}
	if rp := l.RecoveryPoint(); rp != 20 {
		t.Fatalf("recovery point %d after a cycle, want 20", rp)
	}
	names, _ := e.fs.List("journal")
	if len(names) != 1 {
		t.Fatalf("journal files after a cycle: %v", names)
	}
	// What the cycle synced survives a crash without the journal.
	want := crcs(t, l, false)
	e.crashWithoutJournal()
	expectBatches(t, e.logs["a-0"], want)
}

func TestJournalStartupFilesKeptUntilReplayDone(t *testing.T) {
	e := newJenv(t, "a-0")
	appendCRC(t, e.logs["a-0"], mkBatch(t, 1, 1, 10))
	syncNow(t, e.logs["a-0"])
	e.crash(vfs.CrashOptions{})
	// A journal opened again: nothing deleted until ReplayDone.
	e.close()
	j, err := OpenJournal(e.fs, "journal", nil)
	if err != nil {
		t.Fatal(err)
	}
	s := newSyncer(1, time.Hour)
	s.journalInterval = time.Hour
	s.UseJournal(j)
	defer s.Close()
	s.JournalCycle()
	names, _ := e.fs.List("journal")
	if len(names) < 3 {
		t.Fatalf("files before ReplayDone: %v", names)
	}
	j.ReplayDone()
	s.JournalCycle()
	names, _ = e.fs.List("journal")
	if len(names) != 1 {
		t.Fatalf("files after ReplayDone and a cycle: %v", names)
	}
}

func TestJournalLargeAppendSyncsSegment(t *testing.T) {
	e := newJenv(t, "a-0")
	l := e.logs["a-0"]
	appendCRC(t, l, mkBatch(t, 1, 1, 10))
	appendCRC(t, l, mkBatch(t, 1, 2, JournalMaxAppend+1))
	if got := syncNow(t, l); got != 2 {
		t.Fatalf("durable %d", got)
	}
	if rp := l.RecoveryPoint(); rp != 2 {
		t.Fatalf("recovery point %d: a large append must be synced in its segment", rp)
	}
	// Coverage resumes after the segment sync.
	appendCRC(t, l, mkBatch(t, 1, 3, 10))
	if got := syncNow(t, l); got != 3 || l.RecoveryPoint() != 2 {
		t.Fatalf("durable %d, recovery point %d", got, l.RecoveryPoint())
	}
}

// TestJournalLoneLogSyncsSegment: with the default threshold a log whose
// syncs come alone is not journaled (its segment's fdatasync costs what
// the journal's would): it syncs its own segment.
func TestJournalLoneLogSyncsSegment(t *testing.T) {
	e := newJenv(t, "a-0")
	e.syn.mu.Lock() // the workers read the threshold under mu
	e.syn.journalMinLogs = wholeSyncMin
	e.syn.mu.Unlock()
	e.syn.manyLogs.Store(false)
	l := e.logs["a-0"]
	for i := range 3 {
		appendCRC(t, l, mkBatch(t, 1, int64(i), 10))
		if got := syncNow(t, l); got != int64(i+1) {
			t.Fatalf("durable %d after append %d", got, i)
		}
		if rp := l.RecoveryPoint(); rp != int64(i+1) {
			t.Fatalf("recovery point %d after append %d: the segment was not synced", rp, i)
		}
	}
	e.j.mu.Lock()
	n := e.j.seq
	e.j.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d journal entries for a lone log", n)
	}
}

func TestJournalTruncationNotReplayed(t *testing.T) {
	e := newJenv(t, "a-0")
	l := e.logs["a-0"]
	for i := range 10 {
		appendCRC(t, l, mkBatch(t, 1, int64(i), 10))
	}
	syncNow(t, l)
	if err := l.TruncateTo(5); err != nil {
		t.Fatal(err)
	}
	want := crcs(t, l, false)
	for i := range 3 {
		base, crc := appendCRC(t, l, mkBatch(t, 2, int64(100+i), 20))
		want = append(want, [2]int64{base, crc})
	}
	syncNow(t, l)
	e.crash(vfs.CrashOptions{})
	expectBatches(t, e.logs["a-0"], want)
}

func TestJournalOtherIncarnationNotReplayed(t *testing.T) {
	e := newJenv(t, "a-0")
	appendCRC(t, e.logs["a-0"], mkBatch(t, 1, 1, 10))
	syncNow(t, e.logs["a-0"])
	// The topic is deleted and created again while the broker is down.
	e.powerOff(vfs.CrashOptions{})
	if err := e.fs.RemoveAll("a-0"); err != nil {
		t.Fatal(err)
	}
	e.keys["a-0"] = "a-0@2"
	e.open()
	if n := e.logs["a-0"].LogEndOffset(); n != 0 {
		t.Fatalf("new incarnation has %d offsets from the old one's journal", n)
	}
}

// TestJournalPowerLossRandom appends, syncs and cycles at random over a
// few logs, with power losses (torn tails, directories written back or
// not) at random points: every offset acknowledged before a loss is
// there afterwards with the same batch, and nothing else changes below
// the log end.
func TestJournalPowerLossRandom(t *testing.T) {
	rounds := 40
	if testing.Short() {
		rounds = 10
	}
	dirs := []string{"a-0", "b-0", "c-0", "d-0"}
	for seed := range uint64(rounds) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 7))
			e := newJenv(t, dirs...)
			appended := map[string][][2]int64{} // every batch appended, in order
			acked := map[string]int64{}
			var mu sync.Mutex
			for step := range 300 {
				d := dirs[rng.IntN(len(dirs))]
				l := e.logs[d]
				switch r := rng.IntN(20); {
				case r < 12:
					size := 20 + rng.IntN(200)
					if rng.IntN(15) == 0 {
						size = JournalMaxAppend + rng.IntN(1000)
					}
					base, crc := appendCRC(t, l, mkBatch(t, 1+rng.IntN(3), int64(step), size))
					appended[d] = append(appended[d], [2]int64{base, crc})
				case r < 17:
					off := syncNow(t, l)
					mu.Lock()
					acked[d] = max(acked[d], off)
					mu.Unlock()
				case r < 19:
					e.syn.JournalCycle()
				default:
					// Kills too: a process crash keeps unsynced bytes that
					// the next open must not count as durable.
					if rng.IntN(3) == 0 {
						if rng.IntN(2) == 0 {
							e.j.writeUnsynced() // killed between write and fdatasync
						}
						e.kill()
						t.Logf("step %d kill:\n%s", step, e.out)
					} else {
						e.crash(vfs.CrashOptions{Rand: rng, TornTails: true, UnsyncedDirs: true})
						t.Logf("step %d crash:\n%s", step, e.out)
					}
					e.out.Reset()
					for _, d := range dirs {
						got := crcs(t, e.logs[d], true)
						have := map[[2]int64]bool{}
						for _, g := range got {
							have[g] = true
						}
						was := map[[2]int64]bool{}
						for _, b := range appended[d] {
							was[b] = true
							if b[0] < acked[d] && !have[b] {
								t.Fatalf("step %d: %s lost acknowledged batch at %d (acked %d)", step, d, b[0], acked[d])
							}
						}
						for _, g := range got {
							if !was[g] {
								t.Fatalf("step %d: %s has a batch at %d that was never appended", step, d, g[0])
							}
						}
						appended[d] = got
					}
				}
			}
		})
	}
}

// TestSyncNotStrandedByCycle: a sync request whose worker finds the
// log's syncMu held by a journal cycle that had nothing to sync for the
// log is still answered: the cycle requeues the log when it lets go.
func TestSyncNotStrandedByCycle(t *testing.T) {
	e := newJenv(t, "a-0")
	l := e.logs["a-0"]
	appendCRC(t, l, mkBatch(t, 1, 1, 10)) // journaled: the cycle lists l
	syncNow(t, l)
	appendCRC(t, l, mkBatch(t, 1, 2, JournalMaxAppend+1)) // not journaled
	syncNow(t, l)                                         // segment synced: the cycle finds nothing to do
	answered := make(chan error, 1)
	e.syn.cycleHeld = func(hl *Log) {
		if hl != l {
			return
		}
		// While the cycle holds syncMu: an append the journal does not
		// take, and its sync request, which a worker picks up and must
		// leave to the cycle.
		appendCRC(t, l, mkBatch(t, 1, 3, JournalMaxAppend+1))
		l.RequestSync(func(_ int64, err error) { answered <- err })
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
			l.mu.Lock()
			q := l.queued
			l.mu.Unlock()
			if !q {
				return
			}
			time.Sleep(time.Millisecond)
		}
		t.Error("no worker took the request")
	}
	if !e.syn.JournalCycle() {
		t.Fatal("cycle failed")
	}
	select {
	case err := <-answered:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("sync request stranded: never answered")
	}
	if rp := l.RecoveryPoint(); rp != l.LogEndOffset() {
		t.Fatalf("recovery point %d, log end %d", rp, l.LogEndOffset())
	}
}

// TestJournalStaysOnThroughShortRounds: one sync round with few logs
// (four workers share the queue; logs come back one at a time after a
// cycle) does not turn journaling off for busy logs; a second of such
// rounds does.
func TestJournalStaysOnThroughShortRounds(t *testing.T) {
	e := newJenv(t, "a-0")
	set := func(last time.Time) {
		e.syn.mu.Lock() // the workers read these under mu
		e.syn.journalMinLogs = wholeSyncMin
		e.syn.lastMany = last
		e.syn.mu.Unlock()
		e.syn.manyLogs.Store(true)
	}
	set(time.Now())
	l := e.logs["a-0"]
	appendCRC(t, l, mkBatch(t, 1, 1, 10))
	syncNow(t, l)
	if !e.syn.manyLogs.Load() || l.RecoveryPoint() != 0 {
		t.Fatalf("after one short round: journaling %v, recovery point %d", e.syn.manyLogs.Load(), l.RecoveryPoint())
	}
	set(time.Now().Add(-2 * journalManyFor))
	appendCRC(t, l, mkBatch(t, 1, 2, 10))
	syncNow(t, l)
	if e.syn.manyLogs.Load() {
		t.Fatal("journaling still on after a long stretch of short rounds")
	}
}

// TestJournalReplaysOnlyDurableEntries: a process crash (kill -9) leaves
// journal entries that were written but never synced in the page cache.
// The next Open replays them and acknowledges later appends on top; a
// power loss must not then take the replayed entries back, or replay
// stops at the hole and loses what was acknowledged after it.
func TestJournalReplaysOnlyDurableEntries(t *testing.T) {
	e := newJenv(t, "a-0")
	b0 := mkBatch(t, 3, 1, 20)
	appendCRC(t, e.logs["a-0"], b0)
	// What a killed broker left: the entry written, its fdatasync never
	// run (the segment lost its pending buffer with the process).
	e.j.writeUnsynced()
	e.kill()
	l := e.logs["a-0"]
	if end := l.LogEndOffset(); end != 3 {
		t.Fatalf("log end offset %d after replay, want 3", end)
	}
	h, _ := batch.ParseHeader(b0)
	want := [][2]int64{{0, int64(h.CRC)}}
	base, crc := appendCRC(t, l, mkBatch(t, 2, 2, 20))
	want = append(want, [2]int64{base, crc})
	if got := syncNow(t, l); got != 5 {
		t.Fatalf("durable offset %d, want 5", got)
	}
	e.crash(vfs.CrashOptions{})
	expectBatches(t, e.logs["a-0"], want)
}

// TestJournalPendingChunksReused pins the pending entries' memory: once
// a round's chunks exist, rounds of the same size reuse them instead of
// growing a buffer again (a buffer grown by doubling and dropped past
// 4 MiB had been a third of the broker's allocations at 10,000
// partitions). It fails if written chunks are not kept for reuse.
func TestJournalPendingChunksReused(t *testing.T) {
	// A real file system: its writes allocate nothing in Go.
	j, err := OpenJournal(vfs.Default, t.TempDir()+"/journal", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer j.close()
	l := &Log{jkey: "t-0"}
	b := bytes.Repeat([]byte{1}, 1100)
	round := func() {
		// About 3.3 MiB: four chunks, the last one partly filled.
		for i := range 3000 {
			j.add(l, journalKindBatch, int64(i), b)
		}
		j.syncMu.Lock()
		err := j.flushSyncMuHeld()
		j.syncMu.Unlock()
		if err != nil {
			t.Fatal(err)
		}
	}
	round()
	round()
	got := allocatedBy(round)
	written := 3000 * journalEntrySize(l.jkey, b)
	if got > journalChunk/4 {
		t.Fatalf("a round of %d bytes allocated %d", written, got)
	}
	if len(j.free) == 0 {
		t.Fatal("no chunk kept for reuse")
	}
}
