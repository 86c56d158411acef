package broker_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"os"
	"slices"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"github.com/gregor-streaming/gregor/internal/ktest"
)

// End-to-end tests of consumer groups with franz-go group consumers.

// groupBroker starts a broker tuned for group tests: no initial
// rebalance delay and short session timeouts allowed. It checks that
// the test leaves no goroutine behind.
func groupBroker(t *testing.T, opts ...ktest.Option) *ktest.Broker {
	t.Helper()
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
	opts = append([]ktest.Option{
		ktest.Set("group.initial.rebalance.delay.ms", "0"),
		ktest.Set("group.min.session.timeout.ms", "1000"),
	}, opts...)
	if os.Getenv("GREGOR_GROUP_LOG") != "" {
		// The coordinator's rebalance log, without the debug noise.
		opts = append(opts, ktest.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))))
	}
	return ktest.NewBroker(t, opts...)
}

// member is a franz-go group consumer that records what it owns and
// every record it processes.
type member struct {
	t    *testing.T
	name string
	cl   *kgo.Client
	net  *switchableNet

	mu       sync.Mutex
	owned    map[int32]bool
	assigned [][]int32
	revoked  [][]int32
	lost     [][]int32
	// processed is called for each record, under no lock.
	processed func(m *member, r *kgo.Record)

	cancel context.CancelFunc
	done   chan struct{}
	closed bool
}

type memberOpts struct {
	group, topic string
	balancer     kgo.GroupBalancer
	instanceID   string
	session      time.Duration
	process      func(m *member, r *kgo.Record)
	extra        []kgo.Opt
	// noPoll leaves polling to the test.
	noPoll bool
}

func startMember(t *testing.T, b *ktest.Broker, name string, o memberOpts) *member {
	t.Helper()
	m := &member{t: t, name: name, owned: map[int32]bool{}, processed: o.process, net: &switchableNet{}, done: make(chan struct{})}
	session := o.session
	if session == 0 {
		session = 6 * time.Second
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(b.Addr),
		kgo.ClientID(name),
		kgo.Dialer(m.net.dial),
		kgo.ConsumerGroup(o.group),
		kgo.ConsumeTopics(o.topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.SessionTimeout(session),
		kgo.HeartbeatInterval(250 * time.Millisecond),
		kgo.RebalanceTimeout(10 * time.Second),
		kgo.FetchMaxWait(100 * time.Millisecond),
		kgo.RetryBackoffFn(func(int) time.Duration { return 50 * time.Millisecond }),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, ps map[string][]int32) {
			m.mu.Lock()
			defer m.mu.Unlock()
			for _, p := range ps[o.topic] {
				m.owned[p] = true
			}
			m.assigned = append(m.assigned, sorted(ps[o.topic]))
		}),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, ps map[string][]int32) {
			m.mu.Lock()
			defer m.mu.Unlock()
			for _, p := range ps[o.topic] {
				delete(m.owned, p)
			}
			m.revoked = append(m.revoked, sorted(ps[o.topic]))
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, ps map[string][]int32) {
			m.mu.Lock()
			defer m.mu.Unlock()
			for _, p := range ps[o.topic] {
				delete(m.owned, p)
			}
			m.lost = append(m.lost, sorted(ps[o.topic]))
		}),
	}
	if o.balancer != nil {
		opts = append(opts, kgo.Balancers(o.balancer))
	}
	if o.instanceID != "" {
		opts = append(opts, kgo.InstanceID(o.instanceID))
	}
	opts = append(opts, o.extra...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	m.cl = cl
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	if o.noPoll {
		close(m.done)
	} else {
		go m.poll(ctx)
	}
	t.Cleanup(m.stop)
	return m
}

func (m *member) poll(ctx context.Context) {
	defer close(m.done)
	for ctx.Err() == nil {
		fs := m.cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return
		}
		fs.EachRecord(func(r *kgo.Record) {
			if m.processed != nil {
				m.processed(m, r)
			}
		})
	}
}

// stop closes the member gracefully (a dynamic member leaves the
// group). Idempotent.
func (m *member) stop() {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	m.closed = true
	m.mu.Unlock()
	m.cancel()
	<-m.done
	m.cl.Close()
}

func (m *member) ownedSet() map[int32]bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(m.owned)
}

func sorted(ps []int32) []int32 {
	out := slices.Clone(ps)
	slices.Sort(out)
	return out
}

