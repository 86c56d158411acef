package broker

import (
	"cmp"
	"maps"
	"reflect"
	"slices"

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
	rec := &metadata.BrokerRecord{ID: b.nodeID, Host: host, Port: port}
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
	host, port := b.endpoint(listener)
	out := []clusterBroker{{id: b.nodeID, host: host, port: port}}
	for _, id := range slices.Sorted(maps.Keys(img.Brokers)) {
		if id == b.nodeID {
			continue
		}
		r := img.Brokers[id]
		h, p := r.Endpoint(listener)
		cb := clusterBroker{id: id, host: h, port: p}
		if r.Rack != "" {
			cb.rack = &r.Rack
		}
		out = append(out, cb)
	}
	slices.SortFunc(out, func(x, y clusterBroker) int { return cmp.Compare(x.id, y.id) })
	return out
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
