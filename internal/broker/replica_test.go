package broker_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/gregor-streaming/gregor/internal/ktest"
	"github.com/gregor-streaming/gregor/internal/metrics"
	"github.com/gregor-streaming/gregor/internal/vfs"
)

// waitRegistered waits until Metadata through adm lists n brokers.
func waitRegistered(t *testing.T, ctx context.Context, adm *kadm.Client, n int) {
	t.Helper()
	waitFor(t, 20*time.Second, "every broker registered", func() bool {
		md, err := adm.Metadata(ctx)
		return err == nil && len(md.Brokers) == n
	})
}

// clusterSeeds returns every broker's address, for clients that must
// survive any one broker's death.
func clusterSeeds(bs []*ktest.Broker) []string {
	var seeds []string
	for _, b := range bs {
		seeds = append(seeds, b.Addr)
	}
	return seeds
}

// partitionState is a partition's leader and ISR as Metadata reports.
func partitionState(t *testing.T, ctx context.Context, adm *kadm.Client, topic string, p int32) (leader int32, replicas, isr []int32) {
	t.Helper()
	md, err := adm.Metadata(ctx, topic)
	if err != nil {
		return -1, nil, nil
	}
	pd, ok := md.Topics[topic].Partitions[p]
	if !ok {
		return -1, nil, nil
	}
	isr = slices.Clone(pd.ISR)
	slices.Sort(isr)
	return pd.Leader, pd.Replicas, isr
}

// logSizes returns each broker's size of topic's partition p's log
// (DescribeLogDirs), -1 where it has none.
func logSizes(t *testing.T, ctx context.Context, bs []*ktest.Broker, topic string, p int32) []int64 {
	t.Helper()
	sizes := make([]int64, len(bs))
	for i, b := range bs {
		sizes[i] = -1
		if b.B == nil {
			continue
		}
		dirs, err := b.Admin().DescribeBrokerLogDirs(ctx, int32(i), kadm.TopicsSet{topic: {p: {}}})
		if err != nil {
			continue
		}
		dirs.EachPartition(func(d kadm.DescribedLogDirPartition) {
			if d.Topic == topic && d.Partition == p {
				sizes[i] = d.Size
			}
		})
	}
	return sizes
}

// TestClusterReplication: a topic with three replicas on three brokers
// (docs/CLUSTER.md, step 4). acks=all produce is acknowledged once every
// ISR member has the records durably: every broker's log holds the same
// bytes. A follower that stops drops out of the ISR after
// replica.lag.time.max.ms, and acks=all producing goes on with the two
// left (min.insync.replicas 2); started again, it truncates to its
// leader, catches up, and is back in the ISR; a consumer reads every
// acknowledged record once, in order.
func TestClusterReplication(t *testing.T) {
	bs := ktest.NewCluster(t, 3, ktest.Set("replica.lag.time.max.ms", "1500"))
	ctx := ctxT(t, 120*time.Second)
	adm := bs[0].Admin()
	waitRegistered(t, ctx, adm, 3)
	const topic = "replicated"
	minISR := "2"
	if _, err := adm.CreateTopic(ctx, 1, 3, map[string]*string{"min.insync.replicas": &minISR}, topic); err != nil {
		t.Fatal(err)
	}
	var leader int32
	var replicas []int32
	waitFor(t, 20*time.Second, "three replicas in the ISR", func() bool {
		var isr []int32
		leader, replicas, isr = partitionState(t, ctx, adm, topic, 0)
		return len(replicas) == 3 && slices.Equal(isr, []int32{0, 1, 2})
	})

	cl := bs[0].Client(kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()))
	produce := func(from, n int) {
		t.Helper()
		for i := from; i < from+n; i++ {
			r := &kgo.Record{Value: fmt.Appendf(nil, "record-%04d", i)}
			if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatalf("record %d: %v", i, err)
			}
		}
	}
	produce(0, 100)
	// Acknowledged with acks=all: on every replica's disk already.
	sizes := logSizes(t, ctx, bs, topic, 0)
	if sizes[0] <= 0 || sizes[0] != sizes[1] || sizes[1] != sizes[2] {
		// The leader answers once the followers fetched past the
		// records, which they do only after syncing them: equal.
		t.Fatalf("log sizes after acks=all produce: %v, want three equal", sizes)
	}

	// A follower stops: the leader drops it from the ISR, and acks=all
	// goes on with two.
	follower := replicas[1]
	if follower == leader {
		follower = replicas[2]
	}
	bs[follower].Stop()
	waitFor(t, 30*time.Second, "the stopped follower out of the ISR", func() bool {
		_, _, isr := partitionState(t, ctx, adm, topic, 0)
		return len(isr) == 2 && !slices.Contains(isr, follower)
	})
	underReplicated := func() bool {
		var under bool
		bs[leader].B.CollectPartitions(func(pi metrics.PartitionInfo) {
			if pi.Topic == topic && pi.Partition == 0 {
				under = pi.Leader && pi.UnderReplicated
			}
		})
		return under
	}
	// gregor_broker_under_replicated_partitions
	waitFor(t, 10*time.Second, "the leader reporting the partition under-replicated", underReplicated)
	produce(100, 100)

	// Back, it catches up and rejoins.
	bs[follower].Start()
	waitFor(t, 30*time.Second, "the follower back in the ISR", func() bool {
		_, _, isr := partitionState(t, ctx, adm, topic, 0)
		return slices.Equal(isr, []int32{0, 1, 2})
	})
	waitFor(t, 10*time.Second, "the leader reporting the partition fully replicated", func() bool { return !underReplicated() })
	produce(200, 50)
	waitFor(t, 10*time.Second, "every log the same", func() bool {
		s := logSizes(t, ctx, bs, topic, 0)
		return s[0] > 0 && s[0] == s[1] && s[1] == s[2]
	})

	consumer := bs[0].Client(kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	for i := 0; i < 250; {
		fs := consumer.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if want := fmt.Sprintf("record-%04d", i); string(r.Value) != want {
				t.Fatalf("offset %d: %q, want %q", r.Offset, r.Value, want)
			}
			i++
		})
	}
}

