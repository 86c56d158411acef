package broker

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/gregor-streaming/gregor/internal/batch"
	"github.com/gregor-streaming/gregor/internal/config"
	"github.com/gregor-streaming/gregor/internal/partlog"
	"github.com/gregor-streaming/gregor/internal/txn"
)

// txnsState wires the transaction coordinator to the broker: the
// internal topic __transaction_state, created on first use as Kafka
// does, the append/replay paths the coordinator writes and loads
// through, and the marker writes to data partitions.
type txnsState struct {
	// coord is the coordinator; set by openTxns. Never nil after Open.
	coord *txn.Coordinator
	// createMu serializes creating __transaction_state.
	createMu sync.Mutex
}

// txnStateSegmentBytes is Kafka's transaction.state.log.segment.bytes
// default (the property is not configurable yet).
const txnStateSegmentBytes = 100 << 20

// txnConfig derives the coordinator's settings from the broker's.
func txnConfig(cfg *config.BrokerConfig) txn.Config {
	ms := func(name string) time.Duration { return time.Duration(cfg.Int(name)) * time.Millisecond }
	c := txn.DefaultConfig()
	c.MaxTimeout = ms("transaction.max.timeout.ms")
	c.IDExpiration = ms("transactional.id.expiration.ms")
	c.CleanupInterval = ms("transaction.abort.timed.out.transaction.cleanup.interval.ms")
	return c
}

// openTxns creates the transaction coordinator and, when
// __transaction_state exists, starts loading it (in the background: the
// coordinator answers COORDINATOR_LOAD_IN_PROGRESS meanwhile). It also
// starts the producer-state expiry.
func (b *Broker) openTxns() {
	b.txns.coord = txn.New(txn.Options{
		Config:        txnConfig(b.Config()),
		Log:           internalLog{b, TxnTopic},
		Markers:       markerWriter{b},
		NewProducerID: b.allocateProducerID,
		Clock:         txn.RealClock{NowFunc: b.now},
		Logger:        b.log.With("component", "txn-coordinator"),
	})
	if _, ok := b.meta.Image().Topic(TxnTopic); ok {
		b.startCoordinator(b.txns.coord, TxnTopic)
	}
	b.goTracked(b.producerExpiryLoop)
}

// txnCoordinator returns the transaction coordinator, creating
// __transaction_state first if needed.
func (b *Broker) txnCoordinator() (*txn.Coordinator, *kerr.Error) {
	c := b.txns.coord
	if err := b.startInternalCoordinator(c, &b.txns.createMu, TxnTopic, func(cfg *config.BrokerConfig) *topicSpec {
		return &topicSpec{
			name:              TxnTopic,
			partitions:        int32(cfg.Int("transaction.state.log.num.partitions")),
			replicationFactor: b.internalReplicationFactor(cfg.Int("transaction.state.log.replication.factor")),
			configs: map[string]string{
				"cleanup.policy":   "compact",
				"segment.bytes":    strconv.Itoa(txnStateSegmentBytes),
				"compression.type": "uncompressed",
			},
		}
	}); err != nil {
		return nil, err
	}
	return c, nil
}

// replayPartition calls fn with every batch of p from the log start to
// the high watermark, skipping corrupt ranges (never served).
func replayPartition(p *partition, fn func([]byte) error) error {
	off, end := p.log.LogStartOffset(), p.log.HighWatermark()
	var buf []byte
	for off < end {
		data, err := p.log.Read(buf[:0], off, replayChunk, end, true)
		if err != nil {
			if errors.Is(err, partlog.ErrCorrupt) {
				off++
				continue
			}
			return fmt.Errorf("broker: replaying %s-%d at %d: %w", p.topic, p.index, off, err)
		}
		if len(data) == 0 {
			break
		}
		next := off
		for rest := data; len(rest) > 0; {
			h, err := batch.ParseHeader(rest)
			if err != nil || h.Size() > len(rest) {
				break
			}
			if h.NextOffset() > off {
				if err := fn(rest[:h.Size()]); err != nil {
					return err
				}
			}
			next = h.NextOffset()
			rest = rest[h.Size():]
		}
		if next <= off {
			return fmt.Errorf("broker: replaying %s-%d: no progress at offset %d", p.topic, p.index, off)
		}
		off = next
		buf = data
	}
	return nil
}

// markerWriter writes the coordinator's markers to this broker's
// partitions.
type markerWriter struct{ b *Broker }

// WriteMarkers implements txn.MarkerWriter. A partition that is gone
// (topic deleted) has nothing left to end. A partition that refuses the
// marker's producer or coordinator epoch already saw a newer one, so
// this marker is moot there too (Kafka's coordinator also stops
// retrying such markers).
func (w markerWriter) WriteMarkers(m txn.Markers, done func([]error)) {
	b := w.b
	errs := make([]error, len(m.Partitions))
	img := b.meta.Image()
	g := newGather(len(m.Partitions), func() { done(errs) })
	fault := b.markerFault.Load()
	remote := map[int32][]remoteMarker{}
	for i, tp := range m.Partitions {
		if fault != nil {
			if errs[i] = (*fault)(tp.Topic, tp.Partition); errs[i] != nil {
				g.one()
				continue
			}
		}
		p := b.partitionOf(img, tp.Topic, tp.Partition)
		if p == nil {
			// Another broker's (cluster mode): sent to its leader below.
			if t, _ := img.Topic(tp.Topic); b.cluster && t.Partition(tp.Partition) != nil {
				leader := t.Partition(tp.Partition).Leader
				remote[leader] = append(remote[leader], remoteMarker{index: i, tp: tp})
				continue
			}
			g.one() // gone: nothing left to end
			continue
		}
		b.appendMarker(p, m.ProducerID, m.ProducerEpoch, m.Commit, m.CoordinatorEpoch, m.TransactionVersion >= 2, func(err error) {
			if err != nil {
				err = b.markerMoot(err, tp, m)
			}
			errs[i] = err
			g.one()
		})
	}
	for leader, parts := range remote {
		b.writeRemoteMarkers(leader, m, parts, errs, g.one)
	}
	g.one()
}

