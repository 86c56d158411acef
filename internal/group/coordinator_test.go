package group

import (
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/gregor-streaming/gregor/internal/batch"
)

// memLog is an in-memory Log. Appends are durable at once unless hold
// is set; then they wait for release.
type memLog struct {
	mu      sync.Mutex
	parts   map[int32][][]byte
	hold    bool
	held    []func()
	replayC chan struct{} // when set, Replay waits for it to close
	fail    error
	appends int
	replays map[int32]int
	// waiting counts the replays of each partition that waited for
	// replayC.
	waiting map[int32]int
}

func newMemLog() *memLog { return &memLog{parts: map[int32][][]byte{}} }

func (l *memLog) Append(p int32, b []byte, done func(error)) {
	if _, err := batch.Validate(b); err != nil {
		panic(fmt.Sprintf("coordinator appended an invalid batch: %v", err))
	}
	l.mu.Lock()
	l.appends++
	if l.fail != nil {
		err := l.fail
		l.mu.Unlock()
		go done(err)
		return
	}
	// Offsets as a log assigns them (transactional commits are
	// ordered by them on load).
	off := int64(0)
	for _, prev := range l.parts[p] {
		h, _ := batch.ParseHeader(prev)
		off = h.NextOffset()
	}
	b = append([]byte(nil), b...)
	batch.SetBaseOffset(b, off)
	l.parts[p] = append(l.parts[p], b)
	if l.hold {
		l.held = append(l.held, func() { done(nil) })
		l.mu.Unlock()
		return
	}
	l.mu.Unlock()
	// Complete on another goroutine, as the broker's syncer does.
	go done(nil)
}

func (l *memLog) release() {
	l.mu.Lock()
	held := l.held
	l.held, l.hold = nil, false
	l.mu.Unlock()
	for _, f := range held {
		f()
	}
}

func (l *memLog) Replay(p int32, fn func([]byte) error) error {
	l.mu.Lock()
	c := l.replayC
	if c != nil {
		if l.waiting == nil {
			l.waiting = map[int32]int{}
		}
		l.waiting[p]++
	}
	l.mu.Unlock()
	if c != nil {
		<-c
	}
	l.mu.Lock()
	bs := slices.Clone(l.parts[p])
	if l.replays == nil {
		l.replays = map[int32]int{}
	}
	l.replays[p]++
	l.mu.Unlock()
	for _, b := range bs {
		if err := fn(b); err != nil {
			return err
		}
	}
	return nil
}

// manualClock fires AfterFunc callbacks when Advance passes them.
type manualClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*manualTimer
}

type manualTimer struct {
	c       *manualClock
	at      time.Time
	f       func()
	stopped bool
}

func (t *manualTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := !t.stopped
	t.stopped = true
	return was
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) AfterFunc(d time.Duration, f func()) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &manualTimer{c: c, at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return t
}

// Advance moves time forward and runs due callbacks.
func (c *manualClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var due []*manualTimer
	keep := c.timers[:0]
	for _, t := range c.timers {
		switch {
		case t.stopped:
		case !t.at.After(c.now):
			t.stopped = true
			due = append(due, t)
		default:
			keep = append(keep, t)
		}
	}
	c.timers = keep
	c.mu.Unlock()
	for _, t := range due {
		t.f()
	}
}

type coordEnv struct {
	t     testing.TB
	log   *memLog
	clock *manualClock
	c     *Coordinator
}

func testConfig() Config {
	cfg := DefaultConfig()
	cfg.InitialRebalanceDelay = time.Second
	cfg.MinSessionTimeout = time.Second
	return cfg
}

