package broker

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/auth"
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
//   - v10: TopicID in the response; the request schema carries IDs and
//     null names, but Kafka refuses them before v12 (INVALID_REQUEST)
//   - v12: topics requested by ID
//   - v13: top-level ErrorCode (KIP-1102)
//
// As in Kafka's handleTopicMetadataRequest, a topic named twice is
// answered once; a request naming any topic ID is answered for its IDs
// only; topics that do not exist carry their is_internal flag; and an
// auto-created internal topic gets its coordinator's settings.
func init() { registerSync(3, 0, 13, (*Broker).handleMetadata) }

// authorizedOpsOmitted is Kafka's marker for "not requested".
const authorizedOpsOmitted = -2147483648

func (b *Broker) handleMetadata(req *wire.Request) kmsg.Response {
	r := req.Body.(*kmsg.MetadataRequest)
	resp := r.ResponseKind().(*kmsg.MetadataResponse)
	img := b.meta.Image()

	if r.Version < 12 && r.Topics != nil {
		for _, rt := range r.Topics {
			if rt.Topic == nil || rt.TopicID != ([16]byte{}) {
				return metadataRequestError(r, resp, kerr.InvalidRequest)
			}
		}
	}

	for _, cb := range b.clusterBrokers(img, req.Client.Listener) {
		resp.Brokers = append(resp.Brokers, kmsg.MetadataResponseBroker{NodeID: cb.id, Host: cb.host, Port: cb.port, Rack: cb.rack})
	}
	clusterID := img.ClusterID
	resp.ClusterID = &clusterID
	resp.ControllerID = b.controllerID()
	resp.AuthorizedOperations = authorizedOpsOmitted
	if r.Version >= 8 && r.Version <= 10 && r.IncludeClusterAuthorizedOperations {
		resp.AuthorizedOperations = b.authorizedOps(req, kmsg.ACLResourceTypeCluster, auth.ClusterResource)
	}
	includeOps := r.Version >= 8 && r.IncludeTopicAuthorizedOperations

	cfg := b.Config()
	allowAuto := cfg.Bool("auto.create.topics.enable") && (r.Version < 4 || r.AllowAutoTopicCreation)

	addTopic := func(t *metadata.Topic) {
		mt := b.metadataTopic(t)
		if includeOps {
			mt.AuthorizedOperations = b.authorizedOps(req, kmsg.ACLResourceTypeTopic, t.Name)
		}
		resp.Topics = append(resp.Topics, mt)
	}
	// DESCRIBE on a topic lets a client see it (Kafka's
	// handleTopicMetadataRequest).
	described := b.topicCheck(req, kmsg.ACLOperationDescribe)
	// v0: an empty list means all topics; v1+: null means all, those it
	// may describe.
	if r.Topics == nil || (r.Version == 0 && len(r.Topics) == 0) {
		for _, name := range img.TopicNames() {
			if described(name) {
				addTopic(img.Topics[name])
			}
		}
		return resp
	}
	unauthorized := func(name *string, id [16]byte) {
		resp.Topics = append(resp.Topics, kmsg.MetadataResponseTopic{
			ErrorCode: kerr.TopicAuthorizationFailed.Code, Topic: name, TopicID: id,
			IsInternal: name != nil && isInternal(*name), AuthorizedOperations: authorizedOpsOmitted,
		})
	}

	unknownID := func(id [16]byte) {
		resp.Topics = append(resp.Topics, kmsg.MetadataResponseTopic{
			ErrorCode: kerr.UnknownTopicID.Code, TopicID: id,
			AuthorizedOperations: authorizedOpsOmitted,
		})
	}
	// By ID (v12+): when the request names any nonzero topic ID, Kafka
	// answers for the IDs alone, each once.
	var ids []metadata.UUID
	for _, rt := range r.Topics {
		id := metadata.UUID(rt.TopicID)
		if id != (metadata.UUID{}) && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	if len(ids) > 0 {
		// The IDs are distinct, and so are their topics.
		for _, id := range ids {
			if t, ok := img.TopicByID(id); ok && !described(t.Name) {
				// Kafka answers with the ID, not the name: IDs
				// are not secret, names may be.
				unauthorized(nil, id)
			} else if ok {
				addTopic(t)
			} else {
				unknownID(id)
			}
		}
		return resp
	}

	seen := map[string]bool{}
	for _, rt := range r.Topics {
		if rt.Topic == nil {
			unknownID(rt.TopicID) // v12+ with neither a name nor an ID
			continue
		}
		name := *rt.Topic
		if seen[name] {
			continue
		}
		seen[name] = true
		if !described(name) {
			unauthorized(kmsg.StringPtr(name), [16]byte{})
			continue
		}
		if t, ok := img.Topic(name); ok {
			addTopic(t)
			continue
		}
		errTopic := func(err *kerr.Error) {
			mt := kmsg.MetadataResponseTopic{
				ErrorCode: err.Code, Topic: kmsg.StringPtr(name),
				IsInternal:           isInternal(name),
				AuthorizedOperations: authorizedOpsOmitted,
			}
			if includeOps {
				mt.AuthorizedOperations = b.authorizedOps(req, kmsg.ACLResourceTypeTopic, name)
			}
			resp.Topics = append(resp.Topics, mt)
		}
		if err := validateTopicName(name); err != nil {
			errTopic(kerr.InvalidTopicException)
			continue
		}
		if !allowAuto || name == ClusterMetadataTopic {
			errTopic(kerr.UnknownTopicOrPartition)
			continue
		}
		if !b.authorizedCreate(req, name) {
			errTopic(kerr.TopicAuthorizationFailed)
			continue
		}
		t, err := b.autoCreate(name)
		if err != nil {
			errTopic(err)
			continue
		}
		addTopic(t)
	}
	return resp
}

// autoCreate creates a topic a Metadata request named. An internal topic
// is created as its coordinator creates it (Kafka's
// AutoTopicCreationManager gives it the coordinator's partition count
// and configs too).
func (b *Broker) autoCreate(name string) (*metadata.Topic, *kerr.Error) {
	if isInternal(name) {
		var err *kerr.Error
		if name == OffsetsTopic {
			_, err = b.coordinator()
		} else {
			_, err = b.txnCoordinator()
		}
		if err != nil {
			return nil, kerr.UnknownTopicOrPartition
		}
		t, ok := b.meta.Image().Topic(name)
		if !ok {
			return nil, kerr.UnknownTopicOrPartition
		}
		return t, nil
	}
	t, terr := b.autoCreateTopic(name)
	if terr != nil {
		return nil, terr.err
	}
	return t, nil
}

// metadataRequestError answers a request Kafka refuses as a whole, as its
// MetadataRequest.getErrorResponse does: every requested topic with err
// (a null name as ""), no brokers, no cluster ID.
func metadataRequestError(r *kmsg.MetadataRequest, resp *kmsg.MetadataResponse, err *kerr.Error) *kmsg.MetadataResponse {
	resp.ErrorCode = err.Code
	resp.ControllerID = -1
	resp.AuthorizedOperations = authorizedOpsOmitted
	for _, rt := range r.Topics {
		name := ""
		if rt.Topic != nil {
			name = *rt.Topic
		}
		resp.Topics = append(resp.Topics, kmsg.MetadataResponseTopic{
			ErrorCode: err.Code, Topic: kmsg.StringPtr(name), TopicID: rt.TopicID,
			AuthorizedOperations: authorizedOpsOmitted,
		})
	}
	return resp
}

func (b *Broker) metadataTopic(t *metadata.Topic) kmsg.MetadataResponseTopic {
	mt := kmsg.MetadataResponseTopic{
		Topic:                kmsg.StringPtr(t.Name),
		TopicID:              t.ID,
		IsInternal:           isInternal(t.Name),
		AuthorizedOperations: authorizedOpsOmitted,
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
		if p.Leader < 0 {
			// No live in-sync replica to lead (leader election):
			// clients retry until one is elected.
			mp.ErrorCode = kerr.LeaderNotAvailable.Code
		}
	}
	return mt
}
