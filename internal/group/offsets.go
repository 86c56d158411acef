package group

import (
	"cmp"
	"slices"
	"time"
	"unicode/utf16"

	"github.com/twmb/franz-go/pkg/kerr"
)

// topicPartition names a partition.
type topicPartition struct {
	topic     string
	partition int32
}

// offsets are a group's committed offsets and the commits being
// written.
type offsets struct {
	committed map[topicPartition]*offset
	// pending counts commits in flight per partition (RequireStable
	// reports them; expiry skips them).
	pending map[topicPartition]int
	// deletedAt is the write sequence of a tombstone issued while
	// commits were in flight: those commits are older and must not
	// resurrect the offset when they complete.
	deletedAt map[topicPartition]uint64
	seq       uint64
	// txn holds transactional commits (TxnOffsetCommit) by producer ID,
	// invisible until their transaction's marker commits them (KIP-98);
	// RequireStable reports them (KIP-447).
	txn map[int64]map[topicPartition]*offset
}

func newOffsets() offsets {
	return offsets{
		committed: map[topicPartition]*offset{},
		pending:   map[topicPartition]int{},
		deletedAt: map[topicPartition]uint64{},
		txn:       map[int64]map[topicPartition]*offset{},
	}
}

func (o *offsets) next() uint64 {
	o.seq++
	return o.seq
}

func (o *offsets) pendingCount() int { return len(o.pending) }

// remove deletes a committed offset as a tombstone is issued.
func (o *offsets) remove(tp topicPartition) {
	delete(o.committed, tp)
	if o.pending[tp] > 0 {
		o.deletedAt[tp] = o.next()
	}
}

// sorted returns the partitions with a committed or pending offset.
func (o *offsets) sorted(withPending bool) []topicPartition {
	tps := make([]topicPartition, 0, len(o.committed))
	for tp := range o.committed {
		tps = append(tps, tp)
	}
	if withPending {
		for tp := range o.pending {
			if o.committed[tp] == nil {
				tps = append(tps, tp)
			}
		}
	}
	slices.SortFunc(tps, compareTP)
	return tps
}

// compareTP orders partitions by topic, then partition.
func compareTP(a, b topicPartition) int {
	return cmp.Or(cmp.Compare(a.topic, b.topic), cmp.Compare(a.partition, b.partition))
}

// validateOffsetCommit checks who may commit, as Kafka's ClassicGroup:
// with generation -1 anyone may commit to an empty group (consumers
// that assign partitions themselves, admin tools); otherwise the
// member and generation must be current, and not while the group waits
// for its assignment.
//
// For a consumer group (KIP-848) it may instead return a check per
// partition (validateConsumerCommitPartitions).
func (g *Group) validateOffsetCommit(now time.Time, req CommitRequest) (*kerr.Error, func(topic string, partition int32) *kerr.Error) {
	if g.state == Dead {
		return kerr.CoordinatorNotAvailable, nil
	}
	if g.consumer != nil {
		return g.validateConsumerCommitPartitions(req.MemberID, req.InstanceID, req.Generation, req.Version, false)
	}
	return g.validateClassicCommit(now, req), nil
}

func (g *Group) validateClassicCommit(now time.Time, req CommitRequest) *kerr.Error {
	if req.Generation < 0 && g.state == Empty {
		return nil
	}
	if req.Generation >= 0 || req.MemberID != "" || req.InstanceID != nil {
		m, err := g.validateMember(req.MemberID, req.InstanceID)
		if err != nil {
			return err
		}
		if req.Generation != g.generation {
			return kerr.IllegalGeneration
		}
		if g.state == CompletingRebalance {
			// The member has its JoinGroup response but not the
			// assignment yet.
			return kerr.RebalanceInProgress
		}
		// A commit proves the member alive, as a heartbeat does.
		g.scheduleHeartbeat(now, m, m.sessionTimeout)
		return nil
	}
	if g.state != Empty {
		return kerr.UnknownMemberID
	}
	return nil
}

