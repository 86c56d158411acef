package broker

import (
	"regexp"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/wire"
)

// ApiVersions: v0-5
//
// Version notes:
//   - v1: ThrottleMillis
//   - v3: ClientSoftwareName/Version (validated, KIP-511); flexible;
//     SupportedFeatures/FinalizedFeatures (KIP-584)
//   - v4: supported feature ranges may start at 0 (KIP-1022); a v3
//     request gets none of those features (KAFKA-17492)
//   - v5: ClusterID/NodeID checks (KIP-1242)
//
// A request above v5 is answered in v0 with UNSUPPORTED_VERSION and the
// key list, so the client retries lower (KIP-511).
func init() { registerSync(18, 0, 5, (*Broker).handleApiVersions) }

var softwareNameRE = regexp.MustCompile(`^[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?$`)

func (b *Broker) handleApiVersions(req *wire.Request) kmsg.Response {
	r := req.Body.(*kmsg.ApiVersionsRequest)
	resp := r.ResponseKind().(*kmsg.ApiVersionsResponse)
	resp.ApiKeys = apiKeys()
	if req.UnsupportedVersion {
		resp.ErrorCode = kerr.UnsupportedVersion.Code
		return resp
	}
	if r.Version >= 3 && (!softwareNameRE.MatchString(r.ClientSoftwareName) || !softwareNameRE.MatchString(r.ClientSoftwareVersion)) {
		resp.ErrorCode = kerr.InvalidRequest.Code
		return resp
	}
	if r.Version >= 5 {
		if (r.ClusterID == nil) != (r.NodeID == -1) {
			resp.ErrorCode = kerr.InvalidRequest.Code
			return resp
		}
		if r.ClusterID != nil && (*r.ClusterID != b.ClusterID() || r.NodeID != b.nodeID) {
			resp.ErrorCode = kerr.RebootstrapRequired.Code
			return resp
		}
	}
	if r.Version >= 3 {
		resp.SupportedFeatures = supportedFeatures(r.Version >= 4)
		resp.FinalizedFeatures = finalizedFeatures()
		resp.FinalizedFeaturesEpoch = 0
	}
	return resp
}

func apiKeys() []kmsg.ApiVersionsResponseApiKey {
	keys := make([]kmsg.ApiVersionsResponseApiKey, 0, len(apis))
	for k, a := range apis {
		keys = append(keys, kmsg.ApiVersionsResponseApiKey{ApiKey: k, MinVersion: a.min, MaxVersion: a.max})
	}
	slices.SortFunc(keys, func(x, y kmsg.ApiVersionsResponseApiKey) int { return int(x.ApiKey) - int(y.ApiKey) })
	return keys
}

// features lists the feature flags Gregor supports: name, min, max, and
// the finalized (active) level.
var features = []struct {
	name          string
	min, max, fin int16
}{
	// metadata.version 4.0-IV3 (level 25) is what a Kafka 4.0 KRaft
	// cluster reports; clients read it to pick behaviours.
	{"metadata.version", 1, 25, 25},
	// transaction.version 2 is KIP-890's transactions v2, finalized as
	// in a Kafka 4 cluster: clients then add partitions with produce
	// v12+ and expect EndTxn v5 to bump the epoch.
	{"transaction.version", 0, 2, 2},
}

// supportedFeatures lists the supported feature ranges. Before v4 a
// range starting at 0 is left out, as Kafka does (KAFKA-17492): Java
// clients before 3.9 reject such a range while parsing the response
// (SupportedVersionRange requires a minimum of 1) and drop the
// connection.
func supportedFeatures(minZeroOK bool) []kmsg.ApiVersionsResponseSupportedFeature {
	var out []kmsg.ApiVersionsResponseSupportedFeature
	for _, f := range features {
		if f.min == 0 && !minZeroOK {
			continue
		}
		out = append(out, kmsg.ApiVersionsResponseSupportedFeature{Name: f.name, MinVersion: f.min, MaxVersion: f.max})
	}
	return out
}

func finalizedFeatures() []kmsg.ApiVersionsResponseFinalizedFeature {
	var out []kmsg.ApiVersionsResponseFinalizedFeature
	for _, f := range features {
		out = append(out, kmsg.ApiVersionsResponseFinalizedFeature{Name: f.name, MinVersionLevel: f.fin, MaxVersionLevel: f.fin})
	}
	return out
}
