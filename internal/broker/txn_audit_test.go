package broker_test

import (
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/gregor-streaming/gregor/internal/broker"
	"github.com/gregor-streaming/gregor/internal/ktest"
)

// Request-level checks of the transaction APIs against what Apache
// Kafka answers (KafkaApis and TransactionCoordinator).

// pinnedClient returns a client that sends the given API keys at most at
// the given versions (franz-go otherwise sends the highest both sides
// support, whatever the request's Version field says).
func pinnedClient(b *ktest.Broker, maxes map[int16]int16) *kgo.Client {
	v := kversion.Stable()
	for key, max := range maxes {
		v.SetMaxKeyVersion(key, max)
	}
	return b.Client(kgo.MaxVersions(v))
}

// TestInitProducerIDHalfPair: InitProducerID v3+ with a producer ID but
// no epoch, or an epoch but no producer ID, is INVALID_REQUEST in Kafka
// (KafkaApis.handleInitProducerIdRequest), for idempotent and
// transactional producers alike; Gregor handed out a producer ID.
func TestInitProducerIDHalfPair(t *testing.T) {
	b := txnBroker(t)
	cl := pinnedClient(b, map[int16]int16{22: 4})
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
	cl := pinnedClient(b, map[int16]int16{24: 3})
	ir := initTxn(t, cl, "internal-add")
	req := kmsg.NewPtrAddPartitionsToTxnRequest()
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

// TestTxnOffsetCommitV1NoLoadInProgress: Kafka's
// handleTxnOffsetCommitRequest answers TxnOffsetCommit v0/v1 with
// COORDINATOR_NOT_AVAILABLE where it would say
// COORDINATOR_LOAD_IN_PROGRESS, which producers from 0.11 to 2.0 could
// not handle (KAFKA-7296). Here the previous transaction's markers keep
// failing, which Gregor reports to TxnOffsetCommit as
// COORDINATOR_LOAD_IN_PROGRESS (retriable); v1 must see
// COORDINATOR_NOT_AVAILABLE, v3 still the former.
func TestTxnOffsetCommitV1NoLoadInProgress(t *testing.T) {
	b := txnBroker(t)
	b.CreateTopic("tocv1", 1, nil)
	// Transactions v1 throughout: EndTxn v3 keeps the epoch.
	tv1 := map[int16]int16{24: 3, 25: 3, 26: 3, 28: 3}
	cl := pinnedClient(b, tv1)
	ctx := ctxT(t, 20*time.Second)
	const id, group = "toc-v1", "toc-v1-group"
	ir := initTxn(t, cl, id)
	pid, epoch := ir.ProducerID, ir.ProducerEpoch

	add := kmsg.NewPtrAddPartitionsToTxnRequest()
	add.TransactionalID, add.ProducerID, add.ProducerEpoch = id, pid, epoch
	add.Topics = []kmsg.AddPartitionsToTxnRequestTopic{{Topic: "tocv1", Partitions: []int32{0}}}
	if resp, err := add.RequestWith(ctx, cl); err != nil || resp.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("AddPartitionsToTxn: %v %+v", err, resp)
	}
	offs := kmsg.NewPtrAddOffsetsToTxnRequest()
	offs.TransactionalID, offs.ProducerID, offs.ProducerEpoch, offs.Group = id, pid, epoch, group
	if resp, err := offs.RequestWith(ctx, cl); err != nil || resp.ErrorCode != 0 {
		t.Fatalf("AddOffsetsToTxn: %v %+v", err, resp)
	}

	broker.SetMarkerFault(b.B, func(string, int32) error { return kerr.KafkaStorageError })
	end := kmsg.NewPtrEndTxnRequest()
	end.TransactionalID, end.ProducerID, end.ProducerEpoch, end.Commit = id, pid, epoch, true
	if resp, err := end.RequestWith(ctx, cl); err != nil || resp.ErrorCode != 0 {
		t.Fatalf("EndTxn: %v %+v", err, resp)
	}

	commit := func(version int16) int16 {
		tv1[28] = version
		cl := pinnedClient(b, tv1)
		req := kmsg.NewPtrTxnOffsetCommitRequest()
		req.TransactionalID, req.Group, req.ProducerID, req.ProducerEpoch = id, group, pid, epoch
		req.Generation = -1
		req.Topics = []kmsg.TxnOffsetCommitRequestTopic{{Topic: "tocv1", Partitions: []kmsg.TxnOffsetCommitRequestTopicPartition{{Partition: 0, Offset: 1, LeaderEpoch: -1}}}}
		kr, err := cl.SeedBrokers()[0].Request(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		return kr.(*kmsg.TxnOffsetCommitResponse).Topics[0].Partitions[0].ErrorCode
	}
	if code := commit(3); code != kerr.CoordinatorLoadInProgress.Code {
		t.Fatalf("TxnOffsetCommit v3 while markers fail: %v, want COORDINATOR_LOAD_IN_PROGRESS", kerr.ErrorForCode(code))
	}
	if code := commit(1); code != kerr.CoordinatorNotAvailable.Code {
		t.Fatalf("TxnOffsetCommit v1 while markers fail: %v, want COORDINATOR_NOT_AVAILABLE", kerr.ErrorForCode(code))
	}

	// The markers go through once the fault clears.
	broker.SetMarkerFault(b.B, nil)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		ds, err := b.Admin().DescribeTransactions(ctx, id)
		if err == nil && ds[id].State == "CompleteCommit" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("transaction not completed: %+v %v", ds, err)
		}
	}
}

