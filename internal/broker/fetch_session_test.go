package broker_test

import (
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/ktest"
)

func TestFetchSessions(t *testing.T) {
	b := ktest.NewBroker(t)
	b.CreateTopic("sess", 3, nil)
	cl := b.Client(kgo.DefaultProduceTopic("sess"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	ctx := ctxT(t, 20*time.Second)
	produce := func(p int32) {
		t.Helper()
		if err := cl.ProduceSync(ctx, &kgo.Record{Partition: p, Value: []byte("x")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	for p := range int32(3) {
		produce(p)
	}
	md, err := b.Admin().Metadata(ctx, "sess")
	if err != nil {
		t.Fatal(err)
	}
	id := md.Topics["sess"].ID

	fetch := func(sessionID, epoch int32, parts map[int32]int64) *kmsg.FetchResponse {
		t.Helper()
		req := fetchRequest("sess", id, sessionID, epoch, 1<<20, slices.Sorted(maps.Keys(parts)), func(p int32) int64 { return parts[p] })
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	count := func(r *kmsg.FetchResponse) int {
		n := 0
		for _, rt := range r.Topics {
			n += len(rt.Partitions)
		}
		return n
	}

	// Create a session: a full answer.
	r := fetch(0, 0, map[int32]int64{0: 0, 1: 0, 2: 0})
	if r.ErrorCode != 0 || r.SessionID == 0 || count(r) != 3 {
		t.Fatalf("create: err %d session %d partitions %d", r.ErrorCode, r.SessionID, count(r))
	}
	sid := r.SessionID
	// Incremental: move partitions 0 and 1 past their record; nothing is
	// new, so nothing is answered.
	r = fetch(sid, 1, map[int32]int64{0: 1, 1: 1})
	if r.ErrorCode != 0 || r.SessionID != sid {
		t.Fatalf("incremental: err %d session %d", r.ErrorCode, r.SessionID)
	}
	if n := count(r); n != 1 { // partition 2 still has its record at offset 0
		t.Fatalf("incremental answered %d partitions, want 1", n)
	}
	r = fetch(sid, 2, map[int32]int64{2: 1})
	if count(r) != 0 {
		t.Fatalf("idle incremental answered %d partitions", count(r))
	}
	// New data on partition 1 shows up without re-sending partition 1.
	produce(1)
	r = fetch(sid, 3, nil)
	if count(r) != 1 || r.Topics[0].Partitions[0].Partition != 1 || len(r.Topics[0].Partitions[0].RecordBatches) == 0 {
		t.Fatalf("after produce: %+v", r.Topics)
	}
	// Wrong epoch, unknown session.
	if r = fetch(sid, 3, nil); r.ErrorCode != kerr.InvalidFetchSessionEpoch.Code {
		t.Fatalf("stale epoch: err %d", r.ErrorCode)
	}
	if r = fetch(sid+1, 1, nil); r.ErrorCode != kerr.FetchSessionIDNotFound.Code {
		t.Fatalf("unknown session: err %d", r.ErrorCode)
	}
	// Close: sessionless answer; the session is gone.
	if r = fetch(sid, -1, map[int32]int64{0: 0}); r.ErrorCode != 0 || r.SessionID != 0 || count(r) != 1 {
		t.Fatalf("close: err %d session %d", r.ErrorCode, r.SessionID)
	}
	if r = fetch(sid, 4, nil); r.ErrorCode != kerr.FetchSessionIDNotFound.Code {
		t.Fatalf("closed session still there: err %d", r.ErrorCode)
	}
}

// TestFetchSessionRotatesAnsweredPartitions: an incremental fetch moves
// the partitions it answered to the end of the session's order, as
// Kafka's does, so a partition with a deep backlog cannot take every
// response's byte budget while the others wait for it to drain.
func TestFetchSessionRotatesAnsweredPartitions(t *testing.T) {
	b := ktest.NewBroker(t)
	b.CreateTopic("fair", 3, nil)
	cl := b.Client(kgo.DefaultProduceTopic("fair"), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(0), kgo.ProducerBatchMaxBytes(1<<20), kgo.ProducerBatchCompression(kgo.NoCompression()))
	ctx := ctxT(t, 20*time.Second)
	// 16 batches of one 64 KiB record per partition.
	for range 16 {
		for p := range int32(3) {
			if err := cl.ProduceSync(ctx, &kgo.Record{Partition: p, Value: make([]byte, 64<<10)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	md, err := b.Admin().Metadata(ctx, "fair")
	if err != nil {
		t.Fatal(err)
	}
	id := md.Topics["fair"].ID

	next := []int64{0, 0, 0}
	var forget []int32 // sent as forgotten with the next fetch
	// fetch sends the given partitions in order, with room for about one
	// batch, and returns which partitions came back with records.
	fetch := func(sessionID, epoch int32, parts ...int32) (int32, []int32) {
		t.Helper()
		req := fetchRequest("fair", id, sessionID, epoch, 100<<10, parts, func(p int32) int64 { return next[p] })
		if len(forget) > 0 {
			req.ForgottenTopics = []kmsg.FetchRequestForgottenTopic{{Topic: "fair", TopicID: id, Partitions: forget}}
			forget = nil
		}
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		if resp.ErrorCode != 0 {
			t.Fatalf("fetch: error %d", resp.ErrorCode)
		}
		var got []int32
		for _, rt := range resp.Topics {
			for _, rp := range rt.Partitions {
				if len(rp.RecordBatches) > 0 {
					got = append(got, rp.Partition)
					next[rp.Partition]++ // one record per batch, one batch fits
				}
			}
		}
		return resp.SessionID, got
	}

	sid, got := fetch(0, 0, 0, 1, 2)
	if sid == 0 || len(got) != 1 || got[0] != 0 {
		t.Fatalf("full fetch: session %d, records from %v, want from [0]", sid, got)
	}
	// Each incremental fetch re-sends the partition whose position moved;
	// rounds returns which partition each of n fetches answered.
	moved, epoch := got[0], int32(0)
	rounds := func(n int) []int32 {
		t.Helper()
		var order []int32
		for range n {
			epoch++
			_, got = fetch(sid, epoch, moved)
			if len(got) != 1 {
				t.Fatalf("incremental fetch %d: records from %v, want one partition", epoch, got)
			}
			moved = got[0]
			order = append(order, moved)
		}
		return order
	}
	order := rounds(6)
	// A full fetch keeps the request's order (as Kafka's does), so the
	// first incremental fetch reads partition 0 again; from then on each
	// answered partition goes to the back. Without the rotation partition
	// 0 would take every response until its backlog is gone.
	want := []int32{0, 1, 2, 0, 1, 2}
	if !slices.Equal(order, want) {
		t.Fatalf("partitions answered in order %v, want %v", order, want)
	}
	// A forgotten partition leaves the rotation; the others keep it.
	forget = []int32{1}
	if order, want := rounds(4), []int32{0, 2, 0, 2}; !slices.Equal(order, want) {
		t.Fatalf("after forgetting partition 1: answered in order %v, want %v", order, want)
	}
}

// fetchRequest is a Fetch of topic's parts, in that order, from offset(p)
// with up to 1 MiB each and maxBytes in all, in the given session.
func fetchRequest(topic string, id [16]byte, sessionID, epoch, maxBytes int32, parts []int32, offset func(int32) int64) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.SessionID, req.SessionEpoch = sessionID, epoch
	req.MaxBytes = maxBytes
	if len(parts) > 0 {
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic, rt.TopicID = topic, id
		for _, p := range parts {
			rp := kmsg.NewFetchRequestTopicPartition()
			rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = p, offset(p), 1<<20
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
	}
	return req
}

// TestFetchSessionTopicIDUse: a session created by Fetch v13+ (topics by
// ID) refuses an incremental fetch below v13, and one created below v13
// refuses v13+, with FETCH_SESSION_TOPIC_ID_ERROR after the epoch check;
// the session stays usable at its own kind of version
// (FetchManager.newContext).
func TestFetchSessionTopicIDUse(t *testing.T) {
	b := ktest.NewBroker(t)
	b.CreateTopic("sid", 1, nil)
	md, err := b.Admin().Metadata(ctxT(t, 20*time.Second), "sid")
	if err != nil {
		t.Fatal(err)
	}
	id := md.Topics["sid"].ID
	fetch := func(version int16, sessionID, epoch int32, parts ...int32) *kmsg.FetchResponse {
		t.Helper()
		req := fetchRequest("sid", id, sessionID, epoch, 1<<20, parts, func(int32) int64 { return 0 })
		req.Version, req.ReplicaID = version, -1
		return send[*kmsg.FetchResponse](t, b, req)
	}
	for _, tc := range []struct{ created, other int16 }{{12, 13}, {13, 12}, {16, 7}} {
		r := fetch(tc.created, 0, 0, 0)
		if r.ErrorCode != 0 || r.SessionID == 0 {
			t.Fatalf("v%d create: err %d session %d", tc.created, r.ErrorCode, r.SessionID)
		}
		sid := r.SessionID
		if r := fetch(tc.other, sid, 2); r.ErrorCode != kerr.InvalidFetchSessionEpoch.Code {
			t.Errorf("v%d session, v%d request, wrong epoch: err %d, want INVALID_FETCH_SESSION_EPOCH first", tc.created, tc.other, r.ErrorCode)
		}
		if r := fetch(tc.other, sid, 1); r.ErrorCode != kerr.FetchSessionTopicIDError.Code || r.SessionID != 0 {
			t.Errorf("v%d session, v%d request: err %d session %d, want FETCH_SESSION_TOPIC_ID_ERROR, 0", tc.created, tc.other, r.ErrorCode, r.SessionID)
		}
		if r := fetch(tc.created, sid, 1); r.ErrorCode != 0 || r.SessionID != sid {
			t.Errorf("v%d session, v%d request after the refusal: err %d session %d, want %d", tc.created, tc.created, r.ErrorCode, r.SessionID, sid)
		}
	}
}

// TestFetchSessionClosesWhenEmpty: an incremental fetch that forgets the
// session's last partition closes the session and is answered without
// one (session ID 0), as Kafka's FetchManager.newContext does.
func TestFetchSessionClosesWhenEmpty(t *testing.T) {
	b := ktest.NewBroker(t)
	b.CreateTopic("empt", 2, nil)
	md, err := b.Admin().Metadata(ctxT(t, 20*time.Second), "empt")
	if err != nil {
		t.Fatal(err)
	}
	id := md.Topics["empt"].ID
	fetch := func(sessionID, epoch int32, parts []int32, forget ...int32) *kmsg.FetchResponse {
		t.Helper()
		req := fetchRequest("empt", id, sessionID, epoch, 1<<20, parts, func(int32) int64 { return 0 })
		req.Version, req.ReplicaID = 13, -1
		if len(forget) > 0 {
			ft := kmsg.NewFetchRequestForgottenTopic()
			ft.Topic, ft.TopicID, ft.Partitions = "empt", id, forget
			req.ForgottenTopics = append(req.ForgottenTopics, ft)
		}
		return send[*kmsg.FetchResponse](t, b, req)
	}
	r := fetch(0, 0, []int32{0, 1})
	sid := r.SessionID
	if r.ErrorCode != 0 || sid == 0 {
		t.Fatalf("create: err %d session %d", r.ErrorCode, sid)
	}
	if r := fetch(sid, 1, nil, 0); r.ErrorCode != 0 || r.SessionID != sid {
		t.Fatalf("forget one of two: err %d session %d, want %d", r.ErrorCode, r.SessionID, sid)
	}
	if r := fetch(sid, 2, nil, 1); r.ErrorCode != 0 || r.SessionID != 0 || len(r.Topics) != 0 {
		t.Fatalf("forget the last: err %d session %d topics %d, want no error, session 0, nothing", r.ErrorCode, r.SessionID, len(r.Topics))
	}
	if r := fetch(sid, 3, nil); r.ErrorCode != kerr.FetchSessionIDNotFound.Code {
		t.Fatalf("after the last was forgotten: err %d, want FETCH_SESSION_ID_NOT_FOUND", r.ErrorCode)
	}
}
