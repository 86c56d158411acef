package broker

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/wire"
)

// WriteTxnMarkers: v1-2
//
// Version notes:
//   - v1: flexible (v0 is gone in Kafka 4, KIP-896)
//   - v2: TransactionVersion: a v2 marker must carry an epoch above the
//     producer's (KIP-890)
//
// The transaction coordinator writes markers to this broker's
// partitions directly; this API serves the same writes to others:
// brokers, and admin tools aborting a hanging transaction
// (kafka-transactions.sh abort). Each marker is answered once durable.
func init() { register(27, 1, 2, (*Broker).handleWriteTxnMarkers) }

func (b *Broker) handleWriteTxnMarkers(_ context.Context, req *wire.Request, respond func(kmsg.Response)) {
	r := req.Body.(*kmsg.WriteTxnMarkersRequest)
	resp := r.ResponseKind().(*kmsg.WriteTxnMarkersResponse)
	img := b.meta.Image()
	n := 0
	for _, m := range r.Markers {
		for _, t := range m.Topics {
			n += len(t.Partitions)
		}
	}
	resp.Markers = make([]kmsg.WriteTxnMarkersResponseMarker, len(r.Markers))
	g := newGather(n, func() { respond(resp) })
	// Markers come from transaction coordinators: CLUSTER_ACTION
	// (Kafka's handleWriteTxnMarkersRequest).
	denied := !b.authorizedCluster(req, kmsg.ACLOperationClusterAction)
	for i := range r.Markers {
		m := &r.Markers[i]
		out := &resp.Markers[i]
		out.ProducerID = m.ProducerID
		out.Topics = make([]kmsg.WriteTxnMarkersResponseMarkerTopic, len(m.Topics))
		for j, t := range m.Topics {
			ot := &out.Topics[j]
			ot.Topic = t.Topic
			ot.Partitions = make([]kmsg.WriteTxnMarkersResponseMarkerTopicPartition, len(t.Partitions))
			for k, part := range t.Partitions {
				op := &ot.Partitions[k]
				op.Partition = part
				if denied {
					op.ErrorCode = kerr.ClusterAuthorizationFailed.Code
					g.one()
					continue
				}
				p := b.partitionOf(img, t.Topic, part)
				if p == nil {
					op.ErrorCode = b.absentErrorOf(img, t.Topic, part).Code
					g.one()
					continue
				}
				b.appendMarker(p, m.ProducerID, m.ProducerEpoch, m.Committed, m.CoordinatorEpoch, m.TransactionVersion >= 2, func(err error) {
					if err != nil {
						var ke *kerr.Error
						if !errors.As(err, &ke) {
							ke = kerr.UnknownServerError
						}
						op.ErrorCode = ke.Code
					}
					g.one()
				})
			}
		}
	}
	g.one()
}
