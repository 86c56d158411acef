package broker_test

import (
	"encoding/binary"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/ktest"
)

// Group API tests at the protocol level: exact versions and error codes,
// as old and new clients send them.

// send sends req at its version on a new connection and decodes the
// response.
func send[R kmsg.Response](t *testing.T, b *ktest.Broker, req kmsg.Request) R {
	t.Helper()
	c, err := net.DialTimeout("tcp", b.Addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	frame := kmsg.NewRequestFormatter(kmsg.FormatterClientID("api-test")).AppendRequest(nil, req, 1)
	if _, err := c.Write(frame); err != nil {
		t.Fatal(err)
	}
	var size [4]byte
	if _, err := io.ReadFull(c, size[:]); err != nil {
		t.Fatalf("%s v%d: reading response: %v", kmsg.NameForKey(req.Key()), req.GetVersion(), err)
	}
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(c, body); err != nil {
		t.Fatal(err)
	}
	body = body[4:]
	if req.IsFlexible() && req.Key() != 18 {
		body = body[1:]
	}
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	if err := resp.ReadFrom(body); err != nil {
		t.Fatalf("%s v%d: decoding response: %v", kmsg.NameForKey(req.Key()), req.GetVersion(), err)
	}
	return resp.(R)
}

func errCode(t *testing.T, what string, code int16, want *kerr.Error) {
	t.Helper()
	var wantCode int16
	if want != nil {
		wantCode = want.Code
	}
	if code != wantCode {
		t.Errorf("%s: error %v, want %v", what, kerr.ErrorForCode(code), want)
	}
}

// consumerMeta is a ConsumerProtocolSubscription of topics.
func consumerMeta(topics ...string) []byte {
	m := kmsg.NewConsumerMemberMetadata()
	m.Topics = topics
	return m.AppendTo(nil)
}

func joinReq(version int16, group, member string, instance *string, topics ...string) *kmsg.JoinGroupRequest {
	r := kmsg.NewPtrJoinGroupRequest()
	r.Version = version
	r.Group, r.MemberID, r.InstanceID = group, member, instance
	r.SessionTimeoutMillis, r.RebalanceTimeoutMillis = 10000, 10000
	r.ProtocolType = "consumer"
	r.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: consumerMeta(topics...)}}
	return r
}

// joinAlone makes a one-member group at the given JoinGroup version and
// returns the member ID and generation, after SyncGroup with an
// assignment.
func joinAlone(t *testing.T, b *ktest.Broker, version int16, group string, instance *string, assignment string, topics ...string) (string, int32) {
	t.Helper()
	jr := send[*kmsg.JoinGroupResponse](t, b, joinReq(version, group, "", instance, topics...))
	if jr.ErrorCode == kerr.MemberIDRequired.Code {
		if version < 4 || instance != nil {
			t.Fatalf("MEMBER_ID_REQUIRED at JoinGroup v%d (instance %v)", version, instance)
		}
		jr = send[*kmsg.JoinGroupResponse](t, b, joinReq(version, group, jr.MemberID, instance, topics...))
	} else if version >= 4 && instance == nil {
		t.Fatalf("JoinGroup v%d: a new member must get MEMBER_ID_REQUIRED first (KIP-394), got %v", version, kerr.ErrorForCode(jr.ErrorCode))
	}
	errCode(t, "join", jr.ErrorCode, nil)
	if jr.LeaderID != jr.MemberID || len(jr.Members) != 1 {
		t.Fatalf("join: leader %q member %q members %d", jr.LeaderID, jr.MemberID, len(jr.Members))
	}
	sr := kmsg.NewPtrSyncGroupRequest()
	sr.Version = min(version, 5)
	sr.Group, sr.MemberID, sr.InstanceID, sr.Generation = group, jr.MemberID, instance, jr.Generation
	sr.ProtocolType, sr.Protocol = jr.ProtocolType, jr.Protocol
	sr.GroupAssignment = []kmsg.SyncGroupRequestGroupAssignment{{MemberID: jr.MemberID, MemberAssignment: []byte(assignment)}}
	sresp := send[*kmsg.SyncGroupResponse](t, b, sr)
	errCode(t, "sync", sresp.ErrorCode, nil)
	if string(sresp.MemberAssignment) != assignment {
		t.Fatalf("sync assignment %q, want %q", sresp.MemberAssignment, assignment)
	}
	return jr.MemberID, jr.Generation
}

// waitGroupsLoaded waits until the coordinator has loaded every
// partition of __consumer_offsets after a restart: ListGroups answers
// COORDINATOR_LOAD_IN_PROGRESS until then (clients retry).
func waitGroupsLoaded(t *testing.T, b *ktest.Broker) {
	t.Helper()
	waitFor(t, 10*time.Second, "__consumer_offsets to load", func() bool {
		r := kmsg.NewPtrListGroupsRequest()
		r.Version = 4
		return send[*kmsg.ListGroupsResponse](t, b, r).ErrorCode == 0
	})
}

