package broker_test

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/ktest"
)

// Kafka's AclOperation codes and the operations its
// AclEntry.supportedOperations lists for a cluster and a topic.
const (
	aclRead, aclWrite, aclCreate, aclDelete, aclAlter, aclDescribe = 3, 4, 5, 6, 7, 8
	aclClusterAction, aclDescribeConfigs, aclAlterConfigs          = 9, 10, 11
	aclIdempotentWrite                                             = 12

	clusterOps = 1<<aclCreate | 1<<aclClusterAction | 1<<aclDescribeConfigs | 1<<aclAlterConfigs |
		1<<aclIdempotentWrite | 1<<aclAlter | 1<<aclDescribe
	topicOps = 1<<aclRead | 1<<aclWrite | 1<<aclCreate | 1<<aclDescribe | 1<<aclDelete | 1<<aclAlter |
		1<<aclDescribeConfigs | 1<<aclAlterConfigs
	opsOmitted = -2147483648
)

// TestAuthorizedOperations: without an authorizer Kafka reports every
// operation AclEntry supports for the resource: for the cluster (Metadata
// v8-10, DescribeCluster) CREATE, ALTER, DESCRIBE, CLUSTER_ACTION,
// DESCRIBE_CONFIGS, ALTER_CONFIGS and IDEMPOTENT_WRITE (not WRITE, nor
// the user resource's token operations). Topic operations are filled in
// for a topic that does not exist too.
func TestAuthorizedOperations(t *testing.T) {
	b := ktest.NewBroker(t, ktest.Set("auto.create.topics.enable", "false"))
	b.CreateTopic("t", 1, nil)
	for _, v := range []int16{8, 9, 10, 12, 13} {
		r := kmsg.NewPtrMetadataRequest()
		r.Version = v
		r.IncludeClusterAuthorizedOperations, r.IncludeTopicAuthorizedOperations = true, true
		r.Topics = []kmsg.MetadataRequestTopic{{Topic: kmsg.StringPtr("t")}, {Topic: kmsg.StringPtr("missing")}}
		resp := send[*kmsg.MetadataResponse](t, b, r)
		if v <= 10 && resp.AuthorizedOperations != clusterOps {
			t.Errorf("metadata v%d: cluster operations %b, want %b", v, resp.AuthorizedOperations, clusterOps)
		}
		if len(resp.Topics) != 2 {
			t.Fatalf("metadata v%d: %+v", v, resp.Topics)
		}
		for _, mt := range resp.Topics {
			if mt.AuthorizedOperations != topicOps {
				t.Errorf("metadata v%d %s (error %d): topic operations %b, want %b", v, *mt.Topic, mt.ErrorCode, mt.AuthorizedOperations, topicOps)
			}
		}
		r.IncludeClusterAuthorizedOperations, r.IncludeTopicAuthorizedOperations = false, false
		resp = send[*kmsg.MetadataResponse](t, b, r)
		if v <= 10 && resp.AuthorizedOperations != opsOmitted {
			t.Errorf("metadata v%d not asked: cluster operations %d", v, resp.AuthorizedOperations)
		}
		for _, mt := range resp.Topics {
			if mt.AuthorizedOperations != opsOmitted {
				t.Errorf("metadata v%d not asked: %s operations %d", v, *mt.Topic, mt.AuthorizedOperations)
			}
		}
	}
	for v := int16(0); v <= 2; v++ {
		r := kmsg.NewPtrDescribeClusterRequest()
		r.Version, r.IncludeClusterAuthorizedOperations = v, true
		resp := send[*kmsg.DescribeClusterResponse](t, b, r)
		errCode(t, "describe cluster", resp.ErrorCode, nil)
		if resp.ClusterAuthorizedOperations != clusterOps {
			t.Errorf("describe cluster v%d: operations %b, want %b", v, resp.ClusterAuthorizedOperations, clusterOps)
		}
	}
}
