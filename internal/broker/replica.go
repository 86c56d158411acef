package broker

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/gregor-streaming/gregor/internal/metadata"
)

// Replication, the leader's side (docs/CLUSTER.md, step 4).
//
// A partition's leader counts an offset as replicated once it is durable
// on every replica of the ISR: its own log's synced offset (localEnd)
// and, for each follower, the offset the follower's last fetch asked
// for. A follower fetches only after syncing what it appended
// (replica_fetcher.go), so its fetch offset is its durable log end: the
// high watermark, the smallest of these, never passes an offset a crash
// of ISR members could take back. acks=all waits for the high
// watermark; acks=1 for the leader's own fsync, as before.
//
// On a single node, and for a partition whose ISR is its leader alone,
// the high watermark is the leader's synced offset, as it always was.

// replicaState is a partition's replication state. Guarded by
// partition.mu, but isrLen.
type replicaState struct {
	// self is this broker's ID.
	self int32
	// restarted is set for a partition opened as the broker started
	// (not created while it ran): see applyPartitionState.
	restarted bool
	// leader is the leader the last applied image names; -2 before the
	// first (so the first application always sets the role).
	leader int32
	// imageOffset is the metadata offset of the last applied image.
	imageOffset int64
	// replicas and isr are the partition's, from the image; maxISR is
	// isr plus the followers this leader asked to add and has not seen
	// committed (Kafka's maximal ISR): the high watermark waits for
	// them too, since an expansion can commit before the leader hears.
	replicas, isr, maxISR []int32
	// adding are the followers being added to the ISR.
	adding []int32
	// isrChanging is set while an ISR change is being committed.
	isrChanging bool
	// isrLen is len(isr), for the produce path's min.insync.replicas
	// check without the lock.
	isrLen atomic.Int32
	// localEnd is the leader's own durable log end: offsets below it
	// survive a crash of this broker.
	localEnd int64
	// epochStart is the log end offset when this broker became leader:
	// a follower joins the ISR only once it reached it (Kafka's
	// Partition.isFollowerInSync), so it holds every record of the
	// previous epochs the leader kept.
	epochStart int64
	// followers are the other replicas as the leader sees them.
	followers map[int32]*followerState
	// hwWaiters wait for the high watermark (acks=all, coordinator
	// writes, transaction markers).
	hwWaiters []*hwWaiter
	// appendWatchers are parked follower fetches, woken by appends.
	appendWatchers map[*fetchWaiter]struct{}
}

// followerState is one follower as its leader sees it.
type followerState struct {
	// end is the offset the follower's last fetch asked for: its
	// durable log end. -1 until its first fetch in this epoch.
	end int64
	// lastCaughtUp is the last time the follower was known to hold
	// the leader's whole log (Kafka's lastCaughtUpTimeMs); its ISR
	// membership lapses replica.lag.time.max.ms after it.
	lastCaughtUp time.Time
	// lastFetch and lastFetchLEO are when the previous fetch was
	// answered and the leader's log end then: a fetch reaching
	// lastFetchLEO shows the follower was caught up at lastFetch.
	lastFetch    time.Time
	lastFetchLEO int64
}

// hwWaiter is a callback waiting for the high watermark to reach end;
// it fires exactly once (high watermark, timeout or lost leadership).
type hwWaiter struct {
	end   int64
	fired atomic.Bool
	fn    func(*kerr.Error)
	// timer fires the timeout; set before the waiter is published.
	timer *time.Timer
	// minISR is min.insync.replicas for an acks=all produce (0: no
	// check); short is set, under partition.mu, when the high
	// watermark reached end with fewer in the (maximal) ISR, which
	// fire then reports as NOT_ENOUGH_REPLICAS_AFTER_APPEND.
	minISR int
	short  bool
}

func (w *hwWaiter) fire(err *kerr.Error) {
	if err == nil && w.short {
		err = kerr.NotEnoughReplicasAfterAppend
	}
	if w.fired.CompareAndSwap(false, true) {
		if w.timer != nil {
			w.timer.Stop() // or a busy partition keeps a timer per request
		}
		w.fn(err)
	}
}

