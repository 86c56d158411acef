package group

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Record is one key/value record of __consumer_offsets. A nil Value is
// a tombstone.
type Record struct {
	Key, Value []byte
}

// Schema versions Gregor writes, as Kafka 3.x/4.x do.
const (
	offsetKeyVersion   = 1 // OffsetCommitKey; 0 is read too
	groupKeyVersion    = 2 // GroupMetadataKey
	offsetValueVersion = 3 // OffsetCommitValue with leader epoch
	// offsetValueExpireVersion carries the explicit expire timestamp of
	// a commit with a retention time (OffsetCommit v2-v4).
	offsetValueExpireVersion = 1
	groupValueVersion        = 3 // GroupMetadataValue with instance IDs
)

// offset is a committed offset.
type offset struct {
	Offset      int64
	LeaderEpoch int32
	Metadata    string
	// CommitTimestamp is in Unix milliseconds.
	CommitTimestamp int64
	// ExpireTimestamp is in Unix milliseconds, -1 for none: only
	// commits with an explicit retention time have one (KIP-211).
	ExpireTimestamp int64
	// order places the commit in log order, in memory only: the log
	// offset of its record when loaded, and a write sequence counting
	// on from the largest loaded one after. A transactional commit
	// completed by its marker replaces only an older offset, as
	// Kafka's olderThan.
	order uint64
}

func offsetKey(group, topic string, partition int32) []byte {
	k := kmsg.OffsetCommitKey{Version: offsetKeyVersion, Group: group, Topic: topic, Partition: partition}
	return k.AppendTo(nil)
}

func groupKey(group string) []byte {
	k := kmsg.GroupMetadataKey{Version: groupKeyVersion, Group: group}
	return k.AppendTo(nil)
}

func offsetRecord(group, topic string, partition int32, o *offset) Record {
	v := kmsg.NewOffsetCommitValue()
	v.Version = offsetValueVersion
	v.Offset = o.Offset
	v.LeaderEpoch = o.LeaderEpoch
	v.Metadata = o.Metadata
	v.CommitTimestamp = o.CommitTimestamp
	if o.ExpireTimestamp >= 0 {
		v.Version = offsetValueExpireVersion
		v.ExpireTimestamp = o.ExpireTimestamp
	}
	return Record{Key: offsetKey(group, topic, partition), Value: v.AppendTo(nil)}
}

func offsetTombstone(group, topic string, partition int32) Record {
	return Record{Key: offsetKey(group, topic, partition)}
}

func groupRecord(group string, v *kmsg.GroupMetadataValue) Record {
	return Record{Key: groupKey(group), Value: v.AppendTo(nil)}
}

func groupTombstone(group string) Record { return Record{Key: groupKey(group)} }

// errSchema reports a record that does not decode as its key version
// says; load skips it (and logs) rather than refusing to start.
var errSchema = errors.New("group: malformed __consumer_offsets record")

// decoded is one decoded record; exactly one of the key kinds is set.
type decoded struct {
	// Offset commit (key version 0 or 1).
	isOffset  bool
	group     string
	topic     string
	partition int32
	offset    *offset // nil: tombstone

	// Group metadata (key version 2).
	isGroup bool
	meta    *kmsg.GroupMetadataValue // nil: tombstone

	// KIP-848 consumer group records (key versions 3-8).
	isConsumer bool
	cg         cgDecoded
}

// decodeRecord decodes a record of __consumer_offsets. Keys of other
// versions (share and streams groups, …) give ok=false.
func decodeRecord(key, value []byte) (d decoded, ok bool, err error) {
	if len(key) < 2 {
		return d, false, fmt.Errorf("%w: key of %d bytes", errSchema, len(key))
	}
	switch version := int16(binary.BigEndian.Uint16(key)); version {
	case 0, 1:
		var k kmsg.OffsetCommitKey
		if err := k.ReadFrom(key); err != nil {
			return d, false, fmt.Errorf("%w: offset key: %v", errSchema, err)
		}
		d.isOffset, d.group, d.topic, d.partition = true, k.Group, k.Topic, k.Partition
		if value == nil {
			return d, true, nil
		}
		v := kmsg.NewOffsetCommitValue()
		if err := v.ReadFrom(value); err != nil {
			return d, false, fmt.Errorf("%w: offset value: %v", errSchema, err)
		}
		o := &offset{Offset: v.Offset, LeaderEpoch: -1, Metadata: v.Metadata, CommitTimestamp: v.CommitTimestamp, ExpireTimestamp: -1}
		if v.Version >= 3 {
			o.LeaderEpoch = v.LeaderEpoch
		}
		if v.Version == 1 {
			o.ExpireTimestamp = v.ExpireTimestamp
		}
		d.offset = o
		return d, true, nil
	case 2:
		var k kmsg.GroupMetadataKey
		if err := k.ReadFrom(key); err != nil {
			return d, false, fmt.Errorf("%w: group key: %v", errSchema, err)
		}
		d.isGroup, d.group = true, k.Group
		if value == nil {
			return d, true, nil
		}
		v := kmsg.NewGroupMetadataValue()
		if err := v.ReadFrom(value); err != nil {
			return d, false, fmt.Errorf("%w: group value: %v", errSchema, err)
		}
		d.meta = &v
		return d, true, nil
	case cgMetadataKey, cgPartitionMetadataKey, cgMemberMetadataKey, cgTargetMetadataKey, cgTargetMemberKey, cgCurrentMemberKey:
		group, cd, err := decodeConsumerRecord(version, key, value)
		if err != nil {
			return d, false, err
		}
		d.isConsumer, d.group, d.cg = true, group, cd
		return d, true, nil
	default:
		return d, false, nil
	}
}
