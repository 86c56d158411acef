package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/wire"
)

// DeleteGroups: v0-3
//
// Version notes:
//   - v2: flexible
//   - v3: ErrorMessage
//
// Only an empty group can be deleted (NON_EMPTY_GROUP otherwise); its
// offsets and metadata are tombstoned in __consumer_offsets and the
// response waits until the tombstones are durable. A group named more
// than once is deleted and answered once, as Kafka does.
func init() { register(42, 0, 3, (*Broker).handleDeleteGroups) }

func (b *Broker) handleDeleteGroups(_ context.Context, req *wire.Request, respond func(kmsg.Response)) {
	r := req.Body.(*kmsg.DeleteGroupsRequest)
	resp := r.ResponseKind().(*kmsg.DeleteGroupsResponse)
	// Kafka's KafkaApis.handleDeleteGroupsRequest takes the distinct
	// names: a repeated group would otherwise be reported deleted and
	// then GROUP_ID_NOT_FOUND, which clients keying results by group
	// read as a failure.
	groups := make([]string, 0, len(r.Groups))
	seen := make(map[string]bool, len(r.Groups))
	for _, id := range r.Groups {
		if !seen[id] {
			seen[id] = true
			groups = append(groups, id)
		}
	}
	resp.Groups = make([]kmsg.DeleteGroupsResponseGroup, len(groups))
	g := newGather(len(groups), func() { respond(resp) })
	c := b.startedCoordinator()
	for i, id := range groups {
		out := &resp.Groups[i]
		out.Default()
		out.Group = id
		fill := func(err *kerr.Error) {
			defer g.one()
			if err != nil {
				out.ErrorCode = err.Code
				if r.Version >= 3 {
					out.ErrorMessage = kmsg.StringPtr(err.Description)
				}
			}
		}
		switch {
		case !b.authorizedGroup(req, kmsg.ACLOperationDelete, id):
			fill(kerr.GroupAuthorizationFailed)
		case c == nil:
			fill(kerr.GroupIDNotFound)
		default:
			c.Delete(id, fill)
		}
	}
	g.one()
}
