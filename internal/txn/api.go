package txn

import (
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// dispatch runs fn on the transactional ID's owner. create makes the
// ID's mailbox when there is none; otherwise missing answers. A request
// that reached a mailbox after it left its shard (the ID expired, or
// the partition was resigned or reloaded) is dispatched again.
func (c *Coordinator) dispatch(txnID string, create bool, fail func(*kerr.Error), missing func(), fn func(t *txn, now time.Time)) {
	if !c.busy.Enter() {
		fail(kerr.NotCoordinator)
		return
	}
	defer c.busy.Release()
	sh, err := c.route(txnID)
	if err != nil {
		fail(err)
		return
	}
	mb, err := c.lookup(sh, txnID, create)
	switch {
	case err != nil:
		fail(err)
	case mb == nil:
		missing()
	default:
		redo := func() { c.dispatch(txnID, create, fail, missing, fn) }
		mb.request(func(t *txn, now time.Time) {
			if t.removed {
				redo()
				return
			}
			fn(t, now)
		}, redo)
	}
}

// InitProducerID answers InitProducerID for a transactional ID: a new
// producer ID, or the existing one with a bumped epoch, fencing the
// previous producer (its open transaction is aborted and the caller is
// told CONCURRENT_TRANSACTIONS, to retry).
func (c *Coordinator) InitProducerID(txnID string, req InitRequest, respond func(EndResult)) {
	switch {
	case txnID == "", req.halfExpected():
		respond(failEnd(kerr.InvalidRequest))
		return
	case req.TimeoutMs <= 0 || int64(req.TimeoutMs) > c.cfg.MaxTimeout.Milliseconds():
		respond(failEnd(kerr.InvalidTransactionTimeout))
		return
	}
	fail := func(e *kerr.Error) { respond(failEnd(e)) }
	c.dispatch(txnID, true, fail, nil, func(t *txn, now time.Time) { t.initProducerID(now, req, respond) })
}

// AddPartitions adds partitions to the producer's transaction
// (AddPartitionsToTxn, AddOffsetsToTxn with the group's
// __consumer_offsets partition). implicit is set for the additions of
// transactions v2: a produce v12+ or TxnOffsetCommit v5+ adds its
// partition itself (KIP-890).
func (c *Coordinator) AddPartitions(txnID string, pid int64, epoch int16, tps []TopicPartition, implicit bool, respond func(*kerr.Error)) {
	if txnID == "" {
		respond(kerr.InvalidRequest)
		return
	}
	tps = slices.Clone(tps)
	c.dispatch(txnID, false, respond, func() { respond(kerr.InvalidProducerIDMapping) },
		func(t *txn, now time.Time) { t.addPartitions(now, pid, epoch, tps, implicit, respond) })
}

// Verify reports, per partition, whether it is in the producer's open
// transaction: nil, or INVALID_TXN_STATE, or the producer's error for
// all (AddPartitionsToTxn v4+ VerifyOnly; a produce's first
// transactional batch on a partition under transactions v0/v1).
func (c *Coordinator) Verify(txnID string, pid int64, epoch int16, tps []TopicPartition, respond func([]*kerr.Error)) {
	all := func(err *kerr.Error) { respond(allErrs(len(tps), err)) }
	if txnID == "" {
		all(kerr.InvalidRequest)
		return
	}
	tps = slices.Clone(tps)
	c.dispatch(txnID, false, all, func() { all(kerr.InvalidProducerIDMapping) },
		func(t *txn, now time.Time) { t.verify(now, pid, epoch, tps, respond) })
}

// EndTxn commits or aborts the producer's transaction. tv2 is set for
// EndTxn v5+ (KIP-890): the epoch is bumped and the result carries the
// producer ID and epoch to continue with. The answer comes once the
// markers are written (or failed once: the outcome is decided).
func (c *Coordinator) EndTxn(txnID string, pid int64, epoch int16, commit, tv2 bool, respond func(EndResult)) {
	if txnID == "" {
		respond(failEnd(kerr.InvalidRequest))
		return
	}
	fail := func(e *kerr.Error) { respond(failEnd(e)) }
	c.dispatch(txnID, false, fail, func() { fail(kerr.InvalidProducerIDMapping) },
		func(t *txn, now time.Time) { t.endTxn(now, pid, epoch, commit, tv2, respond) })
}

// Described is a DescribeTransactions entry.
type Described struct {
	Err            *kerr.Error
	State          State
	ProducerID     int64
	ProducerEpoch  int16
	TimeoutMs      int32
	StartTimestamp int64
	Partitions     []TopicPartition
}

// Describe answers one transactional ID of DescribeTransactions.
func (c *Coordinator) Describe(txnID string, respond func(Described)) {
	if txnID == "" {
		respond(Described{Err: kerr.InvalidRequest})
		return
	}
	fail := func(e *kerr.Error) { respond(Described{Err: e}) }
	c.dispatch(txnID, false, fail, func() { fail(kerr.TransactionalIDNotFound) },
		func(t *txn, _ time.Time) { respond(t.describe()) })
}

// ListFilter selects ListTransactions entries; zero fields select all.
type ListFilter struct {
	States      []State
	ProducerIDs []int64
	// MinDuration selects open transactions running at least this
	// long (v1); negative: no filter.
	MinDuration time.Duration
	// Pattern selects transactional IDs (v2).
	Pattern *regexp.Regexp
}

// Listed is a ListTransactions entry.
type Listed struct {
	TransactionalID string
	ProducerID      int64
	State           State
}

// List returns the matching transactional IDs, sorted, each as its
// owner published it: every durable state change is published before
// the requests waiting on it are answered, so a client shown a state
// finds it listed (Kafka's list reads under the state lock); while some
// partition is still loading, none and COORDINATOR_LOAD_IN_PROGRESS, as
// Kafka's listTransactionStates answers (a partial list would miss the
// loading partitions' transactions without the caller knowing which).
func (c *Coordinator) List(f ListFilter) ([]Listed, *kerr.Error) {
	shards := c.shards.Load()
	if shards == nil {
		return nil, nil
	}
	for _, sh := range shards {
		if !sh.Loaded() {
			return nil, kerr.CoordinatorLoadInProgress
		}
	}
	nowMs := c.clock.Now().UnixMilli()
	var out []Listed
	for _, sh := range shards {
		for _, mb := range sh.Snapshot() {
			s := mb.summary.Load()
			switch {
			case !s.exists:
			case len(f.States) > 0 && !slices.Contains(f.States, s.state):
			case len(f.ProducerIDs) > 0 && !slices.Contains(f.ProducerIDs, s.producerID):
			case f.MinDuration >= 0 && (s.state != Ongoing || nowMs-s.startMs < f.MinDuration.Milliseconds()):
			case f.Pattern != nil && !f.Pattern.MatchString(mb.id):
			default:
				out = append(out, Listed{TransactionalID: mb.id, ProducerID: s.producerID, State: s.state})
			}
		}
	}
	slices.SortFunc(out, func(a, b Listed) int { return strings.Compare(a.TransactionalID, b.TransactionalID) })
	return out, nil
}
