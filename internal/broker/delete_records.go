package broker

import (
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/config"
	"github.com/gregor-streaming/gregor/internal/partlog"
	"github.com/gregor-streaming/gregor/internal/wire"
)

// DeleteRecords: v0-2
//
// Version notes:
//   - v1: no change (throttle behaviour)
//   - v2: flexible
//
// Advances a partition's log start offset to the requested offset (-1:
// the high watermark), deleting the segments wholly below it; consumers
// then get OFFSET_OUT_OF_RANGE below it. The response's low watermark is
// the new log start offset. Offsets above the high watermark are
// OFFSET_OUT_OF_RANGE; topics without the delete cleanup policy refuse
// with POLICY_VIOLATION and internal topics with INVALID_TOPIC_EXCEPTION,
// as Kafka does.
func init() { registerSync(21, 0, 2, (*Broker).handleDeleteRecords) }

func (b *Broker) handleDeleteRecords(req *wire.Request) kmsg.Response {
	r := req.Body.(*kmsg.DeleteRecordsRequest)
	resp := r.ResponseKind().(*kmsg.DeleteRecordsResponse)
	img := b.meta.Image()
	for _, rt := range r.Topics {
		st := kmsg.NewDeleteRecordsResponseTopic()
		st.Topic = rt.Topic
		// DELETE on the topic (Kafka's handleDeleteRecordsRequest).
		deletable := b.authorizedTopic(req, kmsg.ACLOperationDelete, rt.Topic)
		for _, rp := range rt.Partitions {
			sp := kmsg.NewDeleteRecordsResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.LowWatermark = -1
			if !deletable {
				sp.ErrorCode = kerr.TopicAuthorizationFailed.Code
			} else if p := b.partitionOf(img, rt.Topic, rp.Partition); p == nil {
				sp.ErrorCode = b.absentErrorOf(img, rt.Topic, rp.Partition).Code
			} else if isInternal(rt.Topic) {
				// Whatever their cleanup.policy: trimming them would
				// lose committed offsets or transaction state.
				sp.ErrorCode = kerr.InvalidTopicException.Code
			} else {
				sp.LowWatermark, sp.ErrorCode = b.deleteRecords(p, rp.Offset)
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

// deleteRecords moves p's log start offset up to off and returns the low
// watermark and an error code.
func (b *Broker) deleteRecords(p *partition, off int64) (int64, int16) {
	if !hasCleanupPolicy(p.cfg.Load(), "delete") {
		return -1, kerr.PolicyViolation.Code
	}
	hw := p.log.HighWatermark()
	if off == -1 {
		off = hw
	}
	if off < 0 || off > hw {
		return -1, kerr.OffsetOutOfRange.Code
	}
	if err := p.log.SetLogStartOffset(off); err != nil {
		if errors.Is(err, partlog.ErrOffsetOutOfRange) {
			return -1, kerr.OffsetOutOfRange.Code
		}
		b.log.Error("delete records failed", "topic", p.topic, "partition", p.index, "offset", off, "err", err)
		return -1, kerr.KafkaStorageError.Code
	}
	lso := p.log.LogStartOffset()
	b.log.Info("records deleted", "topic", p.topic, "partition", p.index, "log_start_offset", lso)
	return lso, 0
}

// hasCleanupPolicy reports whether a topic's cleanup.policy includes
// policy (delete or compact).
func hasCleanupPolicy(c *config.TopicConfig, policy string) bool {
	for _, v := range config.SplitList(c.String("cleanup.policy")) {
		if v == policy {
			return true
		}
	}
	return false
}
