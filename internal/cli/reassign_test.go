package cli

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gregor-streaming/gregor/internal/ktest"
)

// TestReassignAndElect moves a partition with 'topic reassign' on a
// three-broker cluster, watches 'topic reassignments' until it is done,
// and gives the leadership back with 'cluster elect-leaders'.
func TestReassignAndElect(t *testing.T) {
	bs := ktest.NewCluster(t, 3, ktest.Set("auto.leader.rebalance.enable", "false"))
	var seeds []string
	for _, b := range bs {
		seeds = append(seeds, b.Addr)
	}
	a := strings.Join(seeds, ",")
	waitCLI := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(200 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	type partition struct {
		Partition int32   `json:"partition"`
		Leader    int32   `json:"leader"`
		Replicas  []int32 `json:"replicas"`
		ISR       []int32 `json:"isr"`
	}
	describe := func() partition {
		t.Helper()
		r := gregor(t, a, "", "topic", "describe", "moved", "--json")
		var topics []struct {
			Partitions []partition `json:"partitions"`
		}
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &topics) != nil || len(topics) != 1 || len(topics[0].Partitions) == 0 {
			return partition{Leader: -1}
		}
		return topics[0].Partitions[0]
	}
	waitCLI("three brokers", func() bool {
		r := gregor(t, a, "", "cluster", "info", "--no-apis")
		return r.code == 0 && strings.Count(r.stdout, "127.0.0.1") == 3
	})
	ok(t, a, "", "topic", "create", "moved", "-p", "1", "-r", "1")
	var from int32 = -1
	waitCLI("the partition led", func() bool { from = describe().Leader; return from >= 0 })
	to := []int32{(from + 1) % 3, (from + 2) % 3}
	ok(t, a, strings.Repeat("record\n", 100), "produce", "moved")

	// Usage errors, then the move.
	for _, args := range [][]string{
		{"topic", "reassign", "moved", "--replicas", "1"},
		{"topic", "reassign", "moved", "-p", "0"},
		{"topic", "reassign", "moved", "-p", "0", "--replicas", "1", "--cancel"},
		{"topic", "reassign", "moved", "-p", "x", "--replicas", "1"},
	} {
		if r := gregor(t, a, "", args...); r.code != 2 {
			t.Errorf("gregor %s: exit %d, want 2 (usage)", strings.Join(args, " "), r.code)
		}
	}
	out := ok(t, a, "", "topic", "reassign", "moved", "-p", "0", "--replicas", fmt.Sprintf("%d,%d", to[0], to[1]))
	if !strings.Contains(out, "moved/0") || !strings.Contains(out, "moving") {
		t.Errorf("topic reassign:\n%s", out)
	}
	waitCLI("the move done", func() bool {
		var moves []reassignment
		decode(t, a, "", &moves, "topic", "reassignments")
		p := describe()
		return len(moves) == 0 && slices.Equal(p.Replicas, to) && len(p.ISR) == 2
	})
	if r := gregor(t, a, "", "topic", "reassign", "moved", "-p", "0", "--cancel"); r.code != 1 ||
		!strings.Contains(r.stdout, "NO_REASSIGNMENT_IN_PROGRESS") {
		t.Errorf("cancelling without a move: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	// Leadership away from the preferred replica (reordered), then back.
	ok(t, a, "", "topic", "reassign", "moved", "-p", "0", "--replicas", fmt.Sprintf("%d,%d", to[1], to[0]))
	waitCLI("the new order", func() bool { return slices.Equal(describe().Replicas, []int32{to[1], to[0]}) })
	if p := describe(); p.Leader == to[1] {
		t.Fatalf("reordering moved the leadership: %+v", p)
	}
	out = ok(t, a, "", "cluster", "elect-leaders", "moved")
	if !strings.Contains(out, "moved/0") || !strings.Contains(out, "elected") {
		t.Errorf("cluster elect-leaders:\n%s", out)
	}
	waitCLI("the preferred replica leading", func() bool { return describe().Leader == to[1] })
	out = ok(t, a, "", "cluster", "elect-leaders", "moved:0")
	if !strings.Contains(out, "not needed") {
		t.Errorf("cluster elect-leaders again:\n%s", out)
	}
	if got := ok(t, a, "", "consume", "moved", "-n", "100", "--format", "%v\n"); strings.Count(got, "record\n") != 100 {
		t.Errorf("consumed after the moves:\n%s", got)
	}
}
