package partlog

import (
	"fmt"
	"math/rand/v2"
	"path"
	"slices"
	"testing"

	"github.com/gregor-streaming/gregor/internal/batch"
	"github.com/gregor-streaming/gregor/internal/vfs"
)

// TestDecodeCkptFile: a file's newest valid slot is its checkpoint; a
// torn slot falls back to the other; files from before version 4 (one
// encoding, no sequence number) and checkpoints larger than a slot read
// as slot 0.
func TestDecodeCkptFile(t *testing.T) {
	ck := ckptAt
	enc := func(c checkpoint, seq uint64) []byte { e := c.encode(); return stampSeq(e, seq) }
	slots := func(s0, s1 []byte) []byte {
		b := make([]byte, ckptSlotSize+len(s1))
		copy(b, s0)
		copy(b[ckptSlotSize:], s1)
		return b
	}
	read := func(b []byte) (int64, uint64, int) {
		t.Helper()
		cf, err := decodeCkptFile(b)
		if err != nil {
			t.Fatal(err)
		}
		return cf.c.logEndOffset, cf.seq, cf.slot
	}
	// Version 3, as stop 30's Gregor wrote it: the same fields without
	// the sequence number.
	c7 := ck(7, 2)
	v4 := c7.encode()
	v3 := append([]byte(nil), v4[:checkpointFixedV3]...)
	v3[5] = 3
	v3 = append(v3, v4[checkpointFixed:]...) // epochs, and room for the CRC
	v3 = stampCRC(v3)
	if leo, seq, slot := read(v3); leo != 7 || seq != 0 || slot != 0 {
		t.Fatalf("version 3: %d %d %d", leo, seq, slot)
	}
	if leo, seq, slot := read(slots(enc(ck(5, 1), 4), enc(ck(6, 1), 5))); leo != 6 || seq != 5 || slot != 1 {
		t.Fatalf("slot 1 newer: %d %d %d", leo, seq, slot)
	}
	if leo, seq, slot := read(slots(enc(ck(8, 1), 6), enc(ck(6, 1), 5))); leo != 8 || seq != 6 || slot != 0 {
		t.Fatalf("slot 0 newer: %d %d %d", leo, seq, slot)
	}
	torn := enc(ck(9, 1), 7)
	torn[20] ^= 1
	if leo, seq, _ := read(slots(v3, torn)); leo != 7 || seq != 0 {
		t.Fatalf("torn slot 1: %d %d", leo, seq)
	}
	if leo, seq, _ := read(slots(torn, enc(ck(6, 1), 5))); leo != 6 || seq != 5 {
		t.Fatalf("torn slot 0: %d %d", leo, seq)
	}
	big := enc(ck(10, 400), 3)
	if len(big) <= ckptSlotSize {
		t.Fatalf("a %d-byte checkpoint fits a slot", len(big))
	}
	if leo, _, _ := read(big); leo != 10 {
		t.Fatalf("large: %d", leo)
	}
	if _, err := decodeCkptFile(slots(torn, torn)); err == nil {
		t.Fatal("two torn slots decoded")
	}
}

// stampCRC recomputes the CRC at the end of an encoding.
func stampCRC(b []byte) []byte {
	sum := batch.Checksum(b[:len(b)-4])
	b[len(b)-4], b[len(b)-3], b[len(b)-2], b[len(b)-1] = byte(sum>>24), byte(sum>>16), byte(sum>>8), byte(sum)
	return b
}

// TestCheckpointSlotsSurviveCrashes writes checkpoints lazily and
// synced, with whole-file-system syncs, restarts (which forget what is
// durable) and checkpoints larger than a slot in between, and after
// every step simulates a power loss that tears unsynced writes in place
// 16 bytes at a time (so a slot's write is not atomic), keeps random
// prefixes of unsynced appends and may keep unsynced directory changes.
// The checkpoint read back must always be one that was written and no
// older than the newest durable one. Most writes must go in place, not
// through a rename.
func TestCheckpointSlotsSurviveCrashes(t *testing.T) {
	for seed := range uint64(20) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { checkpointSlotsCrashes(t, seed) })
	}
}

