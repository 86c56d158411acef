package broker_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/gregor-streaming/gregor/internal/ktest"
)

// TestClusterAcksAllISRShrinksWhileWaiting: an acks=all produce that
// was appended with the ISR at min.insync.replicas, and waits for a
// follower that stopped fetching, is not acknowledged when the leader
// drops that follower from the ISR: the high watermark then passes the
// records with fewer in-sync replicas than min.insync.replicas hold,
// and the producer is told NOT_ENOUGH_REPLICAS_AFTER_APPEND, as Kafka's
// Partition.checkEnoughReplicasReachOffset answers.
func TestClusterAcksAllISRShrinksWhileWaiting(t *testing.T) {
	network := ktest.NewNetwork()
	bs := ktest.NewCluster(t, 3, ktest.WithNetwork(network), ktest.Set("replica.lag.time.max.ms", "1500"))
	ctx := ctxT(t, 60*time.Second)
	adm := bs[0].Admin()
	waitRegistered(t, ctx, adm, 3)
	const topic = "shrinking"
	minISR := "3"
	leader, follower := threeReplicas(t, ctx, adm, topic, map[string]*string{"min.insync.replicas": &minISR})
	cl := bs[leader].Client(kgo.SeedBrokers(clusterSeeds(bs)...), kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()))
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("replicated")}).FirstErr(); err != nil {
		t.Fatal(err)
	}

	// A follower stops fetching; the next record is appended with the
	// ISR still full and waits for it until the leader shrinks the ISR.
	network.Bridge(int(leader), int(follower))
	t.Cleanup(network.Heal)
	code, _ := produceBatch(t, bs[leader], topic, 0, 1, 10)
	if code == 0 {
		t.Fatal("acks=all acknowledged after the ISR shrank below min.insync.replicas")
	}
	if code != kerr.NotEnoughReplicasAfterAppend.Code {
		t.Errorf("acks=all while the ISR shrank: %v, want NOT_ENOUGH_REPLICAS_AFTER_APPEND", kerr.ErrorForCode(code))
	}
	waitFor(t, 10*time.Second, "the cut follower out of the ISR", func() bool {
		_, _, isr := partitionState(t, ctx, adm, topic, 0)
		return len(isr) == 2 && !slices.Contains(isr, follower)
	})
}

// TestClusterStopWithAcksAllWaiting: a leader stopped gracefully while
// an acks=all produce waits on it (a follower in the ISR cannot fetch)
// hands its leadership over first, as Kafka's controlled shutdown: the
// waiting request ends with NOT_LEADER_OR_FOLLOWER, the producer's
// retry is acknowledged by the new leader, and the stop waits for no
// timeout. Before, the server stopped reading (the followers' fetches
// too) while the request waited for them: the stop took the 10 s the
// harness gives the server's shutdown, and a coordinator's write in
// flight held Close for 30 s.
func TestClusterStopWithAcksAllWaiting(t *testing.T) {
	network := ktest.NewNetwork()
	bs := ktest.NewCluster(t, 3, ktest.WithNetwork(network), ktest.Set("replica.lag.time.max.ms", "30000"))
	ctx := ctxT(t, 60*time.Second)
	adm := bs[0].Admin()
	waitRegistered(t, ctx, adm, 3)
	const topic = "stopping"
	leader, follower := threeReplicas(t, ctx, adm, topic, nil)
	cl := bs[(leader+1)%3].Client(kgo.SeedBrokers(clusterSeeds(bs)...), kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()))
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("first")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	network.Bridge(int(leader), int(follower))
	t.Cleanup(network.Heal)
	done := make(chan error, 1)
	go func() { done <- cl.ProduceSync(ctx, &kgo.Record{Value: []byte("waiting")}).FirstErr() }()
	select {
	case err := <-done:
		t.Fatalf("acks=all answered while an ISR member could not fetch: %v", err)
	case <-time.After(time.Second):
	}
	start := time.Now()
	bs[leader].Stop()
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("stopping the leader took %v", d.Round(time.Millisecond))
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("the waiting record after its leader stopped: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the waiting record was not acknowledged after its leader stopped")
	}
}

// threeReplicas creates topic with one partition of three replicas and
// waits for all three in its ISR. It returns the leader and a follower
// that is not the active controller, to cut from the leader: the leader
// must still reach the quorum (to shrink the ISR, to hand over).
func threeReplicas(t *testing.T, ctx context.Context, adm *kadm.Client, topic string, configs map[string]*string) (leader, follower int32) {
	t.Helper()
	if _, err := adm.CreateTopic(ctx, 1, 3, configs, topic); err != nil {
		t.Fatal(err)
	}
	var replicas []int32
	waitFor(t, 20*time.Second, "three replicas in the ISR", func() bool {
		var isr []int32
		leader, replicas, isr = partitionState(t, ctx, adm, topic, 0)
		return len(replicas) == 3 && slices.Equal(isr, []int32{0, 1, 2})
	})
	md, err := adm.Metadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(replicas, func(id int32) bool { return id != leader && id != md.Controller })
	return leader, replicas[i]
}