// Commit handles an OffsetCommit; cb runs once the offsets are durable
// (or failed).
func (g *Group) Commit(now time.Time, req CommitRequest, cb func(CommitResult)) {
	err, check := g.validateOffsetCommit(now, req)
	if err != nil {
		cb(commitResult(req.Topics, err))
		return
	}
	res := commitResult(req.Topics, nil)
	type item struct {
		ti, pi int
		tp     topicPartition
		o      *offset
		seq    uint64
	}
	var items []item
	var recs []Record
	ts := now.UnixMilli()
	for i, t := range req.Topics {
		for j, p := range t.Partitions {
			if metadataTooLarge(p.Metadata, g.cfg.OffsetMetadataMaxBytes) {
				res.Topics[i][j] = kerr.OffsetMetadataTooLarge
				continue
			}
			if check != nil {
				if err := check(t.Topic, p.Partition); err != nil {
					res.Topics[i][j] = err
					continue
				}
			}
			o := &offset{Offset: p.Offset, LeaderEpoch: p.LeaderEpoch, Metadata: p.Metadata, CommitTimestamp: ts, ExpireTimestamp: -1}
			if req.RetentionTime >= 0 {
				o.ExpireTimestamp = ts + req.RetentionTime.Milliseconds()
			}
			tp := topicPartition{t.Topic, p.Partition}
			items = append(items, item{ti: i, pi: j, tp: tp, o: o, seq: g.offsets.next()})
			recs = append(recs, offsetRecord(g.id, t.Topic, p.Partition, o))
		}
	}
	if len(items) == 0 {
		cb(res)
		return
	}
	for _, it := range items {
		g.offsets.pending[it.tp]++
	}
	g.append(recs, func(now time.Time, err error) {
		kerrv := commitError(err)
		for _, it := range items {
			if kerrv == nil && it.seq > g.offsets.deletedAt[it.tp] {
				it.o.order = it.seq
				g.offsets.committed[it.tp] = it.o
			}
			if g.offsets.pending[it.tp]--; g.offsets.pending[it.tp] <= 0 {
				delete(g.offsets.pending, it.tp)
				delete(g.offsets.deletedAt, it.tp)
			}
			res.Topics[it.ti][it.pi] = kerrv
		}
		cb(res)
	})
}

// metadataTooLarge reports whether a commit's metadata exceeds
// offset.metadata.max.bytes. Despite the name Kafka compares the limit
// with the metadata's Java String length
// (OffsetMetadataManager.isMetadataInvalid), which counts UTF-16 code
// units, not UTF-8 bytes: non-ASCII metadata up to max characters is
// accepted. A code unit never takes less than a byte, so metadata of at
// most max bytes is never too large; a malformed byte counts one, as
// the replacement character Java decodes it to.
func metadataTooLarge(meta string, max int) bool {
	if len(meta) <= max {
		return false
	}
	n := 0
	for _, r := range meta {
		n += utf16.RuneLen(r)
		if n > max {
			return true
		}
	}
	return false
}

// commitResult returns a result for topics with err for every
// partition.
func commitResult(topics []CommitTopic, err *kerr.Error) CommitResult {
	res := CommitResult{Topics: make([][]*kerr.Error, len(topics))}
	for i, t := range topics {
		res.Topics[i] = make([]*kerr.Error, len(t.Partitions))
		if err != nil {
			for j := range res.Topics[i] {
				res.Topics[i][j] = err
			}
		}
	}
	return res
}

// commitError maps a failed offset write as Kafka's
// GroupMetadataManager.storeOffsets does.
func commitError(err error) *kerr.Error {
	if err == nil {
		return nil
	}
	switch ke := asKafkaError(err); ke {
	case kerr.UnknownTopicOrPartition, kerr.NotEnoughReplicas, kerr.NotEnoughReplicasAfterAppend, kerr.RequestTimedOut:
		return kerr.CoordinatorNotAvailable
	case kerr.NotLeaderForPartition, kerr.KafkaStorageError:
		return kerr.NotCoordinator
	case kerr.MessageTooLarge, kerr.RecordListTooLarge, kerr.InvalidFetchSize:
		return kerr.InvalidCommitOffsetSize
	case nil:
		return kerr.UnknownServerError
	default:
		return ke
	}
}

