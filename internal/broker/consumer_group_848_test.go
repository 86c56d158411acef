package broker_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/ktest"
	"github.com/gregor-streaming/gregor/internal/vfs"
)

// End-to-end tests of KIP-848 consumer groups with franz-go's
// ServerSideBalancer: the broker assigns.

// broker848 is groupBroker with quick consumer group heartbeats.
func broker848(t *testing.T, opts ...ktest.Option) *ktest.Broker {
	t.Helper()
	return groupBroker(t, append([]ktest.Option{ktest.Set("group.consumer.heartbeat.interval.ms", "100")}, opts...)...)
}

// start848 starts a member of a consumer group; bal picks the server
// assignor (range, or sticky for uniform).
func start848(t *testing.T, b *ktest.Broker, name, group, topic string, bal kgo.GroupBalancer, process func(m *member, r *kgo.Record), extra ...kgo.Opt) *member {
	t.Helper()
	return startMember(t, b, name, memberOpts{group: group, topic: topic, balancer: bal, process: process,
		extra: append([]kgo.Opt{kgo.ServerSideBalancer()}, extra...)})
}

func describe848(t *testing.T, adm *kadm.Client, group string) kadm.DescribedConsumerGroup {
	t.Helper()
	d, err := tryDescribe848(adm, group)
	if err != nil {
		t.Fatalf("describe consumer groups: %v", err)
	}
	return d
}

func tryDescribe848(adm *kadm.Client, group string) (kadm.DescribedConsumerGroup, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	dg, err := adm.DescribeConsumerGroups(ctx, group)
	return dg[group], err
}

// waitStable848 waits until the members own disjoint, covering,
// balanced assignments and the broker calls the group Stable with them
// all at the group epoch.
func waitStable848(t *testing.T, adm *kadm.Client, group string, n int32, ms ...*member) time.Duration {
	t.Helper()
	return waitFor(t, 30*time.Second, fmt.Sprintf("%d members to share %d partitions", len(ms), n), func() bool {
		if ok, _ := covering(n, ms...); !ok {
			return false
		}
		lo := int(n) / len(ms)
		for _, m := range ms {
			if k := len(m.ownedSet()); k < lo || k > lo+1 {
				return false
			}
		}
		d := describe848(t, adm, group)
		if d.Err != nil || d.State != "Stable" || len(d.Members) != len(ms) {
			return false
		}
		for _, m := range d.Members {
			if m.MemberEpoch != d.Epoch {
				return false
			}
		}
		return true
	})
}

