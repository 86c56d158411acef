package group

import (
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Leadership tests: the coordinator is started with no partition of its
// own (another broker leads them all), and partitions move with Elect
// and Resign, as a cluster's leader election moves them.

const leadershipParts = 5

func noneOwned(int32) bool { return false }

// newLeaderEnv returns a started coordinator over log that owns no
// partition.
func newLeaderEnv(t *testing.T, log *memLog) *coordEnv {
	t.Helper()
	e := newCoordEnv(t, log, false)
	e.c.Start(leadershipParts, noneOwned)
	return e
}

func (e *coordEnv) fetchResult(group, topic string, p int32) FetchResult {
	e.t.Helper()
	cb, wait := await[FetchResult](e.t)
	e.c.Fetch(group, FetchRequest{Topics: []FetchTopic{{Topic: topic, Partitions: []int32{p}}}}, cb)
	return wait()
}

func (e *coordEnv) heartbeat(group, member string, gen int32) *kerr.Error {
	e.t.Helper()
	cb, wait := await[*kerr.Error](e.t)
	e.c.Heartbeat(group, HeartbeatRequest{MemberID: member, Generation: gen}, cb)
	return wait()
}

// elect elects the partition of group and waits until it is loaded.
func (e *coordEnv) elect(group string, epoch int32) {
	e.t.Helper()
	e.c.Elect(PartitionFor(group, leadershipParts), epoch)
	e.waitLoaded()
}

func (l *memLog) replayCount(p int32) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.replays[p]
}

func (l *memLog) appendCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.appends
}

// liveTimers counts the clock's timers that may still fire.
func (c *manualClock) liveTimers() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, t := range c.timers {
		if !t.stopped {
			n++
		}
	}
	return n
}

// TestElectLoadsOffsets: a partition another coordinator wrote is
// served once this one is elected its leader, committed offsets and
// stable members included.
func TestElectLoadsOffsets(t *testing.T) {
	log := newMemLog()
	first := newCoordEnv(t, log, true)
	ids, gen := first.form("g", 2)
	if err := first.commit("g", ids[0], gen, "t", 0, 42, "m"); err != nil {
		t.Fatal(err)
	}
	first.c.Close()

	e := newLeaderEnv(t, log)
	e.waitLoaded()
	if r := e.fetchResult("g", "t", 0); r.Err != kerr.NotCoordinator {
		t.Fatalf("fetch before Elect: %v", r.Err)
	}
	e.elect("g", 1)
	if p := e.fetch("g", "t", 0); p.Offset != 42 || p.Metadata != "m" {
		t.Fatalf("offset after Elect: %+v", p)
	}
	if d := e.describe("g"); d.State != Stable || len(d.Members) != 2 {
		t.Fatalf("group after Elect: %+v", d)
	}
	for _, id := range ids {
		if err := e.heartbeat("g", id, gen); err != nil {
			t.Fatalf("heartbeat after Elect: %v", err)
		}
	}
	// The loaded members' sessions run: without heartbeats they
	// expire.
	e.advance(11 * time.Second)
	if d := e.describe("g"); d.State != Empty {
		t.Fatalf("after the session timeout: %v", d.State)
	}
	// Other partitions stay another broker's.
	for g := range []int{0, 1, 2, 3, 4, 5, 6, 7} {
		id := string(rune('a' + g))
		if PartitionFor(id, leadershipParts) == PartitionFor("g", leadershipParts) {
			continue
		}
		if r := e.fetchResult(id, "t", 0); r.Err != kerr.NotCoordinator {
			t.Fatalf("group %s of a foreign partition: %v", id, r.Err)
		}
	}
}

