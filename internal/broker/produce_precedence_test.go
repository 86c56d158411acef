package broker_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/batch"
	"github.com/gregor-streaming/gregor/internal/ktest"
)

// producePart is one partition of a raw produce request.
type producePart struct {
	topic     string
	partition int32
	records   []byte
}

// produceResult is one partition of a produce response.
type produceResult struct {
	err *kerr.Error // nil: appended
	msg *string
}

// producePartsRaw sends a produce request at version (3-8: the response header
// is not flexible) and returns each partition's result, keyed by
// "topic/partition".
func producePartsRaw(t *testing.T, c *rawConn, version, acks int16, txnID *string, parts []producePart, corr int32) map[string]produceResult {
	t.Helper()
	req := kmsg.NewPtrProduceRequest()
	req.Version, req.Acks, req.TimeoutMillis, req.TransactionID = version, acks, 5000, txnID
	for _, p := range parts {
		if len(req.Topics) == 0 || req.Topics[len(req.Topics)-1].Topic != p.topic {
			rt := kmsg.NewProduceRequestTopic()
			rt.Topic = p.topic
			req.Topics = append(req.Topics, rt)
		}
		rt := &req.Topics[len(req.Topics)-1]
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition, rp.Records = p.partition, p.records
		rt.Partitions = append(rt.Partitions, rp)
	}
	c.write(request(req, corr))
	body, err := c.readFrame(corr)
	if err != nil {
		t.Fatalf("no produce answer: %v", err)
	}
	resp := kmsg.NewPtrProduceResponse()
	resp.Version = version
	if err := resp.ReadFrom(body); err != nil {
		t.Fatal(err)
	}
	got := map[string]produceResult{}
	for _, st := range resp.Topics {
		for _, sp := range st.Partitions {
			var r produceResult
			if sp.ErrorCode != 0 {
				r.err = kerr.ErrorForCode(sp.ErrorCode).(*kerr.Error)
			}
			r.msg = sp.ErrorMessage
			got[st.Topic+"/"+strconv.Itoa(int(sp.Partition))] = r
		}
	}
	return got
}

// expectProduce checks a produce response against want, partition by
// partition ("topic/partition" to error, nil for appended).
func expectProduce(t *testing.T, what string, got map[string]produceResult, want map[string]*kerr.Error) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d partitions answered, want %d: %v", what, len(got), len(want), got)
	}
	for k, w := range want {
		if g, ok := got[k]; !ok || g.err != w {
			t.Errorf("%s: %s answered %v, want %v", what, k, g.err, w)
		}
	}
}