// TestConsumerGroup848Assignors: three members on 12 partitions get
// disjoint covering assignments from either server assignor;
// ConsumerGroupDescribe, DescribeGroups and ListGroups agree.
func TestConsumerGroup848Assignors(t *testing.T) {
	for _, c := range []struct {
		bal      kgo.GroupBalancer
		assignor string
	}{{kgo.CooperativeStickyBalancer(), "uniform"}, {kgo.RangeBalancer(), "range"}} {
		t.Run(c.assignor, func(t *testing.T) {
			b := broker848(t)
			b.CreateTopic("twelve", 12, nil)
			adm := b.Admin()
			var ms []*member
			for i := range 3 {
				ms = append(ms, start848(t, b, "m"+strconv.Itoa(i), "g", "twelve", c.bal, nil))
			}
			waitStable848(t, adm, "g", 12, ms...)
			d := describe848(t, adm, "g")
			if d.AssignorName != c.assignor || d.Epoch != d.AssignmentEpoch {
				t.Errorf("assignor %q, epochs %d/%d", d.AssignorName, d.Epoch, d.AssignmentEpoch)
			}
			byBroker := map[int32]string{}
			for _, dm := range d.Members {
				if dm.MemberType != 1 || len(dm.SubscribedTopics) != 1 || dm.SubscribedTopics[0] != "twelve" {
					t.Errorf("member %+v", dm)
				}
				for p := range dm.Assignment["twelve"] {
					byBroker[p] = dm.ClientID
				}
			}
			for _, m := range ms {
				for p := range m.ownedSet() {
					if byBroker[p] != m.name {
						t.Errorf("partition %d: client %s owns it, broker says %s", p, m.name, byBroker[p])
					}
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			dg, err := adm.DescribeGroups(ctx, "g")
			if err != nil {
				t.Fatal(err)
			}
			// Not a classic group, as Kafka 4 answers.
			if g := dg["g"]; g.State != "Dead" || !errors.Is(g.Err, kerr.GroupIDNotFound) || len(g.Members) != 0 {
				t.Errorf("DescribeGroups: state %q, %v, %d members", g.State, g.Err, len(g.Members))
			}
			for _, types := range [][]string{{"consumer"}, {"classic"}} {
				lg, err := adm.ListGroupsByType(ctx, types)
				if err != nil {
					t.Fatal(err)
				}
				_, listed := lg["g"]
				if listed != (types[0] == "consumer") || listed && lg["g"].GroupType != "consumer" {
					t.Errorf("ListGroups type %v: %+v", types, lg)
				}
			}
		})
	}
}

// records tracks which member processed which record.
type records struct {
	mu sync.Mutex
	by map[string][]string // "p/offset" → members, in order
}

func (rs *records) process(m *member, r *kgo.Record) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	k := fmt.Sprintf("%d/%d", r.Partition, r.Offset)
	rs.by[k] = append(rs.by[k], m.name)
}

func (rs *records) count() int {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return len(rs.by)
}

func produceN(t *testing.T, b *ktest.Broker, topic string, n int) {
	t.Helper()
	prod := b.Client(kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var rs []*kgo.Record
	for i := range n {
		rs = append(rs, &kgo.Record{Value: []byte(strconv.Itoa(i))})
	}
	if err := prod.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// TestConsumerGroup848LeaveAndDie: a member that leaves, then one that
// dies (no leave; its network cut), have their partitions moved to the
// live member, which consumes everything produced, once.
func TestConsumerGroup848LeaveAndDie(t *testing.T) {
	b := broker848(t, ktest.Set("group.consumer.session.timeout.ms", "2000"))
	b.CreateTopic("twelve", 12, nil)
	adm := b.Admin()
	rs := &records{by: map[string][]string{}}
	bal := kgo.CooperativeStickyBalancer()
	a := start848(t, b, "a", "g", "twelve", bal, rs.process, kgo.AutoCommitInterval(100*time.Millisecond))
	bb := start848(t, b, "b", "g", "twelve", bal, rs.process, kgo.AutoCommitInterval(100*time.Millisecond))
	c := start848(t, b, "c", "g", "twelve", bal, rs.process, kgo.AutoCommitInterval(100*time.Millisecond))
	waitStable848(t, adm, "g", 12, a, bb, c)
	produceN(t, b, "twelve", 120)
	waitFor(t, 20*time.Second, "120 records consumed", func() bool { return rs.count() == 120 })

	c.stop()
	waitStable848(t, adm, "g", 12, a, bb)
	produceN(t, b, "twelve", 120)
	waitFor(t, 20*time.Second, "240 records consumed", func() bool { return rs.count() == 240 })

	bb.net.cut()
	cutAt := time.Now()
	waitStable848(t, adm, "g", 12, a)
	if since := time.Since(cutAt); since < time.Second {
		t.Errorf("b expired after %v, before its session timeout", since)
	}
	produceN(t, b, "twelve", 120)
	waitFor(t, 20*time.Second, "360 records consumed", func() bool { return rs.count() == 360 })

	// Nothing consumed twice by a live member: a record consumed
	// again after a member left or died was consumed first by that
	// member (committed offsets lag), never twice by a or b.
	rs.mu.Lock()
	defer rs.mu.Unlock()
	for k, by := range rs.by {
		n := 0
		for _, name := range by {
			if name == "a" {
				n++
			}
		}
		if n > 1 || len(by) > 1 && by[0] == "a" {
			t.Errorf("record %s consumed by %v", k, by)
		}
	}
}

// TestConsumerGroup848CommitRestart: members keep their member IDs,
// epochs and partitions across a broker restart (the group reloads from
// __consumer_offsets, no rebalance), and a new member resumes after
// the commits.
func TestConsumerGroup848CommitRestart(t *testing.T) {
	b := broker848(t)
	b.CreateTopic("four", 4, nil)
	adm := b.Admin()
	produceN(t, b, "four", 40)
	rs := &records{by: map[string][]string{}}
	bal := kgo.RangeBalancer()
	a := start848(t, b, "a", "g", "four", bal, rs.process, kgo.AutoCommitInterval(100*time.Millisecond))
	bb := start848(t, b, "b", "g", "four", bal, rs.process, kgo.AutoCommitInterval(100*time.Millisecond))
	waitStable848(t, adm, "g", 4, a, bb)
	waitFor(t, 20*time.Second, "40 records consumed", func() bool { return rs.count() == 40 })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	waitFor(t, 10*time.Second, "the offsets committed", func() bool {
		offs, err := adm.FetchOffsets(ctx, "g")
		if err != nil {
			return false
		}
		n := int64(0)
		offs.Each(func(o kadm.OffsetResponse) { n += o.At })
		return n == 40
	})
	before := describe848(t, adm, "g")
	callbacks := func() int {
		n := 0
		for _, m := range []*member{a, bb} {
			m.mu.Lock()
			n += nonEmpty(m.assigned) + nonEmpty(m.revoked) + nonEmpty(m.lost)
			m.mu.Unlock()
		}
		return n
	}
	nCallbacks := callbacks()

	b.Restart()
	waitGroupsLoaded(t, b)
	after := describe848(t, adm, "g")
	if after.Err != nil || after.Epoch != before.Epoch || len(after.Members) != 2 {
		t.Fatalf("after restart: %+v (before: epoch %d)", after, before.Epoch)
	}
	for i, m := range after.Members {
		if m.MemberID != before.Members[i].MemberID || m.MemberEpoch != before.Members[i].MemberEpoch {
			t.Errorf("member %s@%d, was %s@%d", m.MemberID, m.MemberEpoch, before.Members[i].MemberID, before.Members[i].MemberEpoch)
		}
	}
	// The members carry on: new records are consumed, the epoch stays.
	produceN(t, b, "four", 40)
	waitFor(t, 20*time.Second, "80 records consumed", func() bool { return rs.count() == 80 })
	if d := describe848(t, adm, "g"); d.Epoch != before.Epoch {
		t.Errorf("group epoch %d after restart, was %d: a rebalance happened", d.Epoch, before.Epoch)
	}
	if n := callbacks(); n != nCallbacks {
		t.Errorf("partitions moved across the restart: a assigned %v revoked %v lost %v, b assigned %v revoked %v lost %v",
			a.assigned, a.revoked, a.lost, bb.assigned, bb.revoked, bb.lost)
	}

	// Everyone leaves; a new member resumes after the commits.
	waitFor(t, 10*time.Second, "the offsets committed", func() bool {
		offs, err := adm.FetchOffsets(ctx, "g")
		if err != nil {
			return false
		}
		n := int64(0)
		offs.Each(func(o kadm.OffsetResponse) { n += o.At })
		return n == 80
	})
	a.stop()
	bb.stop()
	produceN(t, b, "four", 40)
	c := start848(t, b, "c", "g", "four", bal, rs.process)
	waitFor(t, 20*time.Second, "120 records consumed", func() bool { return rs.count() == 120 })
	c.stop()
	rs.mu.Lock()
	defer rs.mu.Unlock()
	for k, by := range rs.by {
		if len(by) != 1 {
			t.Errorf("record %s consumed by %v", k, by)
		}
	}
	// The empty consumer group can be deleted.
	dr, err := adm.DeleteGroups(ctx, "g")
	if err != nil || dr["g"].Err != nil {
		t.Fatalf("delete: %v %v", err, dr["g"].Err)
	}
}

// TestConsumerGroup848PartitionsAdded: partitions added to a subscribed
// topic are assigned.
func TestConsumerGroup848PartitionsAdded(t *testing.T) {
	b := broker848(t)
	b.CreateTopic("grow", 2, nil)
	adm := b.Admin()
	bal := kgo.CooperativeStickyBalancer()
	a := start848(t, b, "a", "g", "grow", bal, nil, kgo.MetadataMinAge(100*time.Millisecond), kgo.MetadataMaxAge(250*time.Millisecond))
	bb := start848(t, b, "b", "g", "grow", bal, nil, kgo.MetadataMinAge(100*time.Millisecond), kgo.MetadataMaxAge(250*time.Millisecond))
	waitStable848(t, adm, "g", 2, a, bb)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := adm.CreatePartitions(ctx, 4, "grow"); err != nil {
		t.Fatal(err)
	}
	waitStable848(t, adm, "g", 6, a, bb)
}

// TestConsumerGroup848Errors: the protocol's refusals over the wire.
func TestConsumerGroup848Errors(t *testing.T) {
	b := broker848(t)
	b.CreateTopic("t", 1, nil)
	hb := func(mut func(r *kmsg.ConsumerGroupHeartbeatRequest)) *kmsg.ConsumerGroupHeartbeatResponse {
		r := kmsg.NewPtrConsumerGroupHeartbeatRequest()
		r.Version, r.Group, r.MemberID, r.RebalanceTimeoutMillis = 1, "g", "m1", 10000
		r.SubscribedTopicNames, r.Topics = []string{"t"}, []kmsg.ConsumerGroupHeartbeatRequestTopic{}
		mut(r)
		return send[*kmsg.ConsumerGroupHeartbeatResponse](t, b, r)
	}
	join := hb(func(*kmsg.ConsumerGroupHeartbeatRequest) {})
	if join.ErrorCode != 0 || join.MemberEpoch != 1 || join.Assignment == nil || join.HeartbeatIntervalMillis != 100 {
		t.Fatalf("join: %+v", join)
	}
	for _, c := range []struct {
		name string
		mut  func(r *kmsg.ConsumerGroupHeartbeatRequest)
		want int16
	}{
		{"fenced", func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.MemberEpoch = 5 }, 110},
		{"unknown member", func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.MemberID, r.MemberEpoch = "x", 1 }, 25},
		{"no member id", func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.MemberID = "" }, 42},
		{"assignor", func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.MemberID, r.ServerAssignor = "m2", kmsg.StringPtr("x") }, 112},
		{"regex", func(r *kmsg.ConsumerGroupHeartbeatRequest) {
			r.MemberID, r.SubscribedTopicNames, r.SubscribedTopicRegex = "m2", nil, kmsg.StringPtr("(")
		}, 128},
	} {
		if got := hb(c.mut); got.ErrorCode != c.want {
			t.Errorf("%s: error %d, want %d", c.name, got.ErrorCode, c.want)
		}
	}
	// A classic join to the non-empty consumer group is refused.
	jg := kmsg.NewPtrJoinGroupRequest()
	jg.Version, jg.Group, jg.SessionTimeoutMillis, jg.RebalanceTimeoutMillis, jg.ProtocolType = 9, "g", 10000, 10000, "consumer"
	p := kmsg.NewJoinGroupRequestProtocol()
	p.Name = "range"
	jg.Protocols = append(jg.Protocols, p)
	if got := send[*kmsg.JoinGroupResponse](t, b, jg); got.ErrorCode != 69 {
		t.Errorf("classic join: error %d, want GROUP_ID_NOT_FOUND", got.ErrorCode)
	}
	// Leaving.
	if got := hb(func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.MemberEpoch = -1 }); got.ErrorCode != 0 || got.MemberEpoch != -1 {
		t.Errorf("leave: %+v", got)
	}
	// A consumer heartbeat to a classic group with members is refused.
	cl := b.Client(kgo.ConsumerGroup("classic"), kgo.ConsumeTopics("t"))
	waitFor(t, 20*time.Second, "the classic group to be stable", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		dg, err := b.Admin().DescribeGroups(ctx, "classic")
		return err == nil && dg["classic"].State == "Stable"
	})
	if got := hb(func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.Group = "classic" }); got.ErrorCode != 69 {
		t.Errorf("consumer heartbeat to a classic group: error %d", got.ErrorCode)
	}
	cl.Close()
}

