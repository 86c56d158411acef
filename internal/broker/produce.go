package broker

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/batch"
	"github.com/gregor-streaming/gregor/internal/metadata"
	"github.com/gregor-streaming/gregor/internal/partlog"
	"github.com/gregor-streaming/gregor/internal/wire"
)

// Produce: v0-13 advertised, v3-13 served
//
// Version notes:
//   - v0-2: advertised and answered UNSUPPORTED_VERSION, as Kafka 4 does
//     for librdkafka's sake (KAFKA-18659)
//   - v3: TransactionalID; magic 2 only
//   - v5: LogStartOffset in the response
//   - v7: zstd allowed (KIP-110)
//   - v8: RecordErrors, ErrorMessage (KIP-467)
//   - v9: flexible
//   - v10-11: CurrentLeader/NodeEndpoints tags (KIP-951)
//   - v12: transactions v2 implicit AddPartitionsToTxn (KIP-890)
//   - v13: topics by ID (KIP-516)
//
// Batches are checked as Kafka's LogValidator does: a malformed one is
// INVALID_RECORD, which clients do not retry; damaged bytes are
// CORRUPT_MESSAGE, which they do (producedBatchError).
//
// An acks=0 request with a failed partition closes the connection, as
// Kafka does: the producer gets no response to learn it from.
//
// A transactional batch in a request without a transactional ID fails
// every partition of the request, known or not, with
// TRANSACTIONAL_ID_AUTHORIZATION_FAILED before any topic is looked at,
// as in Kafka (transactionalProduceError).
//
// Then, per partition and in Kafka's order: an unknown topic or
// partition; a batch ProduceRequest.validateRecords refuses (magic,
// batch count, zstd before v7: producedRecordsError); invalid acks
// (INVALID_REQUIRED_ACKS); an internal topic, which clients cannot
// append to (INVALID_TOPIC_EXCEPTION); acks=all to a topic whose
// min.insync.replicas is above 1 (NOT_ENOUGH_REPLICAS: one broker is one
// in-sync replica); then the rest of the batch's checks (produceTo).
func init() { register(0, 0, 13, (*Broker).handleProduce) }

