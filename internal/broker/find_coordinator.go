package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/txn"
	"github.com/gregor-streaming/gregor/internal/wire"
)

// FindCoordinator: v0-6
//
// Version notes:
//   - v1: CoordinatorType (0 group, 1 transaction), ThrottleMillis,
//     ErrorMessage
//   - v3: flexible
//   - v4: batched CoordinatorKeys (KIP-699)
//   - v6: key type 2, share groups (KIP-932): not served, INVALID_REQUEST
//
// This broker coordinates every group and transactional ID: it leads
// every partition of __consumer_offsets and __transaction_state
// (created on the first lookup of their kind, as Kafka does).
func init() { registerSync(10, 0, 6, (*Broker).handleFindCoordinator) }

// Coordinator key types.
const (
	coordinatorGroup       = 0
	coordinatorTransaction = 1
)

func (b *Broker) handleFindCoordinator(req *wire.Request) kmsg.Response {
	r := req.Body.(*kmsg.FindCoordinatorRequest)
	resp := r.ResponseKind().(*kmsg.FindCoordinatorResponse)
	if r.Version < 4 {
		c := b.findCoordinator(req, r.CoordinatorType, r.CoordinatorKey)
		resp.ErrorCode, resp.ErrorMessage = c.ErrorCode, c.ErrorMessage
		resp.NodeID, resp.Host, resp.Port = c.NodeID, c.Host, c.Port
		return resp
	}
	for _, key := range r.CoordinatorKeys {
		resp.Coordinators = append(resp.Coordinators, b.findCoordinator(req, r.CoordinatorType, key))
	}
	return resp
}

// findCoordinator answers one key. DESCRIBE on the group or
// transactional ID comes first, as in Kafka's
// handleFindCoordinatorRequest.
func (b *Broker) findCoordinator(req *wire.Request, keyType int8, key string) kmsg.FindCoordinatorResponseCoordinator {
	c := kmsg.NewFindCoordinatorResponseCoordinator()
	c.Key = key
	fail := func(err *kerr.Error, msg string) kmsg.FindCoordinatorResponseCoordinator {
		c.ErrorCode, c.ErrorMessage = err.Code, kmsg.StringPtr(msg)
		c.NodeID, c.Host, c.Port = -1, "", -1
		return c
	}
	var partition int32
	var topic string
	switch keyType {
	case coordinatorGroup:
		if !b.authorizedGroup(req, kmsg.ACLOperationDescribe, key) {
			return fail(kerr.GroupAuthorizationFailed, kerr.GroupAuthorizationFailed.Description)
		}
		gc, err := b.coordinator()
		if err != nil {
			return fail(err, "the group coordinator is not available")
		}
		partition, topic = gc.PartitionFor(key), OffsetsTopic
	case coordinatorTransaction:
		if !b.authorizedTxnID(req, kmsg.ACLOperationDescribe, key) {
			return fail(kerr.TransactionalIDAuthorizationFailed, kerr.TransactionalIDAuthorizationFailed.Description)
		}
		tc, err := b.txnCoordinator()
		if err != nil {
			return fail(err, "the transaction coordinator is not available")
		}
		partition, topic = txn.PartitionFor(key, tc.NumPartitions()), TxnTopic
	default:
		return fail(kerr.InvalidRequest, "unsupported coordinator type")
	}
	// The leader of the key's internal partition coordinates it.
	leader, host, port, ok := b.partitionLeader(topic, partition, req.Client.Listener)
	if !ok {
		return fail(kerr.CoordinatorNotAvailable, "the coordinator's partition has no live leader")
	}
	c.NodeID, c.Host, c.Port = leader, host, port
	return c
}
