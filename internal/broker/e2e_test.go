package broker_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/ktest"
)

func ctxT(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// consumeN reads n records from the start of topic.
func consumeN(t *testing.T, b *ktest.Broker, topic string, n int, opts ...kgo.Opt) []*kgo.Record {
	t.Helper()
	opts = append([]kgo.Opt{kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200 * time.Millisecond)}, opts...)
	cl := b.Client(opts...)
	ctx := ctxT(t, 60*time.Second)
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records: %v", len(out), n, ctx.Err())
		}
		fs.EachError(func(topic string, p int32, err error) {
			t.Fatalf("fetch %s/%d: %v", topic, p, err)
		})
		out = append(out, fs.Records()...)
	}
	if len(out) != n {
		t.Fatalf("consumed %d records, want %d", len(out), n)
	}
	return out
}

func TestProduceConsumeManyPartitions(t *testing.T) {
	t.Run("16", func(t *testing.T) { testProduceConsume(t, 16, 100_000) })
	// Hundreds of partitions per request: small appends go through the
	// journal and wait in the logs' buffers (partlog/pend.go).
	t.Run("600", func(t *testing.T) { testProduceConsume(t, 600, 60_000) })
}

func testProduceConsume(t *testing.T, parts int32, n int) {
	b := ktest.NewBroker(t)
	b.CreateTopic("many", parts, nil)
	cl := b.Client(kgo.DefaultProduceTopic("many"), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	ctx := ctxT(t, 120*time.Second)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	acked := map[int32]map[int64]string{}
	for i := range n {
		r := &kgo.Record{
			Key:     []byte("k" + strconv.Itoa(i)),
			Value:   []byte("value-" + strconv.Itoa(i)),
			Headers: []kgo.RecordHeader{{Key: "i", Value: []byte(strconv.Itoa(i))}},
		}
		wg.Add(1)
		cl.Produce(ctx, r, func(r *kgo.Record, err error) {
			defer wg.Done()
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				return
			}
			if acked[r.Partition] == nil {
				acked[r.Partition] = map[int64]string{}
			}
			acked[r.Partition][r.Offset] = string(r.Value)
		})
	}
	wg.Wait()
	if firstErr != nil {
		t.Fatal(firstErr)
	}
	recs := consumeN(t, b, "many", n)
	seen := map[string]bool{}
	next := map[int32]int64{}
	for _, r := range recs {
		if want := acked[r.Partition][r.Offset]; want != string(r.Value) {
			t.Fatalf("%d/%d: value %q, acknowledged %q", r.Partition, r.Offset, r.Value, want)
		}
		if r.Offset != next[r.Partition] {
			t.Fatalf("partition %d: offset %d, want %d (gap or reorder)", r.Partition, r.Offset, next[r.Partition])
		}
		next[r.Partition]++
		if len(r.Headers) != 1 || r.Headers[0].Key != "i" || "value-"+string(r.Headers[0].Value) != string(r.Value) {
			t.Fatalf("headers %v for %q", r.Headers, r.Value)
		}
		if !bytes.Equal(r.Key, []byte("k"+string(r.Headers[0].Value))) {
			t.Fatalf("key %q", r.Key)
		}
		seen[string(r.Value)] = true
	}
	if len(seen) != n || len(next) != int(parts) {
		t.Fatalf("%d distinct values over %d partitions", len(seen), len(next))
	}
}

func TestEveryCodec(t *testing.T) {
	b := ktest.NewBroker(t)
	codecs := map[string]kgo.CompressionCodec{
		"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(), "snappy": kgo.SnappyCompression(),
		"lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression(),
	}
	for name, codec := range codecs {
		t.Run(name, func(t *testing.T) {
			topic := "codec-" + name
			b.CreateTopic(topic, 1, nil)
			cl := b.Client(kgo.DefaultProduceTopic(topic), kgo.ProducerBatchCompression(codec))
			ctx := ctxT(t, 30*time.Second)
			var recs []*kgo.Record
			for i := range 1000 {
				recs = append(recs, &kgo.Record{Value: bytes.Repeat([]byte{byte('a' + i%26)}, 100+i)})
			}
			if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
				t.Fatal(err)
			}
			got := consumeN(t, b, topic, len(recs))
			for i, r := range got {
				if !bytes.Equal(r.Value, recs[i].Value) {
					t.Fatalf("record %d differs", i)
				}
			}
		})
	}
}

