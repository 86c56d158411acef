package broker_test

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/ktest"
)

// TestDescribeClusterEndpointType: a broker asked for the controllers'
// endpoints (an admin client given bootstrap.controllers) answers
// MISMATCHED_ENDPOINT_TYPE, as Kafka's brokers do, rather than passing
// itself off as a controller; an unknown type is
// UNSUPPORTED_ENDPOINT_TYPE.
func TestDescribeClusterEndpointType(t *testing.T) {
	b := ktest.NewBroker(t)
	for _, tc := range []struct {
		endpointType int8
		want         *kerr.Error
	}{
		{1, nil},
		{2, kerr.MismatchedEndpointType},
		{3, kerr.UnsupportedEndpointType},
	} {
		r := kmsg.NewPtrDescribeClusterRequest()
		r.Version, r.EndpointType = 1, tc.endpointType
		resp := send[*kmsg.DescribeClusterResponse](t, b, r)
		errCode(t, "endpoint type "+itoa(int32(tc.endpointType)), resp.ErrorCode, tc.want)
		if tc.want == nil {
			if len(resp.Brokers) != 1 || resp.EndpointType != 1 || resp.ClusterID == "" {
				t.Errorf("brokers: %+v", resp)
			}
			continue
		}
		if len(resp.Brokers) != 0 || resp.ErrorMessage == nil {
			t.Errorf("endpoint type %d: brokers %+v, message %v", tc.endpointType, resp.Brokers, resp.ErrorMessage)
		}
	}
}
