package txn

import (
	"errors"
	"math"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/gregor-streaming/gregor/internal/batch"
)

// txn is one transactional ID's state, owned by its mailbox: the
// durable meta plus what is in flight.
type txn struct {
	mb *mailbox
	id string
	// exists is false until the first InitProducerID is durable, and
	// after the ID expired; removed is set once the mailbox left its
	// shard, so requests that reached it late go to a new one.
	exists, removed bool
	meta

	// writing is set while a state write is in flight, and writeDone
	// is what runs when it completes (written).
	writing   bool
	writeDone func(now time.Time, err error)
	// markersInFlight is set while WriteMarkers runs; markerPending
	// are the partitions whose markers are still to be written (nil:
	// all of them), markerFailures counts failed rounds of the current
	// completion, and retry is the timer of the next attempt.
	markersInFlight bool
	markerPending   []TopicPartition
	markerFailures  int
	retry           Timer
	// parked are requests that arrived while the transaction was busy;
	// they run again, in order, once it settles.
	parked []parked
	// endWaiters are the EndTxn responses sent once the transaction
	// completed (or its markers failed: the outcome is decided once
	// Prepare* is durable).
	endWaiters []func(EndResult)
	// final is the producer ID and epoch the completing transaction
	// ends with, for the EndTxn response.
	finalPID   int64
	finalEpoch int16
}

type parked struct {
	run  func(now time.Time)
	fail func(*kerr.Error)
}

// busy reports whether a request must wait: a state write in flight, or
// a transaction completing (markers or its Complete* record).
func (t *txn) busy() bool {
	return t.writing || t.state == PrepareCommit || t.state == PrepareAbort
}

// idle reports whether nothing is in flight or waiting.
func (t *txn) idle() bool {
	return !t.writing && !t.markersInFlight && len(t.parked) == 0 && len(t.endWaiters) == 0 && t.retry == nil
}

// admit reports whether a request may run now. Otherwise it is parked
// until the transaction settles, or answered CONCURRENT_TRANSACTIONS
// while markers keep failing (Kafka's answer to every request then),
// or NOT_COORDINATOR while shutting down.
func (t *txn) admit(run func(now time.Time), fail func(*kerr.Error)) bool {
	if t.mb.c.draining.Load() {
		fail(kerr.NotCoordinator)
		return false
	}
	if !t.busy() {
		return true
	}
	if !t.writing && t.markerFailures > 0 {
		fail(kerr.ConcurrentTransactions)
		return false
	}
	t.parked = append(t.parked, parked{run: run, fail: fail})
	return false
}

// runParked runs the parked requests once the transaction is not busy.
func (t *txn) runParked(now time.Time) {
	if len(t.parked) == 0 || (t.busy() && t.markerFailures == 0) {
		return
	}
	ps := t.parked
	t.parked = nil
	for _, p := range ps {
		p.run(now)
	}
}

func (t *txn) failParked(err *kerr.Error) {
	ps := t.parked
	t.parked = nil
	for _, p := range ps {
		p.fail(err)
	}
}

// writeError maps a failed __transaction_state write to what clients
// are told, as Kafka's TransactionStateManager does.
func writeError(err error) *kerr.Error {
	var ke *kerr.Error
	if !errors.As(err, &ke) {
		return kerr.UnknownServerError
	}
	switch ke {
	case kerr.UnknownTopicOrPartition, kerr.NotEnoughReplicas, kerr.NotEnoughReplicasAfterAppend, kerr.RequestTimedOut:
		return kerr.CoordinatorNotAvailable
	case kerr.NotLeaderForPartition, kerr.KafkaStorageError:
		return kerr.NotCoordinator
	case kerr.MessageTooLarge, kerr.RecordListTooLarge:
		return kerr.UnknownServerError
	default:
		return ke
	}
}