func (b *Broker) handleProduce(_ context.Context, req *wire.Request, respond func(kmsg.Response)) {
	r := req.Body.(*kmsg.ProduceRequest)
	resp := r.ResponseKind().(*kmsg.ProduceResponse)
	respond = b.throttleProduce(req, r, respond)
	img := b.meta.Image()

	// remaining counts partitions still waiting for fsync, plus one for
	// this function, so the response goes out exactly once, after all.
	// acks=0 gets no response, and does not wait for anything: the
	// appends are done when this function returns.
	var remaining atomic.Int32
	remaining.Store(1)
	var dropped map[[2]int]bool // see supersededProduce
	finish := func() {
		if remaining.Add(-1) == 0 && r.Acks != 0 {
			if dropped != nil {
				// Topics left without a partition are not answered.
				resp.Topics = slices.DeleteFunc(resp.Topics, func(st kmsg.ProduceResponseTopic) bool { return len(st.Partitions) == 0 })
			}
			respond(resp)
		}
	}
	if r.Acks == 0 {
		defer respond(nil)
	}

	// failed is set when a partition fails before the request's loop
	// ends (acks=0 closes the connection then).
	var failed atomic.Bool
	var requestErr *kerr.Error
	var requestMsg string
	switch {
	case r.Version < 3:
		requestErr = kerr.UnsupportedVersion
	default:
		requestErr, requestMsg = transactionalProduceError(r, func(id string) bool {
			return b.authorizedTxnID(req, kmsg.ACLOperationWrite, id)
		})
	}
	// Invalid acks fail only the partitions that reach Kafka's
	// ReplicaManager.appendRecords: those of known topics whose
	// batches passed ProduceRequest.validateRecords.
	invalidAcks := r.Acks != 0 && r.Acks != 1 && r.Acks != -1

	resp.Topics = make([]kmsg.ProduceResponseTopic, len(r.Topics))
	// A partition named more than once: Kafka keeps the last
	// occurrence only (KafkaApis.handleProduceRequest collects the
	// partitions in a map), so the earlier ones are neither appended
	// nor answered.
	dropped = supersededProduce(r)
	syncs := &produceSyncs{}
	// Also on a panic (recovered by Serve): the partitions appended so
	// far still get their syncs and callbacks.
	defer syncs.flush()
	for i := range r.Topics {
		rt := &r.Topics[i]
		st := &resp.Topics[i]
		st.Default()
		st.Topic = rt.Topic
		st.TopicID = rt.TopicID
		var topic *metadata.Topic
		var topicErr *kerr.Error
		if r.Version >= 13 {
			if t, ok := img.TopicByID(metadata.UUID(rt.TopicID)); ok {
				topic = t
			} else {
				topicErr = kerr.UnknownTopicID
			}
		} else if t, ok := img.Topic(rt.Topic); ok {
			topic = t
		} else {
			topicErr = kerr.UnknownTopicOrPartition
		}
		// WRITE on the topic, checked before its existence (an unknown
		// name tells nothing to a client that may not write it), as
		// Kafka's handleProduceRequest.
		if topic != nil && !b.authorizedTopic(req, kmsg.ACLOperationWrite, topic.Name) ||
			topic == nil && r.Version < 13 && !b.authorizedTopic(req, kmsg.ACLOperationWrite, rt.Topic) {
			topic, topicErr = nil, kerr.TopicAuthorizationFailed
		}
		// The coordinators' state, replayed at every start: only they
		// append to it (appendInternal), as in Kafka, which refuses
		// it in ReplicaManager.appendToLocalLog, after the checks
		// below that come before the ReplicaManager.
		internal := topic != nil && isInternal(topic.Name)
		var parts []*partition
		if topic != nil {
			parts = b.partitions(topic.ID)
		}
		kept := len(rt.Partitions)
		for j := range rt.Partitions {
			if dropped[[2]int{i, j}] {
				kept--
			}
		}
		st.Partitions = make([]kmsg.ProduceResponseTopicPartition, kept)
		k := 0
		for j := range rt.Partitions {
			if dropped[[2]int{i, j}] {
				continue
			}
			rp := &rt.Partitions[j]
			sp := &st.Partitions[k]
			k++
			sp.Default()
			sp.Partition = rp.Partition
			switch {
			case requestErr != nil:
				sp.ErrorCode = requestErr.Code
				if requestMsg != "" && r.Version >= 8 {
					sp.ErrorMessage = kmsg.StringPtr(requestMsg)
				}
				failed.Store(true)
				continue
			case topicErr != nil:
				sp.ErrorCode = topicErr.Code
				failed.Store(true)
				continue
			}
			p := partitionAt(parts, rp.Partition)
			if p == nil {
				sp.ErrorCode = b.absentError(topic, rp.Partition).Code
				failed.Store(true)
				continue
			}
			if err := producedRecordsError(rp.Records, r.Version); err != nil {
				p.stats.Produced(0, 0, true)
				sp.ErrorCode = err.Code
				failed.Store(true)
				continue
			}
			switch {
			case invalidAcks:
				sp.ErrorCode = kerr.InvalidRequiredAcks.Code
				failed.Store(true)
				continue
			case internal:
				sp.ErrorCode = kerr.InvalidTopicException.Code
				failed.Store(true)
				continue
			}
			if minISR, isr := p.settings.Load().minInsync, int64(p.rep.isrLen.Load()); r.Acks == -1 && isr < minISR {
				// Too few in-sync replicas: acks=all cannot be
				// met, and Kafka refuses before appending.
				p.stats.Produced(0, 0, true)
				sp.ErrorCode = kerr.NotEnoughReplicas.Code
				if r.Version >= 8 {
					sp.ErrorMessage = kmsg.StringPtr(fmt.Sprintf("%d in-sync replicas are fewer than min.insync.replicas %d", isr, minISR))
				}
				failed.Store(true)
				continue
			}
			remaining.Add(1)
			done := finish
			if r.Acks == 0 {
				// The partition's error, read where it is final
				// (an fsync callback may set it concurrently).
				done = func() {
					if sp.ErrorCode != 0 {
						failed.Store(true)
					}
					finish()
				}
			}
			b.produceTo(p, rp.Records, r.Version, r.TransactionID, nil, syncs, sp, waitFor(r), done)
		}
	}
	syncs.flush()
	if r.Acks == 0 && failed.Load() && req.Client.Close != nil {
		// No response tells an acks=0 producer of the failure, so
		// Kafka closes its connection: the client sees the disconnect
		// and refreshes its metadata (KafkaApis.handleProduceRequest).
		// Only failures known by now count; a later fsync failure
		// goes unreported, as it would in Kafka.
		b.log.Info("closing connection after a failed acks=0 produce", "client", req.ClientID, "remote", req.Client.Remote)
		req.Client.Close()
	}
	finish()
}

