package broker

import (
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/wire"
)

// ListGroups: v0-5
//
// Version notes:
//   - v1: ThrottleMillis
//   - v3: flexible
//   - v4: StatesFilter and GroupState, case-insensitive (KIP-518)
//   - v5: TypesFilter and GroupType (KIP-848): "classic" or "consumer"
//
// While a partition of __consumer_offsets is still loading, the groups
// of the loaded ones are listed with COORDINATOR_LOAD_IN_PROGRESS, as
// Kafka does.
func init() { registerSync(16, 0, 5, (*Broker).handleListGroups) }

func (b *Broker) handleListGroups(req *wire.Request) kmsg.Response {
	r := req.Body.(*kmsg.ListGroupsRequest)
	resp := r.ResponseKind().(*kmsg.ListGroupsResponse)
	c := b.startedCoordinator()
	if c == nil {
		return resp
	}
	groups, err := c.List()
	if err != nil {
		resp.ErrorCode = err.Code
	}
	matches := func(filter []string, v string) bool {
		return len(filter) == 0 || slices.ContainsFunc(filter, func(f string) bool { return strings.EqualFold(f, v) })
	}
	// DESCRIBE on the cluster lists every group, else those the
	// client may DESCRIBE (Kafka's handleListGroupsRequest).
	everyGroup := b.authorizedCluster(req, kmsg.ACLOperationDescribe)
	for _, lg := range groups {
		if !everyGroup && !b.authorizedGroup(req, kmsg.ACLOperationDescribe, lg.Group) {
			continue
		}
		if r.Version >= 4 && !matches(r.StatesFilter, lg.State.String()) ||
			r.Version >= 5 && !matches(r.TypesFilter, lg.Type) {
			continue
		}
		g := kmsg.NewListGroupsResponseGroup()
		g.Group, g.ProtocolType = lg.Group, lg.ProtocolType
		g.GroupState, g.GroupType = lg.State.String(), lg.Type
		resp.Groups = append(resp.Groups, g)
	}
	return resp
}
