package broker_test

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
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

// limitsFetch sends a sessionless fetch of topic's partitions 0 and 1 at
// offset 0 with the given limits and returns each partition's error code
// and number of batches, and how long the answer took.
func limitsFetch(t *testing.T, cl *kgo.Client, topic string, topicID [16]byte, minBytes, maxBytes, partMaxBytes int32, maxWait time.Duration) (codes [2]int16, batches [2]int, took time.Duration) {
	t.Helper()
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = -1
	req.MaxWaitMillis = int32(maxWait.Milliseconds())
	req.MinBytes = minBytes
	req.MaxBytes = maxBytes
	req.SessionEpoch = -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic, rt.TopicID = topic, topicID
	for p := range int32(2) {
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition = p
		rp.PartitionMaxBytes = partMaxBytes
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	start := time.Now()
	resp, err := req.RequestWith(ctxT(t, 30*time.Second), cl)
	took = time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			codes[rp.Partition] = rp.ErrorCode
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
	return codes, batches, took
}

// TestFetchNegativeByteLimits: Kafka keeps a negative max_bytes as the
// first partition's limit (KafkaApis.handleFetchRequest takes the
// minimum with fetch.max.bytes) and clamps what is left at 0 after each
// partition (ReplicaManager.readFromLog); a partition read with a
// negative limit fails in LogSegment.read (IllegalArgumentException:
// UNKNOWN_SERVER_ERROR), and the next one, read with limit 0 and no data
// yet, gets its first batch. A negative partition_max_bytes fails every
// partition that has data to read, and none that has not.
func TestFetchNegativeByteLimits(t *testing.T) {
	b := ktest.NewBroker(t)
	b.CreateTopic("neg", 2, nil)
	b.CreateTopic("negempty", 2, nil)
	cl := b.Client(kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0), kgo.MaxBufferedRecords(1))
	ctx := ctxT(t, 30*time.Second)
	for i := range 3 {
		for p := range int32(2) {
			if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "neg", Partition: p, Value: []byte{byte(i)}}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	topics, err := b.Admin().ListTopics(ctx, "neg", "negempty")
	if err != nil {
		t.Fatal(err)
	}
	id, emptyID := topics["neg"].ID, topics["negempty"].ID
	unknown := kerr.UnknownServerError.Code

	if codes, batches, _ := limitsFetch(t, cl, "neg", id, 1, -1, 1<<20, 0); codes != [2]int16{unknown, 0} || batches != [2]int{0, 1} {
		t.Errorf("max_bytes -1: codes %v batches %v, want [%d 0] [0 1]", codes, batches, unknown)
	}
	if codes, batches, _ := limitsFetch(t, cl, "neg", id, 1, 50<<20, -1, 0); codes != [2]int16{unknown, unknown} || batches != [2]int{0, 0} {
		t.Errorf("partition_max_bytes -1: codes %v batches %v, want [%d %d] [0 0]", codes, batches, unknown, unknown)
	}
	// Nothing to read: no error, and the fetch waits as usual.
	if codes, batches, _ := limitsFetch(t, cl, "negempty", emptyID, 1, -1, -1, 0); codes != [2]int16{0, 0} || batches != [2]int{0, 0} {
		t.Errorf("empty partitions, negative limits: codes %v batches %v, want no error, no data", codes, batches)
	}
}

// TestFetchMinBytesAsKafka: Kafka answers at once a fetch whose
// min_bytes is 0 or less, and caps min_bytes by the response's byte
// limit (KafkaApis.handleFetchRequest: fetchMinBytes = min(minBytes,
// fetchMaxBytes); ReplicaManager.fetchMessages answers when
// bytesReadable >= minBytes), so neither fetch below waits out its
// max_wait.
func TestFetchMinBytesAsKafka(t *testing.T) {
	b := ktest.NewBroker(t)
	b.CreateTopic("minb", 2, nil)
	cl := b.Client(kgo.RecordPartitioner(kgo.ManualPartitioner()))
	ctx := ctxT(t, 30*time.Second)
	topics, err := b.Admin().ListTopics(ctx, "minb")
	if err != nil {
		t.Fatal(err)
	}
	id := topics["minb"].ID
	const wait = 8 * time.Second
	if _, _, took := limitsFetch(t, cl, "minb", id, 0, 1<<20, 1<<20, wait); took >= wait/2 {
		t.Errorf("min_bytes 0 on empty partitions: answered after %v, want at once", took)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "minb", Partition: 0, Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	codes, batches, took := limitsFetch(t, cl, "minb", id, 1<<20, 1, 1<<20, wait)
	if took >= wait/2 || codes != [2]int16{0, 0} || batches != [2]int{1, 0} {
		t.Errorf("min_bytes 1 MiB, max_bytes 1: codes %v batches %v after %v, want one batch at once", codes, batches, took)
	}
}