// Fetch handles one group of an OffsetFetch. Only durable commits are
// visible.
func (g *Group) Fetch(req FetchRequest) FetchResult {
	var res FetchResult
	if err := g.validateConsumerFetch(req.MemberID, req.MemberEpoch); err != nil {
		res.Err = err
		return res
	}
	if req.Topics == nil {
		if g.state == Dead {
			return res
		}
		tps := g.offsets.sorted(req.RequireStable)
		if req.RequireStable {
			tps = g.offsets.withTxnPending(tps)
		}
		for _, tp := range tps {
			fp := g.fetchPartition(tp, req.RequireStable)
			if n := len(res.Topics); n == 0 || res.Topics[n-1].Topic != tp.topic {
				res.Topics = append(res.Topics, FetchTopicResult{Topic: tp.topic})
			}
			t := &res.Topics[len(res.Topics)-1]
			t.Partitions = append(t.Partitions, fp)
		}
		return res
	}
	res.Topics = make([]FetchTopicResult, len(req.Topics))
	for i, t := range req.Topics {
		rt := &res.Topics[i]
		rt.Topic = t.Topic
		rt.Partitions = make([]FetchPartition, len(t.Partitions))
		for j, p := range t.Partitions {
			rt.Partitions[j] = g.fetchPartition(topicPartition{t.Topic, p}, req.RequireStable)
		}
	}
	return res
}

func (g *Group) fetchPartition(tp topicPartition, requireStable bool) FetchPartition {
	fp := FetchPartition{Partition: tp.partition, Offset: -1, LeaderEpoch: -1}
	if g.state == Dead {
		return fp
	}
	if requireStable && (g.offsets.pending[tp] > 0 || g.offsets.txnPending(tp)) {
		fp.Err = kerr.UnstableOffsetCommit
		return fp
	}
	if o := g.offsets.committed[tp]; o != nil {
		fp.Offset, fp.LeaderEpoch, fp.Metadata = o.Offset, o.LeaderEpoch, o.Metadata
	}
	return fp
}

// Delete handles DeleteGroups for this group: only an empty group can
// be deleted; its offsets and metadata are tombstoned. cb runs once the
// tombstones are durable.
func (g *Group) Delete(now time.Time, cb func(*kerr.Error)) {
	switch g.state {
	case Dead:
		cb(kerr.GroupIDNotFound)
		return
	case Empty:
	default:
		cb(kerr.NonEmptyGroup)
		return
	}
	var recs []Record
	for _, tp := range g.offsets.sorted(true) {
		recs = append(recs, offsetTombstone(g.id, tp.topic, tp.partition))
		g.offsets.remove(tp)
	}
	recs = append(recs, g.metadataTombstones()...)
	g.transition(now, Dead)
	g.append(recs, func(_ time.Time, err error) { cb(storeGroupError(err)) })
}

// DeleteOffsets handles OffsetDelete: offsets of topics the group is
// subscribed to stay (GROUP_SUBSCRIBED_TO_TOPIC); a non-consumer group
// must be empty.
func (g *Group) DeleteOffsets(now time.Time, topics []OffsetDeleteTopic, cb func(OffsetDeleteResult)) {
	var res OffsetDeleteResult
	if g.state == Dead {
		res.Err = kerr.GroupIDNotFound
		cb(res)
		return
	}
	consumer := g.hasProtocolType && g.protocolType == ConsumerProtocolType || g.consumer != nil
	if !consumer && g.state != Empty {
		res.Err = kerr.NonEmptyGroup
		cb(res)
		return
	}
	res.Topics = make([][]*kerr.Error, len(topics))
	var recs []Record
	for i, t := range topics {
		res.Topics[i] = make([]*kerr.Error, len(t.Partitions))
		for j, p := range t.Partitions {
			if g.isSubscribedTo(t.Topic) {
				res.Topics[i][j] = kerr.GroupSubscribedToTopic
				continue
			}
			tp := topicPartition{t.Topic, p}
			if g.offsets.committed[tp] != nil || g.offsets.pending[tp] > 0 {
				recs = append(recs, offsetTombstone(g.id, t.Topic, p))
				g.offsets.remove(tp)
			}
		}
	}
	if len(recs) == 0 {
		cb(res)
		return
	}
	g.append(recs, func(_ time.Time, err error) {
		if kerrv := storeGroupError(err); kerrv != nil {
			for i := range res.Topics {
				for j, e := range res.Topics[i] {
					if e == nil {
						res.Topics[i][j] = kerrv
					}
				}
			}
		}
		cb(res)
	})
}