func heartbeat(t *testing.T, b *ktest.Broker, version int16, group, member string, gen int32) int16 {
	t.Helper()
	r := kmsg.NewPtrHeartbeatRequest()
	r.Version, r.Group, r.MemberID, r.Generation = version, group, member, gen
	return send[*kmsg.HeartbeatResponse](t, b, r).ErrorCode
}

func TestFindCoordinator(t *testing.T) {
	b := groupBroker(t)
	host, port, _ := net.SplitHostPort(b.Addr)
	check := func(what string, code int16, node int32, h string, p int32) {
		t.Helper()
		errCode(t, what, code, nil)
		if node != b.B.NodeID() || h != host || p == 0 || net.JoinHostPort(h, itoa(p)) != net.JoinHostPort(host, port) {
			t.Errorf("%s: coordinator %d %s:%d, want this broker %s", what, node, h, p, b.Addr)
		}
	}
	for v := int16(0); v <= 3; v++ {
		r := kmsg.NewPtrFindCoordinatorRequest()
		r.Version, r.CoordinatorKey = v, "some-group"
		resp := send[*kmsg.FindCoordinatorResponse](t, b, r)
		check("v"+itoa(int32(v)), resp.ErrorCode, resp.NodeID, resp.Host, resp.Port)
	}
	r := kmsg.NewPtrFindCoordinatorRequest()
	r.Version, r.CoordinatorKeys = 6, []string{"a", "b"}
	resp := send[*kmsg.FindCoordinatorResponse](t, b, r)
	if len(resp.Coordinators) != 2 || resp.Coordinators[0].Key != "a" || resp.Coordinators[1].Key != "b" {
		t.Fatalf("batched: %+v", resp.Coordinators)
	}
	for _, c := range resp.Coordinators {
		check("v6 "+c.Key, c.ErrorCode, c.NodeID, c.Host, c.Port)
	}
	// Transactional IDs are coordinated here too.
	r.CoordinatorType, r.CoordinatorKeys = 1, []string{"txn"}
	resp = send[*kmsg.FindCoordinatorResponse](t, b, r)
	check("transaction", resp.Coordinators[0].ErrorCode, resp.Coordinators[0].NodeID, resp.Coordinators[0].Host, resp.Coordinators[0].Port)
	// Share groups (KIP-932) are not served.
	r.CoordinatorType = 2
	resp = send[*kmsg.FindCoordinatorResponse](t, b, r)
	errCode(t, "share", resp.Coordinators[0].ErrorCode, kerr.InvalidRequest)

	// The lookup created __consumer_offsets: internal, compacted, 50
	// partitions.
	mr := kmsg.NewPtrMetadataRequest()
	mr.Version = 12
	mr.Topics = []kmsg.MetadataRequestTopic{{Topic: kmsg.StringPtr("__consumer_offsets")}}
	md := send[*kmsg.MetadataResponse](t, b, mr)
	if len(md.Topics) != 1 || md.Topics[0].ErrorCode != 0 || !md.Topics[0].IsInternal || len(md.Topics[0].Partitions) != 50 {
		t.Fatalf("__consumer_offsets: %+v", md.Topics)
	}
}

func itoa(n int32) string { return strconv.Itoa(int(n)) }

// TestOffsetFetchUnknownGroup: a group the broker never saw has offset
// -1 and no error, at every version (sarama and standalone consumers
// rely on it).
func TestOffsetFetchUnknownGroup(t *testing.T) {
	b := groupBroker(t)
	b.CreateTopic("t", 2, nil)
	for _, v := range []int16{1, 2, 5, 7} {
		r := kmsg.NewPtrOffsetFetchRequest()
		r.Version, r.Group = v, "never-seen"
		r.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: "t", Partitions: []int32{0, 1}}}
		resp := send[*kmsg.OffsetFetchResponse](t, b, r)
		errCode(t, "top-level", resp.ErrorCode, nil)
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 2 {
			t.Fatalf("v%d: %+v", v, resp.Topics)
		}
		for _, p := range resp.Topics[0].Partitions {
			if p.Offset != -1 || p.ErrorCode != 0 || p.Metadata == nil || *p.Metadata != "" {
				t.Errorf("v%d partition %d: offset %d error %d metadata %v", v, p.Partition, p.Offset, p.ErrorCode, p.Metadata)
			}
		}
	}
	r := kmsg.NewPtrOffsetFetchRequest()
	r.Version = 8
	r.Groups = []kmsg.OffsetFetchRequestGroup{
		{Group: "never-1", Topics: []kmsg.OffsetFetchRequestGroupTopic{{Topic: "t", Partitions: []int32{1}}}},
		{Group: "never-2"}, // null topics: all offsets, none
	}
	resp := send[*kmsg.OffsetFetchResponse](t, b, r)
	if len(resp.Groups) != 2 || resp.Groups[0].ErrorCode != 0 || resp.Groups[1].ErrorCode != 0 ||
		len(resp.Groups[0].Topics) != 1 || resp.Groups[0].Topics[0].Partitions[0].Offset != -1 || len(resp.Groups[1].Topics) != 0 {
		t.Fatalf("v8: %+v", resp.Groups)
	}
}

