package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/wire"
)

// DescribeProducers: v0
//
// Lists the producers with state on each partition (KIP-664): producer
// ID and epoch, last sequence and timestamp, the coordinator epoch of
// their last marker and the first offset of their open transaction
// (-1: none). kafka-transactions.sh find-hanging uses it. A partition
// of an unknown topic is UNKNOWN_TOPIC_OR_PARTITION; of a name no topic
// may have (empty, too long, bad characters) INVALID_TOPIC_EXCEPTION.
func init() { registerSync(61, 0, 0, (*Broker).handleDescribeProducers) }

func (b *Broker) handleDescribeProducers(req *wire.Request) kmsg.Response {
	r := req.Body.(*kmsg.DescribeProducersRequest)
	resp := r.ResponseKind().(*kmsg.DescribeProducersResponse)
	img := b.meta.Image()
	for _, rt := range r.Topics {
		st := kmsg.NewDescribeProducersResponseTopic()
		st.Topic = rt.Topic
		// A name no topic may have is INVALID_TOPIC_EXCEPTION for each
		// of its partitions, before the unknown ones (Kafka's
		// checkValidTopic).
		invalid := validateTopicName(rt.Topic) != nil
		// READ on the topic, checked first (Kafka's
		// handleDescribeProducersRequest).
		readable := b.authorizedTopic(req, kmsg.ACLOperationRead, rt.Topic)
		for _, part := range rt.Partitions {
			sp := kmsg.NewDescribeProducersResponseTopicPartition()
			sp.Partition = part
			if !readable {
				sp.ErrorCode = kerr.TopicAuthorizationFailed.Code
				st.Partitions = append(st.Partitions, sp)
				continue
			}
			var p *partition
			if !invalid {
				p = b.partitionOf(img, rt.Topic, part)
			}
			if p == nil {
				sp.ErrorCode = b.absentErrorOf(img, rt.Topic, part).Code
				if invalid {
					sp.ErrorCode = kerr.InvalidTopicException.Code
				}
				st.Partitions = append(st.Partitions, sp)
				continue
			}
			p.mu.Lock()
			for id, ps := range p.producers.all() {
				ap := kmsg.NewDescribeProducersResponseTopicPartitionActiveProducer()
				ap.ProducerID, ap.ProducerEpoch = id, int32(ps.epoch)
				ap.LastSequence, ap.LastTimestamp = ps.lastSeq(), ps.lastTimestamp
				ap.CoordinatorEpoch = ps.coordinatorEpoch
				ap.CurrentTxnStartOffset = -1
				if first, open := p.ongoing[id]; open {
					ap.CurrentTxnStartOffset = first
				}
				sp.ActiveProducers = append(sp.ActiveProducers, ap)
			}
			p.mu.Unlock()
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}
