package raftnode

import (
	"bytes"
	"encoding/binary"
	"slices"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
)

func heartbeat(from, to uint64) raftpb.Message {
	return raftpb.Message{Type: raftpb.MsgHeartbeat, From: from, To: to, Term: 3, Commit: 7}
}

// FuzzDecodeWAL checks WAL recovery on arbitrary bytes: no panic, the
// valid prefix within the input, truncating to it is stable, and what it
// decodes encodes back to the same state.
func FuzzDecodeWAL(f *testing.F) {
	good := walBytes(f, 0, 0, addNode(f, 1), raftpb.HardState{Term: 1, Commit: 1},
		ent(2, 1, proposal(1, "a")), ent(3, 1, proposal(2, "b")), ent(3, 2, proposal(3, "c")),
		raftpb.HardState{Term: 2, Vote: 1, Commit: 3})
	f.Add(good)
	f.Add(good[:len(good)-3])
	f.Add(append(slices.Clone(good), make([]byte, 20)...))
	f.Add(walBytes(f, 9, 4, ent(10, 4, "x")))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		st, valid, err := decodeWAL(data)
		if valid < 0 || valid > len(data) {
			t.Fatalf("valid %d of %d", valid, len(data))
		}
		if err != nil {
			return
		}
		st2, valid2, err := decodeWAL(data[:valid])
		if err != nil || valid2 != valid {
			t.Fatalf("the valid prefix does not decode again: %d, %v", valid2, err)
		}
		var recs []any
		for _, e := range st.entries {
			recs = append(recs, e)
		}
		recs = append(recs, st.hs)
		st3, _, err := decodeWAL(walBytes(t, st.snapIndex, st.snapTerm, recs...))
		if err != nil {
			t.Fatalf("re-encoded state: %v", err)
		}
		for _, s := range []walState{st2, st3} {
			if s.snapIndex != st.snapIndex || s.snapTerm != st.snapTerm || s.hs != st.hs ||
				!slices.Equal(entryIndexes(s.entries), entryIndexes(st.entries)) {
				t.Fatalf("state %+v, then %+v", st, s)
			}
		}
	})
}

// FuzzHandshake checks the hello and ack decoders on arbitrary bytes.
func FuzzHandshake(f *testing.F) {
	f.Add(hello{protoVersion, 1, 2, 3}.marshal())
	f.Add(marshalAck(statusCluster))
	f.Add([]byte("GRFT"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if h, err := readHello(bytes.NewReader(data)); err == nil {
			if h2, err := readHello(bytes.NewReader(h.marshal())); err != nil || h2 != h {
				t.Fatalf("hello %+v round-trips to %+v, %v", h, h2, err)
			}
		}
		if status, err := readAck(bytes.NewReader(data)); err == nil {
			if s2, err := readAck(bytes.NewReader(marshalAck(status))); err != nil || s2 != status {
				t.Fatalf("ack %d round-trips to %d, %v", status, s2, err)
			}
		}
	})
}

// FuzzDecodeMessage checks the frame and message decoder on arbitrary
// bytes: no panic, no more consumed than given, and a decoded message
// encodes and decodes to itself.
func FuzzDecodeMessage(f *testing.F) {
	for _, m := range []raftpb.Message{
		heartbeat(1, 2),
		{Type: raftpb.MsgApp, From: 1, To: 2, Term: 2, Index: 4, LogTerm: 1, Entries: []raftpb.Entry{ent(5, 2, "x")}, Commit: 4},
		{Type: raftpb.MsgSnap, From: 1, To: 3, Term: 2, Snapshot: &raftpb.Snapshot{Data: []byte("s"), Metadata: raftpb.SnapshotMetadata{Index: 9, Term: 2}}},
	} {
		b, _ := m.Marshal()
		f.Add(append(binary.BigEndian.AppendUint32(nil, uint32(len(b))), b...))
	}
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		m, err := decodeMessage(r)
		if r.Len() < 0 || r.Len() > len(data) {
			t.Fatalf("consumed past the input")
		}
		if err != nil {
			return
		}
		b, err := m.Marshal()
		if err != nil {
			t.Fatalf("decoded message does not encode: %v", err)
		}
		m2, err := decodeMessage(bytes.NewReader(append(binary.BigEndian.AppendUint32(nil, uint32(len(b))), b...)))
		if err != nil {
			t.Fatal(err)
		}
		b2, _ := m2.Marshal()
		if !bytes.Equal(b, b2) {
			t.Fatalf("message does not round-trip")
		}
	})
}

// FuzzEnvelope checks the proposal envelope decoder.
func FuzzEnvelope(f *testing.F) {
	f.Add(envelope{node: 1, nonce: 42, seq: 7, data: []byte("data")}.marshal())
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := unmarshalEnvelope(data)
		if err != nil {
			return
		}
		e2, err := unmarshalEnvelope(e.marshal())
		if err != nil || e2.node != e.node || e2.nonce != e.nonce || e2.seq != e.seq || !bytes.Equal(e2.data, e.data) {
			t.Fatalf("envelope %+v round-trips to %+v, %v", e, e2, err)
		}
	})
}

// FuzzDecodeSnapshot checks the snapshot file decoder.
func FuzzDecodeSnapshot(f *testing.F) {
	b, _ := encodeSnapshot(raftpb.Snapshot{Data: []byte("x"), Metadata: raftpb.SnapshotMetadata{Index: 3, Term: 1, ConfState: raftpb.ConfState{Voters: []uint64{1}}}})
	f.Add(b)
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := decodeSnapshot(data)
		if err != nil {
			return
		}
		b, err := encodeSnapshot(s)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := decodeSnapshot(b); err != nil {
			t.Fatal(err)
		}
	})
}
