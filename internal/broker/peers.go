package broker

import (
	"context"
	"errors"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/txn"
)

// peersState is the broker's client of the other brokers of its
// cluster, made on first use: the transaction coordinator's markers to
// partitions they lead go through it (Kafka's WriteTxnMarkers between
// brokers).
type peersState struct {
	// mu guards cl.
	mu sync.Mutex
	cl *kgo.Client
	// warnMu guards warned: when each failure peerFailed logged at
	// Warn was last logged so.
	warnMu sync.Mutex
	warned map[string]time.Time
}

// peerRequestTimeout bounds one request to another broker; the
// transaction coordinator retries markers that failed.
const peerRequestTimeout = 10 * time.Second

// peerClient returns the client of the other brokers, seeded with every
// registered one's endpoint of the inter-broker listener, which it
// connects to with that listener's TLS and SASL (interbroker.go). The
// brokers it learns of from their Metadata answers are at their
// endpoints of the same listener, the one the request came through.
func (b *Broker) peerClient() (*kgo.Client, error) {
	b.peers.mu.Lock()
	defer b.peers.mu.Unlock()
	if b.peers.cl != nil {
		return b.peers.cl, nil
	}
	var seeds []string
	for id, r := range b.meta.Image().Brokers {
		if id != b.nodeID {
			host, port := r.Endpoint(b.peerSec.listener)
			seeds = append(seeds, net.JoinHostPort(host, strconv.Itoa(int(port))))
		}
	}
	if len(seeds) == 0 {
		return nil, kerr.BrokerNotAvailable
	}
	copts := []kgo.Opt{
		kgo.SeedBrokers(seeds...),
		kgo.ClientID("gregor-broker-" + strconv.Itoa(int(b.nodeID))),
		kgo.Dialer(b.peerDialer()),
	}
	if b.peerSec.sasl != nil {
		copts = append(copts, kgo.SASL(b.peerSec.sasl))
	}
	cl, err := kgo.NewClient(copts...)
	if err != nil {
		return nil, err
	}
	b.peers.cl = cl
	return cl, nil
}

// closePeers closes the client of the other brokers, if any.
func (b *Broker) closePeers() {
	b.peers.mu.Lock()
	defer b.peers.mu.Unlock()
	if b.peers.cl != nil {
		b.peers.cl.Close()
		b.peers.cl = nil
	}
}

// remoteMarker is one partition of a marker another broker leads: its
// index in txn.Markers.Partitions.
type remoteMarker struct {
	index int
	tp    txn.TopicPartition
}

// writeRemoteMarkers sends m's markers for the partitions in parts to
// their leader with WriteTxnMarkers and records each partition's outcome
// in errs (nil when written, or moot as markerMoot says), calling one
// for each partition when its outcome is known.
func (b *Broker) writeRemoteMarkers(leader int32, m txn.Markers, parts []remoteMarker, errs []error, one func()) {
	fail := func(err error) {
		for _, rp := range parts {
			errs[rp.index] = err
			one()
		}
	}
	cl, err := b.peerClient()
	if err != nil {
		fail(err)
		return
	}
	req := kmsg.NewPtrWriteTxnMarkersRequest()
	rm := kmsg.NewWriteTxnMarkersRequestMarker()
	rm.ProducerID, rm.ProducerEpoch, rm.Committed = m.ProducerID, m.ProducerEpoch, m.Commit
	rm.CoordinatorEpoch, rm.TransactionVersion = m.CoordinatorEpoch, int8(m.TransactionVersion)
	byTopic := map[string]int{}
	for _, rp := range parts {
		i, ok := byTopic[rp.tp.Topic]
		if !ok {
			i = len(rm.Topics)
			byTopic[rp.tp.Topic] = i
			t := kmsg.NewWriteTxnMarkersRequestMarkerTopic()
			t.Topic = rp.tp.Topic
			rm.Topics = append(rm.Topics, t)
		}
		rm.Topics[i].Partitions = append(rm.Topics[i].Partitions, rp.tp.Partition)
	}
	req.Markers = append(req.Markers, rm)
	b.goTracked(func() {
		ctx, cancel := context.WithTimeout(b.ctx, peerRequestTimeout)
		defer cancel()
		kr, err := cl.Broker(int(leader)).Request(ctx, req)
		if err != nil {
			b.peerFailed(leader, "cannot send transaction markers to another broker", err)
			fail(err)
			return
		}
		codes := map[txn.TopicPartition]int16{}
		for _, mk := range kr.(*kmsg.WriteTxnMarkersResponse).Markers {
			for _, t := range mk.Topics {
				for _, p := range t.Partitions {
					codes[txn.TopicPartition{Topic: t.Topic, Partition: p.Partition}] = p.ErrorCode
				}
			}
		}
		for _, rp := range parts {
			code, ok := codes[rp.tp]
			switch {
			case !ok:
				errs[rp.index] = kerr.UnknownServerError
			case code != 0:
				if code == kerr.ClusterAuthorizationFailed.Code {
					b.peerFailed(leader, "transaction markers refused by another broker", kerr.ClusterAuthorizationFailed)
				}
				errs[rp.index] = b.markerMoot(kerr.ErrorForCode(code), rp.tp, m)
			}
			one()
		}
	})
}

