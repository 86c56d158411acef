package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/metadata"
	"github.com/gregor-streaming/gregor/internal/txn"
	"github.com/gregor-streaming/gregor/internal/wire"
)

// InitProducerID: v0-5
//
// Version notes:
//   - v1: same as v0 (throttle behaviour)
//   - v2: flexible
//   - v3: ProducerID/ProducerEpoch for epoch bumps (KIP-360)
//   - v4: PRODUCER_FENCED (KIP-588)
//   - v5: transactions v2 (KIP-890)
//
// Idempotent producers (no transactional ID) get a fresh producer ID
// with epoch 0 each time, as Kafka does. Producer IDs come from blocks
// committed to the metadata log, so they never repeat across restarts.
// Transactional producers get theirs from the transaction coordinator
// (internal/txn): the same producer ID with a bumped epoch, fencing the
// previous producer with that transactional ID.
func init() { register(22, 0, 5, (*Broker).handleInitProducerID) }

// producerIDBlockSize is how many IDs one metadata record reserves.
const producerIDBlockSize = 1000

func (b *Broker) handleInitProducerID(ctx context.Context, req *wire.Request, respond func(kmsg.Response)) {
	r := req.Body.(*kmsg.InitProducerIDRequest)
	resp := r.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	// WRITE on the transactional ID, or to be idempotent
	// IDEMPOTENT_WRITE on the cluster or WRITE on some topic; first,
	// as in Kafka's handleInitProducerIdRequest.
	switch {
	case r.TransactionalID != nil && !b.authorizedTxnID(req, kmsg.ACLOperationWrite, *r.TransactionalID):
		resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		respond(resp)
		return
	case r.TransactionalID == nil && !b.authorizedIdempotent(req):
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		respond(resp)
		return
	}
	if r.Version >= 3 && (r.ProducerID == -1) != (r.ProducerEpoch == -1) {
		// A producer ID without its epoch, or an epoch without its
		// producer ID, names no producer: Kafka's KafkaApis answers
		// INVALID_REQUEST before the coordinator sees it, whether or
		// not a transactional ID is set.
		resp.ErrorCode = kerr.InvalidRequest.Code
		respond(resp)
		return
	}
	if r.TransactionalID != nil {
		b.initTransactionalProducer(ctx, req, r, resp, respond)
		return
	}
	id, err := b.allocateProducerID()
	if err != nil {
		b.log.Error("allocating producer ID", "err", err)
		resp.ErrorCode = kerr.UnknownServerError.Code
		respond(resp)
		return
	}
	resp.ProducerID, resp.ProducerEpoch = id, 0
	respond(resp)
}

// initTransactionalProducer answers InitProducerID for a transactional
// ID through the transaction coordinator (creating __transaction_state
// on first use, as Kafka does).
func (b *Broker) initTransactionalProducer(_ context.Context, _ *wire.Request, r *kmsg.InitProducerIDRequest, resp *kmsg.InitProducerIDResponse, respond func(kmsg.Response)) {
	c, kerrv := b.txnCoordinator()
	if kerrv != nil {
		resp.ErrorCode = kerrv.Code
		respond(resp)
		return
	}
	ir := txn.InitRequest{TimeoutMs: r.TransactionTimeoutMillis, ProducerID: -1, ProducerEpoch: -1}
	if r.Version >= 3 {
		ir.ProducerID, ir.ProducerEpoch = r.ProducerID, r.ProducerEpoch
	}
	c.InitProducerID(*r.TransactionalID, ir, func(res txn.EndResult) {
		if res.Err != nil {
			resp.ErrorCode = fencedError(res.Err, r.Version < 4).Code
			respond(resp)
			return
		}
		resp.ProducerID, resp.ProducerEpoch = res.ProducerID, res.ProducerEpoch
		respond(resp)
	})
}

// fencedError maps PRODUCER_FENCED (KIP-588) to INVALID_PRODUCER_EPOCH
// for the request versions that predate it, as Kafka does.
func fencedError(err *kerr.Error, legacy bool) *kerr.Error {
	if legacy && err == kerr.ProducerFenced {
		return kerr.InvalidProducerEpoch
	}
	return err
}

// allocateProducerID returns a producer ID never handed out before,
// reserving a new block in the metadata log when the current one is
// used up.
func (b *Broker) allocateProducerID() (int64, error) {
	b.pidMu.Lock()
	defer b.pidMu.Unlock()
	if b.nextPID >= b.pidBlockEnd {
		var start int64
		_, err := b.meta.Update(func(img *metadata.Image) ([]metadata.Record, error) {
			start = img.NextProducerID
			return []metadata.Record{{ProducerIDs: &metadata.ProducerIDsRecord{
				BrokerID: b.nodeID, NextProducerID: start + producerIDBlockSize,
			}}}, nil
		})
		if err != nil {
			return -1, err
		}
		b.nextPID, b.pidBlockEnd = start, start+producerIDBlockSize
	}
	id := b.nextPID
	b.nextPID++
	return id, nil
}
