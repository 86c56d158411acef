package broker

import (
	"context"
	"errors"
	"sync"
	"time"
	"unsafe"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/metadata"
	"github.com/gregor-streaming/gregor/internal/partlog"
	"github.com/gregor-streaming/gregor/internal/vfs"
	"github.com/gregor-streaming/gregor/internal/wire"
)

// Fetch: v4-18
//
// Version notes:
//   - v4: IsolationLevel, LastStableOffset, AbortedTransactions:
//     read_committed stops at the last stable offset and lists the
//     aborted transactions of what it read (KIP-98); control batches
//     are served as stored, and clients skip them
//   - v5: LogStartOffset
//   - v7: fetch sessions (KIP-227, fetch_session.go)
//   - v9: CurrentLeaderEpoch (KIP-320)
//   - v11: RackID, PreferredReadReplica (KIP-392)
//   - v12: flexible; LastFetchedEpoch, DivergingEpoch
//   - v13: topics by ID (KIP-516)
//   - v15: ReplicaState (KIP-903)
//   - v16-18: CurrentLeader/NodeEndpoints, ReplicaDirectoryID,
//     HighWatermark tags (KIP-951, KIP-853, KIP-1166)
func init() { register(1, 4, 18, (*Broker).handleFetch) }

// fetchTarget is one requested partition, resolved once.
type fetchTarget struct {
	req  *kmsg.FetchRequestTopicPartition
	resp *kmsg.FetchResponseTopicPartition
	p    *partition
	// err is a resolution error (unknown topic, fenced epoch, …).
	err *kerr.Error
	// replica is set for a follower's fetch: it reads up to the log
	// end, not the high watermark, and parks until the next append.
	replica bool
	// anyReplica is set for a consumer's fetch of v11 or later, which a
	// follower serves too, up to its high watermark (KIP-392).
	anyReplica bool
	// rack is the consumer's client.rack when the leader picks its read
	// replica (replica.selector.class): see preferredReadReplica.
	rack string
}

// fetchResponse is a FetchResponse whose record batches live in pooled
// chunks or stay in segment files (spans the kernel sends), released
// once the server has written the response.
type fetchResponse struct {
	*kmsg.FetchResponse
	// chunks hold the record batches read; partitions are packed into a
	// chunk while it has room for another full read.
	chunks []*[]byte
	// spans[i] is target i's file range when its RecordBatches is the
	// placeholder ph[i*placeholderLen:]: both are allocated at the first
	// span, one slot per target, and never reallocated while the response
	// lives, so a placeholder is recognised by its address.
	spans []partlog.Span
	ph    []byte
}

// Unwrap implements wire.Wrapper, so the server writes the record
// batches without copying them.
func (r *fetchResponse) Unwrap() kmsg.Response { return r.FetchResponse }

// Release implements wire.Releaser.
func (r *fetchResponse) Release() {
	for i, c := range r.chunks {
		putFetchBuf(c)
		r.chunks[i] = nil
	}
	r.chunks = r.chunks[:0]
	r.releaseSpans()
}

func (r *fetchResponse) releaseSpans() {
	for i := range r.spans {
		r.spans[i].Release()
	}
	clear(r.spans)
}

// placeholderLen is a span placeholder's size: wire leaves record sets of
// at least this many bytes out of the encoded frame.
const placeholderLen = 16

// addSpan records sp for target i of n and returns its placeholder.
func (r *fetchResponse) addSpan(i, n int, sp partlog.Span) []byte {
	if r.spans == nil {
		r.spans = make([]partlog.Span, n)
		r.ph = make([]byte, n*placeholderLen)
	}
	r.spans[i] = sp
	return r.ph[i*placeholderLen : (i+1)*placeholderLen : (i+1)*placeholderLen]
}

// span returns the span a RecordBatches placeholder stands for.
func (r *fetchResponse) span(b []byte) (*partlog.Span, bool) {
	if len(b) != placeholderLen || len(r.ph) == 0 {
		return nil, false
	}
	at := uintptr(unsafe.Pointer(unsafe.SliceData(b))) - uintptr(unsafe.Pointer(unsafe.SliceData(r.ph)))
	if at >= uintptr(len(r.ph)) || at%placeholderLen != 0 {
		return nil, false
	}
	sp := &r.spans[at/placeholderLen]
	return sp, sp.Len > 0
}