// transactionalProduceError is the error Kafka answers on every
// partition of a produce request before looking at any topic
// (KafkaApis.handleProduceRequest, RequestUtils.hasTransactionalRecords):
// TRANSACTIONAL_ID_AUTHORIZATION_FAILED when the first batch of some
// partition is transactional but the request has no transactional ID,
// or one the client may not WRITE (mayWrite).
// Kafka reads the first batch of each partition in order until it has
// seen both an idempotent and a transactional one; a batch header it
// cannot read there (peekBatch) fails the whole request as
// CORRUPT_MESSAGE, with the reason as the message.
func transactionalProduceError(r *kmsg.ProduceRequest, mayWrite func(txnID string) bool) (*kerr.Error, string) {
	var idempotent, transactional bool
scan:
	for i := range r.Topics {
		for j := range r.Topics[i].Partitions {
			records := r.Topics[i].Partitions[j].Records
			size, magic, corrupt := peekBatch(records)
			if corrupt != "" {
				return kerr.CorruptMessage, corrupt
			}
			// The attributes (offset 21) and producer ID (offset
			// 43) of a magic-2 batch; one too short to hold them is
			// refused later (batch.ValidateProduced).
			if size > 0 && magic == 2 {
				if size >= 43+8 {
					idempotent = idempotent || int64(binary.BigEndian.Uint64(records[43:])) >= 0
				}
				if size >= 21+2 {
					transactional = transactional || binary.BigEndian.Uint16(records[21:])&batch.AttrTransactional != 0
				}
			}
			if idempotent && transactional {
				break scan
			}
		}
	}
	if transactional && (r.TransactionID == nil || !mayWrite(*r.TransactionID)) {
		return kerr.TransactionalIDAuthorizationFailed, ""
	}
	return nil, ""
}

// producedRecordsError is the error of a partition's records that Kafka
// refuses before the ReplicaManager (ProduceRequest.validateRecords in
// KafkaApis.handleProduceRequest), so before invalid acks,
// INVALID_TOPIC_EXCEPTION for an internal topic and NOT_ENOUGH_REPLICAS:
// no whole batch or one not of magic 2 (INVALID_RECORD), zstd before v7
// (UNSUPPORTED_COMPRESSION_TYPE), a second whole batch (INVALID_RECORD),
// and a header Kafka cannot read (CORRUPT_MESSAGE). Kafka answers them
// without a message. The rest of the batch's checks (CRC, offsets,
// producer fields) come later, in produceTo, as in Kafka's LogValidator.
func producedRecordsError(records []byte, version int16) *kerr.Error {
	size, magic, corrupt := peekBatch(records)
	switch {
	case corrupt != "":
		return kerr.CorruptMessage
	case size == 0, magic != 2:
		return kerr.InvalidRecord
	case version < 7 && size >= 21+2 && binary.BigEndian.Uint16(records[21:])&batch.AttrCompressionMask == batch.CodecZstd:
		return kerr.UnsupportedCompressionType
	}
	next, _, corrupt := peekBatch(records[size:])
	switch {
	case corrupt != "":
		return kerr.CorruptMessage
	case next > 0:
		return kerr.InvalidRecord
	}
	return nil
}

