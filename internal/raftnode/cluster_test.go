package raftnode

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"
)

// others returns ids without id.
func others(ids []uint64, id uint64) []uint64 {
	return slices.DeleteFunc(slices.Clone(ids), func(x uint64) bool { return x == id })
}

func TestClusterProposeEverywhere(t *testing.T) {
	c := newCluster(t, 3, 1000)
	leader := c.waitLeader()
	seen := map[uint64]string{}
	for i := range 10 {
		for _, id := range c.ids {
			data := fmt.Sprintf("n%d-%d", id, i)
			index := c.mustPropose(id, data)
			if prev, ok := seen[index]; ok {
				t.Fatalf("index %d returned for %q and %q", index, prev, data)
			}
			seen[index] = data
		}
	}
	got := c.converge()
	if len(got) != 30 {
		t.Fatalf("applied %d entries, want 30", len(got))
	}
	for _, a := range got {
		if seen[a.Index] != a.Data {
			t.Fatalf("entry %d is %q, but Propose of %q returned it", a.Index, a.Data, seen[a.Index])
		}
	}
	// A follower's barrier sees everything committed before it.
	f := others(c.ids, leader)[0]
	index := c.mustPropose(leader, "last")
	if err := c.node(f).Barrier(context.Background()); err != nil {
		t.Fatal(err)
	}
	if e, _ := c.stateMachine(f).state(); e[len(e)-1].Index < index {
		t.Fatalf("after Barrier follower applied up to %d, want %d", e[len(e)-1].Index, index)
	}
}

func TestClusterLeaderFailover(t *testing.T) {
	c := newCluster(t, 3, 1000)
	old := c.waitLeader()
	for i := range 5 {
		c.mustPropose(c.ids[i%3], fmt.Sprintf("before-%d", i))
	}
	c.stop(old)
	leader := c.waitLeader(old)
	for i, id := range others(c.ids, old) {
		c.mustPropose(id, fmt.Sprintf("during-%d", i))
	}
	if leader == old {
		t.Fatal("stopped leader still leads")
	}
	c.start(old)
	c.mustPropose(old, "after")
	got := c.converge()
	if len(got) != 8 {
		t.Fatalf("applied %v, want 8 entries", got)
	}
}

func TestClusterSnapshotCatchUp(t *testing.T) {
	c := newCluster(t, 3, 10)
	leader := c.waitLeader()
	lagging := others(c.ids, leader)[0]
	c.mustPropose(leader, "first")
	c.net.isolate(lagging, c.ids)
	for i := range 50 {
		c.mustPropose(leader, fmt.Sprintf("e%d", i))
	}
	c.net.heal()
	got := c.converge()
	if len(got) != 51 {
		t.Fatalf("applied %d entries, want 51", len(got))
	}
	if r := c.stateMachine(lagging).restores; r == 0 {
		t.Fatal("the lagging follower caught up without a snapshot; the test did not test")
	}
	// It restarts from its own snapshot and WAL.
	c.stop(lagging)
	c.start(lagging)
	if got2, _ := c.stateMachine(lagging).state(); !slices.Equal(got2, got) {
		t.Fatalf("after restart applied %v, want %v", got2, got)
	}
}

func TestClusterMinorityLeader(t *testing.T) {
	c := newCluster(t, 3, 1000)
	old := c.waitLeader()
	c.mustPropose(old, "committed")
	c.net.isolate(old, c.ids)
	// The old leader cannot commit: its proposal times out.
	if _, err := c.propose(old, "lost", 500*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("propose on an isolated leader: %v, want DeadlineExceeded", err)
	}
	leader := c.waitLeader(old)
	c.mustPropose(leader, "majority")
	// A minority's barrier cannot complete either.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := c.node(old).Barrier(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("barrier on an isolated node: %v, want DeadlineExceeded", err)
	}
	c.net.heal()
	got := c.converge()
	var data []string
	for _, a := range got {
		data = append(data, a.Data)
	}
	if !slices.Equal(data, []string{"committed", "majority"}) {
		t.Fatalf("applied %v, want [committed majority]", data)
	}
}

// TestClusterClose checks that Close releases a Propose that cannot
// commit.
func TestClusterClose(t *testing.T) {
	c := newCluster(t, 3, 1000)
	leader := c.waitLeader()
	c.mustPropose(leader, "x")
	for _, id := range others(c.ids, leader) {
		c.stop(id)
	}
	n := c.node(leader)
	errc := make(chan error, 1)
	go func() {
		_, err := n.Propose(context.Background(), []byte("stuck"))
		errc <- err
	}()
	time.Sleep(50 * time.Millisecond)
	c.stop(leader)
	select {
	case err := <-errc:
		if !errors.Is(err, ErrStopped) {
			t.Fatalf("Propose: %v, want ErrStopped", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Propose still waiting after Close")
	}
}

// TestClusterLastHeard: the leader hears from every running voter every
// tick (their heartbeat answers), so LastHeard of a stopped voter stops
// advancing while the others' keep advancing, and resumes once it is
// back. LeaderSince is set on the leader only, and moves with the
// leadership.
func TestClusterLastHeard(t *testing.T) {
	c := newCluster(t, 3, 1000)
	start := time.Now()
	leader := c.waitLeader()
	n := c.node(leader)
	if since := n.LeaderSince(); since.IsZero() || since.Before(start) || since.After(time.Now()) {
		t.Fatalf("leader's LeaderSince %v, want between the start %v and now", since, start)
	}
	for _, id := range others(c.ids, leader) {
		if since := c.node(id).LeaderSince(); !since.IsZero() {
			t.Errorf("follower %d: LeaderSince %v, want zero", id, since)
		}
	}
	if d := time.Since(n.LastHeard(leader)); d < 0 || d > time.Second {
		t.Errorf("LastHeard of the node itself is %v old, want now", d)
	}
	if h := n.LastHeard(99); !h.IsZero() {
		t.Errorf("LastHeard of a node that is no voter: %v, want zero", h)
	}
	// fresh waits until the leader heard from id within d.
	fresh := func(id uint64, d time.Duration) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for time.Since(n.LastHeard(id)) > d {
			if time.Now().After(deadline) {
				t.Fatalf("leader last heard from %d at %v, want within %v", id, n.LastHeard(id), d)
			}
			time.Sleep(testTick)
		}
	}
	for _, id := range others(c.ids, leader) {
		fresh(id, 5*testTick)
	}

	stopped, alive := others(c.ids, leader)[0], others(c.ids, leader)[1]
	c.stop(stopped)
	time.Sleep(5 * testTick) // messages already on their way arrive
	heardStopped, heardAlive := n.LastHeard(stopped), n.LastHeard(alive)
	time.Sleep(30 * testTick)
	if h := n.LastHeard(stopped); !h.Equal(heardStopped) {
		t.Errorf("LastHeard of a stopped node moved from %v to %v", heardStopped, h)
	}
	if h := n.LastHeard(alive); !h.After(heardAlive) {
		t.Errorf("LastHeard of a running node stayed at %v", heardAlive)
	}
	if n.Leader() != leader {
		t.Fatalf("leadership moved from %d to %d with a quorum up; the test did not test", leader, n.Leader())
	}
	c.start(stopped)
	fresh(stopped, 5*testTick)

	// A new leader's LeaderSince is its own election's.
	stoppedLeader := time.Now()
	c.stop(leader)
	next := c.waitLeader(leader)
	if since := c.node(next).LeaderSince(); since.Before(stoppedLeader) {
		t.Errorf("new leader %d: LeaderSince %v, before the old leader stopped (%v)", next, since, stoppedLeader)
	}
}
