package broker_test

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/batch"
	"github.com/gregor-streaming/gregor/internal/ktest"
)

// TestFetchZeroByteLimits: a partition or request byte limit of 0 still
// returns the first batch found, as Kafka does (KIP-74: readFromLog
// reads with minOneMessage until one partition returned data, and
// LogSegment.read returns the first batch whole however small the
// limit); once a partition returned data, a limit of 0 returns nothing
// more. The request limit 0 is not "unlimited".
func TestFetchZeroByteLimits(t *testing.T) {
	b := ktest.NewBroker(t)
	b.CreateTopic("limits", 2, nil)
	cl := b.Client(kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0), kgo.MaxBufferedRecords(1))
	ctx := ctxT(t, 30*time.Second)
	for i := range 4 { // one batch per record: MaxBufferedRecords(1), produced one by one
		for p := range int32(2) {
			if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "limits", Partition: p, Value: []byte{byte(i)}}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}

	topics, err := b.Admin().ListTopics(ctx, "limits")
	if err != nil {
		t.Fatal(err)
	}
	topicID := topics["limits"].ID

	fetch := func(maxBytes, partMaxBytes int32) [2]int {
		t.Helper()
		req := kmsg.NewPtrFetchRequest()
		req.ReplicaID = -1
		req.MaxWaitMillis = 0
		req.MinBytes = 1
		req.MaxBytes = maxBytes
		req.SessionEpoch = -1
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic, rt.TopicID = "limits", topicID // by name or by ID, as the version wants
		for p := range int32(2) {
			rp := kmsg.NewFetchRequestTopicPartition()
			rp.Partition = p
			rp.PartitionMaxBytes = partMaxBytes
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		var batches [2]int
		for _, rt := range resp.Topics {
			for _, rp := range rt.Partitions {
				if rp.ErrorCode != 0 {
					t.Fatalf("partition %d: error %d", rp.Partition, rp.ErrorCode)
				}
				for data := rp.RecordBatches; len(data) > 0; {
					h, err := batch.ParseHeader(data)
					if err != nil || h.Size() > len(data) {
						t.Fatalf("partition %d: bad batch: %v", rp.Partition, err)
					}
					batches[rp.Partition]++
					data = data[h.Size():]
				}
			}
		}
		return batches
	}

	if got := fetch(50<<20, 0); got != [2]int{1, 0} {
		t.Errorf("partition_max_bytes 0: batches per partition %v, want [1 0]", got)
	}
	if got := fetch(0, 1<<20); got != [2]int{1, 0} {
		t.Errorf("max_bytes 0: batches per partition %v, want [1 0]", got)
	}
	if got := fetch(50<<20, 1<<20); got != [2]int{4, 4} {
		t.Errorf("large limits: batches per partition %v, want [4 4]", got)
	}
}