// peekBatch reads the header of the first batch in records as Kafka's
// batch iterator does (ByteBufferLogInputStream.nextBatch), without the
// CRC: size is 0 when records hold no whole batch (fewer than 17 bytes,
// or fewer than the batch's length says); corrupt is Kafka's reason when
// the length is below the smallest record (14 bytes) or the magic is not
// 0-2, which it refuses as CORRUPT_MESSAGE.
func peekBatch(records []byte) (size int, magic int8, corrupt string) {
	if len(records) < batch.LengthOverhead {
		return 0, 0, ""
	}
	n := int32(binary.BigEndian.Uint32(records[8:]))
	if n < 14 {
		return 0, 0, fmt.Sprintf("Record size %d is less than the minimum record overhead (14)", n)
	}
	if len(records) < 17 {
		return 0, 0, ""
	}
	magic = int8(records[16])
	if magic < 0 || magic > 2 {
		return 0, 0, fmt.Sprintf("Invalid magic found in record: %d", magic)
	}
	if size = int(n) + batch.LengthOverhead; size > len(records) {
		return 0, magic, ""
	}
	return size, magic, ""
}

// supersededProduce returns the (topic, partition) indexes of r's
// partitions named again later in the request (by topic ID from v13, by
// name before), or nil when none is: Kafka appends and answers only a
// partition's last occurrence.
func supersededProduce(r *kmsg.ProduceRequest) map[[2]int]bool {
	if !produceMayRepeat(r) {
		return nil
	}
	type topicKey struct {
		name string
		id   [16]byte
	}
	// Partitions seen, per topic: a bitset for the usual small
	// indexes, a map beyond.
	type seenSet struct {
		bits  []uint64
		other map[int32]bool
	}
	var dropped map[[2]int]bool
	var seen map[topicKey]*seenSet
	if len(r.Topics) > 1 {
		seen = make(map[topicKey]*seenSet, len(r.Topics))
	}
	var single seenSet
	for i := len(r.Topics) - 1; i >= 0; i-- {
		rt := &r.Topics[i]
		set := &single
		if seen != nil {
			k := topicKey{name: rt.Topic}
			if r.Version >= 13 {
				k = topicKey{id: rt.TopicID}
			}
			if set = seen[k]; set == nil {
				set = &seenSet{}
				seen[k] = set
			}
		}
		for j := len(rt.Partitions) - 1; j >= 0; j-- {
			p := rt.Partitions[j].Partition
			var dup bool
			if p >= 0 && p < 1<<16 {
				w, bit := int(p)/64, uint64(1)<<(p%64)
				if w >= len(set.bits) {
					set.bits = append(set.bits, make([]uint64, w+1-len(set.bits))...)
				}
				dup = set.bits[w]&bit != 0
				set.bits[w] |= bit
			} else {
				if set.other == nil {
					set.other = map[int32]bool{}
				}
				dup = set.other[p]
				set.other[p] = true
			}
			if dup {
				if dropped == nil {
					dropped = map[[2]int]bool{}
				}
				dropped[[2]int{i, j}] = true
			}
		}
	}
	return dropped
}

