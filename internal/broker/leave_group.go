package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/group"
	"github.com/gregor-streaming/gregor/internal/wire"
)

// LeaveGroup: v0-5
//
// Version notes:
//   - v1: ThrottleMillis
//   - v3: batched Members with InstanceID (KIP-345): a static member
//     may be removed by instance ID alone
//   - v4: flexible
//   - v5: Reason (KIP-800)
func init() { register(13, 0, 5, (*Broker).handleLeaveGroup) }

func (b *Broker) handleLeaveGroup(_ context.Context, req *wire.Request, respond func(kmsg.Response)) {
	r := req.Body.(*kmsg.LeaveGroupRequest)
	var members []group.LeaveMember
	if r.Version < 3 {
		members = []group.LeaveMember{{MemberID: r.MemberID}}
	} else {
		for _, m := range r.Members {
			lm := group.LeaveMember{MemberID: m.MemberID, InstanceID: m.InstanceID}
			if m.Reason != nil {
				lm.Reason = *m.Reason
			}
			members = append(members, lm)
		}
	}
	answer := func(res group.LeaveResult) {
		resp := r.ResponseKind().(*kmsg.LeaveGroupResponse)
		if res.Err != nil {
			resp.ErrorCode = res.Err.Code
		}
		if r.Version < 3 {
			// One member: its error is the response's.
			if res.Err == nil && len(res.Members) == 1 && res.Members[0] != nil {
				resp.ErrorCode = res.Members[0].Code
			}
			respond(resp)
			return
		}
		if res.Err == nil {
			for i, m := range members {
				rm := kmsg.NewLeaveGroupResponseMember()
				rm.MemberID, rm.InstanceID = m.MemberID, m.InstanceID
				if e := res.Members[i]; e != nil {
					rm.ErrorCode = e.Code
				}
				resp.Members = append(resp.Members, rm)
			}
		}
		respond(resp)
	}
	if !b.authorizedGroup(req, kmsg.ACLOperationRead, r.Group) {
		answer(group.LeaveResult{Err: kerr.GroupAuthorizationFailed})
		return
	}
	c, err := b.coordinator()
	if err != nil {
		answer(group.LeaveResult{Err: err})
		return
	}
	c.Leave(r.Group, members, answer)
}