// write appends next to __transaction_state and installs it once
// durable; done runs then on the owner, and parked requests after it.
// A nil next writes a tombstone: the transactional ID is removed.
func (t *txn) write(now time.Time, next *meta, done func(now time.Time, err error)) {
	c := t.mb.c
	rec := batch.Record{Timestamp: now.UnixMilli(), Key: recordKey(t.id)}
	if next != nil {
		rec.Value = encodeValue(next)
	}
	b := batch.NewBuilder(batch.CodecNone)
	b.Add(rec)
	data, err := b.Build()
	if err != nil {
		done(now, err)
		return
	}
	if t.mb.retired.Load() {
		// The partition is another broker's, or reloading.
		done(now, kerr.NotCoordinator)
		return
	}
	t.writing = true
	t.writeDone = func(now time.Time, err error) {
		if err == nil {
			if next == nil {
				t.exists, t.meta = false, meta{}
			} else {
				t.exists, t.meta = true, *next
			}
			// Before anyone is answered: a client told of the new
			// state finds it in ListTransactions.
			t.mb.publish()
		}
		done(now, err)
		t.runParked(now)
	}
	c.busy.Acquire()
	c.log.Append(t.mb.sh.Partition, data, func(err error) {
		// Dropped by a retired mailbox, whose unload answered the
		// write already.
		t.mb.do(func(t *txn, now time.Time) { t.written(now, err) })
		c.busy.Release()
	})
}

// written completes the state write in flight.
func (t *txn) written(now time.Time, err error) {
	done := t.writeDone
	t.writing, t.writeDone = false, nil
	if done != nil {
		done(now, err)
	}
}

// ---- InitProducerID

// InitResult answers InitProducerID and EndTxn (v5+ returns the
// producer ID and epoch to continue with).
type InitResult = EndResult

// EndResult is a producer ID and epoch, or an error.
type EndResult struct {
	ProducerID    int64
	ProducerEpoch int16
	Err           *kerr.Error
}

func failEnd(err *kerr.Error) EndResult {
	return EndResult{ProducerID: -1, ProducerEpoch: -1, Err: err}
}

// InitRequest is an InitProducerID with a transactional ID.
type InitRequest struct {
	TimeoutMs int32
	// ProducerID and ProducerEpoch are set by a producer that recovers
	// its transactional state (KIP-360); both -1 otherwise. Any other
	// pair is the producer's claim, checked as Kafka does (an epoch
	// that is not the current or last one is fenced).
	ProducerID    int64
	ProducerEpoch int16
}

func (r *InitRequest) hasExpected() bool { return r.ProducerID != -1 || r.ProducerEpoch != -1 }

// halfExpected reports a producer ID without an epoch or the reverse,
// which Kafka refuses as INVALID_REQUEST.
func (r *InitRequest) halfExpected() bool { return (r.ProducerID == -1) != (r.ProducerEpoch == -1) }

