package group

import (
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// State is a group's state, named as Kafka names it (DescribeGroups and
// ListGroups report these strings).
type State int8

// Kafka's classic group states.
const (
	// Empty: no members; the group may still have committed offsets.
	Empty State = iota
	// PreparingRebalance: members are (re)joining.
	PreparingRebalance
	// CompletingRebalance: joined; waiting for the leader's assignment.
	CompletingRebalance
	// Stable: the assignment is distributed; members heartbeat.
	Stable
	// Dead: the group was deleted or expired, or moved away.
	Dead
)

var stateNames = [...]string{"Empty", "PreparingRebalance", "CompletingRebalance", "Stable", "Dead", "Assigning", "Reconciling"}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "Unknown"
}

// ConsumerProtocolType is the protocol type of Kafka consumers, whose
// member metadata is a ConsumerProtocolSubscription.
const ConsumerProtocolType = "consumer"

// Config holds the broker settings of the coordinator, by their Kafka
// property names.
type Config struct {
	// InitialRebalanceDelay is group.initial.rebalance.delay.ms.
	InitialRebalanceDelay time.Duration
	// MinSessionTimeout and MaxSessionTimeout are
	// group.min.session.timeout.ms and group.max.session.timeout.ms.
	MinSessionTimeout, MaxSessionTimeout time.Duration
	// MaxSize is group.max.size.
	MaxSize int
	// OffsetsRetention is offsets.retention.minutes.
	OffsetsRetention time.Duration
	// OffsetsRetentionCheckInterval is
	// offsets.retention.check.interval.ms.
	OffsetsRetentionCheckInterval time.Duration
	// OffsetMetadataMaxBytes is offset.metadata.max.bytes.
	OffsetMetadataMaxBytes int
	// ConsumerHeartbeatInterval, ConsumerSessionTimeout and
	// ConsumerMaxSize are group.consumer.heartbeat.interval.ms,
	// group.consumer.session.timeout.ms and group.consumer.max.size
	// (KIP-848 consumer groups).
	ConsumerHeartbeatInterval time.Duration
	ConsumerSessionTimeout    time.Duration
	ConsumerMaxSize           int
}

// DefaultConfig returns Kafka's defaults.
func DefaultConfig() Config {
	return Config{
		InitialRebalanceDelay:         3 * time.Second,
		MinSessionTimeout:             6 * time.Second,
		MaxSessionTimeout:             30 * time.Minute,
		MaxSize:                       1<<31 - 1,
		OffsetsRetention:              7 * 24 * time.Hour,
		OffsetsRetentionCheckInterval: 10 * time.Minute,
		OffsetMetadataMaxBytes:        4096,
		ConsumerHeartbeatInterval:     5 * time.Second,
		ConsumerSessionTimeout:        45 * time.Second,
		ConsumerMaxSize:               1<<31 - 1,
	}
}

// newMemberJoinTimeout bounds how long a new member's JoinGroup may wait
// in a rebalance before the member is dropped (Kafka's
// NewMemberJoinTimeoutMs): a client that gave up and retried with a new
// connection must not leave defunct members behind forever.
const newMemberJoinTimeout = 5 * time.Minute

// Protocol is one protocol a member supports, with its metadata (for
// consumers, the subscription).
type Protocol struct {
	Name     string
	Metadata []byte
}

// JoinRequest is a JoinGroup request.
type JoinRequest struct {
	MemberID string
	// InstanceID is the group.instance.id of a static member (KIP-345);
	// nil for a dynamic member.
	InstanceID       *string
	ClientID         string
	ClientHost       string
	ProtocolType     string
	Protocols        []Protocol
	SessionTimeout   time.Duration
	RebalanceTimeout time.Duration
	// RequireKnownMemberID is set for JoinGroup v4+ (KIP-394): a new
	// dynamic member first gets MEMBER_ID_REQUIRED with its ID.
	RequireKnownMemberID bool
	// SupportsSkipAssignment is set for JoinGroup v9+.
	SupportsSkipAssignment bool
	Reason                 string
}

// JoinMember is a member as the leader's JoinGroup response lists it.
type JoinMember struct {
	MemberID   string
	InstanceID *string
	Metadata   []byte
}

// JoinResult is a JoinGroup response.
type JoinResult struct {
	Err          *kerr.Error
	MemberID     string
	Generation   int32
	ProtocolType *string
	Protocol     *string
	Leader       string
	// SkipAssignment tells a static leader that rejoined a stable
	// group not to run the assignor (v9+).
	SkipAssignment bool
	// Members is set for the leader only.
	Members []JoinMember
}

