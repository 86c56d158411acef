package broker

import (
	"errors"
	"fmt"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/batch"
	"github.com/gregor-streaming/gregor/internal/partlog"
)

// Producer state per partition, as Kafka's ProducerStateManager keeps
// it: for each producer ID the epoch, the last 5 batches (sequence range
// and offsets, to answer retried duplicates), the coordinator epoch of
// its last transaction marker, and the first offset of its open
// transaction on this partition. The open transactions bound the last
// stable offset; abort markers add entries to the partition's
// aborted-transaction index. All of it is guarded by partition.mu.

// producerWindow is how many recent batches per producer are remembered
// to answer retried duplicates, as Kafka (and the clients'
// max.in.flight.requests.per.connection=5 limit) assume.
const producerWindow = 5

// producerState is the idempotence state of one producer on one
// partition.
type producerState struct {
	id    int64 // the producer ID
	epoch int16
	// batches are the most recent batches, oldest first.
	batches []batchMeta
	// lastTimestamp is the max timestamp of the latest batch or
	// marker, for expiry (producer.id.expiration.ms).
	lastTimestamp int64
	// coordinatorEpoch is that of the last transaction marker, -1
	// before one: an older coordinator's markers are fenced.
	coordinatorEpoch int32
}

type batchMeta struct {
	firstSeq, lastSeq       int32
	firstOffset, lastOffset int64
}

// lastSeq is the last sequence the producer wrote at its epoch, -1
// when none (a new epoch, or state from a marker only).
func (st *producerState) lastSeq() int32 {
	if n := len(st.batches); n > 0 {
		return st.batches[n-1].lastSeq
	}
	return -1
}

// completedTxn is a transaction whose marker is in the log but not yet
// below the high watermark: until it is, the transaction still holds
// the last stable offset back (Kafka's unreplicated transactions), so
// read_committed consumers never read past a marker a crash could lose.
type completedTxn struct {
	firstOffset, markerOffset int64
}

// txnGuard marks a transactional producer whose first batch of a
// transaction on this partition is being verified with the transaction
// coordinator (Kafka's VerificationGuard, KIP-890): a marker written in
// the meantime removes it, so the batch of a transaction that already
// ended cannot open a new one here that no coordinator knows about.
type txnGuard struct {
	// verifying counts the producer's batches on the partition that
	// are with the coordinator (guarded by partition.mu). While any is,
	// the producer's next batches go through the coordinator too: its
	// answers come in the order it was asked, so a pipelined batch
	// cannot be checked against the sequences before the ones queued
	// ahead of it are appended.
	verifying int
}

// errDuplicate carries the original offset of a retried batch.
type errDuplicate struct{ baseOffset, lastOffset int64 }

func (e *errDuplicate) Error() string {
	return fmt.Sprintf("duplicate batch at offset %d", e.baseOffset)
}

// inSequence reports whether next follows last, wrapping at MaxInt32.
func inSequence(last, next int32) bool {
	return int64(next) == int64(last)+1 || (next == 0 && last == 0x7fffffff)
}

// checkProducerLocked validates a batch against the producer's state,
// as Kafka's ProducerAppendInfo does: a retried duplicate returns
// *errDuplicate with its original offset; an old epoch is
// INVALID_PRODUCER_EPOCH; a gap, or a new epoch not starting at
// sequence 0, is OUT_OF_ORDER_SEQUENCE_NUMBER; a non-transactional batch
// inside an open transaction is INVALID_TXN_STATE. A producer without
// state (new, expired, or its data removed) may start at any sequence,
// as Kafka accepts since KIP-360.
func (p *partition) checkProducerLocked(h *batch.Header) error {
	if h.ProducerID < 0 {
		return nil
	}
	st := p.producers.get(h.ProducerID)
	if st == nil {
		return nil
	}
	if h.ProducerEpoch < st.epoch {
		return kerr.InvalidProducerEpoch
	}
	if _, open := p.ongoing[h.ProducerID]; open && !h.IsTransactional() {
		return kerr.InvalidTxnState
	}
	if h.ProducerEpoch > st.epoch {
		if h.BaseSequence != 0 {
			return kerr.OutOfOrderSequenceNumber
		}
		return nil
	}
	last := h.LastSequence()
	for _, m := range st.batches {
		if m.firstSeq == h.BaseSequence && m.lastSeq == last {
			return &errDuplicate{baseOffset: m.firstOffset, lastOffset: m.lastOffset}
		}
	}
	if !inSequence(st.lastSeq(), h.BaseSequence) {
		return kerr.OutOfOrderSequenceNumber
	}
	return nil
}

