package goclients

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

// TestSaramaClusterAdmin runs against a three-node cluster
// (interop/cluster.sh sarama sets GREGOR_CLUSTER to its brokers; skipped
// otherwise): sarama's ClusterAdmin moves every partition of a
// replicated topic to other brokers (AlterPartitionReassignments, what
// kafka-reassign-partitions.sh sends), watches the moves with
// ListPartitionReassignments until they are done, gives the leadership
// back to each partition's preferred replica (ElectLeaders, what
// kafka-leader-election.sh sends), and reads back every record produced
// before the moves.
func TestSaramaClusterAdmin(t *testing.T) {
	cluster := os.Getenv("GREGOR_CLUSTER")
	if cluster == "" {
		t.Skip("needs a cluster: run through interop/cluster.sh sarama")
	}
	brokers := strings.Split(cluster, ",")
	cfg := saramaConfig(sarama.V3_6_0_0, "interop-sarama-cluster")
	client, err := sarama.NewClient(brokers, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	const topic, parts, n = "sarama-moved", 3, 300
	if err := admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: parts, ReplicationFactor: 2}, false); err != nil {
		t.Fatal(err)
	}
	describe := func() []*sarama.PartitionMetadata {
		t.Helper()
		md, err := admin.DescribeTopics([]string{topic})
		if err != nil {
			t.Fatal(err)
		}
		ps := md[0].Partitions
		slices.SortFunc(ps, func(a, b *sarama.PartitionMetadata) int { return int(a.ID - b.ID) })
		return ps
	}
	waitUntil := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(60 * time.Second); !cond(); time.Sleep(200 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	waitUntil("every ISR full", func() bool {
		ps := describe()
		for _, p := range ps {
			if len(p.Isr) != 2 {
				return false
			}
		}
		return len(ps) == parts
	})

	producer, err := sarama.NewSyncProducerFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Close()
	for i := range n {
		m := &sarama.ProducerMessage{Topic: topic, Partition: int32(i % parts), Value: sarama.StringEncoder(fmt.Sprintf("v%04d", i))}
		if _, _, err := producer.SendMessage(m); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
	}

	// Every partition to the broker its replicas leave out, first,
	// and its current first replica: the leader changes everywhere.
	var ids []int32
	for _, b := range client.Brokers() {
		ids = append(ids, b.ID())
	}
	assignment := make([][]int32, parts)
	for _, p := range describe() {
		for _, id := range ids {
			if !slices.Contains(p.Replicas, id) {
				assignment[p.ID] = []int32{id, p.Replicas[0]}
			}
		}
	}
	if err := admin.AlterPartitionReassignments(topic, assignment); err != nil {
		t.Fatal(err)
	}
	waitUntil("the moves done", func() bool {
		st, err := admin.ListPartitionReassignments(topic, []int32{0, 1, 2})
		if err != nil {
			t.Fatal(err)
		}
		if len(st[topic]) > 0 {
			return false
		}
		for _, p := range describe() {
			if !slices.Equal(p.Replicas, assignment[p.ID]) || len(p.Isr) != 2 {
				return false
			}
		}
		return true
	})

	// The new first replicas lead once elected (or already do, when
	// the controller's automatic rebalance was first).
	res, err := admin.ElectLeaders(sarama.PreferredElection, map[string][]int32{topic: {0, 1, 2}})
	if err != nil {
		t.Fatal(err)
	}
	for p, r := range res[topic] {
		if !errors.Is(r.ErrorCode, sarama.ErrNoError) && !errors.Is(r.ErrorCode, sarama.ErrElectionNotNeeded) {
			t.Fatalf("electing partition %d: %v", p, r.ErrorCode)
		}
	}
	waitUntil("the preferred replicas leading", func() bool {
		for _, p := range describe() {
			if p.Leader != assignment[p.ID][0] {
				return false
			}
		}
		return true
	})

	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	for p := range int32(parts) {
		pc, err := consumer.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatal(err)
		}
		for j := int(p); j < n; j += parts {
			select {
			case m := <-pc.Messages():
				if want := fmt.Sprintf("v%04d", j); string(m.Value) != want {
					t.Fatalf("partition %d offset %d: %q, want %q", p, m.Offset, m.Value, want)
				}
			case err := <-pc.Errors():
				t.Fatal(err)
			case <-time.After(30 * time.Second):
				t.Fatalf("partition %d: timed out reading record %d", p, j)
			}
		}
		pc.Close()
	}
}
