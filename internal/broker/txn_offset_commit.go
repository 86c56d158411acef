package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/group"
	"github.com/gregor-streaming/gregor/internal/txn"
	"github.com/gregor-streaming/gregor/internal/wire"
)

// TxnOffsetCommit: v0-5
//
// Version notes:
//   - v0-1: COORDINATOR_LOAD_IN_PROGRESS is answered
//     COORDINATOR_NOT_AVAILABLE, as Kafka does for those clients
//   - v1: same as v0 (throttle behaviour)
//   - v2: LeaderEpoch
//   - v3: MemberID, GenerationID, GroupInstanceID (KIP-447); flexible;
//     PRODUCER_FENCED rather than INVALID_PRODUCER_EPOCH (KIP-588)
//   - v4: TRANSACTION_ABORTABLE may be returned (KIP-890)
//   - v5: transactions v2: the group's __consumer_offsets partition is
//     added to the transaction here, without AddOffsetsToTxn (KIP-890)
//
// The offsets are written with the producer's transaction and become
// the group's at its commit marker; until then OffsetFetch with
// RequireStable answers UNSTABLE_OFFSET_COMMIT for them (KIP-447). The
// transaction must be open with the group's partition in it (v0-4,
// after AddOffsetsToTxn): else INVALID_TXN_STATE.
func init() { register(28, 0, 5, (*Broker).handleTxnOffsetCommit) }

func (b *Broker) handleTxnOffsetCommit(_ context.Context, req *wire.Request, respond func(kmsg.Response)) {
	r := req.Body.(*kmsg.TxnOffsetCommitRequest)
	resp := r.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
	img := b.meta.Image()
	if r.Version < 2 {
		// Producers from 0.11 to before 2.0 could crash on
		// COORDINATOR_LOAD_IN_PROGRESS (KAFKA-7296): Kafka answers
		// them COORDINATOR_NOT_AVAILABLE instead, which they retry.
		send := respond
		respond = func(kr kmsg.Response) {
			for i := range resp.Topics {
				for j := range resp.Topics[i].Partitions {
					if p := &resp.Topics[i].Partitions[j]; p.ErrorCode == kerr.CoordinatorLoadInProgress.Code {
						p.ErrorCode = kerr.CoordinatorNotAvailable.Code
					}
				}
			}
			send(kr)
		}
	}

	var slots errSlots
	cr := group.TxnCommitRequest{ProducerID: r.ProducerID, ProducerEpoch: r.ProducerEpoch, Generation: -1}
	if r.Version >= 3 {
		cr.MemberID, cr.InstanceID, cr.Generation = r.MemberID, r.InstanceID, r.Generation
	}
	// WRITE on the transactional ID, READ on the group, READ on each
	// topic (Kafka's handleTxnOffsetCommitRequest).
	var requestErr *kerr.Error
	switch {
	case !b.authorizedTxnID(req, kmsg.ACLOperationWrite, r.TransactionalID):
		requestErr = kerr.TransactionalIDAuthorizationFailed
	case !b.authorizedGroup(req, kmsg.ACLOperationRead, r.Group):
		requestErr = kerr.GroupAuthorizationFailed
	}
	resp.Topics = make([]kmsg.TxnOffsetCommitResponseTopic, len(r.Topics))
	for i, rt := range r.Topics {
		st := &resp.Topics[i]
		st.Topic = rt.Topic
		st.Partitions = make([]kmsg.TxnOffsetCommitResponseTopicPartition, len(rt.Partitions))
		topic, ok := img.Topic(rt.Topic)
		topicErr := requestErr
		if topicErr == nil && !b.authorizedTopic(req, kmsg.ACLOperationRead, rt.Topic) {
			topicErr = kerr.TopicAuthorizationFailed
		}
		var ct *group.CommitTopic
		for j, rp := range rt.Partitions {
			sp := &st.Partitions[j]
			sp.Partition = rp.Partition
			if topicErr != nil {
				sp.ErrorCode = topicErr.Code
				continue
			}
			if !ok || rp.Partition < 0 || int(rp.Partition) >= len(topic.Partitions) {
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
				continue
			}
			if ct == nil {
				cr.Topics = append(cr.Topics, group.CommitTopic{Topic: rt.Topic})
				ct = &cr.Topics[len(cr.Topics)-1]
			}
			cp := group.CommitPartition{Partition: rp.Partition, Offset: rp.Offset, LeaderEpoch: -1}
			if r.Version >= 2 {
				cp.LeaderEpoch = rp.LeaderEpoch
			}
			if rp.Metadata != nil {
				cp.Metadata = *rp.Metadata
			}
			ct.Partitions = append(ct.Partitions, cp)
			slots = append(slots, &sp.ErrorCode)
		}
	}
	if len(slots) == 0 {
		respond(resp)
		return
	}
	setAll := func(err *kerr.Error) {
		slots.setAll(err)
		respond(resp)
	}
	tp, kerrv := b.offsetsPartitionOf(r.Group)
	if kerrv != nil {
		setAll(kerrv)
		return
	}
	gc, _ := b.coordinator()
	commit := func(err *kerr.Error) {
		switch err {
		case nil:
		case kerr.ConcurrentTransactions:
			// Markers of the previous transaction keep failing:
			// retriable for the client.
			setAll(kerr.CoordinatorLoadInProgress)
			return
		default:
			setAll(fencedError(err, r.Version < 3))
			return
		}
		gc.TxnCommit(r.Group, cr, false, func(res group.CommitResult) {
			slots.fill(res.Topics)
			respond(resp)
		})
	}
	if coordinator, remote := b.remoteTxnCoordinator(r.TransactionalID); remote {
		b.verifyTxnRemote(coordinator, r.TransactionalID, tp, r.ProducerID, r.ProducerEpoch, r.Version < 5, commit)
		return
	}
	tc, kerrv := b.txnCoordinator()
	if kerrv != nil {
		setAll(kerrv)
		return
	}
	tps := []txn.TopicPartition{tp}
	if r.Version >= 5 {
		tc.AddPartitions(r.TransactionalID, r.ProducerID, r.ProducerEpoch, tps, true, commit)
		return
	}
	tc.Verify(r.TransactionalID, r.ProducerID, r.ProducerEpoch, tps, func(errs []*kerr.Error) { commit(errs[0]) })
}