func fireAll(ws []*hwWaiter, err *kerr.Error) {
	for _, w := range ws {
		w.fire(err)
	}
}

// initReplicaState sets a newly opened partition's replication state:
// no role until applyPartitionState gives it one; on a single node that
// is always leader of a one-replica ISR.
func (p *partition) initReplicaState(self int32, restarted bool) {
	p.rep = replicaState{self: self, leader: -2, imageOffset: -2, restarted: restarted}
}

// durableTo records that the leader's log is durable below off and
// advances the high watermark as far as the ISR allows.
func (p *partition) durableTo(off int64) {
	p.mu.Lock()
	p.rep.localEnd = max(p.rep.localEnd, off)
	fire := p.updateHighWatermarkLocked()
	p.mu.Unlock()
	fireAll(fire, nil)
}

// durableAwait is durableTo(off), then fn once the high watermark
// reaches end (nil), timeout passes (REQUEST_TIMED_OUT, as Kafka's
// DelayedProduce), or the partition stops being led here
// (NOT_LEADER_OR_FOLLOWER). A timeout of 0 waits without one.
func (p *partition) durableAwait(off, end int64, timeout time.Duration, fn func(*kerr.Error)) {
	p.durableAwaitISR(off, end, timeout, 0, fn)
}

// durableAwaitISR is durableAwait for an acks=all produce: when the
// high watermark reaches end with fewer than minISR replicas in the
// ISR (it shrank while the records waited), fn gets
// NOT_ENOUGH_REPLICAS_AFTER_APPEND instead of nil, as Kafka's
// Partition.checkEnoughReplicasReachOffset answers: the records are in
// the log, but not on min.insync.replicas replicas.
func (p *partition) durableAwaitISR(off, end int64, timeout time.Duration, minISR int, fn func(*kerr.Error)) {
	p.mu.Lock()
	p.rep.localEnd = max(p.rep.localEnd, off)
	fire := p.updateHighWatermarkLocked()
	var w *hwWaiter
	var err *kerr.Error
	switch {
	case p.deleted:
		err = kerr.UnknownTopicOrPartition
	case !p.leading.Load():
		err = kerr.NotLeaderForPartition
	case p.log.HighWatermark() >= end && minISR > len(p.rep.maxISR):
		err = kerr.NotEnoughReplicasAfterAppend
	case p.log.HighWatermark() < end:
		w = &hwWaiter{end: end, fn: fn, minISR: minISR}
		if timeout > 0 {
			w.timer = time.AfterFunc(timeout, func() {
				p.mu.Lock()
				p.rep.hwWaiters = slices.DeleteFunc(p.rep.hwWaiters, func(x *hwWaiter) bool { return x == w })
				p.mu.Unlock()
				w.fire(kerr.RequestTimedOut)
			})
		}
		p.rep.hwWaiters = append(p.rep.hwWaiters, w)
	}
	p.mu.Unlock()
	fireAll(fire, nil)
	if w == nil {
		fn(err)
	}
}

// updateHighWatermarkLocked advances the high watermark of a partition
// this broker leads to the smallest durable end over the ISR (and the
// followers being added to it), waking parked fetches, and returns the
// waiters to fire (outside mu).
func (p *partition) updateHighWatermarkLocked() []*hwWaiter {
	if !p.leading.Load() {
		return nil
	}
	hw := p.rep.localEnd
	for _, id := range p.rep.maxISR {
		if id == p.rep.self {
			continue
		}
		f := p.rep.followers[id]
		if f == nil || f.end < 0 {
			return nil // not heard from in this epoch: no progress
		}
		hw = min(hw, f.end)
	}
	if hw <= p.log.HighWatermark() {
		return nil
	}
	p.log.SetHighWatermark(hw)
	hw = p.log.HighWatermark() // clamped to the log end
	p.pruneUnstableLocked()
	p.notifyLocked()
	var fire []*hwWaiter
	kept := p.rep.hwWaiters[:0]
	for _, w := range p.rep.hwWaiters {
		if w.end <= hw {
			w.short = w.minISR > len(p.rep.maxISR)
			fire = append(fire, w)
		} else {
			kept = append(kept, w)
		}
	}
	clear(p.rep.hwWaiters[len(kept):])
	p.rep.hwWaiters = kept
	return fire
}