// produceMayRepeat reports whether a partition may be named twice in r:
// false when none is, found without allocating in requests of up to 64
// partitions (the usual ones).
func produceMayRepeat(r *kmsg.ProduceRequest) bool {
	n := 0
	for i := range r.Topics {
		n += len(r.Topics[i].Partitions)
	}
	if n > 64 {
		return true
	}
	for i := range r.Topics {
		ti := &r.Topics[i]
		for k := 0; k <= i; k++ {
			tk := &r.Topics[k]
			if (r.Version >= 13 && tk.TopicID != ti.TopicID) || (r.Version < 13 && tk.Topic != ti.Topic) {
				continue
			}
			for j := range ti.Partitions {
				end := len(tk.Partitions)
				if k == i {
					end = j
				}
				for _, p := range tk.Partitions[:end] {
					if p.Partition == ti.Partitions[j].Partition {
						return true
					}
				}
			}
		}
	}
	return false
}

// produceSyncs gathers the fsync requests of one produce request's
// partitions, to hand them to the syncer together once all are appended
// (partlog.RequestSyncs): a request to 8 partitions then costs one
// syncfs, not a trickle of fsyncs started while the others append. A
// nil *produceSyncs requests at once (a batch appended after its
// transaction was verified, outside the request's loop).
type produceSyncs struct{ reqs []partlog.SyncRequest }

func (s *produceSyncs) request(l *partlog.Log, done func(int64, error)) {
	if s == nil {
		l.RequestSync(done)
		return
	}
	s.reqs = append(s.reqs, partlog.SyncRequest{Log: l, Done: done})
	if len(s.reqs) >= syncsFlushEvery {
		s.flush() // a large request: sync as it goes
	}
}

// syncsFlushEvery is how many partitions of a request share one hand-off
// to the syncer: syncing as a large request appends overlaps the two
// (5% more records/s with 10,000 single-batch partitions per request
// than one hand-off at the end).
const syncsFlushEvery = 64

func (s *produceSyncs) flush() {
	if len(s.reqs) > 0 {
		partlog.RequestSyncs(s.reqs)
		s.reqs = s.reqs[:0]
	}
}