// TestConsumerGroup848Regex: a regex subscription (v1) is resolved by
// the broker, including topics created later.
func TestConsumerGroup848Regex(t *testing.T) {
	b := broker848(t)
	b.CreateTopic("logs-a", 2, nil)
	b.CreateTopic("logs-b", 2, nil)
	b.CreateTopic("metrics", 3, nil)
	adm := b.Admin()
	// The member's callbacks track one topic only: count the broker's
	// view instead.
	assigned := func() map[string]int {
		out := map[string]int{}
		d := describe848(t, adm, "g")
		for _, m := range d.Members {
			for topic, ps := range m.Assignment {
				out[topic] += len(ps)
			}
		}
		return out
	}
	start848(t, b, "a", "g", "logs-.*", kgo.CooperativeStickyBalancer(), nil, kgo.ConsumeRegex(),
		kgo.MetadataMinAge(100*time.Millisecond), kgo.MetadataMaxAge(250*time.Millisecond))
	waitFor(t, 20*time.Second, "logs-a and logs-b assigned", func() bool {
		got := assigned()
		return got["logs-a"] == 2 && got["logs-b"] == 2 && len(got) == 2
	})
	d := describe848(t, adm, "g")
	if len(d.Members) != 1 || d.Members[0].SubscribedTopicRegex == nil {
		t.Fatalf("described: %+v", d)
	}
	b.CreateTopic("logs-c", 1, nil)
	waitFor(t, 20*time.Second, "logs-c assigned", func() bool { return assigned()["logs-c"] == 1 })
}

