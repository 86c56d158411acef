package broker_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/gregor-streaming/gregor/internal/ktest"
)

// servedBy counts, by the node that served them, the records a client
// fetched (kgo's fetch hook).
type servedBy struct {
	mu sync.Mutex
	n  map[int32]int
}

func (s *servedBy) OnFetchBatchRead(meta kgo.BrokerMetadata, _ string, _ int32, m kgo.FetchBatchMetrics) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n == nil {
		s.n = map[int32]int{}
	}
	s.n[meta.NodeID] += m.NumRecords
}

func (s *servedBy) counts() map[int32]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[int32]int{}
	for k, v := range s.n {
		out[k] = v
	}
	return out
}

// racked is a three-broker cluster in racks r0, r1, r2 and a topic of
// one partition on all three.
type racked struct {
	bs               []*ktest.Broker
	ctx              context.Context
	leader, follower int32 // follower: one that is not the controller
}

// newRacked starts the cluster, with Kafka's RackAwareReplicaSelector
// when selector is set, and creates topic.
func newRacked(t *testing.T, selector bool, topic string) *racked {
	opts := []ktest.Option{}
	for i := range 3 {
		opts = append(opts, ktest.OnNode(i, ktest.Set("broker.rack", "r"+strconv.Itoa(i))))
	}
	if selector {
		opts = append(opts, ktest.Set("replica.selector.class", "org.apache.kafka.common.replica.RackAwareReplicaSelector"))
	}
	r := &racked{bs: ktest.NewCluster(t, 3, opts...), ctx: ctxT(t, 60*time.Second)}
	adm := r.bs[0].Admin()
	waitRegistered(t, r.ctx, adm, 3)
	r.leader, r.follower = threeReplicas(t, r.ctx, adm, topic, nil)
	return r
}

// client is a client of the cluster through the leader.
func (r *racked) client(opts ...kgo.Opt) *kgo.Client {
	return r.bs[r.leader].Client(append([]kgo.Opt{kgo.SeedBrokers(clusterSeeds(r.bs)...)}, opts...)...)
}

// produceValues produces the values from..from+n-1 through cl,
// acknowledged.
func produceValues(t *testing.T, ctx context.Context, cl *kgo.Client, from, n int) {
	t.Helper()
	rs := make([]*kgo.Record, n)
	for i := range rs {
		rs[i] = &kgo.Record{Value: []byte(strconv.Itoa(from + i))}
	}
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// consumeValues reads n records of topic with a client in rack and checks
// they are values from..from+n-1 in order.
func consumeValues(t *testing.T, ctx context.Context, cl *kgo.Client, n, from int) {
	t.Helper()
	got := 0
	for got < n {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read %d of %d records: %v", got, n, err)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Logf("fetch %s/%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			if want := strconv.Itoa(from + got); string(r.Value) != want {
				t.Fatalf("record %d at offset %d: %q, want %q", got, r.Offset, r.Value, want)
			}
			got++
		})
	}
}

// TestClusterFetchFromFollower: with replica.selector.class set, a
// consumer in a follower's rack is sent by the leader to that follower
// (KIP-392) and reads everything from it, in order, including records
// produced while it waits at the end; a consumer in the leader's rack
// reads from the leader. Without a selector a consumer with a rack
// reads from the leader.
func TestClusterFetchFromFollower(t *testing.T) {
	const topic = "racked"
	r := newRacked(t, true, topic)
	ctx, leader, follower := r.ctx, r.leader, r.follower
	prod := r.client(kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()))
	defer prod.Close()
	produceValues(t, ctx, prod, 0, 2000)

	for _, c := range []struct {
		rack string
		want int32
	}{
		{fmt.Sprintf("r%d", follower), follower},
		{fmt.Sprintf("r%d", leader), leader},
	} {
		var hook servedBy
		cl := r.client(kgo.ConsumeTopics(topic),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.Rack(c.rack), kgo.WithHooks(&hook),
			kgo.FetchMaxPartitionBytes(16<<10)) // several fetches
		consumeValues(t, ctx, cl, 2000, 0)
		// (The client may have fetched ahead of what it returned.)
		if n := hook.counts(); n[c.want] < 2000 || len(n) != 1 {
			t.Errorf("client in rack %s: records by node %v, want all from node %d", c.rack, n, c.want)
		}
		if c.want == follower {
			// At the end, waiting on the follower: new records
			// reach it as its high watermark moves.
			done := make(chan struct{})
			go func() {
				defer close(done)
				consumeValues(t, ctx, cl, 500, 2000)
			}()
			time.Sleep(200 * time.Millisecond)
			produceValues(t, ctx, prod, 2000, 500)
			<-done
			if n := hook.counts(); n[follower] != 2500 || len(n) != 1 {
				t.Errorf("records by node %v after the tail, want all 2500 from node %d", n, follower)
			}
		}
		cl.Close()
	}
}

