package raftnode

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/gregor-streaming/gregor/internal/vfs"
)

// single starts a one-voter node on fs.
func single(t *testing.T, fs vfs.FS, snapshotEvery uint64) (*Node, *testSM) {
	t.Helper()
	sm := &testSM{}
	n, err := Start(Config{
		ID: 1, Voters: map[uint64]string{1: ""}, Dir: "/data/raft", FS: fs, SM: sm,
		Log: testLog(t), TickInterval: testTick, SnapshotEvery: snapshotEvery,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n, sm
}

func propose(t *testing.T, n *Node, data string) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := n.Propose(ctx, []byte(data))
	if err != nil {
		t.Fatalf("propose %q: %v", data, err)
	}
	return res.(uint64)
}

func TestSingleNode(t *testing.T) {
	for _, tc := range []struct {
		name          string
		snapshotEvery uint64
		wantRestores  int
	}{
		{"WAL", 1000, 0},
		{"SnapshotAndWAL", 7, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := vfs.NewMem()
			start := time.Now()
			n, sm := single(t, fs, tc.snapshotEvery)
			if n.Leader() != 1 {
				t.Fatalf("leader after Start = %d, want 1 (a single voter leads at once)", n.Leader())
			}
			if d := time.Since(start); d > 5*electionTicks*testTick {
				t.Errorf("Start took %v", d)
			}
			var want []string
			var last uint64
			for i := range 30 {
				data := fmt.Sprintf("e%d", i)
				index := propose(t, n, data)
				if index <= last {
					t.Fatalf("Propose returned index %d after %d", index, last)
				}
				last = index
				want = append(want, data)
			}
			if got := sm.data(); !slices.Equal(got, want) {
				t.Fatalf("applied %v, want %v", got, want)
			}
			before, _ := sm.state()
			if err := n.Close(); err != nil {
				t.Fatal(err)
			}
			if err := n.Close(); err != nil {
				t.Fatalf("second Close: %v", err)
			}
			if _, err := n.Propose(context.Background(), []byte("x")); !errors.Is(err, ErrStopped) {
				t.Fatalf("Propose after Close: %v, want ErrStopped", err)
			}

			// Start returns with the durable state applied.
			n2, sm2 := single(t, fs, tc.snapshotEvery)
			after, bad := sm2.state()
			if bad != "" {
				t.Fatal(bad)
			}
			if !slices.Equal(after, before) {
				t.Fatalf("after restart applied %v, want %v", after, before)
			}
			if sm2.restores != tc.wantRestores {
				t.Errorf("restores = %d, want %d", sm2.restores, tc.wantRestores)
			}
			if n2.Leader() != 1 {
				t.Fatalf("leader after restart = %d", n2.Leader())
			}
			if index := propose(t, n2, "more"); index <= last {
				t.Fatalf("index after restart %d, want > %d", index, last)
			}
			if err := n2.Barrier(context.Background()); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestStartRefuses(t *testing.T) {
	fs := vfs.NewMem()
	n, _ := single(t, fs, 1000)
	propose(t, n, "x")
	n.Close()
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"OtherNode", Config{ID: 2, Voters: map[uint64]string{2: ""}}, "of node 1, not of node 2"},
		{"OtherVoters", Config{ID: 1, Voters: map[uint64]string{1: "", 2: "b:1"}}, "membership changes are not supported"},
		{"NotAVoter", Config{ID: 3, Voters: map[uint64]string{1: ""}}, "not one of the voters"},
		{"NoAddress", Config{ID: 1, Voters: map[uint64]string{1: "", 2: ""}}, "voter 2 has no address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.Dir, cfg.FS, cfg.SM, cfg.Log = "/data/raft", fs, &testSM{}, testLog(t)
			n, err := Start(cfg)
			if err == nil {
				n.Close()
				t.Fatal("Start succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Start: %v, want an error saying %q", err, tc.want)
			}
		})
	}
	// The refusals changed nothing.
	_, sm := single(t, fs, 1000)
	if got := sm.data(); !slices.Equal(got, []string{"x"}) {
		t.Fatalf("applied %v", got)
	}
}

func TestProposeTooLarge(t *testing.T) {
	n, _ := single(t, vfs.NewMem(), 1000)
	if _, err := n.Propose(context.Background(), make([]byte, MaxProposalSize+1)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Propose: %v, want ErrTooLarge", err)
	}
}

// TestDiskFailureStops checks that a node that cannot sync stops rather
// than acknowledge what is not durable.
func TestDiskFailureStops(t *testing.T) {
	ffs := vfs.NewFault(vfs.NewMem())
	n, _ := single(t, ffs, 1000)
	propose(t, n, "ok")
	ffs.SetSyncError(errors.New("disk on fire"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := n.Propose(ctx, []byte("lost"))
	if !errors.Is(err, ErrStopped) || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("Propose: %v, want ErrStopped with the cause", err)
	}
	select {
	case <-n.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("Done not closed")
	}
	if err := n.Close(); err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("Close: %v, want the cause", err)
	}
}

// TestEnvelopeMatchesOnlyItsStart checks that an entry reaches a waiting
// Propose only when it carries this node's ID and this Start's nonce: a
// restarted node numbers its proposals from 1 again, and an entry
// proposed before the restart must not complete a new proposal.
func TestEnvelopeMatchesOnlyItsStart(t *testing.T) {
	sm := &testSM{}
	n := &Node{id: 1, nonce: 42, sm: sm, log: testLog(t), proposals: map[uint64]chan any{}}
	ch := make(chan any, 1)
	n.proposals[7] = ch
	for i, e := range []envelope{
		{node: 1, nonce: 41, seq: 7, data: []byte("before the restart")},
		{node: 2, nonce: 42, seq: 7, data: []byte("another node's")},
	} {
		n.applyNormal(&raftpb.Entry{Index: uint64(i + 1), Data: e.marshal()})
		select {
		case res := <-ch:
			t.Fatalf("entry %q completed proposal 7 with %v", e.data, res)
		default:
		}
	}
	n.applyNormal(&raftpb.Entry{Index: 3, Data: envelope{node: 1, nonce: 42, seq: 7, data: []byte("mine")}.marshal()})
	if res := <-ch; res != uint64(3) {
		t.Fatalf("result %v, want 3", res)
	}
	if got := sm.data(); !slices.Equal(got, []string{"before the restart", "another node's", "mine"}) {
		t.Fatalf("applied %v", got)
	}
}