// watchAppends parks a follower's fetch until the next append.
func (p *partition) watchAppends(w *fetchWaiter) {
	p.mu.Lock()
	if p.rep.appendWatchers == nil {
		p.rep.appendWatchers = map[*fetchWaiter]struct{}{}
	}
	p.rep.appendWatchers[w] = struct{}{}
	gone := p.deleted || !p.leading.Load()
	p.mu.Unlock()
	if gone {
		w.signal()
	}
}

func (p *partition) unwatchAppends(w *fetchWaiter) {
	p.mu.Lock()
	delete(p.rep.appendWatchers, w)
	p.mu.Unlock()
}

// notifyAppendLocked wakes the followers' parked fetches after an
// append.
func (p *partition) notifyAppendLocked() {
	for w := range p.rep.appendWatchers {
		w.signal()
	}
}

// applyPartitionState makes p's role and ISR those of mp, the partition
// in the image at offset: leading, following mp.Leader, or (leader -1)
// neither. A new leader epoch is a new role even with the same leader.
// Images older than the last applied are ignored. On a single node p
// always leads, alone in its ISR.
func (b *Broker) applyPartitionState(p *partition, mp *metadata.Partition, offset int64) {
	// The image's slices are immutable: kept, not copied (clipped, so
	// an append to maxISR never writes into the image's array).
	leader, epoch, replicas, isr := mp.Leader, mp.LeaderEpoch, mp.Replicas, slices.Clip(mp.ISR)
	if !b.cluster {
		leader, replicas, isr = b.nodeID, b.selfReplicas, b.selfReplicas
	}
	p.mu.Lock()
	if offset < p.rep.imageOffset {
		p.mu.Unlock()
		return
	}
	first := p.rep.imageOffset == -2
	p.rep.imageOffset = offset
	p.rep.replicas, p.rep.isr = replicas, isr
	p.rep.isrLen.Store(int32(len(isr)))
	if first && p.rep.restarted && b.cluster && leader == b.nodeID {
		// A broker that (re)starts as a partition's leader does not
		// lead it under the epoch it had: a power loss may have taken
		// an unsynced tail its followers fetched, and new records at
		// those offsets under the same epoch would leave the logs
		// diverged where no epoch tells them apart. It asks for a
		// new epoch (bumpEpochs) and leads once that is committed;
		// until then clients get NOT_LEADER_OR_FOLLOWER.
		p.rep.leader = -1
		p.leaderEpoch = epoch
		p.mu.Unlock()
		b.epochBumps.add(p, epoch)
		return
	}
	newRole := leader != p.rep.leader || epoch != p.leaderEpoch
	if !newRole && p.rep.followers != nil {
		// Leading on while a reassignment adds or removes replicas.
		for _, id := range replicas {
			if id != p.rep.self && p.rep.followers[id] == nil {
				p.rep.followers[id] = &followerState{end: -1}
			}
		}
		for id := range p.rep.followers {
			if !slices.Contains(replicas, id) {
				delete(p.rep.followers, id)
			}
		}
	}
	p.rep.adding = slices.DeleteFunc(p.rep.adding, func(id int32) bool {
		return slices.Contains(isr, id) || !slices.Contains(replicas, id)
	})
	p.rep.maxISR = append(isr, p.rep.adding...) // isr is clipped: a copy when adding
	var fire []*hwWaiter
	var lost []*hwWaiter
	follow := int32(-1)
	var epochStart int64
	var unsynced bool
	if newRole {
		p.rep.leader = leader
		p.leaderEpoch = epoch
		if leader == b.nodeID {
			p.becomeLeaderLocked()
			epochStart = p.rep.epochStart
			unsynced = p.rep.localEnd < epochStart
		} else {
			lost = p.becomeFollowerLocked()
			follow = leader
		}
	}
	fire = p.updateHighWatermarkLocked()
	p.mu.Unlock()
	fireAll(lost, kerr.NotLeaderForPartition)
	fireAll(fire, nil)
	if unsynced {
		// What the follower appended last may still be syncing:
		// the high watermark waits for it, and nothing else would
		// sync it before the next append.
		p.log.RequestSync(func(durable int64, err error) {
			if err == nil {
				p.durableTo(durable)
			}
		})
	}
	if newRole {
		if follow >= 0 {
			b.fetchers.follow(p, follow)
		} else {
			b.fetchers.unfollow(p)
		}
		switch {
		case !b.cluster || !isInternal(p.topic):
		case leader == b.nodeID:
			// The coordinator loads the partition once the records
			// of earlier epochs it holds are committed (the high
			// watermark reached its log end as elected): a new
			// leader's high watermark may lag its predecessor's, and
			// a load that stopped there would miss the last group
			// and transaction states written before the failover.
			p.durableAwait(0, epochStart, 0, func(err *kerr.Error) {
				if err == nil {
					b.coordinatorRole(p.topic, p.index, true, epoch)
				}
			})
		default:
			b.coordinatorRole(p.topic, p.index, false, epoch)
		}
	}
}

