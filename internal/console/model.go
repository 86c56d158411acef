package console

import "time"

// The pages' data: what the HTML templates render and what ?format=json
// returns, field for field. docs/CONSOLE.md shows the JSON shapes; keep
// it in step.

// Overview is the console's front page (/console/).
type Overview struct {
	ClusterID     string     `json:"cluster_id"`
	ControllerID  int32      `json:"controller_id"`
	Version       string     `json:"version,omitempty"`
	Started       time.Time  `json:"started"`
	UptimeSeconds float64    `json:"uptime_seconds"`
	Brokers       []Broker   `json:"brokers"`
	Listeners     []Listener `json:"listeners"`
	// Topics counts the topics, InternalTopics those of them that are
	// internal (__consumer_offsets, …), Partitions the partitions of all.
	Topics         int `json:"topics"`
	InternalTopics int `json:"internal_topics"`
	Partitions     int `json:"partitions"`
	// Groups counts the groups; GroupsError says why it is missing.
	Groups      int    `json:"groups"`
	GroupsError string `json:"groups_error,omitempty"`
	// Traffic is nil when the console has no metrics to read.
	Traffic *Traffic `json:"traffic,omitempty"`
}

// Broker is one broker as the cluster's metadata announces it.
type Broker struct {
	NodeID     int32   `json:"node_id"`
	Host       string  `json:"host"`
	Port       int32   `json:"port"`
	Rack       *string `json:"rack"`
	Controller bool    `json:"controller"`
}

// Listener is one of the broker's configured listeners.
type Listener struct {
	Name     string `json:"name"`
	Protocol string `json:"protocol"`
	// Address is where it listens, Advertised what clients are told.
	Address    string `json:"address"`
	Advertised string `json:"advertised"`
}

// Traffic is the broker's produce and fetch bytes, from its metrics:
// totals since it started, and per second over the last WindowSeconds
// (nil on the first look, before there is a window).
type Traffic struct {
	BytesInTotal   float64  `json:"bytes_in_total"`
	BytesOutTotal  float64  `json:"bytes_out_total"`
	BytesInPerSec  *float64 `json:"bytes_in_per_sec"`
	BytesOutPerSec *float64 `json:"bytes_out_per_sec"`
	WindowSeconds  float64  `json:"window_seconds,omitempty"`
}

// TopicList is the topics page (/console/topics?filter=…).
type TopicList struct {
	// Filter is the substring topic names were filtered by ("": all).
	Filter string     `json:"filter"`
	Topics []TopicRow `json:"topics"`
	// OffsetsError and SizesError say why offsets or sizes are missing.
	OffsetsError string `json:"offsets_error,omitempty"`
	SizesError   string `json:"sizes_error,omitempty"`
}

// TopicRow is one topic of the topics page.
type TopicRow struct {
	Name              string `json:"name"`
	ID                string `json:"id"`
	Internal          bool   `json:"internal"`
	Partitions        int    `json:"partitions"`
	ReplicationFactor int    `json:"replication_factor"`
	// SizeBytes is the size of the partitions' logs; -1 unknown.
	SizeBytes int64 `json:"size_bytes"`
	// HighWatermarks is the sum of the partitions' high watermarks,
	// Records the sum of high watermark minus log start offset: the
	// records a consumer reading from the start would get, give or take
	// transaction markers and compacted-away records.
	HighWatermarks int64  `json:"high_watermark_sum"`
	Records        int64  `json:"records"`
	Error          string `json:"error,omitempty"`
}

// Topic is a topic's page (/console/topics/NAME): TopicRow's totals
// with the partitions themselves.
type Topic struct {
	Name              string      `json:"name"`
	ID                string      `json:"id"`
	Internal          bool        `json:"internal"`
	ReplicationFactor int         `json:"replication_factor"`
	SizeBytes         int64       `json:"size_bytes"`
	HighWatermarks    int64       `json:"high_watermark_sum"`
	Records           int64       `json:"records"`
	Partitions        []Partition `json:"partitions"`
	// Configs are the topic's configs whose source is not the default:
	// set on the topic, or inherited from a broker setting.
	Configs      []Config `json:"configs"`
	ConfigsError string   `json:"configs_error,omitempty"`
	OffsetsError string   `json:"offsets_error,omitempty"`
	SizesError   string   `json:"sizes_error,omitempty"`
}