// TestClusterFetchFromFollowerNoSelector: without replica.selector.class
// the leader keeps consumers with a rack, and a follower still serves a
// consumer that fetches from it directly (Fetch v11+), up to its high
// watermark, while an older Fetch to it is NOT_LEADER_OR_FOLLOWER.
func TestClusterFetchFromFollowerNoSelector(t *testing.T) {
	const topic = "unselected"
	r := newRacked(t, false, topic)
	bs, ctx, leader, follower := r.bs, r.ctx, r.leader, r.follower
	cl := r.client(kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()))
	produceValues(t, ctx, cl, 0, 100)
	cl.Close()

	var hook servedBy
	cons := r.client(kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.Rack(fmt.Sprintf("r%d", follower)), kgo.WithHooks(&hook))
	consumeValues(t, ctx, cons, 100, 0)
	cons.Close()
	if n := hook.counts(); n[leader] != 100 {
		t.Errorf("records by node %v, want all 100 from the leader %d", n, leader)
	}

	// Straight to the follower: served at v11, refused before.
	direct := bs[follower].Client(kgo.SeedBrokers(bs[follower].Addr))
	defer direct.Close()
	old := bs[follower].Client(kgo.SeedBrokers(bs[follower].Addr), kgo.MaxVersions(kversion.V2_2_0())) // Fetch v10
	defer old.Close()
	md, err := bs[0].Admin().ListTopics(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the follower's high watermark at 100", func() bool {
		for _, v := range []int16{10, 11} {
			req := kmsg.NewPtrFetchRequest()
			req.SetVersion(v)
			req.ReplicaID = -1
			req.MaxBytes = 1 << 20
			rt := kmsg.NewFetchRequestTopic()
			rt.Topic, rt.TopicID = topic, md[topic].ID
			rp := kmsg.NewFetchRequestTopicPartition()
			rp.PartitionMaxBytes = 1 << 20
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			cl := direct
			if v < 11 {
				cl = old
			}
			resp, err := req.RequestWith(ctx, cl)
			if err != nil {
				t.Fatal(err)
			}
			sp := resp.Topics[0].Partitions[0]
			if v < 11 {
				if sp.ErrorCode != 6 { // NOT_LEADER_OR_FOLLOWER
					t.Fatalf("Fetch v%d to a follower: error %d, want NOT_LEADER_OR_FOLLOWER", v, sp.ErrorCode)
				}
				continue
			}
			if sp.ErrorCode != 0 {
				t.Fatalf("Fetch v%d to a follower: error %d", v, sp.ErrorCode)
			}
			if sp.HighWatermark < 100 {
				return false
			}
			if len(sp.RecordBatches) == 0 {
				t.Fatalf("Fetch v%d to a follower at high watermark %d: no records", v, sp.HighWatermark)
			}
		}
		return true
	})
}

// TestClusterFetchFromFollowerStops: a consumer reading from the
// follower in its rack goes on from another replica when that follower
// stops, with nothing lost or repeated.
func TestClusterFetchFromFollowerStops(t *testing.T) {
	const topic = "racked-stop"
	r := newRacked(t, true, topic)
	bs, ctx, leader, follower := r.bs, r.ctx, r.leader, r.follower
	prod := r.client(kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()))
	defer prod.Close()
	produceValues(t, ctx, prod, 0, 1000)
	var hook servedBy
	var seeds []string
	for i, b := range bs {
		if int32(i) != follower {
			seeds = append(seeds, b.Addr)
		}
	}
	// The client goes back to the leader from a replica it cannot reach
	// only after RecheckPreferredReplicaInterval (franz-go; the Java
	// client after metadata.max.age.ms), and is not sent back there
	// once the stopped broker left the ISR.
	cl := bs[leader].Client(kgo.SeedBrokers(seeds...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.Rack(fmt.Sprintf("r%d", follower)), kgo.WithHooks(&hook),
		kgo.RecheckPreferredReplicaInterval(2*time.Second))
	defer cl.Close()
	consumeValues(t, ctx, cl, 1000, 0)
	if n := hook.counts(); n[follower] != 1000 {
		t.Fatalf("records by node %v, want 1000 from the follower %d", n, follower)
	}
	bs[follower].Stop()
	produceValues(t, ctx, prod, 1000, 1000)
	consumeValues(t, ctx, cl, 1000, 1000)
	n := hook.counts()
	if n[follower] != 1000 || n[leader]+n[3-leader-follower] < 1000 {
		t.Errorf("records by node %v: want 1000 from the stopped follower %d, the rest from the others", n, follower)
	}
}

// TestClusterFetchFromFollowerReadCommitted: a read_committed consumer
// served by a follower sees exactly the committed transactions' records
// (the follower's last stable offset and aborted transactions, from the
// markers it replicated), and waits at an open transaction.
func TestClusterFetchFromFollowerReadCommitted(t *testing.T) {
	const topic = "racked-txn"
	r := newRacked(t, true, topic)
	ctx, follower := r.ctx, r.follower
	txn := r.client(kgo.DefaultProduceTopic(topic), kgo.TransactionalID("racked-txn"))
	defer txn.Close()
	run := func(from, n int, commit bool) {
		t.Helper()
		if err := txn.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		produceValues(t, ctx, txn, from, n)
		if err := txn.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatal(err)
		}
	}
	run(0, 100, true)
	run(-1000, 100, false) // aborted: values the reader would reject
	run(100, 100, true)

	var hook servedBy
	cl := r.client(kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.Rack(fmt.Sprintf("r%d", follower)), kgo.WithHooks(&hook))
	defer cl.Close()
	consumeValues(t, ctx, cl, 200, 0)

	// An open transaction holds the reader back until it commits.
	if err := txn.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	produceValues(t, ctx, txn, 200, 50)
	short, cancel := context.WithTimeout(ctx, time.Second)
	if fs := cl.PollFetches(short); fs.NumRecords() > 0 {
		t.Fatalf("read %d records of an open transaction", fs.NumRecords())
	}
	cancel()
	if err := txn.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	consumeValues(t, ctx, cl, 50, 200)
	if n := hook.counts(); n[follower] < 250 || len(n) != 1 {
		t.Errorf("records by node %v, want all from the follower %d", n, follower)
	}
}
