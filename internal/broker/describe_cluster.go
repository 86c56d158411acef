package broker

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/auth"
	"github.com/gregor-streaming/gregor/internal/wire"
)

// DescribeCluster: v0-2
//
// Version notes:
//   - v1: EndpointType (1 brokers, 2 controllers; KIP-919)
//   - v2: IncludeFencedBrokers, IsFenced (no broker is ever fenced)
func init() { registerSync(60, 0, 2, (*Broker).handleDescribeCluster) }

func (b *Broker) handleDescribeCluster(req *wire.Request) kmsg.Response {
	r := req.Body.(*kmsg.DescribeClusterRequest)
	resp := r.ResponseKind().(*kmsg.DescribeClusterResponse)
	resp.ClusterAuthorizedOperations = authorizedOpsOmitted
	// This is a broker endpoint, as in Kafka's
	// AuthHelper.computeDescribeClusterResponse: asked for the
	// controllers (bootstrap.controllers), it answers
	// MISMATCHED_ENDPOINT_TYPE; an unknown type is
	// UNSUPPORTED_ENDPOINT_TYPE (INVALID_REQUEST at v0, which cannot
	// name one).
	if r.EndpointType != endpointBrokers {
		resp.ErrorCode = kerr.UnsupportedEndpointType.Code
		msg := fmt.Sprintf("Unsupported endpoint type %d", r.EndpointType)
		if r.EndpointType == endpointControllers {
			resp.ErrorCode = kerr.MismatchedEndpointType.Code
			msg = "The request was sent to an endpoint of type BROKER, but we wanted an endpoint of type CONTROLLER"
		}
		if r.Version == 0 {
			resp.ErrorCode = kerr.InvalidRequest.Code
		}
		resp.ErrorMessage = kmsg.StringPtr(msg)
		return resp
	}
	resp.EndpointType = endpointBrokers
	resp.ClusterID = b.ClusterID()
	resp.ControllerID = b.controllerID()
	if r.IncludeClusterAuthorizedOperations {
		resp.ClusterAuthorizedOperations = b.authorizedOps(req, kmsg.ACLResourceTypeCluster, auth.ClusterResource)
	}
	for _, cb := range b.clusterBrokers(b.meta.Image(), req.Client.Listener) {
		resp.Brokers = append(resp.Brokers, kmsg.DescribeClusterResponseBroker{NodeID: cb.id, Host: cb.host, Port: cb.port, Rack: cb.rack})
	}
	return resp
}

// DescribeCluster endpoint types (KIP-919).
const (
	endpointBrokers     = 1
	endpointControllers = 2
)
