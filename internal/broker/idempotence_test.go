package broker_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/batch"
	"github.com/gregor-streaming/gregor/internal/ktest"
)

// produceRaw sends one batch with the given producer ID, epoch and base
// sequence and returns the partition response.
func produceRaw(t *testing.T, cl *kgo.Client, topic string, pid int64, epoch int16, seq int32, n int) kmsg.ProduceResponseTopicPartition {
	t.Helper()
	bb := batch.NewBuilder(batch.CodecNone).SetProducer(pid, epoch, seq)
	for i := range n {
		bb.Add(batch.Record{Value: []byte{byte(i)}, Timestamp: time.Now().UnixMilli()})
	}
	data, err := bb.Build()
	if err != nil {
		t.Fatal(err)
	}
	req := kmsg.NewPtrProduceRequest()
	req.Acks = -1
	req.TimeoutMillis = 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	// The client negotiates the version (v13 addresses topics by ID).
	md, err := kadm.NewClient(cl).Metadata(ctxT(t, 5*time.Second), topic)
	if err != nil {
		t.Fatal(err)
	}
	rt.TopicID = md.Topics[topic].ID
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = data
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctxT(t, 10*time.Second), cl)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Topics[0].Partitions[0]
}

func TestIdempotentSequences(t *testing.T) {
	b := ktest.NewBroker(t)
	b.CreateTopic("idem", 1, nil)
	cl := b.Client()
	init := kmsg.NewPtrInitProducerIDRequest()
	ir, err := init.RequestWith(ctxT(t, 5*time.Second), cl)
	if err != nil || ir.ErrorCode != 0 {
		t.Fatalf("InitProducerID: %v %v", err, kerr.ErrorForCode(ir.ErrorCode))
	}
	pid := ir.ProducerID
	ir2, _ := init.RequestWith(ctxT(t, 5*time.Second), cl)
	if ir2.ProducerID == pid {
		t.Fatal("two producers got the same ID")
	}

	check := func(p kmsg.ProduceResponseTopicPartition, wantErr *kerr.Error, wantOffset int64) {
		t.Helper()
		if p.ErrorCode != code(wantErr) {
			t.Fatalf("error %v, want %v", kerr.ErrorForCode(p.ErrorCode), wantErr)
		}
		if wantErr == nil && p.BaseOffset != wantOffset {
			t.Fatalf("base offset %d, want %d", p.BaseOffset, wantOffset)
		}
	}
	check(produceRaw(t, cl, "idem", pid, 0, 0, 3), nil, 0) // seq 0-2
	check(produceRaw(t, cl, "idem", pid, 0, 3, 2), nil, 3) // seq 3-4
	check(produceRaw(t, cl, "idem", pid, 0, 0, 3), nil, 0) // retried duplicate: original offset
	check(produceRaw(t, cl, "idem", pid, 0, 3, 2), nil, 3) // retried duplicate
	check(produceRaw(t, cl, "idem", pid, 0, 9, 1), kerr.OutOfOrderSequenceNumber, 0)
	check(produceRaw(t, cl, "idem", pid, 0, 5, 1), nil, 5)
	check(produceRaw(t, cl, "idem", pid, 1, 0, 1), nil, 6) // new epoch restarts at 0
	check(produceRaw(t, cl, "idem", pid, 0, 6, 1), kerr.InvalidProducerEpoch, 0)
	check(produceRaw(t, cl, "idem", pid, 2, 4, 1), kerr.OutOfOrderSequenceNumber, 0)

	// State survives a restart: the duplicate is still recognised.
	b.Restart()
	cl = b.Client()
	check(produceRaw(t, cl, "idem", pid, 1, 0, 1), nil, 6)
	check(produceRaw(t, cl, "idem", pid, 1, 1, 1), nil, 7)

	// Producer IDs are not reused after a restart.
	ir3, _ := init.RequestWith(ctxT(t, 5*time.Second), cl)
	if ir3.ProducerID == pid || ir3.ProducerID == ir2.ProducerID {
		t.Fatalf("producer ID %d reused after restart", ir3.ProducerID)
	}
}

func code(e *kerr.Error) int16 {
	if e == nil {
		return 0
	}
	return e.Code
}

func TestIdempotentClient(t *testing.T) {
	b := ktest.NewBroker(t)
	b.CreateTopic("idem2", 2, nil)
	cl := b.Client(kgo.DefaultProduceTopic("idem2"))
	var recs []*kgo.Record
	for i := range 2000 {
		recs = append(recs, &kgo.Record{Value: []byte{byte(i)}})
	}
	if err := cl.ProduceSync(ctxT(t, 30*time.Second), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if recs[0].ProducerID < 0 {
		t.Fatal("client did not get a producer ID")
	}
	consumeN(t, b, "idem2", len(recs))
}

func TestProducerSnapshotRoundTrip(t *testing.T) {
	b := ktest.NewBroker(t)
	b.CreateTopic("snap", 1, nil)
	cl := b.Client()
	ir, err := kmsg.NewPtrInitProducerIDRequest().RequestWith(ctxT(t, 5*time.Second), cl)
	if err != nil {
		t.Fatal(err)
	}
	pid := ir.ProducerID
	for seq := int32(0); seq < 20; seq += 2 {
		if p := produceRaw(t, cl, "snap", pid, 0, seq, 2); p.ErrorCode != 0 {
			t.Fatal(kerr.ErrorForCode(p.ErrorCode))
		}
	}
	// A clean restart writes and then loads a snapshot: the last
	// batches are still recognised as duplicates, and sequences go on.
	b.Restart()
	if _, err := os.Stat(filepath.Join(b.Dir, "snap-0", "producer.snapshot")); err != nil {
		t.Fatalf("no snapshot after clean shutdown: %v", err)
	}
	cl = b.Client()
	if p := produceRaw(t, cl, "snap", pid, 0, 18, 2); p.ErrorCode != 0 || p.BaseOffset != 18 {
		t.Fatalf("duplicate after restart: err %d offset %d", p.ErrorCode, p.BaseOffset)
	}
	if p := produceRaw(t, cl, "snap", pid, 0, 22, 1); p.ErrorCode != kerr.OutOfOrderSequenceNumber.Code {
		t.Fatalf("gap after restart: err %d", p.ErrorCode)
	}
	if p := produceRaw(t, cl, "snap", pid, 0, 20, 1); p.ErrorCode != 0 || p.BaseOffset != 20 {
		t.Fatalf("next after restart: err %d offset %d", p.ErrorCode, p.BaseOffset)
	}
}
