package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/metadata"
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
func init() { register(22, 0, 5, (*Broker).handleInitProducerID) }

// producerIDBlockSize is how many IDs one metadata record reserves.
const producerIDBlockSize = 1000

func (b *Broker) handleInitProducerID(ctx context.Context, req *wire.Request, respond func(kmsg.Response)) {
	r := req.Body.(*kmsg.InitProducerIDRequest)
	resp := r.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
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
// ID: the transaction coordinator's job, which is not there yet, so the
// client is told none is available.
func (b *Broker) initTransactionalProducer(_ context.Context, _ *wire.Request, _ *kmsg.InitProducerIDRequest, resp *kmsg.InitProducerIDResponse, respond func(kmsg.Response)) {
	resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
	respond(resp)
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
