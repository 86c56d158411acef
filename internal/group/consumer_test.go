package group

import (
	"fmt"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// cgHost completes appends at once (or holds them when hold is set)
// and keeps the records.
type cgHost struct {
	log  []Record
	hold bool
	held []func(time.Time, error)
	n    int
}

func (h *cgHost) append(recs []Record, complete func(time.Time, error)) {
	h.log = append(h.log, recs...)
	if h.hold {
		h.held = append(h.held, complete)
		return
	}
	complete(time.Time{}, nil)
}

func (h *cgHost) appendTxn(_ int64, _ int16, recs []Record, complete func(time.Time, error)) {
	h.append(recs, complete)
}

func (h *cgHost) newMemberID(clientID string, _ *string) string {
	h.n++
	return fmt.Sprintf("%s-%d", clientID, h.n)
}

type fakeTopics map[string]int32

func topicID(name string) TopicID {
	var id TopicID
	copy(id[:], name)
	id[15] = 1
	return id
}

func (f fakeTopics) Topic(name string) (TopicID, int32, bool) {
	n, ok := f[name]
	return topicID(name), n, ok
}

func (f fakeTopics) TopicNames() []string {
	var out []string
	for n := range f {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// cgSim drives a group with simulated clients that apply every
// assignment at once.
type cgSim struct {
	t      *testing.T
	cfg    Config
	h      *cgHost
	g      *Group
	now    time.Time
	topics fakeTopics
	// per member: epoch and owned partitions as the client sees them.
	epoch map[string]int32
	owned map[string][]ConsumerTopicPartitions
}

func newCGSim(t *testing.T, topics fakeTopics) *cgSim {
	s := &cgSim{t: t, cfg: DefaultConfig(), h: &cgHost{}, now: scriptStart, topics: topics,
		epoch: map[string]int32{}, owned: map[string][]ConsumerTopicPartitions{}}
	s.g = newGroup("g", &s.cfg, s.h, slog.New(slog.DiscardHandler))
	return s
}

func (s *cgSim) hb(req ConsumerHeartbeatRequest) ConsumerHeartbeatResult {
	s.t.Helper()
	if req.Topics == nil {
		req.Topics = s.topics
	}
	if req.Version == 0 {
		req.Version = 1
	}
	var res *ConsumerHeartbeatResult
	s.g.Tick(s.now)
	s.g.ConsumerHeartbeat(s.now, req, func(r ConsumerHeartbeatResult) { res = &r })
	if res == nil {
		s.t.Fatal("heartbeat not answered")
	}
	s.checkOwnership()
	return *res
}

// join joins a member subscribed to topics.
func (s *cgSim) join(id, assignor string, topics ...string) ConsumerHeartbeatResult {
	s.t.Helper()
	req := ConsumerHeartbeatRequest{MemberID: id, SubscribedTopicNames: topics, RebalanceTimeout: time.Minute,
		Owned: []ConsumerTopicPartitions{}, ClientID: "c"}
	if assignor != "" {
		req.ServerAssignor = &assignor
	}
	res := s.hb(req)
	if res.Err != nil {
		s.t.Fatalf("join %s: %v", id, res.Err)
	}
	s.apply(id, res)
	return res
}

func (s *cgSim) apply(id string, res ConsumerHeartbeatResult) {
	s.epoch[id] = res.MemberEpoch
	if res.HasAssignment {
		s.owned[id] = res.Assignment
	}
}

// beat sends a full heartbeat of a member as its client would.
func (s *cgSim) beat(id string) ConsumerHeartbeatResult {
	s.t.Helper()
	owned := s.owned[id]
	if owned == nil {
		owned = []ConsumerTopicPartitions{}
	}
	res := s.hb(ConsumerHeartbeatRequest{MemberID: id, MemberEpoch: s.epoch[id], RebalanceTimeout: -1, Owned: owned})
	if res.Err != nil {
		s.t.Fatalf("heartbeat %s: %v", id, res.Err)
	}
	s.apply(id, res)
	return res
}

// settle heartbeats every member until the group is Stable.
func (s *cgSim) settle(ids ...string) {
	s.t.Helper()
	for range 20 {
		for _, id := range ids {
			s.beat(id)
		}
		if s.g.state == Stable {
			return
		}
	}
	s.t.Fatalf("group did not settle: %v", s.g.state)
}

// checkOwnership fails if two members hold a partition at once.
func (s *cgSim) checkOwnership() {
	s.t.Helper()
	if s.g.consumer == nil {
		return
	}
	checkSubscriptionCounts(s.t, s.g.consumer)
	seen := map[string]string{}
	for _, m := range s.g.consumer.sortedMembers() {
		for _, a := range []assignment{m.cur.Assigned, m.cur.Revoking} {
			for t, ps := range a {
				for _, p := range ps {
					k := fmt.Sprintf("%x/%d", t, p)
					if o, ok := seen[k]; ok && o != m.id {
						s.t.Fatalf("partition %s held by %s and %s", k, o, m.id)
					}
					seen[k] = m.id
				}
			}
		}
	}
}

func count(a []ConsumerTopicPartitions) int {
	n := 0
	for _, t := range a {
		n += len(t.Partitions)
	}
	return n
}

// coverage checks that the members' assignments are disjoint and
// cover every partition of the topics, and returns the counts.
func (s *cgSim) coverage(ids []string, topics ...string) []int {
	s.t.Helper()
	seen := map[string]bool{}
	var counts []int
	for _, id := range ids {
		counts = append(counts, count(s.owned[id]))
		for _, t := range s.owned[id] {
			for _, p := range t.Partitions {
				k := fmt.Sprintf("%s/%d", t.Topic, p)
				if seen[k] {
					s.t.Fatalf("%s assigned twice", k)
				}
				seen[k] = true
			}
		}
	}
	total := 0
	for _, t := range topics {
		total += int(s.topics[t])
	}
	if len(seen) != total {
		s.t.Fatalf("%d partitions assigned, want %d: %v", len(seen), total, s.owned)
	}
	return counts
}

func TestConsumerGroup848Assignors(t *testing.T) {
	for _, assignor := range []string{"uniform", "range"} {
		t.Run(assignor, func(t *testing.T) {
			s := newCGSim(t, fakeTopics{"a": 12, "b": 5})
			ids := []string{"m1", "m2", "m3"}
			for _, id := range ids {
				s.join(id, assignor, "a", "b")
			}
			s.settle(ids...)
			counts := s.coverage(ids, "a", "b")
			slices.Sort(counts)
			if counts[2]-counts[0] > 2 {
				t.Fatalf("unbalanced: %v", counts)
			}
			for _, id := range ids {
				if s.epoch[id] != s.g.consumer.epoch {
					t.Fatalf("%s at epoch %d, group %d", id, s.epoch[id], s.g.consumer.epoch)
				}
			}
			if s.g.consumer.epoch != 3 {
				t.Fatalf("group epoch %d, want 3 (one per join)", s.g.consumer.epoch)
			}
		})
	}
}

func TestConsumerGroup848UniformBalance(t *testing.T) {
	s := newCGSim(t, fakeTopics{"a": 12})
	ids := []string{"m1", "m2", "m3"}
	for _, id := range ids {
		s.join(id, "uniform", "a")
	}
	s.settle(ids...)
	if c := s.coverage(ids, "a"); !slices.Equal(c, []int{4, 4, 4}) {
		t.Fatalf("counts %v", c)
	}
	// A leave moves its partitions; the others keep theirs.
	before := map[string][]ConsumerTopicPartitions{"m1": s.owned["m1"], "m2": s.owned["m2"]}
	res := s.hb(ConsumerHeartbeatRequest{MemberID: "m3", MemberEpoch: leaveEpoch, RebalanceTimeout: -1})
	if res.Err != nil || res.MemberEpoch != leaveEpoch {
		t.Fatalf("leave: %+v", res)
	}
	delete(s.owned, "m3")
	s.settle("m1", "m2")
	if c := s.coverage([]string{"m1", "m2"}, "a"); !slices.Equal(c, []int{6, 6}) {
		t.Fatalf("counts after leave %v", c)
	}
	for id, old := range before {
		for _, p := range old[0].Partitions {
			if !slices.Contains(s.owned[id][0].Partitions, p) {
				t.Fatalf("%s lost partition %d it owned (not sticky)", id, p)
			}
		}
	}
}

// A partition moves only after its owner revoked it.
func TestConsumerGroup848RevokeBeforeReassign(t *testing.T) {
	s := newCGSim(t, fakeTopics{"a": 4})
	s.join("m1", "", "a")
	s.settle("m1")
	if count(s.owned["m1"]) != 4 {
		t.Fatalf("m1 owns %v", s.owned["m1"])
	}
	res := s.join("m2", "", "a")
	if count(res.Assignment) != 0 {
		t.Fatalf("m2 got %v before m1 revoked", res.Assignment)
	}
	// m2 heartbeats again: still nothing, m1 has not revoked.
	if r := s.beat("m2"); count(s.owned["m2"]) != 0 {
		t.Fatalf("m2 got %v before m1 revoked (%+v)", s.owned["m2"], r)
	}
	// m1 is asked to revoke two, staying at its epoch.
	e1 := s.epoch["m1"]
	r1 := s.hb(ConsumerHeartbeatRequest{MemberID: "m1", MemberEpoch: e1, RebalanceTimeout: -1})
	if r1.MemberEpoch != e1 || count(r1.Assignment) != 2 {
		t.Fatalf("m1 revocation: %+v", r1)
	}
	// Without its owned partitions the server assumes it still owns
	// them: m1 stays unrevoked.
	if m := s.g.consumer.members["m1"]; m.cur.State != memberUnrevokedPartitions {
		t.Fatalf("m1 state %d", m.cur.State)
	}
	s.owned["m1"] = r1.Assignment
	s.beat("m1") // acknowledges the revocation
	if s.epoch["m1"] != s.g.consumer.epoch {
		t.Fatalf("m1 epoch %d, group %d", s.epoch["m1"], s.g.consumer.epoch)
	}
	s.beat("m2")
	if count(s.owned["m2"]) != 2 {
		t.Fatalf("m2 owns %v", s.owned["m2"])
	}
	s.settle("m1", "m2")
}

func TestConsumerGroup848Errors(t *testing.T) {
	s := newCGSim(t, fakeTopics{"a": 3})
	s.cfg.ConsumerMaxSize = 2
	s.join("m1", "", "a")
	s.settle("m1")
	e := s.epoch["m1"]
	bad := "nope"
	inst := "i1"
	for _, c := range []struct {
		name string
		req  ConsumerHeartbeatRequest
		want *kerr.Error
	}{
		{"fenced epoch", ConsumerHeartbeatRequest{MemberID: "m1", MemberEpoch: e + 1, RebalanceTimeout: -1}, kerr.FencedMemberEpoch},
		{"unknown member", ConsumerHeartbeatRequest{MemberID: "x", MemberEpoch: 3, RebalanceTimeout: -1}, kerr.UnknownMemberID},
		{"empty member id v1", ConsumerHeartbeatRequest{MemberEpoch: 3, RebalanceTimeout: -1}, kerr.InvalidRequest},
		{"join without rebalance timeout", ConsumerHeartbeatRequest{MemberID: "n", RebalanceTimeout: -1, SubscribedTopicNames: []string{"a"}, Owned: []ConsumerTopicPartitions{}}, kerr.InvalidRequest},
		{"join without subscription", ConsumerHeartbeatRequest{MemberID: "n", RebalanceTimeout: time.Second, Owned: []ConsumerTopicPartitions{}}, kerr.InvalidRequest},
		{"join with owned", ConsumerHeartbeatRequest{MemberID: "n", RebalanceTimeout: time.Second, SubscribedTopicNames: []string{"a"}, Owned: []ConsumerTopicPartitions{{Partitions: []int32{0}}}}, kerr.InvalidRequest},
		{"static leave without instance", ConsumerHeartbeatRequest{MemberID: "m1", MemberEpoch: -2, RebalanceTimeout: -1}, kerr.InvalidRequest},
		{"epoch -3", ConsumerHeartbeatRequest{MemberID: "m1", MemberEpoch: -3, RebalanceTimeout: -1}, kerr.InvalidRequest},
		{"assignor", ConsumerHeartbeatRequest{MemberID: "n", RebalanceTimeout: time.Second, SubscribedTopicNames: []string{"a"}, Owned: []ConsumerTopicPartitions{}, ServerAssignor: &bad}, kerr.UnsupportedAssignor},
		{"regex", ConsumerHeartbeatRequest{MemberID: "n", RebalanceTimeout: time.Second, SubscribedTopicRegex: kptr("("), Owned: []ConsumerTopicPartitions{}}, kerr.InvalidRegularExpression},
		{"leave unknown", ConsumerHeartbeatRequest{MemberID: "x", MemberEpoch: -1, RebalanceTimeout: -1}, kerr.UnknownMemberID},
		{"static leave unknown", ConsumerHeartbeatRequest{MemberID: "x", MemberEpoch: -2, InstanceID: &inst, RebalanceTimeout: -1}, kerr.UnknownMemberID},
	} {
		if res := s.hb(c.req); res.Err != c.want {
			t.Errorf("%s: %v, want %v", c.name, res.Err, c.want)
		}
	}
	s.join("m2", "", "a")
	s.settle("m1", "m2")
	if res := s.hb(ConsumerHeartbeatRequest{MemberID: "m1", MemberEpoch: s.epoch["m1"] - 1, RebalanceTimeout: -1}); res.Err != kerr.FencedMemberEpoch {
		t.Fatalf("previous epoch without owned partitions: %v", res.Err)
	}
	res := s.hb(ConsumerHeartbeatRequest{MemberID: "m3", RebalanceTimeout: time.Second, SubscribedTopicNames: []string{"a"}, Owned: []ConsumerTopicPartitions{}})
	if res.Err != kerr.GroupMaxSizeReached {
		t.Fatalf("third member: %v", res.Err)
	}
}

func kptr(s string) *string { return &s }

func TestConsumerGroup848StaticMember(t *testing.T) {
	s := newCGSim(t, fakeTopics{"a": 4})
	inst := "i1"
	req := ConsumerHeartbeatRequest{MemberID: "m1", InstanceID: &inst, SubscribedTopicNames: []string{"a"}, RebalanceTimeout: time.Minute, Owned: []ConsumerTopicPartitions{}}
	s.apply("m1", s.hb(req))
	s.settle("m1")
	epoch := s.g.consumer.epoch
	// Another member with the same instance ID while m1 is active.
	req2 := req
	req2.MemberID = "m2"
	if res := s.hb(req2); res.Err != kerr.UnreleasedInstanceID {
		t.Fatalf("second incarnation: %v", res.Err)
	}
	// m1 leaves temporarily; m2 takes over its assignment without a
	// rebalance.
	res := s.hb(ConsumerHeartbeatRequest{MemberID: "m1", MemberEpoch: staticLeaveEpoch, InstanceID: &inst, RebalanceTimeout: -1})
	if res.Err != nil || res.MemberEpoch != staticLeaveEpoch {
		t.Fatalf("static leave: %+v", res)
	}
	res = s.hb(req2)
	if res.Err != nil || count(res.Assignment) != 4 || s.g.consumer.epoch != epoch {
		t.Fatalf("replacement: %+v, group epoch %d (was %d)", res, s.g.consumer.epoch, epoch)
	}
	if _, ok := s.g.consumer.members["m1"]; ok {
		t.Fatal("m1 still a member")
	}
}

func TestConsumerGroup848Timeouts(t *testing.T) {
	s := newCGSim(t, fakeTopics{"a": 4})
	s.cfg.ConsumerSessionTimeout = 10 * time.Second
	s.join("m1", "", "a")
	s.join("m2", "", "a")
	s.settle("m1", "m2")
	epoch := s.g.consumer.epoch
	// m2 goes silent; m1 keeps heartbeating.
	for range 3 {
		s.now = s.now.Add(4 * time.Second)
		s.beat("m1")
	}
	if _, ok := s.g.consumer.members["m2"]; ok {
		t.Fatal("m2 not expired")
	}
	if s.g.consumer.epoch != epoch+1 {
		t.Fatalf("epoch %d, want %d", s.g.consumer.epoch, epoch+1)
	}
	s.settle("m1")
	if count(s.owned["m1"]) != 4 {
		t.Fatalf("m1 owns %v", s.owned["m1"])
	}

	// A member that does not revoke within its rebalance timeout is
	// removed.
	s.cfg.ConsumerSessionTimeout = time.Hour
	req := ConsumerHeartbeatRequest{MemberID: "m3", SubscribedTopicNames: []string{"a"}, RebalanceTimeout: 5 * time.Second, Owned: []ConsumerTopicPartitions{}}
	s.apply("m3", s.hb(req))
	// m1 is told to revoke but never acknowledges.
	s.hb(ConsumerHeartbeatRequest{MemberID: "m1", MemberEpoch: s.epoch["m1"], RebalanceTimeout: -1})
	if s.g.consumer.members["m1"].cur.State != memberUnrevokedPartitions {
		t.Fatal("m1 not revoking")
	}
	s.now = s.now.Add(time.Minute + time.Second)
	s.g.Tick(s.now)
	if _, ok := s.g.consumer.members["m1"]; ok {
		t.Fatal("m1 not removed after its rebalance timeout")
	}
	s.settle("m3")
	if count(s.owned["m3"]) != 4 {
		t.Fatalf("m3 owns %v", s.owned["m3"])
	}
}

func TestConsumerGroup848PartitionsAdded(t *testing.T) {
	s := newCGSim(t, fakeTopics{"a": 2})
	s.join("m1", "", "a")
	s.join("m2", "", "a")
	s.settle("m1", "m2")
	epoch := s.g.consumer.epoch
	s.topics["a"] = 6
	s.settle("m1", "m2")
	if s.g.consumer.epoch != epoch+1 {
		t.Fatalf("epoch %d, want %d", s.g.consumer.epoch, epoch+1)
	}
	if c := s.coverage([]string{"m1", "m2"}, "a"); !slices.Equal(c, []int{3, 3}) {
		t.Fatalf("counts %v", c)
	}
}

func TestConsumerGroup848Regex(t *testing.T) {
	s := newCGSim(t, fakeTopics{"logs-a": 2, "logs-b": 2, "other": 3, "old-logs-c": 5})
	re := "logs-.*"
	res := s.hb(ConsumerHeartbeatRequest{MemberID: "m1", SubscribedTopicRegex: &re, RebalanceTimeout: time.Minute, Owned: []ConsumerTopicPartitions{}})
	s.apply("m1", res)
	s.settle("m1")
	if count(s.owned["m1"]) != 4 {
		t.Fatalf("m1 owns %v (the regex matches whole names)", s.owned["m1"])
	}
	// A topic created later that matches is assigned.
	s.topics["logs-d"] = 1
	s.settle("m1")
	if count(s.owned["m1"]) != 5 {
		t.Fatalf("m1 owns %v after logs-d was created", s.owned["m1"])
	}
}

// The group state survives a reload from its records: members, epochs
// and assignments, so clients continue without a rebalance.
func TestConsumerGroup848Reload(t *testing.T) {
	s := newCGSim(t, fakeTopics{"a": 6})
	s.join("m1", "", "a")
	s.join("m2", "range", "a")
	s.settle("m1", "m2")
	s.join("m3", "", "a")
	s.beat("m1") // mid-reconciliation
	g := reloadGroup(t, s.h.log, &s.cfg, s.now)
	if g.consumer == nil {
		t.Fatal("not a consumer group after reload")
	}
	a, b := s.g.consumer, g.consumer
	if a.epoch != b.epoch || a.targetEpoch != b.targetEpoch || len(a.members) != len(b.members) {
		t.Fatalf("epochs %d/%d vs %d/%d, members %d vs %d", a.epoch, a.targetEpoch, b.epoch, b.targetEpoch, len(a.members), len(b.members))
	}
	for id, m := range a.members {
		n := b.members[id]
		if n == nil || !metaEqual(&m.meta, &n.meta) || m.cur.Epoch != n.cur.Epoch || m.cur.PrevEpoch != n.cur.PrevEpoch ||
			m.cur.State != n.cur.State || !m.cur.Assigned.equal(n.cur.Assigned) || !m.cur.Revoking.equal(n.cur.Revoking) ||
			!a.target[id].equal(b.target[id]) {
			t.Fatalf("member %s differs after reload: %+v vs %+v", id, m, n)
		}
	}
	if g.state != s.g.state {
		t.Fatalf("state %v vs %v", g.state, s.g.state)
	}
	// Leaving everyone and deleting leaves nothing behind.
	for _, id := range []string{"m1", "m2", "m3"} {
		s.hb(ConsumerHeartbeatRequest{MemberID: id, MemberEpoch: leaveEpoch, RebalanceTimeout: -1})
	}
	var derr *kerr.Error = kerr.UnknownServerError
	s.g.Delete(s.now, func(err *kerr.Error) { derr = err })
	if derr != nil {
		t.Fatalf("delete: %v", derr)
	}
	ld := newLoader(slog.New(slog.DiscardHandler))
	for i, r := range s.h.log {
		ld.apply(int64(i), r.Key, r.Value)
	}
	if gs := ld.groups(s.now, &s.cfg); len(gs) != 0 {
		t.Fatalf("groups after delete: %v", gs)
	}
}

func reloadGroup(t *testing.T, log []Record, cfg *Config, now time.Time) *Group {
	t.Helper()
	ld := newLoader(slog.New(slog.DiscardHandler))
	for i, r := range log {
		// Compaction keeps the last record of each key: replaying the
		// compacted log must give the same state.
		last := true
		for _, later := range log[i+1:] {
			if string(later.Key) == string(r.Key) {
				last = false
				break
			}
		}
		if last {
			ld.apply(int64(i), r.Key, r.Value)
		}
	}
	g := ld.groups(now, cfg)["g"]
	if g == nil {
		t.Fatal("group not loaded")
	}
	return g
}

// Classic and consumer groups of one ID exclude each other while they
// have members.
func TestConsumerGroup848ClassicExclusion(t *testing.T) {
	s := newCGSim(t, fakeTopics{"a": 2})
	s.join("m1", "", "a")
	var jr JoinResult
	s.g.Join(s.now, JoinRequest{ProtocolType: "consumer", Protocols: []Protocol{{Name: "range"}}, SessionTimeout: 10 * time.Second, RebalanceTimeout: 10 * time.Second}, func(r JoinResult) { jr = r })
	if jr.Err != kerr.GroupIDNotFound {
		t.Fatalf("classic join to a consumer group: %v", jr.Err)
	}
	if err := s.g.Heartbeat(s.now, HeartbeatRequest{MemberID: "x"}); err != kerr.GroupIDNotFound {
		t.Fatalf("classic heartbeat: %v", err)
	}
	// Commits: members at their epoch; others fenced or stale.
	commit := func(member string, epoch int32) *kerr.Error {
		var res CommitResult
		s.g.Commit(s.now, CommitRequest{MemberID: member, Generation: epoch, Version: 9, RetentionTime: -1,
			Topics: []CommitTopic{{Topic: "a", Partitions: []CommitPartition{{Partition: 0, Offset: 1}}}}}, func(r CommitResult) { res = r })
		return res.Topics[0][0]
	}
	e := s.epoch["m1"]
	for _, c := range []struct {
		member string
		epoch  int32
		want   *kerr.Error
	}{{"m1", e, nil}, {"m1", e + 1, kerr.FencedMemberEpoch}, {"m1", e - 1, kerr.StaleMemberEpoch}, {"x", e, kerr.UnknownMemberID}, {"", -1, kerr.UnknownMemberID}} {
		if err := commit(c.member, c.epoch); err != c.want {
			t.Errorf("commit %s@%d: %v, want %v", c.member, c.epoch, err, c.want)
		}
	}
	if r := s.g.Fetch(FetchRequest{MemberID: kptr("m1"), MemberEpoch: e + 1}); r.Err != kerr.StaleMemberEpoch {
		t.Fatalf("fetch at a wrong epoch: %v", r.Err)
	}
	if r := s.g.Fetch(FetchRequest{MemberID: kptr("m1"), MemberEpoch: e}); r.Err != nil || r.Topics[0].Partitions[0].Offset != 1 {
		t.Fatalf("fetch: %+v", r)
	}
	var derr *kerr.Error
	s.g.Delete(s.now, func(err *kerr.Error) { derr = err })
	if derr != kerr.NonEmptyGroup {
		t.Fatalf("delete of a non-empty consumer group: %v", derr)
	}
	// Once empty, a classic join turns it into a classic group.
	s.hb(ConsumerHeartbeatRequest{MemberID: "m1", MemberEpoch: leaveEpoch, RebalanceTimeout: -1})
	if err := commit("", -1); err != nil {
		t.Fatalf("commit without membership to an empty group: %v", err)
	}
	s.g.Join(s.now, JoinRequest{ProtocolType: "consumer", Protocols: []Protocol{{Name: "range"}}, SessionTimeout: 10 * time.Second, RebalanceTimeout: 10 * time.Second}, func(r JoinResult) { jr = r })
	if s.g.consumer != nil {
		t.Fatal("still a consumer group")
	}
	// And a consumer heartbeat to a classic group with members fails.
	res := s.hb(ConsumerHeartbeatRequest{MemberID: "m9", SubscribedTopicNames: []string{"a"}, RebalanceTimeout: time.Second, Owned: []ConsumerTopicPartitions{}})
	if len(s.g.members) > 0 && res.Err != kerr.GroupIDNotFound {
		t.Fatalf("consumer heartbeat to a classic group: %v", res.Err)
	}
}

func TestConsumerGroup848Describe(t *testing.T) {
	s := newCGSim(t, fakeTopics{"a": 3})
	s.join("m1", "range", "a")
	s.settle("m1")
	d := s.g.ConsumerDescribe()
	if d.Err != nil || d.State != Stable || d.Assignor != "range" || len(d.Members) != 1 || count(d.Members[0].Assignment) != 3 || d.Members[0].Assignment[0].Topic != "a" {
		t.Fatalf("describe: %+v", d)
	}
	if cd := s.g.Describe(); cd.State != Dead || cd.ErrMessage == "" || len(cd.Members) != 0 {
		t.Fatalf("classic describe: %+v", cd)
	}
	g2 := newGroup("h", &s.cfg, s.h, nil)
	if d := g2.ConsumerDescribe(); d.Err != kerr.GroupIDNotFound {
		t.Fatalf("describe of a classic group: %v", d.Err)
	}
}

// Records decode as they were encoded, and garbage does not panic.
func TestConsumerGroup848Records(t *testing.T) {
	inst := "i"
	a := assignment{topicID("a"): {0, 2}, topicID("b"): {1}}
	recs := []Record{
		cgMetadataRecord("g", 7),
		cgPartitionMetadataRecord("g", []topicMeta{{ID: topicID("a"), Name: "a", Partitions: 3}}),
		cgMemberMetadataRecord("g", "m", &cgMemberMeta{InstanceID: &inst, ClientID: "c", ClientHost: "/h", Topics: []string{"a", "b"}, RebalanceTimeout: 100}),
		cgTargetMetadataRecord("g", 6),
		cgTargetMemberRecord("g", "m", a),
		cgCurrentMemberRecord("g", "m", &cgCurrent{Epoch: 6, PrevEpoch: 5, State: 1, Assigned: a, Revoking: assignment{topicID("b"): {3}}}),
	}
	for _, r := range recs {
		d, ok, err := decodeRecord(r.Key, r.Value)
		if !ok || err != nil || !d.isConsumer || d.group != "g" {
			t.Fatalf("decode %x: %v %v %+v", r.Key, ok, err, d)
		}
		for i := range r.Value {
			decodeRecord(r.Key, r.Value[:i]) // must not panic
		}
	}
	d, _, _ := decodeRecord(recs[5].Key, recs[5].Value)
	c := d.cg.value.(*cgCurrent)
	if d.cg.member != "m" || c.Epoch != 6 || c.PrevEpoch != 5 || c.State != 1 || !c.Assigned.equal(a) || !c.Revoking.has(topicID("b"), 3) {
		t.Fatalf("current assignment: %+v", c)
	}
	d, _, _ = decodeRecord(recs[2].Key, recs[2].Value)
	m := d.cg.value.(*cgMemberMeta)
	if *m.InstanceID != "i" || m.ClientHost != "/h" || !slices.Equal(m.Topics, []string{"a", "b"}) || m.RebalanceTimeout != 100 || m.Regex != nil {
		t.Fatalf("member metadata: %+v", m)
	}
}

// A heartbeat that writes nothing is answered only once the group's
// earlier writes are durable, with their failure if they failed.
func TestConsumerGroup848AnswersAfterWrites(t *testing.T) {
	s := newCGSim(t, fakeTopics{"a": 2})
	s.join("m1", "", "a")
	s.join("m2", "", "a")
	s.settle("m1", "m2")
	s.h.hold = true
	// m1 moved to another host: its metadata is rewritten (no epoch
	// bump).
	var r1, r2 *ConsumerHeartbeatResult
	s.g.ConsumerHeartbeat(s.now, ConsumerHeartbeatRequest{Version: 1, MemberID: "m1", MemberEpoch: s.epoch["m1"], RebalanceTimeout: -1,
		ClientHost: "/elsewhere", Topics: s.topics}, func(r ConsumerHeartbeatResult) { r1 = &r })
	if len(s.h.held) != 1 || r1 != nil {
		t.Fatalf("held %d writes, answered %v", len(s.h.held), r1)
	}
	s.g.ConsumerHeartbeat(s.now, ConsumerHeartbeatRequest{Version: 1, MemberID: "m2", MemberEpoch: s.epoch["m2"], RebalanceTimeout: -1,
		Topics: s.topics}, func(r ConsumerHeartbeatResult) { r2 = &r })
	if len(s.h.held) != 1 || r2 != nil {
		t.Fatalf("m2's keepalive wrote or was answered before m1's write: held %d, %v", len(s.h.held), r2)
	}
	s.h.held[0](s.now, kerr.NotLeaderForPartition)
	if r1 == nil || r2 == nil || r1.Err != kerr.NotCoordinator || r2.Err != kerr.NotCoordinator {
		t.Fatalf("answers after a failed write: %+v %+v", r1, r2)
	}
}

func TestConsumerGroup848OffsetDeleteAndTxn(t *testing.T) {
	s := newCGSim(t, fakeTopics{"a": 1, "b": 1})
	s.cfg.ConsumerSessionTimeout = 30 * 24 * time.Hour
	s.join("m1", "", "a")
	s.settle("m1")
	for _, topic := range []string{"a", "b"} {
		var res CommitResult
		s.g.Commit(s.now, CommitRequest{MemberID: "m1", Generation: s.epoch["m1"], Version: 9, RetentionTime: -1,
			Topics: []CommitTopic{{Topic: topic, Partitions: []CommitPartition{{Offset: 3}}}}}, func(r CommitResult) { res = r })
		if res.Topics[0][0] != nil {
			t.Fatalf("commit %s: %v", topic, res.Topics[0][0])
		}
	}
	var od OffsetDeleteResult
	s.g.DeleteOffsets(s.now, []OffsetDeleteTopic{{Topic: "a", Partitions: []int32{0}}, {Topic: "b", Partitions: []int32{0}}}, func(r OffsetDeleteResult) { od = r })
	if od.Err != nil || od.Topics[0][0] != kerr.GroupSubscribedToTopic || od.Topics[1][0] != nil {
		t.Fatalf("offset delete: %+v", od)
	}
	// TxnOffsetCommit: a member at a wrong epoch is fenced; no
	// membership at all commits.
	for _, c := range []struct {
		member string
		epoch  int32
		want   *kerr.Error
	}{{"m1", s.epoch["m1"] + 1, kerr.FencedMemberEpoch}, {"m1", s.epoch["m1"] - 1, kerr.IllegalGeneration}, {"m1", s.epoch["m1"], nil}, {"", -1, nil}, {"zz", 1, kerr.UnknownMemberID}} {
		var res CommitResult
		s.g.TxnCommit(s.now, TxnCommitRequest{ProducerID: 1, MemberID: c.member, Generation: c.epoch,
			Topics: []CommitTopic{{Topic: "a", Partitions: []CommitPartition{{Offset: 4}}}}}, func(r CommitResult) { res = r })
		if res.Topics[0][0] != c.want {
			t.Errorf("txn commit %s@%d: %v, want %v", c.member, c.epoch, res.Topics[0][0], c.want)
		}
	}
	// Classic OffsetCommit versions are refused for members.
	var res CommitResult
	s.g.Commit(s.now, CommitRequest{MemberID: "m1", Generation: s.epoch["m1"], Version: 8, RetentionTime: -1,
		Topics: []CommitTopic{{Topic: "a", Partitions: []CommitPartition{{Offset: 3}}}}}, func(r CommitResult) { res = r })
	if res.Topics[0][0] != kerr.UnsupportedVersion {
		t.Fatalf("commit v8 by a member: %v", res.Topics[0][0])
	}
}

func (e *coordEnv) consumerHB(group string, req ConsumerHeartbeatRequest) ConsumerHeartbeatResult {
	e.t.Helper()
	req.Version = 1
	if req.Topics == nil {
		req.Topics = fakeTopics{"a": 4}
	}
	cb, wait := await[ConsumerHeartbeatResult](e.t)
	e.c.ConsumerHeartbeat(group, req, cb)
	return wait()
}

// A consumer group moves to another coordinator (Resign here, Elect
// there) and its members carry on at their epochs, without a
// rebalance; their sessions then run on the new coordinator.
func TestConsumerGroup848Failover(t *testing.T) {
	log := newMemLog()
	first := newCoordEnv(t, log, true)
	join := func(e *coordEnv, id string) ConsumerHeartbeatResult {
		return e.consumerHB("g", ConsumerHeartbeatRequest{MemberID: id, SubscribedTopicNames: []string{"a"}, RebalanceTimeout: time.Minute, Owned: []ConsumerTopicPartitions{}})
	}
	owned := map[string][]ConsumerTopicPartitions{}
	epochs := map[string]int32{}
	beat := func(e *coordEnv, id string) ConsumerHeartbeatResult {
		r := e.consumerHB("g", ConsumerHeartbeatRequest{MemberID: id, MemberEpoch: epochs[id], RebalanceTimeout: -1, Owned: owned[id]})
		if r.Err == nil {
			epochs[id] = r.MemberEpoch
			if r.HasAssignment {
				owned[id] = r.Assignment
			}
		}
		return r
	}
	for _, id := range []string{"m1", "m2"} {
		r := join(first, id)
		epochs[id], owned[id] = r.MemberEpoch, r.Assignment
	}
	for range 4 {
		beat(first, "m1")
		beat(first, "m2")
	}
	if count(owned["m1"])+count(owned["m2"]) != 4 || epochs["m1"] != 2 || epochs["m2"] != 2 {
		t.Fatalf("before failover: %v %v", owned, epochs)
	}
	first.c.Resign(PartitionFor("g", 5), 1)
	if r := beat(first, "m1"); r.Err != kerr.NotCoordinator {
		t.Fatalf("heartbeat to the resigned coordinator: %v", r.Err)
	}
	first.c.Close()

	e := newLeaderEnv(t, log)
	e.elect("g", 2)
	for _, id := range []string{"m1", "m2"} {
		before := owned[id]
		if r := beat(e, id); r.Err != nil || r.MemberEpoch != 2 || count(owned[id]) != count(before) {
			t.Fatalf("%s after failover: %+v", id, r)
		}
	}
	// Without heartbeats both sessions expire on the new coordinator;
	// a new member then gets every partition.
	e.advance(46 * time.Second)
	if r := beat(e, "m1"); r.Err != kerr.UnknownMemberID {
		t.Fatalf("m1 after its session: %v", r.Err)
	}
	r := join(e, "m3")
	if r.Err != nil || count(r.Assignment) != 4 {
		t.Fatalf("new member after both expired: %+v", r)
	}
}

// A refused join does not leave a group behind.
func TestConsumerGroup848BadJoinCreatesNothing(t *testing.T) {
	e := newCoordEnv(t, newMemLog(), true)
	r := e.consumerHB("g", ConsumerHeartbeatRequest{MemberID: "m", RebalanceTimeout: time.Second, Owned: []ConsumerTopicPartitions{}})
	if r.Err != kerr.InvalidRequest {
		t.Fatalf("join without a subscription: %v", r.Err)
	}
	if gs, _ := e.c.List(); len(gs) != 0 {
		t.Fatalf("groups after a refused join: %+v", gs)
	}
}

// A consumer group's offsets expire a retention period after their
// commit for topics no member subscribes to; an empty consumer group
// without offsets is then deleted.
func TestConsumerGroup848OffsetExpiry(t *testing.T) {
	s := newCGSim(t, fakeTopics{"a": 1, "b": 1})
	s.cfg.ConsumerSessionTimeout = 30 * 24 * time.Hour
	s.join("m1", "", "a")
	s.settle("m1")
	for _, topic := range []string{"a", "b"} {
		var res CommitResult
		s.g.Commit(s.now, CommitRequest{MemberID: "m1", Generation: s.epoch["m1"], Version: 9, RetentionTime: -1,
			Topics: []CommitTopic{{Topic: topic, Partitions: []CommitPartition{{Offset: 3}}}}}, func(r CommitResult) { res = r })
		if res.Topics[0][0] != nil {
			t.Fatal(res.Topics[0][0])
		}
	}
	s.now = s.now.Add(s.cfg.OffsetsRetention + time.Minute)
	s.beat("m1")
	if s.g.ExpireOffsets(s.now) {
		t.Fatal("a group with a member died")
	}
	if _, ok := s.g.offsets.committed[topicPartition{"b", 0}]; ok {
		t.Fatal("the offset of unsubscribed b did not expire")
	}
	if _, ok := s.g.offsets.committed[topicPartition{"a", 0}]; !ok {
		t.Fatal("the offset of subscribed a expired")
	}
	s.hb(ConsumerHeartbeatRequest{MemberID: "m1", MemberEpoch: leaveEpoch, RebalanceTimeout: -1})
	if !s.g.ExpireOffsets(s.now) || s.g.state != Dead {
		t.Fatalf("empty group after expiry: %v", s.g.state)
	}
	ld := newLoader(slog.New(slog.DiscardHandler))
	for i, r := range s.h.log {
		ld.apply(int64(i), r.Key, r.Value)
	}
	if gs := ld.groups(s.now, &s.cfg); len(gs) != 0 {
		t.Fatalf("groups after expiry: %v", gs)
	}
}

// checkSubscriptionCounts fails if byName or regexes disagree with the
// members' subscriptions.
func checkSubscriptionCounts(t *testing.T, cg *consumerGroup) {
	t.Helper()
	if err := subscriptionCountsError(cg); err != "" {
		t.Fatal(err)
	}
}

// KIP-1251: a commit at an older member epoch is accepted for the
// partitions the member still holds and got at that epoch or before;
// the others are STALE_MEMBER_EPOCH.
func TestConsumerGroup848CommitAssignmentEpochs(t *testing.T) {
	s := newCGSim(t, fakeTopics{"a": 2})
	s.join("m1", "", "a")
	s.settle("m1")
	old := s.epoch["m1"]
	s.join("m2", "", "a")
	s.beat("m1") // told to revoke one partition
	s.beat("m1") // revoked: on to the next epoch
	if s.epoch["m1"] == old {
		t.Fatal("m1 did not move on")
	}
	kept := s.owned["m1"][0].Partitions[0]
	commit := func(epoch int32) []*kerr.Error {
		var res CommitResult
		s.g.Commit(s.now, CommitRequest{MemberID: "m1", Generation: epoch, Version: 9, RetentionTime: -1,
			Topics: []CommitTopic{{Topic: "a", Partitions: []CommitPartition{{Partition: 0, Offset: 1}, {Partition: 1, Offset: 1}}}}}, func(r CommitResult) { res = r })
		return res.Topics[0]
	}
	got := commit(old)
	for p, err := range got {
		want := kerr.StaleMemberEpoch
		if int32(p) == kept {
			want = nil
		}
		if err != want {
			t.Errorf("commit of a:%d at the old epoch: %v, want %v", p, err, want)
		}
	}
	if got := commit(old - 1); got[0] != kerr.StaleMemberEpoch || got[1] != kerr.StaleMemberEpoch {
		t.Errorf("commit before the partitions were assigned: %v", got)
	}
	if got := commit(s.epoch["m1"]); got[0] != nil || got[1] != nil {
		// The current epoch commits whatever it names, as Kafka.
		t.Errorf("commit at the current epoch: %v", got)
	}
}
