package broker

import (
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/gregor-streaming/gregor/internal/metadata"
)

// applyChange applies c to a copy of p as the metadata log does.
func applyChange(t *testing.T, p *metadata.Partition, c *metadata.PartitionChangeRecord) *metadata.Partition {
	t.Helper()
	img := electImage(t, map[string][]electPart{"t": {{replicas: p.Replicas, isr: p.ISR, leader: p.Leader}}})
	tp := img.Topics["t"]
	if p.Reassigning() {
		img = applyCommitted(t, img, []metadata.Record{{PartitionChange: &metadata.PartitionChangeRecord{
			TopicID: tp.ID, Replicas: p.Replicas, Adding: p.Adding, Removing: p.Removing}}})
	}
	c.TopicID = tp.ID
	return applyCommitted(t, img, []metadata.Record{{PartitionChange: c}}).Topics["t"].Partitions[0]
}

func TestReassignPartition(t *testing.T) {
	live := liveSet(0, 1, 2, 3)
	p := &metadata.Partition{Replicas: []int32{0, 1, 2}, ISR: []int32{0, 1, 2}, Leader: 0}

	// A move: 3 is added, 0 removed; 0 leads on until it completes.
	moving := applyChange(t, p, reassignPartition(p, []int32{1, 2, 3}, live))
	if !slices.Equal(moving.Replicas, []int32{1, 2, 3, 0}) || !slices.Equal(moving.Adding, []int32{3}) ||
		!slices.Equal(moving.Removing, []int32{0}) || moving.Leader != 0 || !slices.Equal(moving.ISR, []int32{0, 1, 2}) {
		t.Fatalf("reassignment started: %+v", moving)
	}
	if c := completeChange(moving, live); c != nil {
		t.Fatalf("completed before the added replica is in sync: %+v", c)
	}
	caughtUp := *moving
	caughtUp.ISR = []int32{0, 1, 2, 3}
	done := applyChange(t, &caughtUp, completeChange(&caughtUp, live))
	if !slices.Equal(done.Replicas, []int32{1, 2, 3}) || !slices.Equal(done.ISR, []int32{1, 2, 3}) ||
		done.Leader != 1 || done.Reassigning() || done.LeaderEpoch != caughtUp.LeaderEpoch+1 {
		t.Fatalf("reassignment completed: %+v", done)
	}
	// The removed leader's successor must be live.
	if c := completeChange(&caughtUp, liveSet(0, 3)); c == nil || *c.Leader != 3 {
		t.Fatalf("completion with 1 and 2 down: %+v, want leader 3", c)
	}
	if c := completeChange(&caughtUp, liveSet(0)); c != nil {
		t.Fatalf("completion with no live target replica: %+v, want none", c)
	}

	// Cancelled: the added replica goes, the ISR keeps the rest.
	c, err, _ := cancelReassignment(&caughtUp, live)
	if err != nil {
		t.Fatal(err)
	}
	back := applyChange(t, &caughtUp, c)
	if !slices.Equal(back.Replicas, []int32{1, 2, 0}) || !slices.Equal(back.ISR, []int32{0, 1, 2}) || back.Leader != 0 || back.Reassigning() {
		t.Fatalf("reassignment cancelled: %+v", back)
	}
	if _, err, _ := cancelReassignment(p, live); err != kerr.NoReassignmentInProgress {
		t.Fatalf("cancelling without a reassignment: %v", err)
	}

	// A new target during a reassignment reverts the first.
	again := applyChange(t, moving, reassignPartition(moving, []int32{0, 1, 3}, live))
	if !slices.Equal(again.Replicas, []int32{0, 1, 3, 2}) || !slices.Equal(again.Adding, []int32{3}) || !slices.Equal(again.Removing, []int32{2}) {
		t.Fatalf("second reassignment: %+v", again)
	}

	// Shrinking needs nobody to catch up: done at once, and a removed
	// leader hands over.
	shrunk := applyChange(t, p, reassignPartition(p, []int32{1, 2}, live))
	if !slices.Equal(shrunk.Replicas, []int32{1, 2}) || !slices.Equal(shrunk.ISR, []int32{1, 2}) || shrunk.Leader != 1 || shrunk.Reassigning() {
		t.Fatalf("shrunk: %+v", shrunk)
	}
	// A new order only: another preferred leader, nothing to move.
	reordered := applyChange(t, p, reassignPartition(p, []int32{2, 1, 0}, live))
	if !slices.Equal(reordered.Replicas, []int32{2, 1, 0}) || reordered.Reassigning() || reordered.Leader != 0 {
		t.Fatalf("reordered: %+v", reordered)
	}
	if c := reassignPartition(p, []int32{0, 1, 2}, live); c != nil {
		t.Fatalf("reassigning to the same replicas: %+v, want no change", c)
	}
}
