package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/metadata"
	"github.com/gregor-streaming/gregor/internal/wire"
)

// ListOffsets: v1-11
//
// Version notes:
//   - v1: single offset per partition, Timestamp in the response
//   - v2: IsolationLevel
//   - v4: CurrentLeaderEpoch, LeaderEpoch (KIP-320)
//   - v6: flexible
//   - v7: MAX_TIMESTAMP -3 (KIP-734)
//   - v8: EARLIEST_LOCAL -4 (KIP-405)
//   - v9: LATEST_TIERED -5 (KIP-1005)
//   - v10: TimeoutMillis (KIP-1075)
//   - v11: EARLIEST_PENDING_UPLOAD -6 (KIP-1023)
//
// Without tiered storage, -5 and -6 find nothing (offset -1), as Kafka.
func init() { registerSync(2, 1, 11, (*Broker).handleListOffsets) }

// Special timestamps of ListOffsets.
const (
	listLatest          = -1
	listEarliest        = -2
	listMaxTimestamp    = -3
	listEarliestLocal   = -4
	listLatestTiered    = -5
	listEarliestPending = -6
)

func (b *Broker) handleListOffsets(req *wire.Request) kmsg.Response {
	r := req.Body.(*kmsg.ListOffsetsRequest)
	resp := r.ResponseKind().(*kmsg.ListOffsetsResponse)
	img := b.meta.Image()
	committed := r.IsolationLevel == 1
	// A partition asked for more than once, under one topic entry or
	// several, is INVALID_REQUEST in every row, as in Kafka: the rows
	// may ask different timestamps, and a client matching answers by
	// partition could not tell them apart.
	type tp struct {
		topic     string
		partition int32
	}
	count := map[tp]int{}
	for _, rt := range r.Topics {
		for _, rp := range rt.Partitions {
			count[tp{rt.Topic, rp.Partition}]++
		}
	}
	for _, rt := range r.Topics {
		st := kmsg.NewListOffsetsResponseTopic()
		st.Topic = rt.Topic
		topic, topicOK := img.Topic(rt.Topic)
		// DESCRIBE on the topic, checked first (Kafka's
		// handleListOffsetRequest).
		described := b.authorizedTopic(req, kmsg.ACLOperationDescribe, rt.Topic)
		for _, rp := range rt.Partitions {
			sp := kmsg.NewListOffsetsResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.Timestamp, sp.Offset = -1, -1
			switch {
			case !described:
				sp.ErrorCode = kerr.TopicAuthorizationFailed.Code
			case count[tp{rt.Topic, rp.Partition}] > 1:
				sp.ErrorCode = kerr.InvalidRequest.Code
			case !timestampSupported(rp.Timestamp, r.Version):
				// Before the topic is looked up, as Kafka's
				// ReplicaManager.fetchOffset.
				sp.ErrorCode = kerr.UnsupportedVersion.Code
			case !topicOK:
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			default:
				b.listOffset(topic, &rp, &sp, committed)
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

// timestampSupported reports whether a ListOffsets version may ask for
// timestamp: any time, or a special timestamp from the version that
// introduced it. Kafka answers the others UNSUPPORTED_VERSION
// (ReplicaManager.isListOffsetsTimestampUnsupported), an unknown special
// timestamp included.
func timestampSupported(ts int64, version int16) bool {
	var since int16
	switch ts {
	case listLatest, listEarliest:
		since = 1
	case listMaxTimestamp:
		since = 7
	case listEarliestLocal:
		since = 8
	case listLatestTiered:
		since = 9
	case listEarliestPending:
		since = 11
	default:
		return ts >= 0
	}
	return version >= since
}

// listOffset answers one partition. The leader epoch returned is that of
// the offset found, as Kafka's (UnifiedLog.fetchOffsetByTimestamp,
// Partition.fetchOffsetForTimestamp): the current epoch for latest, the
// first epoch of the history for earliest, the epoch of the record's
// batch for a lookup by timestamp; -1 with no offset.
func (b *Broker) listOffset(topic *metadata.Topic, rp *kmsg.ListOffsetsRequestTopicPartition, sp *kmsg.ListOffsetsResponseTopicPartition, committed bool) {
	p := b.partition(topic.ID, rp.Partition)
	if p == nil {
		sp.ErrorCode = b.absentError(topic, rp.Partition).Code
		return
	}
	p.mu.Lock()
	epoch := p.leaderEpoch
	p.mu.Unlock()
	if err := leaderEpochError(rp.CurrentLeaderEpoch, epoch); err != nil {
		sp.ErrorCode = err.Code
		return
	}
	// The last offset a consumer of this isolation level may read:
	// latest answers it, and lookups by timestamp find only offsets
	// below it (Kafka's Partition.fetchOffsetForTimestamp), so that
	// read_committed never gets an offset inside an open transaction.
	fetchable := p.log.HighWatermark()
	if committed {
		fetchable = p.lastStableOffset()
	}
	var (
		off, ts int64
		found   bool
		err     error
	)
	switch rp.Timestamp {
	case listLatest:
		sp.Offset, sp.LeaderEpoch = fetchable, epoch
		return
	case listEarliest, listEarliestLocal:
		// Without tiered storage, the local log start is the log start.
		sp.Offset, sp.LeaderEpoch = p.log.LogStartOffset(), p.log.EarliestEpoch(epoch)
		return
	case listLatestTiered, listEarliestPending:
		// No tiered storage: nothing is tiered or pending (KIP-1005),
		// offset and epoch -1.
		return
	case listMaxTimestamp:
		off, ts, found, err = p.log.MaxTimestamp()
	default:
		off, ts, found, err = p.log.OffsetForTimestamp(rp.Timestamp)
	}
	if err != nil {
		sp.ErrorCode = kerr.KafkaStorageError.Code
		return
	}
	if found && off < fetchable {
		sp.Offset, sp.Timestamp, sp.LeaderEpoch = off, ts, p.log.EpochForOffset(off)
	}
}
