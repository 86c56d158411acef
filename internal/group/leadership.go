package group

import (
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/gregor-streaming/gregor/internal/coord"
)

// Leadership of __consumer_offsets partitions (cluster mode).
//
// The broker tells the coordinator when it becomes the leader of a
// partition (Elect) and when it stops leading one (Resign), as Kafka's
// GroupCoordinator.onElection and onResignation are told. An election
// loads the partition from its log, in the background, as Start does;
// a resignation drops the partition's groups at once, answering what
// waits on them NOT_COORDINATOR so their clients find the new
// coordinator. Each change starts a new generation of the partition
// (coord.Shard): a load begun for an older one stops and discards what
// it read, and the mailboxes of an older one are retired: a request
// that reaches one is routed again, and completions and timers that
// fire there later are dropped.

// leadership is an Elect or Resign made before Start.
type leadership struct {
	epoch   int32
	elected bool
}

// apply applies l to a shard not published yet.
func (l leadership) apply(sh *coord.Shard[*mailbox]) {
	if l.elected {
		sh.ElectLocked(l.epoch)
	} else {
		sh.ResignLocked(l.epoch)
	}
}

// Elect makes this broker the coordinator of the groups of
// __consumer_offsets partition at leader epoch epoch: the partition is
// loaded from its log in the background (its groups get
// COORDINATOR_LOAD_IN_PROGRESS meanwhile) and served once loaded, with
// their committed offsets, and the members of stable groups given a
// full session timeout from the load, as Kafka's
// GroupMetadataManager.loadGroupsForPartition. What this coordinator
// held of the partition (an older leadership, loaded or loading) is
// dropped first. An epoch not newer than the last Elect or Resign of
// the partition is ignored. Before Start it is remembered: Start then
// treats the partition as this broker's, whatever its owned says.
func (c *Coordinator) Elect(partition int32, epoch int32) {
	c.leadershipChange(partition, leadership{epoch: epoch, elected: true})
}

// Resign ends this broker's coordination of the groups of
// __consumer_offsets partition, whose leadership moved on at leader
// epoch epoch, as Kafka's GroupCoordinator.onResignation: its groups
// get NOT_COORDINATOR, parked JoinGroup and SyncGroup requests and
// writes in flight are answered NOT_COORDINATOR (the log's completions
// of those writes are ignored when they come), the groups' timers stop,
// and a load in progress stops and is discarded. An epoch older than
// the last Elect or Resign of the partition is ignored. Before Start it
// is remembered, as for Elect.
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
		c.logger.Warn("leadership change of a __consumer_offsets partition that does not exist", "partition", partition,
			"partitions", len(shards), "elected", l.elected, "epoch", l.epoch)
		return
	}
	if l.elected && c.isDraining() {
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
	if ok {
		// Markers seen by the previous generation are in the log the
		// next load replays.
		sh.early = nil
		for _, mb := range old {
			mb.retired.Store(true)
		}
	}
	sh.Unlock()
	if !ok {
		c.logger.Debug("stale __consumer_offsets leadership change ignored", "partition", partition, "elected", l.elected, "epoch", l.epoch)
		return
	}
	c.logger.Info("group coordinator leadership changed", "partition", partition, "elected", l.elected, "epoch", l.epoch, "groups_dropped", len(old))
	// Wake each retired mailbox so it unloads its group now, not when
	// its next message comes.
	for _, mb := range old {
		mb.do(func(*Group, time.Time) {})
	}
	if l.elected {
		c.shards.Reload(&c.busy, sh, c.load)
	}
}

// unload drops a retired mailbox's group, once, on the drain loop.
func (mb *mailbox) unload() {
	if mb.unloaded {
		return
	}
	mb.unloaded = true
	mb.stopTimer()
	mb.step(func(g *Group, now time.Time) { g.unload(now) })
	mb.publish()
}

// unload ends the group on this coordinator, as Kafka's
// GroupMetadataManager.removeGroupsForPartition and
// GroupCoordinator.onGroupUnloaded: the group is Dead, the parked
// JoinGroup and SyncGroup requests of its members are answered
// NOT_COORDINATOR, and so are its writes in flight (a write the log
// already completed, waiting behind an earlier one, keeps its outcome),
// in order. Every deadline is cleared: nothing fires for it any more.
func (g *Group) unload(now time.Time) {
	for _, m := range g.order {
		g.invokeJoin(m, joinError(m.id, kerr.NotCoordinator))
		g.invokeSync(m, SyncResult{Err: kerr.NotCoordinator})
	}
	g.transition(now, Dead)
	// A completion's callback does not write on a Dead group; should
	// one, the loop answers that write too (the retired mailbox does
	// not send it to the log).
	for len(g.writes) > 0 {
		ws := g.writes
		g.writes = nil
		for _, w := range ws {
			err := w.err
			if !w.finished {
				err = kerr.NotCoordinator
			}
			w.done(now, err)
		}
	}
	for _, m := range g.order {
		m.heartbeatDeadline = time.Time{}
	}
	if g.consumer != nil {
		for _, m := range g.consumer.members {
			m.sessionDeadline, m.rebalanceDeadline = time.Time{}, time.Time{}
		}
	}
	clear(g.pending)
	g.joinDeadline, g.syncDeadline = time.Time{}, time.Time{}
}
