package broker

import (
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/gregor-streaming/gregor/internal/batch"
	"github.com/gregor-streaming/gregor/internal/partlog"
)

// producerWindow is how many recent batches per producer are remembered
// to answer retried duplicates, as Kafka (and the clients'
// max.in.flight.requests.per.connection=5 limit) assume.
const producerWindow = 5

// producerState is the idempotence state of one producer on one
// partition.
type producerState struct {
	epoch int16
	// batches are the most recent batches, oldest first.
	batches []batchMeta
	// lastTimestamp is the max timestamp of the latest batch, for
	// expiry (producer.id.expiration.ms).
	lastTimestamp int64
}

type batchMeta struct {
	firstSeq, lastSeq       int32
	firstOffset, lastOffset int64
}

// errDuplicate carries the original offset of a retried batch.
type errDuplicate struct{ baseOffset int64 }

func (e *errDuplicate) Error() string {
	return fmt.Sprintf("duplicate batch at offset %d", e.baseOffset)
}

// checkProducerLocked validates an idempotent batch against the
// producer's state, as Kafka's ProducerStateManager does: a retried
// duplicate returns *errDuplicate with its original offset; an old
// epoch is INVALID_PRODUCER_EPOCH; a gap is OUT_OF_ORDER_SEQUENCE_NUMBER.
func (p *partition) checkProducerLocked(h *batch.Header) error {
	if h.ProducerID < 0 {
		return nil
	}
	st := p.producers[h.ProducerID]
	if st == nil {
		// Unknown producer (new, or its state expired or was
		// removed by retention): Kafka accepts any sequence.
		return nil
	}
	if h.ProducerEpoch < st.epoch {
		return kerr.InvalidProducerEpoch
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
			return &errDuplicate{baseOffset: m.firstOffset}
		}
	}
	if len(st.batches) > 0 {
		want := batch.IncrementSequence(st.batches[len(st.batches)-1].lastSeq, 1)
		if h.BaseSequence != want {
			return kerr.OutOfOrderSequenceNumber
		}
	}
	return nil
}

// updateProducerLocked records an appended batch.
func (p *partition) updateProducerLocked(h *batch.Header, base, last int64) {
	if h.ProducerID < 0 {
		return
	}
	st := p.producers[h.ProducerID]
	if st == nil {
		st = &producerState{}
		p.producers[h.ProducerID] = st
	}
	if h.ProducerEpoch != st.epoch {
		st.epoch = h.ProducerEpoch
		st.batches = st.batches[:0]
	}
	if h.IsControl() {
		// Control batches (transaction markers) carry no sequence.
		st.lastTimestamp = h.MaxTimestamp
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
	st.lastTimestamp = h.MaxTimestamp
}

// producerScanChunk is how much log is read at a time when producer
// state is rebuilt.
const producerScanChunk = 1 << 20

// loadProducers rebuilds producer state, so a retried batch that reached
// the disk before a crash is recognised as a duplicate after it: from
// the newest usable snapshot, replaying the log after it (the whole log
// when there is no snapshot).
func (b *Broker) loadProducers(p *partition) error {
	end := p.log.LogEndOffset()
	off := p.log.LogStartOffset()
	if snapOff, producers := b.loadProducerSnapshot(p.log.Dir(), end); snapOff >= 0 {
		p.producers = producers
		off = max(off, snapOff)
	}
	buf := make([]byte, 0, producerScanChunk)
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
			p.updateProducerLocked(&h, h.BaseOffset, h.LastOffset())
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
	return nil
}
