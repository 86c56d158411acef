package broker_test

import (
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/ktest"
)

// TestProduceToInternalTopicRefused: clients cannot append to
// __consumer_offsets or __transaction_state, as in Kafka
// (INVALID_TOPIC_EXCEPTION): their records are the coordinators' state,
// replayed at every start.
func TestProduceToInternalTopicRefused(t *testing.T) {
	b := ktest.NewBroker(t)
	// A group and a transaction make the coordinators create both topics.
	tcl := b.Client(kgo.TransactionalID("tx"), kgo.DefaultProduceTopic("events"), kgo.AllowAutoTopicCreation())
	ctx := ctxT(t, 30*time.Second)
	if err := tcl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := tcl.ProduceSync(ctx, &kgo.Record{Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := tcl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	gcl := b.Client(kgo.ConsumerGroup("g"), kgo.ConsumeTopics("events"))
	gcl.PollFetches(ctx)
	if err := gcl.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatal(err)
	}
	gcl.Close()

	for _, topic := range []string{"__consumer_offsets", "__transaction_state"} {
		cl := b.Client(kgo.DefaultProduceTopic(topic), kgo.RecordRetries(0))
		err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte("\xff\xff junk"), Value: []byte("junk")}).FirstErr()
		if !errors.Is(err, kerr.InvalidTopicException) {
			t.Errorf("produce to %s: err = %v, want INVALID_TOPIC_EXCEPTION", topic, err)
		}
		cl.Close()
	}

	// Whatever was or was not appended, the coordinators load again.
	b.Restart()
	gcl = b.Client(kgo.ConsumerGroup("g"), kgo.ConsumeTopics("events"))
	defer gcl.Close()
	if err := gcl.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestMinInsyncReplicas: one broker is one in-sync replica, so with
// min.insync.replicas above 1 an acks=all produce is NOT_ENOUGH_REPLICAS
// and nothing is appended, as on a Kafka partition whose ISR shrank to
// its leader; acks=1 is served. The setting follows topic changes and
// the cluster-wide default.
func TestMinInsyncReplicas(t *testing.T) {
	b := ktest.NewBroker(t)
	b.CreateTopic("strict", 1, map[string]*string{"min.insync.replicas": kmsg.StringPtr("2")})
	b.CreateTopic("plain", 1, nil)
	adm := b.Admin()
	ctx := ctxT(t, 30*time.Second)
	produce := func(topic string, acks kgo.Acks) error {
		opts := []kgo.Opt{kgo.DefaultProduceTopic(topic), kgo.RecordRetries(0), kgo.RequiredAcks(acks)}
		if acks != kgo.AllISRAcks() {
			opts = append(opts, kgo.DisableIdempotentWrite())
		}
		cl := b.Client(opts...)
		defer cl.Close()
		return cl.ProduceSync(ctx, &kgo.Record{Value: []byte("v")}).FirstErr()
	}
	if err := produce("strict", kgo.AllISRAcks()); !errors.Is(err, kerr.NotEnoughReplicas) {
		t.Fatalf("acks=all with min.insync.replicas 2: %v, want NOT_ENOUGH_REPLICAS", err)
	}
	if err := produce("strict", kgo.LeaderAck()); err != nil {
		t.Fatalf("acks=1 with min.insync.replicas 2: %v", err)
	}
	if err := produce("plain", kgo.AllISRAcks()); err != nil {
		t.Fatalf("acks=all with the default: %v", err)
	}
	// The refused batch was not appended: the acks=1 record is offset 0.
	if recs := consumeN(t, b, "strict", 1); string(recs[0].Value) != "v" || recs[0].Offset != 0 {
		t.Fatalf("strict holds %+v", recs[0])
	}
	if err := alterErr(adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{set("min.insync.replicas", "1")}, "strict")); err != nil {
		t.Fatal(err)
	}
	if err := produce("strict", kgo.AllISRAcks()); err != nil {
		t.Fatalf("acks=all after min.insync.replicas back to 1: %v", err)
	}
	// The cluster-wide default reaches topics without their own value.
	if err := alterErr(adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{set("min.insync.replicas", "2")})); err != nil {
		t.Fatal(err)
	}
	if err := produce("plain", kgo.AllISRAcks()); !errors.Is(err, kerr.NotEnoughReplicas) {
		t.Fatalf("acks=all with the cluster default 2: %v, want NOT_ENOUGH_REPLICAS", err)
	}
}

// TestProduceAcksZeroFailureClosesConnection: an acks=0 producer gets no
// response, so Kafka closes its connection when a partition of the
// request fails (KafkaApis.handleProduceRequest): the client sees the
// disconnect and refreshes its metadata. A request that succeeds leaves
// the connection open.
func TestProduceAcksZeroFailureClosesConnection(t *testing.T) {
	b := ktest.NewBroker(t)
	b.CreateTopic("fire-and-forget", 1, nil)
	produce := func(c *rawConn, topic string, corr int32) {
		req := kmsg.NewPtrProduceRequest()
		req.Version, req.Acks, req.TimeoutMillis = 7, 0, 5000
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Records = goodBatch(t, 2)
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		c.write(request(req, corr))
	}
	apiVersions := func(c *rawConn, corr int32) error {
		req := kmsg.NewPtrApiVersionsRequest()
		req.Version = 0
		c.write(request(req, corr))
		_, err := c.readFrame(corr)
		return err
	}

	ok := dialRaw(t, b.Addr)
	produce(ok, "fire-and-forget", 1)
	if err := apiVersions(ok, 2); err != nil {
		t.Fatalf("after a good acks=0 produce the connection should serve: %v", err)
	}

	for _, tc := range []struct{ name, topic string }{
		{"unknown topic", "no-such-topic"},
		{"internal topic", "__consumer_offsets"},
	} {
		c := dialRaw(t, b.Addr)
		produce(c, tc.topic, 1)
		c.expectClosed(tc.name)
	}

	if got := consumeN(t, b, "fire-and-forget", 2); len(got) != 2 {
		t.Fatalf("consumed %d records, want the 2 of the good produce", len(got))
	}
}
