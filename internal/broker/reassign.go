package broker

import (
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/metadata"
	"github.com/gregor-streaming/gregor/internal/wire"
)

// Partition reassignment (KIP-455; kafka-reassign-partitions.sh,
// Admin.alterPartitionReassignments), as Kafka's KRaft controller does
// it. Reassigning a partition to a target replica set commits, at once,
// replicas = target followed by the current replicas not in it, with
// adding = target minus current and removing = current minus target.
// The adding replicas open the log and fetch it from the leader like any
// follower, and join the ISR once caught up. As soon as every adding
// replica is in the ISR, the active controller completes it: replicas =
// target, the removing replicas leave the ISR, and, if the leader was
// one of them, the first live target replica of the ISR leads. A
// removed replica deletes its log. A reassignment given while another
// is in progress first reverts it (the adding replicas are dropped);
// a null target cancels it the same way.

// AlterPartitionReassignments: v0-1
//
// Version notes:
//   - v1: AllowReplicationFactorChange (KIP-860): false refuses a target
//     of another size with INVALID_REPLICATION_FACTOR
//
// ALTER on the cluster is required. Answered once the start (or the
// cancellation) is committed; the move itself goes on in the
// background, and ListPartitionReassignments shows it until done.
func init() { registerSync(45, 0, 1, (*Broker).handleAlterPartitionReassignments) }

// ListPartitionReassignments: v0
//
// The reassignments in progress of the partitions named, or of every
// partition; a topic or partition that does not exist, or is not being
// reassigned, is left out, as in Kafka. DESCRIBE on the cluster is
// required.
func init() { registerSync(46, 0, 0, (*Broker).handleListPartitionReassignments) }

