package broker_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/ktest"
	"github.com/gregor-streaming/gregor/internal/vfs"
)

// TestClusterLeaderDiesAfterISRShrank: a follower is cut off and leaves
// the ISR; the leader acknowledges acks=all records with the two left
// (min.insync.replicas 2); then the leader loses power. The one in-sync
// follower is elected, never the one that was cut off (it lacks the
// records and unclean election is off), and holds every acknowledged
// record. Once the network heals and the old leader is back, all three
// replicas hold the same records at the same offsets, read from each
// one directly (a follower serves consumers' Fetch v11+).
func TestClusterLeaderDiesAfterISRShrank(t *testing.T) {
	network := ktest.NewNetwork()
	bs := ktest.NewCluster(t, 3, ktest.WithFS(vfs.NewMem()), ktest.WithNetwork(network),
		ktest.Set("replica.lag.time.max.ms", "1500"), ktest.Set("broker.session.timeout.ms", "2000"))
	ctx := ctxT(t, 120*time.Second)
	adm := bs[0].Admin()
	waitRegistered(t, ctx, adm, 3)
	const topic = "shrunk"
	minISR := "2"
	// The follower cut off is not the controller (threeReplicas), so the
	// leader can still have the ISR shrunk.
	leader, cut := threeReplicas(t, ctx, adm, topic, map[string]*string{"min.insync.replicas": &minISR})
	stays := 3 - leader - cut

	network.Bridge(int(leader), int(cut))
	waitFor(t, 20*time.Second, "the cut follower out of the ISR", func() bool {
		_, _, isr := partitionState(t, ctx, adm, topic, 0)
		return len(isr) == 2 && !slices.Contains(isr, cut)
	})
	prod := bs[stays].Client(kgo.SeedBrokers(clusterSeeds(bs)...), kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()))
	defer prod.Close()
	produceValues(t, ctx, prod, 0, 300)

	bs[leader].PowerOff(vfs.CrashOptions{})
	other := bs[stays].Admin()
	waitFor(t, 30*time.Second, "a new leader", func() bool {
		l, _, _ := partitionState(t, ctx, other, topic, 0)
		if l == cut {
			t.Fatalf("the follower cut off before the acknowledgements (%d) was elected", cut)
		}
		return l == stays
	})
	network.Heal()
	waitFor(t, 30*time.Second, "the cut follower back in the ISR", func() bool {
		_, _, isr := partitionState(t, ctx, other, topic, 0)
		return slices.Contains(isr, cut)
	})
	produceValues(t, ctx, prod, 300, 100)
	bs[leader].Start()
	waitFor(t, 30*time.Second, "the old leader back in the ISR", func() bool {
		_, _, isr := partitionState(t, ctx, other, topic, 0)
		return len(isr) == 3
	})

	for id := range int32(3) {
		var got []string
		waitFor(t, 20*time.Second, fmt.Sprintf("node %d's high watermark at 400", id), func() bool {
			got = replicaValues(t, ctx, bs[id], topic)
			return len(got) >= 400
		})
		for i, v := range got {
			if v != strconv.Itoa(i) {
				t.Fatalf("node %d, offset %d: %q, want %q", id, i, v, strconv.Itoa(i))
			}
		}
		if len(got) != 400 {
			t.Fatalf("node %d holds %d records, want 400", id, len(got))
		}
	}
}

// replicaValues reads partition 0 of topic from the broker b itself,
// leader or follower (Fetch as a consumer), up to its high
// watermark, and returns the record values in offset order.
func replicaValues(t *testing.T, ctx context.Context, b *ktest.Broker, topic string) []string {
	t.Helper()
	md, err := b.Admin().ListTopics(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	cl := b.Client(kgo.SeedBrokers(b.Addr))
	defer cl.Close()
	var out []string
	for {
		req := kmsg.NewPtrFetchRequest()
		req.ReplicaID, req.MaxBytes = -1, 1<<20
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic, rt.TopicID = topic, md[topic].ID // kgo may send v13+, by ID
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.FetchOffset, rp.PartitionMaxBytes, rp.CurrentLeaderEpoch = int64(len(out)), 1<<20, -1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		sp := resp.Topics[0].Partitions[0]
		if sp.ErrorCode != 0 || len(sp.RecordBatches) == 0 {
			return out
		}
		fp, _ := kgo.ProcessFetchPartition(kgo.ProcessFetchPartitionOpts{Topic: topic, Partition: 0, KeepControlRecords: false}, &sp, kgo.DefaultDecompressor(), nil)
		if fp.Err != nil {
			t.Fatal(fp.Err)
		}
		for _, r := range fp.Records {
			if r.Offset != int64(len(out)) {
				t.Fatalf("record at offset %d after %d records", r.Offset, len(out))
			}
			out = append(out, string(r.Value))
		}
	}
}
