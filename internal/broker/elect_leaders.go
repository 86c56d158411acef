package broker

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/metadata"
	"github.com/gregor-streaming/gregor/internal/wire"
)

// ElectLeaders: v0-2 (kafka-leader-election.sh, Admin.electLeaders)
//
// Version notes:
//   - v1: ElectionType (0 preferred, 1 unclean; v0 is preferred) and a
//     top-level ErrorCode
//   - v2: flexible
//
// As Kafka's controller (ReplicationControlManager.electLeaders): a
// preferred election makes the partition's first replica its leader
// when that replica is live and in the ISR (PREFERRED_LEADER_NOT_AVAILABLE
// otherwise, ELECTION_NOT_NEEDED when it leads already); an unclean one
// elects a leader for a partition whose leader is not live, from its
// ISR first, else any live replica, whatever the topic's
// unclean.leader.election.enable (ELECTION_NOT_NEEDED when the leader is
// live, ELIGIBLE_LEADERS_NOT_AVAILABLE with no live replica). No
// partitions named means every partition, and then those needing no
// election are left out of the response. ALTER on the cluster is
// required. Any broker answers, once the changes are committed; the
// brokers count as live unless fenced, and on the active controller as
// its liveness check says.
func init() { registerSync(43, 0, 2, (*Broker).handleElectLeaders) }

const (
	electionPreferred int8 = 0
	electionUnclean   int8 = 1
)

func (b *Broker) handleElectLeaders(req *wire.Request) kmsg.Response {
	r := req.Body.(*kmsg.ElectLeadersRequest)
	resp := r.ResponseKind().(*kmsg.ElectLeadersResponse)
	if r.Version == 0 {
		r.ElectionType = electionPreferred
	}
	// Every partition named gets the same error (Kafka's
	// handleElectLeaders answers a refused request so).
	failAll := func(err *kerr.Error, msg string) kmsg.Response {
		resp.ErrorCode = err.Code
		for _, rt := range r.Topics {
			st := kmsg.NewElectLeadersResponseTopic()
			st.Topic = rt.Topic
			for _, p := range rt.Partitions {
				sp := kmsg.NewElectLeadersResponseTopicPartition()
				sp.Partition = p
				sp.ErrorCode = err.Code
				sp.ErrorMessage = kmsg.StringPtr(msg)
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp
	}
	if !b.authorizedCluster(req, kmsg.ACLOperationAlter) {
		return failAll(kerr.ClusterAuthorizationFailed, "")
	}
	if r.ElectionType != electionPreferred && r.ElectionType != electionUnclean {
		return failAll(kerr.InvalidRequest, fmt.Sprintf("unknown election type %d", r.ElectionType))
	}
	all := r.Topics == nil
	var results []kmsg.ElectLeadersResponseTopic
	var before *metadata.Image
	var recs []metadata.Record
	_, err := b.meta.Update(func(img *metadata.Image) ([]metadata.Record, error) {
		before, recs, results = img, nil, nil
		live := b.electionLiveness(img)
		elect := func(t *metadata.Topic, p *metadata.Partition, st *kmsg.ElectLeadersResponseTopic) {
			var c *metadata.PartitionChangeRecord
			var err *kerr.Error
			if r.ElectionType == electionPreferred {
				c, err = preferredChange(p, live)
			} else {
				c, err = uncleanChange(p, live)
			}
			if all && err == kerr.ElectionNotNeeded {
				return
			}
			sp := kmsg.NewElectLeadersResponseTopicPartition()
			sp.Partition = p.Partition
			if err != nil {
				sp.ErrorCode = err.Code
				sp.ErrorMessage = kmsg.StringPtr(electionMessage(err, t.Name, p.Partition))
			} else {
				c.TopicID = t.ID
				recs = append(recs, metadata.Record{PartitionChange: c})
			}
			st.Partitions = append(st.Partitions, sp)
		}
		if all {
			for _, name := range img.TopicNames() {
				t := img.Topics[name]
				st := kmsg.NewElectLeadersResponseTopic()
				st.Topic = name
				for _, p := range t.Partitions {
					elect(t, p, &st)
				}
				if len(st.Partitions) > 0 {
					results = append(results, st)
				}
			}
			return recs, nil
		}
		for _, rt := range r.Topics {
			st := kmsg.NewElectLeadersResponseTopic()
			st.Topic = rt.Topic
			t, _ := img.Topic(rt.Topic)
			for _, idx := range rt.Partitions {
				var p *metadata.Partition
				if t != nil {
					p = t.Partition(idx)
				}
				if p == nil {
					sp := kmsg.NewElectLeadersResponseTopicPartition()
					sp.Partition = idx
					sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
					sp.ErrorMessage = kmsg.StringPtr(fmt.Sprintf("no partition %s-%d", rt.Topic, idx))
					st.Partitions = append(st.Partitions, sp)
					continue
				}
				elect(t, p, &st)
			}
			results = append(results, st)
		}
		return recs, nil
	})
	if err != nil {
		// Not committed: no partition was elected.
		b.log.Warn("leader election not committed", "err", err)
		return failAll(kerr.RequestTimedOut, err.Error())
	}
	reason := "preferred election requested"
	if r.ElectionType == electionUnclean {
		reason = "unclean election requested"
	}
	b.logPartitionChanges(before, recs, reason)
	resp.Topics = results
	return resp
}

// electionLiveness is which brokers an election on img may elect: the
// active controller's liveness check on the controller, elsewhere the
// registered brokers the controller has not fenced.
func (b *Broker) electionLiveness(img *metadata.Image) func(int32) bool {
	if live := b.brokerLiveness(img); live != nil {
		return live
	}
	return func(id int32) bool { return img.Brokers[id] != nil && !img.Fenced[id] }
}

// electionMessage is the message of an election's error for a partition.
func electionMessage(err *kerr.Error, topic string, partition int32) string {
	switch err {
	case kerr.ElectionNotNeeded:
		return fmt.Sprintf("partition %s-%d already has the leader the election would choose", topic, partition)
	case kerr.PreferredLeaderNotAvailable:
		return fmt.Sprintf("the preferred replica of %s-%d is not live or not in its ISR", topic, partition)
	case kerr.EligibleLeadersNotAvailable:
		return fmt.Sprintf("no replica of %s-%d is live", topic, partition)
	}
	return err.Message
}
