package broker_test

import (
	"fmt"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/batch"
	"github.com/gregor-streaming/gregor/internal/broker"
	"github.com/gregor-streaming/gregor/internal/ktest"
)

// ofleQuery is one partition of an OffsetForLeaderEpoch request and the
// answer Kafka gives.
type ofleQuery struct {
	topic              string
	partition          int32
	current, epoch     int32
	wantErr            *kerr.Error
	wantEpoch          int32
	wantEnd            int64
	what               string
	replicaID, version int16 // zero: -1 and v4
}

// ofle sends q as one OffsetForLeaderEpoch request through the kmsg
// codec at its version and checks the answer.
func ofle(t *testing.T, b *ktest.Broker, qs ...ofleQuery) {
	t.Helper()
	for _, q := range qs {
		req := kmsg.NewPtrOffsetForLeaderEpochRequest()
		req.Version, req.ReplicaID = 4, -1
		if q.version != 0 {
			req.Version = q.version
		}
		if q.replicaID != 0 {
			req.ReplicaID = int32(q.replicaID)
		}
		rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
		rt.Topic = q.topic
		rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
		rp.Partition, rp.CurrentLeaderEpoch, rp.LeaderEpoch = q.partition, q.current, q.epoch
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp := send[*kmsg.OffsetForLeaderEpochResponse](t, b, req)
		name := fmt.Sprintf("%s (v%d, %s/%d, current %d, epoch %d)", q.what, req.Version, q.topic, q.partition, q.current, q.epoch)
		if len(resp.Topics) != 1 || resp.Topics[0].Topic != q.topic || len(resp.Topics[0].Partitions) != 1 {
			t.Errorf("%s: response %+v", name, resp)
			continue
		}
		sp := resp.Topics[0].Partitions[0]
		errCode(t, name, sp.ErrorCode, q.wantErr)
		wantEpoch, wantEnd := q.wantEpoch, q.wantEnd
		if q.wantErr != nil {
			wantEpoch, wantEnd = -1, -1
		}
		if sp.Partition != q.partition || sp.LeaderEpoch != wantEpoch || sp.EndOffset != wantEnd {
			t.Errorf("%s: partition %d epoch %d end %d, want %d, %d, %d", name, sp.Partition, sp.LeaderEpoch, sp.EndOffset, q.partition, wantEpoch, wantEnd)
		}
	}
}