// TestConsumerGroup848Authorization: READ on the group and DESCRIBE on
// the subscribed topics for ConsumerGroupHeartbeat; DESCRIBE on the
// group and the assigned topics for ConsumerGroupDescribe, as Kafka.
func TestConsumerGroup848Authorization(t *testing.T) {
	b := aclBroker(t, ktest.Set("group.consumer.heartbeat.interval.ms", "100"))
	ctx := ctxT(t, 30*time.Second)
	adm := kadm.NewClient(as(b, "admin"))
	for _, topic := range []string{"orders", "secret"} {
		if _, err := adm.CreateTopic(ctx, 2, 1, nil, topic); err != nil {
			t.Fatal(err)
		}
	}
	createACLs(t, adm, kadm.NewACLs().Allow("User:alice").AllowHosts().Topics("orders").
		Operations(kadm.OpRead).ResourcePatternType(kadm.ACLPatternLiteral))
	createACLs(t, adm, kadm.NewACLs().Allow("User:alice").AllowHosts().Groups("alice-").
		Operations(kadm.OpRead).ResourcePatternType(kadm.ACLPatternPrefixed))
	createACLs(t, adm, kadm.NewACLs().Allow("User:bob").AllowHosts().Groups("alice-app").
		Operations(kadm.OpDescribe).ResourcePatternType(kadm.ACLPatternLiteral))
	if err := as(b, "admin").ProduceSync(ctx, &kgo.Record{Topic: "orders", Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatal(err)
	}

	cons := as(b, "alice", kgo.ConsumeTopics("orders"), kgo.ConsumerGroup("alice-app"), kgo.ServerSideBalancer(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	for got := 0; got < 1; {
		fs := cons.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("alice consumed nothing: %v", err)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("alice fetch: %v", err) })
		got += fs.NumRecords()
	}

	heartbeat := func(user, group string, topics ...string) int16 {
		r := kmsg.NewPtrConsumerGroupHeartbeatRequest()
		r.Group, r.MemberID, r.RebalanceTimeoutMillis = group, "m-"+user, 10000
		r.SubscribedTopicNames, r.Topics = topics, []kmsg.ConsumerGroupHeartbeatRequestTopic{}
		resp, err := r.RequestWith(ctx, as(b, user, kgo.RequestRetries(0)))
		if err != nil {
			t.Fatal(err)
		}
		return resp.ErrorCode
	}
	if code := heartbeat("alice", "alice-app", "secret"); code != kerr.TopicAuthorizationFailed.Code {
		t.Errorf("alice subscribing to secret: error %d", code)
	}
	if code := heartbeat("bob", "alice-app", "orders"); code != kerr.GroupAuthorizationFailed.Code {
		t.Errorf("bob joining alice-app: error %d", code)
	}
	describeAs := func(user string) int16 {
		r := kmsg.NewPtrConsumerGroupDescribeRequest()
		r.Groups = []string{"alice-app"}
		resp, err := r.RequestWith(ctx, as(b, user, kgo.RequestRetries(0)))
		if err != nil {
			t.Fatal(err)
		}
		return resp.Groups[0].ErrorCode
	}
	if code := describeAs("alice"); code != 0 {
		t.Errorf("alice describing her group: error %d", code)
	}
	// bob may describe the group but not the topic it is assigned.
	if code := describeAs("bob"); code != kerr.TopicAuthorizationFailed.Code {
		t.Errorf("bob describing alice-app: error %d", code)
	}
	cons.Close()
}

// TestConsumerGroup848Static: a static member's temporary leave (epoch
// -2 with its instance ID) keeps its partitions for its next
// incarnation, which takes them over without a rebalance; a franz-go
// static member restarted under the same instance ID gets its
// partitions back.
func TestConsumerGroup848Static(t *testing.T) {
	b := broker848(t, ktest.Set("group.consumer.session.timeout.ms", "2000"))
	b.CreateTopic("t", 2, nil)
	adm := b.Admin()
	hb := func(member string, epoch int32, instance string) *kmsg.ConsumerGroupHeartbeatResponse {
		r := kmsg.NewPtrConsumerGroupHeartbeatRequest()
		r.Version, r.Group, r.MemberID, r.MemberEpoch, r.InstanceID = 1, "raw", member, epoch, &instance
		r.RebalanceTimeoutMillis = -1
		if epoch == 0 {
			r.RebalanceTimeoutMillis = 10000
			r.SubscribedTopicNames, r.Topics = []string{"t"}, []kmsg.ConsumerGroupHeartbeatRequestTopic{}
		}
		return send[*kmsg.ConsumerGroupHeartbeatResponse](t, b, r)
	}
	first := hb("m1", 0, "i1")
	if first.ErrorCode != 0 || first.Assignment == nil || len(first.Assignment.Topics) != 1 || len(first.Assignment.Topics[0].Partitions) != 2 {
		t.Fatalf("join: %+v", first)
	}
	if got := hb("m2", 0, "i1"); got.ErrorCode != kerr.UnreleasedInstanceID.Code {
		t.Fatalf("second incarnation while the first is active: %d", got.ErrorCode)
	}
	if got := hb("m1", -2, "i1"); got.ErrorCode != 0 || got.MemberEpoch != -2 {
		t.Fatalf("static leave: %+v", got)
	}
	second := hb("m2", 0, "i1")
	if second.ErrorCode != 0 || second.Assignment == nil || len(second.Assignment.Topics) != 1 || len(second.Assignment.Topics[0].Partitions) != 2 {
		t.Fatalf("rejoin: %+v", second)
	}
	if d := describe848(t, adm, "raw"); d.Epoch != 1 || len(d.Members) != 1 || d.Members[0].MemberID != "m2" {
		t.Fatalf("after the static rejoin: %+v", d)
	}

	// franz-go: a static member closed and started again.
	bal := kgo.CooperativeStickyBalancer()
	a := start848(t, b, "a", "g", "t", bal, nil, kgo.InstanceID("static-a"))
	waitStable848(t, adm, "g", 2, a)
	a.stop()
	a2 := start848(t, b, "a2", "g", "t", bal, nil, kgo.InstanceID("static-a"))
	waitStable848(t, adm, "g", 2, a2)
}

// TestConsumerGroup848EOS: franz-go's GroupTransactSession over a
// consumer group (TxnOffsetCommit with the member epoch) copies the
// input exactly once with two workers, one of them stopping half-way
// so its partitions move.
func TestConsumerGroup848EOS(t *testing.T) {
	const n = 4000
	b := txnBroker(t, ktest.Set("group.consumer.heartbeat.interval.ms", "100"))
	eosInput(t, b, 4, n)
	ctx, cancel := context.WithCancel(context.Background())
	stopA, cancelA := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, w := range []struct {
		id  string
		ctx context.Context
	}{{"eos-848-a", stopA}, {"eos-848-b", ctx}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for w.ctx.Err() == nil {
				err := eosWorker(w.ctx, b.Addr, w.id, 5, func(string, ...any) {}, kgo.ServerSideBalancer())
				if err != nil && w.ctx.Err() == nil {
					t.Errorf("%s: %v", w.id, err)
					return
				}
			}
		}()
	}
	t.Cleanup(func() { cancel(); wg.Wait() })
	waitCopied(t, func() *ktest.Broker { return b }, n, 60*time.Second, func(committed int64) {
		if committed >= n/2 {
			cancelA()
		}
	})
	cancel()
	wg.Wait()
	eosCheck(t, b, n)
	if d := describe848(t, b.Admin(), eosGroup); d.Err != nil {
		t.Errorf("the group is not a consumer group: %v", d.Err)
	}
}