// TestResignDropsGroups: Resign answers what waits (a parked join, a
// commit whose write is in flight) NOT_COORDINATOR, refuses the group's
// requests, and stops its timers: the members that stop heartbeating
// do not expire here (the next coordinator's business); the write's
// late completion is ignored.
func TestResignDropsGroups(t *testing.T) {
	log := newMemLog()
	e := newLeaderEnv(t, log)
	e.elect("g", 1)
	ids, gen := e.form("g", 2)
	if err := e.commit("g", ids[0], gen, "t", 0, 1, ""); err != nil {
		t.Fatal(err)
	}

	// A new member's join parks (the others have not rejoined).
	cb, wait := await[JoinResult](t)
	e.c.Join("g", joinReq(""), cb)
	newID := wait().MemberID
	jcb, jwait := await[JoinResult](t)
	e.c.Join("g", joinReq(newID), jcb)
	if d := e.describe("g"); d.State != PreparingRebalance {
		t.Fatalf("state %v, want a rebalance in progress", d.State)
	}
	// A commit's write (of an offsets-only group of the partition) is
	// held by the log.
	log.mu.Lock()
	log.hold = true
	log.mu.Unlock()
	t.Cleanup(log.release) // before Close, should the test stop early
	simple := groupIn(PartitionFor("g", leadershipParts), "g")
	ccb, cwait := await[CommitResult](t)
	e.c.Commit(simple, CommitRequest{Generation: -1, RetentionTime: -1, Topics: []CommitTopic{{
		Topic: "t", Partitions: []CommitPartition{{Partition: 1, Offset: 9, LeaderEpoch: -1}},
	}}}, false, ccb)
	deadline := time.Now().Add(5 * time.Second)
	for func() bool { log.mu.Lock(); defer log.mu.Unlock(); return len(log.held) == 0 }() {
		if time.Now().After(deadline) {
			t.Fatal("commit never reached the log")
		}
		time.Sleep(time.Millisecond)
	}

	e.c.Resign(PartitionFor("g", leadershipParts), 2)
	if r := jwait(); r.Err != kerr.NotCoordinator {
		t.Fatalf("parked join after Resign: %v", r.Err)
	}
	if r := cwait(); r.Topics[0][0] != kerr.NotCoordinator {
		t.Fatalf("commit in flight after Resign: %v", r.Topics[0][0])
	}
	if err := e.heartbeat("g", ids[0], gen); err != kerr.NotCoordinator {
		t.Fatalf("heartbeat after Resign: %v", err)
	}
	if err := e.commit("g", ids[0], gen, "t", 0, 2, ""); err != kerr.NotCoordinator {
		t.Fatalf("commit after Resign: %v", err)
	}
	if r := e.fetchResult("g", "t", 0); r.Err != kerr.NotCoordinator {
		t.Fatalf("fetch after Resign: %v", r.Err)
	}
	if d := e.describe("g"); d.Err != kerr.NotCoordinator {
		t.Fatalf("describe after Resign: %v", d.Err)
	}
	if groups, err := e.c.List(); err != nil || len(groups) != 0 {
		t.Fatalf("list after Resign: %+v %v", groups, err)
	}
	if r := e.fetchResult(simple, "t", 1); r.Err != kerr.NotCoordinator {
		t.Fatalf("fetch of the offsets-only group after Resign: %v", r.Err)
	}
	// The held write completes now: ignored (the commit was answered).
	log.release()

	// No timer of the group is left (only the offset-expiry sweep),
	// and time passing past every session, rebalance and join timeout
	// writes nothing.
	appends := log.appendCount()
	e.advance(0)
	if n := e.clock.liveTimers(); n != 1 {
		t.Fatalf("%d live timers after Resign, want only the expiry sweep", n)
	}
	for range 4 {
		e.advance(2 * time.Minute)
	}
	if n := log.appendCount(); n != appends {
		t.Fatalf("%d appends after Resign", n-appends)
	}

	// Elected again: the group is as the log has it, its members
	// carrying on with their generation.
	e.elect("g", 3)
	if d := e.describe("g"); d.State != Stable || len(d.Members) != 2 {
		t.Fatalf("group after re-Elect: %+v", d)
	}
	for _, id := range ids {
		if err := e.heartbeat("g", id, gen); err != nil {
			t.Fatalf("heartbeat after re-Elect: %v", err)
		}
	}
	if p := e.fetch("g", "t", 0); p.Offset != 1 {
		t.Fatalf("offset after re-Elect: %+v", p)
	}
	// The commit answered NOT_COORDINATOR had reached the log before
	// the Resign: it is there, as in Kafka (the client retries it).
	if p := e.fetch(simple, "t", 1); p.Offset != 9 {
		t.Fatalf("offset of the commit in flight after re-Elect: %+v", p)
	}
}

// groupIn returns a group ID other than not in __consumer_offsets
// partition p.
func groupIn(p int32, not string) string {
	for i := 0; ; i++ {
		id := "group-" + string(rune('a'+i%26)) + string(rune('a'+i/26%26))
		if id != not && PartitionFor(id, leadershipParts) == p {
			return id
		}
	}
}