func checkpointSlotsCrashes(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 7))
	mem, fs, s := wholeMemSyncer(t)
	l, err := Open(Options{FS: fs, Dir: "/data/t-0", Config: DefaultConfig(), Syncer: s, Logger: quietLogger})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for _, d := range []string{"/", "/data"} { // the log's directory is durable
		if err := mem.SyncDir(d); err != nil {
			t.Fatal(err)
		}
	}
	name := path.Join("/data/t-0", checkpointName)

	// written maps each log end offset written to the sequence number
	// it was written with; durable is the newest durable one's, and
	// lazy those written since the last whole sync without an fsync.
	written := map[int64]uint64{}
	var durable uint64
	var lazy []uint64
	var opened uint64 // the sequence number read at the last restart
	leo := int64(1000)
	write := func(synced, big bool) {
		leo++
		epochs := 0
		if big {
			epochs = 400
		}
		_, seq := writeCkpt(t, l, ckptAt(leo, epochs), synced)
		written[leo] = seq
		if synced {
			durable = seq
			lazy = nil
		} else {
			lazy = append(lazy, seq)
		}
	}
	in0, renames0 := fs.n.Load(), fs.renames.Load()
	for step := range 300 {
		switch r := rng.IntN(20); {
		case r < 10:
			write(false, false)
		case r < 15:
			write(true, false)
		case r < 18:
			if err := s.syncAll(); err != nil {
				t.Fatal(err)
			}
			if len(lazy) > 0 {
				durable = lazy[len(lazy)-1]
			}
			lazy = nil
		case r < 19:
			write(rng.IntN(2) == 0, true)
		default:
			// A restart: the file is read again, its durability unknown.
			l.ckptMu.Lock()
			_, err := l.readCheckpoint()
			opened = l.ckptSlots.seq
			l.ckptMu.Unlock()
			if err != nil && !(vfs.IsNotExist(err) && len(written) == 0) {
				t.Fatalf("step %d: restart: %v", step, err)
			}
		}
		crashed := mem.CrashWith(vfs.CrashOptions{Rand: rng, TornWrites: true, TornWriteUnit: 16, TornTails: true, UnsyncedDirs: true})
		b, err := vfs.ReadFile(crashed, name)
		if durable == 0 {
			// Nothing durable yet: the first file, renamed lazily, may
			// be missing, empty or torn (recovery scans the whole log).
			continue
		}
		if err != nil {
			t.Fatalf("step %d: after a crash: %v", step, err)
		}
		cf, err := decodeCkptFile(b)
		if err != nil {
			t.Fatalf("step %d: after a crash: %v (durable %d, lazy %v)", step, err, durable, lazy)
		}
		if seq, ok := written[cf.c.logEndOffset]; !ok || seq != cf.seq {
			t.Fatalf("step %d: read log end %d with sequence %d, never written so", step, cf.c.logEndOffset, cf.seq)
		}
		if cf.seq < durable {
			t.Fatalf("step %d: read sequence %d, older than the durable %d (lazy %v, opened %d)", step, cf.seq, durable, lazy, opened)
		}
	}
	// Renames: the first write, each after a restart until a whole sync,
	// and the large checkpoints and the write after each.
	writes, renames := fs.n.Load()-in0, fs.renames.Load()-renames0
	if renames*2 > writes {
		t.Errorf("%d of %d checkpoint writes renamed a file", renames, writes)
	}
}

// TestCheckpointsWrittenInPlace: once a log's checkpoint file is durable,
// the checkpoints that follow, lazy or synced, are written into its two
// slots in turn, without a rename, and a reopen reads the newest.
func TestCheckpointsWrittenInPlace(t *testing.T) {
	mem, fs, s := wholeMemSyncer(t)
	l, err := Open(Options{FS: fs, Dir: "/data/t-0", Config: DefaultConfig(), Syncer: s, Logger: quietLogger})
	if err != nil {
		t.Fatal(err)
	}
	write := func(leo int64, synced bool) int {
		t.Helper()
		slot, _ := writeCkpt(t, l, ckptAt(leo, 0), synced)
		return slot
	}
	write(1, true) // the first replaces (creates) the file
	renames := fs.renames.Load()
	var slots []int
	for i := range int64(6) {
		lazy := i%2 == 0
		slots = append(slots, write(2+i, !lazy))
		if lazy {
			if err := s.syncAll(); err != nil {
				t.Fatal(err)
			}
		}
	}
	// A lazy write not yet covered by a sync is overwritten in place.
	slots = append(slots, write(8, false), write(9, false))
	if got := fs.renames.Load() - renames; got != 0 {
		t.Errorf("%d renames after the first checkpoint", got)
	}
	if want := []int{1, 0, 1, 0, 1, 0, 1, 1}; !slices.Equal(slots, want) {
		t.Errorf("slots written %v, want %v", slots, want)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	c, err := decodeCkptFileC(mustReadFile(t, mem, "/data/t-0/"+checkpointName))
	if err != nil || !c.clean {
		t.Fatalf("after close: %+v %v", c, err)
	}

	// A new log's first lazy checkpoint creates the file in place: no
	// checkpoint was ever durable, so its slot 0 is rewritten until a
	// sync makes it durable.
	l, err = Open(Options{FS: fs, Dir: "/data/t-1", Config: DefaultConfig(), Syncer: s, Logger: quietLogger})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	renames = fs.renames.Load()
	slots = slots[:0]
	slots = append(slots, write(1, false), write(2, false))
	if err := s.syncAll(); err != nil {
		t.Fatal(err)
	}
	slots = append(slots, write(3, false))
	if got := fs.renames.Load() - renames; got != 0 {
		t.Errorf("a new log's checkpoints: %d renames", got)
	}
	if want := []int{0, 0, 1}; !slices.Equal(slots, want) {
		t.Errorf("a new log's slots written %v, want %v", slots, want)
	}
}

// ckptAt is a checkpoint at log end offset leo with n leader epochs.
func ckptAt(leo int64, n int) checkpoint {
	c := checkpoint{logEndOffset: leo, highWatermark: leo, recoveryPoint: leo, rpMark: noMark}
	for i := range n {
		c.epochs = append(c.epochs, EpochEntry{Epoch: int32(i), StartOffset: int64(i)})
	}
	return c
}

// writeCkpt writes c as l's checkpoint and returns the slot and sequence
// number it went to.
func writeCkpt(t *testing.T, l *Log, c checkpoint, synced bool) (int, uint64) {
	t.Helper()
	l.ckptMu.Lock()
	err := l.writeCkptFile(c.encode(), synced)
	slot, seq := l.ckptSlots.slot, l.ckptSlots.seq
	l.ckptMu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	return slot, seq
}

// wholeMemSyncer returns a MemFS with a /data directory, a wrapper of it
// counting checkpoint writes, and a Syncer syncing it whole, closed
// when the test ends.
func wholeMemSyncer(t *testing.T) (*vfs.MemFS, *ckptWrites, *Syncer) {
	t.Helper()
	mem := vfs.NewMem()
	s := wholeSyncerOn(t, mem, 1)
	t.Cleanup(s.Close)
	return mem, &ckptWrites{FS: mem}, s
}
