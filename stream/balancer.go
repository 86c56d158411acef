package stream

import (
	"cmp"
	"maps"
	"slices"
	"sort"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// balancer is the consumer group's partition assignor. It assigns
// tasks, not partitions: partition p of every source topic of a
// sub-topology goes to the member running task (sub, p), because the
// task's stores hold state built from all of them (a stream-table join
// looks up the table partition matching the stream partition; an
// aggregation reading two co-partitioned topics keeps one total per
// key). Kafka's own assignors (range, round-robin, sticky) balance each
// topic on its own and would split a task between members.
//
// It is cooperative (KIP-429): a task keeps its member across
// rebalances when the balance allows, and a task that moves is first
// revoked from its old member, which commits, and assigned in the
// follow-up rebalance, so two members never run it at once. Members
// send the standard consumer protocol metadata (topics, owned
// partitions), so the group is readable by any tool.
type balancer struct {
	topo *topology
}

// protocolName is the group protocol; every member of an application
// must use it.
const protocolName = "gregor-stream"

func (*balancer) ProtocolName() string { return protocolName }
func (*balancer) IsCooperative() bool  { return true }

func (*balancer) JoinGroupMetadata(topics []string, current map[string][]int32, generation int32) []byte {
	meta := kmsg.NewConsumerMemberMetadata()
	meta.Version = 3
	meta.Topics = topics
	meta.Generation = generation
	for _, topic := range slices.Sorted(maps.Keys(current)) {
		owned := kmsg.NewConsumerMemberMetadataOwnedPartition()
		owned.Topic = topic
		owned.Partitions = current[topic]
		meta.OwnedPartitions = append(meta.OwnedPartitions, owned)
	}
	return meta.AppendTo(nil)
}

func (*balancer) ParseSyncAssignment(assignment []byte) (map[string][]int32, error) {
	return kgo.ParseConsumerSyncAssignment(assignment)
}

func (b *balancer) MemberBalancer(members []kmsg.JoinGroupResponseMember) (kgo.GroupMemberBalancer, map[string]struct{}, error) {
	cb, err := kgo.NewConsumerBalancer(b, members)
	if err != nil {
		return nil, nil, err
	}
	return cb, cb.MemberTopics(), nil
}

// Balance runs on the group leader with the partition counts of every
// subscribed topic.
func (b *balancer) Balance(cb *kgo.ConsumerBalancer, topics map[string]int32) kgo.IntoSyncAssignment {
	// Tasks go partition by partition (0_0, 1_0, 0_1, 1_1, ...), so
	// that each member gets a share of every sub-topology.
	var tasks []taskID
	for _, s := range b.topo.subs {
		n := int32(-1)
		for _, topic := range s.sources {
			c, ok := topics[topic]
			if !ok {
				n = 0 // not loaded yet: the leader rebalances when it is
				break
			}
			if n < 0 || c < n {
				n = c // co-partitioning is checked at start; be safe here
			}
		}
		for p := int32(0); p < n; p++ {
			tasks = append(tasks, taskID{s.id, p})
		}
	}
	slices.SortFunc(tasks, func(x, y taskID) int {
		if c := cmp.Compare(x.partition, y.partition); c != 0 {
			return c
		}
		return cmp.Compare(x.sub, y.sub)
	})
	var members []taskMember
	cb.EachMember(func(m *kmsg.JoinGroupResponseMember, meta *kmsg.ConsumerMemberMetadata) {
		tm := taskMember{id: m.MemberID, generation: meta.Generation, topics: map[string]bool{}, owned: map[taskID]bool{}}
		for _, topic := range meta.Topics {
			tm.topics[topic] = true
		}
		for _, o := range meta.OwnedPartitions {
			if s := b.topo.subOf[o.Topic]; s != nil {
				for _, p := range o.Partitions {
					tm.owned[taskID{s.id, p}] = true
				}
			}
		}
		members = append(members, tm)
	})
	plan := cb.NewPlan()
	byID := map[string]*kmsg.JoinGroupResponseMember{}
	for _, m := range cb.Members() {
		byID[m.MemberID] = &m
	}
	for member, ids := range assignTasks(tasks, members, b.topo) {
		for _, id := range ids {
			for _, topic := range b.topo.subs[id.sub].sources {
				plan.AddPartition(byID[member], topic, id.partition)
			}
		}
	}
	plan.AdjustCooperative(cb)
	return plan
}

// taskMember is a group member as the balancer sees it.
type taskMember struct {
	id         string
	generation int32
	topics     map[string]bool // subscribed topics
	owned      map[taskID]bool // tasks it claims to run now
}

// assignTasks spreads tasks over members so that counts differ by at
// most one, keeping each task with its current owner when the balance
// allows (the newest generation's claim wins). A member only runs tasks
// of sub-topologies whose topics it subscribes to. Deterministic for a
// given input order of members.
func assignTasks(tasks []taskID, members []taskMember, topo *topology) map[string][]taskID {
	out := map[string][]taskID{}
	eligible := func(m *taskMember, id taskID) bool {
		for _, topic := range topo.subs[id.sub].sources {
			if !m.topics[topic] {
				return false
			}
		}
		return true
	}
	owner := func(id taskID) *taskMember {
		var best *taskMember
		for i := range members {
			m := &members[i]
			if m.owned[id] && eligible(m, id) && (best == nil || m.generation > best.generation) {
				best = m
			}
		}
		return best
	}
	if len(members) == 0 {
		return out
	}
	lo := len(tasks) / len(members)
	extra := len(tasks) % len(members) // members that may hold lo+1

	// 1. Owners keep up to lo of their tasks; 2. then one more while
	// extra slots remain.
	var rest []taskID
	for _, id := range tasks {
		if o := owner(id); o != nil && len(out[o.id]) < lo {
			out[o.id] = append(out[o.id], id)
		} else {
			rest = append(rest, id)
		}
	}
	var left []taskID
	for _, id := range rest {
		if o := owner(id); o != nil && len(out[o.id]) == lo && extra > 0 {
			out[o.id] = append(out[o.id], id)
			extra--
		} else {
			left = append(left, id)
		}
	}
	// 3. Everything else goes to the least loaded eligible member.
	for _, id := range left {
		var pick *taskMember
		for i := range members {
			m := &members[i]
			if !eligible(m, id) {
				continue
			}
			if n := len(out[m.id]); n > lo || (n == lo && extra == 0) {
				continue
			}
			if pick == nil || len(out[m.id]) < len(out[pick.id]) {
				pick = m
			}
		}
		if pick == nil {
			// Uneven subscriptions: fall back to the least loaded
			// eligible member, balance aside.
			for i := range members {
				m := &members[i]
				if eligible(m, id) && (pick == nil || len(out[m.id]) < len(out[pick.id])) {
					pick = m
				}
			}
		}
		if pick == nil {
			continue // nobody reads these topics
		}
		if len(out[pick.id]) == lo && extra > 0 {
			extra--
		}
		out[pick.id] = append(out[pick.id], id)
	}
	for _, ids := range out {
		sort.Slice(ids, func(i, j int) bool { return ids[i].compare(ids[j]) < 0 })
	}
	return out
}
