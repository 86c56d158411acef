package broker_test

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/batch"
	"github.com/gregor-streaming/gregor/internal/broker"
	"github.com/gregor-streaming/gregor/internal/ktest"
)

// TestProduceDuplicatePartitions: a partition named more than once in
// one Produce request, under one topic entry or several, is appended and
// answered once, with its last occurrence's records, as Kafka does
// (KafkaApis.handleProduceRequest gathers the partitions in a map keyed
// by topic and partition: a later occurrence replaces an earlier one).
func TestProduceDuplicatePartitions(t *testing.T) {
	b := ktest.NewBroker(t)
	b.CreateTopic("dup", 2, nil)
	b.CreateTopic("dup13", 1, nil)
	md, err := b.Admin().Metadata(ctxT(t, 20*time.Second), "dup13")
	if err != nil {
		t.Fatal(err)
	}
	id13 := md.Topics["dup13"].ID

	records := func(value string) []byte {
		bb := batch.NewBuilder(batch.CodecNone)
		bb.Add(batch.Record{Value: []byte(value), Timestamp: time.Now().UnixMilli()})
		out, err := bb.Build()
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	type part struct {
		p     int32
		value string
	}
	topic := func(name string, id [16]byte, parts ...part) kmsg.ProduceRequestTopic {
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic, rt.TopicID = name, id
		for _, p := range parts {
			rp := kmsg.NewProduceRequestTopicPartition()
			rp.Partition, rp.Records = p.p, records(p.value)
			rt.Partitions = append(rt.Partitions, rp)
		}
		return rt
	}
	produce := func(version int16, topics ...kmsg.ProduceRequestTopic) *kmsg.ProduceResponse {
		req := kmsg.NewPtrProduceRequest()
		req.Version, req.Acks, req.TimeoutMillis, req.Topics = version, -1, 10000, topics
		return send[*kmsg.ProduceResponse](t, b, req)
	}
	// values reads partition p of topic from offset 0.
	values := func(topic string, p int32) []string {
		req := kmsg.NewPtrFetchRequest()
		req.Version, req.ReplicaID, req.MaxBytes, req.SessionEpoch = 12, -1, 1<<20, -1
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.PartitionMaxBytes = p, 1<<20
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp := send[*kmsg.FetchResponse](t, b, req)
		var out []string
		for data := resp.Topics[0].Partitions[0].RecordBatches; len(data) > 0; {
			h, err := batch.ParseHeader(data)
			if err != nil {
				t.Fatal(err)
			}
			if err := batch.Records(data[:h.Size()], func(r batch.Record) bool { out = append(out, string(r.Value)); return true }); err != nil {
				t.Fatal(err)
			}
			data = data[h.Size():]
		}
		return out
	}
	rows := func(resp *kmsg.ProduceResponse) map[int32]int {
		n := map[int32]int{}
		for _, st := range resp.Topics {
			for _, sp := range st.Partitions {
				errCode(t, "produce partition "+itoa(sp.Partition), sp.ErrorCode, nil)
				n[sp.Partition]++
			}
		}
		return n
	}

	// By name: partition 0 twice in one entry, partition 1 in two.
	resp := produce(9,
		topic("dup", [16]byte{}, part{0, "a"}, part{1, "x"}, part{0, "b"}),
		topic("dup", [16]byte{}, part{1, "y"}),
	)
	if n := rows(resp); len(n) != 2 || n[0] != 1 || n[1] != 1 {
		t.Errorf("v9: rows per partition %v, want one each for 0 and 1", n)
	}
	if got := values("dup", 0); len(got) != 1 || got[0] != "b" {
		t.Errorf("dup/0 holds %q, want [b]", got)
	}
	if got := values("dup", 1); len(got) != 1 || got[0] != "y" {
		t.Errorf("dup/1 holds %q, want [y]", got)
	}

	// By topic ID (v13).
	resp = produce(13, topic("", id13, part{0, "c"}, part{0, "d"}))
	if n := rows(resp); len(n) != 1 || n[0] != 1 {
		t.Errorf("v13: rows per partition %v, want one for 0", n)
	}
	if got := values("dup13", 0); len(got) != 1 || got[0] != "d" {
		t.Errorf("dup13/0 holds %q, want [d]", got)
	}
}

// TestSupersededProduceAllocs pins that a request naming no partition
// twice (the usual one) costs the duplicate check no allocation, and
// that the check finds repeats across topic entries.
func TestSupersededProduceAllocs(t *testing.T) {
	r := kmsg.NewPtrProduceRequest()
	r.Version = 9
	for _, name := range []string{"a", "b"} {
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = name
		for p := range int32(8) {
			rp := kmsg.NewProduceRequestTopicPartition()
			rp.Partition = p
			rt.Partitions = append(rt.Partitions, rp)
		}
		r.Topics = append(r.Topics, rt)
	}
	if n := testing.AllocsPerRun(100, func() {
		if broker.SupersededProduce(r) != nil {
			t.Fatal("duplicates found in a request without any")
		}
	}); n != 0 {
		t.Errorf("%v allocations per request without duplicates, want 0", n)
	}
	r.Topics[1].Topic = "a" // the second entry repeats a's partitions
	d := broker.SupersededProduce(r)
	if len(d) != 8 || !d[[2]int{0, 3}] || d[[2]int{1, 3}] {
		t.Errorf("superseded %v, want the first entry's 8 partitions", d)
	}
}