// TestResignAnswersParkedSync: a follower's SyncGroup waiting for the
// leader's assignment is answered NOT_COORDINATOR.
func TestResignAnswersParkedSync(t *testing.T) {
	e := newLeaderEnv(t, newMemLog())
	e.elect("g", 1)
	var ids []string
	var waits []func() JoinResult
	for range 2 {
		cb, wait := await[JoinResult](t)
		e.c.Join("g", joinReq(""), cb)
		id := wait().MemberID
		ids = append(ids, id)
		cb, wait = await[JoinResult](t)
		e.c.Join("g", joinReq(id), cb)
		waits = append(waits, wait)
	}
	for e.describe("g").State == PreparingRebalance {
		e.advance(time.Second)
	}
	var follower string
	var gen int32
	for i, w := range waits {
		r := w()
		gen = r.Generation
		if r.Leader != r.MemberID {
			follower = ids[i]
		}
	}
	scb, swait := await[SyncResult](t)
	e.c.Sync("g", SyncRequest{MemberID: follower, Generation: gen}, scb)
	e.describe("g") // the sync is parked
	e.c.Resign(PartitionFor("g", leadershipParts), 1)
	if r := swait(); r.Err != kerr.NotCoordinator {
		t.Fatalf("parked sync after Resign: %v", r.Err)
	}
}

// TestLeadershipMoves: two coordinators over one log, as two brokers
// over a replicated partition: leadership moves from one to the other
// and back, and each load reads what the other wrote meanwhile
// (offsets committed after this coordinator's first load included).
func TestLeadershipMoves(t *testing.T) {
	log := newMemLog()
	a, b := newLeaderEnv(t, log), newLeaderEnv(t, log)
	p := PartitionFor("g", leadershipParts)

	a.elect("g", 1)
	if err := a.commit("g", "", -1, "t", 0, 1, "a"); err != nil {
		t.Fatal(err)
	}
	a.c.Resign(p, 2)
	b.elect("g", 2)
	if got := b.fetch("g", "t", 0); got.Offset != 1 {
		t.Fatalf("b after the move: %+v", got)
	}
	if err := b.commit("g", "", -1, "t", 0, 2, "b"); err != nil {
		t.Fatal(err)
	}
	if err := b.commit("g", "", -1, "t", 1, 7, "b"); err != nil {
		t.Fatal(err)
	}
	if r := a.fetchResult("g", "t", 0); r.Err != kerr.NotCoordinator {
		t.Fatalf("a while b leads: %v", r.Err)
	}
	b.c.Resign(p, 3)
	a.elect("g", 3)
	if got := a.fetch("g", "t", 0); got.Offset != 2 || got.Metadata != "b" {
		t.Fatalf("a after the move back: %+v", got)
	}
	if got := a.fetch("g", "t", 1); got.Offset != 7 {
		t.Fatalf("a after the move back, partition 1: %+v", got)
	}

	// A newer Elect while loaded (no Resign between, as when this
	// broker missed a leadership in between): what a held is dropped
	// and the log, grown meanwhile, loaded again.
	cb, wait := await[JoinResult](t)
	a.c.Join("g", joinReq(""), cb)
	id := wait().MemberID
	jcb, jwait := await[JoinResult](t)
	a.c.Join("g", joinReq(id), jcb)
	a.describe("g") // the join is parked (initial rebalance delay)
	b.elect("g", 4)
	if err := b.commit("g", "", -1, "t", 0, 3, "b"); err != nil {
		t.Fatal(err)
	}
	a.elect("g", 5)
	if r := jwait(); r.Err != kerr.NotCoordinator {
		t.Fatalf("join parked before the reload: %v", r.Err)
	}
	if got := a.fetch("g", "t", 0); got.Offset != 3 {
		t.Fatalf("a after reloading at epoch 5: %+v", got)
	}
}

// TestStaleLeadershipIgnored: an Elect not newer than the last Elect
// or Resign, and a Resign older than it, change nothing.
func TestStaleLeadershipIgnored(t *testing.T) {
	log := newMemLog()
	e := newLeaderEnv(t, log)
	p := PartitionFor("g", leadershipParts)
	e.elect("g", 5)
	if err := e.commit("g", "", -1, "t", 0, 3, ""); err != nil {
		t.Fatal(err)
	}
	replays := log.replayCount(p)

	e.c.Elect(p, 5)
	e.c.Elect(p, 4)
	e.c.Resign(p, 4)
	if got := e.fetch("g", "t", 0); got.Offset != 3 {
		t.Fatalf("after stale changes: %+v", got)
	}
	if n := log.replayCount(p); n != replays {
		t.Fatalf("a stale Elect reloaded (%d replays, had %d)", n, replays)
	}

	e.c.Resign(p, 6)
	e.c.Elect(p, 6) // not newer than the Resign
	e.c.Resign(p, 5)
	e.waitLoaded()
	if r := e.fetchResult("g", "t", 0); r.Err != kerr.NotCoordinator {
		t.Fatalf("after Resign(6) and stale changes: %v", r.Err)
	}
	e.elect("g", 7)
	if got := e.fetch("g", "t", 0); got.Offset != 3 {
		t.Fatalf("after Elect(7): %+v", got)
	}
}