func keys(s map[int32]bool) []int32 {
	out := slices.Collect(maps.Keys(s))
	slices.Sort(out)
	return out
}

// switchableNet lets a test cut a client off the network, as a crashed
// or partitioned consumer is: open connections close and dials fail.
type switchableNet struct {
	mu    sync.Mutex
	down  bool
	conns []net.Conn
}

func (n *switchableNet) dial(ctx context.Context, network, host string) (net.Conn, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.down {
		return nil, errors.New("test: network down")
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, network, host)
	if err == nil {
		n.conns = append(n.conns, c)
	}
	return c, err
}

func (n *switchableNet) cut() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.down = true
	for _, c := range n.conns {
		c.Close()
	}
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > timeout {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

// covering reports whether the members' owned partitions are disjoint
// and cover 0..n-1, and describes them.
func covering(n int32, ms ...*member) (bool, string) {
	seen := map[int32]string{}
	desc := ""
	ok := true
	for _, m := range ms {
		owned := m.ownedSet()
		desc += fmt.Sprintf("%s=%v ", m.name, keys(owned))
		for p := range owned {
			if other, dup := seen[p]; dup {
				ok = false
				desc += fmt.Sprintf("(partition %d also owned by %s) ", p, other)
			}
			seen[p] = m.name
		}
	}
	return ok && len(seen) == int(n), desc
}

// describe returns the group's state and member count as the broker
// reports them.
func describe(t *testing.T, adm *kadm.Client, group string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	dg, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		t.Fatalf("describe groups: %v", err)
	}
	d := dg[group]
	if d.Err != nil {
		t.Fatalf("describe %s: %v", group, d.Err)
	}
	return d.State, len(d.Members)
}

// waitStable waits until the members own disjoint, covering and
// balanced assignments (every balancer here ends balanced) and the group
// is Stable. Covering alone is not enough: a cooperative rebalance passes
// through a Stable generation where a newcomer owns nothing yet, while
// the others still cover every partition.
func waitStable(t *testing.T, adm *kadm.Client, group string, n int32, ms ...*member) time.Duration {
	t.Helper()
	return waitFor(t, 30*time.Second, fmt.Sprintf("%d members to share %d partitions", len(ms), n), func() bool {
		ok, _ := covering(n, ms...)
		if !ok {
			return false
		}
		lo := int(n) / len(ms)
		for _, m := range ms {
			if k := len(m.ownedSet()); k < lo || k > lo+1 {
				return false
			}
		}
		state, count := describe(t, adm, group)
		return state == "Stable" && count == len(ms)
	})
}

// TestGroupAssignmentsDisjointCovering: three members on a 12-partition
// topic get disjoint assignments covering every partition, with an
// eager and a cooperative assignor; DescribeGroups agrees.
func TestGroupAssignmentsDisjointCovering(t *testing.T) {
	for _, bal := range []kgo.GroupBalancer{kgo.RangeBalancer(), kgo.CooperativeStickyBalancer()} {
		t.Run(bal.ProtocolName(), func(t *testing.T) {
			b := groupBroker(t)
			b.CreateTopic("twelve", 12, nil)
			adm := b.Admin()
			var ms []*member
			for i := range 3 {
				ms = append(ms, startMember(t, b, "m"+strconv.Itoa(i), memberOpts{group: "g", topic: "twelve", balancer: bal}))
			}
			waitStable(t, adm, "g", 12, ms...)
			_, desc := covering(12, ms...)
			for _, m := range ms {
				if n := len(m.ownedSet()); n != 4 {
					t.Errorf("unbalanced: %s", desc)
				}
			}
			// The broker's view: the assignment it distributed.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			dg, err := adm.DescribeGroups(ctx, "g")
			if err != nil {
				t.Fatal(err)
			}
			d := dg["g"]
			if d.Protocol != bal.ProtocolName() || d.ProtocolType != "consumer" {
				t.Errorf("protocol %q type %q", d.Protocol, d.ProtocolType)
			}
			byBroker := map[int32]string{}
			for _, dm := range d.Members {
				ca, ok := dm.Assigned.AsConsumer()
				if !ok {
					t.Fatalf("member %s: assignment is not a consumer assignment", dm.MemberID)
				}
				for _, tp := range ca.Topics {
					for _, p := range tp.Partitions {
						if prev, dup := byBroker[p]; dup {
							t.Errorf("broker assigned partition %d to %s and %s", p, prev, dm.ClientID)
						}
						byBroker[p] = dm.ClientID
					}
				}
			}
			if len(byBroker) != 12 {
				t.Errorf("broker's assignment covers %d partitions", len(byBroker))
			}
			for p, name := range byBroker {
				for _, m := range ms {
					if m.name == name && !m.ownedSet()[p] {
						t.Errorf("broker says %s owns %d; it does not (%s)", name, p, desc)
					}
				}
			}
		})
	}
}

