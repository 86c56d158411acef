package broker_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/broker"
	"github.com/gregor-streaming/gregor/internal/ktest"
)

// listAt is one partition of a ListOffsets request and its timestamp.
type listAt struct {
	partition int32
	timestamp int64
}

// listOffsetsReq is a ListOffsets v9 request for partitions of topic, in
// the order given.
func listOffsetsReq(topic string, isolation int8, at ...listAt) *kmsg.ListOffsetsRequest {
	req := kmsg.NewPtrListOffsetsRequest()
	req.Version = 9
	req.ReplicaID = -1
	req.IsolationLevel = isolation
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	for _, a := range at {
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition, rp.Timestamp, rp.CurrentLeaderEpoch = a.partition, a.timestamp, -1
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	return req
}

// TestListOffsetsReadCommittedStopsAtLSO: with read_committed, lookups by
// timestamp and MAX_TIMESTAMP find only offsets below the last stable
// offset (Kafka's Partition.fetchOffsetForTimestamp filters them by the
// last fetchable offset: the LSO for read_committed, the high watermark
// for read_uncommitted). A record of an open transaction is found by
// read_uncommitted only.
func TestListOffsetsReadCommittedStopsAtLSO(t *testing.T) {
	b := txnBroker(t)
	b.CreateTopic("lso", 1, nil)
	p := txnProducer(t, b, "lso-1")
	ts := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	if err := p.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := p.ProduceSync(ctxT(t, 10*time.Second), &kgo.Record{Topic: "lso", Value: []byte("open"), Timestamp: ts}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		isolation int8
		timestamp int64
		want      int64
	}{
		{0, ts.UnixMilli(), 0},
		{0, -3, 0},
		{1, ts.UnixMilli(), -1},
		{1, -3, -1},
		{1, -1, 0}, // latest: the LSO
	} {
		resp := send[*kmsg.ListOffsetsResponse](t, b, listOffsetsReq("lso", tc.isolation, listAt{0, tc.timestamp}))
		sp := resp.Topics[0].Partitions[0]
		errCode(t, "list offsets", sp.ErrorCode, nil)
		if sp.Offset != tc.want {
			t.Errorf("isolation %d, timestamp %d: offset %d, want %d", tc.isolation, tc.timestamp, sp.Offset, tc.want)
		}
	}
	if err := p.EndTransaction(ctxT(t, 10*time.Second), kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	resp := send[*kmsg.ListOffsetsResponse](t, b, listOffsetsReq("lso", 1, listAt{0, ts.UnixMilli()}))
	if sp := resp.Topics[0].Partitions[0]; sp.Offset != 0 || sp.Timestamp != ts.UnixMilli() {
		t.Errorf("after commit: offset %d timestamp %d, want 0 %d", sp.Offset, sp.Timestamp, ts.UnixMilli())
	}
}

// TestListOffsetsDuplicatePartitions: a partition named twice in one
// ListOffsets request is INVALID_REQUEST in every row, with offset and
// timestamp -1 (Kafka's ListOffsetsRequest.duplicatePartitions); the
// other partitions are answered.
func TestListOffsetsDuplicatePartitions(t *testing.T) {
	b := ktest.NewBroker(t)
	b.CreateTopic("dup", 2, nil)
	req := listOffsetsReq("dup", 0, listAt{0, -1}, listAt{1, -1}, listAt{0, -2})
	// The same partition under a second entry of the topic counts too.
	req.Topics = append(req.Topics, req.Topics[0])
	req.Topics[1].Partitions = req.Topics[1].Partitions[2:]
	resp := send[*kmsg.ListOffsetsResponse](t, b, req)
	var rows int
	for _, rt := range resp.Topics {
		for _, sp := range rt.Partitions {
			rows++
			want := kerr.InvalidRequest
			if sp.Partition == 1 {
				want = nil
			}
			errCode(t, "partition "+itoa(sp.Partition), sp.ErrorCode, want)
			if want != nil && (sp.Offset != -1 || sp.Timestamp != -1) {
				t.Errorf("duplicate row: offset %d timestamp %d", sp.Offset, sp.Timestamp)
			}
		}
	}
	if rows != 4 {
		t.Fatalf("%d rows answered, want 4", rows)
	}
}

// TestListOffsetsLeaderEpoch: the leader epoch ListOffsets returns is
// the epoch of the offset it finds, as Kafka's: the current one for
// latest, the first epoch of the history for earliest (and earliest
// local, without tiered storage), the epoch of the record's batch for a
// lookup by timestamp or MAX_TIMESTAMP, and -1 with no offset
// (UnifiedLog.fetchOffsetByTimestamp, Partition.fetchOffsetForTimestamp,
// ReplicaManager.fetchOffset). A single node never elects a leader, so
// the test moves the partition's epoch itself.
func TestListOffsetsLeaderEpoch(t *testing.T) {
	b := ktest.NewBroker(t)
	b.CreateTopic("le", 1, nil)
	cl := b.Client(kgo.DefaultProduceTopic("le"))
	ctx := ctxT(t, 30*time.Second)
	now := time.Now().Truncate(time.Millisecond)
	t1, t2 := now.Add(-2*time.Minute), now.Add(-time.Minute)
	produce := func(ts time.Time, n int) {
		t.Helper()
		for range n {
			if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("v"), Timestamp: ts}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	produce(t1, 3) // epoch 0: offsets 0-2
	if !broker.SetLeaderEpoch(b.B, "le", 0, 2) {
		t.Fatal("no partition le/0")
	}
	produce(t2, 2) // epoch 2: offsets 3-4
	broker.SetLeaderEpoch(b.B, "le", 0, 5)

	type want struct {
		offset, timestamp int64
		epoch             int32
	}
	check := func(what string, ts int64, w want) {
		t.Helper()
		resp := send[*kmsg.ListOffsetsResponse](t, b, listOffsetsReq("le", 0, listAt{0, ts}))
		sp := resp.Topics[0].Partitions[0]
		errCode(t, what, sp.ErrorCode, nil)
		if got := (want{sp.Offset, sp.Timestamp, sp.LeaderEpoch}); got != w {
			t.Errorf("%s (timestamp %d): offset, timestamp, epoch %v, want %v", what, ts, got, w)
		}
	}
	check("latest", -1, want{5, -1, 5})
	check("earliest", -2, want{0, -1, 0})
	check("earliest local", -4, want{0, -1, 0})
	check("latest tiered", -5, want{-1, -1, -1})
	check("max timestamp", -3, want{3, t2.UnixMilli(), 2})
	check("by timestamp, epoch 2", t2.UnixMilli(), want{3, t2.UnixMilli(), 2})
	check("by timestamp, epoch 0", t1.UnixMilli(), want{0, t1.UnixMilli(), 0})
	check("by timestamp, none", now.Add(time.Hour).UnixMilli(), want{-1, -1, -1})

	// DeleteRecords moves the log start into epoch 2.
	if _, err := b.Admin().DeleteRecords(ctx, kadm.Offsets{"le": {0: {Topic: "le", Partition: 0, At: 4}}}); err != nil {
		t.Fatal(err)
	}
	check("earliest after DeleteRecords", -2, want{4, -1, 2})
	check("by timestamp after DeleteRecords", t1.UnixMilli(), want{4, t2.UnixMilli(), 2})
}

// TestListOffsetsUnsupportedTimestamp: a special timestamp the request's
// version does not know, or one Kafka does not define, is
// UNSUPPORTED_VERSION for that partition, checked after duplicates and
// before the topic (ReplicaManager.fetchOffset,
// isListOffsetsTimestampUnsupported).
func TestListOffsetsUnsupportedTimestamp(t *testing.T) {
	b := ktest.NewBroker(t)
	b.CreateTopic("ts", 1, nil)
	for _, tc := range []struct {
		version   int16
		topic     string
		timestamp int64
		want      *kerr.Error
	}{
		{9, "ts", -7, kerr.UnsupportedVersion},
		{9, "ts", -100, kerr.UnsupportedVersion},
		{9, "nope", -7, kerr.UnsupportedVersion},
		{9, "nope", -1, kerr.UnknownTopicOrPartition},
		{6, "ts", -3, kerr.UnsupportedVersion},
		{7, "ts", -3, nil},
		{7, "ts", -4, kerr.UnsupportedVersion},
		{8, "ts", -4, nil},
		{8, "ts", -5, kerr.UnsupportedVersion},
		{9, "ts", -5, nil},
		{10, "ts", -6, kerr.UnsupportedVersion},
		{11, "ts", -6, nil},
		{1, "ts", -2, nil},
		{1, "ts", 0, nil},
	} {
		req := listOffsetsReq(tc.topic, 0, listAt{0, tc.timestamp})
		req.Version = tc.version
		resp := send[*kmsg.ListOffsetsResponse](t, b, req)
		sp := resp.Topics[0].Partitions[0]
		errCode(t, fmt.Sprintf("v%d %s timestamp %d", tc.version, tc.topic, tc.timestamp), sp.ErrorCode, tc.want)
		if tc.want != nil && (sp.Offset != -1 || sp.Timestamp != -1) {
			t.Errorf("v%d timestamp %d: offset %d timestamp %d with an error", tc.version, tc.timestamp, sp.Offset, sp.Timestamp)
		}
	}
}