// TestClusterFailover: the leader of a replicated partition stops
// (gracefully: its leaderships move at once; or killed: the controller
// finds it gone after broker.session.timeout.ms) between acks=all
// produce requests; a new leader is elected from the ISR, the producer
// goes on, and every acknowledged record is read back once, at the
// offset it was acknowledged at. The old leader, started again,
// follows, truncating what it had past its new leader, and rejoins the
// ISR.
func TestClusterFailover(t *testing.T) {
	for _, kill := range []bool{false, true} {
		name := "stop"
		if kill {
			name = "kill"
		}
		t.Run(name, func(t *testing.T) { testClusterFailover(t, kill) })
	}
}

func testClusterFailover(t *testing.T, kill bool) {
	bs := ktest.NewCluster(t, 3, ktest.WithFS(vfs.Default),
		ktest.Set("replica.lag.time.max.ms", "3000"),
		ktest.Set("broker.session.timeout.ms", "2000"))
	ctx := ctxT(t, 180*time.Second)
	adm := bs[0].Admin()
	waitRegistered(t, ctx, adm, 3)
	const topic = "failover"
	const parts = 3
	minISR := "2"
	if _, err := adm.CreateTopic(ctx, parts, 3, map[string]*string{"min.insync.replicas": &minISR}, topic); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "every ISR full", func() bool {
		for p := range int32(parts) {
			if _, _, isr := partitionState(t, ctx, adm, topic, p); len(isr) != 3 {
				return false
			}
		}
		return true
	})
	victim, _, _ := partitionState(t, ctx, adm, topic, 0)
	survivor := bs[(victim+1)%3]

	type ack struct {
		partition int32
		offset    int64
	}
	acked := map[string]ack{}
	seeds := clusterSeeds(bs)
	cl := survivor.Client(kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	next := 0
	produce := func(n int) {
		t.Helper()
		var rs []*kgo.Record
		for range n {
			rs = append(rs, &kgo.Record{Value: fmt.Appendf(nil, "v%05d", next)})
			next++
		}
		for _, r := range cl.ProduceSync(ctx, rs...) {
			if r.Err != nil {
				t.Fatalf("produce %s: %v", r.Record.Value, r.Err)
			}
			acked[string(r.Record.Value)] = ack{r.Record.Partition, r.Record.Offset}
		}
	}
	for range 20 {
		produce(15)
	}
	if kill {
		bs[victim].Halt()
	} else {
		bs[victim].Stop()
	}
	waitFor(t, 30*time.Second, "a new leader for partition 0", func() bool {
		l, _, _ := partitionState(t, ctx, survivor.Admin(), topic, 0)
		return l >= 0 && l != victim
	})
	for range 20 {
		produce(15)
	}
	bs[victim].Start()
	waitFor(t, 30*time.Second, "the old leader back in every ISR", func() bool {
		for p := range int32(parts) {
			if _, _, isr := partitionState(t, ctx, survivor.Admin(), topic, p); len(isr) != 3 {
				return false
			}
		}
		return true
	})
	for range 5 {
		produce(15)
	}

	consumer := survivor.Client(kgo.SeedBrokers(seeds...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	seen := map[string]bool{}
	for len(seen) < len(acked) {
		fs := consumer.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			v := string(r.Value)
			a, ok := acked[v]
			switch {
			case !ok:
				t.Errorf("%s at %d/%d was never acknowledged", v, r.Partition, r.Offset)
			case seen[v]:
				t.Errorf("%s read twice", v)
			case a.partition != r.Partition || a.offset != r.Offset:
				t.Errorf("%s at %d/%d, acknowledged at %d/%d", v, r.Partition, r.Offset, a.partition, a.offset)
			}
			seen[v] = true
		})
	}
}

