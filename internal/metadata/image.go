package metadata

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Image is the cluster metadata at one offset of the metadata log. It is
// immutable: Apply returns a new Image sharing unchanged parts.
type Image struct {
	// Offset is the metadata log offset of the last applied batch; -1
	// for the empty image.
	Offset int64
	// ClusterID identifies the cluster; set by the first ClusterRecord.
	ClusterID string
	// Topics by name and by ID. Values are immutable.
	Topics   map[string]*Topic
	TopicIDs map[UUID]*Topic
	// BrokerConfigs holds dynamic broker config overrides by resource
	// name ("" = cluster default).
	BrokerConfigs map[string]map[string]string
	// NextProducerID is the first producer ID not yet allocated.
	NextProducerID int64
	// Brokers by ID.
	Brokers map[int32]*BrokerRecord
	// Scram holds SCRAM credentials by user, then mechanism. Values are
	// immutable.
	Scram map[string]map[string]*ScramRecord
	// Acls holds the ACL bindings by ID. Values are immutable.
	Acls map[UUID]*AclRecord
	// AclsChanged is the offset of the last batch that changed Acls:
	// an authorizer built from Acls is current while it is unchanged.
	AclsChanged int64
	// Quotas holds the client quotas by entity (QuotaKey). Values are
	// immutable.
	Quotas map[string]*ClientQuota
	// Fenced holds the brokers the controller fenced (FenceRecord); nil
	// when none is.
	Fenced map[int32]bool
}

// ClientQuota is one entity's client quotas. Immutable.
type ClientQuota struct {
	// Entity is sorted by type.
	Entity []QuotaEntityPart
	// Values by quota key (producer_byte_rate, ...).
	Values map[string]float64
}

// Topic is one topic in an Image. Immutable.
type Topic struct {
	Name       string
	ID         UUID
	Partitions []*Partition
	// Configs holds the topic's config overrides. Immutable.
	Configs map[string]string
}

// Partition is one partition in an Image. Immutable.
type Partition struct {
	Partition   int32
	Replicas    []int32
	ISR         []int32
	Leader      int32
	LeaderEpoch int32
	// PartitionEpoch counts every change to the partition.
	PartitionEpoch int32
	// Adding and Removing are a reassignment in progress (KIP-455):
	// the replicas joining and leaving, all of them in Replicas until
	// it completes, when Replicas loses Removing. Both empty otherwise.
	Adding   []int32 `json:",omitempty"`
	Removing []int32 `json:",omitempty"`
}

// Reassigning reports whether a reassignment of p is in progress.
func (p *Partition) Reassigning() bool { return len(p.Adding) > 0 || len(p.Removing) > 0 }

// Empty returns the image before any record.
func Empty() *Image {
	return &Image{
		Offset:        -1,
		Topics:        map[string]*Topic{},
		TopicIDs:      map[UUID]*Topic{},
		BrokerConfigs: map[string]map[string]string{},
		Brokers:       map[int32]*BrokerRecord{},
		Scram:         map[string]map[string]*ScramRecord{},
		Acls:          map[UUID]*AclRecord{},
		AclsChanged:   -1,
		Quotas:        map[string]*ClientQuota{},
	}
}

// Topic returns a topic by name.
// Partition returns partition i of t, or nil when t is nil or has no
// partition i.
func (t *Topic) Partition(i int32) *Partition {
	if t == nil || i < 0 || int(i) >= len(t.Partitions) {
		return nil
	}
	return t.Partitions[i]
}

func (img *Image) Topic(name string) (*Topic, bool) {
	t, ok := img.Topics[name]
	return t, ok
}

// TopicByID returns a topic by ID.
func (img *Image) TopicByID(id UUID) (*Topic, bool) {
	t, ok := img.TopicIDs[id]
	return t, ok
}

// PartitionCount returns how many partitions the topics have in all.
func (img *Image) PartitionCount() int {
	n := 0
	for _, t := range img.Topics {
		n += len(t.Partitions)
	}
	return n
}

