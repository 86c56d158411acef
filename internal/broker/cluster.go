package broker

import (
	"cmp"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/gregor-streaming/gregor/internal/metadata"
)

// Register records this broker's endpoints in the cluster metadata (a
// BrokerRecord), when they differ from what is recorded: the other
// brokers list it with them in Metadata and DescribeCluster. Call it
// once the listeners are bound and their endpoints set
// (SetAdvertised, SetListenerAdvertised).
func (b *Broker) Register() error {
	rec := b.brokerRecord()
	_, err := b.meta.Update(func(img *metadata.Image) ([]metadata.Record, error) {
		if cur := img.Brokers[rec.ID]; cur != nil && reflect.DeepEqual(cur, rec) {
			return nil, nil
		}
		return []metadata.Record{{Broker: rec}}, nil
	})
	return err
}

// brokerRecord describes this broker's current endpoints.
func (b *Broker) brokerRecord() *metadata.BrokerRecord {
	host, port := b.endpoint("")
	rec := &metadata.BrokerRecord{ID: b.nodeID, Host: host, Port: port, Rack: b.Config().String("broker.rack")}
	b.listenerEndpoints.Range(func(k, v any) bool {
		ep := v.(*endpoint)
		rec.Endpoints = append(rec.Endpoints, metadata.BrokerEndpoint{Listener: k.(string), Host: ep.host, Port: ep.port})
		return true
	})
	slices.SortFunc(rec.Endpoints, func(x, y metadata.BrokerEndpoint) int { return cmp.Compare(x.Listener, y.Listener) })
	return rec
}

// clusterBroker is one broker as Metadata and DescribeCluster list it.
type clusterBroker struct {
	id   int32
	host string
	port int32
	rack *string
}

// clusterBrokers returns the brokers a client of listener is told of,
// by ID: this one at its current endpoint (registered or not), and
// every other registered broker at its endpoint for the same listener.
func (b *Broker) clusterBrokers(img *metadata.Image, listener string) []clusterBroker {
	ids := b.brokerIDs(img)
	out := make([]clusterBroker, 0, len(ids))
	for _, id := range ids {
		cb := clusterBroker{id: id}
		cb.host, cb.port, _ = b.brokerEndpoint(img, id, listener)
		if r := img.Brokers[id]; r != nil && r.Rack != "" {
			cb.rack = &r.Rack
		}
		out = append(out, cb)
	}
	return out
}

// brokerIDs returns the IDs of the registered brokers the controller
// has not fenced, and this broker's (registered yet or not), sorted:
// those clients are told of and new partitions are placed on.
func (b *Broker) brokerIDs(img *metadata.Image) []int32 {
	ids := slices.Sorted(maps.Keys(img.Brokers))
	ids = slices.DeleteFunc(ids, func(id int32) bool { return img.Fenced[id] && id != b.nodeID })
	if i, found := slices.BinarySearch(ids, b.nodeID); !found {
		ids = slices.Insert(ids, i, b.nodeID)
	}
	return ids
}

// brokerEndpoint returns where clients of listener reach broker id:
// this broker's current endpoint, another's registered one; ok is false
// for a broker that never registered.
func (b *Broker) brokerEndpoint(img *metadata.Image, id int32, listener string) (host string, port int32, ok bool) {
	if id == b.nodeID {
		host, port = b.endpoint(listener)
		return host, port, true
	}
	r := img.Brokers[id]
	if r == nil {
		return "", -1, false
	}
	host, port = r.Endpoint(listener)
	return host, port, true
}

// controllerID is the active controller's node ID (the metadata quorum's
// leader), this broker when none is known.
func (b *Broker) controllerID() int32 {
	if id := b.meta.Controller(); id >= 0 {
		return id
	}
	return b.nodeID
}

// hosts reports whether this broker keeps partition mp's log: every
// partition on a single node, its replicas' in a cluster.
func (b *Broker) hosts(mp *metadata.Partition) bool {
	return !b.cluster || slices.Contains(mp.Replicas, b.nodeID)
}

// followMetadata applies the images other nodes' updates make (topics
// created or deleted, configs) until the broker closes. A single node
// makes every change itself, and reconciles after it.
func (b *Broker) followMetadata(changed <-chan struct{}) {
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-changed:
		}
		if err := b.reconcile(b.meta.Image()); err != nil {
			b.log.Error("applying a metadata change", "err", err)
		}
	}
}

// absentError is the error for partition index of topic when this
// broker has no log of it: NOT_LEADER_OR_FOLLOWER (NotLeaderForPartition
// in kerr) when the partition exists and another broker hosts it, so the
// client refreshes its metadata and goes there; UNKNOWN_TOPIC_OR_PARTITION
// otherwise.
func (b *Broker) absentError(topic *metadata.Topic, index int32) *kerr.Error {
	if b.cluster && topic.Partition(index) != nil {
		return kerr.NotLeaderForPartition
	}
	return kerr.UnknownTopicOrPartition
}

