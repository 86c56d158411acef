package broker

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/gregor-streaming/gregor/internal/metadata"
)

// controllerInterval is how often the active controller looks for
// brokers whose session expired. Kafka's QuorumController fences a
// broker when its heartbeat lease (broker.session.timeout.ms, 9 s by
// default) runs out; checking twice a second fences it at most half a
// second late.
const controllerInterval = 500 * time.Millisecond

// runController is the active controller's leader election (Kafka's
// ReplicationControlManager, docs/CLUSTER.md step 5): while this node
// leads the metadata quorum, every controllerInterval it fences the
// brokers it has not heard from for broker.session.timeout.ms, moves
// the leadership of the partitions they led to a live replica of the
// ISR, removes them from every ISR, and elects a leader for offline
// partitions whose ISR has a live member again. Cluster mode only; it
// returns when the broker closes.
func (b *Broker) runController() {
	t := time.NewTicker(controllerInterval)
	defer t.Stop()
	var lastBalance time.Time
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-t.C:
		}
		// Not while closing: a broker shutting down moves its
		// leaderships away (moveLeadershipsAway) and must not elect
		// itself again.
		if b.meta.Controller() != b.nodeID || b.closed.Load() || b.shuttingDown.Load() {
			lastBalance = time.Time{}
			continue
		}
		b.electLeaders()
		b.completeReassignments()
		cfg := b.Config()
		every := time.Duration(cfg.Int("leader.imbalance.check.interval.seconds")) * time.Second
		if lastBalance.IsZero() {
			// Just became the controller: a full interval first, as
			// Kafka's controller schedules its first check.
			lastBalance = time.Now()
		} else if cfg.Bool("auto.leader.rebalance.enable") && time.Since(lastBalance) >= every {
			lastBalance = time.Now()
			b.balanceLeaders()
		}
	}
}

// balanceLeaders is Kafka's automatic leader rebalance
// (auto.leader.rebalance.enable): every partition whose preferred
// replica, the first of its replicas, is live and in the ISR but does
// not lead, is led by it again. Leaderships moved by failures and
// controlled shutdowns so spread back over the brokers as they return.
func (b *Broker) balanceLeaders() {
	before, recs := b.controllerUpdate("preferred leader election", preferredRecords)
	b.logPartitionChanges(before, recs, "preferred replica elected")
}

// preferredRecords returns the changes that make every partition of img
// whose preferred replica can lead (preferredChange) led by it, in
// topic name order.
func preferredRecords(img *metadata.Image, live func(int32) bool) []metadata.Record {
	var recs []metadata.Record
	for _, name := range img.TopicNames() {
		t := img.Topics[name]
		for _, p := range t.Partitions {
			if c, err := preferredChange(p, live); err == nil {
				c.TopicID = t.ID
				recs = append(recs, metadata.Record{PartitionChange: c})
			}
		}
	}
	return recs
}

// preferredChange is the change electing p's preferred replica, the
// first of its replicas: ELECTION_NOT_NEEDED when it leads already,
// PREFERRED_LEADER_NOT_AVAILABLE when it is not live or not in the ISR
// (it may lack committed records).
func preferredChange(p *metadata.Partition, live func(int32) bool) (*metadata.PartitionChangeRecord, *kerr.Error) {
	if len(p.Replicas) == 0 {
		return nil, kerr.PreferredLeaderNotAvailable
	}
	preferred := p.Replicas[0]
	switch {
	case p.Leader == preferred:
		return nil, kerr.ElectionNotNeeded
	case !live(preferred) || !slices.Contains(p.ISR, preferred):
		return nil, kerr.PreferredLeaderNotAvailable
	}
	return &metadata.PartitionChangeRecord{Partition: p.Partition, Leader: leaderRef(preferred)}, nil
}

// uncleanChange is the change of an unclean election of p (ElectLeaders
// of type UNCLEAN): ELECTION_NOT_NEEDED when its leader is live;
// otherwise the first live replica of its ISR leads, or, with none, the
// first live replica, alone in the ISR (records acknowledged may be
// lost); ELIGIBLE_LEADERS_NOT_AVAILABLE when no replica is live.
func uncleanChange(p *metadata.Partition, live func(int32) bool) (*metadata.PartitionChangeRecord, *kerr.Error) {
	if p.Leader >= 0 && live(p.Leader) {
		return nil, kerr.ElectionNotNeeded
	}
	c := electPartition(p, live, func() bool { return true })
	if c == nil || c.Leader == nil || *c.Leader < 0 {
		return nil, kerr.EligibleLeadersNotAvailable
	}
	return c, nil
}