// stateLocked returns the producer's state, creating it.
func (p *partition) stateLocked(pid int64, epoch int16) *producerState {
	st := p.producers.get(pid)
	if st == nil {
		st = &producerState{id: pid, epoch: epoch, coordinatorEpoch: -1}
		p.producers.put(st)
	}
	return st
}

// updateProducerLocked records an appended batch: a data batch's
// sequences and, for a transactional one, the start of a transaction; a
// control batch's transaction marker.
func (p *partition) updateProducerLocked(h *batch.Header, data []byte, base, last int64) {
	if h.ProducerID < 0 {
		return
	}
	if h.IsControl() {
		typ, coordEpoch, ok := parseMarker(data)
		if ok && (typ == batch.ControlAbort || typ == batch.ControlCommit) {
			p.completeTxnLocked(h.ProducerID, h.ProducerEpoch, coordEpoch, base, typ == batch.ControlAbort, h.MaxTimestamp)
		}
		return
	}
	st := p.stateLocked(h.ProducerID, h.ProducerEpoch)
	if h.ProducerEpoch > st.epoch {
		st.epoch = h.ProducerEpoch
		st.batches = st.batches[:0]
	}
	st.lastTimestamp = h.MaxTimestamp
	if h.IsTransactional() {
		if _, open := p.ongoing[h.ProducerID]; !open {
			if p.ongoing == nil {
				p.ongoing = map[int64]int64{}
			}
			p.ongoing[h.ProducerID] = base
		}
	}
	if h.BaseSequence < 0 {
		// Written by a coordinator (transactional offset commits):
		// no sequence to track.
		return
	}
	if len(st.batches) == producerWindow {
		copy(st.batches, st.batches[1:])
		st.batches = st.batches[:producerWindow-1]
	}
	st.batches = append(st.batches, batchMeta{
		firstSeq: h.BaseSequence, lastSeq: h.LastSequence(),
		firstOffset: base, lastOffset: last,
	})
}

// completeTxnLocked applies a transaction marker at offset marker: the
// producer's open transaction here ends; an aborted one with data goes
// into the aborted-transaction index.
func (p *partition) completeTxnLocked(pid int64, epoch int16, coordEpoch int32, marker int64, abort bool, ts int64) {
	st := p.stateLocked(pid, epoch)
	if epoch > st.epoch {
		st.epoch = epoch
		st.batches = st.batches[:0]
	}
	st.coordinatorEpoch = coordEpoch
	st.lastTimestamp = ts
	delete(p.guards, pid)
	first, open := p.ongoing[pid]
	if !open {
		return
	}
	delete(p.ongoing, pid)
	if marker >= p.log.HighWatermark() {
		p.unstable = append(p.unstable, completedTxn{firstOffset: first, markerOffset: marker})
	}
	if abort {
		lso := marker + 1
		for _, f := range p.ongoing {
			lso = min(lso, f)
		}
		err := p.aborted.Append(partlog.AbortedTxn{ProducerID: pid, FirstOffset: first, LastOffset: marker, LastStableOffset: lso})
		if err != nil && p.onIndexError != nil {
			p.onIndexError(err)
		}
	}
}

// noteInternalAppendLocked records a batch the broker wrote itself: the
// transactional offset commits of a producer open its transaction on
// the __consumer_offsets partition, which its marker ends.
func (p *partition) noteInternalAppendLocked(data []byte, base, last int64) {
	if h, err := batch.ParseHeader(data); err == nil && h.ProducerID >= 0 {
		p.updateProducerLocked(&h, data, base, last)
	}
}

