package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/txn"
	"github.com/gregor-streaming/gregor/internal/wire"
)

// AddPartitionsToTxn: v0-5
//
// Version notes:
//   - v1: same as v0 (throttle behaviour)
//   - v2: PRODUCER_FENCED rather than INVALID_PRODUCER_EPOCH (KIP-588)
//   - v3: flexible
//   - v4: several transactions per request, each VerifyOnly or not,
//     and a top-level error (KIP-890; sent by brokers, not clients)
//   - v5: TRANSACTION_ABORTABLE may be returned (KIP-890)
//
// A partition of an unknown topic is UNKNOWN_TOPIC_OR_PARTITION and the
// rest of that transaction's partitions OPERATION_NOT_ATTEMPTED, as
// Kafka answers. Clients (v0-3) may not add the internal topics' partitions
// (Kafka never authorizes them there): TOPIC_AUTHORIZATION_FAILED;
// brokers (v4+) verify __consumer_offsets partitions of transactional
// offset commits. Clients using transactions v2 (KIP-890: the broker
// advertises transaction.version 2) skip this request: produce v12+
// adds the partitions itself.
func init() { register(24, 0, 5, (*Broker).handleAddPartitionsToTxn) }

func (b *Broker) handleAddPartitionsToTxn(_ context.Context, req *wire.Request, respond func(kmsg.Response)) {
	r := req.Body.(*kmsg.AddPartitionsToTxnRequest)
	resp := r.ResponseKind().(*kmsg.AddPartitionsToTxnResponse)
	if r.Version < 4 {
		b.addPartitionsToTxn(req, r.TransactionalID, r.ProducerID, r.ProducerEpoch, false, topicsV3(r.Topics), true, r.Version < 2,
			func(ts []kmsg.AddPartitionsToTxnResponseTransactionTopic) {
				for _, t := range ts {
					rt := kmsg.NewAddPartitionsToTxnResponseTopic()
					rt.Topic = t.Topic
					for _, p := range t.Partitions {
						rt.Partitions = append(rt.Partitions, kmsg.AddPartitionsToTxnResponseTopicPartition{Partition: p.Partition, ErrorCode: p.ErrorCode})
					}
					resp.Topics = append(resp.Topics, rt)
				}
				respond(resp)
			})
		return
	}
	if !b.authorizedCluster(req, kmsg.ACLOperationClusterAction) {
		// v4+ batches come from brokers (Kafka's
		// handleAddPartitionsToTxnRequest).
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		respond(resp)
		return
	}
	resp.Transactions = make([]kmsg.AddPartitionsToTxnResponseTransaction, len(r.Transactions))
	g := newGather(len(r.Transactions), func() { respond(resp) })
	for i := range r.Transactions {
		rt := &r.Transactions[i]
		out := &resp.Transactions[i]
		out.TransactionalID = rt.TransactionalID
		b.addPartitionsToTxn(req, rt.TransactionalID, rt.ProducerID, rt.ProducerEpoch, rt.VerifyOnly, rt.Topics, false, false,
			func(ts []kmsg.AddPartitionsToTxnResponseTransactionTopic) {
				out.Topics = ts
				g.one()
			})
	}
	g.one()
}

func topicsV3(ts []kmsg.AddPartitionsToTxnRequestTopic) []kmsg.AddPartitionsToTxnRequestTransactionTopic {
	out := make([]kmsg.AddPartitionsToTxnRequestTransactionTopic, len(ts))
	for i, t := range ts {
		out[i] = kmsg.AddPartitionsToTxnRequestTransactionTopic{Topic: t.Topic, Partitions: t.Partitions}
	}
	return out
}

// addPartitionsToTxn adds (or, verifyOnly, checks) one transaction's
// partitions and answers with an error per partition. fromClient is set
// for v0-3, which clients send; legacy for v0-1.
func (b *Broker) addPartitionsToTxn(req *wire.Request, txnID string, pid int64, epoch int16, verifyOnly bool, topics []kmsg.AddPartitionsToTxnRequestTransactionTopic, fromClient, legacy bool, respond func([]kmsg.AddPartitionsToTxnResponseTransactionTopic)) {
	img := b.meta.Image()
	out := make([]kmsg.AddPartitionsToTxnResponseTransactionTopic, len(topics))
	var tps []txn.TopicPartition
	var slots errSlots
	refused := false // some partition refused: none is added
	// A client needs WRITE on the transactional ID and on each topic
	// (Kafka's handleAddPartitionsToTxnRequest).
	txnDenied := fromClient && !b.authorizedTxnID(req, kmsg.ACLOperationWrite, txnID)
	for i, t := range topics {
		out[i].Topic = t.Topic
		out[i].Partitions = make([]kmsg.AddPartitionsToTxnResponseTransactionTopicPartition, len(t.Partitions))
		topic, ok := img.Topic(t.Topic)
		writable := !fromClient || b.authorizedTopic(req, kmsg.ACLOperationWrite, t.Topic)
		for j, p := range t.Partitions {
			op := &out[i].Partitions[j]
			op.Partition = p
			if txnDenied {
				op.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
				continue
			}
			if fromClient && (isInternal(t.Topic) || !writable) {
				op.ErrorCode = kerr.TopicAuthorizationFailed.Code
				refused = true
				continue
			}
			if !ok || p < 0 || int(p) >= len(topic.Partitions) {
				op.ErrorCode = kerr.UnknownTopicOrPartition.Code
				refused = true
				continue
			}
			tps = append(tps, txn.TopicPartition{Topic: t.Topic, Partition: p})
			slots = append(slots, &op.ErrorCode)
		}
	}
	if txnDenied {
		respond(out)
		return
	}
	if refused {
		slots.setAll(kerr.OperationNotAttempted)
		respond(out)
		return
	}
	if len(tps) == 0 {
		respond(out)
		return
	}
	c, kerrv := b.txnCoordinator()
	if kerrv != nil {
		slots.setAll(kerrv)
		respond(out)
		return
	}
	if verifyOnly {
		c.Verify(txnID, pid, epoch, tps, func(errs []*kerr.Error) {
			slots.setEach(errs)
			respond(out)
		})
		return
	}
	c.AddPartitions(txnID, pid, epoch, tps, false, func(err *kerr.Error) {
		if err != nil {
			slots.setAll(fencedError(err, legacy))
		}
		respond(out)
	})
}