// FileSpan implements wire.FileSpanner.
func (r *fetchResponse) FileSpan(b []byte) (wire.SendFile, int64, int, bool) {
	sp, ok := r.span(b)
	if !ok {
		return nil, 0, 0, false
	}
	f, ok := sp.File().(vfs.OSFile)
	if !ok {
		return nil, 0, 0, false
	}
	return f.File, sp.Pos, sp.Len, true
}

// fetchBufSize is a pooled chunk's capacity: the largest typical partition
// read (1 MiB) plus slack for partlog's index-interval overshoot. A read
// that needs more grows its own copy (not pooled).
const fetchBufSize = 1<<20 + 64<<10

var fetchBufs = sync.Pool{New: func() any {
	b := make([]byte, 0, fetchBufSize)
	return &b
}}

func getFetchBuf() *[]byte { return fetchBufs.Get().(*[]byte) }

func putFetchBuf(b *[]byte) {
	if cap(*b) != fetchBufSize {
		return
	}
	*b = (*b)[:0]
	fetchBufs.Put(b)
}

func (b *Broker) handleFetch(ctx context.Context, req *wire.Request, respond func(kmsg.Response)) {
	r := req.Body.(*kmsg.FetchRequest)
	kresp := r.ResponseKind().(*kmsg.FetchResponse)
	resp := &fetchResponse{FetchResponse: kresp}
	defer func() {
		// A panic (recovered by Serve, which answers nothing) must not
		// leave the response's spans holding segment files open.
		if v := recover(); v != nil {
			resp.Release()
			panic(v)
		}
	}()
	replicaID := r.ReplicaID
	if r.Version >= 15 {
		replicaID = r.ReplicaState.ID
	}
	replica := replicaID >= 0
	if replica && (!b.cluster || !b.authorizedCluster(req, kmsg.ACLOperationClusterAction)) {
		// Only brokers of this cluster replicate (Kafka requires
		// CLUSTER_ACTION of a follower's fetch).
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		if !b.cluster {
			resp.ErrorCode = kerr.NotLeaderForPartition.Code
		}
		resp.Release()
		respond(resp)
		return
	}
	items, session, serr := b.sessionFetchItems(r)
	if serr != nil {
		resp.ErrorCode = serr.Code
		resp.Release()
		respond(resp)
		return
	}
	incremental := session != nil && r.SessionEpoch > sessionInitialEpoch

	img := b.meta.Image()
	readable := b.topicCheck(req, kmsg.ACLOperationRead)
	if replica {
		readable = func(string) bool { return true } // CLUSTER_ACTION, above
	}
	var rack string
	if r.Rack != "" && b.Config().String("replica.selector.class") != "" {
		rack = r.Rack
	}
	parts := make([]kmsg.FetchResponseTopicPartition, len(items))
	targets := make([]fetchTarget, len(items))
	for i := range items {
		it := &items[i]
		sp := &parts[i]
		sp.Default()
		sp.Partition = it.req.Partition
		t := &targets[i]
		t.req, t.resp = it.req, sp
		var topic *metadata.Topic
		if r.Version >= 13 {
			if topic, _ = img.TopicByID(metadata.UUID(it.topicID)); topic == nil {
				t.err = kerr.UnknownTopicID
			}
		} else if topic, _ = img.Topic(it.topic); topic == nil {
			t.err = kerr.UnknownTopicOrPartition
		}
		// READ on the topic, before its existence when named (Kafka's
		// handleFetchRequest).
		if name := it.topic; topic != nil || r.Version < 13 {
			if topic != nil {
				name = topic.Name
			}
			if !readable(name) {
				topic, t.err = nil, kerr.TopicAuthorizationFailed
			}
		}
		if topic != nil {
			if replica {
				t.replica = true
				if t.p = hostedAt(b.partitions(topic.ID), it.req.Partition); t.p == nil || !t.p.leading.Load() {
					t.p, t.err = nil, b.absentError(topic, it.req.Partition)
				}
			} else if r.Version >= 11 && b.cluster {
				// Consumers that know of preferred read replicas may
				// fetch from any replica (KIP-392).
				t.anyReplica, t.rack = true, rack
				if t.p = hostedAt(b.partitions(topic.ID), it.req.Partition); t.p == nil {
					t.err = b.absentError(topic, it.req.Partition)
				}
			} else if t.p = b.partition(topic.ID, it.req.Partition); t.p == nil {
				t.err = b.absentError(topic, it.req.Partition)
			}
		}
	}
	if replica {
		b.followerFetch(replicaID, targets)
	}
	// The response's topics are assembled once, when it is final.
	final := respond
	respond = func(kr kmsg.Response) {
		assembleFetch(resp.FetchResponse, items, parts, session, incremental)
		final(kr)
	}

	respond = b.countFetch(targets, resp, respond)
	if !replica {
		// Replication is not a client's consumption: Kafka's client
		// quotas leave it alone (it has its own replication quotas).
		respond = b.throttleFetch(req, targets, resp, respond)
	}
	// MaxBytes 0 is a limit, not "none": the response still holds the
	// first batch found (KIP-74), as Kafka answers. A negative one stays
	// negative, as in Kafka's KafkaApis.handleFetchRequest (readFetch).
	maxBytes := min(int(r.MaxBytes), int(b.Config().Int("fetch.max.bytes")))
	committed := r.IsolationLevel == 1
	// As Kafka: MinBytes is capped by the response limit, and a fetch
	// whose MinBytes is 0 or less is answered at once.
	minBytes := min(int(r.MinBytes), maxBytes)

	n, failed := b.readFetch(targets, maxBytes, committed, resp)
	if failed || n >= minBytes || r.MaxWaitMillis <= 0 || len(targets) == 0 || b.ctx.Err() != nil {
		respond(resp)
		return
	}

	// Park until enough data arrives, MaxWait passes, or shutdown.
	w := &fetchWaiter{wake: make(chan struct{}, 1)}
	for i := range targets {
		if p := targets[i].p; p != nil && replica {
			p.watchAppends(w)
		} else if p != nil {
			p.watch(w)
		}
	}
	wait := time.Duration(r.MaxWaitMillis) * time.Millisecond
	b.stats.FetchPurgatory.Add(1)
	b.goTracked(func() {
		defer b.stats.FetchPurgatory.Add(-1)
		timer := time.NewTimer(wait)
		defer timer.Stop()
		defer func() {
			for i := range targets {
				if p := targets[i].p; p != nil && replica {
					p.unwatchAppends(w)
				} else if p != nil {
					p.unwatch(w)
				}
			}
		}()
		for {
			select {
			case <-w.wake:
				n, failed := b.readFetch(targets, maxBytes, committed, resp)
				if failed || n >= minBytes {
					respond(resp)
					return
				}
			case <-timer.C:
				b.readFetch(targets, maxBytes, committed, resp)
				respond(resp)
				return
			case <-b.ctx.Done():
				b.readFetch(targets, maxBytes, committed, resp)
				respond(resp)
				return
			}
		}
	})
}

