package raftnode

import (
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/gregor-streaming/gregor/internal/vfs"
)

func ent(index, term uint64, data string) raftpb.Entry {
	return raftpb.Entry{Index: index, Term: term, Data: []byte(data)}
}

// walBytes encodes a WAL file: a start record, then ents and hs in the
// order given (each raftpb.Entry or raftpb.HardState).
func walBytes(t testing.TB, snapIndex, snapTerm uint64, recs ...any) []byte {
	t.Helper()
	buf := appendStart(nil, snapIndex, snapTerm)
	for _, r := range recs {
		var err error
		switch r := r.(type) {
		case raftpb.Entry:
			buf, err = appendEntries(buf, []raftpb.Entry{r})
		case raftpb.HardState:
			buf, err = appendState(buf, r)
		default:
			t.Fatalf("unknown record %T", r)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return buf
}

// recordOffsets returns where each record of a valid WAL starts.
func recordOffsets(data []byte) []int {
	var offs []int
	for off := 0; off < len(data); off += recHeader + int(binary.LittleEndian.Uint32(data[off:])) {
		offs = append(offs, off)
	}
	return offs
}

func entryIndexes(ents []raftpb.Entry) []string {
	var s []string
	for _, e := range ents {
		s = append(s, fmt.Sprintf("%d/%d:%s", e.Index, e.Term, e.Data))
	}
	return s
}

func TestDecodeWALOverwrite(t *testing.T) {
	data := walBytes(t, 10, 2,
		ent(11, 2, "a"), ent(12, 2, "b"), ent(13, 2, "c"), raftpb.HardState{Term: 2, Commit: 11},
		// A new leader replaces 12 and after.
		ent(12, 3, "B"), raftpb.HardState{Term: 3, Vote: 1, Commit: 12},
		ent(13, 3, "C"), ent(14, 3, "D"),
	)
	st, valid, err := decodeWAL(data)
	if err != nil || valid != len(data) {
		t.Fatalf("decodeWAL: valid %d of %d, %v", valid, len(data), err)
	}
	want := []string{"11/2:a", "12/3:B", "13/3:C", "14/3:D"}
	if got := entryIndexes(st.entries); !slices.Equal(got, want) {
		t.Fatalf("entries %v, want %v", got, want)
	}
	if st.hs != (raftpb.HardState{Term: 3, Vote: 1, Commit: 12}) || st.snapIndex != 10 || st.snapTerm != 2 {
		t.Fatalf("state %+v", st)
	}
}

func TestDecodeWALTornTail(t *testing.T) {
	data := walBytes(t, 0, 0, ent(1, 1, "a"), ent(2, 1, "b"), raftpb.HardState{Term: 1, Commit: 1}, ent(3, 1, "c"))
	offs := recordOffsets(data)
	lastStart := offs[len(offs)-1]
	check := func(name string, torn []byte) {
		t.Helper()
		st, valid, err := decodeWAL(torn)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if valid != lastStart {
			t.Fatalf("%s: valid %d, want %d", name, valid, lastStart)
		}
		if got := entryIndexes(st.entries); !slices.Equal(got, []string{"1/1:a", "2/1:b"}) || st.hs.Commit != 1 {
			t.Fatalf("%s: entries %v, hs %+v", name, got, st.hs)
		}
	}
	for cut := lastStart; cut < len(data); cut++ {
		check(fmt.Sprintf("cut at %d", cut), data[:cut])
	}
	bad := slices.Clone(data)
	bad[len(bad)-1] ^= 1
	check("bad checksum on the last record", bad)
	check("zeros after", append(slices.Clone(data[:lastStart]), make([]byte, 100)...))
	check("zeros instead of the last record", append(slices.Clone(data[:lastStart]), make([]byte, len(data)-lastStart)...))
}

func TestDecodeWALCorrupt(t *testing.T) {
	data := walBytes(t, 0, 0, ent(1, 1, "a"), ent(2, 1, "b"), raftpb.HardState{Term: 1, Commit: 2}, ent(3, 1, "c"))
	offs := recordOffsets(data)
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"bad checksum in the middle", func() []byte {
			b := slices.Clone(data)
			b[offs[1]+recHeader+2] ^= 1
			return b
		}()},
		{"huge length in the middle", func() []byte {
			b := slices.Clone(data)
			binary.LittleEndian.PutUint32(b[offs[2]:], 0xffffffff)
			return b
		}()},
		{"zero length in the middle", func() []byte {
			b := slices.Clone(data)
			binary.LittleEndian.PutUint32(b[offs[2]:], 0)
			return b
		}()},
		{"no start record", data[offs[1]:]},
		{"empty", nil},
		{"gap", walBytes(t, 0, 0, ent(1, 1, "a"), ent(3, 1, "c"))},
		{"below the snapshot", walBytes(t, 5, 1, ent(5, 1, "a"))},
		{"term going down", walBytes(t, 0, 0, ent(1, 2, "a"), ent(2, 1, "b"))},
		{"commit past the end", walBytes(t, 0, 0, ent(1, 1, "a"), raftpb.HardState{Term: 1, Commit: 2})},
		{"second start", append(slices.Clone(data), appendStart(nil, 0, 0)...)},
		{"unknown type", append(appendRecord(slices.Clone(data), 9, []byte("x")), data[offs[1]:]...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, valid, err := decodeWAL(tc.data)
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("decodeWAL: %v, want ErrCorrupt", err)
			}
			if valid > len(tc.data) {
				t.Fatalf("valid %d > %d", valid, len(tc.data))
			}
		})
	}
}