// parseMarker reads the type and coordinator epoch of a control batch's
// first record.
func parseMarker(data []byte) (typ batch.ControlType, coordEpoch int32, ok bool) {
	_ = batch.Records(data, func(r batch.Record) bool {
		t, err := batch.ParseControlKey(r.Key)
		if err != nil {
			return false
		}
		typ, ok = t, true
		if t == batch.ControlAbort || t == batch.ControlCommit {
			if e, err := batch.ParseEndTxnMarker(r.Value); err == nil {
				coordEpoch = e
			} else {
				ok = false
			}
		}
		return false
	})
	return typ, coordEpoch, ok
}

// checkMarkerLocked validates a transaction marker the coordinator
// writes, as Kafka's appendEndTxnMarker: under transactions v2 the
// marker's epoch must be above the producer's (the coordinator bumped
// it), so a marker of an older transaction cannot end a newer one;
// v0/v1 markers carry the transaction's own epoch. A v2 marker the
// partition already has (a retry after the coordinator restarted)
// reports done. An older coordinator epoch is
// TRANSACTION_COORDINATOR_FENCED.
func (p *partition) checkMarkerLocked(pid int64, epoch int16, coordEpoch int32, tv2 bool) (done bool, err error) {
	st := p.producers.get(pid)
	if st == nil {
		return false, nil
	}
	if epoch < st.epoch || tv2 && epoch == st.epoch {
		if _, open := p.ongoing[pid]; tv2 && epoch == st.epoch && !open {
			return true, nil
		}
		return false, kerr.InvalidProducerEpoch
	}
	if st.coordinatorEpoch > coordEpoch {
		return false, kerr.TransactionCoordinatorFenced
	}
	return false, nil
}

// lastStableOffset is the offset read_committed consumers read up to:
// the first offset of the earliest open transaction (or of a completed
// one whose marker is not below the high watermark yet), else the high
// watermark; never below the log start offset.
func (p *partition) lastStableOffset() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lastStableOffsetLocked()
}

func (p *partition) lastStableOffsetLocked() int64 {
	hw := p.log.HighWatermark()
	lso := hw
	for _, first := range p.ongoing {
		lso = min(lso, first)
	}
	for _, c := range p.unstable {
		if c.markerOffset >= hw {
			lso = min(lso, c.firstOffset)
		}
	}
	return max(lso, p.log.LogStartOffset())
}

// pruneUnstableLocked forgets completed transactions whose markers are
// below the high watermark.
func (p *partition) pruneUnstableLocked() {
	if len(p.unstable) == 0 {
		return
	}
	hw := p.log.HighWatermark()
	kept := p.unstable[:0]
	for _, c := range p.unstable {
		if c.markerOffset >= hw {
			kept = append(kept, c)
		}
	}
	p.unstable = kept
}

// expireProducersLocked removes the state of producers idle for
// producer.id.expiration.ms (by their batches' timestamps, as Kafka)
// that have no open transaction here. Their next batch is accepted at
// any sequence, as from a new producer.
func (p *partition) expireProducersLocked(nowMs, expirationMs int64) int {
	n := 0
	for id, st := range p.producers.all() {
		if _, open := p.ongoing[id]; open {
			continue
		}
		if nowMs-st.lastTimestamp >= expirationMs {
			p.producers.remove(id)
			delete(p.guards, id)
			n++
		}
	}
	return n
}

// resetProducersLocked forgets every producer and transaction before a
// rebuild from the log.
func (p *partition) resetProducersLocked() {
	p.producers = producerTable{}
	p.ongoing = nil // allocated at the first open transaction
	p.guards = nil
	p.unstable = nil
}

// producerScanChunk is how much log is read at a time when producer
// state is rebuilt.
const producerScanChunk = 1 << 20

var producerScanBufs = sync.Pool{New: func() any {
	b := make([]byte, 0, producerScanChunk)
	return &b
}}

