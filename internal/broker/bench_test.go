package broker

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/batch"
	"github.com/gregor-streaming/gregor/internal/config"
	"github.com/gregor-streaming/gregor/internal/wire"
)

// benchBroker opens a broker with one topic of one partition.
func benchBroker(b *testing.B, props map[string]string) (*Broker, [16]byte) {
	b.Helper()
	cfg, _, err := config.NewBroker(props)
	if err != nil {
		b.Fatal(err)
	}
	br, err := Open(Options{Config: cfg, DataDir: b.TempDir(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { br.Close() })
	errs, img, err := br.createTopics([]*topicSpec{{name: "bench", partitions: 1, replicationFactor: 1}}, false)
	if err != nil || errs[0] != nil {
		b.Fatal(err, errs[0])
	}
	t, _ := img.Topic("bench")
	return br, t.ID
}

func benchBatch(b *testing.B, records, size int) []byte {
	bb := batch.NewBuilder(batch.CodecNone)
	v := make([]byte, size)
	for range records {
		bb.Add(batch.Record{Value: v, Timestamp: time.Now().UnixMilli()})
	}
	data, err := bb.Build()
	if err != nil {
		b.Fatal(err)
	}
	return data
}

// benchmarkProduce measures the produce path from a decoded request to
// the response: validation, append, group-committed fsync (durable) or
// none (relaxed).
func benchmarkProduce(b *testing.B, props map[string]string, records, size int) {
	br, id := benchBroker(b, props)
	data := benchBatch(b, records, size)
	req := kmsg.NewPtrProduceRequest()
	req.Version = 13
	req.Acks = -1
	rt := kmsg.NewProduceRequestTopic()
	rt.TopicID = id
	rp := kmsg.NewProduceRequestTopicPartition()
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	wr := &wire.Request{Client: &wire.Client{}, Key: 0, Version: 13, Body: req}
	done := make(chan kmsg.Response, 1)
	respond := func(r kmsg.Response) { done <- r }
	buf := make([]byte, len(data))
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		copy(buf, data) // the handler rewrites the batch header in place
		req.Topics[0].Partitions[0].Records = buf
		br.Serve(context.Background(), wr, respond)
		resp := (<-done).(*kmsg.ProduceResponse)
		if c := resp.Topics[0].Partitions[0].ErrorCode; c != 0 {
			b.Fatalf("error %d", c)
		}
	}
}

func BenchmarkProduceDurable16KiB(b *testing.B) {
	benchmarkProduce(b, nil, 16, 1024)
}

func BenchmarkProduceRelaxed16KiB(b *testing.B) {
	benchmarkProduce(b, map[string]string{"log.flush.interval.messages": "1000000"}, 16, 1024)
}

func BenchmarkProduceRelaxed1KiB(b *testing.B) {
	benchmarkProduce(b, map[string]string{"log.flush.interval.messages": "1000000"}, 10, 100)
}

// BenchmarkFetch measures a consumer fetch of up to 1 MiB from the
// middle of a 64 MiB log.
func BenchmarkFetch(b *testing.B) {
	br, id := benchBroker(b, map[string]string{"log.flush.interval.messages": "1000000"})
	p := br.partition(id, 0)
	data := benchBatch(b, 16, 1024)
	buf := make([]byte, len(data))
	for range (64 << 20) / len(data) {
		copy(buf, data)
		if _, _, err := p.log.Append(buf, 0); err != nil {
			b.Fatal(err)
		}
	}
	p.durableTo(p.log.LogEndOffset())
	req := kmsg.NewPtrFetchRequest()
	req.Version = 13
	req.MaxBytes = 1 << 20
	rt := kmsg.NewFetchRequestTopic()
	rt.TopicID = id
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.PartitionMaxBytes = 1 << 20
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	wr := &wire.Request{Client: &wire.Client{}, Key: 1, Version: 13, Body: req}
	done := make(chan kmsg.Response, 1)
	respond := func(r kmsg.Response) { done <- r }
	end := p.log.LogEndOffset()
	off := int64(0)
	var out []byte
	b.ReportAllocs()
	for b.Loop() {
		req.Topics[0].Partitions[0].FetchOffset = off
		br.Serve(context.Background(), wr, respond)
		fr := (<-done).(*fetchResponse)
		resp := fr.FetchResponse
		sp := resp.Topics[0].Partitions[0]
		if sp.ErrorCode != 0 || len(sp.RecordBatches) == 0 {
			b.Fatalf("error %d, %d bytes", sp.ErrorCode, len(sp.RecordBatches))
		}
		b.SetBytes(int64(len(sp.RecordBatches)))
		out = wire.AppendResponse(out[:0], 1, resp)
		fr.Release()
		if off += 16 * 60; off >= end-1000 {
			off = 0
		}
	}
}

// BenchmarkProduceManyPartitions measures the per-partition cost of a
// produce request spread over 1,000 partitions with one small batch
// each (the many-partitions workload), without fsync.
func BenchmarkProduceManyPartitions(b *testing.B) {
	const parts = 1000
	cfg, _, _ := config.NewBroker(map[string]string{"log.flush.interval.messages": "1000000"})
	br, err := Open(Options{Config: cfg, DataDir: b.TempDir(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { br.Close() })
	errs, img, err := br.createTopics([]*topicSpec{{name: "many", partitions: parts, replicationFactor: 1}}, false)
	if err != nil || errs[0] != nil {
		b.Fatal(err, errs[0])
	}
	t, _ := img.Topic("many")
	data := benchBatch(b, 1, 1024)
	req := kmsg.NewPtrProduceRequest()
	req.Version = 13
	req.Acks = -1
	rt := kmsg.NewProduceRequestTopic()
	rt.TopicID = t.ID
	bufs := make([][]byte, parts)
	for i := range parts {
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition = int32(i)
		rt.Partitions = append(rt.Partitions, rp)
		bufs[i] = make([]byte, len(data))
	}
	req.Topics = append(req.Topics, rt)
	wr := &wire.Request{Client: &wire.Client{}, Key: 0, Version: 13, Body: req}
	done := make(chan kmsg.Response, 1)
	respond := func(r kmsg.Response) { done <- r }
	b.SetBytes(int64(len(data) * parts))
	b.ReportAllocs()
	for b.Loop() {
		for i := range parts {
			copy(bufs[i], data)
			req.Topics[0].Partitions[i].Records = bufs[i]
		}
		br.Serve(context.Background(), wr, respond)
		resp := (<-done).(*kmsg.ProduceResponse)
		if c := resp.Topics[0].Partitions[0].ErrorCode; c != 0 {
			b.Fatalf("error %d", c)
		}
	}
}