func (t *txn) initProducerID(now time.Time, req InitRequest, respond func(EndResult)) {
	if !t.admit(func(now time.Time) { t.initProducerID(now, req, respond) }, func(e *kerr.Error) { respond(failEnd(e)) }) {
		return
	}
	c := t.mb.c
	nowMs := now.UnixMilli()
	if !t.exists {
		pid, err := c.allocPID()
		if err != nil {
			respond(failEnd(err))
			return
		}
		next := &meta{producerID: pid, epoch: 0, lastEpoch: noProducerEpoch, prevProducerID: -1, nextProducerID: -1,
			timeoutMs: req.TimeoutMs, state: Empty, startMs: -1, updateMs: nowMs}
		t.write(now, next, func(_ time.Time, err error) {
			if err != nil {
				respond(failEnd(writeError(err)))
				return
			}
			respond(EndResult{ProducerID: pid, ProducerEpoch: 0})
		})
		return
	}
	if req.hasExpected() && !(t.epoch == noProducerEpoch || req.ProducerID == t.producerID ||
		req.ProducerID == t.prevProducerID && epochExhausted(req.ProducerEpoch)) {
		respond(failEnd(kerr.ProducerFenced))
		return
	}
	switch t.state {
	case Empty, CompleteCommit, CompleteAbort:
		next := t.meta.clone()
		next.state, next.partitions, next.startMs, next.updateMs = Empty, nil, -1, nowMs
		next.timeoutMs = req.TimeoutMs
		next.nextProducerID = -1
		switch {
		case epochExhausted(t.epoch) && (!req.hasExpected() || req.ProducerEpoch == t.epoch):
			// Out of epochs: a new producer ID (Kafka's
			// prepareProducerIdRotation).
			pid, err := c.allocPID()
			if err != nil {
				respond(failEnd(err))
				return
			}
			next.prevProducerID, next.producerID, next.epoch, next.lastEpoch = t.producerID, pid, 0, noProducerEpoch
			if req.hasExpected() {
				next.lastEpoch = t.epoch
			}
		case !req.hasExpected():
			next.epoch, next.lastEpoch = t.epoch+1, noProducerEpoch
		case t.epoch == noProducerEpoch || req.ProducerEpoch == t.epoch:
			next.epoch, next.lastEpoch = t.epoch+1, t.epoch
		case req.ProducerEpoch == t.lastEpoch:
			// A retry of the call that bumped the epoch: its
			// answer again, without another bump.
		default:
			respond(failEnd(kerr.ProducerFenced))
			return
		}
		t.write(now, &next, func(_ time.Time, err error) {
			if err != nil {
				respond(failEnd(writeError(err)))
				return
			}
			respond(EndResult{ProducerID: next.producerID, ProducerEpoch: next.epoch})
		})
	case Ongoing:
		// Fence the current producer: abort its transaction with a
		// bumped epoch, and have this one retry (it then bumps the
		// epoch once more), as Kafka does.
		c.logger.Info("fencing a transactional producer: aborting its open transaction",
			"transactional_id", t.id, "producer_id", t.producerID, "epoch", t.epoch)
		t.fenceAbort(now, func(err *kerr.Error) {
			if err == nil {
				err = kerr.ConcurrentTransactions
			}
			respond(failEnd(err))
		})
	default:
		respond(failEnd(kerr.ConcurrentTransactions))
	}
}

// bumped returns e+n, saturating at MaxInt16, and whether it saturated
// (the producer ID must then rotate).
func bumped(e int16, n int) (int16, bool) {
	if int(e)+n > math.MaxInt16 {
		return math.MaxInt16, true
	}
	return e + int16(n), false
}

// fenceAbort aborts the open transaction with a bumped epoch, so the
// producer that had it is fenced (Kafka's PrepareEpochFence then
// PrepareAbort). Under transactions v2 the abort bumps once more, as
// every v2 completion does.
func (t *txn) fenceAbort(now time.Time, done func(*kerr.Error)) {
	next := t.meta.clone()
	next.state, next.updateMs = PrepareAbort, now.UnixMilli()
	f, over := bumped(t.epoch, 1)
	next.epoch, next.lastEpoch = f, noProducerEpoch
	if t.tv2 {
		e, over2 := bumped(f, 1)
		next.epoch, next.lastEpoch = e, f
		over = over || over2
	}
	if over && !t.rotate(&next, done) {
		return
	}
	t.prepareEnd(now, &next, nil, done)
}

// rotate gives next a producer ID to continue with once its completion
// is durable: the epoch ran out.
func (t *txn) rotate(next *meta, done func(*kerr.Error)) bool {
	pid, err := t.mb.c.allocPID()
	if err != nil {
		done(err)
		return false
	}
	next.nextProducerID = pid
	return true
}

// allocPID allocates a new producer ID; a failure is logged and
// answered COORDINATOR_NOT_AVAILABLE.
func (c *Coordinator) allocPID() (int64, *kerr.Error) {
	pid, err := c.newPID()
	if err != nil {
		c.logger.Error("allocating a producer ID", "err", err)
		return 0, kerr.CoordinatorNotAvailable
	}
	return pid, nil
}

// prepareEnd writes next (PrepareCommit or PrepareAbort); once durable,
// done is told and the markers are written. end, when set, answers the
// EndTxn once the transaction completed.
func (t *txn) prepareEnd(now time.Time, next *meta, end func(EndResult), done func(*kerr.Error)) {
	t.write(now, next, func(now time.Time, err error) {
		if err != nil {
			done(writeError(err))
			return
		}
		t.finalPID, t.finalEpoch = t.producerID, t.epoch
		if t.nextProducerID >= 0 {
			t.finalPID, t.finalEpoch = t.nextProducerID, 0
		}
		t.markerPending, t.markerFailures = nil, 0
		if end != nil {
			t.endWaiters = append(t.endWaiters, end)
		}
		done(nil)
		t.writeMarkers(now)
	})
}

