package txn

import (
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Leadership of __transaction_state partitions (cluster mode).
//
// The broker tells the coordinator when it becomes the leader of a
// partition (Elect) and when it stops leading one (Resign), as Kafka's
// TransactionCoordinator.onElection and onResignation are told. An
// election loads the partition from its log, in the background, as
// Start does, and completes the transactions found prepared; its
// markers carry the leader epoch as their coordinator epoch, so a
// partition leader fences markers of the coordinator that led before
// (TRANSACTION_COORDINATOR_FENCED). A resignation drops the partition's
// transactional IDs at once, as
// TransactionStateManager.removeTransactionsForTxnTopicPartition and
// TransactionMarkerChannelManager.removeMarkersForTxnTopicPartition do.
// Each change starts a new generation of the partition (coord.Shard): a
// load begun for an older one stops and discards what it read, and the
// mailboxes of an older one are retired: a request that reaches one is
// routed again, and completions and timers that fire there later are
// dropped.

// leadership is an Elect or Resign made before Start.
type leadership struct {
	epoch   int32
	elected bool
}

// apply applies l to a shard not published yet.
func (l leadership) apply(sh *shard) {
	if l.elected {
		sh.ElectLocked(l.epoch)
	} else {
		sh.ResignLocked(l.epoch)
	}
}

// Elect makes this broker the coordinator of the transactional IDs of
// __transaction_state partition at leader epoch epoch: the partition is
// loaded from its log in the background (its IDs get
// COORDINATOR_LOAD_IN_PROGRESS meanwhile) and served once loaded;
// transactions found in PrepareCommit or PrepareAbort have their
// markers written, with epoch as the coordinator epoch, and complete;
// open ones time out from their recorded start, as before. What this
// coordinator held of the partition (an older leadership, loaded or
// loading) is dropped first. An epoch not newer than the last Elect or
// Resign of the partition is ignored. Before Start it is remembered:
// Start then treats the partition as this broker's, whatever its owned
// says.
func (c *Coordinator) Elect(partition int32, epoch int32) {
	c.leadershipChange(partition, leadership{epoch: epoch, elected: true})
}

// Resign ends this broker's coordination of the transactional IDs of
// __transaction_state partition, whose leadership moved on at leader
// epoch epoch: its IDs get NOT_COORDINATOR; parked requests and a state
// write in flight are answered NOT_COORDINATOR (the log's completion of
// that write is ignored when it comes); an EndTxn waiting for its
// markers is answered with the outcome, which its durable Prepare*
// decided and the next coordinator completes; marker retries and
// transaction timeouts stop, and a load in progress stops and is
// discarded. An epoch older than the last Elect or Resign of the
// partition is ignored. Before Start it is remembered, as for Elect.
func (c *Coordinator) Resign(partition int32, epoch int32) {
	c.leadershipChange(partition, leadership{epoch: epoch})
}

func (c *Coordinator) leadershipChange(partition int32, l leadership) {
	if !c.busy.Enter() {
		return
	}
	defer c.busy.Release()
	c.mu.Lock()
	shards := c.shards.Load()
	if shards == nil {
		// Before Start: the last call with the newest epoch wins, as
		// it would on a started shard.
		if c.preStart == nil {
			c.preStart = map[int32]leadership{}
		}
		prev, seen := c.preStart[partition]
		if !seen || l.epoch > prev.epoch || !l.elected && l.epoch == prev.epoch {
			c.preStart[partition] = l
		}
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	if partition < 0 || int(partition) >= len(shards) {
		c.logger.Warn("leadership change of a __transaction_state partition that does not exist", "partition", partition,
			"partitions", len(shards), "elected", l.elected, "epoch", l.epoch)
		return
	}
	if l.elected && c.draining.Load() {
		return // shutting down: nothing is loaded any more
	}
	sh := shards[partition]
	sh.Lock()
	var old []*mailbox
	var ok bool
	if l.elected {
		old, ok = sh.ElectLocked(l.epoch)
	} else {
		old, ok = sh.ResignLocked(l.epoch)
	}
	for _, mb := range old {
		mb.retired.Store(true)
	}
	sh.Unlock()
	if !ok {
		c.logger.Debug("stale __transaction_state leadership change ignored", "partition", partition, "elected", l.elected, "epoch", l.epoch)
		return
	}
	c.logger.Info("transaction coordinator leadership changed", "partition", partition, "elected", l.elected,
		"epoch", l.epoch, "transactional_ids_dropped", len(old))
	// Wake each retired mailbox so it unloads now, not when its next
	// message comes.
	for _, mb := range old {
		mb.do(func(*txn, time.Time) {})
	}
	if l.elected {
		c.shards.Reload(&c.busy, sh, c.load)
	}
}

// unload drops a retired mailbox's transaction, once, on the drain loop.
func (mb *mailbox) unload() {
	if mb.unloaded {
		return
	}
	mb.unloaded = true
	mb.step(func(t *txn, now time.Time) { t.unload(now) })
}

// unload ends the transaction on this coordinator: the marker retry
// stops; parked requests, then the state write in flight, are answered
// NOT_COORDINATOR (parked ones first, so none of them runs on the state
// this coordinator no longer owns); EndTxn calls waiting for the
// markers get the outcome, decided when Prepare* became durable (Kafka
// answers EndTxn then, and the next coordinator writes the markers).
func (t *txn) unload(now time.Time) {
	if t.retry != nil {
		t.retry.Stop()
		t.retry = nil
	}
	t.failParked(kerr.NotCoordinator)
	if t.writing {
		t.written(now, kerr.NotCoordinator)
	}
	t.failParked(kerr.NotCoordinator)
	t.answerEnd(EndResult{ProducerID: t.finalPID, ProducerEpoch: t.finalEpoch})
	t.markersInFlight = false
	t.removed = true
}
