package broker

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/metadata"
	"github.com/gregor-streaming/gregor/internal/wire"
)

// CreatePartitions: v0-3
//
// Version notes:
//   - v1: no change (throttle behaviour)
//   - v2: flexible
//   - v3: no change (KIP-599 quota errors)
//
// Partitions only grow (Kafka's rule): a count at or below the current
// one is INVALID_PARTITIONS. New partitions are committed to the cluster
// metadata and their logs opened before the response, so the next
// Metadata request shows them.
func init() { registerSync(37, 0, 3, (*Broker).handleCreatePartitions) }

func (b *Broker) handleCreatePartitions(req *wire.Request) kmsg.Response {
	r := req.Body.(*kmsg.CreatePartitionsRequest)
	resp := r.ResponseKind().(*kmsg.CreatePartitionsResponse)
	errs := make([]*topicError, len(r.Topics))
	count := map[string]int{}
	for _, rt := range r.Topics {
		count[rt.Topic]++
	}
	img, err := b.meta.Update(func(img *metadata.Image) ([]metadata.Record, error) {
		var recs []metadata.Record
		have := img.PartitionCount()
		for i := range r.Topics {
			rt := &r.Topics[i]
			if count[rt.Topic] > 1 {
				errs[i] = newTopicError(kerr.InvalidRequest, "duplicate topic name %q", rt.Topic)
				continue
			}
			// ALTER on the topic (Kafka's
			// handleCreatePartitionsRequest).
			if !b.authorizedTopic(req, kmsg.ACLOperationAlter, rt.Topic) {
				errs[i] = newTopicError(kerr.TopicAuthorizationFailed, "Authorization failed.")
				continue
			}
			var add []metadata.Record
			if add, errs[i] = b.partitionRecords(img, rt); errs[i] == nil {
				errs[i] = b.checkCapacity(have, len(add))
			}
			if errs[i] == nil && !r.ValidateOnly {
				have += len(add)
				recs = append(recs, add...)
			}
		}
		return recs, nil
	})
	if err == nil && !r.ValidateOnly {
		err = b.reconcile(img)
	}
	for i, rt := range r.Topics {
		st := kmsg.NewCreatePartitionsResponseTopic()
		st.Topic = rt.Topic
		switch {
		case errs[i] != nil:
			st.ErrorCode = errs[i].err.Code
			st.ErrorMessage = kmsg.StringPtr(errs[i].msg)
		case err != nil:
			st.ErrorCode = kerr.KafkaStorageError.Code
			st.ErrorMessage = kmsg.StringPtr(err.Error())
		case !r.ValidateOnly:
			b.log.Info("partitions created", "topic", rt.Topic, "partitions", rt.Count)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

// partitionRecords validates growing a topic to rt.Count partitions and
// returns the records that do it.
func (b *Broker) partitionRecords(img *metadata.Image, rt *kmsg.CreatePartitionsRequestTopic) ([]metadata.Record, *topicError) {
	t, ok := img.Topic(rt.Topic)
	if !ok {
		return nil, newTopicError(kerr.UnknownTopicOrPartition, "topic %q does not exist", rt.Topic)
	}
	if isInternal(t.Name) {
		// The coordinators map keys to partitions by their count.
		return nil, newTopicError(kerr.InvalidPartitions, "the number of partitions of internal topic %q cannot change", t.Name)
	}
	cur := int32(len(t.Partitions))
	switch {
	case rt.Count == cur:
		return nil, newTopicError(kerr.InvalidPartitions, "topic %q already has %d partitions", t.Name, cur)
	case rt.Count < cur:
		return nil, newTopicError(kerr.InvalidPartitions, "topic %q currently has %d partitions, %d would not be an increase", t.Name, cur, rt.Count)
	case rt.Count > maxPartitionsPerTopic:
		return nil, newTopicError(kerr.InvalidPartitions, "number of partitions %d is above the limit of %d", rt.Count, maxPartitionsPerTopic)
	}
	rf := 1
	if len(t.Partitions) > 0 {
		rf = len(t.Partitions[0].Replicas)
	}
	if rt.Assignment != nil && len(rt.Assignment) != int(rt.Count-cur) {
		return nil, newTopicError(kerr.InvalidReplicaAssignment, "attempted to add %d additional partitions, but %d assignments were given", rt.Count-cur, len(rt.Assignment))
	}
	known := b.placementBrokers(img)
	for i, a := range rt.Assignment {
		if len(a.Replicas) != rf {
			return nil, newTopicError(kerr.InvalidReplicaAssignment, "assignment %d has %d replicas, the topic's replication factor is %d", i, len(a.Replicas), rf)
		}
		seen := map[int32]bool{}
		for _, r := range a.Replicas {
			if !slices.Contains(known, r) {
				return nil, newTopicError(kerr.InvalidReplicaAssignment, "unknown broker %d in assignment %d", r, i)
			}
			if seen[r] {
				return nil, newTopicError(kerr.InvalidReplicaAssignment, "duplicate broker %d in assignment %d", r, i)
			}
			seen[r] = true
		}
	}
	var assignment func(int) []int32
	if rt.Assignment != nil {
		assignment = func(i int) []int32 { return rt.Assignment[i].Replicas }
	}
	return b.partitionRecordsFor(img, t.ID, cur, rt.Count, rf, assignment), nil
}
