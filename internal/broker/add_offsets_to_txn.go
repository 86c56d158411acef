package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/group"
	"github.com/gregor-streaming/gregor/internal/txn"
	"github.com/gregor-streaming/gregor/internal/wire"
)

// AddOffsetsToTxn: v0-4
//
// Version notes:
//   - v1: same as v0 (throttle behaviour)
//   - v2: PRODUCER_FENCED rather than INVALID_PRODUCER_EPOCH (KIP-588)
//   - v3: flexible
//   - v4: TRANSACTION_ABORTABLE may be returned (KIP-890)
//
// Adds the group's __consumer_offsets partition to the transaction, so
// its marker commits or drops the producer's TxnOffsetCommit offsets.
// Under transactions v2, TxnOffsetCommit v5+ adds it itself.
func init() { register(25, 0, 4, (*Broker).handleAddOffsetsToTxn) }

func (b *Broker) handleAddOffsetsToTxn(_ context.Context, req *wire.Request, respond func(kmsg.Response)) {
	r := req.Body.(*kmsg.AddOffsetsToTxnRequest)
	resp := r.ResponseKind().(*kmsg.AddOffsetsToTxnResponse)
	// WRITE on the transactional ID, READ on the group (Kafka's
	// handleAddOffsetsToTxnRequest).
	switch {
	case !b.authorizedTxnID(req, kmsg.ACLOperationWrite, r.TransactionalID):
		resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		respond(resp)
		return
	case !b.authorizedGroup(req, kmsg.ACLOperationRead, r.Group):
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
		respond(resp)
		return
	}
	tp, kerrv := b.offsetsPartitionOf(r.Group)
	if kerrv != nil {
		resp.ErrorCode = kerrv.Code
		respond(resp)
		return
	}
	c, kerrv := b.txnCoordinator()
	if kerrv != nil {
		resp.ErrorCode = kerrv.Code
		respond(resp)
		return
	}
	c.AddPartitions(r.TransactionalID, r.ProducerID, r.ProducerEpoch, []txn.TopicPartition{tp}, false, func(err *kerr.Error) {
		if err != nil {
			resp.ErrorCode = fencedError(err, r.Version < 2).Code
		}
		respond(resp)
	})
}

// offsetsPartitionOf returns the __consumer_offsets partition of a
// group, creating the topic if needed.
func (b *Broker) offsetsPartitionOf(groupID string) (txn.TopicPartition, *kerr.Error) {
	if groupID == "" {
		return txn.TopicPartition{}, kerr.InvalidGroupID
	}
	gc, kerrv := b.coordinator()
	if kerrv != nil {
		return txn.TopicPartition{}, kerrv
	}
	return txn.TopicPartition{Topic: OffsetsTopic, Partition: group.PartitionFor(groupID, gc.NumPartitions())}, nil
}