// becomeLeaderLocked starts leading: the followers are unknown until
// they fetch, and the high watermark stays where it is until they do
// (a new leader's may be behind its predecessor's; clients see the
// records again once the followers catch up).
func (p *partition) becomeLeaderLocked() {
	p.rep.localEnd = p.log.DurableOffset()
	p.rep.epochStart = p.log.LogEndOffset()
	p.rep.followers = map[int32]*followerState{}
	p.rep.adding = nil
	p.rep.maxISR = p.rep.isr
	for _, id := range p.rep.replicas {
		if id != p.rep.self {
			p.rep.followers[id] = &followerState{end: -1}
		}
	}
	if len(p.rep.maxISR) <= 1 || !p.durable() {
		// Alone in the ISR: everything durable here is committed
		// (a single node; a recovered log is durable). With
		// flush.messages/flush.ms, appended counts as durable.
		p.rep.localEnd = max(p.rep.localEnd, p.log.LogEndOffset())
	}
	p.leading.Store(true)
	p.notifyAppendLocked()
}

// becomeFollowerLocked stops leading (if it did) and returns the waiters
// that can no longer be satisfied here. Parked client fetches wake and
// find the partition no longer led (NOT_LEADER_OR_FOLLOWER).
func (p *partition) becomeFollowerLocked() []*hwWaiter {
	p.leading.Store(false)
	p.rep.followers = nil
	p.rep.adding = nil
	lost := p.rep.hwWaiters
	p.rep.hwWaiters = nil
	p.notifyLocked()
	p.notifyAppendLocked()
	return lost
}

// followerFetched records a follower's fetch at offset (its durable log
// end) and advances the high watermark. It reports whether the
// follower, outside the ISR, has caught up and should join it.
func (p *partition) followerFetched(id, currentEpoch int32, offset int64, now time.Time, mayJoin bool) (join bool, epoch int32) {
	p.mu.Lock()
	epoch = p.leaderEpoch
	f := p.rep.followers[id]
	if f == nil || !p.leading.Load() || leaderEpochError(currentEpoch, epoch) != nil {
		// A fetch at another epoch is answered by readFetch; its
		// offset says nothing about this epoch's log.
		p.mu.Unlock()
		return false, epoch
	}
	leo := p.log.LogEndOffset()
	switch {
	case offset >= leo:
		f.lastCaughtUp = now
	case offset >= f.lastFetchLEO && !f.lastFetch.IsZero():
		f.lastCaughtUp = f.lastFetch
	}
	f.end = min(offset, leo)
	f.lastFetch, f.lastFetchLEO = now, leo
	fire := p.updateHighWatermarkLocked()
	join = mayJoin && !slices.Contains(p.rep.maxISR, id) && !p.rep.isrChanging &&
		f.end >= p.log.HighWatermark() && f.end >= p.rep.epochStart
	if join {
		p.rep.isrChanging = true
		p.rep.adding = append(p.rep.adding, id)
		p.rep.maxISR = append(p.rep.maxISR, id)
	}
	p.mu.Unlock()
	fireAll(fire, nil)
	return join, epoch
}