// TestOffsetCommitFetchVersions commits and fetches across versions:
// metadata strings round-trip as given, leader epochs from v6/v5,
// topic IDs at v10, several groups at v8, and the errors for unknown
// topics, oversized metadata and unknown groups.
func TestOffsetCommitFetchVersions(t *testing.T) {
	b := groupBroker(t)
	b.CreateTopic("t", 3, nil)
	md := send[*kmsg.MetadataResponse](t, b, &kmsg.MetadataRequest{Version: 12, Topics: []kmsg.MetadataRequestTopic{{Topic: kmsg.StringPtr("t")}}})
	topicID := md.Topics[0].TopicID

	commit := func(v int16, group string, gen int32, topic string, id [16]byte, p int32, off int64, meta *string) *kmsg.OffsetCommitResponse {
		t.Helper()
		r := kmsg.NewPtrOffsetCommitRequest()
		r.Version, r.Group, r.Generation, r.RetentionTimeMillis = v, group, gen, -1
		rt := kmsg.OffsetCommitRequestTopic{Topic: topic, TopicID: id}
		rt.Partitions = []kmsg.OffsetCommitRequestTopicPartition{{Partition: p, Offset: off, LeaderEpoch: 4, Metadata: meta}}
		r.Topics = []kmsg.OffsetCommitRequestTopic{rt}
		return send[*kmsg.OffsetCommitResponse](t, b, r)
	}
	unicode := "metadata with ünïcödé and spaces"
	errCode(t, "commit v2", commit(2, "g", -1, "t", [16]byte{}, 0, 10, kmsg.StringPtr("")).Topics[0].Partitions[0].ErrorCode, nil)
	errCode(t, "commit v7", commit(7, "g", -1, "t", [16]byte{}, 1, 20, kmsg.StringPtr(unicode)).Topics[0].Partitions[0].ErrorCode, nil)
	errCode(t, "commit v10", commit(10, "g", -1, "", topicID, 2, 30, nil).Topics[0].Partitions[0].ErrorCode, nil)
	errCode(t, "unknown topic", commit(8, "g", -1, "nope", [16]byte{}, 0, 1, nil).Topics[0].Partitions[0].ErrorCode, kerr.UnknownTopicOrPartition)
	errCode(t, "unknown partition", commit(8, "g", -1, "t", [16]byte{}, 9, 1, nil).Topics[0].Partitions[0].ErrorCode, kerr.UnknownTopicOrPartition)
	errCode(t, "unknown topic ID", commit(10, "g", -1, "", [16]byte{1}, 0, 1, nil).Topics[0].Partitions[0].ErrorCode, kerr.UnknownTopicID)
	big := strings.Repeat("m", 4097)
	errCode(t, "big metadata", commit(8, "g", -1, "t", [16]byte{}, 0, 1, &big).Topics[0].Partitions[0].ErrorCode, kerr.OffsetMetadataTooLarge)
	// With a generation, the group must exist.
	errCode(t, "v8 unknown group", commit(8, "nope", 3, "t", [16]byte{}, 0, 1, nil).Topics[0].Partitions[0].ErrorCode, kerr.IllegalGeneration)
	errCode(t, "v9 unknown group", commit(9, "nope", 3, "t", [16]byte{}, 0, 1, nil).Topics[0].Partitions[0].ErrorCode, kerr.GroupIDNotFound)

	want := map[int32]struct {
		off  int64
		meta string
	}{0: {10, ""}, 1: {20, unicode}, 2: {30, ""}}
	for _, v := range []int16{1, 5, 7} {
		r := kmsg.NewPtrOffsetFetchRequest()
		r.Version, r.Group = v, "g"
		r.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: "t", Partitions: []int32{0, 1, 2}}}
		resp := send[*kmsg.OffsetFetchResponse](t, b, r)
		for _, p := range resp.Topics[0].Partitions {
			w := want[p.Partition]
			if p.Offset != w.off || *p.Metadata != w.meta || p.ErrorCode != 0 {
				t.Errorf("fetch v%d partition %d: %d %q %d, want %d %q", v, p.Partition, p.Offset, *p.Metadata, p.ErrorCode, w.off, w.meta)
			}
			// v2 has no leader epoch (-1); v6+ commits carry 4.
			if wantEpoch := map[int32]int32{0: -1, 1: 4, 2: 4}[p.Partition]; v >= 5 && p.LeaderEpoch != wantEpoch {
				t.Errorf("fetch v%d partition %d: leader epoch %d, want %d", v, p.Partition, p.LeaderEpoch, wantEpoch)
			}
		}
	}
	// v8: several groups; null topics fetch all of a group's offsets.
	r := kmsg.NewPtrOffsetFetchRequest()
	r.Version = 8
	r.Groups = []kmsg.OffsetFetchRequestGroup{{Group: "g"}, {Group: "other"}}
	resp := send[*kmsg.OffsetFetchResponse](t, b, r)
	if len(resp.Groups) != 2 || len(resp.Groups[0].Topics) != 1 || len(resp.Groups[0].Topics[0].Partitions) != 3 || len(resp.Groups[1].Topics) != 0 {
		t.Fatalf("v8 all: %+v", resp.Groups)
	}
	// v10: by topic ID, and UNKNOWN_TOPIC_ID for an unknown one.
	r.Version = 10
	r.Groups = []kmsg.OffsetFetchRequestGroup{{Group: "g", Topics: []kmsg.OffsetFetchRequestGroupTopic{
		{TopicID: topicID, Partitions: []int32{1}}, {TopicID: [16]byte{9}, Partitions: []int32{0}},
	}}}
	resp = send[*kmsg.OffsetFetchResponse](t, b, r)
	ts := resp.Groups[0].Topics
	if len(ts) != 2 || ts[0].TopicID != topicID || ts[0].Partitions[0].Offset != 20 || *ts[0].Partitions[0].Metadata != unicode {
		t.Fatalf("v10: %+v", ts)
	}
	errCode(t, "v10 unknown topic ID", ts[1].Partitions[0].ErrorCode, kerr.UnknownTopicID)

	// Committed offsets and their metadata survive a restart.
	b.Restart()
	waitGroupsLoaded(t, b)
	r.Version = 8
	r.Groups = []kmsg.OffsetFetchRequestGroup{{Group: "g"}}
	resp = send[*kmsg.OffsetFetchResponse](t, b, r)
	for _, p := range resp.Groups[0].Topics[0].Partitions {
		if w := want[p.Partition]; p.Offset != w.off || *p.Metadata != w.meta {
			t.Errorf("after restart, partition %d: %d %q", p.Partition, p.Offset, *p.Metadata)
		}
	}
}

