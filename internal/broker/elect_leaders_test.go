package broker_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/gregor-streaming/gregor/internal/ktest"
)

// restartOffLeader stops the broker preferred for one partition of
// topic (its first replica) cleanly, so its leaderships move, starts it
// again and waits until it is back in that partition's ISR, not leading
// it; it returns the partition and broker.
func restartOffLeader(t *testing.T, ctx context.Context, bs []*ktest.Broker, adm *kadm.Client, topic string) (int32, int32) {
	t.Helper()
	const p = 0
	_, replicas, _ := partitionState(t, ctx, adm, topic, p)
	preferred := replicas[0]
	bs[preferred].Stop()
	waitFor(t, 30*time.Second, "the stopped broker's leadership moved", func() bool {
		leader, _, _ := partitionState(t, ctx, adm, topic, p)
		return leader >= 0 && leader != preferred
	})
	bs[preferred].Start()
	waitFor(t, 30*time.Second, "the restarted broker back in the ISR", func() bool {
		_, _, isr := partitionState(t, ctx, adm, topic, p)
		return len(isr) == 3
	})
	return p, preferred
}

// createReplicated creates topic with parts partitions of three
// replicas and waits for their ISRs to fill.
func createReplicated(t *testing.T, ctx context.Context, adm *kadm.Client, topic string, parts int32) {
	t.Helper()
	if _, err := adm.CreateTopic(ctx, parts, 3, nil, topic); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "every ISR full", func() bool {
		for p := range parts {
			if _, _, isr := partitionState(t, ctx, adm, topic, p); len(isr) != 3 {
				return false
			}
		}
		return true
	})
}

// TestClusterElectLeaders: after its preferred replica restarts, a
// partition stays led by another broker until ElectLeaders (what
// kafka-leader-election.sh sends) moves it back; records produced
// before and after are all there.
func TestClusterElectLeaders(t *testing.T) {
	bs := ktest.NewCluster(t, 3, ktest.Set("auto.leader.rebalance.enable", "false"))
	ctx := ctxT(t, 120*time.Second)
	adm := bs[0].Admin()
	waitRegistered(t, ctx, adm, 3)
	const topic = "elect"
	createReplicated(t, ctx, adm, topic, 3)
	cl := bs[0].Client(kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	produce := func(from, n int) {
		t.Helper()
		for i := from; i < from+n; i++ {
			if err := cl.ProduceSync(ctx, &kgo.Record{Partition: 0, Value: fmt.Appendf(nil, "r%03d", i)}).FirstErr(); err != nil {
				t.Fatalf("record %d: %v", i, err)
			}
		}
	}
	produce(0, 20)
	p, preferred := restartOffLeader(t, ctx, bs, adm, topic)
	produce(20, 20)
	// Not rebalanced by itself (auto.leader.rebalance.enable=false).
	time.Sleep(time.Second)
	if leader, _, _ := partitionState(t, ctx, adm, topic, p); leader == preferred {
		t.Fatalf("partition %d led by its preferred replica %d without an election", p, preferred)
	}

	// An unclean election of a partition with a live leader, and a
	// partition that does not exist, change nothing.
	res, err := adm.ElectLeaders(ctx, kadm.ElectLiveReplica, kadm.TopicsSet{topic: {p: {}, 7: {}}})
	if err != nil {
		t.Fatal(err)
	}
	if r := res[topic][p]; !errors.Is(r.Err, kerr.ElectionNotNeeded) {
		t.Errorf("unclean election of a led partition: %v, want ELECTION_NOT_NEEDED", r.Err)
	}
	if r := res[topic][7]; !errors.Is(r.Err, kerr.UnknownTopicOrPartition) {
		t.Errorf("election of a partition that does not exist: %v, want UNKNOWN_TOPIC_OR_PARTITION", r.Err)
	}

	// Every partition (no set): only the one moved is answered.
	res, err = adm.ElectLeaders(ctx, kadm.ElectPreferredReplica, nil)
	if err != nil {
		t.Fatal(err)
	}
	var answered []string
	for tp, ps := range res {
		for i, r := range ps {
			answered = append(answered, fmt.Sprintf("%s-%d:%v", tp, i, r.Err))
		}
	}
	if want := []string{fmt.Sprintf("%s-%d:<nil>", topic, p)}; !slices.Equal(answered, want) {
		t.Errorf("preferred election of every partition answered %v, want %v", answered, want)
	}
	// Committed when answered; the other brokers apply it a moment later.
	waitFor(t, 10*time.Second, "the preferred replica leading", func() bool {
		leader, _, _ := partitionState(t, ctx, adm, topic, p)
		return leader == preferred
	})
	res, err = adm.ElectLeaders(ctx, kadm.ElectPreferredReplica, kadm.TopicsSet{topic: {p: {}}})
	if err != nil {
		t.Fatal(err)
	}
	if r := res[topic][p]; !errors.Is(r.Err, kerr.ElectionNotNeeded) {
		t.Errorf("electing the leading preferred replica: %v, want ELECTION_NOT_NEEDED", r.Err)
	}

	produce(40, 20)
	consumer := bs[0].Client(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {p: kgo.NewOffset().AtStart()}}))
	for i := 0; i < 60; {
		fs := consumer.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if want := fmt.Sprintf("r%03d", i); string(r.Value) != want || r.Offset != int64(i) {
				t.Fatalf("offset %d: %q, want %q at %d", r.Offset, r.Value, want, i)
			}
			i++
		})
	}
}

// TestClusterAutoLeaderRebalance: with auto.leader.rebalance.enable
// (Kafka's default), the controller gives a partition back to its
// preferred replica once that is in the ISR again.
func TestClusterAutoLeaderRebalance(t *testing.T) {
	bs := ktest.NewCluster(t, 3, ktest.Set("leader.imbalance.check.interval.seconds", "1"))
	ctx := ctxT(t, 120*time.Second)
	adm := bs[0].Admin()
	waitRegistered(t, ctx, adm, 3)
	const topic = "rebalance"
	createReplicated(t, ctx, adm, topic, 3)
	p, preferred := restartOffLeader(t, ctx, bs, adm, topic)
	waitFor(t, 20*time.Second, "the preferred replica leading again", func() bool {
		leader, _, _ := partitionState(t, ctx, adm, topic, p)
		return leader == preferred
	})
	// Every partition led by its first replica.
	for i := range int32(3) {
		if leader, replicas, _ := partitionState(t, ctx, adm, topic, i); leader != replicas[0] {
			t.Errorf("partition %d led by %d, preferred %d", i, leader, replicas[0])
		}
	}
}
