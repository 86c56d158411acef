package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/group"
	"github.com/gregor-streaming/gregor/internal/wire"
)

// OffsetDelete: v0
//
// Version notes:
//   - v0: KIP-496. Offsets of topics the group is subscribed to stay
//     (GROUP_SUBSCRIBED_TO_TOPIC); a group that is not a consumer group
//     must be empty (NON_EMPTY_GROUP).
func init() { register(47, 0, 0, (*Broker).handleOffsetDelete) }

func (b *Broker) handleOffsetDelete(_ context.Context, req *wire.Request, respond func(kmsg.Response)) {
	r := req.Body.(*kmsg.OffsetDeleteRequest)
	resp := r.ResponseKind().(*kmsg.OffsetDeleteResponse)
	img := b.meta.Image()

	// DELETE on the group, READ on each topic (Kafka's
	// handleOffsetDeleteRequest).
	if !b.authorizedGroup(req, kmsg.ACLOperationDelete, r.Group) {
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
		respond(resp)
		return
	}
	var slots errSlots
	var topics []group.OffsetDeleteTopic
	resp.Topics = make([]kmsg.OffsetDeleteResponseTopic, len(r.Topics))
	for i, rt := range r.Topics {
		st := &resp.Topics[i]
		st.Topic = rt.Topic
		st.Partitions = make([]kmsg.OffsetDeleteResponseTopicPartition, len(rt.Partitions))
		t, known := img.Topic(rt.Topic)
		readable := b.authorizedTopic(req, kmsg.ACLOperationRead, rt.Topic)
		var dt *group.OffsetDeleteTopic
		for j, rp := range rt.Partitions {
			sp := &st.Partitions[j]
			sp.Partition = rp.Partition
			if !readable {
				sp.ErrorCode = kerr.TopicAuthorizationFailed.Code
				continue
			}
			if !known || rp.Partition < 0 || int(rp.Partition) >= len(t.Partitions) {
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
				continue
			}
			if dt == nil {
				topics = append(topics, group.OffsetDeleteTopic{Topic: rt.Topic})
				dt = &topics[len(topics)-1]
			}
			dt.Partitions = append(dt.Partitions, rp.Partition)
			slots = append(slots, &sp.ErrorCode)
		}
	}
	c := b.startedCoordinator()
	if c == nil {
		resp.ErrorCode = kerr.GroupIDNotFound.Code
		respond(resp)
		return
	}
	c.DeleteOffsets(r.Group, topics, func(res group.OffsetDeleteResult) {
		if res.Err != nil {
			resp.ErrorCode = res.Err.Code
			respond(resp)
			return
		}
		slots.fill(res.Topics)
		respond(resp)
	})
}
