package group

import (
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/gregor-streaming/gregor/internal/batch"
)

// Transactional offset commits (TxnOffsetCommit, KIP-98 and KIP-447).
//
// A transactional producer commits its consumer group's offsets inside
// its transaction: the records are written to the group's
// __consumer_offsets partition in a transactional batch of the producer,
// and held aside, by producer ID, until the transaction coordinator
// writes the transaction's marker to that partition. A commit marker
// makes them the group's offsets (unless a later commit replaced one);
// an abort marker drops them. Until then OffsetFetch with RequireStable
// answers UNSTABLE_OFFSET_COMMIT for their partitions, so a consumer
// taking over the partitions never starts from offsets a transaction in
// flight may still move.

// TxnCommitRequest is a TxnOffsetCommit whose topics exist.
type TxnCommitRequest struct {
	ProducerID    int64
	ProducerEpoch int16
	// MemberID, InstanceID and Generation identify the committing
	// member (v3+); generation -1 with no member commits without
	// membership.
	MemberID   string
	InstanceID *string
	Generation int32
	Topics     []CommitTopic
}

// txnPending reports whether a transaction holds a commit of tp.
func (o *offsets) txnPending(tp topicPartition) bool {
	for _, m := range o.txn {
		if m[tp] != nil {
			return true
		}
	}
	return false
}

// withTxnPending adds to sorted tps the partitions only a transaction
// holds a commit of, keeping the order: a RequireStable fetch of every
// offset reports them as unstable.
func (o *offsets) withTxnPending(tps []topicPartition) []topicPartition {
	n := len(tps)
	for _, m := range o.txn {
		for tp := range m {
			if o.committed[tp] == nil && o.pending[tp] == 0 && !slices.Contains(tps[n:], tp) {
				tps = append(tps, tp)
			}
		}
	}
	if len(tps) > n {
		slices.SortFunc(tps, compareTP)
	}
	return tps
}

// validateTxnCommit checks who may commit, as Kafka's
// ClassicGroup.validateOffsetCommit does for transactional commits: a
// request naming a member, a generation or an instance ID must name a
// current member (instance ID and member ID agreeing) of the current
// generation, all of it, so a zombie producer of a consumer that lost
// its membership is fenced (KIP-447); one naming none of them commits
// without membership whatever the group's state (TxnOffsetCommit v0-2
// carry no membership). Unlike OffsetCommit it does not refuse during a
// rebalance.
func (g *Group) validateTxnCommit(req TxnCommitRequest) *kerr.Error {
	switch {
	case g.state == Dead:
		return kerr.CoordinatorNotAvailable
	case req.Generation < 0 && g.state == Empty:
		return nil
	case req.Generation < 0 && req.MemberID == "" && req.InstanceID == nil:
		return nil
	case g.consumer != nil:
		return g.validateConsumerCommit(req.MemberID, req.InstanceID, req.Generation, 0, true)
	}
	if _, err := g.validateMember(req.MemberID, req.InstanceID); err != nil {
		return err
	}
	if req.Generation != g.generation {
		return kerr.IllegalGeneration
	}
	return nil
}

// TxnCommit handles a TxnOffsetCommit; cb runs once the records are
// durable (or failed). The offsets become visible at the transaction's
// commit marker (CompleteTxn).
func (g *Group) TxnCommit(now time.Time, req TxnCommitRequest, cb func(CommitResult)) {
	if err := g.validateTxnCommit(req); err != nil {
		cb(commitResult(req.Topics, err))
		return
	}
	res := commitResult(req.Topics, nil)
	type item struct {
		ti, pi int
		tp     topicPartition
		o      *offset
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
			o := &offset{Offset: p.Offset, LeaderEpoch: p.LeaderEpoch, Metadata: p.Metadata, CommitTimestamp: ts, ExpireTimestamp: -1, order: g.offsets.next()}
			tp := topicPartition{t.Topic, p.Partition}
			items = append(items, item{ti: i, pi: j, tp: tp, o: o})
			recs = append(recs, offsetRecord(g.id, t.Topic, p.Partition, o))
		}
	}
	if len(items) == 0 {
		cb(res)
		return
	}
	g.appendWith(req.ProducerID, req.ProducerEpoch, recs, func(_ time.Time, err error) {
		kerrv := commitError(err)
		if kerrv == nil {
			m := g.offsets.txn[req.ProducerID]
			if m == nil {
				m = map[topicPartition]*offset{}
				g.offsets.txn[req.ProducerID] = m
			}
			for _, it := range items {
				m[it.tp] = it.o
			}
		}
		for _, it := range items {
			res.Topics[it.ti][it.pi] = kerrv
		}
		cb(res)
	})
}