func newCoordEnv(t testing.TB, log *memLog, start bool) *coordEnv {
	t.Helper()
	e := &coordEnv{t: t, log: log, clock: &manualClock{now: scriptStart}}
	e.c = New(Options{Config: testConfig(), Log: log, Clock: e.clock, Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	t.Cleanup(e.c.Close)
	if start {
		e.c.Start(5, nil)
		e.waitLoaded()
	}
	return e
}

// advance moves the manual clock once the coordinator is idle. A mailbox
// still settling arms its next timer with a duration computed from the
// time it read before: if the clock moved in between, the manual timer
// lands that much later than the deadline, and a test that advances
// exactly to the deadline waits forever (TestCoordinatorWriteFailure
// failed so under load). A real clock only fires such a timer late.
func (e *coordEnv) advance(d time.Duration) {
	e.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for e.c.busy.Count() != 0 {
		if time.Now().After(deadline) {
			e.t.Fatal("coordinator never idle")
		}
		time.Sleep(50 * time.Microsecond)
	}
	e.clock.Advance(d)
}

func (e *coordEnv) waitLoaded() {
	e.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		ok := true
		for _, sh := range e.c.shards.Load() {
			ok = ok && sh.Loaded()
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatal("partitions not loaded")
		}
		time.Sleep(time.Millisecond)
	}
}

// await returns a callback and a function that waits for its value.
func await[T any](t testing.TB) (func(T), func() T) {
	ch := make(chan T, 1)
	return func(v T) { ch <- v }, func() T {
		t.Helper()
		select {
		case v := <-ch:
			return v
		case <-time.After(5 * time.Second):
			t.Fatal("no response")
			panic("unreachable")
		}
	}
}

func joinReq(member string) JoinRequest {
	return JoinRequest{
		MemberID: member, ClientID: "c", ProtocolType: ConsumerProtocolType,
		Protocols:      []Protocol{{Name: "range", Metadata: []byte{0, 0, 0, 0, 0, 1, 0, 1, 't'}}},
		SessionTimeout: 10 * time.Second, RebalanceTimeout: 10 * time.Second, RequireKnownMemberID: true,
	}
}

// form makes a stable group of n members and returns their IDs and the
// generation.
func (e *coordEnv) form(group string, n int) ([]string, int32) {
	e.t.Helper()
	var ids []string
	var waits []func() JoinResult
	for range n {
		cb, wait := await[JoinResult](e.t)
		e.c.Join(group, joinReq(""), cb)
		r := wait()
		if r.Err != kerr.MemberIDRequired {
			e.t.Fatalf("first join: %v", r.Err)
		}
		ids = append(ids, r.MemberID)
		cb, wait = await[JoinResult](e.t)
		e.c.Join(group, joinReq(r.MemberID), cb)
		waits = append(waits, wait)
	}
	// Requests are queued to the group's mailbox: a describe answered
	// means the joins before it ran. Then the initial rebalance delay
	// elapses (extended while members kept joining).
	for e.describe(group).State == PreparingRebalance {
		e.advance(time.Second)
	}
	var gen int32
	assign := map[string][]byte{}
	for i, w := range waits {
		r := w()
		if r.Err != nil {
			e.t.Fatalf("join %d: %v", i, r.Err)
		}
		gen = r.Generation
		if r.Leader == r.MemberID {
			for _, m := range r.Members {
				assign[m.MemberID] = []byte("for " + m.MemberID)
			}
		}
	}
	var syncs []func() SyncResult
	for _, id := range ids {
		cb, wait := await[SyncResult](e.t)
		e.c.Sync(group, SyncRequest{MemberID: id, Generation: gen, Assignments: assign}, cb)
		syncs = append(syncs, wait)
	}
	for i, w := range syncs {
		r := w()
		if r.Err != nil || string(r.Assignment) != "for "+ids[i] {
			e.t.Fatalf("sync %d: %v %q", i, r.Err, r.Assignment)
		}
	}
	return ids, gen
}

func (e *coordEnv) commit(group, member string, gen int32, topic string, p int32, off int64, meta string) *kerr.Error {
	e.t.Helper()
	cb, wait := await[CommitResult](e.t)
	e.c.Commit(group, CommitRequest{MemberID: member, Generation: gen, RetentionTime: -1, Topics: []CommitTopic{{
		Topic: topic, Partitions: []CommitPartition{{Partition: p, Offset: off, LeaderEpoch: -1, Metadata: meta}},
	}}}, false, cb)
	return wait().Topics[0][0]
}

func (e *coordEnv) fetch(group, topic string, p int32) FetchPartition {
	e.t.Helper()
	cb, wait := await[FetchResult](e.t)
	e.c.Fetch(group, FetchRequest{Topics: []FetchTopic{{Topic: topic, Partitions: []int32{p}}}}, cb)
	r := wait()
	if r.Err != nil {
		e.t.Fatalf("fetch: %v", r.Err)
	}
	return r.Topics[0].Partitions[0]
}

func (e *coordEnv) describe(group string) DescribedGroup {
	e.t.Helper()
	cb, wait := await[DescribedGroup](e.t)
	e.c.Describe(group, cb)
	return wait()
}

func TestCoordinatorGroupLifecycle(t *testing.T) {
	e := newCoordEnv(t, newMemLog(), true)
	ids, gen := e.form("g", 3)
	if gen != 1 {
		t.Fatalf("generation %d", gen)
	}
	if err := e.commit("g", ids[0], gen, "t", 0, 5, "meta"); err != nil {
		t.Fatal(err)
	}
	if p := e.fetch("g", "t", 0); p.Offset != 5 || p.Metadata != "meta" {
		t.Fatalf("fetch %+v", p)
	}
	if p := e.fetch("unknown", "t", 0); p.Offset != -1 || p.Err != nil {
		t.Fatalf("unknown group: %+v", p)
	}
	d := e.describe("g")
	if d.State != Stable || len(d.Members) != 3 || d.Protocol != "range" {
		t.Fatalf("describe %+v", d)
	}
	groups, err := e.c.List()
	if err != nil || len(groups) != 1 || groups[0].State != Stable || groups[0].ProtocolType != ConsumerProtocolType {
		t.Fatalf("list %+v %v", groups, err)
	}
	// Member 2 stops heartbeating; the others keep going past its
	// session timeout, see a rebalance, and rejoin without it.
	for range 3 {
		e.advance(4 * time.Second)
		for _, id := range ids[:2] {
			cb, wait := await[*kerr.Error](t)
			e.c.Heartbeat("g", HeartbeatRequest{MemberID: id, Generation: gen}, cb)
			wait()
		}
	}
	if d := e.describe("g"); d.State != PreparingRebalance || len(d.Members) != 2 {
		t.Fatalf("after expiry: %v %d members", d.State, len(d.Members))
	}
	// Leave both: the group becomes Empty and can be deleted.
	cb, wait := await[LeaveResult](t)
	e.c.Leave("g", []LeaveMember{{MemberID: ids[0]}, {MemberID: ids[1]}}, cb)
	if r := wait(); r.Err != nil || r.Members[0] != nil || r.Members[1] != nil {
		t.Fatalf("leave %+v", r)
	}
	if d := e.describe("g"); d.State != Empty {
		t.Fatalf("after leave: %v", d.State)
	}
	dcb, dwait := await[*kerr.Error](t)
	e.c.Delete("g", dcb)
	if err := dwait(); err != nil {
		t.Fatal(err)
	}
	dcb, dwait = await[*kerr.Error](t)
	e.c.Delete("g", dcb)
	if err := dwait(); err != kerr.GroupIDNotFound {
		t.Fatalf("second delete: %v", err)
	}
	if p := e.fetch("g", "t", 0); p.Offset != -1 {
		t.Fatalf("offset after delete: %+v", p)
	}
}

// TestCoordinatorReload replays a coordinator's writes into a new one:
// members, generation, assignments and offsets survive.
func TestCoordinatorReload(t *testing.T) {
	log := newMemLog()
	e := newCoordEnv(t, log, true)
	ids, gen := e.form("g", 2)
	if err := e.commit("g", ids[1], gen, "t", 3, 99, "m"); err != nil {
		t.Fatal(err)
	}
	if err := e.commit("simple", "", -1, "t", 1, 7, ""); err != nil {
		t.Fatal(err)
	}
	e.c.Close()

	e2 := newCoordEnv(t, log, true)
	if p := e2.fetch("g", "t", 3); p.Offset != 99 || p.Metadata != "m" {
		t.Fatalf("reloaded offset %+v", p)
	}
	if p := e2.fetch("simple", "t", 1); p.Offset != 7 {
		t.Fatalf("reloaded simple offset %+v", p)
	}
	d := e2.describe("g")
	if d.State != Stable || len(d.Members) != 2 || string(d.Members[0].Assignment) != "for "+ids[0] {
		t.Fatalf("reloaded group %+v", d)
	}
	// The members carry on with their generation.
	for _, id := range ids {
		cb, wait := await[*kerr.Error](t)
		e2.c.Heartbeat("g", HeartbeatRequest{MemberID: id, Generation: gen}, cb)
		if err := wait(); err != nil {
			t.Fatalf("heartbeat after reload: %v", err)
		}
	}
	// Without heartbeats, the reloaded members expire.
	e2.advance(11 * time.Second)
	if d := e2.describe("g"); d.State != Empty {
		t.Fatalf("after session timeout: %v", d.State)
	}
}

func TestCoordinatorLoadInProgress(t *testing.T) {
	log := newMemLog()
	log.replayC = make(chan struct{})
	e := newCoordEnv(t, log, false)
	e.c.Start(5, nil)

	jcb, jwait := await[JoinResult](t)
	e.c.Join("g", joinReq(""), jcb)
	if r := jwait(); r.Err != kerr.CoordinatorLoadInProgress {
		t.Fatalf("join while loading: %v", r.Err)
	}
	hcb, hwait := await[*kerr.Error](t)
	e.c.Heartbeat("g", HeartbeatRequest{MemberID: "m", Generation: 1}, hcb)
	if err := hwait(); err != nil {
		t.Fatalf("heartbeat while loading: %v", err)
	}
	scb, swait := await[SyncResult](t)
	e.c.Sync("g", SyncRequest{MemberID: "m", Generation: 1}, scb)
	if r := swait(); r.Err != kerr.RebalanceInProgress {
		t.Fatalf("sync while loading: %v", r.Err)
	}
	fcb, fwait := await[FetchResult](t)
	e.c.Fetch("g", FetchRequest{}, fcb)
	if r := fwait(); r.Err != kerr.CoordinatorLoadInProgress {
		t.Fatalf("fetch while loading: %v", r.Err)
	}
	if _, err := e.c.List(); err != kerr.CoordinatorLoadInProgress {
		t.Fatalf("list while loading: %v", err)
	}
	close(log.replayC)
	e.waitLoaded()
	if p := e.fetch("g", "t", 0); p.Offset != -1 {
		t.Fatalf("after load %+v", p)
	}
}

func TestCoordinatorNotStarted(t *testing.T) {
	e := newCoordEnv(t, newMemLog(), false)
	cb, wait := await[JoinResult](t)
	e.c.Join("g", joinReq(""), cb)
	if r := wait(); r.Err != kerr.NotCoordinator {
		t.Fatalf("join before start: %v", r.Err)
	}
	cb, wait = await[JoinResult](t)
	e.c.Join("", joinReq(""), cb)
	if r := wait(); r.Err != kerr.InvalidGroupID {
		t.Fatalf("empty group id: %v", r.Err)
	}
}

// TestCoordinatorDrainAndClose: Drain answers parked joins; Close waits
// for writes in flight, whose requests are answered; afterwards
// everything is NOT_COORDINATOR.
func TestCoordinatorDrainAndClose(t *testing.T) {
	log := newMemLog()
	e := newCoordEnv(t, log, true)
	ids, gen := e.form("g", 1)

	// A second member parks its join (the first does not rejoin).
	cb, wait := await[JoinResult](t)
	e.c.Join("g", joinReq(""), cb)
	r := wait()
	jcb, jwait := await[JoinResult](t)
	e.c.Join("g", joinReq(r.MemberID), jcb)

	log.mu.Lock()
	log.hold = true
	log.mu.Unlock()
	ccb, cwait := await[CommitResult](t)
	e.c.Commit("g", CommitRequest{MemberID: ids[0], Generation: gen, RetentionTime: -1, Topics: []CommitTopic{{
		Topic: "t", Partitions: []CommitPartition{{Partition: 0, Offset: 1}},
	}}}, false, ccb)

	e.c.Drain()
	if r := jwait(); r.Err != kerr.NotCoordinator {
		t.Fatalf("parked join after drain: %v", r.Err)
	}
	closed := make(chan struct{})
	go func() {
		e.c.Close()
		close(closed)
	}()
	select {
	case <-closed:
		t.Fatal("Close returned with a write in flight")
	case <-time.After(50 * time.Millisecond):
	}
	log.release()
	if r := cwait(); r.Topics[0][0] != nil {
		t.Fatalf("commit: %v", r.Topics[0][0])
	}
	<-closed
	hcb, hwait := await[*kerr.Error](t)
	e.c.Heartbeat("g", HeartbeatRequest{MemberID: ids[0], Generation: gen}, hcb)
	if err := hwait(); err != kerr.NotCoordinator {
		t.Fatalf("after close: %v", err)
	}
}

// TestCoordinatorOffsetExpiry: the periodic sweep removes an empty
// group's offsets after the retention and then the group.
func TestCoordinatorOffsetExpiry(t *testing.T) {
	log := newMemLog()
	e := newCoordEnv(t, log, true)
	if err := e.commit("g", "", -1, "t", 0, 1, ""); err != nil {
		t.Fatal(err)
	}
	e.advance(DefaultConfig().OffsetsRetention - time.Minute)
	if p := e.fetch("g", "t", 0); p.Offset != 1 {
		t.Fatalf("expired early: %+v", p)
	}
	e.advance(10 * time.Minute)
	deadline := time.Now().Add(5 * time.Second)
	for e.fetch("g", "t", 0).Offset != -1 {
		if time.Now().After(deadline) {
			t.Fatal("offset did not expire")
		}
		time.Sleep(time.Millisecond)
	}
	for {
		groups, _ := e.c.List()
		if len(groups) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("group not removed: %+v", groups)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestCoordinatorConcurrent drives many groups from many goroutines
// (run with -race): no group sees another's state, and every commit is
// read back.
func TestCoordinatorConcurrent(t *testing.T) {
	e := newCoordEnv(t, newMemLog(), true)
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			group := fmt.Sprintf("g%d", i)
			for j := range 50 {
				cb, wait := await[CommitResult](t)
				e.c.Commit(group, CommitRequest{Generation: -1, RetentionTime: -1, Topics: []CommitTopic{{
					Topic: "t", Partitions: []CommitPartition{{Partition: int32(j % 3), Offset: int64(j)}},
				}}}, false, cb)
				if r := wait(); r.Topics[0][0] != nil {
					t.Errorf("%s commit %d: %v", group, j, r.Topics[0][0])
					return
				}
				fcb, fwait := await[FetchResult](t)
				e.c.Fetch(group, FetchRequest{Topics: []FetchTopic{{Topic: "t", Partitions: []int32{int32(j % 3)}}}}, fcb)
				if p := fwait().Topics[0].Partitions[0]; p.Offset != int64(j) {
					t.Errorf("%s fetch %d: %+v", group, j, p)
					return
				}
			}
		}()
	}
	wg.Wait()
	groups, err := e.c.List()
	if err != nil || len(groups) != 16 {
		t.Fatalf("list: %d groups, %v", len(groups), err)
	}
}

// TestCoordinatorWriteFailure: a failed metadata write fails SyncGroup
// with the mapped error and the group rebalances.
func TestCoordinatorWriteFailure(t *testing.T) {
	log := newMemLog()
	e := newCoordEnv(t, log, true)
	cb, wait := await[JoinResult](t)
	e.c.Join("g", joinReq(""), cb)
	id := wait().MemberID
	cb, wait = await[JoinResult](t)
	e.c.Join("g", joinReq(id), cb)
	e.describe("g")
	e.advance(time.Second)
	r := wait()
	log.mu.Lock()
	log.fail = kerr.NotLeaderForPartition
	log.mu.Unlock()
	scb, swait := await[SyncResult](t)
	e.c.Sync("g", SyncRequest{MemberID: id, Generation: r.Generation, Assignments: map[string][]byte{id: []byte("a")}}, scb)
	if sr := swait(); sr.Err != kerr.NotCoordinator {
		t.Fatalf("sync with failing log: %v", sr.Err)
	}
	if d := e.describe("g"); d.State != PreparingRebalance {
		t.Fatalf("after failed write: %v", d.State)
	}
}

// TestCommitMetadataLimitCountsChars: offset.metadata.max.bytes is
// compared with the metadata's length in Java chars (UTF-16 code units),
// as Kafka's OffsetMetadataManager.isMetadataInvalid does, not with its
// UTF-8 bytes: non-ASCII metadata Kafka accepts must not be refused.
func TestCommitMetadataLimitCountsChars(t *testing.T) {
	e := newCoordEnv(t, newMemLog(), true)
	max := testConfig().OffsetMetadataMaxBytes
	for _, tc := range []struct {
		name string
		meta string
		want *kerr.Error
	}{
		{"ASCII at the limit", strings.Repeat("x", max), nil},
		{"ASCII over the limit", strings.Repeat("x", max+1), kerr.OffsetMetadataTooLarge},
		{"2-byte chars at the limit", strings.Repeat("é", max), nil},
		{"3-byte chars at the limit", strings.Repeat("€", max), nil},
		{"3-byte chars over the limit", strings.Repeat("€", max+1), kerr.OffsetMetadataTooLarge},
		// A supplementary character is two Java chars.
		{"surrogate pairs at the limit", strings.Repeat("😀", max/2), nil},
		{"surrogate pairs over the limit", strings.Repeat("😀", max/2) + "x", kerr.OffsetMetadataTooLarge},
	} {
		if err := e.commit("g", "", -1, "t", 0, 1, tc.meta); err != tc.want {
			t.Errorf("%s: commit %v, want %v", tc.name, err, tc.want)
		} else if err == nil {
			if got := e.fetch("g", "t", 0); got.Metadata != tc.meta {
				t.Errorf("%s: metadata not round-tripped (%d bytes back)", tc.name, len(got.Metadata))
			}
		}
		cb, wait := await[CommitResult](t)
		e.c.TxnCommit("g", TxnCommitRequest{ProducerID: 7, Generation: -1, Topics: []CommitTopic{{
			Topic: "t", Partitions: []CommitPartition{{Partition: 0, Offset: 1, LeaderEpoch: -1, Metadata: tc.meta}},
		}}}, false, cb)
		if err := wait().Topics[0][0]; err != tc.want {
			t.Errorf("%s: transactional commit %v, want %v", tc.name, err, tc.want)
		}
	}
}

// TestOffsetDeleteUnknownSubscriptions: while a consumer group's
// subscriptions are unknown (its first rebalance has not completed, or
// its members' metadata cannot be parsed), Kafka's
// ClassicGroup.isSubscribedToTopic counts every topic as subscribed, so
// OffsetDelete cannot remove offsets its members may be about to use.
func TestOffsetDeleteUnknownSubscriptions(t *testing.T) {
	e := newCoordEnv(t, newMemLog(), true)
	for _, topic := range []string{"t", "u"} {
		if err := e.commit("g", "", -1, topic, 0, 5, ""); err != nil {
			t.Fatal(err)
		}
	}
	cb, wait := await[JoinResult](t)
	e.c.Join("g", joinReq(""), cb)
	r := wait()
	if r.Err != kerr.MemberIDRequired {
		t.Fatalf("first join: %v", r.Err)
	}
	cb, _ = await[JoinResult](t)
	e.c.Join("g", joinReq(r.MemberID), cb)
	if s := e.describe("g").State; s != PreparingRebalance {
		t.Fatalf("state %v, want the first rebalance in progress", s)
	}
	dcb, dwait := await[OffsetDeleteResult](t)
	e.c.DeleteOffsets("g", []OffsetDeleteTopic{{Topic: "t", Partitions: []int32{0}}, {Topic: "u", Partitions: []int32{0}}}, dcb)
	res := dwait()
	if res.Err != nil || res.Topics[0][0] != kerr.GroupSubscribedToTopic || res.Topics[1][0] != kerr.GroupSubscribedToTopic {
		t.Fatalf("OffsetDelete during the first rebalance: %v %v", res.Err, res.Topics)
	}
	for _, topic := range []string{"t", "u"} {
		if got := e.fetch("g", topic, 0); got.Offset != 5 {
			t.Errorf("%s offset after OffsetDelete: %d", topic, got.Offset)
		}
	}
}
