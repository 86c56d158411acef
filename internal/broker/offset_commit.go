package broker

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/group"
	"github.com/gregor-streaming/gregor/internal/metadata"
	"github.com/gregor-streaming/gregor/internal/wire"
)

// OffsetCommit: v2-10
//
// Version notes:
//   - v2-4: RetentionTimeMillis (-1: the broker's offsets.retention);
//     an explicit one gives the commit its own expire timestamp
//   - v3: ThrottleMillis
//   - v5: no retention time (KIP-211)
//   - v6: LeaderEpoch (KIP-320)
//   - v7: InstanceID (KIP-345)
//   - v8: flexible
//   - v9: an unknown group with a generation is GROUP_ID_NOT_FOUND
//     rather than ILLEGAL_GENERATION (KIP-848)
//   - v10: topics by ID (KIP-516)
//
// Generation -1 commits without membership (consumers that assign
// partitions themselves, admin tools) to an empty group. The response
// is sent once the offsets are durable.
func init() { register(8, 2, 10, (*Broker).handleOffsetCommit) }

func (b *Broker) handleOffsetCommit(_ context.Context, req *wire.Request, respond func(kmsg.Response)) {
	r := req.Body.(*kmsg.OffsetCommitRequest)
	resp := r.ResponseKind().(*kmsg.OffsetCommitResponse)
	img := b.meta.Image()

	// Partitions of unknown topics are answered here; the rest go to
	// the coordinator, which reports per partition in the same order.
	var slots errSlots
	var cr group.CommitRequest
	cr.MemberID, cr.InstanceID, cr.Generation = r.MemberID, r.InstanceID, r.Generation
	cr.RetentionTime = -1
	cr.Version = r.Version
	if r.Version <= 4 && r.RetentionTimeMillis >= 0 {
		cr.RetentionTime = time.Duration(r.RetentionTimeMillis) * time.Millisecond
	}
	// READ on the group, then on each topic (Kafka's
	// handleOffsetCommitRequest).
	groupOK := b.authorizedGroup(req, kmsg.ACLOperationRead, r.Group)
	resp.Topics = make([]kmsg.OffsetCommitResponseTopic, len(r.Topics))
	for i, rt := range r.Topics {
		st := &resp.Topics[i]
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		st.Partitions = make([]kmsg.OffsetCommitResponseTopicPartition, len(rt.Partitions))
		var topic *metadata.Topic
		var topicErr *kerr.Error
		if r.Version >= 10 {
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
		switch {
		case !groupOK:
			topicErr = kerr.GroupAuthorizationFailed
		case topic != nil && !b.authorizedTopic(req, kmsg.ACLOperationRead, topic.Name),
			topic == nil && r.Version < 10 && !b.authorizedTopic(req, kmsg.ACLOperationRead, rt.Topic):
			topicErr = kerr.TopicAuthorizationFailed
		}
		var ct *group.CommitTopic
		for j, rp := range rt.Partitions {
			sp := &st.Partitions[j]
			sp.Partition = rp.Partition
			switch {
			case topicErr != nil:
				sp.ErrorCode = topicErr.Code
				continue
			case rp.Partition < 0 || int(rp.Partition) >= len(topic.Partitions):
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
				continue
			}
			if ct == nil {
				cr.Topics = append(cr.Topics, group.CommitTopic{Topic: topic.Name})
				ct = &cr.Topics[len(cr.Topics)-1]
			}
			cp := group.CommitPartition{Partition: rp.Partition, Offset: rp.Offset, LeaderEpoch: -1}
			if r.Version >= 6 {
				cp.LeaderEpoch = rp.LeaderEpoch
			}
			if rp.Metadata != nil {
				cp.Metadata = *rp.Metadata
			}
			ct.Partitions = append(ct.Partitions, cp)
			slots = append(slots, &sp.ErrorCode)
		}
	}
	if len(slots) == 0 {
		respond(resp)
		return
	}
	c, err := b.coordinator()
	if err != nil {
		slots.setAll(err)
		respond(resp)
		return
	}
	c.Commit(r.Group, cr, r.Version >= 9, func(res group.CommitResult) {
		slots.fill(res.Topics)
		respond(resp)
	})
}
