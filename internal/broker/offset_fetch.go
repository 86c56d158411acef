package broker

import (
	"context"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/group"
	"github.com/gregor-streaming/gregor/internal/metadata"
	"github.com/gregor-streaming/gregor/internal/wire"
)

// OffsetFetch: v1-10
//
// Version notes:
//   - v2: top-level ErrorCode; null Topics fetches every committed
//     offset of the group
//   - v3: ThrottleMillis
//   - v5: LeaderEpoch
//   - v6: flexible
//   - v7: RequireStable: UNSTABLE_OFFSET_COMMIT for partitions with a
//     commit still being written (KIP-447)
//   - v8: several groups per request, each with its own error
//   - v9: MemberID/MemberEpoch, checked for KIP-848 consumer groups
//     (UNKNOWN_MEMBER_ID, STALE_MEMBER_EPOCH; epoch -1 reads freely)
//     and ignored for classic groups, as Kafka does
//   - v10: topics by ID (KIP-516)
//
// A group the broker never saw has no offsets: -1 and no error
// (standalone consumers and sarama rely on it).
func init() { register(9, 1, 10, (*Broker).handleOffsetFetch) }

func (b *Broker) handleOffsetFetch(_ context.Context, req *wire.Request, respond func(kmsg.Response)) {
	r := req.Body.(*kmsg.OffsetFetchRequest)
	resp := r.ResponseKind().(*kmsg.OffsetFetchResponse)
	img := b.meta.Image()

	if r.Version < 8 {
		fr := group.FetchRequest{RequireStable: r.RequireStable}
		if r.Topics != nil || r.Version < 2 {
			fr.Topics = []group.FetchTopic{}
			for _, t := range r.Topics {
				fr.Topics = append(fr.Topics, group.FetchTopic{Topic: t.Topic, Partitions: t.Partitions})
			}
		}
		b.fetchOffsetsAuthorized(req, r.Group, fr, func(res group.FetchResult) {
			if res.Err != nil {
				resp.ErrorCode = res.Err.Code
				// v1 has no top-level error: every requested
				// partition carries it.
				res.Topics = nil
				for _, t := range fr.Topics {
					rt := group.FetchTopicResult{Topic: t.Topic}
					for _, p := range t.Partitions {
						rt.Partitions = append(rt.Partitions, group.FetchPartition{Partition: p, Offset: -1, LeaderEpoch: -1, Err: res.Err})
					}
					res.Topics = append(res.Topics, rt)
				}
			}
			for _, t := range res.Topics {
				rt := kmsg.NewOffsetFetchResponseTopic()
				rt.Topic = t.Topic
				for _, p := range t.Partitions {
					rp := kmsg.NewOffsetFetchResponseTopicPartition()
					rp.Partition, rp.Offset, rp.LeaderEpoch = p.Partition, p.Offset, p.LeaderEpoch
					rp.Metadata = kmsg.StringPtr(p.Metadata)
					if e := p.Err; e != nil {
						rp.ErrorCode = e.Code
					} else if res.Err != nil {
						rp.ErrorCode = res.Err.Code
					}
					rt.Partitions = append(rt.Partitions, rp)
				}
				resp.Topics = append(resp.Topics, rt)
			}
			respond(resp)
		})
		return
	}

	resp.Groups = make([]kmsg.OffsetFetchResponseGroup, len(r.Groups))
	g := newGather(len(r.Groups), func() { respond(resp) })
	for i, rg := range r.Groups {
		out := &resp.Groups[i]
		out.Group = rg.Group
		fr := group.FetchRequest{RequireStable: r.RequireStable}
		if r.Version >= 9 {
			fr.MemberID, fr.MemberEpoch = rg.MemberID, rg.MemberEpoch
		}
		// unknownIDs are partitions of topic IDs this broker does not
		// know: UNKNOWN_TOPIC_ID, without asking the group.
		var unknownIDs []kmsg.OffsetFetchResponseGroupTopic
		if rg.Topics != nil {
			fr.Topics = []group.FetchTopic{}
			for _, t := range rg.Topics {
				name := t.Topic
				if r.Version >= 10 {
					topic, ok := img.TopicByID(metadata.UUID(t.TopicID))
					if !ok {
						rt := kmsg.NewOffsetFetchResponseGroupTopic()
						rt.TopicID = t.TopicID
						for _, p := range t.Partitions {
							rp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
							rp.Partition, rp.Offset, rp.LeaderEpoch = p, -1, -1
							rp.Metadata = kmsg.StringPtr("")
							rp.ErrorCode = kerr.UnknownTopicID.Code
							rt.Partitions = append(rt.Partitions, rp)
						}
						unknownIDs = append(unknownIDs, rt)
						continue
					}
					name = topic.Name
				}
				fr.Topics = append(fr.Topics, group.FetchTopic{Topic: name, Partitions: t.Partitions})
			}
		}
		b.fetchOffsetsAuthorized(req, rg.Group, fr, func(res group.FetchResult) {
			defer g.one()
			if res.Err != nil {
				out.ErrorCode = res.Err.Code
				return
			}
			for _, t := range res.Topics {
				rt := kmsg.NewOffsetFetchResponseGroupTopic()
				rt.Topic = t.Topic
				if r.Version >= 10 {
					topic, ok := img.Topic(t.Topic)
					if !ok {
						// Offsets of a deleted topic have no ID to
						// report them under.
						continue
					}
					rt.Topic, rt.TopicID = "", topic.ID
				}
				for _, p := range t.Partitions {
					rp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
					rp.Partition, rp.Offset, rp.LeaderEpoch = p.Partition, p.Offset, p.LeaderEpoch
					rp.Metadata = kmsg.StringPtr(p.Metadata)
					if p.Err != nil {
						rp.ErrorCode = p.Err.Code
					}
					rt.Partitions = append(rt.Partitions, rp)
				}
				out.Topics = append(out.Topics, rt)
			}
			out.Topics = append(out.Topics, unknownIDs...)
		})
	}
	g.one()
}