// ExpireOffsets removes offsets past offsets.retention.minutes, as
// Kafka 2.1+ does (KIP-211): an empty group's offsets expire together,
// a retention period after the group emptied; a stable consumer group's
// offsets of topics it no longer subscribes to expire a period after
// their commit; so do those of groups that only store offsets, and
// those of KIP-848 consumer groups in any state of topics no member
// subscribes to (Kafka's ConsumerGroup). Commits
// that carried a retention time expire at their own expire timestamp.
// An empty group left without offsets is deleted. It reports whether
// the group is now Dead.
func (g *Group) ExpireOffsets(now time.Time) bool {
	if g.state == Dead {
		return true
	}
	retention := g.cfg.OffsetsRetention.Milliseconds()
	nowMs := now.UnixMilli()
	var base func(o *offset) int64
	onlyUnsubscribed := false
	switch {
	case g.hasProtocolType && g.state == Empty:
		base = func(o *offset) int64 {
			if !g.stateTime.IsZero() {
				return g.stateTime.UnixMilli()
			}
			return o.CommitTimestamp
		}
	case g.hasProtocolType && g.protocolType == ConsumerProtocolType && g.subscribedKnown && g.state == Stable:
		base = func(o *offset) int64 { return o.CommitTimestamp }
		onlyUnsubscribed = true
	case g.consumer != nil:
		// Kafka's ConsumerGroup: a period after the commit, for topics
		// no member subscribes to (all of them once it is empty).
		base = func(o *offset) int64 { return o.CommitTimestamp }
		onlyUnsubscribed = true
	case !g.hasProtocolType:
		base = func(o *offset) int64 { return o.CommitTimestamp }
	}
	var recs []Record
	if base != nil {
		for _, tp := range g.offsets.sorted(false) {
			o := g.offsets.committed[tp]
			if g.offsets.pending[tp] > 0 || onlyUnsubscribed && g.isSubscribedTo(tp.topic) {
				continue
			}
			expired := nowMs-base(o) >= retention
			if o.ExpireTimestamp >= 0 {
				expired = nowMs >= o.ExpireTimestamp
			}
			if expired {
				recs = append(recs, offsetTombstone(g.id, tp.topic, tp.partition))
				g.offsets.remove(tp)
			}
		}
	}
	dead := g.state == Empty && len(g.offsets.committed) == 0 && g.idle()
	if dead {
		recs = append(recs, g.metadataTombstones()...)
		g.transition(now, Dead)
	}
	if len(recs) > 0 {
		g.append(recs, func(_ time.Time, err error) {
			if err != nil {
				g.log.Warn("writing expired offsets' tombstones failed", "group", g.id, "err", err)
			}
		})
	}
	return dead
}

// loadOffset applies an offset record (nil: tombstone) during load.
func (g *Group) loadOffset(topic string, partition int32, o *offset) {
	tp := topicPartition{topic, partition}
	if o == nil {
		delete(g.offsets.committed, tp)
		return
	}
	g.offsets.committed[tp] = o
}

// DeleteTopicOffsets tombstones the group's offsets of deleted topics,
// as Kafka does when a topic is deleted: a topic re-created with the
// same name must not inherit them.
func (g *Group) DeleteTopicOffsets(now time.Time, topics []string) {
	if g.state == Dead {
		return
	}
	var recs []Record
	for _, tp := range g.offsets.sorted(true) {
		if slices.Contains(topics, tp.topic) {
			recs = append(recs, offsetTombstone(g.id, tp.topic, tp.partition))
			g.offsets.remove(tp)
		}
	}
	if len(recs) == 0 {
		return
	}
	g.append(recs, func(_ time.Time, err error) {
		if err != nil {
			g.log.Warn("writing tombstones for offsets of deleted topics failed", "group", g.id, "err", err)
		}
	})
}

// metadataTombstones delete the group's metadata records, classic or
// consumer.
func (g *Group) metadataTombstones() []Record {
	if g.consumer != nil {
		return g.consumerTombstones()
	}
	return []Record{groupTombstone(g.id)}
}
