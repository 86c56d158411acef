package group

import (
	"bytes"
	"encoding/hex"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestOffsetRecordRoundTrip(t *testing.T) {
	for _, o := range []offset{
		{Offset: 42, LeaderEpoch: 7, Metadata: "meta", CommitTimestamp: 1700000000000, ExpireTimestamp: -1},
		{Offset: 0, LeaderEpoch: -1, Metadata: "", CommitTimestamp: 1, ExpireTimestamp: 5},
	} {
		r := offsetRecord("g", "topic", 3, &o)
		d, ok, err := decodeRecord(r.Key, r.Value)
		if err != nil || !ok || !d.isOffset {
			t.Fatalf("decode: %v %v %+v", ok, err, d)
		}
		want := o
		if o.ExpireTimestamp >= 0 {
			want.LeaderEpoch = -1 // v1 has no leader epoch, as in Kafka
		}
		if d.group != "g" || d.topic != "topic" || d.partition != 3 || *d.offset != want {
			t.Errorf("got %+v %+v, want %+v", d, *d.offset, want)
		}
	}
	d, ok, err := decodeRecord(offsetTombstone("g", "t", 1).Key, nil)
	if err != nil || !ok || !d.isOffset || d.offset != nil {
		t.Errorf("tombstone: %+v %v %v", d, ok, err)
	}
}

// TestRecordBytes pins the exact bytes of the records: these are
// Kafka's formats, read by Kafka's own tools (kafka-console-consumer
// --formatter GroupMetadataMessageFormatter / OffsetsMessageFormatter).
func TestRecordBytes(t *testing.T) {
	o := offset{Offset: 42, LeaderEpoch: 7, Metadata: "m", CommitTimestamp: 1000, ExpireTimestamp: -1}
	r := offsetRecord("g", "t", 3, &o)
	// key: version 1, group "g", topic "t", partition 3.
	if got, want := hex.EncodeToString(r.Key), "0001"+"000167"+"000174"+"00000003"; got != want {
		t.Errorf("offset key %s, want %s", got, want)
	}
	// value: version 3, offset, leader epoch, metadata, commit timestamp.
	if got, want := hex.EncodeToString(r.Value), "0003"+"000000000000002a"+"00000007"+"00016d"+"00000000000003e8"; got != want {
		t.Errorf("offset value %s, want %s", got, want)
	}
	if got, want := hex.EncodeToString(groupKey("g")), "0002"+"000167"; got != want {
		t.Errorf("group key %s, want %s", got, want)
	}
	// Kafka's older key version 0 is read too.
	k0 := kmsg.OffsetCommitKey{Version: 0, Group: "g", Topic: "t", Partition: 1}
	d, ok, err := decodeRecord(k0.AppendTo(nil), r.Value)
	if err != nil || !ok || d.partition != 1 || d.offset.Offset != 42 {
		t.Errorf("key v0: %+v %v %v", d, ok, err)
	}
	// Share and streams group records (key version 9+) are skipped.
	if _, ok, err := decodeRecord([]byte{0, 9, 0, 1, 'g'}, []byte{0}); ok || err != nil {
		t.Errorf("key v9: ok=%v err=%v", ok, err)
	}
	// KIP-848: ConsumerGroupMetadataKey (version 3, group) and value
	// (version 0, epoch 7, no tagged fields).
	r = cgMetadataRecord("g", 7)
	if got, want := hex.EncodeToString(r.Key)+"/"+hex.EncodeToString(r.Value), "0003"+"000167"+"/"+"0000"+"00000007"+"00"; got != want {
		t.Errorf("consumer group metadata record %s, want %s", got, want)
	}
}

func TestGroupRecordRoundTrip(t *testing.T) {
	v := kmsg.NewGroupMetadataValue()
	v.Version = groupValueVersion
	v.ProtocolType = "consumer"
	v.Generation = 5
	p, l := "range", "m-1"
	v.Protocol, v.Leader = &p, &l
	v.CurrentStateTimestamp = 12345
	m := kmsg.NewGroupMetadataValueMember()
	inst := "i"
	m.MemberID, m.InstanceID, m.ClientID, m.ClientHost = "m-1", &inst, "c", "/h"
	m.RebalanceTimeoutMillis, m.SessionTimeoutMillis = 60000, 45000
	m.Subscription, m.Assignment = []byte{1, 2}, []byte{3}
	v.Members = append(v.Members, m)
	r := groupRecord("g", &v)
	d, ok, err := decodeRecord(r.Key, r.Value)
	if err != nil || !ok || !d.isGroup || d.group != "g" {
		t.Fatalf("decode: %+v %v %v", d, ok, err)
	}
	if !bytes.Equal(d.meta.AppendTo(nil), r.Value) {
		t.Errorf("re-encoded value differs")
	}
	g := newGroup("g", &Config{MaxSize: 10}, nil, nil)
	g.loadMetadata(d.meta)
	if g.state != Stable || g.generation != 5 || g.leader != "m-1" || g.static["i"] != "m-1" {
		t.Errorf("loaded: state=%v gen=%d leader=%q static=%v", g.state, g.generation, g.leader, g.static)
	}
}

// FuzzDecodeRecord: arbitrary keys and values never panic, and a record
// that decodes re-encodes to a record that decodes the same way.
func FuzzDecodeRecord(f *testing.F) {
	o := offset{Offset: 1, LeaderEpoch: 2, Metadata: "x", CommitTimestamp: 3, ExpireTimestamp: -1}
	r := offsetRecord("g", "t", 0, &o)
	f.Add(r.Key, r.Value)
	v := kmsg.NewGroupMetadataValue()
	v.Version = groupValueVersion
	gr := groupRecord("g", &v)
	f.Add(gr.Key, gr.Value)
	f.Add([]byte{0, 2}, []byte{0, 4, 0})
	f.Fuzz(func(t *testing.T, key, value []byte) {
		d, ok, err := decodeRecord(key, value)
		if err != nil || !ok {
			return
		}
		ld := newLoader(discardLogger())
		ld.apply(0, key, value)
		ld.groups(scriptStart, &Config{MaxSize: 1})
		if d.isOffset && d.offset != nil {
			r := offsetRecord(d.group, d.topic, d.partition, d.offset)
			d2, ok, err := decodeRecord(r.Key, r.Value)
			if err != nil || !ok || d2.offset.Offset != d.offset.Offset || d2.offset.Metadata != d.offset.Metadata {
				t.Fatalf("re-encode: %+v vs %+v (%v)", d2, d, err)
			}
		}
	})
}