// electLeaders commits the records fenceRecords and electionRecords
// find for the current image, if any, and logs them.
func (b *Broker) electLeaders() {
	before, recs := b.controllerUpdate("leader election", func(img *metadata.Image, live func(int32) bool) []metadata.Record {
		return append(fenceRecords(img, live), electionRecords(img, live, b.uncleanElection)...)
	})
	b.logPartitionChanges(before, recs, "")
}

// controllerUpdate commits what compute finds in the current image, as
// the active controller, and returns the image it was computed on and
// the records committed (none when there was nothing to do, this node is
// not the controller, or the update failed, which is logged as what's).
// It looks first without the store's lock: nearly every tick finds
// nothing to do, and Update serializes with every other update. Inside
// Update compute runs again on the image the batch will follow: a batch
// another node committed meanwhile (an ISR change, a new topic) makes it
// compute again on the newer image.
func (b *Broker) controllerUpdate(what string, compute func(img *metadata.Image, live func(int32) bool) []metadata.Record) (*metadata.Image, []metadata.Record) {
	img := b.meta.Image()
	live := b.brokerLiveness(img)
	if live == nil || len(compute(img, live)) == 0 {
		return nil, nil
	}
	var before *metadata.Image
	var recs []metadata.Record
	_, err := b.meta.Update(func(img *metadata.Image) ([]metadata.Record, error) {
		before, recs = img, nil
		live := b.brokerLiveness(img)
		if live == nil {
			return nil, nil // no longer the controller
		}
		recs = compute(img, live)
		return recs, nil
	})
	if err != nil {
		if b.ctx.Err() == nil {
			b.log.Warn(what+" not committed; retrying at the next check", "err", err)
		}
		return nil, nil
	}
	return before, recs
}

// brokerLiveness returns which brokers the active controller deems
// live, for the brokers img names (registered, or a replica of some
// partition) and this one; nil when this node is not the controller, as
// only the Raft leader hears from every voter.
//
// A broker is live when the controller heard from it within
// broker.session.timeout.ms: every voter answers the leader's
// heartbeats every Raft tick, so Raft's messages are the broker
// heartbeats of Kafka's BrokerHeartbeatManager. A controller just
// elected had heard only from the old leader, so it counts from its
// election: it fences nobody during its first session timeout. This
// broker is always live (it is running this). Every broker is a voter
// today; one that is not would never be heard from, and so be fenced.
func (b *Broker) brokerLiveness(img *metadata.Image) func(int32) bool {
	since := b.meta.ControllerSince()
	if since.IsZero() {
		return nil
	}
	timeout := time.Duration(b.Config().Int("broker.session.timeout.ms")) * time.Millisecond
	now := time.Now()
	live := map[int32]bool{b.nodeID: true}
	consider := func(id int32) {
		if _, ok := live[id]; ok || id < 0 {
			return
		}
		heard := b.meta.LastHeard(id)
		if heard.Before(since) {
			heard = since
		}
		live[id] = now.Sub(heard) < timeout
	}
	for id := range img.Brokers {
		consider(id)
	}
	for _, t := range img.Topics {
		for _, p := range t.Partitions {
			for _, r := range p.Replicas {
				consider(r)
			}
		}
	}
	return func(id int32) bool { return live[id] }
}

// uncleanElection reports whether topic t may elect a replica outside
// its ISR when no ISR member is live (unclean.leader.election.enable,
// the topic's or the broker's).
func (b *Broker) uncleanElection(t *metadata.Topic) bool {
	return b.Config().Topic(t.Configs).Bool("unclean.leader.election.enable")
}

// electionRecords returns the partition changes leader election makes
// in img, given which brokers are live and which topics allow unclean
// election: for every partition, in topic name order,
//
//   - whose leader is not live, or which is offline (leader -1): the
//     first replica, in Replicas order, that is in the ISR and live
//     leads, and the ISR loses its members that are not live (order
//     kept). With no live ISR member, a topic that allows unclean
//     election makes its first live replica leader with an ISR of
//     itself; otherwise the partition goes offline with its ISR
//     unchanged, as Kafka keeps the last ISR member (the replica
//     known to hold every committed record, and so the one to elect
//     when it returns).
//   - whose leader is live but whose ISR holds brokers that are not:
//     the ISR without them. Kafka's controller removes a fenced broker
//     from every ISR, so that acks=all producers do not wait
//     replica.lag.time.max.ms for the leader to shrink it.
//
// It never returns a change that changes nothing, nor an empty ISR.
// Applied, a leader change bumps the leader epoch.
func electionRecords(img *metadata.Image, live func(int32) bool, unclean func(topic *metadata.Topic) bool) []metadata.Record {
	var recs []metadata.Record
	for _, name := range img.TopicNames() {
		t := img.Topics[name]
		allowed, asked := false, false
		uncleanOK := func() bool {
			if !asked {
				allowed, asked = unclean(t), true
			}
			return allowed
		}
		for _, p := range t.Partitions {
			if c := electPartition(p, live, uncleanOK); c != nil {
				c.TopicID = t.ID
				recs = append(recs, metadata.Record{PartitionChange: c})
			}
		}
	}
	return recs
}

