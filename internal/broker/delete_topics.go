package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/metadata"
	"github.com/gregor-streaming/gregor/internal/wire"
)

// DeleteTopics: v1-6
//
// Version notes:
//   - v4: flexible
//   - v5: ErrorMessage
//   - v6: topics by name or ID (KIP-516)
//
// With delete.topic.enable=false every topic is TOPIC_DELETION_DISABLED
// (INVALID_REQUEST before v3, which has no such code), as in Kafka.
func init() { registerSync(20, 1, 6, (*Broker).handleDeleteTopics) }

// deleteTarget is a topic named in a DeleteTopics request and its
// outcome.
type deleteTarget struct {
	name *string
	id   metadata.UUID
	err  *kerr.Error
	msg  string
}

func (b *Broker) handleDeleteTopics(req *wire.Request) kmsg.Response {
	r := req.Body.(*kmsg.DeleteTopicsRequest)
	resp := r.ResponseKind().(*kmsg.DeleteTopicsResponse)

	var targets []*deleteTarget
	if r.Version >= 6 {
		for _, t := range r.Topics {
			targets = append(targets, &deleteTarget{name: t.Topic, id: metadata.UUID(t.TopicID)})
		}
	} else {
		for _, n := range r.TopicNames {
			targets = append(targets, &deleteTarget{name: kmsg.StringPtr(n)})
		}
	}
	if !b.Config().Bool("delete.topic.enable") {
		// As Kafka's controller: every topic refused, before any is
		// looked up.
		refusal := kerr.TopicDeletionDisabled
		if r.Version < 3 {
			refusal = kerr.InvalidRequest
		}
		for _, t := range targets {
			t.err, t.msg = refusal, "topic deletion is disabled (delete.topic.enable=false)"
		}
		return b.deleteTopicsResponse(resp, targets, nil)
	}
	img, err := b.meta.Update(func(img *metadata.Image) ([]metadata.Record, error) {
		var recs []metadata.Record
		seen := map[metadata.UUID]bool{}
		for _, t := range targets {
			var topic *metadata.Topic
			var ok bool
			// DELETE on the topic; a name the client may not
			// delete is refused before its existence is told, an
			// ID's name is hidden from a client that may not
			// describe it (Kafka's ControllerApis.deleteTopics).
			if t.name != nil && *t.name != "" {
				if !b.authorizedTopic(req, kmsg.ACLOperationDelete, *t.name) {
					t.err = kerr.TopicAuthorizationFailed
					continue
				}
				if topic, ok = img.Topic(*t.name); !ok {
					t.err = kerr.UnknownTopicOrPartition
					continue
				}
			} else {
				if topic, ok = img.TopicByID(t.id); !ok {
					t.err = kerr.UnknownTopicID
					continue
				}
				if !b.authorizedTopic(req, kmsg.ACLOperationDelete, topic.Name) {
					t.err = kerr.TopicAuthorizationFailed
					if b.authorizedTopic(req, kmsg.ACLOperationDescribe, topic.Name) {
						t.name = &topic.Name
					}
					continue
				}
				name := topic.Name
				t.name = &name
			}
			t.id = topic.ID
			if isInternal(topic.Name) || topic.Name == ClusterMetadataTopic {
				// A __cluster_metadata topic (made before its name
				// was refused) shares the metadata log's directory.
				t.err, t.msg = kerr.InvalidRequest, "internal topics cannot be deleted"
				continue
			}
			if seen[topic.ID] {
				continue
			}
			seen[topic.ID] = true
			recs = append(recs, metadata.Record{RemoveTopic: &metadata.RemoveTopicRecord{ID: topic.ID}})
		}
		return recs, nil
	})
	if err == nil {
		err = b.reconcile(img)
	}
	return b.deleteTopicsResponse(resp, targets, err)
}

// deleteTopicsResponse answers each target: its own refusal, else err
// (the metadata update's), else deleted.
func (b *Broker) deleteTopicsResponse(resp *kmsg.DeleteTopicsResponse, targets []*deleteTarget, err error) kmsg.Response {
	for _, t := range targets {
		rt := kmsg.NewDeleteTopicsResponseTopic()
		rt.Topic = t.name
		rt.TopicID = t.id
		switch {
		case t.err != nil:
			rt.ErrorCode = t.err.Code
			if t.msg != "" {
				rt.ErrorMessage = kmsg.StringPtr(t.msg)
			}
		case err != nil:
			rt.ErrorCode = kerr.KafkaStorageError.Code
			rt.ErrorMessage = kmsg.StringPtr(err.Error())
		default:
			b.log.Info("topic deleted", "topic", *t.name)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}