// TestGroupOldClientVersions runs a member through the group protocol
// at the oldest versions (JoinGroup v0: no member-id round, the session
// timeout is the rebalance timeout) and the newest.
func TestGroupOldClientVersions(t *testing.T) {
	b := groupBroker(t)
	b.CreateTopic("t", 1, nil)
	for _, v := range []int16{0, 3, 4, 9} {
		group := "old-" + itoa(int32(v))
		member, gen := joinAlone(t, b, v, group, nil, "assignment", "t")
		errCode(t, "heartbeat", heartbeat(t, b, min(v, 4), group, member, gen), nil)
		errCode(t, "heartbeat old generation", heartbeat(t, b, min(v, 4), group, member, gen-1), kerr.IllegalGeneration)
		errCode(t, "heartbeat unknown member", heartbeat(t, b, min(v, 4), group, "nobody", gen), kerr.UnknownMemberID)
		lr := kmsg.NewPtrLeaveGroupRequest()
		lr.Version, lr.Group = min(v, 5), group
		if lr.Version < 3 {
			lr.MemberID = member
		} else {
			lr.Members = []kmsg.LeaveGroupRequestMember{{MemberID: member}}
		}
		lresp := send[*kmsg.LeaveGroupResponse](t, b, lr)
		errCode(t, "leave", lresp.ErrorCode, nil)
		if lr.Version >= 3 && (len(lresp.Members) != 1 || lresp.Members[0].ErrorCode != 0) {
			t.Errorf("leave v%d: %+v", lr.Version, lresp.Members)
		}
		lresp = send[*kmsg.LeaveGroupResponse](t, b, lr)
		if lr.Version < 3 {
			errCode(t, "second leave", lresp.ErrorCode, kerr.UnknownMemberID)
		} else {
			errCode(t, "second leave", lresp.Members[0].ErrorCode, kerr.UnknownMemberID)
		}
	}
}

