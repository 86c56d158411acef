package broker

import (
	"context"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/batch"
	"github.com/gregor-streaming/gregor/internal/partlog"
)

// Replication, the follower's side (docs/CLUSTER.md, step 4).
//
// One fetcher per leader broker copies the partitions this broker
// follows there, as Kafka's ReplicaFetcherThread: Fetch requests with
// this broker's replica ID, the batches appended as they are (offsets
// and leader epochs kept, partlog.AppendRaw), then synced, and only then
// the next fetch, whose offsets tell the leader what is durable here.
// A partition that starts following (a new leader or leader epoch)
// first asks the leader where its log and the leader's diverge
// (OffsetForLeaderEpoch, KIP-101/KIP-279) and truncates there.

// fetchers are the broker's replica fetchers by leader.
type fetchers struct {
	b  *Broker
	mu sync.Mutex
	// byLeader holds the fetcher of each leader this broker follows
	// partitions of; a fetcher stays once made.
	byLeader map[int32]*replicaFetcher
	// of maps each followed partition to its fetcher.
	of map[*partition]*replicaFetcher
}

// replicaFetcher copies partitions from one leader.
type replicaFetcher struct {
	b      *Broker
	leader int32
	// mu guards parts; wake (capacity 1) is signalled when they change.
	mu    sync.Mutex
	parts map[*partition]*followState
	wake  chan struct{}
}

// followState is one followed partition's fetch state.
type followState struct {
	// truncate is set until the log was reconciled with the leader's
	// at the current leader epoch.
	truncate bool
}

// Replica fetch sizes: Kafka's replica.fetch.max.bytes (per partition)
// and replica.fetch.response.max.bytes defaults; a follower waits
// replicaFetchWait at the leader for data, replica.fetch.wait.max.ms's
// default.
const (
	replicaFetchPartitionMax = 1 << 20
	replicaFetchMax          = 10 << 20
	replicaFetchWait         = 500 * time.Millisecond
	replicaFetchBackoff      = 200 * time.Millisecond
)

// follow makes p followed from leader (again: a new epoch truncates
// first).
func (fs *fetchers) follow(p *partition, leader int32) {
	fs.mu.Lock()
	if old := fs.of[p]; old != nil && old.leader != leader {
		old.remove(p)
	}
	f := fs.byLeader[leader]
	if f == nil {
		if fs.byLeader == nil {
			fs.byLeader = map[int32]*replicaFetcher{}
			fs.of = map[*partition]*replicaFetcher{}
		}
		f = &replicaFetcher{b: fs.b, leader: leader, parts: map[*partition]*followState{}, wake: make(chan struct{}, 1)}
		fs.byLeader[leader] = f
		fs.b.goTracked(f.run)
	}
	fs.of[p] = f
	fs.mu.Unlock()
	f.mu.Lock()
	f.parts[p] = &followState{truncate: true}
	f.mu.Unlock()
	f.signal()
}

// unfollow stops fetching p.
func (fs *fetchers) unfollow(p *partition) {
	fs.mu.Lock()
	f := fs.of[p]
	delete(fs.of, p)
	fs.mu.Unlock()
	if f != nil {
		f.remove(p)
	}
}

func (f *replicaFetcher) remove(p *partition) {
	f.mu.Lock()
	delete(f.parts, p)
	f.mu.Unlock()
	f.signal()
}

func (f *replicaFetcher) signal() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// run fetches until the broker closes.
func (f *replicaFetcher) run() {
	b := f.b
	for b.ctx.Err() == nil {
		f.mu.Lock()
		var trunc, fetch []*partition
		for p, st := range f.parts {
			if st.truncate {
				trunc = append(trunc, p)
			} else {
				fetch = append(fetch, p)
			}
		}
		f.mu.Unlock()
		if len(trunc)+len(fetch) == 0 {
			select {
			case <-b.ctx.Done():
				return
			case <-f.wake:
			}
			continue
		}
		var err error
		if len(trunc) > 0 {
			err = f.truncate(trunc)
		} else {
			err = f.fetch(fetch)
		}
		if err != nil && b.ctx.Err() == nil {
			b.peerFailed(f.leader, "cannot replicate from the leader", err)
			select {
			case <-b.ctx.Done():
				return
			case <-time.After(replicaFetchBackoff):
			}
		}
	}
}