// absentErrorOf is absentError for the topic named name in img.
func (b *Broker) absentErrorOf(img *metadata.Image, name string, index int32) *kerr.Error {
	t, _ := img.Topic(name)
	return b.absentError(t, index)
}

// placementBrokers returns the brokers new partitions are placed on, by
// ID: this one on a single node; every registered broker in a cluster
// (this one included, registered yet or not).
func (b *Broker) placementBrokers(img *metadata.Image) []int32 {
	if !b.cluster {
		return []int32{b.nodeID}
	}
	return b.brokerIDs(img)
}

// partitionRecordsFor returns the records of topic id's new partitions
// from..to-1, each with rf replicas: those of assignment[i-from] when
// given (validated), else placed round robin over placementBrokers from
// a random start, as Kafka spreads leaders. The first replica leads.
func (b *Broker) partitionRecordsFor(img *metadata.Image, id metadata.UUID, from, to int32, rf int, assignment func(i int) []int32) []metadata.Record {
	brokers := b.placementBrokers(img)
	start := 0
	if len(brokers) > 1 {
		start = rand.IntN(len(brokers))
	}
	recs := make([]metadata.Record, 0, to-from)
	for p := from; p < to; p++ {
		var replicas []int32
		if assignment != nil {
			replicas = slices.Clone(assignment(int(p - from)))
		} else {
			replicas = make([]int32, rf)
			for j := range rf {
				replicas[j] = brokers[(start+int(p)+j)%len(brokers)]
			}
		}
		recs = append(recs, metadata.Record{Partition: &metadata.PartitionRecord{
			TopicID: id, Partition: p, Replicas: replicas, ISR: replicas, Leader: replicas[0],
		}})
	}
	return recs
}

// startCoordinator starts coordinator c over the internal topic name:
// on a single node it coordinates every partition (at coordinator epoch
// 0, as always); in a cluster, each partition is elected (this broker
// leads it) or resigned at its leader epoch by the current image before
// Start, and applyPartitionState elects and resigns it as its leadership
// moves (docs/CLUSTER.md, step 6). A transaction coordinator's markers
// carry the leader epoch it was elected at, so partition leaders fence
// the markers of a coordinator that lost its partition.
func (b *Broker) startCoordinator(c internalCoordinator, name string) {
	t, ok := b.meta.Image().Topic(name)
	if !ok {
		return
	}
	if b.cluster {
		for _, mp := range t.Partitions {
			if mp.Leader == b.nodeID {
				c.Elect(mp.Partition, mp.LeaderEpoch)
			} else {
				c.Resign(mp.Partition, mp.LeaderEpoch)
			}
		}
	}
	c.Start(int32(len(t.Partitions)), nil)
}

// coordinatorRole elects or resigns this broker's coordinator of an
// internal topic's partition whose leadership moved here or away.
func (b *Broker) coordinatorRole(topic string, index int32, lead bool, epoch int32) {
	var c internalCoordinator
	switch {
	case topic == OffsetsTopic && b.groups.coord != nil:
		c = b.groups.coord
	case topic == TxnTopic && b.txns.coord != nil:
		c = b.txns.coord
	default:
		return
	}
	if lead {
		c.Elect(index, epoch)
	} else {
		c.Resign(index, epoch)
	}
}

// partitionLeader returns the leader of partition index of topic and
// its endpoint for clients of listener: this broker on a single node;
// in a cluster, the leader the image names, if it registered.
func (b *Broker) partitionLeader(topic string, index int32, listener string) (id int32, host string, port int32, ok bool) {
	if !b.cluster {
		host, port = b.endpoint(listener)
		return b.nodeID, host, port, true
	}
	img := b.meta.Image()
	t, _ := img.Topic(topic)
	p := t.Partition(index)
	if p == nil {
		return -1, "", -1, false
	}
	host, port, ok = b.brokerEndpoint(img, p.Leader, listener)
	if !ok {
		return -1, "", -1, false
	}
	return p.Leader, host, port, true
}

// internalReplicationFactor is the replication factor of an internal
// topic created now: rf (offsets.topic.replication.factor,
// transaction.state.log.replication.factor) capped at the brokers new
// partitions can be placed on, so a single node or a small cluster gets
// its coordinators; Kafka refuses to create the topic until enough
// brokers registered instead.
func (b *Broker) internalReplicationFactor(rf int64) int16 {
	return int16(max(1, min(rf, int64(len(b.placementBrokers(b.meta.Image()))))))
}