// markerMoot returns nil for a marker error that means the partition
// needs no marker any more (it is gone, or saw a newer producer or
// coordinator epoch: Kafka's coordinator stops retrying those too),
// and err otherwise.
func (b *Broker) markerMoot(err error, tp txn.TopicPartition, m txn.Markers) error {
	var ke *kerr.Error
	if errors.As(err, &ke) && (ke == kerr.InvalidProducerEpoch || ke == kerr.TransactionCoordinatorFenced || ke == kerr.UnknownTopicOrPartition) {
		b.log.Warn("transaction marker refused by the partition; skipped", "topic", tp.Topic, "partition", tp.Partition,
			"producer_id", m.ProducerID, "epoch", m.ProducerEpoch, "err", err)
		return nil
	}
	return err
}

// remoteTxnCoordinator returns the broker coordinating txnID when it is
// another broker of the cluster: the leader of its __transaction_state
// partition.
func (b *Broker) remoteTxnCoordinator(txnID string) (int32, bool) {
	if !b.cluster {
		return -1, false
	}
	t, ok := b.meta.Image().Topic(TxnTopic)
	if !ok || len(t.Partitions) == 0 {
		return -1, false
	}
	leader := t.Partitions[txn.PartitionFor(txnID, int32(len(t.Partitions)))].Leader
	return leader, leader != b.nodeID
}

// verifyTxnRemote asks the broker coordinating txnID, as Kafka's
// partition leaders do (AddPartitionsToTxn v4+ between brokers), whether
// tp is in the producer's transaction (verifyOnly), or adds it (a
// produce or TxnOffsetCommit of transactions v2, KIP-890), and calls
// respond with the outcome.
func (b *Broker) verifyTxnRemote(coordinator int32, txnID string, tp txn.TopicPartition, pid int64, epoch int16, verifyOnly bool, respond func(*kerr.Error)) {
	cl, err := b.peerClient()
	if err != nil {
		respond(kerr.CoordinatorNotAvailable)
		return
	}
	req := kmsg.NewPtrAddPartitionsToTxnRequest()
	rt := kmsg.NewAddPartitionsToTxnRequestTransaction()
	rt.TransactionalID, rt.ProducerID, rt.ProducerEpoch, rt.VerifyOnly = txnID, pid, epoch, verifyOnly
	tt := kmsg.NewAddPartitionsToTxnRequestTransactionTopic()
	tt.Topic, tt.Partitions = tp.Topic, []int32{tp.Partition}
	rt.Topics = append(rt.Topics, tt)
	req.Transactions = append(req.Transactions, rt)
	b.goTracked(func() {
		ctx, cancel := context.WithTimeout(b.ctx, peerRequestTimeout)
		defer cancel()
		kr, err := cl.Broker(int(coordinator)).Request(ctx, req)
		if err != nil {
			b.peerFailed(coordinator, "cannot reach another broker's transaction coordinator", err)
			respond(kerr.CoordinatorNotAvailable)
			return
		}
		// The request's error, else its one partition's.
		resp := kr.(*kmsg.AddPartitionsToTxnResponse)
		code := resp.ErrorCode
		if ts := resp.Transactions; code == 0 && (len(ts) != 1 || len(ts[0].Topics) != 1 || len(ts[0].Topics[0].Partitions) != 1) {
			code = kerr.UnknownServerError.Code
		} else if code == 0 {
			code = ts[0].Topics[0].Partitions[0].ErrorCode
		}
		if code == kerr.ClusterAuthorizationFailed.Code {
			b.peerFailed(coordinator, "AddPartitionsToTxn refused by another broker", kerr.ClusterAuthorizationFailed)
		}
		respond(kerr.TypedErrorForCode(code)) // nil for 0
	})
}