// ---- AddPartitionsToTxn, AddOffsetsToTxn, verification

func (t *txn) checkProducer(pid int64, epoch int16) *kerr.Error {
	switch {
	case !t.exists || t.producerID != pid:
		return kerr.InvalidProducerIDMapping
	case t.epoch != epoch:
		return kerr.ProducerFenced
	}
	return nil
}

// addPartitions adds partitions to the transaction, starting it when
// none is open. implicit marks an addition a produce or transactional
// offset commit made under transactions v2 (KIP-890).
func (t *txn) addPartitions(now time.Time, pid int64, epoch int16, tps []TopicPartition, implicit bool, respond func(*kerr.Error)) {
	if !t.admit(func(now time.Time) { t.addPartitions(now, pid, epoch, tps, implicit, respond) }, respond) {
		return
	}
	if err := t.checkProducer(pid, epoch); err != nil {
		respond(err)
		return
	}
	switch t.state {
	case Empty, CompleteCommit, CompleteAbort, Ongoing:
	default:
		respond(kerr.InvalidTxnState)
		return
	}
	parts, added := t.withPartitions(tps)
	if t.state == Ongoing && !added && (t.tv2 || !implicit) {
		respond(nil)
		return
	}
	next := t.meta.clone()
	next.partitions, next.updateMs = parts, now.UnixMilli()
	if t.state != Ongoing {
		next.state, next.startMs, next.tv2 = Ongoing, now.UnixMilli(), implicit
	} else if implicit {
		next.tv2 = true
	}
	t.write(now, &next, func(_ time.Time, err error) {
		if err != nil {
			respond(writeError(err))
			return
		}
		respond(nil)
	})
}

// verify checks that the partitions are in the open transaction of this
// producer (AddPartitionsToTxn v4+ VerifyOnly, and produce before the
// first transactional batch of a partition): INVALID_TXN_STATE for
// those that are not.
func (t *txn) verify(now time.Time, pid int64, epoch int16, tps []TopicPartition, respond func([]*kerr.Error)) {
	all := func(err *kerr.Error) { respond(allErrs(len(tps), err)) }
	if !t.admit(func(now time.Time) { t.verify(now, pid, epoch, tps, respond) }, all) {
		return
	}
	if err := t.checkProducer(pid, epoch); err != nil {
		all(err)
		return
	}
	errs := make([]*kerr.Error, len(tps))
	for i, tp := range tps {
		if t.state != Ongoing || !t.hasPartition(tp) {
			errs[i] = kerr.InvalidTxnState
		}
	}
	respond(errs)
}

// allErrs returns n copies of err.
func allErrs(n int, err *kerr.Error) []*kerr.Error {
	errs := make([]*kerr.Error, n)
	for i := range errs {
		errs[i] = err
	}
	return errs
}

// ---- EndTxn