func TestGroupRequestErrors(t *testing.T) {
	b := groupBroker(t)
	jr := send[*kmsg.JoinGroupResponse](t, b, joinReq(9, "", "", nil, "t"))
	errCode(t, "empty group ID", jr.ErrorCode, kerr.InvalidGroupID)
	r := joinReq(9, "g", "", nil, "t")
	r.SessionTimeoutMillis = 10
	errCode(t, "session timeout", send[*kmsg.JoinGroupResponse](t, b, r).ErrorCode, kerr.InvalidSessionTimeout)
	r = joinReq(9, "g", "", nil, "t")
	r.ProtocolType = ""
	errCode(t, "no protocol type", send[*kmsg.JoinGroupResponse](t, b, r).ErrorCode, kerr.InconsistentGroupProtocol)
	errCode(t, "known member of unknown group", send[*kmsg.JoinGroupResponse](t, b, joinReq(9, "nope", "m", nil)).ErrorCode, kerr.UnknownMemberID)
	errCode(t, "heartbeat unknown group", heartbeat(t, b, 4, "nope", "m", 1), kerr.UnknownMemberID)
	sr := kmsg.NewPtrSyncGroupRequest()
	sr.Version, sr.Group, sr.MemberID, sr.Generation = 5, "nope", "m", 1
	sr.ProtocolType, sr.Protocol = kmsg.StringPtr("consumer"), kmsg.StringPtr("range")
	errCode(t, "sync unknown group", send[*kmsg.SyncGroupResponse](t, b, sr).ErrorCode, kerr.UnknownMemberID)

	// Static members: a restarted instance fences the old member ID;
	// SyncGroup v5 checks the protocol name.
	inst := kmsg.StringPtr("instance-1")
	member, gen := joinAlone(t, b, 9, "static", inst, "A", "t")
	jr = send[*kmsg.JoinGroupResponse](t, b, joinReq(9, "static", "", inst, "t"))
	errCode(t, "static rejoin", jr.ErrorCode, nil)
	if jr.Generation != gen || jr.MemberID == member || !jr.SkipAssignment || jr.LeaderID != jr.MemberID {
		t.Errorf("static leader rejoin: gen %d (was %d), member %q (was %q), skip %v, leader %q", jr.Generation, gen, jr.MemberID, member, jr.SkipAssignment, jr.LeaderID)
	}
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Version, hb.Group, hb.MemberID, hb.InstanceID, hb.Generation = 4, "static", member, inst, gen
	errCode(t, "fenced heartbeat", send[*kmsg.HeartbeatResponse](t, b, hb).ErrorCode, kerr.FencedInstanceID)
	sr = kmsg.NewPtrSyncGroupRequest()
	sr.Version, sr.Group, sr.MemberID, sr.InstanceID, sr.Generation = 5, "static", jr.MemberID, inst, gen
	sr.ProtocolType, sr.Protocol = kmsg.StringPtr("consumer"), kmsg.StringPtr("roundrobin")
	errCode(t, "sync protocol name", send[*kmsg.SyncGroupResponse](t, b, sr).ErrorCode, kerr.InconsistentGroupProtocol)
	sr.Protocol = kmsg.StringPtr("range")
	sresp := send[*kmsg.SyncGroupResponse](t, b, sr)
	if sresp.ErrorCode != 0 || string(sresp.MemberAssignment) != "A" || *sresp.Protocol != "range" {
		t.Errorf("static member's sync: %v %q", kerr.ErrorForCode(sresp.ErrorCode), sresp.MemberAssignment)
	}
	// An admin removes the static member by instance ID (v3+).
	lr := kmsg.NewPtrLeaveGroupRequest()
	lr.Version, lr.Group = 5, "static"
	lr.Members = []kmsg.LeaveGroupRequestMember{{InstanceID: inst}, {InstanceID: kmsg.StringPtr("other")}}
	lresp := send[*kmsg.LeaveGroupResponse](t, b, lr)
	errCode(t, "leave by instance", lresp.Members[0].ErrorCode, nil)
	errCode(t, "leave unknown instance", lresp.Members[1].ErrorCode, kerr.UnknownMemberID)

	// group.max.size.
	b2 := groupBroker(t, ktest.Set("group.max.size", "1"))
	joinAlone(t, b2, 9, "small", nil, "x")
	errCode(t, "group.max.size", send[*kmsg.JoinGroupResponse](t, b2, joinReq(9, "small", "", nil)).ErrorCode, kerr.GroupMaxSizeReached)
}

// TestSyncGroupV5RequiresProtocol: from SyncGroup v5 the protocol type
// and name are mandatory (KIP-559); Kafka refuses a request without
// them before looking at the group.
func TestSyncGroupV5RequiresProtocol(t *testing.T) {
	b := groupBroker(t)
	member, gen := joinAlone(t, b, 9, "g", nil, "A", "t")
	sync := func(v int16, protocolType, protocol *string) int16 {
		t.Helper()
		sr := kmsg.NewPtrSyncGroupRequest()
		sr.Version, sr.Group, sr.MemberID, sr.Generation = v, "g", member, gen
		sr.ProtocolType, sr.Protocol = protocolType, protocol
		return send[*kmsg.SyncGroupResponse](t, b, sr).ErrorCode
	}
	consumer, rng := kmsg.StringPtr("consumer"), kmsg.StringPtr("range")
	errCode(t, "v5 without protocol type", sync(5, nil, rng), kerr.InconsistentGroupProtocol)
	errCode(t, "v5 without protocol name", sync(5, consumer, nil), kerr.InconsistentGroupProtocol)
	errCode(t, "v5 without either", sync(5, nil, nil), kerr.InconsistentGroupProtocol)
	errCode(t, "v5 with both", sync(5, consumer, rng), nil)
	errCode(t, "v4 has neither", sync(4, nil, nil), nil)
}