// TestConsumerGroup848CoordinatorFailover: the broker coordinating a
// consumer group is halted; the leadership of its __consumer_offsets
// partition (three replicas) moves and the new coordinator loads the
// group: the members carry on at their epochs with their partitions,
// without a rebalance, and consume what is produced next.
func TestConsumerGroup848CoordinatorFailover(t *testing.T) {
	bs := ktest.NewCluster(t, 3, ktest.WithFS(vfs.Default),
		ktest.Set("broker.session.timeout.ms", "2000"),
		ktest.Set("offsets.topic.num.partitions", "3"),
		ktest.Set("group.consumer.heartbeat.interval.ms", "200"),
		ktest.Set("group.consumer.session.timeout.ms", "30000"))
	ctx := ctxT(t, 120*time.Second)
	seeds := clusterSeeds(bs)
	adm := bs[0].Admin()
	waitRegistered(t, ctx, adm, 3)
	if _, err := adm.CreateTopic(ctx, 4, 3, nil, "work"); err != nil {
		t.Fatal(err)
	}
	rs := &records{by: map[string][]string{}}
	bal := kgo.CooperativeStickyBalancer()
	a := start848(t, bs[0], "a", "g", "work", bal, rs.process, kgo.SeedBrokers(seeds...))
	b := start848(t, bs[1], "b", "g", "work", bal, rs.process, kgo.SeedBrokers(seeds...))
	gc := adm.FindGroupCoordinators(ctx, "g")["g"]
	if gc.Err != nil {
		t.Fatal(gc.Err)
	}
	victim := gc.NodeID
	survivor := bs[(victim+1)%3]
	sadm := survivor.Admin()
	waitStable848(t, sadm, "g", 4, a, b)
	before := describe848(t, sadm, "g")
	callbacks := func() int {
		n := 0
		for _, m := range []*member{a, b} {
			m.mu.Lock()
			n += nonEmpty(m.assigned) + nonEmpty(m.revoked) + nonEmpty(m.lost)
			m.mu.Unlock()
		}
		return n
	}
	nCallbacks := callbacks()

	bs[victim].Halt()
	waitFor(t, 60*time.Second, "the group's coordinator moved", func() bool {
		c := sadm.FindGroupCoordinators(ctx, "g")["g"]
		return c.Err == nil && c.NodeID != victim
	})
	waitFor(t, 60*time.Second, "the members heartbeating to the new coordinator", func() bool {
		// A fresh client: a client's cached coordinator is not
		// forgotten when it cannot be dialed.
		cl, err := kgo.NewClient(kgo.SeedBrokers(survivor.Addr))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		d, err := tryDescribe848(kadm.NewClient(cl), "g")
		return err == nil && d.Err == nil && d.State == "Stable" && len(d.Members) == 2
	})
	cl, err := kgo.NewClient(kgo.SeedBrokers(survivor.Addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	sadm = kadm.NewClient(cl)
	after := describe848(t, sadm, "g")
	if after.Epoch != before.Epoch {
		t.Errorf("group epoch %d after failover, was %d", after.Epoch, before.Epoch)
	}
	for i, m := range after.Members {
		if m.MemberID != before.Members[i].MemberID || m.MemberEpoch != before.Members[i].MemberEpoch {
			t.Errorf("member %s@%d, was %s@%d", m.MemberID, m.MemberEpoch, before.Members[i].MemberID, before.Members[i].MemberEpoch)
		}
	}
	prod := survivor.Client(kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic("work"), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	for i := range 40 {
		if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte(strconv.Itoa(i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 60*time.Second, "40 records consumed", func() bool { return rs.count() == 40 })
	if n := callbacks(); n != nCallbacks {
		t.Errorf("partitions moved across the failover: a assigned %v revoked %v lost %v, b assigned %v revoked %v lost %v",
			a.assigned, a.revoked, a.lost, b.assigned, b.revoked, b.lost)
	}
}