// endTxn ends the transaction. tv2 is set for EndTxn v5+: the epoch is
// bumped, and retries are recognised by the epoch before the bump
// (Kafka's endTransaction; v0-4 follow endTransactionWithTV1).
func (t *txn) endTxn(now time.Time, pid int64, epoch int16, commit, tv2 bool, respond func(EndResult)) {
	if !t.admit(func(now time.Time) { t.endTxn(now, pid, epoch, commit, tv2, respond) }, func(e *kerr.Error) { respond(failEnd(e)) }) {
		return
	}
	if !t.exists {
		respond(failEnd(kerr.InvalidProducerIDMapping))
		return
	}
	current := func() { respond(EndResult{ProducerID: t.producerID, ProducerEpoch: t.epoch}) }
	invalid := func() { respond(failEnd(kerr.InvalidTxnState)) }
	if !tv2 {
		switch {
		case t.producerID != pid:
			respond(failEnd(kerr.InvalidProducerIDMapping))
		case t.epoch != epoch:
			respond(failEnd(kerr.ProducerFenced))
		case t.state == Ongoing:
			t.prepareClientEnd(now, commit, false, respond)
		case t.state == CompleteCommit && commit, t.state == CompleteAbort && !commit:
			current()
		default:
			invalid()
		}
		return
	}
	retryOnOverflow := t.prevProducerID == pid && epoch == math.MaxInt16-1 && t.epoch == 0
	retryOnBump := t.epoch == epoch+1
	var validEpoch bool
	switch t.state {
	case CompleteCommit, CompleteAbort:
		validEpoch = retryOnBump || retryOnOverflow || epoch == t.epoch
	default:
		validEpoch = epoch == t.epoch
	}
	retry := retryOnBump || retryOnOverflow
	switch {
	case t.producerID != pid && !retryOnOverflow:
		respond(failEnd(kerr.InvalidProducerIDMapping))
	case !validEpoch:
		respond(failEnd(kerr.ProducerFenced))
	case t.state == Ongoing:
		t.prepareClientEnd(now, commit, true, respond)
	case t.state == CompleteCommit && commit && retry, t.state == CompleteAbort && !commit && retry:
		current()
	case !commit && !retry && (t.state == Empty || t.state == CompleteCommit || t.state == CompleteAbort):
		// KIP-890: aborting without an open transaction bumps the
		// epoch, so the producer can recover with a fresh one.
		t.prepareClientEnd(now, false, true, respond)
	default:
		invalid()
	}
}

func (t *txn) prepareClientEnd(now time.Time, commit, tv2 bool, respond func(EndResult)) {
	next := t.meta.clone()
	next.state, next.updateMs = PrepareAbort, now.UnixMilli()
	if commit {
		next.state = PrepareCommit
	}
	if tv2 {
		next.tv2 = true
		e, over := bumped(t.epoch, 1)
		next.epoch, next.lastEpoch = e, t.epoch
		if (over || epochExhausted(t.epoch)) && !t.rotate(&next, func(err *kerr.Error) { respond(failEnd(err)) }) {
			return
		}
	}
	t.prepareEnd(now, &next, respond, func(err *kerr.Error) {
		if err != nil {
			respond(failEnd(err))
		}
	})
}

// ---- markers and completion

// writeMarkers has the markers of the completing transaction written to
// the partitions still without one.
func (t *txn) writeMarkers(now time.Time) {
	c := t.mb.c
	if t.retry != nil {
		t.retry.Stop()
		t.retry = nil
	}
	if t.mb.retired.Load() {
		return // another broker completes it, after loading it
	}
	parts := t.markerPending
	if parts == nil {
		parts = t.partitions
	}
	if len(parts) == 0 {
		t.complete(now)
		return
	}
	m := Markers{
		ProducerID: t.producerID, ProducerEpoch: t.epoch, Commit: t.state == PrepareCommit,
		CoordinatorEpoch: t.mb.coordEpoch, Partitions: parts,
	}
	if t.tv2 {
		m.TransactionVersion = 2
	}
	t.markersInFlight = true
	c.busy.Acquire()
	c.markers.WriteMarkers(m, func(errs []error) {
		t.mb.do(func(t *txn, now time.Time) { t.markersDone(now, m, errs) })
		c.busy.Release()
	})
}

func (t *txn) markersDone(now time.Time, m Markers, errs []error) {
	c := t.mb.c
	t.markersInFlight = false
	var failed []TopicPartition
	var first error
	for i, err := range errs {
		if err != nil {
			failed = append(failed, m.Partitions[i])
			if first == nil {
				first = err
			}
		}
	}
	if len(failed) == 0 {
		t.markerPending = []TopicPartition{}
		t.complete(now)
		return
	}
	t.markerPending = failed
	t.markerFailures++
	if t.markerFailures == 1 || t.markerFailures%50 == 0 {
		c.logger.Warn("writing transaction markers failed; retrying", "transactional_id", t.id,
			"partitions", len(failed), "attempt", t.markerFailures, "err", first)
	}
	// The outcome was decided when Prepare* became durable: answer
	// EndTxn now rather than wait for a partition to recover.
	t.answerEnd(EndResult{ProducerID: t.finalPID, ProducerEpoch: t.finalEpoch})
	t.scheduleRetry(func(t *txn, now time.Time) {
		if t.state == PrepareCommit || t.state == PrepareAbort {
			t.writeMarkers(now)
		}
	})
	t.runParked(now)
}