// Partition is one partition of a topic's page. Offsets are -1 when
// unknown, SizeBytes too.
type Partition struct {
	Partition      int32   `json:"partition"`
	Leader         int32   `json:"leader"`
	LeaderEpoch    int32   `json:"leader_epoch"`
	Replicas       []int32 `json:"replicas"`
	ISR            []int32 `json:"isr"`
	LogStartOffset int64   `json:"log_start_offset"`
	HighWatermark  int64   `json:"high_watermark"`
	SizeBytes      int64   `json:"size_bytes"`
	Error          string  `json:"error,omitempty"`
}

// Config is a topic config. Value is nil for sensitive ones.
type Config struct {
	Name      string  `json:"name"`
	Value     *string `json:"value"`
	Source    string  `json:"source"`
	Sensitive bool    `json:"sensitive,omitempty"`
}

// GroupList is the consumer groups page (/console/groups?filter=…).
type GroupList struct {
	Filter string     `json:"filter"`
	Groups []GroupRow `json:"groups"`
}

// GroupRow is one group of the groups page.
type GroupRow struct {
	Group        string `json:"group"`
	State        string `json:"state"`
	ProtocolType string `json:"protocol_type"`
	Protocol     string `json:"protocol"`
	Coordinator  int32  `json:"coordinator"`
	Members      int    `json:"members"`
	// Lag is the sum of the partitions' lags (those that have one).
	Lag   int64  `json:"lag"`
	Error string `json:"error,omitempty"`
}

// Group is a group's page (/console/group?id=GROUP).
type Group struct {
	Group        string   `json:"group"`
	State        string   `json:"state"`
	ProtocolType string   `json:"protocol_type"`
	Protocol     string   `json:"protocol"`
	Coordinator  int32    `json:"coordinator"`
	Members      []Member `json:"members"`
	// Offsets are per partition the group committed to or is assigned:
	// the committed offset (-1: none), the log end offset (the high
	// watermark) and the lag between them (-1: unknown; with no commit,
	// counted from the log start offset).
	Offsets []Offset `json:"offsets"`
	// Lag is the sum of the partitions' lags (those that have one).
	Lag int64 `json:"lag"`
	// OffsetsError says why the committed offsets are missing.
	OffsetsError string `json:"offsets_error,omitempty"`
}

// Member is a group member with the partitions assigned to it.
type Member struct {
	MemberID   string       `json:"member_id"`
	InstanceID *string      `json:"instance_id"`
	ClientID   string       `json:"client_id"`
	ClientHost string       `json:"client_host"`
	Assigned   []Assignment `json:"assigned"`
}

// Assignment is a member's partitions of one topic.
type Assignment struct {
	Topic      string  `json:"topic"`
	Partitions []int32 `json:"partitions"`
}

// Offset is a group's position in one partition.
type Offset struct {
	Topic        string `json:"topic"`
	Partition    int32  `json:"partition"`
	Committed    int64  `json:"committed"`
	LogEndOffset int64  `json:"log_end_offset"`
	Lag          int64  `json:"lag"`
	MemberID     string `json:"member_id,omitempty"`
	Error        string `json:"error,omitempty"`
}

// Security is the security page (/console/security): read-only lists.
type Security struct {
	// AuthorizerEnabled is false when the ACL API answers
	// SECURITY_DISABLED (no authorizer.class.name).
	AuthorizerEnabled bool   `json:"authorizer_enabled"`
	ACLs              []ACL  `json:"acls"`
	ACLsError         string `json:"acls_error,omitempty"`
	// ScramUsers are names and mechanisms only: never salts or keys.
	ScramUsers  []ScramUser `json:"scram_users"`
	ScramError  string      `json:"scram_error,omitempty"`
	Quotas      []Quota     `json:"quotas"`
	QuotasError string      `json:"quotas_error,omitempty"`
}

// ACL is one ACL binding, in kafka-acls' words.
type ACL struct {
	Principal    string `json:"principal"`
	Host         string `json:"host"`
	ResourceType string `json:"resource_type"`
	ResourceName string `json:"resource_name"`
	PatternType  string `json:"pattern_type"`
	Operation    string `json:"operation"`
	Permission   string `json:"permission"`
}

// ScramUser is a SASL/SCRAM user and the mechanisms it has credentials
// for.
type ScramUser struct {
	User       string   `json:"user"`
	Mechanisms []string `json:"mechanisms"`
}

// Quota is a client quota entity and its values.
type Quota struct {
	// Entity is "user=alice", "client-id=<default>", "user=a, client-id=b".
	Entity string       `json:"entity"`
	Values []QuotaValue `json:"values"`
}

// QuotaValue is one quota key and its value.
type QuotaValue struct {
	Key   string  `json:"key"`
	Value float64 `json:"value"`
}
