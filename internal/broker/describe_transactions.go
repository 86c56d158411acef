package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/txn"
	"github.com/gregor-streaming/gregor/internal/wire"
)

// DescribeTransactions: v0
//
// The state of each transactional ID (KIP-664): Kafka's state name,
// producer ID and epoch, timeout, the start of the open transaction and
// its partitions. An unknown ID is TRANSACTIONAL_ID_NOT_FOUND.
func init() { register(65, 0, 0, (*Broker).handleDescribeTransactions) }

func (b *Broker) handleDescribeTransactions(_ context.Context, req *wire.Request, respond func(kmsg.Response)) {
	r := req.Body.(*kmsg.DescribeTransactionsRequest)
	resp := r.ResponseKind().(*kmsg.DescribeTransactionsResponse)
	resp.TransactionStates = make([]kmsg.DescribeTransactionsResponseTransactionState, len(r.TransactionalIDs))
	c := b.txns.coord
	g := newGather(len(r.TransactionalIDs), func() { respond(resp) })
	for i, id := range r.TransactionalIDs {
		out := &resp.TransactionStates[i]
		out.Default()
		out.TransactionalID = id
		out.ProducerID, out.ProducerEpoch, out.StartTimestamp = -1, -1, -1
		if !b.authorizedTxnID(req, kmsg.ACLOperationDescribe, id) {
			// Kafka's handleDescribeTransactionsRequest.
			out.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
			g.one()
			continue
		}
		if !c.Started() {
			out.ErrorCode = kerr.TransactionalIDNotFound.Code
			g.one()
			continue
		}
		c.Describe(id, func(d txn.Described) {
			if d.Err != nil {
				out.ErrorCode = d.Err.Code
				g.one()
				return
			}
			out.State = d.State.String()
			out.TimeoutMillis = d.TimeoutMs
			out.StartTimestamp = d.StartTimestamp
			out.ProducerID, out.ProducerEpoch = d.ProducerID, d.ProducerEpoch
			for _, tp := range d.Partitions {
				// Only the topics the client may describe.
				if !b.authorizedTopic(req, kmsg.ACLOperationDescribe, tp.Topic) {
					continue
				}
				if n := len(out.Topics); n == 0 || out.Topics[n-1].Topic != tp.Topic {
					out.Topics = append(out.Topics, kmsg.DescribeTransactionsResponseTransactionStateTopic{Topic: tp.Topic})
				}
				t := &out.Topics[len(out.Topics)-1]
				t.Partitions = append(t.Partitions, tp.Partition)
			}
			g.one()
		})
	}
	g.one()
}
