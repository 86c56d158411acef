package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/group"
	"github.com/gregor-streaming/gregor/internal/metadata"
	"github.com/gregor-streaming/gregor/internal/wire"
)

// ConsumerGroupDescribe: v0-1
//
// Version notes:
//   - v1: MemberType (always 1, consumer: Gregor has no classic
//     members in consumer groups)
//
// KIP-848 consumer groups only: a classic group or an unknown one is
// GROUP_ID_NOT_FOUND. DESCRIBE on the group, and on every topic of the
// members' assignments (else TOPIC_AUTHORIZATION_FAILED), as Kafka.
func init() { register(69, 0, 1, (*Broker).handleConsumerGroupDescribe) }

func (b *Broker) handleConsumerGroupDescribe(_ context.Context, req *wire.Request, respond func(kmsg.Response)) {
	r := req.Body.(*kmsg.ConsumerGroupDescribeRequest)
	resp := r.ResponseKind().(*kmsg.ConsumerGroupDescribeResponse)
	resp.Groups = make([]kmsg.ConsumerGroupDescribeResponseGroup, len(r.Groups))
	g := newGather(len(r.Groups), func() { respond(resp) })
	c := b.startedCoordinator()
	for i, id := range r.Groups {
		out := &resp.Groups[i]
		out.Default()
		out.Group = id
		out.AuthorizedOperations = authorizedOpsOmitted
		if !b.authorizedGroup(req, kmsg.ACLOperationDescribe, id) {
			out.ErrorCode = kerr.GroupAuthorizationFailed.Code
			g.one()
			continue
		}
		fill := func(d group.ConsumerDescribed) {
			defer g.one()
			if d.Err != nil {
				out.ErrorCode = d.Err.Code
				if d.ErrMessage != "" {
					out.ErrorMessage = kmsg.StringPtr(d.ErrMessage)
				}
				return
			}
			img := b.meta.Image()
			denied := false
			assignment := func(tps []group.ConsumerTopicPartitions) kmsg.Assignment {
				var a kmsg.Assignment
				a.TopicPartitions = []kmsg.AssignmentTopicPartition{}
				for _, t := range tps {
					at := kmsg.NewAssignmentTopicPartition()
					at.TopicID, at.Topic, at.Partitions = t.TopicID, t.Topic, t.Partitions
					if t, ok := img.TopicByID(metadata.UUID(t.TopicID)); ok {
						at.Topic = t.Name
					}
					if !b.authorizedTopic(req, kmsg.ACLOperationDescribe, at.Topic) {
						denied = true
					}
					a.TopicPartitions = append(a.TopicPartitions, at)
				}
				return a
			}
			out.State = d.State.String()
			out.Epoch, out.AssignmentEpoch, out.AssignorName = d.Epoch, d.AssignmentEpoch, d.Assignor
			for _, m := range d.Members {
				rm := kmsg.NewConsumerGroupDescribeResponseGroupMember()
				rm.MemberID, rm.InstanceID, rm.RackID, rm.MemberEpoch = m.MemberID, m.InstanceID, m.RackID, m.MemberEpoch
				rm.ClientID, rm.ClientHost = m.ClientID, m.ClientHost
				rm.SubscribedTopics, rm.SubscribedTopicRegex = m.Topics, m.Regex
				rm.Assignment, rm.TargetAssignment = assignment(m.Assignment), assignment(m.TargetAssignment)
				rm.MemberType = 1
				out.Members = append(out.Members, rm)
			}
			if denied {
				*out = kmsg.NewConsumerGroupDescribeResponseGroup()
				out.Group = id
				out.AuthorizedOperations = authorizedOpsOmitted
				out.ErrorCode = kerr.TopicAuthorizationFailed.Code
				out.ErrorMessage = kmsg.StringPtr("The describe group uses topics that the client is not authorized to describe.")
				return
			}
			if r.IncludeAuthorizedOperations {
				out.AuthorizedOperations = b.authorizedOps(req, kmsg.ACLResourceTypeGroup, id)
			}
		}
		if c == nil {
			fill(group.ConsumerDescribed{Err: kerr.GroupIDNotFound, ErrMessage: "Group " + id + " not found."})
			continue
		}
		c.ConsumerDescribe(id, fill)
	}
	g.one()
}
