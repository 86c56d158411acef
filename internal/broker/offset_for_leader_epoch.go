package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/wire"
)

// OffsetForLeaderEpoch: v2-4
//
// Version notes:
//   - v2: CurrentLeaderEpoch fencing, ThrottleMillis (KIP-320); the floor,
//     as in Kafka 4 (KIP-896): v0-1 were only sent by followers of
//     Kafka < 2.1 brokers
//   - v3: ReplicaID (KIP-392): -1 a consumer, -2 a debug client, >= 0 a
//     follower; Kafka answers all of them alike, and so does Gregor
//   - v4: flexible
//
// Consumers (the Java client, librdkafka >= 1.4, franz-go) ask it to
// validate their position after a leader change or when resuming a
// commit that carries a leader epoch (KIP-320); followers ask it to find
// where to truncate (KIP-101). The answer is Kafka's
// LeaderEpochFileCache.endOffsetFor on the log's epoch history: for the
// partition's current epoch, the log end offset (for consumers too:
// Kafka's handler ignores ReplicaID and does not apply the cap at the
// high watermark that KIP-392's text proposed);
// for an older epoch, the largest epoch <= it and the start of the next
// one; for an epoch older than the history, that epoch and the
// history's first start offset; for an epoch newer than the current
// one, or -1, epoch and offset -1 without an error. As a Kafka leader
// enters its epoch in the history when elected, the current epoch counts
// as entered at the log end offset while nothing was written under it.
func init() { registerSync(23, 2, 4, (*Broker).handleOffsetForLeaderEpoch) }

func (b *Broker) handleOffsetForLeaderEpoch(req *wire.Request) kmsg.Response {
	r := req.Body.(*kmsg.OffsetForLeaderEpochRequest)
	resp := r.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	img := b.meta.Image()
	// A follower's CLUSTER_ACTION covers every topic, else a consumer's
	// DESCRIBE on each (Kafka's handleOffsetForLeaderEpochRequest: the
	// API was inter-broker before KIP-320).
	describable := allowAll
	if !b.authorizedCluster(req, kmsg.ACLOperationClusterAction) {
		describable = b.topicCheck(req, kmsg.ACLOperationDescribe)
	}
	for _, rt := range r.Topics {
		st := kmsg.NewOffsetForLeaderEpochResponseTopic()
		st.Topic = rt.Topic
		described := describable(rt.Topic)
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			sp.Partition = rp.Partition
			if !described {
				sp.ErrorCode = kerr.TopicAuthorizationFailed.Code
				sp.LeaderEpoch, sp.EndOffset = -1, -1
			} else if p := b.partitionOf(img, rt.Topic, rp.Partition); p == nil {
				sp.ErrorCode = b.absentErrorOf(img, rt.Topic, rp.Partition).Code
			} else {
				sp.ErrorCode, sp.LeaderEpoch, sp.EndOffset = p.endOffsetForEpoch(rp.CurrentLeaderEpoch, rp.LeaderEpoch)
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

// endOffsetForEpoch answers one partition of OffsetForLeaderEpoch:
// current is the requester's idea of the leader epoch (-1: no check),
// epoch the one it asks about. Errors carry epoch and offset -1.
func (p *partition) endOffsetForEpoch(current, epoch int32) (errCode int16, leaderEpoch int32, endOffset int64) {
	// Under mu, no append runs: the history and the log end offset
	// are read together with the epoch they are checked against.
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.deleted {
		return kerr.UnknownTopicOrPartition.Code, -1, -1
	}
	if err := leaderEpochError(current, p.leaderEpoch); err != nil {
		return err.Code, -1, -1
	}
	leaderEpoch, endOffset = p.log.EndOffsetForEpoch(epoch, p.leaderEpoch)
	return 0, leaderEpoch, endOffset
}