// appendMarker appends a transaction marker to p and calls done once it
// is durable (always waiting for fsync, whatever flush.messages says:
// the coordinator completes the transaction only then). Markers written
// to __consumer_offsets then commit or drop the producer's transactional
// offset commits.
func (b *Broker) appendMarker(p *partition, pid int64, epoch int16, commit bool, coordEpoch int32, tv2 bool, done func(error)) {
	data := batch.ControlBatch(pid, epoch, commit, coordEpoch, b.now().UnixMilli())
	h, err := batch.ParseHeader(data)
	if err != nil {
		done(err)
		return
	}
	p.mu.Lock()
	if p.deleted {
		p.mu.Unlock()
		done(kerr.UnknownTopicOrPartition)
		return
	}
	already, err := p.checkMarkerLocked(pid, epoch, coordEpoch, tv2)
	if err != nil || already {
		p.mu.Unlock()
		done(err)
		return
	}
	_, last, err := b.appendUnlock(p, &h, data)
	if err != nil {
		done(fmt.Errorf("%w: %w", kerr.KafkaStorageError, err))
		return
	}
	p.log.RequestSync(func(durable int64, err error) {
		if err != nil {
			b.log.Error("fsync failed", "topic", p.topic, "partition", p.index, "err", err)
			done(fmt.Errorf("%w: %w", kerr.KafkaStorageError, err))
			return
		}
		p.durableAwait(durable, last+1, internalReplicationTimeout, func(rerr *kerr.Error) {
			if rerr != nil {
				done(rerr)
				return
			}
			if p.topic == OffsetsTopic {
				if c := b.groups.coord; c != nil {
					c.CompleteTxn(p.index, pid, commit)
				}
			}
			done(nil)
		})
	})
}

// producerExpiryLoop removes idle producers' state every
// producer.id.expiration.check.interval.ms (Kafka's default, 10
// minutes, or the expiration itself when shorter).
func (b *Broker) producerExpiryLoop() {
	for {
		expiration := b.Config().Int("producer.id.expiration.ms")
		interval := min(10*time.Minute, time.Duration(expiration)*time.Millisecond)
		t := time.NewTimer(interval)
		select {
		case <-b.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		b.expireProducers(b.now().UnixMilli(), expiration)
	}
}

// expireProducers removes the state of producers idle for expiration ms
// on every partition.
func (b *Broker) expireProducers(nowMs, expiration int64) {
	n := 0
	for _, p := range b.allPartitions() {
		p.mu.Lock()
		n += p.expireProducersLocked(nowMs, expiration)
		p.mu.Unlock()
	}
	if n > 0 {
		b.log.Info("expired idle producers' state", "producers", n)
	}
}

// verifyTxn checks with the transaction coordinator that the batch's
// partition belongs to the producer's open transaction before the
// producer's first transactional batch there (Kafka's partition
// verification, KIP-890 part 1); a produce v12+ adds the partition to
// the transaction instead (KIP-890 part 2). Errors are mapped to what a
// produce may return: a fenced epoch is INVALID_PRODUCER_EPOCH, and
// coordinator unavailability a retriable NOT_ENOUGH_REPLICAS.
func (b *Broker) verifyTxn(p *partition, txnID string, h *batch.Header, version int16, g *txnGuard, cb func(*kerr.Error)) {
	pid := h.ProducerID
	respond := func(err *kerr.Error) {
		switch err {
		case nil:
		case kerr.ProducerFenced:
			err = kerr.InvalidProducerEpoch
		case kerr.NotCoordinator, kerr.CoordinatorNotAvailable, kerr.CoordinatorLoadInProgress:
			err = kerr.NotEnoughReplicas
		case kerr.ConcurrentTransactions:
			if version < 12 {
				err = kerr.NotEnoughReplicas
			}
		}
		if err != nil {
			p.dropGuard(pid, g)
		}
		cb(err)
	}
	if coordinator, remote := b.remoteTxnCoordinator(txnID); remote {
		tp := txn.TopicPartition{Topic: p.topic, Partition: p.index}
		b.verifyTxnRemote(coordinator, txnID, tp, pid, h.ProducerEpoch, version < 12, respond)
		return
	}
	c := b.txns.coord
	if !c.Started() {
		// No transaction was ever initialized on this broker.
		respond(kerr.InvalidTxnState)
		return
	}
	tps := []txn.TopicPartition{{Topic: p.topic, Partition: p.index}}
	if version >= 12 {
		c.AddPartitions(txnID, pid, h.ProducerEpoch, tps, true, respond)
		return
	}
	c.Verify(txnID, pid, h.ProducerEpoch, tps, func(errs []*kerr.Error) { respond(errs[0]) })
}
