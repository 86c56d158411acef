package broker_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/ktest"
)

// TestClusterSharesMetadata: three brokers sharing one controller
// quorum (docs/CLUSTER.md; not yet a working cluster: no replication)
// name one cluster and one controller, list each other at their
// registered endpoints, and see a topic created through any of them,
// its partitions' leaders spread over all three. Only a partition's
// replica keeps its log, another broker answers NOT_LEADER_OR_FOLLOWER;
// clients bootstrapped at any broker produce to and consume from every
// partition; a deletion through one broker removes every broker's logs.
func TestClusterSharesMetadata(t *testing.T) {
	bs := ktest.NewCluster(t, 3)
	ctx := ctxT(t, 60*time.Second)

	var cluster string
	var controller int32 = -2
	for i, b := range bs {
		var md kadm.Metadata
		// The brokers register themselves as they start: wait for all.
		waitFor(t, 20*time.Second, "every broker registered", func() bool {
			var err error
			md, err = b.Admin().Metadata(ctx)
			return err == nil && len(md.Brokers) == 3 && md.Controller >= 0
		})
		for _, bd := range md.Brokers {
			if want := bs[bd.NodeID].Addr; bd.Host+":"+itoa(bd.Port) != want {
				t.Errorf("broker %d lists %d at %s:%d, want %s", i, bd.NodeID, bd.Host, bd.Port, want)
			}
		}
		if i == 0 {
			cluster, controller = md.Cluster, md.Controller
		}
		if md.Cluster != cluster || cluster == "" {
			t.Errorf("broker %d: cluster %q, broker 0's %q", i, md.Cluster, cluster)
		}
		if md.Controller != controller {
			t.Errorf("broker %d: controller %d, broker 0's %d", i, md.Controller, controller)
		}
	}

	const parts = 6
	if _, err := bs[0].Admin().CreateTopic(ctx, parts, 1, nil, "shared"); err != nil {
		t.Fatal(err)
	}
	leaders := map[int32]int32{}
	for _, b := range bs {
		waitFor(t, 20*time.Second, "the topic on every broker", func() bool {
			md, err := b.Admin().Metadata(ctx, "shared")
			if err != nil || md.Topics["shared"].Err != nil || len(md.Topics["shared"].Partitions) != parts {
				return false
			}
			for _, p := range md.Topics["shared"].Partitions {
				leaders[p.Partition] = p.Leader
			}
			return true
		})
	}
	// Round robin from a random broker: each leads two. A broker opens
	// its logs as it applies the metadata, which another broker may
	// have answered with first.
	led := map[int32]int{}
	for _, l := range leaders {
		led[l]++
	}
	waitFor(t, 10*time.Second, "each partition's log at its leader only", func() bool {
		for p, l := range leaders {
			for i, b := range bs {
				_, err := os.Stat(filepath.Join(b.Dir, "shared-"+strconv.Itoa(int(p))))
				if hosts := err == nil; hosts != (int32(i) == l) {
					return false
				}
			}
		}
		return true
	})
	if len(led) != 3 || led[0] != 2 || led[1] != 2 || led[2] != 2 {
		t.Errorf("leaders per broker %v, want two each", led)
	}

	// A broker asked for a partition another leads says so: the client
	// refreshes its metadata and goes to the leader.
	lo := kmsg.NewPtrListOffsetsRequest()
	lt := kmsg.NewListOffsetsRequestTopic()
	lt.Topic = "shared"
	lp := kmsg.NewListOffsetsRequestTopicPartition()
	lp.Partition, lp.Timestamp = 0, -1
	lt.Partitions = append(lt.Partitions, lp)
	lo.Topics = append(lo.Topics, lt)
	notLeader := (leaders[0] + 1) % 3
	cl := bs[notLeader].Client()
	if err := cl.Ping(ctx); err != nil { // learn the brokers
		t.Fatal(err)
	}
	kr, err := cl.Broker(int(notLeader)).Request(ctx, lo)
	if err != nil {
		t.Fatal(err)
	}
	resp := kr.(*kmsg.ListOffsetsResponse)
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != kerr.NotLeaderForPartition.Code {
		t.Errorf("ListOffsets at a broker that does not lead the partition: code %d, want NOT_LEADER_OR_FOLLOWER", code)
	}

	// One client, bootstrapped at one broker, produces to every
	// partition (so to every broker); another, bootstrapped elsewhere,
	// consumes them all.
	other := bs[1]
	p := other.Client(kgo.DefaultProduceTopic("shared"), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	const n = 60
	for i := range n {
		if err := p.ProduceSync(ctx, &kgo.Record{Value: []byte{byte(i)}}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	c := bs[2].Client(kgo.ConsumeTopics("shared"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	perPartition := map[int32]int{}
	for got := 0; got < n; {
		fs := c.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) { perPartition[r.Partition]++ })
		got += fs.NumRecords()
	}
	if len(perPartition) != parts {
		t.Errorf("records came from partitions %v, want all %d", perPartition, parts)
	}

	// A consumer group: its coordinator is the leader of the group's
	// __consumer_offsets partition, whichever broker the client asked.
	g := bs[0].Client(kgo.ConsumeTopics("shared"), kgo.ConsumerGroup("g"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
	for got := 0; got < n; {
		fs := g.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		got += fs.NumRecords()
	}
	if err := g.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatal(err)
	}
	g.Close()
	offs, err := bs[2].Admin().FetchOffsets(ctx, "g")
	if err != nil {
		t.Fatal(err)
	}
	var committed int64
	offs.Each(func(o kadm.OffsetResponse) { committed += o.At })
	if committed != n {
		t.Errorf("group g committed offsets summing to %d, want %d", committed, n)
	}
	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.CoordinatorKeys = []string{"g"}
	var coordinators []int32
	for _, b := range bs {
		cl := b.Client()
		if err := cl.Ping(ctx); err != nil {
			t.Fatal(err)
		}
		kr, err := cl.Broker(int(b.B.NodeID())).Request(ctx, fc)
		if err != nil {
			t.Fatal(err)
		}
		coordinators = append(coordinators, kr.(*kmsg.FindCoordinatorResponse).Coordinators[0].NodeID)
	}
	if coordinators[0] != coordinators[1] || coordinators[1] != coordinators[2] {
		t.Errorf("the brokers name different coordinators for group g: %v", coordinators)
	}

	if _, err := other.Admin().DeleteTopic(ctx, "shared"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the deleted topic's logs gone", func() bool {
		for p, l := range leaders {
			if _, err := os.Stat(filepath.Join(bs[l].Dir, "shared-"+strconv.Itoa(int(p)))); !os.IsNotExist(err) {
				return false
			}
		}
		return true
	})
}

// TestClusterTransactions: a transaction over partitions led by three
// brokers commits and one aborts; the coordinator's markers reach every
// partition (WriteTxnMarkers to the other brokers), so a read_committed
// consumer reads exactly the committed records and every partition's
// last stable offset catches up with its high watermark.
func TestClusterTransactions(t *testing.T) {
	bs := ktest.NewCluster(t, 3)
	ctx := ctxT(t, 60*time.Second)
	const parts = 6
	if _, err := bs[0].Admin().CreateTopic(ctx, parts, 1, nil, "tx"); err != nil {
		t.Fatal(err)
	}
	p := bs[0].Client(kgo.TransactionalID("tx-cluster"), kgo.DefaultProduceTopic("tx"),
		kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	const n = 30
	for _, commit := range []bool{true, false} {
		if err := p.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for i := range n {
			p.Produce(ctx, &kgo.Record{Value: []byte(fmt.Sprintf("%v-%d", commit, i))}, func(_ *kgo.Record, err error) {
				if err != nil {
					t.Error(err)
				}
			})
		}
		if err := p.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if err := p.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatal(err)
		}
	}

	// Every partition's last stable offset reaches its high watermark
	// once its markers are written.
	cl := bs[2].Client()
	waitFor(t, 20*time.Second, "every partition's markers", func() bool {
		req := kmsg.NewPtrListOffsetsRequest()
		req.IsolationLevel = 1
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = "tx"
		for i := range int32(parts) {
			rp := kmsg.NewListOffsetsRequestTopicPartition()
			rp.Partition, rp.Timestamp = i, -1
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
		resps := cl.RequestSharded(ctx, req)
		stable := 0
		for _, r := range resps {
			if r.Err != nil {
				return false
			}
			for _, t := range r.Resp.(*kmsg.ListOffsetsResponse).Topics {
				for _, p := range t.Partitions {
					// Each partition holds 5 + 5 records and two markers.
					if p.ErrorCode == 0 && p.Offset == 2*n/parts+2 {
						stable++
					}
				}
			}
		}
		return stable == parts
	})

	// Exactly once across brokers: a group transact session copies the
	// committed records to another topic, its offsets committed in the
	// same transactions (TxnOffsetCommit at the group's coordinator,
	// verified with the transaction's coordinator, markers to both).
	if _, err := bs[0].Admin().CreateTopic(ctx, parts, 1, nil, "tx-out"); err != nil {
		t.Fatal(err)
	}
	sess, err := kgo.NewGroupTransactSession(kgo.SeedBrokers(bs[1].Addr), kgo.TransactionalID("tx-copy"),
		kgo.ConsumerGroup("tx-copiers"), kgo.ConsumeTopics("tx"), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DefaultProduceTopic("tx-out"),
		kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	for copied := 0; copied < n; {
		fs := sess.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		if err := sess.Begin(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if !strings.HasPrefix(string(r.Value), "true-") {
				t.Errorf("read_committed consumer read %q", r.Value)
			}
			copied++
			sess.Produce(ctx, &kgo.Record{Value: r.Value}, nil)
		})
		if committed, err := sess.End(ctx, kgo.TryCommit); err != nil || !committed {
			t.Fatalf("transaction not committed: %v", err)
		}
	}
	offs, err := bs[2].Admin().FetchOffsets(ctx, "tx-copiers")
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	offs.Each(func(o kadm.OffsetResponse) { sum += o.At })
	if sum != n {
		t.Errorf("the copiers' committed offsets sum to %d, want %d (each partition's first transaction)", sum, n)
	}
	c := bs[1].Client(kgo.ConsumeTopics("tx-out"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	for got := 0; got < n; {
		fs := c.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		got += fs.NumRecords()
	}
}