// TestTxnOffsetCommitV5EmptyGroup: Kafka answers TxnOffsetCommit's
// unknown topics and partitions first (KafkaApis), and only then, in
// the group coordinator and before the transaction is verified or, from
// v5, extended (GroupCoordinatorService.commitTransactionalOffsets),
// INVALID_GROUP_ID for an empty group ID on the rest; the transaction
// does not gain a __consumer_offsets partition.
func TestTxnOffsetCommitV5EmptyGroup(t *testing.T) {
	b := txnBroker(t)
	b.CreateTopic("toc-empty", 1, nil)
	cl := pinnedClient(b, map[int16]int16{28: 5})
	ctx := ctxT(t, 20*time.Second)
	const id = "toc-empty-group"
	ir := initTxn(t, cl, id)

	for _, tc := range []struct {
		name   string
		topics []kmsg.TxnOffsetCommitRequestTopic
		want   []*kerr.Error
	}{
		{"known and unknown topics", []kmsg.TxnOffsetCommitRequestTopic{
			{Topic: "toc-empty", Partitions: []kmsg.TxnOffsetCommitRequestTopicPartition{{Partition: 0, Offset: 1, LeaderEpoch: -1}, {Partition: 7, Offset: 1, LeaderEpoch: -1}}},
			{Topic: "nope", Partitions: []kmsg.TxnOffsetCommitRequestTopicPartition{{Partition: 0, Offset: 1, LeaderEpoch: -1}}},
		}, []*kerr.Error{kerr.InvalidGroupID, kerr.UnknownTopicOrPartition, kerr.UnknownTopicOrPartition}},
		{"unknown topics only", []kmsg.TxnOffsetCommitRequestTopic{
			{Topic: "nope", Partitions: []kmsg.TxnOffsetCommitRequestTopicPartition{{Partition: 0, Offset: 1, LeaderEpoch: -1}}},
		}, []*kerr.Error{kerr.UnknownTopicOrPartition}},
	} {
		req := kmsg.NewPtrTxnOffsetCommitRequest()
		req.TransactionalID, req.Group, req.ProducerID, req.ProducerEpoch = id, "", ir.ProducerID, ir.ProducerEpoch
		req.Generation, req.Topics = -1, tc.topics
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		var got []*kerr.Error
		for _, st := range resp.Topics {
			for _, sp := range st.Partitions {
				e, _ := kerr.ErrorForCode(sp.ErrorCode).(*kerr.Error)
				got = append(got, e)
			}
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	ds, err := b.Admin().DescribeTransactions(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if d := ds[id]; d.State != "Empty" || len(d.Topics) != 0 {
		t.Fatalf("transaction %s with %v, want Empty with no partitions", d.State, d.Topics)
	}
}
