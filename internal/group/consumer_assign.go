package group

import (
	"slices"
	"strings"
)

// Server-side assignors of consumer groups (KIP-848), by the names
// clients ask for in ConsumerGroupHeartbeat's ServerAssignor. The first
// is the default (group.consumer.assignors in Kafka: uniform, range).
var consumerAssignors = []string{"uniform", "range"}

func knownAssignor(name string) bool { return slices.Contains(consumerAssignors, name) }

// assignMember is one member as an assignor sees it.
type assignMember struct {
	id string
	// topics are the member's subscribed topics that exist, sorted.
	topics []string
}

// assignSpec is an assignor's input: the members in member ID order,
// the subscribed topics that exist by name, and the previous target
// assignment (for stickiness).
type assignSpec struct {
	members []assignMember
	topics  map[string]topicMeta
	prev    map[string]assignment
}

type tpRef struct {
	topic string
	id    TopicID
	part  int32
}

// assign runs the named assignor; every member gets an entry, possibly
// empty.
func assign(name string, spec assignSpec) map[string]assignment {
	if name == "range" {
		return assignRange(spec)
	}
	return assignUniform(spec)
}

// assignRange is Kafka's range assignor run on the server: per topic,
// the members subscribed to it in member ID order get consecutive
// ranges of partitions, the first (partitions % members) one more. Two
// topics with the same partition count and subscribers are thus
// co-partitioned.
func assignRange(spec assignSpec) map[string]assignment {
	out := make(map[string]assignment, len(spec.members))
	for _, m := range spec.members {
		out[m.id] = assignment{}
	}
	for _, name := range sortedTopicNames(spec.topics) {
		t := spec.topics[name]
		var subs []string
		for _, m := range spec.members {
			if slices.Contains(m.topics, name) {
				subs = append(subs, m.id)
			}
		}
		if len(subs) == 0 {
			continue
		}
		n := int(t.Partitions)
		per, extra := n/len(subs), n%len(subs)
		p := 0
		for i, id := range subs {
			k := per
			if i < extra {
				k++
			}
			for j := 0; j < k; j++ {
				out[id].add(t.ID, int32(p))
				p++
			}
		}
	}
	return out
}

// assignUniform spreads the partitions evenly over the members
// subscribed to them, keeping each partition with its previous owner
// where balance allows (the goals of Kafka's UniformAssignor: balance
// first, then stickiness). Partitions keep their previous owner if it
// still subscribes; the rest go to the least loaded subscriber; then,
// while a partition's owner has two or more partitions more than the
// least loaded member subscribed to its topic, the partition moves
// there. Each move lowers the sum of squared loads, so it ends; on
// identical subscriptions loads then differ by at most one.
func assignUniform(spec assignSpec) map[string]assignment {
	owner := map[tpRef]string{}
	load := map[string]int{}
	subscribed := map[string][]string{} // topic → member IDs in order
	for _, m := range spec.members {
		load[m.id] = 0
		for _, t := range m.topics {
			subscribed[t] = append(subscribed[t], m.id)
		}
	}
	var all []tpRef
	for _, name := range sortedTopicNames(spec.topics) {
		t := spec.topics[name]
		if len(subscribed[name]) == 0 {
			continue
		}
		for p := int32(0); p < t.Partitions; p++ {
			all = append(all, tpRef{name, t.ID, p})
		}
	}
	// Sticky: previous owners that still subscribe keep theirs.
	for _, m := range spec.members {
		for tid, ps := range spec.prev[m.id] {
			for _, p := range ps {
				for _, name := range m.topics {
					t, ok := spec.topics[name]
					if ok && t.ID == tid && p < t.Partitions {
						ref := tpRef{name, tid, p}
						if _, taken := owner[ref]; !taken {
							owner[ref] = m.id
							load[m.id]++
						}
					}
				}
			}
		}
	}
	leastLoaded := func(ids []string) string {
		best := ""
		for _, id := range ids {
			if best == "" || load[id] < load[best] {
				best = id
			}
		}
		return best
	}
	for _, ref := range all {
		if _, ok := owner[ref]; ok {
			continue
		}
		id := leastLoaded(subscribed[ref.topic])
		owner[ref] = id
		load[id]++
	}
	for moved := true; moved; {
		moved = false
		// Move from the most loaded owners first, the latest
		// partitions first, so stickiness keeps the early ones.
		for i := len(all) - 1; i >= 0; i-- {
			ref := all[i]
			cur := owner[ref]
			to := leastLoaded(subscribed[ref.topic])
			if load[cur] >= load[to]+2 {
				owner[ref] = to
				load[cur]--
				load[to]++
				moved = true
			}
		}
	}
	out := make(map[string]assignment, len(spec.members))
	for _, m := range spec.members {
		out[m.id] = assignment{}
	}
	for _, ref := range all {
		out[owner[ref]].add(ref.id, ref.part)
	}
	return out
}

func sortedTopicNames(topics map[string]topicMeta) []string {
	names := make([]string, 0, len(topics))
	for n := range topics {
		names = append(names, n)
	}
	slices.SortFunc(names, strings.Compare)
	return names
}