// TestDescribeListDeleteGroups covers the admin APIs.
func TestDescribeListDeleteGroups(t *testing.T) {
	b := groupBroker(t)
	b.CreateTopic("t", 2, nil)
	b.CreateTopic("u", 1, nil)
	// "active" is a Stable consumer group subscribed to t; "simple"
	// only has offsets.
	member, gen := joinAlone(t, b, 9, "active", nil, "assigned", "t")
	commit := kmsg.NewPtrOffsetCommitRequest()
	commit.Version, commit.Group, commit.Generation, commit.MemberID = 9, "active", gen, member
	commit.Topics = []kmsg.OffsetCommitRequestTopic{
		{Topic: "t", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 5}}},
		{Topic: "u", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 6}}},
	}
	for _, rt := range send[*kmsg.OffsetCommitResponse](t, b, commit).Topics {
		errCode(t, "commit "+rt.Topic, rt.Partitions[0].ErrorCode, nil)
	}
	commit.Group, commit.Generation, commit.MemberID = "simple", -1, ""
	for _, rt := range send[*kmsg.OffsetCommitResponse](t, b, commit).Topics {
		errCode(t, "simple commit "+rt.Topic, rt.Partitions[0].ErrorCode, nil)
	}

	dr := kmsg.NewPtrDescribeGroupsRequest()
	dr.Version, dr.Groups, dr.IncludeAuthorizedOperations = 5, []string{"active", "simple", "unknown"}, true
	dresp := send[*kmsg.DescribeGroupsResponse](t, b, dr)
	a, s, u := dresp.Groups[0], dresp.Groups[1], dresp.Groups[2]
	if a.State != "Stable" || a.ProtocolType != "consumer" || a.Protocol != "range" || len(a.Members) != 1 ||
		string(a.Members[0].MemberAssignment) != "assigned" || a.Members[0].ClientID != "api-test" || !strings.HasPrefix(a.Members[0].ClientHost, "/127.0.0.1") {
		t.Errorf("describe active: %+v", a)
	}
	if a.AuthorizedOperations <= 0 {
		t.Errorf("authorized operations %d", a.AuthorizedOperations)
	}
	if s.State != "Empty" || s.ErrorCode != 0 || len(s.Members) != 0 {
		t.Errorf("describe simple: %+v", s)
	}
	if u.State != "Dead" || u.ErrorCode != 0 {
		t.Errorf("describe unknown v5: %+v", u)
	}
	dr.Version = 6
	errCode(t, "describe unknown v6", send[*kmsg.DescribeGroupsResponse](t, b, dr).Groups[2].ErrorCode, kerr.GroupIDNotFound)

	list := func(v int16, states, types []string) map[string]string {
		t.Helper()
		r := kmsg.NewPtrListGroupsRequest()
		r.Version, r.StatesFilter, r.TypesFilter = v, states, types
		resp := send[*kmsg.ListGroupsResponse](t, b, r)
		errCode(t, "list", resp.ErrorCode, nil)
		out := map[string]string{}
		for _, g := range resp.Groups {
			out[g.Group] = g.GroupState + "/" + g.ProtocolType + "/" + g.GroupType
		}
		return out
	}
	if got := list(0, nil, nil); len(got) != 2 {
		t.Errorf("list v0: %v", got)
	}
	if got := list(4, []string{"stable"}, nil); len(got) != 1 || got["active"] != "Stable/consumer/" {
		t.Errorf("list v4 stable: %v", got)
	}
	if got := list(5, []string{"EMPTY"}, []string{"Classic"}); len(got) != 1 || got["simple"] != "Empty//classic" {
		t.Errorf("list v5 empty classic: %v", got)
	}
	if got := list(5, nil, []string{"consumer"}); len(got) != 0 {
		t.Errorf("list v5 consumer (KIP-848) groups: %v", got)
	}

	// OffsetDelete: the stable group keeps offsets of t (subscribed);
	// u's may go.
	od := kmsg.NewPtrOffsetDeleteRequest()
	od.Group = "active"
	od.Topics = []kmsg.OffsetDeleteRequestTopic{
		{Topic: "t", Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}},
		{Topic: "u", Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}},
		{Topic: "nope", Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}},
	}
	odr := send[*kmsg.OffsetDeleteResponse](t, b, od)
	errCode(t, "offset delete", odr.ErrorCode, nil)
	errCode(t, "offset delete subscribed", odr.Topics[0].Partitions[0].ErrorCode, kerr.GroupSubscribedToTopic)
	errCode(t, "offset delete unsubscribed", odr.Topics[1].Partitions[0].ErrorCode, nil)
	errCode(t, "offset delete unknown topic", odr.Topics[2].Partitions[0].ErrorCode, kerr.UnknownTopicOrPartition)
	od.Group = "unknown"
	errCode(t, "offset delete unknown group", send[*kmsg.OffsetDeleteResponse](t, b, od).ErrorCode, kerr.GroupIDNotFound)
	fetch := func(group string) map[string]int64 {
		r := kmsg.NewPtrOffsetFetchRequest()
		r.Version = 8
		r.Groups = []kmsg.OffsetFetchRequestGroup{{Group: group}}
		out := map[string]int64{}
		resp := send[*kmsg.OffsetFetchResponse](t, b, r)
		errCode(t, "fetch "+group, resp.Groups[0].ErrorCode, nil)
		for _, rt := range resp.Groups[0].Topics {
			for _, p := range rt.Partitions {
				out[rt.Topic+"/"+itoa(p.Partition)] = p.Offset
			}
		}
		return out
	}
	if got := fetch("active"); len(got) != 1 || got["t/0"] != 5 {
		t.Errorf("active offsets after OffsetDelete: %v", got)
	}

	// DeleteGroups: only empty groups.
	del := kmsg.NewPtrDeleteGroupsRequest()
	del.Version, del.Groups = 3, []string{"active", "simple", "unknown"}
	delr := send[*kmsg.DeleteGroupsResponse](t, b, del)
	errCode(t, "delete active", delr.Groups[0].ErrorCode, kerr.NonEmptyGroup)
	errCode(t, "delete simple", delr.Groups[1].ErrorCode, nil)
	errCode(t, "delete unknown", delr.Groups[2].ErrorCode, kerr.GroupIDNotFound)
	if got := fetch("simple"); len(got) != 0 {
		t.Errorf("deleted group's offsets: %v", got)
	}
	// Deleted stays deleted across a restart; the other group is back.
	b.Restart()
	waitGroupsLoaded(t, b)
	if got := fetch("simple"); len(got) != 0 {
		t.Errorf("deleted group's offsets after restart: %v", got)
	}
	if got := list(4, nil, nil); len(got) != 1 || got["active"] != "Stable/consumer/" {
		t.Errorf("groups after restart: %v", got)
	}
}