func txnBatch(t *testing.T, pid int64) []byte {
	t.Helper()
	bb := batch.NewBuilder(batch.CodecNone).SetProducer(pid, 0, 0).SetTransactional(true)
	bb.Add(batch.Record{Value: []byte("t"), Timestamp: time.Now().UnixMilli()})
	out, err := bb.Build()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func endOffset(t *testing.T, b *ktest.Broker, topic string, partition int32) int64 {
	t.Helper()
	ends, err := b.Admin().ListEndOffsets(ctxT(t, 5*time.Second), topic)
	if err != nil {
		t.Fatal(err)
	}
	o, _ := ends.Lookup(topic, partition)
	return o.Offset
}

// TestProduceTransactionalBatchWithoutTransactionalID: Kafka checks a
// produce request's transactional batches before any topic
// (KafkaApis.handleProduceRequest): when the first batch of some
// partition is transactional and the request has no transactional ID,
// every partition of the request, known or not, is answered
// TRANSACTIONAL_ID_AUTHORIZATION_FAILED (ProduceRequest.getErrorResponse)
// with no message, invalid acks included, and nothing is appended.
// Reading those first batches, a header Kafka cannot parse (a length
// below 14, a magic outside 0-2) fails the whole request as
// CORRUPT_MESSAGE, with the reason.
func TestProduceTransactionalBatchWithoutTransactionalID(t *testing.T) {
	b := ktest.NewBroker(t)
	b.CreateTopic("tx", 2, nil)
	c := dialRaw(t, b.Addr)
	want := func(err *kerr.Error) map[string]*kerr.Error {
		return map[string]*kerr.Error{"tx/0": err, "tx/1": err, "nope/0": err}
	}
	corr := int32(0)
	for _, acks := range []int16{-1, 1, 5} {
		corr++
		got := producePartsRaw(t, c, 8, acks, nil, []producePart{
			{"tx", 0, goodBatch(t, 2)},
			{"tx", 1, txnBatch(t, 4242)},
			{"nope", 0, goodBatch(t, 1)},
		}, corr)
		expectProduce(t, "transactional batch without a transactional ID", got, want(kerr.TransactionalIDAuthorizationFailed))
		if m := got["tx/0"].msg; m != nil {
			t.Errorf("error message %q, want none", *m)
		}
	}

	magic3 := goodBatch(t, 1)
	magic3[16] = 3
	corr++
	got := producePartsRaw(t, c, 8, -1, nil, []producePart{
		{"tx", 0, goodBatch(t, 2)},
		{"tx", 1, magic3},
		{"nope", 0, goodBatch(t, 1)},
	}, corr)
	expectProduce(t, "a bad magic in one partition", got, want(kerr.CorruptMessage))
	if m := got["tx/0"].msg; m == nil || *m != "Invalid magic found in record: 3" {
		t.Errorf("error message %v, want Kafka's reason", m)
	}

	for p := range int32(2) {
		if o := endOffset(t, b, "tx", p); o != 0 {
			t.Fatalf("tx/%d: log end offset %d, want 0: a refused request appended", p, o)
		}
	}
}

// malformed returns batches that Kafka refuses in
// ProduceRequest.validateRecords, before the ReplicaManager, and one it
// refuses only in LogValidator, after it.
func malformed(t *testing.T) (magic1, twoBatches, zstd, badCRC []byte) {
	t.Helper()
	magic1 = goodBatch(t, 1)
	magic1[16] = 1
	twoBatches = append(goodBatch(t, 1), goodBatch(t, 1)...)
	bb := batch.NewBuilder(batch.CodecZstd)
	bb.Add(batch.Record{Value: []byte("z"), Timestamp: time.Now().UnixMilli()})
	zstd, err := bb.Build()
	if err != nil {
		t.Fatal(err)
	}
	badCRC = goodBatch(t, 1)
	badCRC[len(badCRC)-1] ^= 1
	return magic1, twoBatches, zstd, badCRC
}

// TestProduceInvalidAcksAfterPartitionErrors: Kafka answers invalid acks
// in ReplicaManager.appendRecords, which sees only the partitions
// KafkaApis.handleProduceRequest let through: unknown topics and
// partitions keep UNKNOWN_TOPIC_OR_PARTITION, batches that fail
// ProduceRequest.validateRecords (magic, batch count, zstd before v7)
// keep their error, and only the rest, internal topics and batches that
// LogValidator would refuse included, are INVALID_REQUIRED_ACKS.
func TestProduceInvalidAcksAfterPartitionErrors(t *testing.T) {
	b := ktest.NewBroker(t)
	b.CreateTopic("acks", 5, nil)
	// The group coordinator creates __consumer_offsets.
	if err := b.Admin().FindGroupCoordinators(ctxT(t, 10*time.Second), "g").Error(); err != nil {
		t.Fatal(err)
	}
	magic1, twoBatches, zstd, badCRC := malformed(t)
	c := dialRaw(t, b.Addr)
	got := producePartsRaw(t, c, 6, 2, nil, []producePart{
		{"acks", 0, goodBatch(t, 1)},
		{"acks", 1, magic1},
		{"acks", 2, twoBatches},
		{"acks", 3, zstd},
		{"acks", 4, badCRC},
		{"acks", 9, goodBatch(t, 1)},
		{"nope", 0, goodBatch(t, 1)},
		{"__consumer_offsets", 0, goodBatch(t, 1)},
	}, 1)
	expectProduce(t, "acks=2", got, map[string]*kerr.Error{
		"acks/0":               kerr.InvalidRequiredAcks,
		"acks/1":               kerr.InvalidRecord,
		"acks/2":               kerr.InvalidRecord,
		"acks/3":               kerr.UnsupportedCompressionType,
		"acks/4":               kerr.InvalidRequiredAcks,
		"acks/9":               kerr.UnknownTopicOrPartition,
		"nope/0":               kerr.UnknownTopicOrPartition,
		"__consumer_offsets/0": kerr.InvalidRequiredAcks,
	})
	for p := range int32(5) {
		if o := endOffset(t, b, "acks", p); o != 0 {
			t.Fatalf("acks/%d: log end offset %d, want 0", p, o)
		}
	}
}

// TestProduceNotEnoughReplicasAfterRecordChecks: Kafka refuses acks=all
// under min.insync.replicas in Partition.appendRecordsToLeader, after
// KafkaApis.handleProduceRequest checked the batches' shape
// (ProduceRequest.validateRecords: magic, batch count, zstd before v7)
// and before LogValidator (CRC and the rest): a malformed batch keeps
// its own error, a damaged one is NOT_ENOUGH_REPLICAS.
func TestProduceNotEnoughReplicasAfterRecordChecks(t *testing.T) {
	b := ktest.NewBroker(t)
	b.CreateTopic("strict", 5, map[string]*string{"min.insync.replicas": kmsg.StringPtr("2")})
	magic1, twoBatches, zstd, badCRC := malformed(t)
	c := dialRaw(t, b.Addr)
	got := producePartsRaw(t, c, 6, -1, nil, []producePart{
		{"strict", 0, goodBatch(t, 1)},
		{"strict", 1, magic1},
		{"strict", 2, twoBatches},
		{"strict", 3, zstd},
		{"strict", 4, badCRC},
	}, 1)
	expectProduce(t, "acks=all, min.insync.replicas 2", got, map[string]*kerr.Error{
		"strict/0": kerr.NotEnoughReplicas,
		"strict/1": kerr.InvalidRecord,
		"strict/2": kerr.InvalidRecord,
		"strict/3": kerr.UnsupportedCompressionType,
		"strict/4": kerr.NotEnoughReplicas,
	})
}
