package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/metadata"
	"github.com/gregor-streaming/gregor/internal/wire"
)

// Metadata: v0-13
//
// Version notes:
//   - v1: null topics = all topics; IsInternal; ControllerID; Rack
//   - v2: ClusterID
//   - v4: AllowAutoTopicCreation
//   - v5: OfflineReplicas
//   - v7: LeaderEpoch
//   - v8: authorized operations (v8-10 cluster-level)
//   - v9: flexible
//   - v10: TopicID (KIP-516), topics requested by ID
//   - v13: top-level ErrorCode (KIP-1102)
func init() { registerSync(3, 0, 13, (*Broker).handleMetadata) }

// authorizedOpsOmitted is Kafka's marker for "not requested".
const authorizedOpsOmitted = -2147483648

func (b *Broker) handleMetadata(req *wire.Request) kmsg.Response {
	r := req.Body.(*kmsg.MetadataRequest)
	resp := r.ResponseKind().(*kmsg.MetadataResponse)
	img := b.meta.Image()

	host, port := b.endpoint()
	resp.Brokers = []kmsg.MetadataResponseBroker{{NodeID: b.nodeID, Host: host, Port: port}}
	clusterID := img.ClusterID
	resp.ClusterID = &clusterID
	resp.ControllerID = b.nodeID
	resp.AuthorizedOperations = authorizedOpsOmitted
	if r.Version >= 8 && r.Version <= 10 && r.IncludeClusterAuthorizedOperations {
		// No authorizer: every cluster operation is allowed.
		resp.AuthorizedOperations = allClusterOperations
	}
	includeOps := r.Version >= 8 && r.IncludeTopicAuthorizedOperations

	cfg := b.Config()
	allowAuto := cfg.Bool("auto.create.topics.enable") && (r.Version < 4 || r.AllowAutoTopicCreation)

	addTopic := func(t *metadata.Topic) {
		resp.Topics = append(resp.Topics, b.metadataTopic(t, includeOps))
	}
	// v0: an empty list means all topics; v1+: null means all.
	if r.Topics == nil || (r.Version == 0 && len(r.Topics) == 0) {
		for _, name := range img.TopicNames() {
			addTopic(img.Topics[name])
		}
		return resp
	}
	for _, rt := range r.Topics {
		if rt.Topic == nil || *rt.Topic == "" {
			// By ID (v10+).
			if t, ok := img.TopicByID(metadata.UUID(rt.TopicID)); ok {
				addTopic(t)
				continue
			}
			resp.Topics = append(resp.Topics, kmsg.MetadataResponseTopic{
				ErrorCode: kerr.UnknownTopicID.Code, TopicID: rt.TopicID,
				AuthorizedOperations: authorizedOpsOmitted,
			})
			continue
		}
		name := *rt.Topic
		if t, ok := img.Topic(name); ok {
			addTopic(t)
			continue
		}
		errTopic := func(err *kerr.Error) {
			mt := kmsg.MetadataResponseTopic{
				ErrorCode: err.Code, Topic: kmsg.StringPtr(name),
				AuthorizedOperations: authorizedOpsOmitted,
			}
			if includeOps {
				mt.AuthorizedOperations = allTopicOperations
			}
			resp.Topics = append(resp.Topics, mt)
		}
		if err := validateTopicName(name); err != nil {
			errTopic(kerr.InvalidTopicException)
			continue
		}
		if !allowAuto || isInternal(name) || name == ClusterMetadataTopic {
			errTopic(kerr.UnknownTopicOrPartition)
			continue
		}
		t, terr := b.autoCreateTopic(name)
		if terr != nil {
			errTopic(terr.err)
			continue
		}
		addTopic(t)
	}
	return resp
}

func (b *Broker) metadataTopic(t *metadata.Topic, includeOps bool) kmsg.MetadataResponseTopic {
	mt := kmsg.MetadataResponseTopic{
		Topic:                kmsg.StringPtr(t.Name),
		TopicID:              t.ID,
		IsInternal:           isInternal(t.Name),
		AuthorizedOperations: authorizedOpsOmitted,
	}
	if includeOps {
		mt.AuthorizedOperations = allTopicOperations
	}
	mt.Partitions = make([]kmsg.MetadataResponseTopicPartition, len(t.Partitions))
	for i, p := range t.Partitions {
		mp := &mt.Partitions[i]
		mp.Default()
		mp.Partition = p.Partition
		mp.Leader = p.Leader
		mp.LeaderEpoch = p.LeaderEpoch
		mp.Replicas = p.Replicas
		mp.ISR = p.ISR
		mp.OfflineReplicas = []int32{}
	}
	return mt
}

// allTopicOperations is the bit set of every topic ACL operation (READ,
// WRITE, CREATE, DELETE, ALTER, DESCRIBE, DESCRIBE_CONFIGS,
// ALTER_CONFIGS): without an authorizer, everything is allowed.
const allTopicOperations = 1<<3 | 1<<4 | 1<<5 | 1<<6 | 1<<7 | 1<<8 | 1<<10 | 1<<11