// electPartition is electionRecords for one partition: its change, or
// nil for none.
func electPartition(p *metadata.Partition, live func(int32) bool, unclean func() bool) *metadata.PartitionChangeRecord {
	isr := slices.DeleteFunc(slices.Clone(p.ISR), func(id int32) bool { return !live(id) })
	shrunk := len(isr) != len(p.ISR)
	if p.Leader >= 0 && live(p.Leader) {
		if !shrunk || len(isr) == 0 {
			return nil
		}
		return &metadata.PartitionChangeRecord{Partition: p.Partition, ISR: isr}
	}
	if r := firstLive(p.Replicas, isr, live); r >= 0 {
		c := &metadata.PartitionChangeRecord{Partition: p.Partition, Leader: leaderRef(r)}
		if shrunk {
			c.ISR = isr
		}
		return c
	}
	if unclean() {
		for _, r := range p.Replicas {
			if live(r) {
				return &metadata.PartitionChangeRecord{Partition: p.Partition, Leader: leaderRef(r), ISR: []int32{r}}
			}
		}
	}
	if p.Leader == -1 {
		return nil // offline already
	}
	return &metadata.PartitionChangeRecord{Partition: p.Partition, Leader: leaderRef(-1)}
}

// fenceRecords fences the registered brokers live says are gone and
// unfences those it says are back, by ID (Kafka's controller fences a
// broker whose heartbeats stopped, and unfences it when they resume). A
// fenced broker is not listed to clients, gets no new partitions and
// does not join an ISR, so a broker the controller has not heard from
// yet after a restart is not added to ISRs the controller would shrink
// again at once.
func fenceRecords(img *metadata.Image, live func(int32) bool) []metadata.Record {
	var recs []metadata.Record
	for _, id := range slices.Sorted(maps.Keys(img.Brokers)) {
		if fenced := !live(id); fenced != img.Fenced[id] {
			recs = append(recs, metadata.Record{Fence: &metadata.FenceRecord{ID: id, Fenced: fenced}})
		}
	}
	return recs
}

// leaderRef is a PartitionChangeRecord's Leader naming id.
func leaderRef(id int32) *int32 { return &id }

// moveLeadershipsAway is Kafka's controlled shutdown: a broker stopping
// cleanly hands the leadership of its partitions to other ISR members
// first, so that their clients move at once instead of waiting for the
// controller to fence it (broker.session.timeout.ms). In one update,
// every partition it leads whose ISR has another live member is led by
// the first such member in Replicas order, and this broker leaves its
// ISR; it leaves the ISR of the partitions it follows (whose leader is
// live), so that acks=all producers stop waiting for it. A partition
// whose only live ISR member it is stays as it is: moving it would take
// it offline, or elect an unclean leader. Liveness is the controller's
// (brokerLiveness) when this node is the controller; otherwise every
// registered broker but this one counts as live, as only the controller
// knows better. Cluster mode only; a single node has nowhere to move.
//
// The broker's runController must not elect meanwhile (it does not
// once the broker is closing): this broker counts as live there, and
// could be elected again.
func (b *Broker) moveLeadershipsAway() error {
	if !b.cluster {
		return nil
	}
	// Nothing to move (this broker leads nothing another in-sync
	// replica could take, as the last of a cluster to stop): return
	// without an update, which could not commit without a quorum.
	if img := b.meta.Image(); len(shutdownRecords(img, b.nodeID, func(id int32) bool { return img.Brokers[id] != nil })) == 0 {
		return nil
	}
	var before *metadata.Image
	var recs []metadata.Record
	_, err := b.meta.Update(func(img *metadata.Image) ([]metadata.Record, error) {
		before = img
		live := b.brokerLiveness(img)
		if live == nil {
			live = func(id int32) bool { return img.Brokers[id] != nil }
		}
		recs = shutdownRecords(img, b.nodeID, live)
		return recs, nil
	})
	if err != nil {
		return fmt.Errorf("moving partition leaderships away before shutdown: %w", err)
	}
	b.logPartitionChanges(before, recs, "controlled shutdown")
	return nil
}