// TestClusterTruncatesDivergentTail: a leader takes acks=1 records its
// followers never fetch (both killed), then dies itself; the followers
// come back, one is elected under a new leader epoch and takes acks=all
// records. The old leader, started again, truncates its unreplicated
// tail where OffsetForLeaderEpoch says its log diverges from the new
// leader's, and copies the new leader's records: every log ends the
// same, and a consumer reads the acks=all records, none of the lost
// tail's.
func TestClusterTruncatesDivergentTail(t *testing.T) {
	bs := ktest.NewCluster(t, 3, ktest.WithFS(vfs.Default),
		ktest.Set("broker.session.timeout.ms", "2000"))
	ctx := ctxT(t, 180*time.Second)
	adm := bs[0].Admin()
	waitRegistered(t, ctx, adm, 3)
	const topic = "diverge"
	if _, err := adm.CreateTopic(ctx, 1, 3, nil, topic); err != nil {
		t.Fatal(err)
	}
	var leader int32
	var replicas []int32
	waitFor(t, 20*time.Second, "three replicas in the ISR", func() bool {
		var isr []int32
		leader, replicas, isr = partitionState(t, ctx, adm, topic, 0)
		return len(isr) == 3
	})
	seeds := clusterSeeds(bs)
	produce := func(b *ktest.Broker, acks kgo.Acks, prefix string, n int) {
		t.Helper()
		opts := []kgo.Opt{kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(acks)}
		if acks != kgo.AllISRAcks() {
			opts = append(opts, kgo.DisableIdempotentWrite())
		}
		cl := b.Client(opts...)
		defer cl.Close()
		for i := range n {
			if err := cl.ProduceSync(ctx, &kgo.Record{Value: fmt.Appendf(nil, "%s-%03d", prefix, i)}).FirstErr(); err != nil {
				t.Fatalf("%s %d: %v", prefix, i, err)
			}
		}
	}
	produce(bs[leader], kgo.AllISRAcks(), "kept", 50)
	var followers []int32
	for _, r := range replicas {
		if r != leader {
			followers = append(followers, r)
		}
	}
	for _, f := range followers {
		bs[f].Halt()
	}
	// Two of three controllers down: no quorum, so nothing changes the
	// ISR, and acks=1 is answered by the leader alone.
	produce(bs[leader], kgo.LeaderAck(), "lost", 20)
	bs[leader].Halt()
	for _, f := range followers {
		bs[f].Start()
	}
	var newLeader int32
	waitFor(t, 60*time.Second, "a follower elected", func() bool {
		newLeader, _, _ = partitionState(t, ctx, bs[followers[0]].Admin(), topic, 0)
		return newLeader >= 0 && newLeader != leader
	})
	produce(bs[newLeader], kgo.AllISRAcks(), "after", 30)
	bs[leader].Start()
	waitFor(t, 60*time.Second, "every log the same", func() bool {
		s := logSizes(t, ctx, bs, topic, 0)
		return s[0] > 0 && s[0] == s[1] && s[1] == s[2]
	})

	cl := bs[newLeader].Client(kgo.SeedBrokers(seeds...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	var got []string
	for len(got) < 80 {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	for i, v := range got {
		want := fmt.Sprintf("kept-%03d", i)
		if i >= 50 {
			want = fmt.Sprintf("after-%03d", i-50)
		}
		if v != want {
			t.Fatalf("record %d: %q, want %q", i, v, want)
		}
	}
	if lso, err := adm.ListEndOffsets(ctx, topic); err != nil {
		t.Fatal(err)
	} else if o, _ := lso.Lookup(topic, 0); o.Offset != 80 {
		t.Fatalf("log end offset %d, want 80 (the acks=1 tail truncated)", o.Offset)
	}
}

// TestClusterCoordinatorFailover: the broker coordinating a consumer
// group and a transactional ID is killed. The leadership of their
// __consumer_offsets and __transaction_state partitions (three
// replicas) moves, the new leaders' coordinators load them (docs/
// CLUSTER.md, step 6): the group's committed offsets are read back
// through the new coordinator and a consumer resumes from them, and the
// transactional ID commits a new transaction there, its first one's
// records committed and visible to read_committed readers.
func TestClusterCoordinatorFailover(t *testing.T) {
	bs := ktest.NewCluster(t, 3, ktest.WithFS(vfs.Default),
		ktest.Set("broker.session.timeout.ms", "2000"),
		ktest.Set("offsets.topic.num.partitions", "3"),
		ktest.Set("transaction.state.log.num.partitions", "3"))
	ctx := ctxT(t, 180*time.Second)
	seeds := clusterSeeds(bs)
	adm := bs[0].Admin()
	waitRegistered(t, ctx, adm, 3)
	const topic = "work"
	if _, err := adm.CreateTopic(ctx, 3, 3, nil, topic); err != nil {
		t.Fatal(err)
	}

	// A transaction, committed.
	txnProducer := func(b *ktest.Broker) *kgo.Client {
		return b.Client(kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic(topic),
			kgo.TransactionalID("failover-txn"), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	}
	runTxn := func(cl *kgo.Client, prefix string) {
		t.Helper()
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for i := range 30 {
			if err := cl.ProduceSync(ctx, &kgo.Record{Value: fmt.Appendf(nil, "%s-%02d", prefix, i)}).FirstErr(); err != nil {
				t.Fatalf("%s %d: %v", prefix, i, err)
			}
		}
		if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
			t.Fatalf("commit %s: %v", prefix, err)
		}
	}
	p1 := txnProducer(bs[0])
	runTxn(p1, "first")
	p1.Close()

	// A group consumes the first transaction's records and commits.
	consume := func(b *ktest.Broker, n int) []string {
		t.Helper()
		cl := b.Client(kgo.SeedBrokers(seeds...), kgo.ConsumeTopics(topic), kgo.ConsumerGroup("failover-group"),
			kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.DisableAutoCommit(),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		defer cl.Close()
		var got []string
		for len(got) < n {
			fs := cl.PollFetches(ctx)
			if err := fs.Err0(); err != nil {
				t.Fatal(err)
			}
			fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
		}
		if err := cl.CommitUncommittedOffsets(ctx); err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := consume(bs[0], 30); len(got) != 30 {
		t.Fatalf("first read %d records, want 30", len(got))
	}

	gc := adm.FindGroupCoordinators(ctx, "failover-group")["failover-group"]
	tc := adm.FindTxnCoordinators(ctx, "failover-txn")["failover-txn"]
	if gc.Err != nil || tc.Err != nil {
		t.Fatalf("coordinators: %v, %v", gc.Err, tc.Err)
	}
	victim := gc.NodeID
	survivor := bs[(victim+1)%3]
	bs[victim].Halt()
	sadm := survivor.Admin()
	waitFor(t, 60*time.Second, "the group's coordinator moved", func() bool {
		c := sadm.FindGroupCoordinators(ctx, "failover-group")["failover-group"]
		return c.Err == nil && c.NodeID != victim
	})
	waitFor(t, 60*time.Second, "the committed offsets served by the new coordinator", func() bool {
		offs, err := sadm.FetchOffsets(ctx, "failover-group")
		if err != nil {
			return false
		}
		var total int64
		offs.Each(func(o kadm.OffsetResponse) { total += o.At })
		// 30 records and one commit marker per partition with data.
		return total >= 30
	})

	// The transactional ID goes on at its (possibly new) coordinator.
	p2 := txnProducer(survivor)
	runTxn(p2, "second")
	p2.Close()
	got := consume(survivor, 30)
	slices.Sort(got)
	for i, v := range got {
		if want := fmt.Sprintf("second-%02d", i); v != want {
			t.Fatalf("after failover the group read %q at %d, want %q (only the second transaction, from the committed offsets on)", v, i, want)
		}
	}
}