// produceTo appends n one-record batches to topic's partition p.
func produceTo(t *testing.T, b *ktest.Broker, topic string, p int32, n int) {
	t.Helper()
	cl := b.Client(kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	defer cl.Close()
	ctx := ctxT(t, 30*time.Second)
	for i := range n {
		if err := cl.ProduceSync(ctx, &kgo.Record{Partition: p, Value: []byte(strconv.Itoa(i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestOffsetForLeaderEpoch follows Kafka's answers
// (Partition.lastOffsetForLeaderEpoch over LeaderEpochFileCache.endOffsetFor)
// through leader epochs 0, 2 and 5. A single node never elects a leader,
// so the test moves the partition's epoch itself
// (broker.SetLeaderEpoch); batches appended after carry the new epoch,
// as after an election.
func TestOffsetForLeaderEpoch(t *testing.T) {
	b := ktest.NewBroker(t)
	b.CreateTopic("ofle", 2, nil)

	// An empty partition: Kafka's leader entered epoch 0 at offset 0
	// when elected, so epoch 0 ends at the log end offset.
	ofle(t, b,
		ofleQuery{what: "empty, current epoch", topic: "ofle", current: -1, epoch: 0, wantEpoch: 0, wantEnd: 0},
		ofleQuery{what: "empty, newer epoch", topic: "ofle", current: -1, epoch: 1, wantEpoch: -1, wantEnd: -1},
	)

	produceTo(t, b, "ofle", 0, 3) // epoch 0: offsets 0-2
	ofle(t, b,
		ofleQuery{what: "latest epoch: the log end offset", topic: "ofle", current: 0, epoch: 0, wantEpoch: 0, wantEnd: 3},
		ofleQuery{what: "no fencing (-1)", topic: "ofle", current: -1, epoch: 0, wantEpoch: 0, wantEnd: 3},
		ofleQuery{what: "newer than every entry", topic: "ofle", current: 0, epoch: 1, wantEpoch: -1, wantEnd: -1},
		ofleQuery{what: "undefined epoch", topic: "ofle", current: 0, epoch: -1, wantEpoch: -1, wantEnd: -1},
		ofleQuery{what: "fenced: current epoch ahead", topic: "ofle", current: 1, epoch: 0, wantErr: kerr.UnknownLeaderEpoch},
		ofleQuery{what: "other partition, untouched", topic: "ofle", partition: 1, current: 0, epoch: 0, wantEpoch: 0, wantEnd: 0},
		ofleQuery{what: "unknown partition", topic: "ofle", partition: 2, current: -1, epoch: 0, wantErr: kerr.UnknownTopicOrPartition},
		ofleQuery{what: "unknown topic", topic: "nope", current: -1, epoch: 0, wantErr: kerr.UnknownTopicOrPartition},
	)

	// A new leader epoch with nothing written under it yet: it counts
	// from the log end offset, and epoch 0 ends there.
	if !broker.SetLeaderEpoch(b.B, "ofle", 0, 2) {
		t.Fatal("no partition ofle/0")
	}
	ofle(t, b,
		ofleQuery{what: "fenced: current epoch behind", topic: "ofle", current: 0, epoch: 0, wantErr: kerr.FencedLeaderEpoch},
		ofleQuery{what: "fenced: current epoch ahead", topic: "ofle", current: 3, epoch: 0, wantErr: kerr.UnknownLeaderEpoch},
		ofleQuery{what: "new epoch, nothing written", topic: "ofle", current: 2, epoch: 2, wantEpoch: 2, wantEnd: 3},
		ofleQuery{what: "the previous epoch ends at the new one's start", topic: "ofle", current: 2, epoch: 0, wantEpoch: 0, wantEnd: 3},
		ofleQuery{what: "gap epoch: the one below it", topic: "ofle", current: 2, epoch: 1, wantEpoch: 0, wantEnd: 3},
		ofleQuery{what: "newer than the leader's", topic: "ofle", current: 2, epoch: 3, wantEpoch: -1, wantEnd: -1},
	)

	produceTo(t, b, "ofle", 0, 2) // epoch 2: offsets 3-4
	broker.SetLeaderEpoch(b.B, "ofle", 0, 5)
	produceTo(t, b, "ofle", 0, 4) // epoch 5: offsets 5-8
	// History: (0,0) (2,3) (5,5); log end offset 9.
	ofle(t, b,
		ofleQuery{what: "oldest epoch", topic: "ofle", current: 5, epoch: 0, wantEpoch: 0, wantEnd: 3},
		ofleQuery{what: "unwritten epoch 1: epoch 0's end", topic: "ofle", current: 5, epoch: 1, wantEpoch: 0, wantEnd: 3},
		ofleQuery{what: "middle epoch", topic: "ofle", current: 5, epoch: 2, wantEpoch: 2, wantEnd: 5},
		ofleQuery{what: "unwritten epoch 3", topic: "ofle", current: 5, epoch: 3, wantEpoch: 2, wantEnd: 5},
		ofleQuery{what: "unwritten epoch 4", topic: "ofle", current: 5, epoch: 4, wantEpoch: 2, wantEnd: 5},
		ofleQuery{what: "latest epoch: the log end offset", topic: "ofle", current: 5, epoch: 5, wantEpoch: 5, wantEnd: 9},
		ofleQuery{what: "newer than every entry", topic: "ofle", current: 5, epoch: 6, wantEpoch: -1, wantEnd: -1},
		ofleQuery{what: "no fencing", topic: "ofle", current: -1, epoch: 2, wantEpoch: 2, wantEnd: 5},
		ofleQuery{what: "fenced", topic: "ofle", current: 2, epoch: 2, wantErr: kerr.FencedLeaderEpoch},
	)

	// Every served version, and every kind of requester: Kafka ignores
	// ReplicaID (consumer -1, debug -2, a follower's id). v2 has no
	// ReplicaID on the wire; v3 has no tagged fields.
	for _, v := range []int16{2, 3, 4} {
		for _, rid := range []int16{-1, -2, 1} {
			ofle(t, b,
				ofleQuery{what: "middle epoch", version: v, replicaID: rid, topic: "ofle", current: 5, epoch: 2, wantEpoch: 2, wantEnd: 5},
				ofleQuery{what: "latest epoch", version: v, replicaID: rid, topic: "ofle", current: -1, epoch: 5, wantEpoch: 5, wantEnd: 9},
				ofleQuery{what: "fenced", version: v, replicaID: rid, topic: "ofle", current: 4, epoch: 5, wantErr: kerr.FencedLeaderEpoch},
				ofleQuery{what: "unknown topic", version: v, replicaID: rid, topic: "nope", current: -1, epoch: 5, wantErr: kerr.UnknownTopicOrPartition},
			)
		}
	}

	// The stored batches carry the epochs they were appended under. (A
	// kgo consumer would be fenced: metadata still says epoch 0.)
	freq := kmsg.NewPtrFetchRequest()
	freq.Version, freq.ReplicaID, freq.MaxBytes, freq.SessionEpoch = 12, -1, 1<<20, -1
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = "ofle"
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.PartitionMaxBytes, fp.CurrentLeaderEpoch = 1<<20, -1
	ft.Partitions = append(ft.Partitions, fp)
	freq.Topics = append(freq.Topics, ft)
	fresp := send[*kmsg.FetchResponse](t, b, freq)
	var epochs []int32
	for rb := fresp.Topics[0].Partitions[0].RecordBatches; len(rb) > 0; {
		h, err := batch.ParseHeader(rb)
		if err != nil {
			t.Fatal(err)
		}
		for range h.NumRecords {
			epochs = append(epochs, h.PartitionLeaderEpoch)
		}
		rb = rb[h.Size():]
	}
	if want := []int32{0, 0, 0, 2, 2, 5, 5, 5, 5}; !slices.Equal(epochs, want) {
		t.Errorf("records' leader epochs %v, want %v", epochs, want)
	}

	// kadm's OffsetForLeaderEpoch sends CurrentLeaderEpoch -1.
	adm := b.Admin()
	ctx := ctxT(t, 30*time.Second)
	var kreq kadm.OffsetForLeaderEpochRequest
	kreq.Add("ofle", 0, 3)
	kreq.Add("ofle", 1, 0)
	kresp, err := adm.OffsetForLeaderEpoch(ctx, kreq)
	if err != nil {
		t.Fatal(err)
	}
	if o := kresp["ofle"][0]; o.Err != nil || o.LeaderEpoch != 2 || o.EndOffset != 5 {
		t.Errorf("kadm ofle/0 epoch 3: %+v, want epoch 2 end 5", o)
	}
	if o := kresp["ofle"][1]; o.Err != nil || o.LeaderEpoch != 0 || o.EndOffset != 0 {
		t.Errorf("kadm ofle/1 epoch 0: %+v, want epoch 0 end 0", o)
	}

	// DeleteRecords moves the log start to 4, inside epoch 2: the
	// history becomes (2,4) (5,5), and an epoch older than every entry
	// gets itself back with the first entry's start (Kafka's
	// endOffsetFor with no floor entry).
	dr, err := adm.DeleteRecords(ctx, kadm.Offsets{"ofle": {0: {Topic: "ofle", Partition: 0, At: 4}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := dr.Error(); err != nil {
		t.Fatal(err)
	}
	ofle(t, b,
		ofleQuery{what: "older than every entry", topic: "ofle", current: 5, epoch: 0, wantEpoch: 0, wantEnd: 4},
		ofleQuery{what: "older than every entry", topic: "ofle", current: 5, epoch: 1, wantEpoch: 1, wantEnd: 4},
		ofleQuery{what: "first entry", topic: "ofle", current: 5, epoch: 2, wantEpoch: 2, wantEnd: 5},
		ofleQuery{what: "latest", topic: "ofle", current: 5, epoch: 5, wantEpoch: 5, wantEnd: 9},
	)

	// The history is on disk: a restart keeps it (the epoch itself
	// comes back from the metadata, 0, as nothing stored moved it).
	b.Restart()
	broker.SetLeaderEpoch(b.B, "ofle", 0, 5)
	ofle(t, b,
		ofleQuery{what: "after restart: older than every entry", topic: "ofle", current: 5, epoch: 0, wantEpoch: 0, wantEnd: 4},
		ofleQuery{what: "after restart: first entry", topic: "ofle", current: 5, epoch: 3, wantEpoch: 2, wantEnd: 5},
		ofleQuery{what: "after restart: latest", topic: "ofle", current: 5, epoch: 5, wantEpoch: 5, wantEnd: 9},
	)
}

// TestOffsetForLeaderEpochInternalTopic: internal topics are answered
// like any other, as in Kafka (whose only difference is authorization).
func TestOffsetForLeaderEpochInternalTopic(t *testing.T) {
	b := groupBroker(t)
	b.CreateTopic("t", 1, nil)
	adm := b.Admin()
	ctx := ctxT(t, 30*time.Second)
	if err := adm.CommitAllOffsets(ctx, "g", kadm.Offsets{"t": {0: {Topic: "t", Partition: 0, At: 0, LeaderEpoch: -1}}}); err != nil {
		t.Fatal(err)
	}
	td, err := adm.ListTopicsWithInternal(ctx, "__consumer_offsets")
	if err != nil {
		t.Fatal(err)
	}
	n := len(td["__consumer_offsets"].Partitions)
	req := kmsg.NewPtrOffsetForLeaderEpochRequest()
	req.Version, req.ReplicaID = 4, -1
	rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
	rt.Topic = "__consumer_offsets"
	for p := range int32(n) {
		rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
		rp.Partition, rp.LeaderEpoch = p, 0
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	resp := send[*kmsg.OffsetForLeaderEpochResponse](t, b, req)
	var total int64
	for _, sp := range resp.Topics[0].Partitions {
		errCode(t, fmt.Sprint("__consumer_offsets/", sp.Partition), sp.ErrorCode, nil)
		if sp.LeaderEpoch != 0 || sp.EndOffset < 0 {
			t.Errorf("__consumer_offsets/%d: epoch %d end %d", sp.Partition, sp.LeaderEpoch, sp.EndOffset)
		}
		total += sp.EndOffset
	}
	if n == 0 || len(resp.Topics[0].Partitions) != n || total == 0 {
		t.Errorf("%d of %d partitions, %d records in all; want all holding the commit", len(resp.Topics[0].Partitions), n, total)
	}
}

// TestOffsetForLeaderEpochKgoResume: with the API advertised, kgo takes
// leader epochs from metadata and commits, and validates a resumed
// commit's position with OffsetForLeaderEpoch before fetching (KIP-320).
// The group resumes exactly after its commit, with nothing lost or
// repeated.
func TestOffsetForLeaderEpochKgoResume(t *testing.T) {
	b := groupBroker(t)
	b.CreateTopic("resume-ofle", 2, nil)
	prod := b.Client(kgo.DefaultProduceTopic("resume-ofle"))
	ctx := ctxT(t, 60*time.Second)
	produce := func(from, n int) {
		t.Helper()
		for i := from; i < from+n; i++ {
			if err := prod.ProduceSync(ctx, &kgo.Record{Key: []byte(strconv.Itoa(i)), Value: []byte(strconv.Itoa(i))}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	var ofleSent atomic.Int32
	hook := brokerWriteHook(func(key int16) {
		if key == int16(kmsg.OffsetForLeaderEpoch) {
			ofleSent.Add(1)
		}
	})
	consume := func(n int) map[string]bool {
		t.Helper()
		cl := b.Client(
			kgo.ConsumerGroup("resume-ofle-g"),
			kgo.ConsumeTopics("resume-ofle"),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.DisableAutoCommit(),
			kgo.FetchMaxWait(100*time.Millisecond),
			kgo.WithHooks(hook),
		)
		defer cl.Close()
		got := map[string]bool{}
		var done []*kgo.Record
		for len(done) < n {
			fs := cl.PollFetches(ctx)
			if ctx.Err() != nil {
				t.Fatalf("consumed %d of %d: %v", len(done), n, ctx.Err())
			}
			fs.EachError(func(_ string, p int32, err error) { t.Fatalf("partition %d: %v", p, err) })
			for _, r := range fs.Records() {
				if got[string(r.Value)] {
					t.Errorf("record %s consumed twice", r.Value)
				}
				if r.LeaderEpoch != 0 {
					t.Errorf("record %s: leader epoch %d, want 0", r.Value, r.LeaderEpoch)
				}
				got[string(r.Value)] = true
				done = append(done, r)
			}
		}
		if len(done) != n {
			t.Fatalf("consumed %d records, want %d", len(done), n)
		}
		if err := cl.CommitRecords(ctx, done...); err != nil {
			t.Fatal(err)
		}
		return got
	}
	produce(0, 20)
	first := consume(20)
	// The commits carry the records' leader epoch.
	offs, err := b.Admin().FetchOffsets(ctx, "resume-ofle-g")
	if err != nil {
		t.Fatal(err)
	}
	offs.Each(func(o kadm.OffsetResponse) {
		if o.Err != nil || o.LeaderEpoch != 0 {
			t.Errorf("commit %s/%d: epoch %d, err %v; want epoch 0", o.Topic, o.Partition, o.LeaderEpoch, o.Err)
		}
	})
	produce(20, 10)
	ofleSent.Store(0)
	second := consume(10)
	for i := range 30 {
		k := strconv.Itoa(i)
		if first[k] == second[k] {
			t.Errorf("record %s: in the first run %v, in the second %v", k, first[k], second[k])
		}
	}
	if ofleSent.Load() == 0 {
		t.Error("the resuming consumer sent no OffsetForLeaderEpoch")
	}
}

// brokerWriteHook calls f with the key of every request a client writes.
type brokerWriteHook func(key int16)

func (h brokerWriteHook) OnBrokerWrite(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, _ error) {
	h(key)
}

var _ kgo.HookBrokerWrite = brokerWriteHook(nil)
