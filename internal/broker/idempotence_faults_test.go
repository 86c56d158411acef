package broker_test

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/gregor-streaming/gregor/internal/ktest"
)

// TestIdempotenceRetriesThroughFaults produces through a proxy that
// drops and delays responses: the broker appended the batch but the
// client never hears of it (or gives up waiting), reconnects and sends
// it again, up to 5 requests in flight. Every record must be stored
// exactly once, in the order produced, per partition.
func TestIdempotenceRetriesThroughFaults(t *testing.T) {
	b := ktest.NewBroker(t)
	const topic, partitions, perPartition = "idem-faults", 3, 10000
	b.CreateTopic(topic, partitions, nil)
	px := ktest.NewProxy(t, b.Addr, uint64(time.Now().UnixNano()))
	px.Advertise(b)

	cl, err := kgo.NewClient(
		kgo.SeedBrokers(px.Addr()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(time.Millisecond),
		kgo.ProducerBatchMaxBytes(1<<10),
		kgo.RecordRetries(1000),
		kgo.RequestTimeoutOverhead(150*time.Millisecond),
		kgo.ProduceRequestTimeout(100*time.Millisecond),
		kgo.RetryBackoffFn(func(int) time.Duration { return 20 * time.Millisecond }),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := ctxT(t, 120*time.Second)
	// The producer ID first, then faults on produce responses.
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("warm")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	px.SetFaults(ktest.Faults{Keys: []int16{0}, DropResponse: 0.05, DelayResponse: 0.03, Delay: 400 * time.Millisecond})

	var wg sync.WaitGroup
	var failed atomic.Value
	for i := range perPartition {
		for p := range int32(partitions) {
			wg.Add(1)
			r := &kgo.Record{Topic: topic, Partition: p, Value: []byte(fmt.Sprintf("%d-%d", p, i))}
			cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
				if err != nil {
					failed.Store(err)
				}
				wg.Done()
			})
		}
	}
	wg.Wait()
	if err := failed.Load(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	px.SetFaults(ktest.Faults{})
	t.Logf("proxy dropped %d responses and delayed %d", px.Dropped.Load(), px.Delayed.Load())
	if px.Dropped.Load() == 0 {
		t.Fatal("no response was dropped: the test proves nothing")
	}

	recs := consumeN(t, b, topic, partitions*perPartition+1)
	next := make([]int, partitions)
	for _, r := range recs {
		if string(r.Value) == "warm" {
			continue
		}
		p, seq, ok := strings.Cut(string(r.Value), "-")
		if !ok || p != strconv.Itoa(int(r.Partition)) {
			t.Fatalf("record %q in partition %d", r.Value, r.Partition)
		}
		i, _ := strconv.Atoi(seq)
		if i != next[r.Partition] {
			t.Fatalf("partition %d: record %d where %d was expected (duplicate or reordering) at offset %d", r.Partition, i, next[r.Partition], r.Offset)
		}
		next[r.Partition]++
	}
}
