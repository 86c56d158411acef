package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/group"
	"github.com/gregor-streaming/gregor/internal/wire"
)

// Heartbeat: v0-4
//
// Version notes:
//   - v1: ThrottleMillis
//   - v3: InstanceID (KIP-345)
//   - v4: flexible
//
// REBALANCE_IN_PROGRESS tells a member to rejoin.
func init() { register(12, 0, 4, (*Broker).handleHeartbeat) }

func (b *Broker) handleHeartbeat(_ context.Context, req *wire.Request, respond func(kmsg.Response)) {
	r := req.Body.(*kmsg.HeartbeatRequest)
	answer := func(err *kerr.Error) {
		resp := r.ResponseKind().(*kmsg.HeartbeatResponse)
		if err != nil {
			resp.ErrorCode = err.Code
		}
		respond(resp)
	}
	if !b.authorizedGroup(req, kmsg.ACLOperationRead, r.Group) {
		answer(kerr.GroupAuthorizationFailed)
		return
	}
	c, err := b.coordinator()
	if err != nil {
		answer(err)
		return
	}
	c.Heartbeat(r.Group, group.HeartbeatRequest{MemberID: r.MemberID, InstanceID: r.InstanceID, Generation: r.Generation}, answer)
}