// TestGroupMemberLeavesOrDies: a member that leaves loses its
// partitions at once; one that stops heartbeating (its network cut)
// loses them within the session timeout, and the others take them.
func TestGroupMemberLeavesOrDies(t *testing.T) {
	b := groupBroker(t)
	b.CreateTopic("twelve", 12, nil)
	adm := b.Admin()
	const session = 3 * time.Second
	a := startMember(t, b, "a", memberOpts{group: "g", topic: "twelve", session: session})
	bb := startMember(t, b, "b", memberOpts{group: "g", topic: "twelve", session: session})
	c := startMember(t, b, "c", memberOpts{group: "g", topic: "twelve", session: session})
	waitStable(t, adm, "g", 12, a, bb, c)

	// c leaves (LeaveGroup): a rebalance starts at once.
	c.stop()
	took := waitStable(t, adm, "g", 12, a, bb)
	t.Logf("after a clean leave, the others own every partition in %v", took)
	if took > session {
		t.Errorf("taking over after a leave took %v, more than the session timeout", took)
	}

	// b's network is cut: no heartbeat, no leave. The broker expires it
	// after the session timeout.
	cutAt := time.Now()
	bb.net.cut()
	took = waitFor(t, session+5*time.Second, "a to own every partition", func() bool {
		ok, _ := covering(12, a)
		if !ok {
			return false
		}
		state, n := describe(t, adm, "g")
		return state == "Stable" && n == 1
	})
	t.Logf("after b died, a owns every partition in %v (session timeout %v)", took, session)
	if since := time.Since(cutAt); since < session/2 {
		t.Errorf("b was expired after %v, well before its session timeout", since)
	}
}