// request sends req to the leader.
func (f *replicaFetcher) request(req kmsg.Request, wait time.Duration) (kmsg.Response, error) {
	cl, err := f.b.peerClient()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(f.b.ctx, peerRequestTimeout+wait)
	defer cancel()
	return cl.Broker(int(f.leader)).Request(ctx, req)
}

// current reports whether p is still followed from this fetcher with the
// same state, so a response for an older role is dropped.
func (f *replicaFetcher) current(p *partition, st *followState) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.parts[p] == st
}

func (f *replicaFetcher) state(p *partition) *followState {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.parts[p]
}

// truncate reconciles the logs of ps with the leader's: for each, the
// leader's end offset of the follower's latest epoch, and the log
// truncated there (Kafka's truncation by leader epoch). A follower with
// an empty history has nothing to reconcile.
func (f *replicaFetcher) truncate(ps []*partition) error {
	req := kmsg.NewPtrOffsetForLeaderEpochRequest()
	req.ReplicaID = f.b.nodeID
	type ask struct {
		p     *partition
		st    *followState
		epoch int32
	}
	var asks []ask
	byTopic := map[string]int{}
	for _, p := range ps {
		st := f.state(p)
		if st == nil {
			continue
		}
		epochs := p.log.LeaderEpochs()
		if len(epochs) == 0 {
			f.truncated(p, st)
			continue
		}
		p.mu.Lock()
		current := p.leaderEpoch
		p.mu.Unlock()
		last := epochs[len(epochs)-1].Epoch
		asks = append(asks, ask{p, st, last})
		i, ok := byTopic[p.topic]
		if !ok {
			i = len(req.Topics)
			byTopic[p.topic] = i
			t := kmsg.NewOffsetForLeaderEpochRequestTopic()
			t.Topic = p.topic
			req.Topics = append(req.Topics, t)
		}
		rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
		rp.Partition = p.index
		rp.CurrentLeaderEpoch = current
		rp.LeaderEpoch = last
		req.Topics[i].Partitions = append(req.Topics[i].Partitions, rp)
	}
	if len(asks) == 0 {
		return nil
	}
	kresp, err := f.request(req, 0)
	if err != nil {
		return err
	}
	resp := kresp.(*kmsg.OffsetForLeaderEpochResponse)
	type answer struct {
		epoch int32
		end   int64
		err   int16
	}
	answers := map[tpKey]answer{}
	for _, t := range resp.Topics {
		for _, rp := range t.Partitions {
			answers[tpKey{t.Topic, rp.Partition}] = answer{rp.LeaderEpoch, rp.EndOffset, rp.ErrorCode}
		}
	}
	var failed error
	for _, a := range asks {
		an, ok := answers[tpKey{a.p.topic, a.p.index}]
		if !ok || an.err != 0 {
			if ok {
				failed = kerr.ErrorForCode(an.err)
			}
			continue // the metadata will move it, or the next round retries
		}
		if !f.current(a.p, a.st) {
			continue
		}
		to := a.p.log.LogEndOffset()
		if an.end >= 0 {
			to = min(to, an.end)
			if an.epoch != a.epoch && an.epoch >= 0 {
				// The leader does not know the follower's epoch: its
				// latest epoch at or below it ends at an.end, and the
				// follower's own log of that epoch ends where it
				// ends (Kafka's truncation by the leader's answer).
				if _, own := a.p.log.EndOffsetForEpoch(an.epoch, -1); own >= 0 {
					to = min(to, own)
				}
			}
		} else {
			// No epoch in common: keep only what is below the high
			// watermark, which every ISR member held.
			to = min(to, a.p.log.HighWatermark())
		}
		if err := f.b.truncateReplica(a.p, to); err != nil {
			return err
		}
		f.truncated(a.p, a.st)
	}
	return failed
}

func (f *replicaFetcher) truncated(p *partition, st *followState) {
	f.mu.Lock()
	if f.parts[p] == st {
		st.truncate = false
	}
	f.mu.Unlock()
}