// loadProducers rebuilds producer state, so a retried batch that reached
// the disk before a crash is recognised as a duplicate after it, and the
// open transactions and the aborted-transaction index are what the log
// says: from the newest usable snapshot, replaying the log after it (the
// whole log when there is no snapshot). The index holds every abort
// marker below the snapshot (it is synced first); markers after it are
// re-appended if its tail was lost.
func (b *Broker) loadProducers(p *partition) error {
	p.resetProducersLocked()
	end := p.log.LogEndOffset()
	if err := p.aborted.TruncateFrom(end); err != nil {
		return fmt.Errorf("broker: %s-%d: %w", p.topic, p.index, err)
	}
	off := p.log.LogStartOffset()
	snapOff, snap, next := b.loadProducerSnapshot(p.log.Dir(), end)
	p.snapshotNext = next
	if snapOff >= 0 {
		p.producers = producerTable{m: snap.producers}
		if len(snap.ongoing) > 0 {
			p.ongoing = snap.ongoing
		}
		off = max(off, snapOff)
	}
	var buf []byte
	if off < end {
		// One buffer per replay at a time, not per partition: a broker
		// starting after a crash replays thousands of partitions, and a
		// fresh 1 MiB buffer each kept its garbage collector busy.
		bp := producerScanBufs.Get().(*[]byte)
		buf = *bp
		defer func() {
			*bp = buf[:0]
			producerScanBufs.Put(bp)
		}()
	}
	for off < end {
		data, err := p.log.Read(buf[:0], off, producerScanChunk, end, true)
		if err != nil {
			if errors.Is(err, partlog.ErrCorrupt) {
				// The corrupt batch is never served; skip past it.
				off++
				continue
			}
			return fmt.Errorf("broker: rebuilding producer state of %s-%d: %w", p.topic, p.index, err)
		}
		if len(data) == 0 {
			break
		}
		for len(data) > 0 {
			h, err := batch.ParseHeader(data)
			if err != nil || h.Size() > len(data) {
				break
			}
			if h.NextOffset() > off {
				p.updateProducerLocked(&h, data[:h.Size()], h.BaseOffset, h.LastOffset())
			}
			// Replayed bytes are not in a snapshot yet: the next
			// clean shutdown writes one.
			p.bytesSinceSnapshot += int64(h.Size())
			off = h.NextOffset()
			data = data[h.Size():]
		}
		if cap(data) > cap(buf) {
			buf = data[:0]
		}
	}
	// Everything replayed is below the high watermark (one replica).
	p.unstable = nil
	return nil
}

// needsTxnVerifyLocked reports whether a transactional batch must be
// verified with the coordinator: it would begin the producer's
// transaction on this partition (none is open here at its epoch).
func (p *partition) needsTxnVerifyLocked(h *batch.Header) bool {
	_, open := p.ongoing[h.ProducerID]
	st := p.producers.get(h.ProducerID)
	return !open || st == nil || st.epoch != h.ProducerEpoch
}

// guardLocked returns the producer's verification guard, creating it.
func (p *partition) guardLocked(pid int64) *txnGuard {
	g := p.guards[pid]
	if g == nil {
		g = &txnGuard{}
		if p.guards == nil {
			p.guards = map[int64]*txnGuard{}
		}
		p.guards[pid] = g
	}
	return g
}

// verifyingLocked reports whether batches of the producer are with the
// transaction coordinator.
func (p *partition) verifyingLocked(pid int64) bool {
	g := p.guards[pid]
	return g != nil && g.verifying > 0
}

// guardValidLocked reports whether a batch verified under g may be
// appended: no marker ended the transaction since (the guard is still
// there, or the transaction it verified is open here at its epoch).
func (p *partition) guardValidLocked(h *batch.Header, g *txnGuard) bool {
	return p.guards[h.ProducerID] == g || !p.needsTxnVerifyLocked(h)
}

// dropGuard forgets a guard whose verification failed.
func (p *partition) dropGuard(pid int64, g *txnGuard) {
	p.mu.Lock()
	if p.guards[pid] == g {
		delete(p.guards, pid)
	}
	p.mu.Unlock()
}

// abortedTxns lists the aborted transactions a read_committed fetch of
// [from, upTo) reports: never nil, as Kafka sends an empty list.
func (p *partition) abortedTxns(from, upTo int64) []kmsg.FetchResponseTopicPartitionAbortedTransaction {
	es := p.aborted.Collect(nil, from, upTo)
	out := make([]kmsg.FetchResponseTopicPartitionAbortedTransaction, len(es))
	for i, e := range es {
		out[i] = kmsg.FetchResponseTopicPartitionAbortedTransaction{ProducerID: e.ProducerID, FirstOffset: e.FirstOffset}
	}
	return out
}