// TestGroupCommitResume: after commits, a new consumer of the group
// resumes exactly after the last committed offset (nothing processed
// twice, nothing skipped), also across a broker restart.
func TestGroupCommitResume(t *testing.T) {
	b := groupBroker(t)
	const parts, total = 4, 400
	b.CreateTopic("resume", parts, nil)
	prod := b.Client(kgo.DefaultProduceTopic("resume"), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i := range total {
		if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte(strconv.Itoa(i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	seen := map[int32]map[int64]int{} // partition → offset → times processed
	// run processes records until `until` in total were processed (by
	// any run), commits exactly those it processed, and leaves. It
	// returns the first offset it saw per partition.
	run := func(name string, until int) map[int32]int64 {
		t.Helper()
		cl := b.Client(
			kgo.ClientID(name),
			kgo.ConsumerGroup("resume-g"),
			kgo.ConsumeTopics("resume"),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.DisableAutoCommit(),
			kgo.FetchMaxWait(100*time.Millisecond),
			kgo.FetchMaxBytes(1000), // small fetches: stop mid-partition
		)
		first := map[int32]int64{}
		var done []*kgo.Record
		count := func() int {
			n := 0
			for _, ps := range seen {
				n += len(ps)
			}
			return n
		}
		for count() < until {
			fs := cl.PollRecords(ctx, 7)
			if ctx.Err() != nil {
				t.Fatalf("%s: %v after %d records", name, ctx.Err(), count())
			}
			fs.EachError(func(_ string, p int32, err error) { t.Fatalf("%s: partition %d: %v", name, p, err) })
			for _, r := range fs.Records() {
				if count() >= until {
					break
				}
				if _, ok := first[r.Partition]; !ok {
					first[r.Partition] = r.Offset
				}
				if seen[r.Partition] == nil {
					seen[r.Partition] = map[int64]int{}
				}
				seen[r.Partition][r.Offset]++
				done = append(done, r)
			}
		}
		if err := cl.CommitRecords(ctx, done...); err != nil {
			t.Fatalf("%s: commit: %v", name, err)
		}
		cl.Close()
		return first
	}
	// committedNext is where each partition resumes: one past the last
	// processed offset.
	committedNext := func() map[int32]int64 {
		out := map[int32]int64{}
		for p, offs := range seen {
			for o := range offs {
				out[p] = max(out[p], o+1)
			}
		}
		return out
	}
	checkResumed := func(first map[int32]int64, before map[int32]int64) {
		t.Helper()
		for p, off := range first {
			if want := before[p]; off != want {
				t.Errorf("partition %d resumed at %d, want %d (the committed offset)", p, off, want)
			}
		}
	}
	fetchCommitted := func() map[int32]int64 {
		t.Helper()
		offs, err := b.Admin().FetchOffsets(ctx, "resume-g")
		if err != nil {
			t.Fatal(err)
		}
		out := map[int32]int64{}
		offs.Each(func(o kadm.OffsetResponse) { out[o.Partition] = o.At })
		return out
	}

	run("first", 150)
	before := committedNext()
	if got := fetchCommitted(); !maps.Equal(got, before) {
		t.Fatalf("committed offsets %v, want %v", got, before)
	}
	checkResumed(run("second", 300), before)

	// Across a broker restart: the offsets are loaded from
	// __consumer_offsets.
	before = committedNext()
	b.Restart()
	waitGroupsLoaded(t, b)
	if got := fetchCommitted(); !maps.Equal(got, before) {
		t.Fatalf("after restart, committed offsets %v, want %v", got, before)
	}
	checkResumed(run("third", total), before)

	for p := range int32(parts) {
		for o := range int64(total / parts) {
			if n := seen[p][o]; n != 1 {
				t.Errorf("partition %d offset %d processed %d times", p, o, n)
			}
		}
	}
}

// TestGroupCooperativeStickyKeepsPartitions: when a third member joins
// a cooperative-sticky group, the two members keep the partitions that
// stay theirs (never revoked) and give up only what moves.
func TestGroupCooperativeStickyKeepsPartitions(t *testing.T) {
	b := groupBroker(t)
	b.CreateTopic("twelve", 12, nil)
	adm := b.Admin()
	bal := kgo.CooperativeStickyBalancer()
	a := startMember(t, b, "a", memberOpts{group: "g", topic: "twelve", balancer: bal})
	bb := startMember(t, b, "b", memberOpts{group: "g", topic: "twelve", balancer: bal})
	waitStable(t, adm, "g", 12, a, bb)
	before := map[*member]map[int32]bool{a: a.ownedSet(), bb: bb.ownedSet()}
	for _, m := range []*member{a, bb} {
		m.mu.Lock()
		m.revoked, m.lost = nil, nil
		m.mu.Unlock()
	}

	c := startMember(t, b, "c", memberOpts{group: "g", topic: "twelve", balancer: bal})
	waitStable(t, adm, "g", 12, a, bb, c)
	_, desc := covering(12, a, bb, c)
	for _, m := range []*member{a, bb} {
		after := m.ownedSet()
		m.mu.Lock()
		revoked, lost := slices.Concat(m.revoked...), m.lost
		m.mu.Unlock()
		if len(after) != 4 {
			t.Errorf("%s owns %d partitions: %s", m.name, len(after), desc)
		}
		for p := range after {
			if !before[m][p] {
				t.Errorf("%s gained partition %d; sticky members only give up partitions", m.name, p)
			}
		}
		for _, p := range revoked {
			if after[p] {
				t.Errorf("%s had partition %d revoked, yet kept it: not an incremental rebalance", m.name, p)
			}
		}
		if len(revoked) != len(before[m])-len(after) || len(lost) > 0 {
			t.Errorf("%s: revoked %v, lost %v; before %v after %v", m.name, revoked, lost, keys(before[m]), keys(after))
		}
	}
}

// TestGroupStaticMemberRestart: a static member (group.instance.id)
// that restarts within its session timeout gets its partitions back
// without a rebalance: the other member sees no revocation and the
// generation does not change.
func TestGroupStaticMemberRestart(t *testing.T) {
	b := groupBroker(t)
	b.CreateTopic("twelve", 12, nil)
	adm := b.Admin()
	opts := func(id string) memberOpts {
		return memberOpts{group: "g", topic: "twelve", instanceID: id, session: 10 * time.Second}
	}
	// a joins alone first, so it leads; b is the member that restarts.
	// (A restarted static leader is answered without a rebalance too,
	// with SkipAssignment: TestGroupRequestErrors checks that on the
	// wire. But franz-go then computes its own plan from the members'
	// last join metadata and forces a rebalance when that differs from
	// the old one, KIP-814's known limitation; whether it differs
	// depends on timing, so such a test would measure the client.)
	a := startMember(t, b, "a", opts("instance-a"))
	waitStable(t, adm, "g", 12, a)
	bb := startMember(t, b, "b", opts("instance-b"))
	waitStable(t, adm, "g", 12, a, bb)
	// Cooperative rebalancing takes two rounds; both members must have
	// finished the last one (a's callbacks may still be running).
	waitFor(t, 10*time.Second, "both members in the same generation", func() bool {
		_, ga := a.cl.GroupMetadata()
		_, gb := bb.cl.GroupMetadata()
		return ga == gb
	})
	bOwned := bb.ownedSet()
	_, gen := a.cl.GroupMetadata()
	a.mu.Lock()
	aAssigns, aRevokes := nonEmpty(a.assigned), nonEmpty(a.revoked)
	a.mu.Unlock()

	// Watch the group's state while b restarts.
	var states []string
	var stateMu sync.Mutex
	stopWatch := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for {
			select {
			case <-stopWatch:
				return
			case <-time.After(20 * time.Millisecond):
			}
			state, _ := describe(t, adm, "g")
			stateMu.Lock()
			states = append(states, state)
			stateMu.Unlock()
		}
	}()

	restart := time.Now()
	bb.stop() // static: closes without LeaveGroup
	b2 := startMember(t, b, "b2", opts("instance-b"))
	waitFor(t, 10*time.Second, "the restarted static member to get its partitions", func() bool {
		return maps.Equal(b2.ownedSet(), bOwned)
	})
	t.Logf("static member back with its partitions in %v", time.Since(restart))
	// A rebalance would reach the other member at its next heartbeat
	// (every 250 ms): keep watching past that.
	time.Sleep(time.Second)
	close(stopWatch)
	<-watched

	if _, gen2 := a.cl.GroupMetadata(); gen2 != gen {
		t.Errorf("generation changed from %d to %d: a rebalance happened", gen, gen2)
	}
	a.mu.Lock()
	if nonEmpty(a.assigned) != aAssigns || nonEmpty(a.revoked) != aRevokes {
		t.Errorf("the other member saw assignments %v, revocations %v", a.assigned, a.revoked)
	}
	a.mu.Unlock()
	stateMu.Lock()
	for _, s := range states {
		if s != "Stable" {
			t.Errorf("group went through %s during the restart: %v", s, states)
			break
		}
	}
	stateMu.Unlock()
	if _, gen3 := b2.cl.GroupMetadata(); gen3 != gen {
		t.Errorf("restarted member is in generation %d, want %d", gen3, gen)
	}
}

// nonEmpty counts the callbacks that named partitions (a cooperative
// round that moves nothing still calls OnPartitionsAssigned, with none).
func nonEmpty(calls [][]int32) int {
	n := 0
	for _, ps := range calls {
		if len(ps) > 0 {
			n++
		}
	}
	return n
}

// TestGroupChurn: members join and leave repeatedly while records flow.
// Each member processes records one poll at a time, commits what it
// processed when partitions are revoked (the usual at-least-once
// pattern with BlockRebalanceOnPoll), so after every completed
// rebalance the next owner starts exactly where the last one stopped:
// no record is processed twice, none is lost, and errors stay rare.
func TestGroupChurn(t *testing.T) {
	churn := 30 * time.Second // the figure
	if testing.Short() {
		churn = 5 * time.Second
	}
	b := groupBroker(t)
	const parts = 8
	b.CreateTopic("churn", parts, nil)
	adm := b.Admin()

	var mu sync.Mutex
	processedBy := map[int32]map[int64]string{}
	var dups []string
	var errCount int
	process := func(m *member, r *kgo.Record) {
		mu.Lock()
		defer mu.Unlock()
		if processedBy[r.Partition] == nil {
			processedBy[r.Partition] = map[int64]string{}
		}
		if prev, ok := processedBy[r.Partition][r.Offset]; ok {
			dups = append(dups, fmt.Sprintf("%d@%d by %s and %s", r.Partition, r.Offset, prev, m.name))
		}
		processedBy[r.Partition][r.Offset] = m.name
	}

	// A churn member polls, processes, marks; it commits marks when its
	// partitions are revoked and when it leaves.
	start := func(name string) *member {
		var m *member
		m = startMember(t, b, name, memberOpts{
			group: "churn-g", topic: "churn", noPoll: true,
			// Generous timeouts, as in production (Kafka's defaults
			// are 45 s and 60 s): a member is expelled only if it
			// hangs, not when a loaded test machine is slow, so every
			// change is a clean rebalance and duplicates are bugs.
			session: 30 * time.Second,
			extra: []kgo.Opt{
				kgo.RebalanceTimeout(60 * time.Second),
				kgo.BlockRebalanceOnPoll(),
				kgo.AutoCommitMarks(),
				kgo.AutoCommitInterval(500 * time.Millisecond),
				kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, ps map[string][]int32) {
					if err := cl.CommitMarkedOffsets(ctx); err != nil {
						mu.Lock()
						errCount++
						mu.Unlock()
						t.Logf("%s: commit on revoke: %v", name, err)
					}
					m.mu.Lock()
					for _, p := range ps["churn"] {
						delete(m.owned, p)
					}
					m.mu.Unlock()
				}),
			},
		})
		ctx, cancel := context.WithCancel(context.Background())
		m.cancel = cancel
		m.done = make(chan struct{})
		go func() {
			defer close(m.done)
			for ctx.Err() == nil {
				fs := m.cl.PollRecords(ctx, 50)
				fs.EachError(func(_ string, p int32, err error) {
					if !errors.Is(err, context.Canceled) && !errors.Is(err, kgo.ErrClientClosed) {
						mu.Lock()
						errCount++
						mu.Unlock()
						t.Logf("%s: fetch partition %d: %v", name, p, err)
					}
				})
				fs.EachRecord(func(r *kgo.Record) {
					process(m, r)
					m.cl.MarkCommitRecords(r)
				})
				m.cl.AllowRebalance()
			}
		}()
		return m
	}
	// leave stops polling, then closes: the revoke callback commits
	// the marks before LeaveGroup.
	leave := func(m *member) { m.stop() }

	// Producer: records flow the whole time.
	prod := b.Client(kgo.DefaultProduceTopic("churn"), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()), kgo.ProducerLinger(5*time.Millisecond))
	pctx, pcancel := context.WithCancel(context.Background())
	var produced int
	var prodWG sync.WaitGroup
	prodWG.Add(1)
	go func() {
		defer prodWG.Done()
		for i := 0; pctx.Err() == nil; i++ {
			if err := prod.ProduceSync(pctx, &kgo.Record{Value: []byte(strconv.Itoa(i))}).FirstErr(); err != nil {
				if pctx.Err() == nil {
					t.Errorf("produce: %v", err)
				}
				return
			}
			produced++
			time.Sleep(2 * time.Millisecond)
		}
	}()

	// Churn: a stable core of one member, plus members joining and
	// leaving in a fixed cycle, each change given time to complete its
	// rebalance.
	live := []*member{start("m0")}
	all := slices.Clone(live)
	next := 1
	deadline := time.Now().Add(churn)
	for step := 0; time.Now().Before(deadline); step++ {
		if len(live) < 4 && step%3 != 2 {
			live = append(live, start("m"+strconv.Itoa(next)))
			all = append(all, live[len(live)-1])
			next++
		} else if len(live) > 1 {
			i := 1 + step%(len(live)-1)
			leave(live[i])
			live = slices.Delete(live, i, i+1)
		}
		time.Sleep(700 * time.Millisecond)
	}
	pcancel()
	prodWG.Wait()

	// Let the survivors finish everything produced.
	waitStable(t, adm, "churn-g", parts, live...)
	waitFor(t, 30*time.Second, fmt.Sprintf("all %d records to be processed", produced), func() bool {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, offs := range processedBy {
			n += len(offs)
		}
		return n >= produced
	})
	for _, m := range live {
		leave(m)
	}

	mu.Lock()
	defer mu.Unlock()
	t.Logf("%d members over %v, %d records, %d errors", next, churn, produced, errCount)
	if len(dups) > 0 {
		sort.Strings(dups)
		t.Errorf("%d records processed twice, e.g. %v", len(dups), dups[:min(5, len(dups))])
	}
	n := 0
	for p := range int32(parts) {
		offs := processedBy[p]
		n += len(offs)
		for o := range int64(len(offs)) {
			if _, ok := offs[o]; !ok {
				t.Errorf("partition %d offset %d never processed", p, o)
				break
			}
		}
	}
	if n != produced {
		t.Errorf("processed %d records, produced %d", n, produced)
	}
	if errCount > 5 {
		t.Errorf("%d errors during churn", errCount)
	}
	for _, m := range all {
		m.mu.Lock()
		if len(m.lost) > 0 {
			t.Errorf("%s lost partitions %v: it was expelled from the group", m.name, m.lost)
		}
		m.mu.Unlock()
	}
}