// TopicNames returns every topic name, sorted.
func (img *Image) TopicNames() []string {
	names := make([]string, 0, len(img.Topics))
	for n := range img.Topics {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Apply applies a batch of records at offset to img and returns the new
// image. It is deterministic and never mutates img. A record that does
// not fit the image (a partition of an unknown topic, say) is an error:
// the writer validated the batch against the same image, so an error
// means the log is corrupt or was written by a buggy proposer.
func Apply(img *Image, offset int64, recs []Record) (*Image, error) {
	next := *img
	next.Offset = offset
	topicsCopied, configsCopied, brokersCopied, scramCopied, aclsCopied, quotasCopied := false, false, false, false, false, false
	copyTopics := func() {
		if !topicsCopied {
			next.Topics = maps.Clone(img.Topics)
			next.TopicIDs = maps.Clone(img.TopicIDs)
			topicsCopied = true
		}
	}
	// setTopic replaces a topic in both maps.
	setTopic := func(t *Topic) {
		copyTopics()
		next.Topics[t.Name] = t
		next.TopicIDs[t.ID] = t
	}
	// own returns t's copy private to next, made on a topic's first
	// change in this Apply; later records change that copy in place.
	// Copying the partitions at every record made a topic's creation
	// quadratic: 10,000 partitions copied the growing slice 10,000
	// times, 0.65 s of CPU at every start that replayed it and at the
	// CreateTopics that wrote it.
	// owned holds the IDs of the topics whose entry in next is such a
	// copy (or was created here).
	owned := map[UUID]bool{}
	own := func(t *Topic) *Topic {
		if owned[t.ID] {
			return t
		}
		nt := *t
		nt.Partitions = slices.Clone(t.Partitions)
		nt.Configs = maps.Clone(t.Configs)
		if nt.Configs == nil {
			nt.Configs = map[string]string{}
		}
		owned[nt.ID] = true
		setTopic(&nt)
		return &nt
	}
	for i, r := range recs {
		switch {
		case r.Topic != nil:
			if _, ok := next.Topics[r.Topic.Name]; ok {
				return nil, fmt.Errorf("metadata: record %d: topic %q exists", i, r.Topic.Name)
			}
			if _, ok := next.TopicIDs[r.Topic.ID]; ok {
				return nil, fmt.Errorf("metadata: record %d: topic id %s exists", i, r.Topic.ID)
			}
			setTopic(&Topic{Name: r.Topic.Name, ID: r.Topic.ID, Configs: map[string]string{}})
			owned[r.Topic.ID] = true

		case r.Partition != nil:
			p := r.Partition
			t, ok := next.TopicIDs[p.TopicID]
			if !ok {
				return nil, fmt.Errorf("metadata: record %d: partition of unknown topic %s", i, p.TopicID)
			}
			if int(p.Partition) != len(t.Partitions) {
				return nil, fmt.Errorf("metadata: record %d: partition %d of %q out of order", i, p.Partition, t.Name)
			}
			t = own(t)
			t.Partitions = append(t.Partitions, &Partition{
				Partition:   p.Partition,
				Replicas:    slices.Clone(p.Replicas),
				ISR:         slices.Clone(p.ISR),
				Leader:      p.Leader,
				LeaderEpoch: p.LeaderEpoch,
			})

		case r.PartitionChange != nil:
			c := r.PartitionChange
			t, ok := next.TopicIDs[c.TopicID]
			if !ok || c.Partition < 0 || int(c.Partition) >= len(t.Partitions) {
				return nil, fmt.Errorf("metadata: record %d: change of unknown partition %s/%d", i, c.TopicID, c.Partition)
			}
			np := *t.Partitions[c.Partition]
			np.PartitionEpoch++
			if c.Leader != nil && (*c.Leader != np.Leader || c.BumpEpoch) {
				np.Leader = *c.Leader
				np.LeaderEpoch++
			}
			if c.ISR != nil {
				np.ISR = slices.Clone(c.ISR)
			}
			if c.Replicas != nil {
				np.Replicas = slices.Clone(c.Replicas)
				np.Adding, np.Removing = slices.Clone(c.Adding), slices.Clone(c.Removing)
			}
			own(t).Partitions[c.Partition] = &np

		case r.RemoveTopic != nil:
			t, ok := next.TopicIDs[r.RemoveTopic.ID]
			if !ok {
				return nil, fmt.Errorf("metadata: record %d: remove of unknown topic %s", i, r.RemoveTopic.ID)
			}
			copyTopics()
			delete(next.Topics, t.Name)
			delete(next.TopicIDs, t.ID)
			delete(owned, t.ID)

		case r.Config != nil:
			c := r.Config
			switch c.ResourceType {
			case ResourceTopic:
				t, ok := next.Topics[c.ResourceName]
				if !ok {
					return nil, fmt.Errorf("metadata: record %d: config of unknown topic %q", i, c.ResourceName)
				}
				setValue(own(t).Configs, c.Name, c.Value)
			case ResourceBroker:
				if !configsCopied {
					next.BrokerConfigs = maps.Clone(img.BrokerConfigs)
					configsCopied = true
				}
				m := maps.Clone(next.BrokerConfigs[c.ResourceName])
				if m == nil {
					m = map[string]string{}
				}
				setValue(m, c.Name, c.Value)
				next.BrokerConfigs[c.ResourceName] = m
			default:
				return nil, fmt.Errorf("metadata: record %d: unknown resource type %d", i, c.ResourceType)
			}

		case r.ProducerIDs != nil:
			if r.ProducerIDs.NextProducerID <= next.NextProducerID {
				return nil, fmt.Errorf("metadata: record %d: producer ID block goes backwards", i)
			}
			next.NextProducerID = r.ProducerIDs.NextProducerID

		case r.Broker != nil:
			if !brokersCopied {
				next.Brokers = maps.Clone(img.Brokers)
				brokersCopied = true
			}
			b := *r.Broker
			next.Brokers[b.ID] = &b

		case r.Scram != nil:
			c := *r.Scram
			if c.User == "" || c.Mechanism == "" {
				return nil, fmt.Errorf("metadata: record %d: SCRAM credential without user or mechanism", i)
			}
			if !scramCopied {
				next.Scram = maps.Clone(img.Scram)
				if next.Scram == nil {
					next.Scram = map[string]map[string]*ScramRecord{}
				}
				scramCopied = true
			}
			m := maps.Clone(next.Scram[c.User])
			if m == nil {
				m = map[string]*ScramRecord{}
			}
			if c.StoredKey == nil {
				delete(m, c.Mechanism)
			} else {
				m[c.Mechanism] = &c
			}
			if len(m) == 0 {
				delete(next.Scram, c.User)
			} else {
				next.Scram[c.User] = m
			}

		case r.Acl != nil:
			a := *r.Acl
			if !aclsCopied {
				next.Acls = maps.Clone(img.Acls)
				if next.Acls == nil {
					next.Acls = map[UUID]*AclRecord{}
				}
				next.AclsChanged = offset
				aclsCopied = true
			}
			if a.Remove {
				if _, ok := next.Acls[a.ID]; !ok {
					return nil, fmt.Errorf("metadata: record %d: removing unknown ACL %s", i, a.ID)
				}
				delete(next.Acls, a.ID)
			} else {
				if _, ok := next.Acls[a.ID]; ok {
					return nil, fmt.Errorf("metadata: record %d: ACL %s exists", i, a.ID)
				}
				next.Acls[a.ID] = &a
			}

		case r.Quota != nil:
			q := r.Quota
			if len(q.Entity) == 0 || q.Key == "" {
				return nil, fmt.Errorf("metadata: record %d: client quota without entity or key", i)
			}
			if !quotasCopied {
				next.Quotas = maps.Clone(img.Quotas)
				if next.Quotas == nil {
					next.Quotas = map[string]*ClientQuota{}
				}
				quotasCopied = true
			}
			k := QuotaKey(q.Entity)
			cq := &ClientQuota{Values: map[string]float64{}}
			if cur := next.Quotas[k]; cur != nil {
				cq.Entity, cq.Values = cur.Entity, maps.Clone(cur.Values)
			} else {
				cq.Entity = slices.SortedFunc(slices.Values(q.Entity), func(a, b QuotaEntityPart) int { return strings.Compare(a.Type, b.Type) })
			}
			if q.Remove {
				delete(cq.Values, q.Key)
			} else {
				cq.Values[q.Key] = q.Value
			}
			if len(cq.Values) == 0 {
				delete(next.Quotas, k)
			} else {
				next.Quotas[k] = cq
			}

		case r.Fence != nil:
			if r.Fence.Fenced == next.Fenced[r.Fence.ID] {
				break
			}
			next.Fenced = maps.Clone(next.Fenced)
			if r.Fence.Fenced {
				if next.Fenced == nil {
					next.Fenced = map[int32]bool{}
				}
				next.Fenced[r.Fence.ID] = true
			} else {
				delete(next.Fenced, r.Fence.ID)
			}

		case r.Cluster != nil:
			if r.Cluster.ID == "" {
				return nil, fmt.Errorf("metadata: record %d: empty cluster ID", i)
			}
			if next.ClusterID == "" {
				next.ClusterID = r.Cluster.ID
			}

		default:
			return nil, fmt.Errorf("metadata: record %d: empty record", i)
		}
	}
	return &next, nil
}

func setValue(m map[string]string, k string, v *string) {
	if v == nil {
		delete(m, k)
	} else {
		m[k] = *v
	}
}
