package broker_test

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Request-level checks of the transaction APIs against what Apache
// Kafka answers (KafkaApis and TransactionCoordinator).

// TestInitProducerIDHalfPair: InitProducerID v3+ with a producer ID but
// no epoch, or an epoch but no producer ID, is INVALID_REQUEST in Kafka
// (KafkaApis.handleInitProducerIdRequest), for idempotent and
// transactional producers alike; Gregor handed out a producer ID.
func TestInitProducerIDHalfPair(t *testing.T) {
	b := txnBroker(t)
	cl := b.Client()
	for _, tc := range []struct {
		name  string
		txnID *string
		pid   int64
		epoch int16
	}{
		{"idempotent, ID without epoch", nil, 5, -1},
		{"idempotent, epoch without ID", nil, -1, 3},
		{"transactional, ID without epoch", kmsg.StringPtr("half-1"), 5, -1},
		{"transactional, epoch without ID", kmsg.StringPtr("half-2"), -1, 0},
	} {
		req := kmsg.NewPtrInitProducerIDRequest()
		req.Version = 4
		req.TransactionalID, req.TransactionTimeoutMillis = tc.txnID, 60000
		req.ProducerID, req.ProducerEpoch = tc.pid, tc.epoch
		resp, err := req.RequestWith(ctxT(t, 10*time.Second), cl)
		if err != nil {
			t.Fatal(err)
		}
		if resp.ErrorCode != kerr.InvalidRequest.Code || resp.ProducerID != -1 {
			t.Errorf("%s: %v, producer ID %d; want INVALID_REQUEST", tc.name, kerr.ErrorForCode(resp.ErrorCode), resp.ProducerID)
		}
	}
}
