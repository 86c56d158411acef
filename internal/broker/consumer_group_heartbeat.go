package broker

import (
	"context"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/group"
	"github.com/gregor-streaming/gregor/internal/metadata"
	"github.com/gregor-streaming/gregor/internal/wire"
)

// ConsumerGroupHeartbeat: v0-1
//
// Version notes:
//   - v0: the coordinator makes the member ID of a joining member
//   - v1: the client makes it (MemberID is required);
//     SubscribedTopicRegex (RE2, as Kafka's RE2/J)
//
// KIP-848 consumer groups: join with MemberEpoch 0, heartbeat with the
// epoch last received, leave with -1 (a static member's temporary leave:
// -2). The coordinator assigns partitions (ServerAssignor "uniform", the
// default, or "range"); internal/group/consumer.go.
func init() { register(68, 0, 1, (*Broker).handleConsumerGroupHeartbeat) }

func (b *Broker) handleConsumerGroupHeartbeat(_ context.Context, req *wire.Request, respond func(kmsg.Response)) {
	r := req.Body.(*kmsg.ConsumerGroupHeartbeatRequest)
	answer := func(res group.ConsumerHeartbeatResult) {
		resp := r.ResponseKind().(*kmsg.ConsumerGroupHeartbeatResponse)
		if res.Err != nil {
			// An error response carries nothing else, as Kafka's.
			resp.ErrorCode = res.Err.Code
			if res.ErrMessage != "" {
				resp.ErrorMessage = kmsg.StringPtr(res.ErrMessage)
			}
			respond(resp)
			return
		}
		resp.MemberEpoch = res.MemberEpoch
		resp.HeartbeatIntervalMillis = int32(res.HeartbeatInterval.Milliseconds())
		resp.MemberID = kmsg.StringPtr(res.MemberID)
		if res.HasAssignment {
			a := kmsg.NewConsumerGroupHeartbeatResponseAssignment()
			a.Topics = []kmsg.ConsumerGroupHeartbeatResponseAssignmentTopic{}
			for _, t := range res.Assignment {
				at := kmsg.NewConsumerGroupHeartbeatResponseAssignmentTopic()
				at.TopicID, at.Partitions = t.TopicID, t.Partitions
				a.Topics = append(a.Topics, at)
			}
			resp.Assignment = &a
		}
		respond(resp)
	}
	fail := func(err *kerr.Error, msg string) {
		answer(group.ConsumerHeartbeatResult{Err: err, ErrMessage: msg, MemberID: r.MemberID, MemberEpoch: r.MemberEpoch})
	}
	// READ on the group, DESCRIBE on each subscribed topic (Kafka's
	// handleConsumerGroupHeartbeat).
	if !b.authorizedGroup(req, kmsg.ACLOperationRead, r.Group) {
		fail(kerr.GroupAuthorizationFailed, "")
		return
	}
	for _, t := range r.SubscribedTopicNames {
		if !b.authorizedTopic(req, kmsg.ACLOperationDescribe, t) {
			fail(kerr.TopicAuthorizationFailed, "The group has subscribed to topics which are not authorized.")
			return
		}
	}
	c, err := b.coordinator()
	if err != nil {
		fail(err, "")
		return
	}
	hr := group.ConsumerHeartbeatRequest{
		Version:              r.Version,
		MemberID:             r.MemberID,
		MemberEpoch:          r.MemberEpoch,
		InstanceID:           r.InstanceID,
		RackID:               r.RackID,
		RebalanceTimeout:     -1,
		SubscribedTopicNames: slices.Clone(r.SubscribedTopicNames),
		SubscribedTopicRegex: r.SubscribedTopicRegex,
		ServerAssignor:       r.ServerAssignor,
		ClientID:             req.ClientID,
		ClientHost:           clientHost(req.Client.Remote),
		Topics:               topicLookup{b, req, b.meta.Image()},
	}
	if r.RebalanceTimeoutMillis >= 0 {
		hr.RebalanceTimeout = time.Duration(r.RebalanceTimeoutMillis) * time.Millisecond
	}
	if r.Topics != nil {
		hr.Owned = []group.ConsumerTopicPartitions{}
		for _, t := range r.Topics {
			hr.Owned = append(hr.Owned, group.ConsumerTopicPartitions{TopicID: t.TopicID, Partitions: slices.Clone(t.Partitions)})
		}
	}
	c.ConsumerHeartbeat(r.Group, hr, answer)
}

// topicLookup is group.TopicLookup over a metadata image: the topics a
// consumer group may subscribe to. A regex matches only topics the
// client may DESCRIBE, and never internal ones.
type topicLookup struct {
	b   *Broker
	req *wire.Request
	img *metadata.Image
}

func (l topicLookup) Topic(name string) (group.TopicID, int32, bool) {
	t, ok := l.img.Topic(name)
	if !ok {
		return group.TopicID{}, 0, false
	}
	return group.TopicID(t.ID), int32(len(t.Partitions)), true
}

func (l topicLookup) TopicNames() []string {
	var out []string
	for _, n := range l.img.TopicNames() {
		if !isInternal(n) && n != ClusterMetadataTopic && l.b.authorizedTopic(l.req, kmsg.ACLOperationDescribe, n) {
			out = append(out, n)
		}
	}
	return out
}