// produceTo validates and appends one partition's batch and calls done
// when the response for it is final: after fsync in durable mode. The
// first transactional batch of a producer's transaction on the
// partition is verified with the transaction coordinator first (and,
// from v12, added to the transaction: KIP-890); produceTo then runs
// again with the guard the verification holds (producer.go).
func (b *Broker) produceTo(p *partition, records []byte, version int16, txnID *string, guard *txnGuard, syncs *produceSyncs, sp *kmsg.ProduceResponseTopicPartition, isr time.Duration, done func()) {
	produced := records
	fail := func(err *kerr.Error, msg string) {
		p.stats.Produced(0, 0, true)
		sp.ErrorCode = err.Code
		if msg != "" && version >= 8 {
			sp.ErrorMessage = kmsg.StringPtr(msg)
		}
		done()
	}
	h, err := batch.ValidateProduced(records)
	switch {
	case err != nil:
		fail(producedBatchError(err, &h), err.Error())
		return
	case h.Size() != len(records):
		// Kafka requires exactly one magic-2 batch per partition.
		fail(kerr.InvalidRecord, "produce request must hold exactly one record batch per partition")
		return
	case h.BaseOffset != 0:
		// The broker assigns offsets; Kafka refuses a client batch
		// that claims one (UnifiedLog.analyzeAndValidateRecords).
		fail(kerr.InvalidRecord, fmt.Sprintf("the batch's base offset should be 0, but it is %d", h.BaseOffset))
		return
	case h.IsControl():
		fail(kerr.InvalidRecord, "clients may not produce control batches")
		return
	case h.ProducerID >= 0 && h.BaseSequence < 0:
		// An idempotent batch without a sequence would be appended
		// untracked, and its retries appended again: Kafka refuses it
		// (LogValidator.validateBatch).
		fail(kerr.InvalidRecord, fmt.Sprintf("invalid sequence number %d in a batch with producer ID %d", h.BaseSequence, h.ProducerID))
		return
	case h.Codec() > batch.CodecZstd:
		fail(kerr.UnsupportedCompressionType, "unknown compression codec")
		return
	case h.Codec() == batch.CodecZstd && version < 7:
		fail(kerr.UnsupportedCompressionType, "zstd needs produce v7+")
		return
	case h.IsTransactional() && (txnID == nil || h.ProducerID < 0):
		fail(kerr.InvalidRecord, "a transactional batch needs a transactional ID and a producer ID")
		return
	}
	ps := p.settings.Load()
	records, h, cerr := convertProduced(ps, records, h)
	if cerr != nil {
		fail(cerr.err, cerr.msg)
		return
	}
	if int64(len(records)) > ps.maxMessageBytes {
		fail(kerr.MessageTooLarge, "")
		return
	}
	now := b.now().UnixMilli()
	logAppendTime := ps.logAppendTime
	if h.IsLogAppendTime() {
		// The timestamp type is the topic's, not the producer's, as
		// in Kafka's LogValidator: a LogAppendTime topic refuses a
		// batch that claims it, and a CreateTime topic stores it as
		// CreateTime (else consumers would read every record's
		// timestamp as the producer's maxTimestamp).
		if logAppendTime {
			fail(kerr.InvalidTimestamp, "producers should not set the timestamp type to LogAppendTime")
			return
		}
		batch.ClearLogAppendTime(records)
		h.Attributes &^= batch.AttrLogAppendTime
	}
	if !logAppendTime {
		if now-h.BaseTimestamp > ps.tsBeforeMax {
			fail(kerr.InvalidTimestamp, "record timestamp is too far in the past")
			return
		}
		if h.MaxTimestamp-now > ps.tsAfterMax {
			fail(kerr.InvalidTimestamp, "record timestamp is too far in the future")
			return
		}
	}

	p.mu.Lock()
	if p.deleted {
		p.mu.Unlock()
		fail(kerr.UnknownTopicOrPartition, "")
		return
	}
	// Before the sequence checks: the batches after a transaction's
	// first one on this partition, pipelined behind it, queue behind
	// its verification instead of finding a gap where it will land,
	// and so do those that arrive after it was appended while earlier
	// ones are still with the coordinator.
	if h.IsTransactional() {
		if guard == nil && (p.needsTxnVerifyLocked(&h) || p.verifyingLocked(h.ProducerID)) {
			g := p.guardLocked(h.ProducerID)
			g.verifying++
			p.mu.Unlock()
			b.verifyTxn(p, *txnID, &h, version, g, func(err *kerr.Error) {
				if err != nil {
					fail(err, "")
				} else {
					b.produceTo(p, produced, version, txnID, g, nil, sp, isr, done)
					if hook := b.verifiedAppendHook.Load(); hook != nil {
						(*hook)()
					}
				}
				p.mu.Lock()
				g.verifying--
				p.mu.Unlock()
			})
			return
		}
		if guard != nil && !p.guardValidLocked(&h, guard) {
			// A marker ended the transaction while the batch was
			// verified: it must not open one the coordinator does
			// not know.
			p.mu.Unlock()
			fail(kerr.InvalidTxnState, "the transaction ended while the batch was verified")
			return
		}
	}
	if err := p.checkProducerLocked(&h); err != nil {
		p.mu.Unlock()
		var dup *errDuplicate
		if errors.As(err, &dup) {
			sp.BaseOffset = dup.baseOffset
			sp.LogStartOffset = p.log.LogStartOffset()
			// Acknowledged as the original was: durable here, and
			// replicated for acks=all.
			b.awaitDurable(p, dup.lastOffset+1, syncs, sp, isr, done)
			return
		}
		var ke *kerr.Error
		if errors.As(err, &ke) {
			fail(ke, "")
			return
		}
		fail(kerr.UnknownServerError, err.Error())
		return
	}
	if logAppendTime {
		batch.SetLogAppendTime(records, now)
		sp.LogAppendTime = now
	}
	base, last, err := b.appendUnlock(p, &h, records)
	if err != nil {
		fail(kerr.KafkaStorageError, "")
		return
	}
	p.stats.Produced(len(records), h.NumRecords, false)

	sp.BaseOffset = base
	sp.LogStartOffset = p.log.LogStartOffset()
	b.awaitDurable(p, last+1, syncs, sp, isr, done)
}