// SyncRequest is a SyncGroup request.
type SyncRequest struct {
	MemberID     string
	InstanceID   *string
	Generation   int32
	ProtocolType *string
	Protocol     *string
	// Assignments is the leader's assignment by member ID; followers
	// send none.
	Assignments map[string][]byte
}

// SyncResult is a SyncGroup response.
type SyncResult struct {
	Err          *kerr.Error
	ProtocolType *string
	Protocol     *string
	Assignment   []byte
}

// HeartbeatRequest is a Heartbeat request.
type HeartbeatRequest struct {
	MemberID   string
	InstanceID *string
	Generation int32
}

// LeaveMember is one member of a LeaveGroup request; v3+ may name a
// static member by its instance ID alone.
type LeaveMember struct {
	MemberID   string
	InstanceID *string
	Reason     string
}

// LeaveResult is a LeaveGroup response: a group-level error, else one
// error per member.
type LeaveResult struct {
	Err     *kerr.Error
	Members []*kerr.Error
}

// CommitPartition is one partition of an OffsetCommit.
type CommitPartition struct {
	Partition   int32
	Offset      int64
	LeaderEpoch int32
	Metadata    string
}

// CommitTopic is one topic of an OffsetCommit.
type CommitTopic struct {
	Topic      string
	Partitions []CommitPartition
}

// CommitRequest is an OffsetCommit request whose topics exist.
type CommitRequest struct {
	MemberID   string
	InstanceID *string
	// Generation is -1 for commits from consumers that assign
	// partitions themselves (or admin tools).
	Generation int32
	// RetentionTime is v2-v4's retention, -1 for the broker's.
	RetentionTime time.Duration
	// Version is the OffsetCommit version (0: unknown); members of
	// consumer groups must commit with v9+.
	Version int16
	Topics  []CommitTopic
}

// CommitResult holds an error (nil = committed) per requested
// partition, in request order.
type CommitResult struct {
	Topics [][]*kerr.Error
}

// FetchTopic names the partitions an OffsetFetch wants.
type FetchTopic struct {
	Topic      string
	Partitions []int32
}

// FetchRequest is one group of an OffsetFetch.
type FetchRequest struct {
	// Topics nil fetches every committed offset of the group.
	Topics []FetchTopic
	// RequireStable answers UNSTABLE_OFFSET_COMMIT for partitions with
	// a commit still being written (KIP-447).
	RequireStable bool
	// MemberID and MemberEpoch (v9+) are checked against a consumer
	// group's members; nil MemberID or epoch -1 reads freely.
	MemberID    *string
	MemberEpoch int32
}

// FetchPartition is one partition of an OffsetFetch response.
type FetchPartition struct {
	Partition   int32
	Offset      int64
	LeaderEpoch int32
	Metadata    string
	Err         *kerr.Error
}

// FetchTopicResult is one topic of an OffsetFetch response.
type FetchTopicResult struct {
	Topic      string
	Partitions []FetchPartition
}

// FetchResult is one group of an OffsetFetch response.
type FetchResult struct {
	Err    *kerr.Error
	Topics []FetchTopicResult
}

// DescribedMember is a member in DescribeGroups.
type DescribedMember struct {
	MemberID   string
	InstanceID *string
	ClientID   string
	ClientHost string
	// Metadata and Assignment are set in the Stable state only, as
	// Kafka does.
	Metadata   []byte
	Assignment []byte
}

// DescribedGroup is a DescribeGroups entry.
type DescribedGroup struct {
	Err *kerr.Error
	// ErrMessage explains a Dead group that exists but is not a
	// classic group (a KIP-848 consumer group).
	ErrMessage   string
	State        State
	ProtocolType string
	Protocol     string
	Members      []DescribedMember
}

// ListedGroup is a ListGroups entry.
type ListedGroup struct {
	Group        string
	ProtocolType string
	// Type is "classic" or "consumer" (KIP-848).
	Type  string
	State State
	// Members is the member count (for metrics; not in ListGroups).
	Members int
}

// OffsetDeleteTopic names partitions whose offsets to delete.
type OffsetDeleteTopic struct {
	Topic      string
	Partitions []int32
}

// OffsetDeleteResult is an OffsetDelete response: a group-level error,
// else an error per requested partition.
type OffsetDeleteResult struct {
	Err    *kerr.Error
	Topics [][]*kerr.Error
}