// TestDescribeGroupsAuthorizedOperations: Kafka fills in the authorized
// operations only for groups described without an error; a v6 unknown
// group (GROUP_ID_NOT_FOUND) keeps the "omitted" value.
func TestDescribeGroupsAuthorizedOperations(t *testing.T) {
	b := groupBroker(t)
	joinAlone(t, b, 9, "active", nil, "A", "t")
	const omitted = -2147483648
	const groupOps = 1<<3 | 1<<6 | 1<<8 // READ, DELETE, DESCRIBE
	for _, v := range []int16{3, 5, 6} {
		dr := kmsg.NewPtrDescribeGroupsRequest()
		dr.Version, dr.Groups, dr.IncludeAuthorizedOperations = v, []string{"active", "unknown"}, true
		resp := send[*kmsg.DescribeGroupsResponse](t, b, dr)
		a, u := resp.Groups[0], resp.Groups[1]
		if a.ErrorCode != 0 || a.AuthorizedOperations != groupOps {
			t.Errorf("v%d active: error %d, operations %d", v, a.ErrorCode, a.AuthorizedOperations)
		}
		want := int32(groupOps)
		if v >= 6 {
			want = omitted
		}
		if u.AuthorizedOperations != want {
			t.Errorf("v%d unknown group (error %d): operations %d, want %d", v, u.ErrorCode, u.AuthorizedOperations, want)
		}
		dr.IncludeAuthorizedOperations = false
		if ops := send[*kmsg.DescribeGroupsResponse](t, b, dr).Groups[0].AuthorizedOperations; ops != omitted {
			t.Errorf("v%d without include_authorized_operations: %d", v, ops)
		}
	}
}

// TestDeleteGroupsRepeatedGroup: Kafka deletes each distinct group of a
// DeleteGroups once and answers it once; a group named twice is not
// also reported as not found.
func TestDeleteGroupsRepeatedGroup(t *testing.T) {
	b := groupBroker(t)
	b.CreateTopic("t", 1, nil)
	commit := kmsg.NewPtrOffsetCommitRequest()
	commit.Version, commit.Group, commit.Generation = 9, "simple", -1
	commit.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 5}}}}
	errCode(t, "commit", send[*kmsg.OffsetCommitResponse](t, b, commit).Topics[0].Partitions[0].ErrorCode, nil)

	del := kmsg.NewPtrDeleteGroupsRequest()
	del.Version, del.Groups = 3, []string{"simple", "unknown", "simple", "unknown"}
	resp := send[*kmsg.DeleteGroupsResponse](t, b, del)
	got := map[string][]int16{}
	for _, g := range resp.Groups {
		got[g.Group] = append(got[g.Group], g.ErrorCode)
	}
	if len(resp.Groups) != 2 || len(got["simple"]) != 1 || len(got["unknown"]) != 1 {
		t.Fatalf("results %v, want one per distinct group", got)
	}
	errCode(t, "delete simple", got["simple"][0], nil)
	errCode(t, "delete unknown", got["unknown"][0], kerr.GroupIDNotFound)
}

