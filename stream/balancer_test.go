package stream

import (
	"fmt"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// joinTopology reads two co-partitioned topics in one sub-topology and
// a third topic in another.
func joinTopology(t *testing.T) *topology {
	t.Helper()
	b := NewBuilder()
	tbl := SourceTable(b, "customers", "customers", String(), String())
	Join(Source(b, "orders", String(), String()), tbl, func(_, o, c string) string { return o + c })
	Source(b, "clicks", String(), String()).GroupByKey(String(), String()).Count("clicks")
	topo, err := compile(b, "app")
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

// member makes a JoinGroup member with the consumer protocol metadata
// the balancer sends, owning partitions.
func member(t *testing.T, bl *balancer, id string, generation int32, owned map[string][]int32) kmsg.JoinGroupResponseMember {
	t.Helper()
	m := kmsg.NewJoinGroupResponseMember()
	m.MemberID = id
	m.ProtocolMetadata = bl.JoinGroupMetadata([]string{"clicks", "customers", "orders"}, owned, generation)
	return m
}

// balance runs the balancer as the group leader would and returns each
// member's assignment.
func balance(t *testing.T, bl *balancer, members []kmsg.JoinGroupResponseMember, counts map[string]int32) map[string]map[string][]int32 {
	t.Helper()
	mb, topics, err := bl.MemberBalancer(members)
	if err != nil {
		t.Fatal(err)
	}
	if len(topics) != 3 {
		t.Fatalf("interest topics %v", topics)
	}
	plan, err := mb.(kgo.GroupMemberBalancerOrError).BalanceOrError(counts)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string][]int32{}
	for _, a := range plan.IntoSyncAssignment() {
		parts, err := bl.ParseSyncAssignment(a.MemberAssignment)
		if err != nil {
			t.Fatal(err)
		}
		for _, ps := range parts {
			slices.Sort(ps)
		}
		out[a.MemberID] = parts
	}
	return out
}

func TestBalancerKeepsTasksTogether(t *testing.T) {
	topo := joinTopology(t)
	bl := &balancer{topo}
	counts := map[string]int32{"customers": 4, "orders": 4, "clicks": 2}
	var members []kmsg.JoinGroupResponseMember
	for i := range 3 {
		members = append(members, member(t, bl, fmt.Sprintf("m%d", i), 1, nil))
	}
	got := balance(t, bl, members, counts)
	seen := map[string]string{} // topic/partition -> member
	total := 0
	for m, parts := range got {
		// Partition p of customers and orders always go together.
		if !slices.Equal(parts["customers"], parts["orders"]) {
			t.Errorf("%s: customers %v, orders %v: a join task was split", m, parts["customers"], parts["orders"])
		}
		n := len(parts["orders"]) + len(parts["clicks"])
		if n < 2 || n > 2 {
			t.Errorf("%s: %d tasks, want 2 (6 tasks, 3 members)", m, n)
		}
		for topic, ps := range parts {
			for _, p := range ps {
				key := fmt.Sprintf("%s/%d", topic, p)
				if prev, dup := seen[key]; dup {
					t.Errorf("%s assigned to %s and %s", key, prev, m)
				}
				seen[key] = m
				total++
			}
		}
	}
	if total != 10 {
		t.Errorf("%d partitions assigned, want 10: %v", total, got)
	}
}

func TestBalancerSticky(t *testing.T) {
	topo := joinTopology(t)
	bl := &balancer{topo}
	counts := map[string]int32{"customers": 4, "orders": 4, "clicks": 2}
	// m0 owns everything; m1 joins: the cooperative plan leaves m0 with
	// half, gives m1 nothing yet (the moving tasks must be revoked
	// first), and the next rebalance gives m1 the rest.
	all := map[string][]int32{"customers": {0, 1, 2, 3}, "orders": {0, 1, 2, 3}, "clicks": {0, 1}}
	got := balance(t, bl, []kmsg.JoinGroupResponseMember{member(t, bl, "m0", 3, all), member(t, bl, "m1", -1, nil)}, counts)
	kept := got["m0"]
	if n := len(kept["orders"]) + len(kept["clicks"]); n != 3 {
		t.Fatalf("m0 keeps %v, want 3 of its 6 tasks", kept)
	}
	if len(got["m1"]) != 0 {
		t.Fatalf("m1 got %v before m0 revoked them", got["m1"])
	}
	got = balance(t, bl, []kmsg.JoinGroupResponseMember{member(t, bl, "m0", 4, kept), member(t, bl, "m1", 4, nil)}, counts)
	if !mapsEqual(got["m0"], kept) {
		t.Errorf("second round moved m0's tasks: %v, had %v", got["m0"], kept)
	}
	if n := len(got["m1"]["orders"]) + len(got["m1"]["clicks"]); n != 3 {
		t.Errorf("m1 got %v, want 3 tasks", got["m1"])
	}
}

func TestAssignTasksBalance(t *testing.T) {
	topo := joinTopology(t)
	for _, tc := range []struct{ tasks, members int }{{6, 1}, {6, 4}, {6, 6}, {6, 8}, {1, 3}} {
		var tasks []taskID
		for i := range tc.tasks {
			tasks = append(tasks, taskID{i % 2, int32(i / 2)})
		}
		var members []taskMember
		for i := range tc.members {
			members = append(members, taskMember{id: fmt.Sprint(i), topics: map[string]bool{"customers": true, "orders": true, "clicks": true}, owned: map[taskID]bool{}})
		}
		// Member 0 claims every task: it keeps only its share.
		for _, id := range tasks {
			members[0].owned[id] = true
		}
		got := assignTasks(tasks, members, topo)
		lo, hi, n := tc.tasks, 0, 0
		for _, m := range members {
			c := len(got[m.id])
			lo, hi, n = min(lo, c), max(hi, c), n+c
		}
		if n != tc.tasks || hi-lo > 1 {
			t.Errorf("%d tasks over %d members: %v (counts %d..%d)", tc.tasks, tc.members, got, lo, hi)
		}
	}
}

func mapsEqual(a, b map[string][]int32) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

var _ kgo.GroupBalancer = (*balancer)(nil)