// noRecords is a partition's record set when it has no data: zero
// length, not null (see readFetch).
var noRecords = []byte{}

// readFetch fills every target's response partition from its log and
// returns the bytes of records read and whether any partition failed
// (which answers the fetch at once, as Kafka does). Record batches are
// read into resp's pooled chunks, packed one partition after the other.
func (b *Broker) readFetch(targets []fetchTarget, maxBytes int, committed bool, resp *fetchResponse) (int, bool) {
	total := 0
	// A re-read (a parked fetch woken up) reuses the chunks from the top.
	for _, c := range resp.chunks {
		*c = (*c)[:0]
	}
	resp.releaseSpans()
	chunk := 0
	failed := false
	for i := range targets {
		t := &targets[i]
		sp := t.resp
		// Empty, never null: Kafka answers a partition without data
		// with a zero-length record set, and librdkafka 2.0 (Fetch
		// v11) rejects a null one as "invalid MessageSetSize -1", so
		// kcat -e and every librdkafka consumer stall at the end of
		// a partition.
		sp.RecordBatches = noRecords
		sp.AbortedTransactions = nil
		sp.ErrorCode = 0
		sp.PreferredReadReplica = -1
		if t.err != nil {
			sp.ErrorCode = t.err.Code
			failed = true
			continue
		}
		p := t.p
		p.mu.Lock()
		epoch, deleted := p.leaderEpoch, p.deleted
		following := t.anyReplica && p.followingLocked()
		p.mu.Unlock()
		if deleted {
			sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			failed = true
			continue
		}
		leading := p.leading.Load()
		if !leading && !following {
			// Leadership moved while the fetch was parked.
			sp.ErrorCode = kerr.NotLeaderForPartition.Code
			failed = true
			continue
		}
		if err := leaderEpochError(t.req.CurrentLeaderEpoch, epoch); err != nil {
			sp.ErrorCode = err.Code
			failed = true
			continue
		}
		hw := p.log.HighWatermark()
		sp.HighWatermark = hw
		sp.LastStableOffset = p.lastStableOffset()
		sp.LogStartOffset = p.log.LogStartOffset()
		offset := t.req.FetchOffset
		if offset < sp.LogStartOffset || offset > p.log.LogEndOffset() {
			if !leading && t.req.CurrentLeaderEpoch < 0 {
				// A follower behind a consumer that sent no leader
				// epoch, and may be here on stale metadata: an empty
				// answer, which it retries, as Kafka (KAFKA-14274).
				continue
			}
			// A consumer with an epoch asks the leader (KIP-392).
			sp.ErrorCode = kerr.OffsetOutOfRange.Code
			failed = true
			continue
		}
		if leading && t.rack != "" {
			if id := b.preferredReadReplica(p, t.rack, offset); id >= 0 {
				// No records: the consumer fetches from id next,
				// and is answered at once (Kafka's ReplicaManager).
				sp.PreferredReadReplica = id
				failed = true
				continue
			}
		}
		upTo := hw
		switch {
		case t.replica:
			upTo = p.log.LogEndOffset()
		case committed:
			upTo = sp.LastStableOffset
		}
		if offset >= upTo {
			continue
		}
		// Until a partition returned data, the first batch is returned
		// whatever the limits, even 0 (KIP-74; Kafka's readFromLog reads
		// with minOneMessage until a read is non-empty), or a consumer
		// whose batch is larger than its limits would stall. Kafka
		// clamps what is left of the request's limit at 0 after each
		// partition, so only the first may see a negative one.
		budget := maxBytes - total
		if i > 0 {
			budget = max(budget, 0)
		}
		limit := min(int(t.req.PartitionMaxBytes), budget)
		if limit < 0 {
			// A negative limit for a partition with data to read:
			// Kafka's LogSegment.read throws IllegalArgumentException,
			// which the fetch answers UNKNOWN_SERVER_ERROR.
			sp.ErrorCode = kerr.UnknownServerError.Code
			failed = true
			continue
		}
		if limit == 0 && total > 0 {
			continue
		}
		// Room for a whole read: partlog needs min(limit, 1 MiB) plus
		// an index interval of spare capacity not to allocate.
		need := min(limit, 1<<20) + 64<<10
		for chunk < len(resp.chunks) && cap(*resp.chunks[chunk])-len(*resp.chunks[chunk]) < need {
			chunk++
		}
		if chunk == len(resp.chunks) {
			resp.chunks = append(resp.chunks, getFetchBuf())
		}
		cb := resp.chunks[chunk]
		start := len(*cb)
		var span partlog.Span
		data, err := p.log.ReadSpan(*cb, &span, offset, limit, upTo, total == 0)
		if len(data) > 0 && cap(data) == cap(*cb) {
			*cb = data // read in place; else data is a grown copy
		}
		switch {
		case errors.Is(err, partlog.ErrOffsetOutOfRange):
			sp.ErrorCode = kerr.OffsetOutOfRange.Code
			failed = true
			continue
		case errors.Is(err, partlog.ErrCorrupt):
			// Stored bytes failed their checksum or structure checks:
			// CORRUPT_MESSAGE, as Kafka answers. The Java consumer
			// surfaces it to the application (which may seek past),
			// where KAFKA_STORAGE_ERROR would make clients refresh
			// metadata and retry forever. Data after the damaged range
			// is still served.
			b.log.Error("fetch hit corrupt data; never served", "topic", p.topic, "partition", p.index, "offset", offset, "err", err)
			sp.ErrorCode = kerr.CorruptMessage.Code
			failed = true
			continue
		case err != nil:
			b.log.Error("fetch read failed", "topic", p.topic, "partition", p.index, "offset", offset, "err", err)
			sp.ErrorCode = kerr.KafkaStorageError.Code
			failed = true
			continue
		}
		if span.Len > 0 {
			// Sent from the page cache by the kernel (sendfile).
			sp.RecordBatches = resp.addSpan(i, len(targets), span)
			total += span.Len
		} else {
			sp.RecordBatches = data[start:len(data):len(data)]
			total += len(data) - start
		}
		if committed && !t.replica {
			// The aborted transactions whose records this read may
			// hold: the consumer skips them (KIP-98).
			sp.AbortedTransactions = p.abortedTxns(offset, upTo)
		}
	}
	return total, failed
}