// producedBatchError is the error code for a produced batch that
// batch.ValidateProduced refused, as Kafka tells them apart: a batch that
// is not whole, not magic 2, or whose record count disagrees with its
// offset range is INVALID_RECORD (ProduceRequest.validateRecords,
// LogValidator.validateBatch), which clients do not retry; a bad CRC or
// an impossible length is CORRUPT_MESSAGE, which they do (the bytes may
// have been damaged on the way).
func producedBatchError(err error, h *batch.Header) *kerr.Error {
	switch {
	case errors.Is(err, batch.ErrShort), errors.Is(err, batch.ErrRecordsCount):
		return kerr.InvalidRecord
	case errors.Is(err, batch.ErrMagic) && (h.Magic == 0 || h.Magic == 1):
		return kerr.InvalidRecord
	}
	return kerr.CorruptMessage
}

// appendUnlock appends batches of the producer of h to p's log and
// records them in its producer state, then releases p.mu, which the
// caller holds, in every case (producer snapshots start outside it).
func (b *Broker) appendUnlock(p *partition, h *batch.Header, data []byte) (base, last int64, err error) {
	base, last, err = p.log.Append(data, p.leaderEpoch)
	if err != nil {
		p.mu.Unlock()
		b.log.Error("append failed", "topic", p.topic, "partition", p.index, "err", err)
		return -1, -1, err
	}
	p.updateProducerLocked(h, data, base, last)
	p.notifyAppendLocked()
	snapshot := p.noteAppendLocked(len(data))
	p.mu.Unlock()
	if snapshot {
		b.startProducerSnapshot(p)
	}
	return base, last, nil
}

// waitFor is how long an acks=all produce waits for the ISR to
// replicate its records (the request's timeout, as Kafka's
// DelayedProduce); 0 for acks=0 and acks=1, which wait for this
// broker's fsync only.
func waitFor(r *kmsg.ProduceRequest) time.Duration {
	if r.Acks != -1 {
		return 0
	}
	return max(time.Duration(r.TimeoutMillis)*time.Millisecond, time.Millisecond)
}

// awaitDurable calls done once offsets below end are durable here
// (durable mode; at once when flush.messages/flush.ms relax durability)
// and, when isr is set (acks=all), replicated to the ISR: the high
// watermark reached end, within isr, with min.insync.replicas in the
// ISR (else NOT_ENOUGH_REPLICAS_AFTER_APPEND). The high watermark
// follows the ISR's synced offsets (replica.go).
func (b *Broker) awaitDurable(p *partition, end int64, syncs *produceSyncs, sp *kmsg.ProduceResponseTopicPartition, isr time.Duration, done func()) {
	replicated := func(err *kerr.Error) {
		if err != nil {
			sp.ErrorCode = err.Code
			sp.BaseOffset = -1
		}
		done()
	}
	minISR := int(p.settings.Load().minInsync)
	if !p.durable() {
		p.log.RequestSync(func(int64, error) {})
		if isr > 0 {
			p.durableAwaitISR(end, end, isr, minISR, replicated)
			return
		}
		p.durableTo(end)
		done()
		return
	}
	b.stats.ProducePurgatory.Add(1)
	syncs.request(p.log, func(durable int64, err error) {
		b.stats.ProducePurgatory.Add(-1)
		switch {
		case err != nil:
			b.log.Error("fsync failed", "topic", p.topic, "partition", p.index, "err", err)
			sp.ErrorCode = kerr.KafkaStorageError.Code
			sp.BaseOffset = -1
			done()
		case isr > 0:
			p.durableAwaitISR(durable, end, isr, minISR, replicated)
		default:
			p.durableTo(durable)
			done()
		}
	})
}