// shutdownRecords returns the partition changes of moveLeadershipsAway
// for broker self, in topic name order; self never counts as live.
func shutdownRecords(img *metadata.Image, self int32, live func(int32) bool) []metadata.Record {
	other := func(id int32) bool { return id != self && live(id) }
	var recs []metadata.Record
	for _, name := range img.TopicNames() {
		t := img.Topics[name]
		for _, p := range t.Partitions {
			if !slices.Contains(p.ISR, self) {
				continue
			}
			isr := slices.DeleteFunc(slices.Clone(p.ISR), func(id int32) bool { return id == self })
			c := &metadata.PartitionChangeRecord{TopicID: t.ID, Partition: p.Partition, ISR: isr}
			switch {
			case p.Leader == self:
				i := slices.IndexFunc(p.Replicas, func(r int32) bool { return other(r) && slices.Contains(isr, r) })
				if i < 0 {
					continue
				}
				c.Leader = leaderRef(p.Replicas[i])
			case p.Leader < 0 || !other(p.Leader) || len(isr) == 0:
				// Offline, or led by a broker that is not live: this
				// broker is still a replica to elect cleanly.
				continue
			}
			recs = append(recs, metadata.Record{PartitionChange: c})
		}
	}
	return recs
}

// logPartitionChanges logs the leader and ISR changes of recs, records
// committed on image before. reason, when set, is why every change was
// made; otherwise each leader change says why.
func (b *Broker) logPartitionChanges(before *metadata.Image, recs []metadata.Record, reason string) {
	for _, r := range recs {
		c := r.PartitionChange
		if c == nil {
			continue
		}
		t, _ := before.TopicByID(c.TopicID)
		p := t.Partition(c.Partition)
		if p == nil {
			continue
		}
		isr := p.ISR
		if c.ISR != nil {
			isr = c.ISR
		}
		if c.Leader == nil {
			why := reason
			if why == "" {
				why = "brokers fenced"
			}
			b.log.Info("partition ISR shrunk", "topic", t.Name, "partition", p.Partition,
				"leader", p.Leader, "old_isr", p.ISR, "isr", isr, "reason", why)
			continue
		}
		leader := *c.Leader
		why, unclean := reason, leader >= 0 && !slices.Contains(p.ISR, leader)
		switch {
		case why != "":
		case leader < 0:
			why = "leader fenced; no live replica in the ISR"
		case unclean:
			why = "unclean election: no live replica in the ISR"
		case p.Leader < 0:
			why = "an ISR replica of the offline partition is live again"
		default:
			why = "leader fenced"
		}
		attrs := []any{"topic", t.Name, "partition", p.Partition, "old_leader", p.Leader, "leader", leader,
			"leader_epoch", p.LeaderEpoch + 1, "old_isr", p.ISR, "isr", isr, "reason", why}
		if leader < 0 || unclean {
			// Offline, or records acknowledged to producers may be lost.
			b.log.Warn("partition leader changed", attrs...)
		} else {
			b.log.Info("partition leader changed", attrs...)
		}
	}
}

// controlledShutdownWait bounds how long a stopping broker waits for its
// leaderships to move: without a quorum (the last brokers of a cluster
// stopping) the change cannot commit, and the broker stops anyway.
const controlledShutdownWait = 5 * time.Second

// ControlledShutdown moves the partition leaderships of a cluster's
// broker to other in-sync replicas and takes it out of the ISRs while
// it still serves (Kafka's controlled shutdown): the first step of a
// graceful shutdown, before Drain and the server's Shutdown. Requests
// waiting on its leaderships (acks=all produces, coordinator writes)
// end with NOT_LEADER_OR_FOLLOWER and their clients retry at the new
// leaders; otherwise they would wait, up to their timeouts, for
// followers that cannot fetch from a server that stopped reading.
// Clients move to the new leaders at once instead of after
// broker.session.timeout.ms. Close does it when it was not done; it
// runs once. A single node has nothing to move.
func (b *Broker) ControlledShutdown() {
	if !b.cluster || !b.shuttingDown.CompareAndSwap(false, true) {
		return
	}
	done := make(chan error, 1)
	go func() { done <- b.moveLeadershipsAway() }()
	select {
	case err := <-done:
		if err != nil {
			b.log.Warn("controlled shutdown", "err", err)
		}
	case <-time.After(controlledShutdownWait):
		b.log.Warn("controlled shutdown: leaderships not moved in time; stopping anyway", "waited", controlledShutdownWait)
	}
}
