package broker_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/ktest"
)

func TestCreatePartitions(t *testing.T) {
	b := ktest.NewBroker(t)
	b.CreateTopic("grow", 2, nil)
	adm := b.Admin()
	ctx := ctxT(t, 30*time.Second)

	rs, err := adm.CreatePartitions(ctx, 2, "grow")
	if err != nil || rs["grow"].Err != nil {
		t.Fatalf("create partitions: %v %+v", err, rs)
	}
	td, err := adm.ListTopics(ctx, "grow")
	if err != nil || len(td["grow"].Partitions) != 4 {
		t.Fatalf("metadata after growing: %v %+v", err, td["grow"])
	}
	// Clients see the new partitions: produce to and consume from #3.
	cl := b.Client(kgo.DefaultProduceTopic("grow"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err := cl.ProduceSync(ctx, &kgo.Record{Partition: 3, Value: []byte("in the new partition")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	got := consumeN(t, b, "grow", 1)
	if got[0].Partition != 3 || string(got[0].Value) != "in the new partition" {
		t.Fatalf("consumed %d %q", got[0].Partition, got[0].Value)
	}

	for _, tc := range []struct {
		count int
		want  *kerr.Error
	}{{4, kerr.InvalidPartitions}, {3, kerr.InvalidPartitions}, {0, kerr.InvalidPartitions}} {
		rs, err := adm.UpdatePartitions(ctx, tc.count, "grow")
		if err != nil || !errors.Is(rs["grow"].Err, tc.want) {
			t.Errorf("set %d partitions: %v %v, want %v", tc.count, err, rs["grow"].Err, tc.want)
		}
	}
	rs, err = adm.CreatePartitions(ctx, 1, "nope")
	if err != nil || !errors.Is(rs["nope"].Err, kerr.UnknownTopicOrPartition) {
		t.Errorf("unknown topic: %v %+v", err, rs)
	}
	rs, err = adm.ValidateCreatePartitions(ctx, 5, "grow")
	if err != nil || rs["grow"].Err != nil {
		t.Fatalf("validate: %v %+v", err, rs)
	}
	// A bad assignment; duplicates in one request.
	req := kmsg.NewPtrCreatePartitionsRequest()
	req.Version = 3
	rt := kmsg.NewCreatePartitionsRequestTopic()
	rt.Topic, rt.Count = "grow", 5
	rt.Assignment = []kmsg.CreatePartitionsRequestTopicAssignment{{Replicas: []int32{9}}}
	req.Topics = append(req.Topics, rt)
	resp := send[*kmsg.CreatePartitionsResponse](t, b, req)
	errCode(t, "unknown broker in assignment", resp.Topics[0].ErrorCode, kerr.InvalidReplicaAssignment)
	rt.Assignment = nil
	req.Topics = []kmsg.CreatePartitionsRequestTopic{rt, rt}
	resp = send[*kmsg.CreatePartitionsResponse](t, b, req)
	errCode(t, "duplicate topic", resp.Topics[0].ErrorCode, kerr.InvalidRequest)

	b.Restart()
	td, err = b.Admin().ListTopics(ctxT(t, 10*time.Second), "grow")
	if err != nil || len(td["grow"].Partitions) != 4 {
		t.Fatalf("after restart: %v %+v", err, td["grow"])
	}
}

func TestDeleteRecords(t *testing.T) {
	b := ktest.NewBroker(t)
	b.CreateTopic("trim", 1, map[string]*string{"segment.bytes": kmsg.StringPtr("1048576")})
	b.CreateTopic("keyed", 1, map[string]*string{"cleanup.policy": kmsg.StringPtr("compact")})
	cl := b.Client(kgo.DefaultProduceTopic("trim"))
	ctx := ctxT(t, 30*time.Second)
	var recs []*kgo.Record
	for i := range 3000 {
		v := make([]byte, 1000)
		rand.Read(v) // incompressible: the log spans several segments
		recs = append(recs, &kgo.Record{Value: v, Key: []byte(strconv.Itoa(i))})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	adm := b.Admin()
	del := func(topic string, off int64) kadm.DeleteRecordsResponse {
		t.Helper()
		os := kadm.Offsets{}
		os.Add(kadm.Offset{Topic: topic, Partition: 0, At: off})
		rs, err := adm.DeleteRecords(ctx, os)
		if err != nil {
			t.Fatal(err)
		}
		r, ok := rs.Lookup(topic, 0)
		if !ok {
			t.Fatalf("no response for %s", topic)
		}
		return r
	}
	sizeBefore := logDirSize(t, adm, "trim")
	if r := del("trim", 2500); r.Err != nil || r.LowWatermark != 2500 {
		t.Fatalf("delete to 2500: %+v", r)
	}
	if s := logDirSize(t, adm, "trim"); s >= sizeBefore/2 {
		t.Fatalf("log size %d → %d: segments below the new start not deleted", sizeBefore, s)
	}
	starts, err := adm.ListStartOffsets(ctx, "trim")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := starts.Lookup("trim", 0); o.Offset != 2500 {
		t.Fatalf("start offset %d", o.Offset)
	}
	// A fetch below the log start offset: OFFSET_OUT_OF_RANGE.
	fr := kmsg.NewPtrFetchRequest()
	fr.Version = 11
	fr.MaxBytes = 1 << 20
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = "trim"
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.FetchOffset, fp.PartitionMaxBytes, fp.CurrentLeaderEpoch = 10, 1<<20, -1
	ft.Partitions = append(ft.Partitions, fp)
	fr.Topics = append(fr.Topics, ft)
	fresp := send[*kmsg.FetchResponse](t, b, fr)
	errCode(t, "fetch below the log start offset", fresp.Topics[0].Partitions[0].ErrorCode, kerr.OffsetOutOfRange)
	if lso := fresp.Topics[0].Partitions[0].LogStartOffset; lso != 2500 {
		t.Fatalf("fetch log start offset %d", lso)
	}
	// Consumers from the earliest offset start at the new log start
	// offset; a consumer whose committed position fell below it resets.
	got := consumeN(t, b, "trim", 500)
	if got[0].Offset != 2500 || string(got[0].Key) != "2500" {
		t.Fatalf("first record %d %q", got[0].Offset, got[0].Key)
	}
	reset := b.Client(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"trim": {0: kgo.NewOffset().At(5)}}),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	fs := reset.PollFetches(ctx)
	if fs.Err() != nil || len(fs.Records()) == 0 || fs.Records()[0].Offset != 2500 {
		t.Fatalf("reset consumer: %v, %d records", fs.Err(), len(fs.Records()))
	}

	if r := del("trim", 100); r.Err != nil || r.LowWatermark != 2500 {
		t.Fatalf("delete below the start: %+v", r)
	}
	if r := del("trim", 3001); !errors.Is(r.Err, kerr.OffsetOutOfRange) {
		t.Fatalf("delete above the high watermark: %+v", r)
	}
	if r := del("trim", -1); r.Err != nil || r.LowWatermark != 3000 {
		t.Fatalf("delete to the high watermark: %+v", r)
	}
	if r := del("keyed", -1); !errors.Is(r.Err, kerr.PolicyViolation) {
		t.Fatalf("delete on a compacted topic: %+v", r)
	}
	dr := kmsg.NewPtrDeleteRecordsRequest()
	dt := kmsg.NewDeleteRecordsRequestTopic()
	dt.Topic = "nope"
	dt.Partitions = []kmsg.DeleteRecordsRequestTopicPartition{{Partition: 0, Offset: 1}}
	dr.Topics = append(dr.Topics, dt)
	dresp := send[*kmsg.DeleteRecordsResponse](t, b, dr)
	errCode(t, "delete records of an unknown topic", dresp.Topics[0].Partitions[0].ErrorCode, kerr.UnknownTopicOrPartition)
	b.Restart()
	starts, err = b.Admin().ListStartOffsets(ctxT(t, 10*time.Second), "trim")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := starts.Lookup("trim", 0); o.Offset != 3000 {
		t.Fatalf("start offset %d after restart", o.Offset)
	}
}

// logDirSize is the partition's size as DescribeLogDirs reports it.
func logDirSize(t *testing.T, adm *kadm.Client, topic string) int64 {
	t.Helper()
	ds, err := adm.DescribeAllLogDirs(ctxT(t, 10*time.Second), kadm.TopicsSet{topic: {0: {}}})
	if err != nil {
		t.Fatal(err)
	}
	var size int64 = -1
	ds.Each(func(d kadm.DescribedLogDir) {
		if p, ok := d.Topics.Lookup(topic, 0); ok {
			size = p.Size
		}
	})
	if size < 0 {
		t.Fatalf("%s-0 not described", topic)
	}
	return size
}

func TestDescribeLogDirs(t *testing.T) {
	b := ktest.NewBroker(t)
	b.CreateTopic("sized", 3, nil)
	cl := b.Client(kgo.DefaultProduceTopic("sized"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	ctx := ctxT(t, 30*time.Second)
	for p := range int32(3) {
		var recs []*kgo.Record
		for range 100 * (p + 1) {
			recs = append(recs, &kgo.Record{Partition: p, Value: make([]byte, 500)})
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	ds, err := b.Admin().DescribeAllLogDirs(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	ds.Each(func(d kadm.DescribedLogDir) {
		n++
		if d.Err != nil || d.TotalBytes <= 0 || d.UsableBytes <= 0 || d.UsableBytes > d.TotalBytes {
			t.Errorf("dir %+v", d)
		}
		var prev int64
		for p := range int32(3) {
			dp, ok := d.Topics.Lookup("sized", p)
			if !ok || dp.Size <= prev || dp.OffsetLag != 0 || dp.IsFuture {
				t.Errorf("partition %d: %+v (previous size %d)", p, dp, prev)
			}
			prev = dp.Size
		}
	})
	if n != 1 {
		t.Fatalf("%d dirs", n)
	}
	// Old clients: v1.
	req := kmsg.NewPtrDescribeLogDirsRequest()
	req.Version = 1
	rt := kmsg.NewDescribeLogDirsRequestTopic()
	rt.Topic, rt.Partitions = "sized", []int32{1}
	req.Topics = append(req.Topics, rt)
	resp := send[*kmsg.DescribeLogDirsResponse](t, b, req)
	if len(resp.Dirs) != 1 || len(resp.Dirs[0].Topics) != 1 || len(resp.Dirs[0].Topics[0].Partitions) != 1 || resp.Dirs[0].Topics[0].Partitions[0].Size <= 0 {
		t.Fatalf("v1 response %+v", resp.Dirs)
	}
}

// TestTopicCompressionType checks compression.type: a topic codec other
// than producer re-encodes batches on produce, as Kafka does.
func TestTopicCompressionType(t *testing.T) {
	b := ktest.NewBroker(t)
	for _, tc := range []struct {
		topicCodec string
		producer   kgo.CompressionCodec
		wantCodec  int8
	}{
		{"gzip", kgo.NoCompression(), 1},
		{"zstd", kgo.SnappyCompression(), 4},
		{"uncompressed", kgo.Lz4Compression(), 0},
		{"producer", kgo.SnappyCompression(), 2},
		{"lz4", kgo.Lz4Compression(), 3},
	} {
		t.Run(tc.topicCodec, func(t *testing.T) {
			topic := "ct-" + tc.topicCodec
			b.CreateTopic(topic, 1, map[string]*string{"compression.type": kmsg.StringPtr(tc.topicCodec)})
			cl := b.Client(kgo.DefaultProduceTopic(topic), kgo.ProducerBatchCompression(tc.producer))
			ctx := ctxT(t, 30*time.Second)
			var recs []*kgo.Record
			for i := range 200 {
				recs = append(recs, &kgo.Record{Key: []byte(strconv.Itoa(i)), Value: bytes.Repeat([]byte{'a' + byte(i%26)}, 200),
					Headers: []kgo.RecordHeader{{Key: "h", Value: []byte(strconv.Itoa(i))}}})
			}
			if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
				t.Fatal(err)
			}
			// The stored batches carry the topic's codec.
			fr := kmsg.NewPtrFetchRequest()
			fr.Version = 11
			fr.MaxBytes = 1 << 20
			ft := kmsg.NewFetchRequestTopic()
			ft.Topic = topic
			fp := kmsg.NewFetchRequestTopicPartition()
			fp.PartitionMaxBytes, fp.CurrentLeaderEpoch = 1<<20, -1
			ft.Partitions = append(ft.Partitions, fp)
			fr.Topics = append(fr.Topics, ft)
			raw := send[*kmsg.FetchResponse](t, b, fr).Topics[0].Partitions[0].RecordBatches
			if len(raw) < 61 {
				t.Fatalf("fetched %d bytes", len(raw))
			}
			var rb kmsg.RecordBatch
			if err := rb.ReadFrom(raw); err != nil {
				t.Fatal(err)
			}
			if codec := int8(rb.Attributes & 7); codec != tc.wantCodec {
				t.Fatalf("stored codec %d, want %d", codec, tc.wantCodec)
			}
			got := consumeN(t, b, topic, len(recs))
			for i, r := range got {
				if r.Offset != int64(i) || !bytes.Equal(r.Value, recs[i].Value) || string(r.Key) != strconv.Itoa(i) ||
					len(r.Headers) != 1 || string(r.Headers[0].Value) != strconv.Itoa(i) {
					t.Fatalf("record %d: %d %q %q %v", i, r.Offset, r.Key, r.Value, r.Headers)
				}
			}
		})
	}
}

func TestCompactedTopicRefusesKeylessRecords(t *testing.T) {
	b := ktest.NewBroker(t)
	b.CreateTopic("keys", 1, map[string]*string{"cleanup.policy": kmsg.StringPtr("compact")})
	cl := b.Client(kgo.DefaultProduceTopic("keys"), kgo.RecordRetries(1))
	ctx := ctxT(t, 30*time.Second)
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("no key")}).FirstErr(); !errors.Is(err, kerr.InvalidRecord) {
		t.Fatalf("keyless record on a compacted topic: %v", err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte("k"), Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

var _ = context.Background

// TestPartitionsBoundedByOpenFileLimit: topic creation refuses partitions
// the open-file limit has no room for (each keeps a file open), counting
// the partitions earlier in the same request, in validate-only requests
// too; the broker keeps what it accepted and restarts with it.
func TestPartitionsBoundedByOpenFileLimit(t *testing.T) {
	const capacity = 100
	// A small limit keeps half for the rest.
	b := ktest.NewBroker(t, ktest.WithOpenFileLimit(2*capacity))
	adm := b.Admin()
	ctx := ctxT(t, 30*time.Second)
	created := func(what string, rs kadm.CreateTopicResponses, err error, topic string, want *kerr.Error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		r, ok := rs[topic]
		if !ok || !errors.Is(r.Err, want) && !(want == nil && r.Err == nil) {
			t.Fatalf("%s: %s: %v (%s), want %v", what, topic, r.Err, r.ErrMessage, want)
		}
		if want != nil && !strings.Contains(r.ErrMessage, "ulimit -n") {
			t.Errorf("%s: message %q does not say which limit", what, r.ErrMessage)
		}
	}
	rs, err := adm.CreateTopics(ctx, 60, 1, nil, "a")
	created("60 of 100", rs, err, "a", nil)
	rs, err = adm.ValidateCreateTopics(ctx, 50, 1, nil, "b")
	created("validate 50 more", rs, err, "b", kerr.InvalidPartitions)
	rs, err = adm.CreateTopics(ctx, 50, 1, nil, "b")
	created("50 more", rs, err, "b", kerr.InvalidPartitions)
	// One request: the first fits, the second not beside it.
	rs, err = adm.CreateTopics(ctx, 30, 1, nil, "c", "d")
	if err != nil || (rs["c"].Err == nil) == (rs["d"].Err == nil) {
		t.Fatalf("two topics of 30 with room for 40: %v %+v", err, rs)
	}
	// CreatePartitions is bounded too: a has 60, 90 are used.
	up, err := adm.UpdatePartitions(ctx, 80, "a")
	if err != nil || !errors.Is(up["a"].Err, kerr.InvalidPartitions) {
		t.Fatalf("a to 80 partitions with room for 10: %v %+v", err, up)
	}
	up, err = adm.UpdatePartitions(ctx, 70, "a")
	if err != nil || up["a"].Err != nil {
		t.Fatalf("a to 70 partitions with room for 10: %v %+v", err, up)
	}
	b.Restart()
	td, err := b.Admin().ListTopics(ctxT(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, d := range td {
		n += len(d.Partitions)
	}
	if n != capacity {
		t.Fatalf("%d partitions after restart, want %d: %v", n, capacity, td.Names())
	}
}

// TestDeleteTopicDisabled: with delete.topic.enable=false DeleteTopics
// refuses every topic with TOPIC_DELETION_DISABLED (INVALID_REQUEST
// before v3) and the topics and their records stay, as in Kafka.
func TestDeleteTopicDisabled(t *testing.T) {
	b := ktest.NewBroker(t, ktest.Set("delete.topic.enable", "false"))
	b.CreateTopic("kept", 1, nil)
	ctx := ctxT(t, 20*time.Second)
	cl := b.Client(kgo.DefaultProduceTopic("kept"))
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	check := func(v int16, topics []kmsg.DeleteTopicsResponseTopic) {
		t.Helper()
		want := kerr.TopicDeletionDisabled
		if v < 3 {
			want = kerr.InvalidRequest
		}
		if len(topics) != 2 {
			t.Fatalf("v%d: %d topics answered", v, len(topics))
		}
		for _, rt := range topics {
			if err := kerr.ErrorForCode(rt.ErrorCode); !errors.Is(err, want) {
				t.Errorf("v%d: %v, want %v", v, err, want)
			}
		}
	}
	// v1 and v3 by hand (the client would send its newest version).
	c := dialRaw(t, b.Addr)
	for i, v := range []int16{1, 3} {
		req := kmsg.NewPtrDeleteTopicsRequest()
		req.Version = v
		req.TimeoutMillis = 5000
		req.TopicNames = []string{"kept", "absent"}
		corr := int32(i + 1)
		c.write(request(req, corr))
		body, err := c.readFrame(corr)
		if err != nil {
			t.Fatal(err)
		}
		resp := kmsg.NewPtrDeleteTopicsResponse()
		resp.Version = v
		if err := resp.ReadFrom(body); err != nil {
			t.Fatal(err)
		}
		check(v, resp.Topics)
	}
	// The newest version, by name, through a client.
	resp, err := b.Admin().DeleteTopics(ctx, "kept", "absent")
	if err != nil {
		t.Fatal(err)
	}
	var topics []kmsg.DeleteTopicsResponseTopic
	for _, r := range resp.Sorted() {
		rt := kmsg.NewDeleteTopicsResponseTopic()
		var ke *kerr.Error
		if errors.As(r.Err, &ke) {
			rt.ErrorCode = ke.Code
		}
		topics = append(topics, rt)
	}
	check(6, topics)
	b.Restart()
	if recs := consumeN(t, b, "kept", 1); string(recs[0].Value) != "v" {
		t.Fatalf("kept holds %q", recs[0].Value)
	}
}

// createTopicsRaw sends one CreateTopics v7 request with topics.
func createTopicsRaw(t *testing.T, b *ktest.Broker, topics ...kmsg.CreateTopicsRequestTopic) *kmsg.CreateTopicsResponse {
	t.Helper()
	req := kmsg.NewPtrCreateTopicsRequest()
	req.Version = 7
	req.TimeoutMillis = 5000
	req.Topics = topics
	return send[*kmsg.CreateTopicsResponse](t, b, req)
}

// TestCreateTopicsDuplicateNames: a name given twice in one CreateTopics
// is INVALID_REQUEST and creates nothing, as Kafka's controller does (it
// drops every entry of a duplicated name before creating); a name given
// once in the same request is created.
func TestCreateTopicsDuplicateNames(t *testing.T) {
	b := ktest.NewBroker(t)
	topic := func(name string) kmsg.CreateTopicsRequestTopic {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, 1, 1
		return rt
	}
	resp := createTopicsRaw(t, b, topic("twice"), topic("once"), topic("twice"))
	for _, rt := range resp.Topics {
		want := kerr.InvalidRequest
		if rt.Topic == "once" {
			want = nil
		}
		errCode(t, "create "+rt.Topic, rt.ErrorCode, want)
	}
	md, err := b.Admin().Metadata(ctxT(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := md.Topics["twice"]; ok {
		t.Error("a topic named twice in one request was created")
	}
	if _, ok := md.Topics["once"]; !ok {
		t.Error("the topic named once was not created")
	}
}

// TestCreateTopicsReplicaAssignment: manual assignments must name each
// partition 0..n-1 exactly once (Kafka's ReplicationControlManager:
// INVALID_REPLICA_ASSIGNMENT otherwise). A negative or huge partition
// index must be refused, not index or grow a slice.
func TestCreateTopicsReplicaAssignment(t *testing.T) {
	b := ktest.NewBroker(t)
	topic := func(name string, partitions ...int32) kmsg.CreateTopicsRequestTopic {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, -1, -1
		for _, p := range partitions {
			a := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
			a.Partition, a.Replicas = p, []int32{0}
			rt.ReplicaAssignment = append(rt.ReplicaAssignment, a)
		}
		return rt
	}
	for _, tc := range []struct {
		name       string
		partitions []int32
		want       *kerr.Error
	}{
		{"negative", []int32{0, -1}, kerr.InvalidReplicaAssignment},
		{"repeated", []int32{0, 0}, kerr.InvalidReplicaAssignment},
		{"gap", []int32{0, 2}, kerr.InvalidReplicaAssignment},
		{"huge", []int32{1<<31 - 1}, kerr.InvalidReplicaAssignment},
		{"unordered", []int32{1, 0}, nil},
	} {
		resp := createTopicsRaw(t, b, topic(tc.name, tc.partitions...))
		errCode(t, tc.name, resp.Topics[0].ErrorCode, tc.want)
	}
	td, err := b.Admin().ListTopics(ctxT(t, 10*time.Second), "unordered")
	if err != nil || len(td["unordered"].Partitions) != 2 {
		t.Fatalf("unordered: %v %+v", err, td["unordered"])
	}
}

// TestDeleteRecordsInternalTopic: DeleteRecords on an internal topic is
// INVALID_TOPIC_EXCEPTION whatever its cleanup.policy, as Kafka's
// ReplicaManager refuses it ("Cannot delete records of internal
// topic"): trimming __consumer_offsets would lose committed offsets.
func TestDeleteRecordsInternalTopic(t *testing.T) {
	b := ktest.NewBroker(t, ktest.Set("offsets.topic.num.partitions", "1"))
	b.CreateTopic("t", 1, nil)
	adm := b.Admin()
	ctx := ctxT(t, 20*time.Second)
	os := kadm.Offsets{}
	os.Add(kadm.Offset{Topic: "t", Partition: 0, At: 7, LeaderEpoch: -1})
	if err := adm.CommitAllOffsets(ctx, "g", os); err != nil {
		t.Fatal(err)
	}
	for _, policy := range []string{"compact", "compact,delete"} {
		// Altering an internal topic's configs may or may not be
		// allowed; either way its records stay.
		_, _ = adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{set("cleanup.policy", policy)}, "__consumer_offsets")
		dr := kmsg.NewPtrDeleteRecordsRequest()
		dt := kmsg.NewDeleteRecordsRequestTopic()
		dt.Topic = "__consumer_offsets"
		dt.Partitions = []kmsg.DeleteRecordsRequestTopicPartition{{Partition: 0, Offset: -1}}
		dr.Topics = append(dr.Topics, dt)
		resp := send[*kmsg.DeleteRecordsResponse](t, b, dr)
		errCode(t, "delete records of __consumer_offsets ("+policy+")", resp.Topics[0].Partitions[0].ErrorCode, kerr.InvalidTopicException)
	}
	b.Restart()
	fetched, err := b.Admin().FetchOffsets(ctxT(t, 20*time.Second), "g")
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := fetched.Lookup("t", 0); !ok || o.At != 7 {
		t.Fatalf("committed offset after the delete attempts: %+v %v", o, ok)
	}
}