// CompleteTxn applies the marker of the producer's transaction: its
// offsets are committed, or dropped.
func (g *Group) CompleteTxn(producerID int64, commit bool) {
	m := g.offsets.txn[producerID]
	if m == nil {
		return
	}
	delete(g.offsets.txn, producerID)
	if !commit || g.state == Dead {
		return
	}
	mergeNewer(g.offsets.committed, m)
}

// mergeNewer commits into dst the offsets of src newer than dst's.
func mergeNewer(dst, src map[topicPartition]*offset) {
	for tp, o := range src {
		if cur := dst[tp]; cur == nil || cur.order < o.order {
			dst[tp] = o
		}
	}
}

// TxnCommit handles a TxnOffsetCommit. A commit with generation -1 to
// an unknown group creates it, as OffsetCommit does; otherwise an
// unknown group is ILLEGAL_GENERATION, or GROUP_ID_NOT_FOUND when
// groupNotFound is set (v6+, KIP-1319).
func (c *Coordinator) TxnCommit(groupID string, req TxnCommitRequest, groupNotFound bool, respond func(CommitResult)) {
	if groupID == "" {
		respond(commitResult(req.Topics, kerr.InvalidGroupID))
		return
	}
	c.commit(groupID, req.Generation, req.Topics, groupNotFound, respond,
		func(g *Group, now time.Time) { g.TxnCommit(now, req, respond) })
}

// CompleteTxn applies a transaction marker written to a
// __consumer_offsets partition (once it is durable) to the groups of
// that partition. A partition still loading applies it once loaded.
func (c *Coordinator) CompleteTxn(partition int32, producerID int64, commit bool) {
	if !c.busy.Enter() {
		return
	}
	defer c.busy.Release()
	shards := c.shards.Load()
	if partition < 0 || int(partition) >= len(shards) {
		return
	}
	sh := shards[partition]
	sh.Lock()
	if !sh.Loaded() {
		sh.early = append(sh.early, txnCompletion{producerID, commit})
		sh.Unlock()
		return
	}
	mbs := sh.SnapshotLocked()
	sh.Unlock()
	for _, mb := range mbs {
		mb.do(func(g *Group, _ time.Time) { g.CompleteTxn(producerID, commit) })
	}
}

// txnCompletion is a marker that arrived while its partition loaded.
type txnCompletion struct {
	producerID int64
	commit     bool
}

// appendTxn implements host: append in a transactional batch of the
// producer, with no sequence (the coordinator writes it, as Kafka's
// group coordinator does).
func (mb *mailbox) appendTxn(producerID int64, epoch int16, recs []Record, complete func(now time.Time, err error)) {
	mb.appendBatch(batch.NewBuilder(batch.CodecNone).SetProducer(producerID, epoch, -1).SetTransactional(true), recs, complete)
}

// ---- loading

// applyTxn records a transactional commit read at log offset off.
func (ld *loader) applyTxn(producerID int64, off int64, key, value []byte) {
	d, ok, err := decodeRecord(key, value)
	if err != nil {
		ld.log.Warn("skipping malformed transactional __consumer_offsets record", "offset", off, "err", err)
		return
	}
	if !ok || !d.isOffset || d.offset == nil {
		return
	}
	if !ld.seen[d.group] {
		ld.seen[d.group] = true
		ld.order = append(ld.order, d.group)
	}
	byGroup := ld.txn[producerID]
	if byGroup == nil {
		byGroup = map[string]map[topicPartition]*offset{}
		ld.txn[producerID] = byGroup
	}
	m := byGroup[d.group]
	if m == nil {
		m = map[topicPartition]*offset{}
		byGroup[d.group] = m
	}
	d.offset.order = uint64(off)
	m[topicPartition{d.topic, d.partition}] = d.offset
}

// completeTxn applies a marker read while loading.
func (ld *loader) completeTxn(producerID int64, commit bool) {
	byGroup := ld.txn[producerID]
	delete(ld.txn, producerID)
	if !commit {
		return
	}
	for group, m := range byGroup {
		offs := ld.offs[group]
		if offs == nil {
			offs = map[topicPartition]*offset{}
			ld.offs[group] = offs
		}
		mergeNewer(offs, m)
	}
}
