package broker

import (
	"context"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/group"
	"github.com/gregor-streaming/gregor/internal/wire"
)

// JoinGroup: v0-9
//
// Version notes:
//   - v1: RebalanceTimeoutMillis (v0: the session timeout serves as
//     both)
//   - v2: ThrottleMillis
//   - v4: a new member first gets MEMBER_ID_REQUIRED with its ID and
//     joins again with it (KIP-394)
//   - v5: InstanceID, static membership (KIP-345)
//   - v6: flexible
//   - v7: ProtocolType in the response
//   - v8: Reason (KIP-800)
//   - v9: SkipAssignment for a static leader rejoining a stable group
//     (KIP-814)
//
// The response waits for the rebalance to complete: the group's owner
// answers it.
func init() { register(11, 0, 9, (*Broker).handleJoinGroup) }

func (b *Broker) handleJoinGroup(_ context.Context, req *wire.Request, respond func(kmsg.Response)) {
	r := req.Body.(*kmsg.JoinGroupRequest)
	answer := func(res group.JoinResult) {
		resp := r.ResponseKind().(*kmsg.JoinGroupResponse)
		if res.Err != nil {
			resp.ErrorCode = res.Err.Code
		}
		resp.Generation = res.Generation
		resp.ProtocolType, resp.Protocol = res.ProtocolType, res.Protocol
		resp.LeaderID = res.Leader
		resp.MemberID = res.MemberID
		resp.SkipAssignment = res.SkipAssignment
		for _, m := range res.Members {
			rm := kmsg.NewJoinGroupResponseMember()
			rm.MemberID, rm.InstanceID, rm.ProtocolMetadata = m.MemberID, m.InstanceID, m.Metadata
			resp.Members = append(resp.Members, rm)
		}
		respond(resp)
	}
	if !b.authorizedGroup(req, kmsg.ACLOperationRead, r.Group) {
		answer(group.JoinResult{Err: kerr.GroupAuthorizationFailed, Generation: -1})
		return
	}
	c, err := b.coordinator()
	if err != nil {
		answer(group.JoinResult{Err: err, MemberID: r.MemberID, Generation: -1})
		return
	}
	jr := group.JoinRequest{
		MemberID:               r.MemberID,
		InstanceID:             r.InstanceID,
		ClientID:               req.ClientID,
		ClientHost:             clientHost(req.Client.Remote),
		ProtocolType:           r.ProtocolType,
		SessionTimeout:         time.Duration(r.SessionTimeoutMillis) * time.Millisecond,
		RebalanceTimeout:       time.Duration(r.RebalanceTimeoutMillis) * time.Millisecond,
		RequireKnownMemberID:   r.Version >= 4,
		SupportsSkipAssignment: r.Version >= 9,
	}
	if r.Version == 0 {
		jr.RebalanceTimeout = jr.SessionTimeout
	}
	if r.Reason != nil {
		jr.Reason = *r.Reason
	}
	for _, p := range r.Protocols {
		// The metadata outlives the request (it is kept for the
		// member), so it must not alias the request's buffer.
		jr.Protocols = append(jr.Protocols, group.Protocol{Name: p.Name, Metadata: slices.Clone(p.Metadata)})
	}
	c.Join(r.Group, jr, answer)
}