// writeDir lays out a node directory by hand: node-id, a WAL file and
// an optional snapshot.
func writeDir(t *testing.T, fs vfs.FS, dir string, id uint64, walData []byte, snap *raftpb.Snapshot) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(fs.MkdirAll(dir))
	must(vfs.WriteFileAtomic(fs, dir, filepath.Join(dir, idName), fmt.Appendf(nil, "raftnode %d\n", id)))
	must(vfs.WriteFileAtomic(fs, dir, filepath.Join(dir, walName(1)), walData))
	if snap != nil {
		b, err := encodeSnapshot(*snap)
		must(err)
		must(vfs.WriteFileAtomic(fs, dir, filepath.Join(dir, snapName), b))
	}
}

func proposal(seq uint64, data string) string {
	return string(envelope{node: 99, nonce: 1, seq: seq, data: []byte(data)}.marshal())
}

func addNode(t testing.TB, id uint64) raftpb.Entry {
	b, err := (&raftpb.ConfChange{Type: raftpb.ConfChangeAddNode, NodeID: id}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return raftpb.Entry{Type: raftpb.EntryConfChange, Index: 1, Term: 1, Data: b}
}

// TestRecoverReplaysOverwrites starts a node on a WAL whose suffix a new
// leader overwrote, and whose tail is torn.
func TestRecoverReplaysOverwrites(t *testing.T) {
	fs := vfs.NewMem()
	data := walBytes(t, 0, 0,
		addNode(t, 1), raftpb.HardState{Term: 1, Commit: 1},
		ent(2, 1, proposal(1, "a")), ent(3, 1, proposal(2, "b")), ent(4, 1, proposal(3, "x")),
		raftpb.HardState{Term: 1, Commit: 2},
		ent(3, 2, proposal(4, "c")), raftpb.HardState{Term: 2, Vote: 1, Commit: 3},
	)
	torn := append(slices.Clone(data), walBytes(t, 0, 0, ent(4, 2, proposal(5, "torn")))[25:40]...)
	writeDir(t, fs, "/r", 1, torn, nil)
	sm := &testSM{}
	n, err := Start(Config{ID: 1, Voters: map[uint64]string{1: ""}, Dir: "/r", FS: fs, SM: sm, Log: testLog(t), TickInterval: testTick})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if got := sm.data(); !slices.Equal(got, []string{"a", "c"}) {
		t.Fatalf("applied %v, want [a c]", got)
	}
	// The torn tail was cut off before anything was appended.
	b, err := vfs.ReadFile(fs, filepath.Join("/r", walName(1)))
	if err != nil {
		t.Fatal(err)
	}
	if _, valid, err := decodeWAL(b); err != nil || valid != len(b) || !slices.Equal(b[:len(data)], data) {
		t.Fatalf("WAL after recovery: valid %d of %d, %v", valid, len(b), err)
	}
}

func TestRecoverRefusesDamage(t *testing.T) {
	good := walBytes(t, 0, 0, addNode(t, 1), raftpb.HardState{Term: 1, Commit: 1},
		ent(2, 1, proposal(1, "a")), raftpb.HardState{Term: 1, Commit: 2})
	offs := recordOffsets(good)
	middle := slices.Clone(good)
	middle[offs[1]+recHeader+1] ^= 0x40
	snap := &raftpb.Snapshot{Data: []byte("[]"), Metadata: raftpb.SnapshotMetadata{Index: 5, Term: 1, ConfState: raftpb.ConfState{Voters: []uint64{1}}}}
	for _, tc := range []struct {
		name  string
		setup func(fs vfs.FS)
		want  string
	}{
		{"DamagedMiddle", func(fs vfs.FS) { writeDir(t, fs, "/r", 1, middle, nil) }, "checksum mismatch"},
		{"SnapshotWithoutItsWAL", func(fs vfs.FS) { writeDir(t, fs, "/r", 1, good, snap) }, "no WAL continuing its snapshot"},
		{"DamagedSnapshot", func(fs vfs.FS) {
			writeDir(t, fs, "/r", 1, walBytes(t, 5, 1), snap)
			b, _ := vfs.ReadFile(fs, "/r/snapshot")
			b[len(b)-1] ^= 1
			vfs.WriteFileAtomic(fs, "/r", "/r/snapshot", b)
		}, "snapshot: checksum mismatch"},
		{"NoNodeID", func(fs vfs.FS) {
			writeDir(t, fs, "/r", 1, good, nil)
			fs.Remove("/r/" + idName)
		}, "has a raft log but no node-id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := vfs.NewMem()
			tc.setup(fs)
			n, err := Start(Config{ID: 1, Voters: map[uint64]string{1: ""}, Dir: "/r", FS: fs, SM: &testSM{}, Log: testLog(t), TickInterval: testTick})
			if err == nil {
				n.Close()
				t.Fatal("Start succeeded")
			}
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Start: %v, want ErrCorrupt saying %q", err, tc.want)
			}
		})
	}
}

