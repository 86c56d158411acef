package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/wire"
)

// DescribeCluster: v0-2
//
// Version notes:
//   - v1: EndpointType (1 brokers, 2 controllers; KIP-919)
//   - v2: IncludeFencedBrokers, IsFenced
func init() { registerSync(60, 0, 2, (*Broker).handleDescribeCluster) }

func (b *Broker) handleDescribeCluster(req *wire.Request) kmsg.Response {
	r := req.Body.(*kmsg.DescribeClusterRequest)
	resp := r.ResponseKind().(*kmsg.DescribeClusterResponse)
	resp.ClusterID = b.ClusterID()
	resp.ControllerID = b.nodeID
	resp.ClusterAuthorizedOperations = authorizedOpsOmitted
	if r.IncludeClusterAuthorizedOperations {
		resp.ClusterAuthorizedOperations = allClusterOperations
	}
	if r.Version >= 1 {
		resp.EndpointType = r.EndpointType
		if r.EndpointType != 1 && r.EndpointType != 2 {
			resp.ErrorCode = kerr.UnsupportedEndpointType.Code
			return resp
		}
	}
	host, port := b.endpoint()
	resp.Brokers = []kmsg.DescribeClusterResponseBroker{{NodeID: b.nodeID, Host: host, Port: port}}
	return resp
}

// allClusterOperations is the bit set of the cluster ACL operations
// Kafka's AclEntry.supportedOperations(CLUSTER) lists: CREATE, ALTER,
// DESCRIBE, CLUSTER_ACTION, DESCRIBE_CONFIGS, ALTER_CONFIGS,
// IDEMPOTENT_WRITE. Without an authorizer, all are allowed.
const allClusterOperations = 1<<5 | 1<<7 | 1<<8 | 1<<9 | 1<<10 | 1<<11 | 1<<12