func TestLargeRecords(t *testing.T) {
	b := ktest.NewBroker(t, ktest.Set("message.max.bytes", strconv.Itoa(3<<20)))
	b.CreateTopic("big", 1, nil)
	cl := b.Client(kgo.DefaultProduceTopic("big"), kgo.ProducerBatchMaxBytes(3<<20))
	ctx := ctxT(t, 60*time.Second)
	var recs []*kgo.Record
	for i := range 8 {
		v := bytes.Repeat([]byte{byte(i)}, 1<<20)
		recs = append(recs, &kgo.Record{Value: v})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	// A fetch max smaller than one record still makes progress.
	got := consumeN(t, b, "big", len(recs), kgo.FetchMaxBytes(1000), kgo.FetchMaxPartitionBytes(1000))
	for i, r := range got {
		if !bytes.Equal(r.Value, recs[i].Value) {
			t.Fatalf("record %d differs", i)
		}
	}
}

func TestMessageTooLarge(t *testing.T) {
	b := ktest.NewBroker(t)
	b.CreateTopic("small", 1, map[string]*string{"max.message.bytes": kmsg.StringPtr("2000")})
	cl := b.Client(kgo.DefaultProduceTopic("small"), kgo.RecordRetries(0))
	big := make([]byte, 5000)
	rand.Read(big) // incompressible: the limit applies to the batch as sent
	err := cl.ProduceSync(ctxT(t, 10*time.Second), &kgo.Record{Value: big}).FirstErr()
	if !errors.Is(err, kerr.MessageTooLarge) {
		t.Fatalf("err = %v, want MESSAGE_TOO_LARGE", err)
	}
	if err := cl.ProduceSync(ctxT(t, 10*time.Second), &kgo.Record{Value: make([]byte, 100)}).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// TestTopicConfigReachesEveryPartition alters a produce-path setting of
// a topic and checks every partition enforces it, then the topic's new
// partitions too: the partitions of a topic share one parsed copy of the
// settings, replaced as a whole on each change.
func TestTopicConfigReachesEveryPartition(t *testing.T) {
	b := ktest.NewBroker(t)
	b.CreateTopic("shared", 4, nil)
	adm := b.Admin()
	ctx := ctxT(t, 30*time.Second)
	cl := b.Client(kgo.DefaultProduceTopic("shared"), kgo.RecordRetries(0), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	big := make([]byte, 5000)
	rand.Read(big)
	produceAll := func(n int32) []error {
		errs := make([]error, n)
		for p := range n {
			errs[p] = cl.ProduceSync(ctx, &kgo.Record{Partition: p, Value: big}).FirstErr()
		}
		return errs
	}
	for p, err := range produceAll(4) {
		if err != nil {
			t.Fatalf("partition %d before the change: %v", p, err)
		}
	}
	if err := alterErr(adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{set("max.message.bytes", "2000")}, "shared")); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.CreatePartitions(ctx, 6, "shared"); err != nil {
		t.Fatal(err)
	}
	// The client learns of the new partitions from a later metadata
	// refresh; until then it refuses to pick partition 5 itself.
	deadline := time.Now().Add(10 * time.Second)
	for {
		cl.ForceMetadataRefresh()
		errs := produceAll(6)
		if errors.Is(errs[5], kerr.MessageTooLarge) || time.Now().After(deadline) {
			for p, err := range errs {
				if !errors.Is(err, kerr.MessageTooLarge) {
					t.Fatalf("partition %d after the change: %v, want MESSAGE_TOO_LARGE", p, err)
				}
			}
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestListOffsetsByTimestamp(t *testing.T) {
	b := ktest.NewBroker(t)
	b.CreateTopic("ts", 1, nil)
	cl := b.Client(kgo.DefaultProduceTopic("ts"), kgo.ProducerLinger(0))
	ctx := ctxT(t, 30*time.Second)
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	// Several records per batch, so a by-batch answer would be wrong.
	for batchNo := range 10 {
		var recs []*kgo.Record
		for i := range 5 {
			n := batchNo*5 + i
			recs = append(recs, &kgo.Record{Value: []byte(strconv.Itoa(n)), Timestamp: base.Add(time.Duration(n) * time.Second)})
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	adm := kadm.NewClient(cl)
	for _, tc := range []struct {
		at   time.Time
		want int64
	}{
		{base.Add(-time.Second), 0},
		{base, 0},
		{base.Add(7 * time.Second), 7},
		{base.Add(7*time.Second + time.Millisecond), 8},
		{base.Add(49 * time.Second), 49},
		{base.Add(50 * time.Second), -1},
	} {
		lo, err := adm.ListOffsetsAfterMilli(ctx, tc.at.UnixMilli(), "ts")
		if err != nil {
			t.Fatal(err)
		}
		o, _ := lo.Lookup("ts", 0)
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		want := tc.want
		if want == -1 {
			want = 50 // kadm maps "none" to the end offset
		}
		if o.Offset != want {
			t.Errorf("at %v: offset %d, want %d", tc.at.Sub(base), o.Offset, want)
		}
	}
	start, _ := adm.ListStartOffsets(ctx, "ts")
	end, _ := adm.ListEndOffsets(ctx, "ts")
	if s, _ := start.Lookup("ts", 0); s.Offset != 0 {
		t.Errorf("start %d", s.Offset)
	}
	if e, _ := end.Lookup("ts", 0); e.Offset != 50 {
		t.Errorf("end %d", e.Offset)
	}
	// MAX_TIMESTAMP (KIP-734).
	req := kmsg.NewPtrListOffsetsRequest()
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = "ts"
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Timestamp = -3
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if p := resp.Topics[0].Partitions[0]; p.Offset != 49 || p.Timestamp != base.Add(49*time.Second).UnixMilli() {
		t.Errorf("max timestamp: offset %d ts %d", p.Offset, p.Timestamp)
	}
}

func TestLongPollWokenByProduce(t *testing.T) {
	b := ktest.NewBroker(t)
	b.CreateTopic("poll", 1, nil)
	consumer := b.Client(kgo.ConsumeTopics("poll"), kgo.FetchMaxWait(10*time.Second))
	producer := b.Client(kgo.DefaultProduceTopic("poll"))
	ctx := ctxT(t, 30*time.Second)
	got := make(chan time.Time, 1)
	go func() {
		fs := consumer.PollFetches(ctx)
		if fs.NumRecords() > 0 {
			got <- time.Now()
		}
		close(got)
	}()
	time.Sleep(500 * time.Millisecond) // let the fetch park
	sent := time.Now()
	if err := producer.ProduceSync(ctx, &kgo.Record{Value: []byte("wake")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	at, ok := <-got
	if !ok {
		t.Fatal("no record")
	}
	if d := at.Sub(sent); d > 3*time.Second {
		t.Fatalf("fetch answered %v after the produce; the long poll was not woken", d)
	}
}

func TestRestartKeepsData(t *testing.T) {
	b := ktest.NewBroker(t)
	b.CreateTopic("keep", 3, nil)
	cl := b.Client(kgo.DefaultProduceTopic("keep"))
	ctx := ctxT(t, 30*time.Second)
	var recs []*kgo.Record
	for i := range 3000 {
		recs = append(recs, &kgo.Record{Key: []byte(strconv.Itoa(i)), Value: []byte(fmt.Sprint("v", i))})
	}
	res := cl.ProduceSync(ctx, recs...)
	if err := res.FirstErr(); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	b.Restart()
	got := consumeN(t, b, "keep", len(recs))
	at := map[string]*kgo.Record{}
	for _, r := range got {
		at[fmt.Sprint(r.Partition, "/", r.Offset)] = r
	}
	for _, r := range res {
		g := at[fmt.Sprint(r.Record.Partition, "/", r.Record.Offset)]
		if g == nil || !bytes.Equal(g.Value, r.Record.Value) {
			t.Fatalf("acknowledged %d/%d lost after restart", r.Record.Partition, r.Record.Offset)
		}
	}
}

func TestAdminTopics(t *testing.T) {
	b := ktest.NewBroker(t, ktest.Set("auto.create.topics.enable", "false"))
	adm := b.Admin()
	ctx := ctxT(t, 30*time.Second)
	resp, err := adm.CreateTopics(ctx, 4, 1, map[string]*string{"retention.ms": kmsg.StringPtr("1000")}, "a", "b")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range resp {
		if r.Err != nil {
			t.Fatalf("%s: %v", r.Topic, r.Err)
		}
		if r.ID == [16]byte{} {
			t.Fatalf("%s: no topic ID", r.Topic)
		}
	}
	// Invalid requests.
	for _, tc := range []struct {
		name       string
		partitions int32
		rf         int16
		configs    map[string]*string
		want       error
	}{
		{"a", 1, 1, nil, kerr.TopicAlreadyExists},
		{"bad name!", 1, 1, nil, kerr.InvalidTopicException},
		{"zero", 0, 1, nil, kerr.InvalidPartitions},
		{"rf", 1, 3, nil, kerr.InvalidReplicationFactor},
		{"cfg", 1, 1, map[string]*string{"retention.ms": kmsg.StringPtr("soon")}, kerr.InvalidConfig},
		{"cfg2", 1, 1, map[string]*string{"no.such.config": kmsg.StringPtr("1")}, kerr.InvalidConfig},
	} {
		// kadm returns the topic's error as err too.
		r, _ := adm.CreateTopic(ctx, tc.partitions, tc.rf, tc.configs, tc.name)
		if r.Err != tc.want {
			t.Errorf("create %q: %v, want %v", tc.name, r.Err, tc.want)
		}
	}
	// Validate-only creates nothing.
	if r, err := adm.ValidateCreateTopics(ctx, 2, 1, nil, "dry"); err != nil || r["dry"].Err != nil {
		t.Fatalf("validate: %v %v", err, r["dry"].Err)
	}
	md, err := adm.Metadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := md.Topics["dry"]; ok {
		t.Fatal("validate-only created a topic")
	}
	if len(md.Topics["a"].Partitions) != 4 {
		t.Fatalf("a has %d partitions", len(md.Topics["a"].Partitions))
	}
	// Produce to a missing topic with auto-create off.
	cl := b.Client(kgo.DefaultProduceTopic("missing"), kgo.RecordRetries(2), kgo.ProduceRequestTimeout(2*time.Second))
	pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	err = cl.ProduceSync(pctx, &kgo.Record{Value: []byte("x")}).FirstErr()
	cancel()
	if err == nil {
		t.Fatal("produce to a missing topic succeeded")
	}
	// Delete by name; the topic is gone and re-creatable with a new ID.
	oldID := md.Topics["a"].ID
	if dr, err := adm.DeleteTopics(ctx, "a"); err != nil || dr["a"].Err != nil {
		t.Fatalf("delete: %v %v", err, dr["a"].Err)
	}
	if dr, _ := adm.DeleteTopics(ctx, "a"); dr["a"].Err != kerr.UnknownTopicOrPartition {
		t.Fatalf("second delete: %v", dr["a"].Err)
	}
	r, err := adm.CreateTopic(ctx, 1, 1, nil, "a")
	if err != nil || r.Err != nil {
		t.Fatalf("re-create: %v %v", err, r.Err)
	}
	if r.ID == oldID {
		t.Fatal("re-created topic reuses the old ID")
	}
}

func TestAutoCreate(t *testing.T) {
	b := ktest.NewBroker(t, ktest.Set("num.partitions", "3"))
	cl := b.Client(kgo.DefaultProduceTopic("auto"), kgo.AllowAutoTopicCreation())
	if err := cl.ProduceSync(ctxT(t, 10*time.Second), &kgo.Record{Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	md, err := b.Admin().Metadata(ctxT(t, 10*time.Second), "auto")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(md.Topics["auto"].Partitions); n != 3 {
		t.Fatalf("auto-created with %d partitions, want num.partitions=3", n)
	}
}

func TestLogAppendTime(t *testing.T) {
	b := ktest.NewBroker(t)
	b.CreateTopic("lat", 1, map[string]*string{"message.timestamp.type": kmsg.StringPtr("LogAppendTime")})
	cl := b.Client(kgo.DefaultProduceTopic("lat"))
	old := time.Now().Add(-24 * time.Hour)
	before := time.Now()
	if err := cl.ProduceSync(ctxT(t, 10*time.Second), &kgo.Record{Value: []byte("x"), Timestamp: old}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	r := consumeN(t, b, "lat", 1)[0]
	if r.Timestamp.Before(before.Add(-time.Second)) || r.Attrs.TimestampType() != 1 {
		t.Fatalf("timestamp %v type %d, want log append time", r.Timestamp, r.Attrs.TimestampType())
	}
}