func (t *txn) scheduleRetry(fn func(t *txn, now time.Time)) {
	c := t.mb.c
	if c.draining.Load() || t.mb.retired.Load() {
		return
	}
	var timer Timer
	timer = c.clock.AfterFunc(c.cfg.MarkerRetryBackoff, func() {
		if !c.busy.Enter() {
			return
		}
		defer c.busy.Release()
		t.mb.do(func(t *txn, now time.Time) {
			if t.retry != timer {
				return
			}
			t.retry = nil
			fn(t, now)
		})
	})
	t.retry = timer
}

func (t *txn) answerEnd(r EndResult) {
	ws := t.endWaiters
	t.endWaiters = nil
	for _, w := range ws {
		w(r)
	}
}

// complete writes CompleteCommit or CompleteAbort once every marker is
// durable, rotating the producer ID if the epoch ran out.
func (t *txn) complete(now time.Time) {
	c := t.mb.c
	next := t.meta.clone()
	next.state, next.partitions, next.updateMs = CompleteAbort, nil, now.UnixMilli()
	if t.state == PrepareCommit {
		next.state = CompleteCommit
	}
	if t.nextProducerID >= 0 {
		next.prevProducerID, next.producerID, next.epoch, next.lastEpoch = t.producerID, t.nextProducerID, 0, noProducerEpoch
		next.nextProducerID = -1
	}
	t.write(now, &next, func(now time.Time, err error) {
		if err != nil {
			c.logger.Warn("writing a transaction's completion failed; retrying", "transactional_id", t.id, "err", err)
			t.answerEnd(EndResult{ProducerID: t.finalPID, ProducerEpoch: t.finalEpoch})
			t.markerFailures = max(t.markerFailures, 1)
			t.scheduleRetry(func(t *txn, now time.Time) {
				if t.state == PrepareCommit || t.state == PrepareAbort {
					t.complete(now)
				}
			})
			return
		}
		t.markerPending, t.markerFailures = nil, 0
		t.answerEnd(EndResult{ProducerID: t.producerID, ProducerEpoch: t.epoch})
	})
}

// ---- timeouts and expiry

func (t *txn) sweep(now time.Time) {
	c := t.mb.c
	if !t.exists || t.busy() || c.draining.Load() {
		return
	}
	nowMs := now.UnixMilli()
	switch t.state {
	case Ongoing:
		if nowMs > t.startMs+int64(t.timeoutMs) {
			c.logger.Info("aborting a transaction past its timeout", "transactional_id", t.id,
				"producer_id", t.producerID, "epoch", t.epoch, "timeout_ms", t.timeoutMs)
			t.fenceAbort(now, func(err *kerr.Error) {
				if err != nil {
					c.logger.Warn("aborting a timed-out transaction failed", "transactional_id", t.id, "err", err)
				}
			})
		}
	case Empty, CompleteCommit, CompleteAbort:
		if c.cfg.IDExpiration > 0 && nowMs-t.updateMs >= c.cfg.IDExpiration.Milliseconds() {
			c.logger.Info("transactional ID expired", "transactional_id", t.id, "producer_id", t.producerID)
			t.write(now, nil, func(_ time.Time, err error) {
				if err != nil {
					c.logger.Warn("removing an expired transactional ID failed", "transactional_id", t.id, "err", err)
				}
			})
		}
	}
}

// describe answers DescribeTransactions.
func (t *txn) describe() Described {
	if !t.exists {
		return Described{Err: kerr.TransactionalIDNotFound}
	}
	return Described{
		State: t.state, ProducerID: t.producerID, ProducerEpoch: t.epoch, TimeoutMs: t.timeoutMs,
		StartTimestamp: t.startMs, Partitions: append([]TopicPartition(nil), t.partitions...),
	}
}