// TestRecoverSnapshotSteps checks the directory states a crash can leave
// while a snapshot is stored (see saveSnapshot): old snapshot with old
// and new WAL files, new snapshot with both.
func TestRecoverSnapshotSteps(t *testing.T) {
	voters := raftpb.ConfState{Voters: []uint64{1}}
	oldWAL := walBytes(t, 0, 0, addNode(t, 1), ent(2, 1, proposal(1, "a")), ent(3, 1, proposal(2, "b")),
		raftpb.HardState{Term: 1, Commit: 3})
	newWAL := walBytes(t, 2, 1, ent(3, 1, proposal(2, "b")), raftpb.HardState{Term: 1, Commit: 3})
	snapData := `[{"i":2,"d":"a"}]`
	snap := raftpb.Snapshot{Data: []byte(snapData), Metadata: raftpb.SnapshotMetadata{Index: 2, Term: 1, ConfState: voters}}
	for _, tc := range []struct {
		name     string
		withSnap bool
		restores int
	}{
		{"NewWALWrittenSnapshotNot", false, 0},
		{"SnapshotWrittenOldWALNotRemoved", true, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := vfs.NewMem()
			var s *raftpb.Snapshot
			if tc.withSnap {
				s = &snap
			}
			writeDir(t, fs, "/r", 1, oldWAL, s)
			vfs.WriteFileAtomic(fs, "/r", filepath.Join("/r", walName(2)), newWAL)
			sm := &testSM{}
			n, err := Start(Config{ID: 1, Voters: map[uint64]string{1: ""}, Dir: "/r", FS: fs, SM: sm, Log: testLog(t), TickInterval: testTick})
			if err != nil {
				t.Fatal(err)
			}
			defer n.Close()
			if got := sm.data(); !slices.Equal(got, []string{"a", "b"}) || sm.restores != tc.restores {
				t.Fatalf("applied %v with %d restores", got, sm.restores)
			}
			names, _ := fs.List("/r")
			var wals []string
			for _, name := range names {
				if _, ok := parseWALName(name); ok {
					wals = append(wals, name)
				}
			}
			if len(wals) != 1 {
				t.Fatalf("WAL files after recovery: %v", wals)
			}
		})
	}
}
