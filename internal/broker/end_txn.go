package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/txn"
	"github.com/gregor-streaming/gregor/internal/wire"
)

// EndTxn: v0-5
//
// Version notes:
//   - v1: same as v0 (throttle behaviour)
//   - v2: PRODUCER_FENCED rather than INVALID_PRODUCER_EPOCH (KIP-588)
//   - v3: flexible
//   - v4: TRANSACTION_ABORTABLE may be returned (KIP-890)
//   - v5: transactions v2 (KIP-890): the epoch is bumped by every
//     EndTxn and returned with the producer ID; a retry names the epoch
//     before the bump; aborting with no transaction open bumps it too
//
// The answer comes once the markers are written to every partition of
// the transaction (or failed once: the outcome is durable by then and
// the coordinator keeps retrying), so the transaction's records and
// offsets are visible to read_committed consumers when the producer
// hears of the commit. Kafka answers earlier, after PrepareCommit.
func init() { register(26, 0, 5, (*Broker).handleEndTxn) }

func (b *Broker) handleEndTxn(_ context.Context, req *wire.Request, respond func(kmsg.Response)) {
	r := req.Body.(*kmsg.EndTxnRequest)
	resp := r.ResponseKind().(*kmsg.EndTxnResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if !b.authorizedTxnID(req, kmsg.ACLOperationWrite, r.TransactionalID) {
		resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		respond(resp)
		return
	}
	c, kerrv := b.txnCoordinator()
	if kerrv != nil {
		resp.ErrorCode = kerrv.Code
		respond(resp)
		return
	}
	c.EndTxn(r.TransactionalID, r.ProducerID, r.ProducerEpoch, r.Commit, r.Version >= 5, func(res txn.EndResult) {
		if res.Err != nil {
			resp.ErrorCode = fencedError(res.Err, r.Version < 2).Code
		} else {
			resp.ProducerID, resp.ProducerEpoch = res.ProducerID, res.ProducerEpoch
		}
		respond(resp)
	})
}