// TestGroupSurvivesRestart: after a broker restart the group is loaded
// from __consumer_offsets: the member keeps its ID, generation and
// assignment, and carries on heartbeating without a rebalance.
func TestGroupSurvivesRestart(t *testing.T) {
	b := groupBroker(t)
	b.CreateTopic("t", 1, nil)
	member, gen := joinAlone(t, b, 9, "g", nil, "my-partitions", "t")
	b.Restart()
	// While loading, a heartbeat is answered blindly (as Kafka does).
	errCode(t, "heartbeat while loading or loaded", heartbeat(t, b, 4, "g", member, gen), nil)
	waitGroupsLoaded(t, b)
	r := kmsg.NewPtrDescribeGroupsRequest()
	r.Version, r.Groups = 5, []string{"g"}
	if d := send[*kmsg.DescribeGroupsResponse](t, b, r).Groups[0]; d.State != "Stable" || len(d.Members) != 1 || d.Members[0].MemberID != member {
		t.Fatalf("after restart: %+v", d)
	}
	errCode(t, "heartbeat after restart", heartbeat(t, b, 4, "g", member, gen), nil)
	sr := kmsg.NewPtrSyncGroupRequest()
	sr.Version, sr.Group, sr.MemberID, sr.Generation = 5, "g", member, gen
	sr.ProtocolType, sr.Protocol = kmsg.StringPtr("consumer"), kmsg.StringPtr("range")
	sresp := send[*kmsg.SyncGroupResponse](t, b, sr)
	if sresp.ErrorCode != 0 || string(sresp.MemberAssignment) != "my-partitions" {
		t.Errorf("sync after restart: %v %q", kerr.ErrorForCode(sresp.ErrorCode), sresp.MemberAssignment)
	}
}

// TestJoinGroupConcurrentMembers: many members join at once; every one
// gets the same generation and exactly one leader (a bug seen in other
// Kafka-compatible brokers answered UNKNOWN_MEMBER_ID to the second
// member of concurrent joins).
func TestJoinGroupConcurrentMembers(t *testing.T) {
	b := groupBroker(t, ktest.Set("group.initial.rebalance.delay.ms", "1000"))
	const n = 8
	var wg sync.WaitGroup
	results := make([]*kmsg.JoinGroupResponse, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			jr := send[*kmsg.JoinGroupResponse](t, b, joinReq(9, "concurrent", "", nil, "t"))
			if jr.ErrorCode != kerr.MemberIDRequired.Code {
				t.Errorf("member %d: %v", i, kerr.ErrorForCode(jr.ErrorCode))
				return
			}
			results[i] = send[*kmsg.JoinGroupResponse](t, b, joinReq(9, "concurrent", jr.MemberID, nil, "t"))
		}()
	}
	wg.Wait()
	leaders := map[string]bool{}
	gens := map[int32]bool{}
	for i, r := range results {
		if r == nil {
			continue
		}
		errCode(t, "join "+itoa(int32(i)), r.ErrorCode, nil)
		leaders[r.LeaderID] = true
		gens[r.Generation] = true
		if r.LeaderID == r.MemberID && len(r.Members) != n {
			t.Errorf("leader got %d members, want %d", len(r.Members), n)
		}
	}
	if len(leaders) != 1 || len(gens) != 1 {
		t.Errorf("leaders %v generations %v", leaders, gens)
	}
}

// TestDeletedTopicOffsets: deleting a topic drops the groups' offsets
// of it, so a re-created topic of the same name starts fresh.
func TestDeletedTopicOffsets(t *testing.T) {
	b := groupBroker(t)
	b.CreateTopic("gone", 1, nil)
	b.CreateTopic("kept", 1, nil)
	commit := kmsg.NewPtrOffsetCommitRequest()
	commit.Version, commit.Group, commit.Generation = 8, "g", -1
	commit.Topics = []kmsg.OffsetCommitRequestTopic{
		{Topic: "gone", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 5}}},
		{Topic: "kept", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 6}}},
	}
	for _, rt := range send[*kmsg.OffsetCommitResponse](t, b, commit).Topics {
		errCode(t, "commit "+rt.Topic, rt.Partitions[0].ErrorCode, nil)
	}
	dt := kmsg.NewPtrDeleteTopicsRequest()
	dt.Version, dt.TopicNames, dt.TimeoutMillis = 5, []string{"gone"}, 5000
	errCode(t, "delete topic", send[*kmsg.DeleteTopicsResponse](t, b, dt).Topics[0].ErrorCode, nil)
	b.CreateTopic("gone", 1, nil)
	offsets := func() map[string]int64 {
		r := kmsg.NewPtrOffsetFetchRequest()
		r.Version = 8
		r.Groups = []kmsg.OffsetFetchRequestGroup{{Group: "g"}}
		out := map[string]int64{}
		for _, rt := range send[*kmsg.OffsetFetchResponse](t, b, r).Groups[0].Topics {
			out[rt.Topic] = rt.Partitions[0].Offset
		}
		return out
	}
	waitFor(t, 5*time.Second, "the deleted topic's offsets to go", func() bool {
		o := offsets()
		return len(o) == 1 && o["kept"] == 6
	})
	b.Restart()
	waitGroupsLoaded(t, b)
	if o := offsets(); len(o) != 1 || o["kept"] != 6 {
		t.Errorf("after restart: %v", o)
	}
}