func (b *Broker) handleAlterPartitionReassignments(req *wire.Request) kmsg.Response {
	r := req.Body.(*kmsg.AlterPartitionAssignmentsRequest)
	resp := r.ResponseKind().(*kmsg.AlterPartitionAssignmentsResponse)
	allowRF := r.Version == 0 || r.AllowReplicationFactorChange
	resp.AllowReplicationFactorChange = allowRF
	type result struct {
		err *kerr.Error
		msg string
	}
	results := make([][]result, len(r.Topics))
	answer := func() kmsg.Response {
		for i, rt := range r.Topics {
			st := kmsg.NewAlterPartitionAssignmentsResponseTopic()
			st.Topic = rt.Topic
			for j, rp := range rt.Partitions {
				sp := kmsg.NewAlterPartitionAssignmentsResponseTopicPartition()
				sp.Partition = rp.Partition
				if res := results[i][j]; res.err != nil {
					sp.ErrorCode = res.err.Code
					sp.ErrorMessage = kmsg.StringPtr(res.msg)
				}
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp
	}
	failAll := func(err *kerr.Error, msg string) kmsg.Response {
		resp.ErrorCode = err.Code
		resp.ErrorMessage = kmsg.StringPtr(msg)
		for i, rt := range r.Topics {
			results[i] = make([]result, len(rt.Partitions))
			for j := range results[i] {
				results[i][j] = result{err, msg}
			}
		}
		return answer()
	}
	if !b.authorizedCluster(req, kmsg.ACLOperationAlter) {
		return failAll(kerr.ClusterAuthorizationFailed, "Cluster authorization failed.")
	}
	var before *metadata.Image
	var recs []metadata.Record
	_, err := b.meta.Update(func(img *metadata.Image) ([]metadata.Record, error) {
		before, recs = img, nil
		live := b.electionLiveness(img)
		// A partition named twice is answered, and changed, by its
		// last entry (Kafka's controller handles them in order).
		changed := map[metadata.UUID]map[int32]int{}
		for i, rt := range r.Topics {
			results[i] = make([]result, len(rt.Partitions))
			t, _ := img.Topic(rt.Topic)
			for j, rp := range rt.Partitions {
				mp := t.Partition(rp.Partition)
				if mp == nil {
					results[i][j] = result{kerr.UnknownTopicOrPartition, fmt.Sprintf("no partition %s-%d", rt.Topic, rp.Partition)}
					continue
				}
				var c *metadata.PartitionChangeRecord
				var res result
				if rp.Replicas == nil {
					c, res.err, res.msg = cancelReassignment(mp, live)
				} else if res.err, res.msg = b.checkTarget(img, mp, rp.Replicas, allowRF); res.err == nil {
					c = reassignPartition(mp, rp.Replicas, live)
				}
				results[i][j] = res
				if c == nil {
					continue
				}
				c.TopicID = t.ID
				if changed[t.ID] == nil {
					changed[t.ID] = map[int32]int{}
				}
				if k, ok := changed[t.ID][mp.Partition]; ok {
					recs[k] = metadata.Record{PartitionChange: c}
				} else {
					changed[t.ID][mp.Partition] = len(recs)
					recs = append(recs, metadata.Record{PartitionChange: c})
				}
			}
		}
		return recs, nil
	})
	if err != nil {
		b.log.Warn("partition reassignment not committed", "err", err)
		return failAll(kerr.RequestTimedOut, err.Error())
	}
	for _, rec := range recs {
		c := rec.PartitionChange
		t, _ := before.TopicByID(c.TopicID)
		b.log.Info("partition reassignment", "topic", t.Name, "partition", c.Partition,
			"old_replicas", t.Partition(c.Partition).Replicas, "replicas", c.Replicas, "adding", c.Adding, "removing", c.Removing)
	}
	return answer()
}

// checkTarget validates target as the replicas of partition mp, as
// Kafka's validateManualPartitionAssignment: not empty, no broker twice,
// every broker registered, and, unless allowRF, as many replicas as mp
// has (not counting a reassignment in progress).
func (b *Broker) checkTarget(img *metadata.Image, mp *metadata.Partition, target []int32, allowRF bool) (*kerr.Error, string) {
	if len(target) == 0 {
		return kerr.InvalidReplicaAssignment, "the replica assignment is empty"
	}
	for i, id := range target {
		if slices.Contains(target[:i], id) {
			return kerr.InvalidReplicaAssignment, fmt.Sprintf("broker %d is listed twice in the replica assignment", id)
		}
		if img.Brokers[id] == nil && (b.cluster || id != b.nodeID) {
			return kerr.InvalidReplicaAssignment, fmt.Sprintf("the replica assignment includes broker %d, but no such broker is registered", id)
		}
	}
	if orig := without(mp.Replicas, mp.Adding); !allowRF && len(target) != len(orig) {
		return kerr.InvalidReplicationFactor, fmt.Sprintf("the replication factor would change from %d to %d, and the request does not allow it", len(orig), len(target))
	}
	return nil, ""
}

// without returns s without the elements of drop, order kept (a copy).
func without(s, drop []int32) []int32 {
	return slices.DeleteFunc(slices.Clone(s), func(id int32) bool { return slices.Contains(drop, id) })
}

// revertReassignment returns mp's replicas and ISR before its
// reassignment in progress, if any: without the replicas being added.
func revertReassignment(mp *metadata.Partition) (replicas, isr []int32) {
	return without(mp.Replicas, mp.Adding), without(mp.ISR, mp.Adding)
}

// reassignPartition returns the change that reassigns mp to target,
// completed at once when no replica needs to catch up (completeChange).
func reassignPartition(mp *metadata.Partition, target []int32, live func(int32) bool) *metadata.PartitionChangeRecord {
	if !mp.Reassigning() && slices.Equal(target, mp.Replicas) {
		return nil // nothing to change
	}
	orig, isr := revertReassignment(mp)
	if len(isr) == 0 {
		// Only replicas being added were in sync: keep them.
		orig, isr = mp.Replicas, mp.ISR
	}
	next := metadata.Partition{
		Partition: mp.Partition,
		Replicas:  append(slices.Clone(target), without(orig, target)...),
		ISR:       isr,
		Leader:    mp.Leader,
		Adding:    without(target, orig),
		Removing:  without(orig, target),
	}
	if !next.Reassigning() {
		// The same replicas, maybe in another order (which makes
		// another the preferred leader).
		next.Replicas = slices.Clone(target)
	}
	if c := completeChange(&next, live); c != nil {
		return c
	}
	c := &metadata.PartitionChangeRecord{Partition: mp.Partition, Replicas: next.Replicas, ISR: next.ISR,
		Adding: next.Adding, Removing: next.Removing}
	if !slices.Contains(next.ISR, next.Leader) {
		c.Leader = leaderRef(firstLive(next.Replicas, next.ISR, live))
	}
	return c
}

// cancelReassignment returns the change that cancels mp's reassignment
// in progress: its replicas and ISR without the replicas being added,
// led by a live replica of that ISR if its leader was one of them.
func cancelReassignment(mp *metadata.Partition, live func(int32) bool) (*metadata.PartitionChangeRecord, *kerr.Error, string) {
	if !mp.Reassigning() {
		return nil, kerr.NoReassignmentInProgress, fmt.Sprintf("no reassignment of partition %d is in progress", mp.Partition)
	}
	replicas, isr := revertReassignment(mp)
	if len(isr) == 0 {
		return nil, kerr.InvalidReplicaAssignment, "no replica of the partition before the reassignment is in sync: it cannot be cancelled"
	}
	c := &metadata.PartitionChangeRecord{Partition: mp.Partition, Replicas: replicas, ISR: isr}
	if !slices.Contains(isr, mp.Leader) {
		c.Leader = leaderRef(firstLive(replicas, isr, live))
	}
	return c, nil, ""
}

// firstLive returns the first of replicas in isr that is live, or -1.
func firstLive(replicas, isr []int32, live func(int32) bool) int32 {
	for _, id := range replicas {
		if slices.Contains(isr, id) && live(id) {
			return id
		}
	}
	return -1
}

// completeChange returns the change that completes mp's reassignment,
// or nil when none is in progress or it cannot complete yet: a replica
// being added is not in the ISR, no target replica is, or the leader is
// being removed and no target replica of the ISR is live to take over.
func completeChange(mp *metadata.Partition, live func(int32) bool) *metadata.PartitionChangeRecord {
	if !mp.Reassigning() {
		return nil
	}
	for _, id := range mp.Adding {
		if !slices.Contains(mp.ISR, id) {
			return nil
		}
	}
	replicas, isr := without(mp.Replicas, mp.Removing), without(mp.ISR, mp.Removing)
	if len(isr) == 0 {
		return nil
	}
	c := &metadata.PartitionChangeRecord{Partition: mp.Partition, Replicas: replicas, ISR: isr}
	if !slices.Contains(isr, mp.Leader) {
		leader := firstLive(replicas, isr, live)
		if leader < 0 {
			return nil
		}
		c.Leader = leaderRef(leader)
	}
	return c
}

// reassignmentRecords returns the changes completing the reassignments
// in progress in img that can complete (completeChange), in topic name
// order.
func reassignmentRecords(img *metadata.Image, live func(int32) bool) []metadata.Record {
	var recs []metadata.Record
	for _, name := range img.TopicNames() {
		t := img.Topics[name]
		for _, p := range t.Partitions {
			if c := completeChange(p, live); c != nil {
				c.TopicID = t.ID
				recs = append(recs, metadata.Record{PartitionChange: c})
			}
		}
	}
	return recs
}

// completeReassignments commits the changes reassignmentRecords finds,
// on the active controller (runController).
func (b *Broker) completeReassignments() {
	before, recs := b.controllerUpdate("reassignment completion", reassignmentRecords)
	for _, rec := range recs {
		c := rec.PartitionChange
		t, _ := before.TopicByID(c.TopicID)
		p := t.Partition(c.Partition)
		b.log.Info("partition reassignment completed", "topic", t.Name, "partition", c.Partition,
			"replicas", c.Replicas, "isr", c.ISR, "removed", p.Removing, "leader_changed", c.Leader != nil)
	}
}

func (b *Broker) handleListPartitionReassignments(req *wire.Request) kmsg.Response {
	r := req.Body.(*kmsg.ListPartitionReassignmentsRequest)
	resp := r.ResponseKind().(*kmsg.ListPartitionReassignmentsResponse)
	if !b.authorizedCluster(req, kmsg.ACLOperationDescribe) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		resp.ErrorMessage = kmsg.StringPtr("Cluster authorization failed.")
		return resp
	}
	img := b.meta.Image()
	add := func(t *metadata.Topic, ps []*metadata.Partition) {
		st := kmsg.NewListPartitionReassignmentsResponseTopic()
		st.Topic = t.Name
		for _, p := range ps {
			if p == nil || !p.Reassigning() {
				continue
			}
			sp := kmsg.NewListPartitionReassignmentsResponseTopicPartition()
			sp.Partition = p.Partition
			sp.Replicas = slices.Clone(p.Replicas)
			sp.AddingReplicas = nonNil(p.Adding)
			sp.RemovingReplicas = nonNil(p.Removing)
			st.Partitions = append(st.Partitions, sp)
		}
		if len(st.Partitions) > 0 {
			resp.Topics = append(resp.Topics, st)
		}
	}
	if r.Topics == nil {
		for _, name := range img.TopicNames() {
			t := img.Topics[name]
			add(t, t.Partitions)
		}
		return resp
	}
	for _, rt := range r.Topics {
		t, ok := img.Topic(rt.Topic)
		if !ok {
			continue
		}
		var ps []*metadata.Partition
		for _, i := range rt.Partitions {
			ps = append(ps, t.Partition(i))
		}
		add(t, ps)
	}
	return resp
}

// nonNil returns s, or an empty slice for nil (an array on the wire).
func nonNil(s []int32) []int32 {
	if s == nil {
		return []int32{}
	}
	return slices.Clone(s)
}
