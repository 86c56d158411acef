package broker_test

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Request-level checks of the transaction APIs against what Apache
// Kafka answers (KafkaApis and TransactionCoordinator).

// TestInitProducerIDHalfPair: InitProducerID v3+ with a producer ID but
// no epoch, or an epoch but no producer ID, is INVALID_REQUEST in Kafka
// (KafkaApis.handleInitProducerIdRequest), for idempotent and
// transactional producers alike; Gregor handed out a producer ID.
func TestInitProducerIDHalfPair(t *testing.T) {
	b := txnBroker(t)
	cl := b.Client()
	for _, tc := range []struct {
		name  string
		txnID *string
		pid   int64
		epoch int16
	}{
		{"idempotent, ID without epoch", nil, 5, -1},
		{"idempotent, epoch without ID", nil, -1, 3},
		{"transactional, ID without epoch", kmsg.StringPtr("half-1"), 5, -1},
		{"transactional, epoch without ID", kmsg.StringPtr("half-2"), -1, 0},
	} {
		req := kmsg.NewPtrInitProducerIDRequest()
		req.Version = 4
		req.TransactionalID, req.TransactionTimeoutMillis = tc.txnID, 60000
		req.ProducerID, req.ProducerEpoch = tc.pid, tc.epoch
		resp, err := req.RequestWith(ctxT(t, 10*time.Second), cl)
		if err != nil {
			t.Fatal(err)
		}
		if resp.ErrorCode != kerr.InvalidRequest.Code || resp.ProducerID != -1 {
			t.Errorf("%s: %v, producer ID %d; want INVALID_REQUEST", tc.name, kerr.ErrorForCode(resp.ErrorCode), resp.ProducerID)
		}
	}
}

// initTxn runs InitProducerID for a transactional ID.
func initTxn(t *testing.T, cl *kgo.Client, id string) *kmsg.InitProducerIDResponse {
	t.Helper()
	req := kmsg.NewPtrInitProducerIDRequest()
	req.TransactionalID, req.TransactionTimeoutMillis = kmsg.StringPtr(id), 60000
	resp, err := req.RequestWith(ctxT(t, 10*time.Second), cl)
	if err != nil || resp.ErrorCode != 0 {
		t.Fatalf("InitProducerID %s: %v %v", id, err, kerr.ErrorForCode(resp.ErrorCode))
	}
	return resp
}

// TestAddPartitionsToTxnInternalTopic: a client's AddPartitionsToTxn
// (v0-3) naming a partition of an internal topic gets
// TOPIC_AUTHORIZATION_FAILED there and OPERATION_NOT_ATTEMPTED for the
// rest, and nothing is added, as Kafka answers (it never authorizes
// internal topics for it). Gregor added __transaction_state-0 to the
// transaction, and would have written a marker into its own state log.
func TestAddPartitionsToTxnInternalTopic(t *testing.T) {
	b := txnBroker(t)
	b.CreateTopic("plain", 1, nil)
	cl := b.Client()
	ir := initTxn(t, cl, "internal-add")
	req := kmsg.NewPtrAddPartitionsToTxnRequest()
	req.Version = 3
	req.TransactionalID, req.ProducerID, req.ProducerEpoch = "internal-add", ir.ProducerID, ir.ProducerEpoch
	req.Topics = []kmsg.AddPartitionsToTxnRequestTopic{
		{Topic: "plain", Partitions: []int32{0}},
		{Topic: "__transaction_state", Partitions: []int32{0}},
	}
	resp, err := req.RequestWith(ctxT(t, 10*time.Second), cl)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int16{}
	for _, rt := range resp.Topics {
		for _, p := range rt.Partitions {
			got[rt.Topic] = p.ErrorCode
		}
	}
	if got["plain"] != kerr.OperationNotAttempted.Code || got["__transaction_state"] != kerr.TopicAuthorizationFailed.Code {
		t.Fatalf("errors %v, want OPERATION_NOT_ATTEMPTED for plain and TOPIC_AUTHORIZATION_FAILED for __transaction_state", got)
	}
	ds, err := b.Admin().DescribeTransactions(ctxT(t, 5*time.Second), "internal-add")
	if err != nil {
		t.Fatal(err)
	}
	if d := ds["internal-add"]; d.State != "Empty" || len(d.Topics) != 0 {
		t.Fatalf("transaction after the refused add: %+v", d)
	}
}

// TestDescribeProducersInvalidTopic: Kafka's handleDescribeProducersRequest
// answers INVALID_TOPIC_EXCEPTION for the partitions of a name no topic
// may have (Topic.validate), UNKNOWN_TOPIC_OR_PARTITION for a valid name
// that does not exist; Gregor answered UNKNOWN_TOPIC_OR_PARTITION for
// both.
func TestDescribeProducersInvalidTopic(t *testing.T) {
	b := txnBroker(t)
	req := kmsg.NewPtrDescribeProducersRequest()
	for _, name := range []string{"", "bad name!", "..", "missing"} {
		req.Topics = append(req.Topics, kmsg.DescribeProducersRequestTopic{Topic: name, Partitions: []int32{0, 1}})
	}
	// Straight to the broker: the client would shard the request by
	// partition leader, answering unknown topics itself.
	kr, err := b.Client().SeedBrokers()[0].Request(ctxT(t, 10*time.Second), req)
	if err != nil {
		t.Fatal(err)
	}
	resp := kr.(*kmsg.DescribeProducersResponse)
	if len(resp.Topics) != 4 {
		t.Fatalf("%d topics answered", len(resp.Topics))
	}
	for _, rt := range resp.Topics {
		want := kerr.InvalidTopicException
		if rt.Topic == "missing" {
			want = kerr.UnknownTopicOrPartition
		}
		if len(rt.Partitions) != 2 {
			t.Fatalf("topic %q: %d partitions answered", rt.Topic, len(rt.Partitions))
		}
		for _, p := range rt.Partitions {
			if p.ErrorCode != want.Code {
				t.Errorf("topic %q partition %d: %v, want %v", rt.Topic, p.Partition, kerr.ErrorForCode(p.ErrorCode), want)
			}
		}
	}
}