// TestElectDuringLoad: changes of leadership while a load is in
// progress: the partition is loading until the newest leadership's load
// installs; a Resign during a load leaves nothing installed by it.
func TestElectDuringLoad(t *testing.T) {
	log := newMemLog()
	p := PartitionFor("g", leadershipParts)
	// Start's loaders (4 for 5 partitions) take partitions in order:
	// the first is surely claimed by one of them.
	other := int32(0)
	if p == other {
		t.Fatal("test needs g outside partition 0")
	}
	otherGroup := groupIn(other, "")
	first := newCoordEnv(t, log, true)
	for _, g := range []string{"g", otherGroup} {
		if err := first.commit(g, "", -1, "t", 0, 11, ""); err != nil {
			t.Fatal(err)
		}
	}
	first.c.Close()

	log.replayC = make(chan struct{})
	e := newCoordEnv(t, log, false)
	var once sync.Once
	unhold := func() { once.Do(func() { close(log.replayC) }) }
	// Before Close: the held loads must finish.
	t.Cleanup(unhold)
	e.c.Start(leadershipParts, nil) // loads held
	e.c.Elect(p, 1)
	if r := e.fetchResult("g", "t", 0); r.Err != kerr.CoordinatorLoadInProgress {
		t.Fatalf("fetch while loading: %v", r.Err)
	}
	e.c.Elect(p, 2)
	if r := e.fetchResult("g", "t", 0); r.Err != kerr.CoordinatorLoadInProgress {
		t.Fatalf("fetch while loading again: %v", r.Err)
	}
	// Another partition: resigned while its load is held.
	deadline := time.Now().Add(5 * time.Second)
	for func() bool { log.mu.Lock(); defer log.mu.Unlock(); return log.waiting[other] == 0 }() {
		if time.Now().After(deadline) {
			t.Fatal("the load of the other partition never started")
		}
		time.Sleep(time.Millisecond)
	}
	e.c.Resign(other, 1)
	if r := e.fetchResult(otherGroup, "t", 0); r.Err != kerr.NotCoordinator {
		t.Fatalf("group of the resigned partition: %v", r.Err)
	}
	unhold()
	e.waitLoaded()
	// Let every load finish: the stale ones stop or discard.
	e.advance(0)
	if got := e.fetch("g", "t", 0); got.Offset != 11 {
		t.Fatalf("after the loads: %+v", got)
	}
	// The held load of the resigned partition installed nothing.
	if r := e.fetchResult(otherGroup, "t", 0); r.Err != kerr.NotCoordinator {
		t.Fatalf("group of the resigned partition: %v", r.Err)
	}
	groups, err := e.c.List()
	if err != nil || len(groups) != 1 || groups[0].Group != "g" {
		t.Fatalf("list: %+v %v, want g alone", groups, err)
	}
}

// TestLeadershipBeforeStart: Elect and Resign before Start decide the
// partitions they name, whatever owned says.
func TestLeadershipBeforeStart(t *testing.T) {
	log := newMemLog()
	first := newCoordEnv(t, log, true)
	if err := first.commit("g", "", -1, "t", 0, 5, ""); err != nil {
		t.Fatal(err)
	}
	if err := first.commit("h", "", -1, "t", 0, 6, ""); err != nil {
		t.Fatal(err)
	}
	first.c.Close()
	pg, ph := PartitionFor("g", leadershipParts), PartitionFor("h", leadershipParts)
	if pg == ph {
		t.Fatal("test needs g and h in different partitions")
	}

	e := newCoordEnv(t, log, false)
	e.c.Elect(pg, 2)
	e.c.Resign(pg, 1) // stale
	e.c.Resign(ph, 3)
	e.c.Elect(ph, 3) // not newer
	e.c.Start(leadershipParts, func(i int32) bool { return i == ph })
	e.waitLoaded()
	if got := e.fetch("g", "t", 0); got.Offset != 5 {
		t.Fatalf("elected before Start: %+v", got)
	}
	if r := e.fetchResult("h", "t", 0); r.Err != kerr.NotCoordinator {
		t.Fatalf("resigned before Start: %v", r.Err)
	}
	// The epochs given before Start still count.
	e.c.Elect(pg, 2)
	e.c.Elect(ph, 3)
	e.waitLoaded()
	if r := e.fetchResult("h", "t", 0); r.Err != kerr.NotCoordinator {
		t.Fatalf("stale Elect after Start: %v", r.Err)
	}
	e.elect("h", 4)
	if got := e.fetch("h", "t", 0); got.Offset != 6 {
		t.Fatalf("elected after Start: %+v", got)
	}
}
