package group

import (
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kbin"
)

// KIP-848 consumer group records. kmsg (v1.15) has no types for them, so
// they are encoded here after Kafka's schemas in group-coordinator's
// common/message: the key is an int16 version (the record type) and
// the group ID [and member ID] as non-flexible strings; the value is an
// int16 version 0 and flexible fields (compact strings and arrays,
// tagged fields after each struct). Gregor writes no tagged fields and
// skips any it reads (Kafka 4.1's MetadataHash, a classic member's
// metadata).
//
//	key 3  ConsumerGroupMetadataKey          group  → Epoch
//	key 4  ConsumerGroupPartitionMetadataKey group  → Topics (ID, name, partition count)
//	key 5  ConsumerGroupMemberMetadataKey    group, member → InstanceId, RackId,
//	       ClientId, ClientHost, SubscribedTopicNames, SubscribedTopicRegex,
//	       RebalanceTimeoutMs, ServerAssignor
//	key 6  ConsumerGroupTargetAssignmentMetadataKey group → AssignmentEpoch
//	key 7  ConsumerGroupTargetAssignmentMemberKey group, member → TopicPartitions
//	key 8  ConsumerGroupCurrentMemberAssignmentKey group, member → MemberEpoch,
//	       PreviousMemberEpoch, State, AssignedPartitions, PartitionsPendingRevocation
const (
	cgMetadataKey          = 3
	cgPartitionMetadataKey = 4
	cgMemberMetadataKey    = 5
	cgTargetMetadataKey    = 6
	cgTargetMemberKey      = 7
	cgCurrentMemberKey     = 8
)

// TopicID is a topic's UUID (KIP-516).
type TopicID [16]byte

// assignment is a set of partitions by topic ID; each slice is sorted
// and without duplicates.
type assignment map[TopicID][]int32

func (a assignment) clone() assignment {
	out := make(assignment, len(a))
	for t, ps := range a {
		out[t] = slices.Clone(ps)
	}
	return out
}

func (a assignment) equal(b assignment) bool {
	if a.count() != b.count() {
		return false
	}
	for t, ps := range a {
		if len(ps) > 0 && !slices.Equal(ps, b[t]) {
			return false
		}
	}
	return true
}

func (a assignment) count() int {
	n := 0
	for _, ps := range a {
		n += len(ps)
	}
	return n
}

func (a assignment) has(t TopicID, p int32) bool {
	_, ok := slices.BinarySearch(a[t], p)
	return ok
}

// topics returns the topic IDs in byte order, for deterministic output.
func (a assignment) topics() []TopicID {
	ids := make([]TopicID, 0, len(a))
	for t, ps := range a {
		if len(ps) > 0 {
			ids = append(ids, t)
		}
	}
	slices.SortFunc(ids, func(x, y TopicID) int { return compareIDs(x, y) })
	return ids
}

func compareIDs(x, y TopicID) int {
	for i := range x {
		if x[i] != y[i] {
			return int(x[i]) - int(y[i])
		}
	}
	return 0
}

// add inserts a partition, keeping the slice sorted.
func (a assignment) add(t TopicID, p int32) {
	ps := a[t]
	i, ok := slices.BinarySearch(ps, p)
	if !ok {
		a[t] = slices.Insert(ps, i, p)
	}
}

// topicMeta is a subscribed topic as the group last saw it.
type topicMeta struct {
	ID         TopicID
	Name       string
	Partitions int32
}

// cgMember is the persisted part of a consumer group member
// (ConsumerGroupMemberMetadataValue and
// ConsumerGroupCurrentMemberAssignmentValue).
type cgMemberMeta struct {
	InstanceID       *string
	RackID           *string
	ClientID         string
	ClientHost       string
	Topics           []string
	Regex            *string
	RebalanceTimeout int32
	ServerAssignor   *string
}

type cgCurrent struct {
	Epoch, PrevEpoch int32
	State            int8
	Assigned         assignment
	Revoking         assignment
}

func cgKey(version int16, group string, member *string) []byte {
	b := kbin.AppendInt16(nil, version)
	b = kbin.AppendString(b, group)
	if member != nil {
		b = kbin.AppendString(b, *member)
	}
	return b
}

func cgValue() []byte { return kbin.AppendInt16(nil, 0) }

func appendTags(b []byte) []byte { return kbin.AppendUvarint(b, 0) }

func appendAssignment(b []byte, a assignment) []byte {
	ids := a.topics()
	b = kbin.AppendCompactArrayLen(b, len(ids))
	for _, t := range ids {
		b = kbin.AppendUuid(b, t)
		b = kbin.AppendCompactArrayLen(b, len(a[t]))
		for _, p := range a[t] {
			b = kbin.AppendInt32(b, p)
		}
		b = appendTags(b)
	}
	return b
}

func cgMetadataRecord(group string, epoch int32) Record {
	v := kbin.AppendInt32(cgValue(), epoch)
	return Record{Key: cgKey(cgMetadataKey, group, nil), Value: appendTags(v)}
}

func cgPartitionMetadataRecord(group string, topics []topicMeta) Record {
	v := kbin.AppendCompactArrayLen(cgValue(), len(topics))
	for _, t := range topics {
		v = kbin.AppendUuid(v, t.ID)
		v = kbin.AppendCompactString(v, t.Name)
		v = kbin.AppendInt32(v, t.Partitions)
		v = kbin.AppendCompactArrayLen(v, 0) // PartitionMetadata (racks): unused since 4.0
		v = appendTags(v)
	}
	return Record{Key: cgKey(cgPartitionMetadataKey, group, nil), Value: appendTags(v)}
}

