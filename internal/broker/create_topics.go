package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/config"
	"github.com/gregor-streaming/gregor/internal/wire"
)

// CreateTopics: v2-7
//
// Version notes:
//   - v1: ValidateOnly, ErrorMessage
//   - v4: -1 partitions/replication factor = broker default (KIP-464)
//   - v5: flexible; NumPartitions, ReplicationFactor and Configs in the
//     response (KIP-525)
//   - v7: TopicID
func init() { registerSync(19, 2, 7, (*Broker).handleCreateTopics) }

func (b *Broker) handleCreateTopics(req *wire.Request) kmsg.Response {
	r := req.Body.(*kmsg.CreateTopicsRequest)
	resp := r.ResponseKind().(*kmsg.CreateTopicsResponse)
	specs := make([]*topicSpec, len(r.Topics))
	for i, rt := range r.Topics {
		spec := &topicSpec{name: rt.Topic, partitions: rt.NumPartitions, replicationFactor: rt.ReplicationFactor,
			assignment: rt.ReplicaAssignment}
		if len(rt.Configs) > 0 {
			spec.configs = map[string]string{}
			for _, c := range rt.Configs {
				if c.Value != nil {
					spec.configs[c.Name] = *c.Value
				}
			}
		}
		specs[i] = spec
	}
	// CREATE on the cluster, or on each topic (Kafka's
	// handleCreateTopicsRequest): the others are refused before any is
	// looked at. at[i] is spec i's index among the allowed, -1 if none.
	clusterCreate := b.authorizedCluster(req, kmsg.ACLOperationCreate)
	at := make([]int, len(specs))
	allowed := make([]*topicSpec, 0, len(specs))
	for i, spec := range specs {
		at[i] = -1
		if clusterCreate || b.authorizedTopic(req, kmsg.ACLOperationCreate, spec.name) {
			at[i] = len(allowed)
			allowed = append(allowed, spec)
		}
	}
	errs, img, err := b.createTopics(allowed, r.ValidateOnly)
	for i, spec := range specs {
		rt := kmsg.NewCreateTopicsResponseTopic()
		rt.Topic = spec.name
		var terr *topicError
		switch {
		case at[i] < 0:
			terr = &topicError{err: kerr.TopicAuthorizationFailed, msg: "Authorization failed."}
		case err != nil:
			terr = storageError(err)
		case errs[at[i]] != nil:
			terr = errs[at[i]]
		}
		if terr != nil {
			rt.ErrorCode = terr.err.Code
			rt.ErrorMessage = kmsg.StringPtr(terr.msg)
			rt.NumPartitions, rt.ReplicationFactor = -1, -1
			resp.Topics = append(resp.Topics, rt)
			continue
		}
		rt.NumPartitions = spec.partitions
		rt.ReplicationFactor = spec.replicationFactor
		if t, ok := img.Topic(spec.name); ok && !r.ValidateOnly {
			rt.TopicID = t.ID
		}
		if !b.authorizedTopic(req, kmsg.ACLOperationDescribeConfigs, spec.name) {
			// The topic is created; its configs are not the
			// client's to see.
			rt.ConfigErrorCode = kerr.TopicAuthorizationFailed.Code
			resp.Topics = append(resp.Topics, rt)
			continue
		}
		tcfg := b.Config().Topic(spec.configs)
		for _, name := range config.Topic.Names() {
			v, src, ok := tcfg.Lookup(name)
			d, _ := config.Topic.Lookup(name)
			c := kmsg.NewCreateTopicsResponseTopicConfig()
			c.Name = name
			if ok && !d.Sensitive {
				c.Value = kmsg.StringPtr(v)
			}
			c.ReadOnly = d.ReadOnly
			c.Source = int8(src)
			c.IsSensitive = d.Sensitive
			rt.Configs = append(rt.Configs, c)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

// storageError maps an unexpected error from a domain package to a
// topic error.
func storageError(err error) *topicError {
	if ke, ok := err.(*kerr.Error); ok {
		return &topicError{err: ke, msg: ke.Message}
	}
	return newTopicError(kerr.KafkaStorageError, "%v", err)
}
