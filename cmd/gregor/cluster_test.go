package main

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestServeCluster: three gregor serve processes given the same
// controller.quorum.voters form one cluster (docs/CLUSTER.md, a
// preview): a client bootstrapped at one of them sees all three,
// creates a topic whose partitions they lead in turn, produces to and
// consumes from every partition, and every process stops cleanly.
func TestServeCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs brokers")
	}
	bin := buildGregor(t)
	var voters []string
	for i := range 3 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		voters = append(voters, fmt.Sprintf("%d@%s", i, l.Addr()))
		l.Close()
	}
	var waits []func() (string, string)
	for i := range 3 {
		waits = append(waits, startServe(t, bin, "--listen", "127.0.0.1:0",
			"--set", fmt.Sprintf("node.id=%d", i), "--set", "controller.quorum.voters="+strings.Join(voters, ",")))
	}
	var addrs []string
	for _, wait := range waits {
		_, kafka := wait()
		addrs = append(addrs, kafka)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs[1]), kgo.DefaultProduceTopic("events"),
		kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		md, err := adm.Metadata(ctx)
		if err == nil && len(md.Brokers) == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the brokers did not all register: %v %v", md.Brokers, err)
		}
	}
	if _, err := adm.CreateTopic(ctx, 6, 1, nil, "events"); err != nil {
		t.Fatal(err)
	}
	md, err := adm.Metadata(ctx, "events")
	if err != nil {
		t.Fatal(err)
	}
	leaders := map[int32]bool{}
	for _, p := range md.Topics["events"].Partitions {
		leaders[p.Leader] = true
	}
	if len(leaders) != 3 {
		t.Errorf("partition leaders %v, want all three brokers", leaders)
	}
	const n = 60
	for i := range n {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(fmt.Sprint(i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	c, err := kgo.NewClient(kgo.SeedBrokers(addrs[2]), kgo.ConsumeTopics("events"), kgo.ConsumerGroup("readers"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for got := 0; got < n; {
		fs := c.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		got += fs.NumRecords()
	}
}