func cgMemberMetadataRecord(group, member string, m *cgMemberMeta) Record {
	v := kbin.AppendCompactNullableString(cgValue(), m.InstanceID)
	v = kbin.AppendCompactNullableString(v, m.RackID)
	v = kbin.AppendCompactString(v, m.ClientID)
	v = kbin.AppendCompactString(v, m.ClientHost)
	v = kbin.AppendCompactArrayLen(v, len(m.Topics))
	for _, t := range m.Topics {
		v = kbin.AppendCompactString(v, t)
	}
	v = kbin.AppendCompactNullableString(v, m.Regex)
	v = kbin.AppendInt32(v, m.RebalanceTimeout)
	v = kbin.AppendCompactNullableString(v, m.ServerAssignor)
	return Record{Key: cgKey(cgMemberMetadataKey, group, &member), Value: appendTags(v)}
}

func cgTargetMetadataRecord(group string, epoch int32) Record {
	v := kbin.AppendInt32(cgValue(), epoch)
	return Record{Key: cgKey(cgTargetMetadataKey, group, nil), Value: appendTags(v)}
}

func cgTargetMemberRecord(group, member string, a assignment) Record {
	v := appendAssignment(cgValue(), a)
	return Record{Key: cgKey(cgTargetMemberKey, group, &member), Value: appendTags(v)}
}

func cgCurrentMemberRecord(group, member string, c *cgCurrent) Record {
	v := kbin.AppendInt32(cgValue(), c.Epoch)
	v = kbin.AppendInt32(v, c.PrevEpoch)
	v = kbin.AppendInt8(v, c.State)
	v = appendAssignment(v, c.Assigned)
	v = appendAssignment(v, c.Revoking)
	return Record{Key: cgKey(cgCurrentMemberKey, group, &member), Value: appendTags(v)}
}

func cgTombstone(version int16, group string, member *string) Record {
	return Record{Key: cgKey(version, group, member)}
}

// cgDecoded is a decoded consumer group record: its key version, group
// and member, and the value (nil for a tombstone), one of the pointer
// types below.
type cgDecoded struct {
	version int16
	member  string
	value   any // *int32 (epochs), []topicMeta, *cgMemberMeta, assignment, *cgCurrent
}

// skipTags skips a tagged-field section.
func skipTags(r *kbin.Reader) {
	n := r.Uvarint()
	for i := uint32(0); i < n && r.Ok(); i++ {
		r.Uvarint()
		size := r.Uvarint()
		r.Span(int(size))
	}
}

// compactLen reads a compact array length; a null or implausible one
// fails the reader (each element takes at least a byte).
func compactLen(r *kbin.Reader) int {
	n := r.CompactArrayLen()
	if n < 0 {
		r.Span(-1) // fails the reader
		return 0
	}
	return int(n)
}

func readAssignment(r *kbin.Reader) assignment {
	a := assignment{}
	n := compactLen(r)
	for i := 0; i < n && r.Ok(); i++ {
		t := TopicID(r.Uuid())
		np := compactLen(r)
		for j := 0; j < np && r.Ok(); j++ {
			a.add(t, r.Int32())
		}
		skipTags(r)
	}
	return a
}

// decodeConsumerRecord decodes a record of key version 3 to 8.
func decodeConsumerRecord(version int16, key, value []byte) (group string, d cgDecoded, err error) {
	kr := kbin.Reader{Src: key[2:]}
	group = kr.String()
	d.version = version
	if version == cgMemberMetadataKey || version == cgTargetMemberKey || version == cgCurrentMemberKey {
		d.member = kr.String()
	}
	if !kr.Ok() {
		return "", d, fmt.Errorf("%w: consumer group key version %d", errSchema, version)
	}
	if value == nil {
		return group, d, nil
	}
	r := kbin.Reader{Src: value}
	if v := r.Int16(); v != 0 && r.Ok() {
		return "", d, fmt.Errorf("%w: consumer group value version %d of key version %d", errSchema, v, version)
	}
	switch version {
	case cgMetadataKey, cgTargetMetadataKey:
		e := r.Int32()
		d.value = &e
	case cgPartitionMetadataKey:
		n := compactLen(&r)
		topics := []topicMeta{}
		for i := 0; i < n && r.Ok(); i++ {
			t := topicMeta{ID: TopicID(r.Uuid()), Name: r.CompactString(), Partitions: r.Int32()}
			np := compactLen(&r)
			for j := 0; j < np && r.Ok(); j++ {
				r.Int32()
				nr := compactLen(&r)
				for k := 0; k < nr && r.Ok(); k++ {
					r.CompactString()
				}
				skipTags(&r)
			}
			skipTags(&r)
			topics = append(topics, t)
		}
		d.value = topics
	case cgMemberMetadataKey:
		m := &cgMemberMeta{}
		m.InstanceID = r.CompactNullableString()
		m.RackID = r.CompactNullableString()
		m.ClientID = r.CompactString()
		m.ClientHost = r.CompactString()
		n := compactLen(&r)
		for i := 0; i < n && r.Ok(); i++ {
			m.Topics = append(m.Topics, r.CompactString())
		}
		m.Regex = r.CompactNullableString()
		m.RebalanceTimeout = r.Int32()
		m.ServerAssignor = r.CompactNullableString()
		d.value = m
	case cgTargetMemberKey:
		d.value = readAssignment(&r)
	case cgCurrentMemberKey:
		c := &cgCurrent{}
		c.Epoch = r.Int32()
		c.PrevEpoch = r.Int32()
		c.State = r.Int8()
		c.Assigned = readAssignment(&r)
		c.Revoking = readAssignment(&r)
		d.value = c
	}
	if !r.Ok() {
		return "", d, fmt.Errorf("%w: consumer group value of key version %d", errSchema, version)
	}
	return group, d, nil
}