// truncateReplica truncates a follower's log to offset and rebuilds its
// producer state from what remains.
func (b *Broker) truncateReplica(p *partition, offset int64) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.leading.Load() || p.deleted || offset >= p.log.LogEndOffset() {
		return nil
	}
	b.log.Info("truncating a follower's log to its leader's", "topic", p.topic, "partition", p.index,
		"from", p.log.LogEndOffset(), "to", offset)
	if err := p.log.TruncateTo(offset); err != nil {
		return err
	}
	return b.loadProducers(p)
}

// fetch copies what the leader has past each partition's log end, syncs
// it, and records the leader's high watermark.
func (f *replicaFetcher) fetch(ps []*partition) error {
	b := f.b
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = b.nodeID
	req.ReplicaState.ID = b.nodeID
	req.ReplicaState.Epoch = -1
	req.MaxWaitMillis = int32(replicaFetchWait / time.Millisecond)
	req.MinBytes = 1
	req.MaxBytes = replicaFetchMax
	req.SessionID = 0
	req.SessionEpoch = -1
	states := map[tpKey]*followState{}
	parts := map[tpKey]*partition{}
	byTopic := map[string]int{}
	for _, p := range ps {
		st := f.state(p)
		if st == nil || st.truncate {
			continue
		}
		if leo := p.log.LogEndOffset(); p.log.DurableOffset() < leo {
			// The fetch offset tells the leader what is durable
			// here: a log whose last sync failed (or whose append
			// was not synced) is not fetched for until it is,
			// else a record the leader counts as replicated here
			// could be lost with this broker's page cache.
			p.log.RequestSync(func(int64, error) { f.signal() })
			continue
		}
		key := tpKey{p.topic, p.index}
		states[key], parts[key] = st, p
		i, ok := byTopic[p.topic]
		if !ok {
			i = len(req.Topics)
			byTopic[p.topic] = i
			t := kmsg.NewFetchRequestTopic()
			t.Topic = p.topic
			t.TopicID = p.topicID
			req.Topics = append(req.Topics, t)
		}
		p.mu.Lock()
		epoch := p.leaderEpoch
		p.mu.Unlock()
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition = p.index
		rp.CurrentLeaderEpoch = epoch
		rp.FetchOffset = p.log.LogEndOffset()
		rp.LastFetchedEpoch = -1
		rp.LogStartOffset = p.log.LogStartOffset()
		rp.PartitionMaxBytes = replicaFetchPartitionMax
		req.Topics[i].Partitions = append(req.Topics[i].Partitions, rp)
	}
	if len(parts) == 0 {
		// Every partition waits for a sync (or a truncation, or was
		// removed): wait for it rather than spin.
		select {
		case <-b.ctx.Done():
		case <-f.wake:
		case <-time.After(replicaFetchBackoff):
		}
		return nil
	}
	kresp, err := f.request(req, replicaFetchWait)
	if err != nil {
		return err
	}
	resp := kresp.(*kmsg.FetchResponse)
	if resp.ErrorCode != 0 {
		return kerr.ErrorForCode(resp.ErrorCode)
	}
	type appended struct {
		p  *partition
		hw int64
	}
	var done []appended
	var syncs []partlog.SyncRequest
	var wg sync.WaitGroup
	var failed error
	var syncErr error
	var syncMu sync.Mutex
	for _, t := range resp.Topics {
		for i := range t.Partitions {
			rp := &t.Partitions[i]
			name := t.Topic
			if name == "" {
				if bt, ok := b.meta.Image().TopicByID(t.TopicID); ok {
					name = bt.Name
				}
			}
			key := tpKey{name, rp.Partition}
			p, st := parts[key], states[key]
			if p == nil || !f.current(p, st) {
				continue
			}
			switch kerr.ErrorForCode(rp.ErrorCode) {
			case nil:
			case kerr.OffsetOutOfRange:
				if err := f.outOfRange(p, rp.LogStartOffset); err != nil {
					failed = err
				}
				continue
			default:
				// NOT_LEADER_OR_FOLLOWER, FENCED_LEADER_EPOCH, ...: the
				// metadata moves the partition; until then retry.
				failed = kerr.ErrorForCode(rp.ErrorCode)
				continue
			}
			n, err := b.appendReplicated(p, rp.RecordBatches)
			if err != nil {
				b.log.Warn("appending fetched batches", "topic", p.topic, "partition", p.index, "err", err)
				failed = err
				continue
			}
			if rp.LogStartOffset > p.log.LogStartOffset() {
				// The leader deleted records (DeleteRecords, retention).
				_ = p.log.SetLogStartOffset(min(rp.LogStartOffset, p.log.LogEndOffset()))
			}
			done = append(done, appended{p, rp.HighWatermark})
			if n > 0 {
				wg.Add(1)
				syncs = append(syncs, partlog.SyncRequest{Log: p.log, Done: func(_ int64, err error) {
					if err != nil {
						syncMu.Lock()
						syncErr = err
						syncMu.Unlock()
					}
					wg.Done()
				}})
			}
		}
	}
	if len(syncs) > 0 {
		partlog.RequestSyncs(syncs)
		wg.Wait()
	}
	if syncErr != nil {
		return syncErr
	}
	for _, a := range done {
		a.p.followerHighWatermark(a.hw)
	}
	return failed
}

