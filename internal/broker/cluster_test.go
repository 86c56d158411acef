package broker_test

import (
	"os"
	"path/filepath"
	"strconv"
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
	// Round robin from a random broker: each leads two.
	led := map[int32]int{}
	for p, l := range leaders {
		led[l]++
		for i, b := range bs {
			_, err := os.Stat(filepath.Join(b.Dir, "shared-"+strconv.Itoa(int(p))))
			if hosts := err == nil; hosts != (int32(i) == l) {
				t.Errorf("broker %d keeps a log of shared-%d: %v (leader %d)", i, p, hosts, l)
			}
		}
	}
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