// laggingLocked returns the ISR followers that have not been caught up
// for lag (Kafka's Partition.getOutOfSyncReplicas).
func (p *partition) laggingLocked(now time.Time, lag time.Duration) []int32 {
	var out []int32
	for _, id := range p.rep.isr {
		if id == p.rep.self {
			continue
		}
		f := p.rep.followers[id]
		if f == nil {
			continue
		}
		if f.lastCaughtUp.IsZero() {
			// Not heard from since this broker became leader: the
			// lag counts from then.
			f.lastCaughtUp = now
		}
		if now.Sub(f.lastCaughtUp) > lag {
			out = append(out, id)
		}
	}
	return out
}

// changeISR commits an ISR change of p led by this broker at epoch:
// add joins followers, remove drops lagging ones. The change is computed
// from the current image inside Update, so a concurrent change (the
// controller removing a fenced broker) is kept; it is dropped when this
// broker no longer leads at epoch (Kafka's AlterPartition checks the
// leader and partition epochs).
func (b *Broker) changeISR(p *partition, epoch int32, add, remove []int32) {
	img, err := b.meta.Update(func(img *metadata.Image) ([]metadata.Record, error) {
		t, _ := img.TopicByID(p.topicID)
		mp := t.Partition(p.index)
		if mp == nil || mp.Leader != b.nodeID || mp.LeaderEpoch != epoch {
			return nil, nil
		}
		isr := without(mp.ISR, remove)
		for _, id := range add {
			// A fenced broker does not join (Kafka's controller
			// refuses it in AlterPartition, KIP-841).
			if !slices.Contains(isr, id) && slices.Contains(mp.Replicas, id) && !img.Fenced[id] {
				isr = append(isr, id)
			}
		}
		if len(isr) == 0 || slices.Equal(isr, mp.ISR) {
			return nil, nil
		}
		return []metadata.Record{{PartitionChange: &metadata.PartitionChangeRecord{
			TopicID: p.topicID, Partition: p.index, ISR: isr,
		}}}, nil
	})
	p.mu.Lock()
	p.rep.isrChanging = false
	if err != nil {
		// Not committed: the additions wait for the next fetch.
		p.rep.adding = slices.DeleteFunc(p.rep.adding, func(id int32) bool { return slices.Contains(add, id) })
		p.rep.maxISR = append(p.rep.isr, p.rep.adding...)
	}
	p.mu.Unlock()
	if err != nil {
		b.log.Warn("changing a partition's ISR", "topic", p.topic, "partition", p.index, "add", add, "remove", remove, "err", err)
		return
	}
	if t, ok := img.TopicByID(p.topicID); ok {
		if mp := t.Partition(p.index); mp != nil {
			b.applyPartitionState(p, mp, img.Offset)
			b.log.Info("ISR changed", "topic", p.topic, "partition", p.index, "isr", mp.ISR, "add", add, "remove", remove)
		}
	}
}

// isrLoop shrinks the ISR of the partitions this broker leads whose
// followers lag, every half replica.lag.time.max.ms (Kafka's
// isr-expiration task), until the broker closes. Cluster mode only.
func (b *Broker) isrLoop() {
	for {
		lag := time.Duration(b.Config().Int("replica.lag.time.max.ms")) * time.Millisecond
		select {
		case <-b.ctx.Done():
			return
		case <-time.After(max(lag/2, 10*time.Millisecond)):
		}
		now := time.Now()
		for _, p := range b.allPartitions() {
			p.mu.Lock()
			if !p.leading.Load() || p.rep.isrChanging || p.deleted {
				p.mu.Unlock()
				continue
			}
			out := p.laggingLocked(now, lag)
			epoch := p.leaderEpoch
			if len(out) > 0 {
				p.rep.isrChanging = true
			}
			p.mu.Unlock()
			if len(out) > 0 {
				b.changeISR(p, epoch, nil, out)
			}
		}
	}
}