// outOfRange handles OFFSET_OUT_OF_RANGE for a follower: a log ending
// before the leader's start starts over there (Kafka's
// truncateFullyAndStartAt); one ending past the leader's end is
// reconciled again.
func (f *replicaFetcher) outOfRange(p *partition, leaderStart int64) error {
	if leo := p.log.LogEndOffset(); leaderStart >= 0 && leo < leaderStart {
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.leading.Load() || p.deleted {
			return nil
		}
		f.b.log.Info("follower starts over at the leader's log start", "topic", p.topic, "partition", p.index, "from", leo, "to", leaderStart)
		if err := p.log.TruncateFullyAndStartAt(leaderStart); err != nil {
			return err
		}
		return f.b.loadProducers(p)
	}
	f.mu.Lock()
	if st := f.parts[p]; st != nil {
		st.truncate = true
	}
	f.mu.Unlock()
	return nil
}

// appendReplicated appends the whole batches of data (a leader's fetch
// answer) to follower p, keeping their offsets and epochs, and records
// them in its producer state. It returns the bytes appended.
func (b *Broker) appendReplicated(p *partition, data []byte) (int, error) {
	// Whole batches only: a fetch answer may end with a partial one.
	n := 0
	for n < len(data) {
		h, err := batch.ParseHeader(data[n:])
		if err != nil || h.Size() > len(data)-n {
			break
		}
		n += h.Size()
	}
	data = data[:n]
	p.mu.Lock()
	n, err := b.appendReplicatedLocked(p, data)
	snapshot := n > 0 && p.noteAppendLocked(n)
	p.mu.Unlock()
	if snapshot {
		b.startProducerSnapshot(p)
	}
	return n, err
}

func (b *Broker) appendReplicatedLocked(p *partition, data []byte) (int, error) {
	if p.leading.Load() || p.deleted {
		return 0, nil
	}
	// Batches the log already holds (a straddling first batch after a
	// truncation inside it) are skipped.
	leo := p.log.LogEndOffset()
	for len(data) > 0 {
		h, _ := batch.ParseHeader(data)
		if h.NextOffset() > leo {
			if h.BaseOffset < leo {
				if err := p.log.TruncateTo(h.BaseOffset); err != nil {
					return 0, err
				}
				if err := b.loadProducers(p); err != nil {
					return 0, err
				}
			}
			break
		}
		data = data[h.Size():]
	}
	if len(data) == 0 {
		return 0, nil
	}
	if _, err := p.log.AppendRaw(data); err != nil {
		return 0, err
	}
	for rest := data; len(rest) > 0; {
		h, _ := batch.ParseHeader(rest)
		p.updateProducerLocked(&h, rest[:h.Size()], h.BaseOffset, h.LastOffset())
		rest = rest[h.Size():]
	}
	return len(data), nil
}

// followerHighWatermark moves a follower's high watermark to the
// leader's, within its own log.
func (p *partition) followerHighWatermark(hw int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.leading.Load() || p.deleted {
		return
	}
	before := p.log.HighWatermark()
	p.log.SetHighWatermark(min(hw, p.log.LogEndOffset()))
	p.pruneUnstableLocked()
	if p.log.HighWatermark() > before {
		p.notifyLocked() // consumers fetching from this follower
	}
}

// tpKey names a partition in a fetcher's request and its answer.
type tpKey struct {
	topic     string
	partition int32
}
