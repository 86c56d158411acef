package broker

import (
	"context"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/group"
	"github.com/gregor-streaming/gregor/internal/wire"
)

// SyncGroup: v0-5
//
// Version notes:
//   - v1: ThrottleMillis
//   - v3: InstanceID (KIP-345)
//   - v4: flexible
//   - v5: ProtocolType and Protocol, mandatory (a request without
//     either is INCONSISTENT_GROUP_PROTOCOL) and checked against the
//     group's (KIP-559)
//
// Followers wait for the leader's assignment, which is answered once it
// is durable in __consumer_offsets.
func init() { register(14, 0, 5, (*Broker).handleSyncGroup) }

func (b *Broker) handleSyncGroup(_ context.Context, req *wire.Request, respond func(kmsg.Response)) {
	r := req.Body.(*kmsg.SyncGroupRequest)
	answer := func(res group.SyncResult) {
		resp := r.ResponseKind().(*kmsg.SyncGroupResponse)
		if res.Err != nil {
			resp.ErrorCode = res.Err.Code
		}
		resp.ProtocolType, resp.Protocol = res.ProtocolType, res.Protocol
		resp.MemberAssignment = res.Assignment
		if resp.MemberAssignment == nil {
			resp.MemberAssignment = []byte{}
		}
		respond(resp)
	}
	if r.Version >= 5 && (r.ProtocolType == nil || r.Protocol == nil) {
		// Mandatory from v5: Kafka's KafkaApis refuses the request
		// before looking at the group
		// (SyncGroupRequest.areMandatoryProtocolTypeAndNamePresent).
		answer(group.SyncResult{Err: kerr.InconsistentGroupProtocol})
		return
	}
	if !b.authorizedGroup(req, kmsg.ACLOperationRead, r.Group) {
		answer(group.SyncResult{Err: kerr.GroupAuthorizationFailed})
		return
	}
	c, err := b.coordinator()
	if err != nil {
		answer(group.SyncResult{Err: err})
		return
	}
	sr := group.SyncRequest{
		MemberID:     r.MemberID,
		InstanceID:   r.InstanceID,
		Generation:   r.Generation,
		ProtocolType: r.ProtocolType,
		Protocol:     r.Protocol,
	}
	if len(r.GroupAssignment) > 0 {
		sr.Assignments = make(map[string][]byte, len(r.GroupAssignment))
		for _, a := range r.GroupAssignment {
			// Kept in the group after the response: copy.
			sr.Assignments[a.MemberID] = slices.Clone(a.MemberAssignment)
		}
	}
	c.Sync(r.Group, sr, answer)
}