// followerFetch records a follower's fetch of the partitions this
// broker leads at the follower's leader epoch, and starts adding the
// followers that caught up to the ISR.
func (b *Broker) followerFetch(id int32, targets []fetchTarget) {
	now := time.Now()
	mayJoin := !b.meta.Image().Fenced[id]
	for i := range targets {
		p := targets[i].p
		if p == nil {
			continue
		}
		if join, epoch := p.followerFetched(id, targets[i].req.CurrentLeaderEpoch, targets[i].req.FetchOffset, now, mayJoin); join {
			b.goTracked(func() { b.changeISR(p, epoch, []int32{id}, nil) })
		}
	}
}

// epochBumps collects the partitions this broker restarted as leader of,
// whose leader epoch it asks the controller quorum to bump before it
// leads them (applyPartitionState): one update for all of them, not one
// per partition.
type epochBumps struct {
	mu   sync.Mutex
	want map[*partition]int32
	kick chan struct{}
}

func (e *epochBumps) add(p *partition, epoch int32) {
	e.mu.Lock()
	if e.want == nil {
		e.want = map[*partition]int32{}
	}
	e.want[p] = epoch
	e.mu.Unlock()
	select {
	case e.kick <- struct{}{}:
	default:
	}
}

// bumpEpochs commits the leader epoch bumps epochBumps collects, until
// the broker closes; a failed update is retried. A partition whose
// leader or epoch changed meanwhile needs none: the change gives this
// broker its role.
func (b *Broker) bumpEpochs() {
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-b.epochBumps.kick:
		}
		for b.ctx.Err() == nil {
			b.epochBumps.mu.Lock()
			want := b.epochBumps.want
			b.epochBumps.want = nil
			b.epochBumps.mu.Unlock()
			if len(want) == 0 {
				break
			}
			_, err := b.meta.Update(func(img *metadata.Image) ([]metadata.Record, error) {
				var recs []metadata.Record
				for p, epoch := range want {
					t, _ := img.TopicByID(p.topicID)
					mp := t.Partition(p.index)
					if mp == nil || mp.Leader != b.nodeID || mp.LeaderEpoch != epoch {
						continue
					}
					self := b.nodeID
					recs = append(recs, metadata.Record{PartitionChange: &metadata.PartitionChangeRecord{
						TopicID: p.topicID, Partition: p.index, Leader: &self, BumpEpoch: true,
					}})
				}
				return recs, nil
			})
			if err == nil {
				break
			}
			b.log.Warn("bumping the leader epochs of partitions led before a restart; retrying", "partitions", len(want), "err", err)
			b.epochBumps.mu.Lock()
			for p, epoch := range want {
				if _, ok := b.epochBumps.want[p]; !ok {
					if b.epochBumps.want == nil {
						b.epochBumps.want = map[*partition]int32{}
					}
					b.epochBumps.want[p] = epoch
				}
			}
			b.epochBumps.mu.Unlock()
			select {
			case <-b.ctx.Done():
				return
			case <-time.After(replicaFetchBackoff):
			}
		}
	}
}

// followingLocked says p follows a known leader here: not a leader
// waiting for its epoch bump after a restart, nor a stray log. Called
// with p.mu held.
func (p *partition) followingLocked() bool {
	return p.rep.leader >= 0 && p.rep.leader != p.rep.self && slices.Contains(p.rep.replicas, p.rep.self)
}

// preferredReadReplica is the replica a consumer in rack should fetch
// p from at offset, as Kafka's RackAwareReplicaSelector picks it: -1
// (this leader) when this broker is in that rack or no in-sync replica
// there holds offset; else the one of them furthest ahead. Only
// in-sync replicas of live brokers count (KAFKA-14372): one that lags
// would keep the consumer behind the producers.
func (b *Broker) preferredReadReplica(p *partition, rack string, offset int64) int32 {
	img := b.meta.Image()
	rackOf := func(id int32) string {
		if r := img.Brokers[id]; r != nil {
			return r.Rack
		}
		return ""
	}
	if rackOf(b.nodeID) == rack {
		return -1
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	best, bestEnd := int32(-1), int64(-1)
	for _, id := range p.rep.isr {
		f := p.rep.followers[id]
		if id == b.nodeID || f == nil || img.Fenced[id] || rackOf(id) != rack || f.end < offset {
			continue
		}
		if f.end > bestEnd {
			best, bestEnd = id, f.end
		}
	}
	return best
}
