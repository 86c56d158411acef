package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/group"
	"github.com/gregor-streaming/gregor/internal/wire"
)

// DescribeGroups: v0-6
//
// Version notes:
//   - v1: ThrottleMillis
//   - v3: AuthorizedOperations, for groups without an error
//   - v4: member InstanceID (KIP-345)
//   - v5: flexible
//   - v6: ErrorMessage; an unknown group is GROUP_ID_NOT_FOUND (KIP-1043)
//     where older versions describe it as Dead without an error
//
// Member metadata and assignments are shown in the Stable state only,
// as Kafka does. A KIP-848 consumer group is not a classic group: Dead,
// GROUP_ID_NOT_FOUND from v6, as Kafka 4 answers (ConsumerGroupDescribe
// describes it).
func init() { register(15, 0, 6, (*Broker).handleDescribeGroups) }

func (b *Broker) handleDescribeGroups(_ context.Context, req *wire.Request, respond func(kmsg.Response)) {
	r := req.Body.(*kmsg.DescribeGroupsRequest)
	resp := r.ResponseKind().(*kmsg.DescribeGroupsResponse)
	resp.Groups = make([]kmsg.DescribeGroupsResponseGroup, len(r.Groups))
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
		fill := func(d group.DescribedGroup) {
			defer g.one()
			out.State = d.State.String()
			switch {
			case d.Err != nil:
				out.ErrorCode = d.Err.Code
			case d.State == group.Dead && r.Version >= 6:
				out.ErrorCode = kerr.GroupIDNotFound.Code
				out.ErrorMessage = kmsg.StringPtr("group " + id + " not found")
				if d.ErrMessage != "" {
					out.ErrorMessage = kmsg.StringPtr(d.ErrMessage)
				}
			}
			// Kafka's KafkaApis.handleDescribeGroupsRequest fills them
			// in only for groups described without an error.
			if r.IncludeAuthorizedOperations && out.ErrorCode == 0 {
				out.AuthorizedOperations = b.authorizedOps(req, kmsg.ACLResourceTypeGroup, id)
			}
			out.ProtocolType, out.Protocol = d.ProtocolType, d.Protocol
			for _, m := range d.Members {
				rm := kmsg.NewDescribeGroupsResponseGroupMember()
				rm.MemberID, rm.InstanceID, rm.ClientID, rm.ClientHost = m.MemberID, m.InstanceID, m.ClientID, m.ClientHost
				rm.ProtocolMetadata, rm.MemberAssignment = m.Metadata, m.Assignment
				if rm.ProtocolMetadata == nil {
					rm.ProtocolMetadata = []byte{}
				}
				if rm.MemberAssignment == nil {
					rm.MemberAssignment = []byte{}
				}
				out.Members = append(out.Members, rm)
			}
		}
		if c == nil {
			fill(group.DescribedGroup{State: group.Dead})
			continue
		}
		c.Describe(id, fill)
	}
	g.one()
}