// fetchOffsetsAuthorized is fetchOffsets after Kafka's checks
// (handleOffsetFetchRequest): DESCRIBE on the group, or the result is
// GROUP_AUTHORIZATION_FAILED; DESCRIBE on each topic, or the topic's
// partitions are TOPIC_AUTHORIZATION_FAILED when requested, left out
// when the request asked for all.
func (b *Broker) fetchOffsetsAuthorized(req *wire.Request, groupID string, fr group.FetchRequest, respond func(group.FetchResult)) {
	if !b.authorizedGroup(req, kmsg.ACLOperationDescribe, groupID) {
		respond(group.FetchResult{Err: kerr.GroupAuthorizationFailed})
		return
	}
	if b.authorizer() == nil {
		b.fetchOffsets(groupID, fr, respond)
		return
	}
	described := b.topicCheck(req, kmsg.ACLOperationDescribe)
	var denied []group.FetchTopicResult
	if fr.Topics != nil {
		allowed := make([]group.FetchTopic, 0, len(fr.Topics))
		for _, t := range fr.Topics {
			if described(t.Topic) {
				allowed = append(allowed, t)
				continue
			}
			rt := group.FetchTopicResult{Topic: t.Topic}
			for _, p := range t.Partitions {
				rt.Partitions = append(rt.Partitions, group.FetchPartition{Partition: p, Offset: -1, LeaderEpoch: -1, Err: kerr.TopicAuthorizationFailed})
			}
			denied = append(denied, rt)
		}
		fr.Topics = allowed
	}
	all := fr.Topics == nil
	b.fetchOffsets(groupID, fr, func(res group.FetchResult) {
		if res.Err == nil {
			if all {
				res.Topics = slices.DeleteFunc(res.Topics, func(t group.FetchTopicResult) bool { return !described(t.Topic) })
			}
			res.Topics = append(res.Topics, denied...)
		}
		respond(res)
	})
}

// fetchOffsets answers one group of an OffsetFetch. Before
// __consumer_offsets exists no group has offsets.
func (b *Broker) fetchOffsets(groupID string, fr group.FetchRequest, respond func(group.FetchResult)) {
	if c := b.startedCoordinator(); c != nil {
		c.Fetch(groupID, fr, respond)
		return
	}
	var res group.FetchResult
	for _, t := range fr.Topics {
		rt := group.FetchTopicResult{Topic: t.Topic}
		for _, p := range t.Partitions {
			rt.Partitions = append(rt.Partitions, group.FetchPartition{Partition: p, Offset: -1, LeaderEpoch: -1})
		}
		res.Topics = append(res.Topics, rt)
	}
	respond(res)
}
