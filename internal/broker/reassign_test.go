package broker_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/gregor-streaming/gregor/internal/ktest"
)

// TestClusterReassignPartitions moves a partition, under an acks=all
// producer, from one broker to the two others (what
// kafka-reassign-partitions.sh --execute sends): the new replicas copy
// the log and join the ISR, the controller completes the move, the old
// replica deletes its log, and every record is there once, in order. A
// reassignment to a broker that is down stays in progress, listed,
// until cancelled.
func TestClusterReassignPartitions(t *testing.T) {
	bs := ktest.NewCluster(t, 3)
	ctx := ctxT(t, 120*time.Second)
	adm := bs[0].Admin()
	waitRegistered(t, ctx, adm, 3)
	const topic = "moved"
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	var from int32
	waitFor(t, 10*time.Second, "the partition led", func() bool {
		from, _, _ = partitionState(t, ctx, adm, topic, 0)
		return from >= 0
	})
	to := []int32{(from + 1) % 3, (from + 2) % 3}

	// Records before and during the move.
	cl := bs[0].Client(kgo.SeedBrokers(clusterSeeds(bs)...), kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()))
	var mu sync.Mutex
	var acked []int64
	produce := func(from, n int) {
		var wg sync.WaitGroup
		for i := from; i < from+n; i++ {
			wg.Add(1)
			cl.Produce(ctx, &kgo.Record{Value: fmt.Appendf(nil, "m%05d", i)}, func(r *kgo.Record, err error) {
				defer wg.Done()
				if err != nil {
					t.Errorf("record %s: %v", r.Value, err)
					return
				}
				mu.Lock()
				acked = append(acked, r.Offset)
				mu.Unlock()
			})
		}
		wg.Wait()
	}
	produce(0, 2000)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 20; i++ {
			produce(2000+i*100, 100)
		}
	}()
	var req kadm.AlterPartitionAssignmentsReq
	req.Assign(topic, 0, to)
	res, err := adm.AlterPartitionAssignments(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if err := res.Error(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the move completed", func() bool {
		leader, replicas, isr := partitionState(t, ctx, adm, topic, 0)
		return slices.Equal(replicas, to) && slices.Equal(isr, sorted(to)) && leader == to[0]
	})
	<-done
	if l, err := adm.ListPartitionReassignments(ctx, kadm.TopicsSet{topic: {0: {}}}); err != nil || len(l) != 0 {
		t.Fatalf("reassignments listed after completion: %v, %v", l, err)
	}
	waitFor(t, 10*time.Second, "the old replica's log deleted", func() bool {
		_, err := os.Stat(filepath.Join(bs[from].Dir, topic+"-0"))
		return os.IsNotExist(err)
	})

	consumer := bs[0].Client(kgo.SeedBrokers(clusterSeeds(bs)...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	for i := 0; i < 4000; {
		fs := consumer.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset != int64(i) {
				t.Fatalf("record at offset %d, want %d", r.Offset, i)
			}
			i++
		})
	}
	if len(acked) != 4000 {
		t.Fatalf("%d records acknowledged, want 4000", len(acked))
	}

	// To a broker that is down: in progress, listed, then cancelled.
	bs[from].Stop()
	req = nil
	req.Assign(topic, 0, []int32{to[0], from})
	if res, err := adm.AlterPartitionAssignments(ctx, req); err != nil || res.Error() != nil {
		t.Fatalf("reassigning to a stopped broker: %v, %v", err, res.Error())
	}
	waitFor(t, 10*time.Second, "the reassignment listed", func() bool {
		l, err := adm.ListPartitionReassignments(ctx, kadm.TopicsSet{topic: {0: {}}})
		if err != nil {
			t.Fatal(err)
		}
		r, ok := l[topic][0]
		return ok && slices.Equal(r.AddingReplicas, []int32{from}) && slices.Equal(r.RemovingReplicas, []int32{to[1]})
	})
	req = nil
	req.CancelAssign(topic, 0)
	if res, err := adm.AlterPartitionAssignments(ctx, req); err != nil || res.Error() != nil {
		t.Fatalf("cancelling: %v, %v", err, res.Error())
	}
	waitFor(t, 10*time.Second, "the reassignment cancelled", func() bool {
		_, replicas, isr := partitionState(t, ctx, adm, topic, 0)
		return slices.Equal(replicas, to) && slices.Equal(isr, sorted(to))
	})
	if res, err := adm.AlterPartitionAssignments(ctx, req); err != nil || res.Error() == nil {
		t.Fatalf("cancelling again: %v, %v; want NO_REASSIGNMENT_IN_PROGRESS", err, res.Error())
	}

	// Moved away from a broker while it is down: it removes the stray
	// log when it starts.
	bs[from].Start()
	down := to[1]
	bs[down].Stop()
	req = nil
	req.Assign(topic, 0, []int32{to[0], from})
	if res, err := adm.AlterPartitionAssignments(ctx, req); err != nil || res.Error() != nil {
		t.Fatalf("reassigning away from a stopped broker: %v, %v", err, res.Error())
	}
	waitFor(t, 30*time.Second, "the move completed", func() bool {
		_, replicas, isr := partitionState(t, ctx, adm, topic, 0)
		return slices.Equal(replicas, []int32{to[0], from}) && slices.Equal(isr, sorted(replicas))
	})
	strayDir := filepath.Join(bs[down].Dir, topic+"-0")
	if _, err := os.Stat(strayDir); err != nil {
		t.Fatalf("the stopped broker's log: %v", err)
	}
	bs[down].Start()
	waitFor(t, 10*time.Second, "the stray log removed", func() bool {
		_, err := os.Stat(strayDir)
		return os.IsNotExist(err)
	})
}
