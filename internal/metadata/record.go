package metadata

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// UUID is a 16-byte Kafka UUID (topic IDs, KIP-516).
type UUID [16]byte

// NewUUID returns a random UUID that is never the zero UUID.
func NewUUID() UUID {
	for {
		var u UUID
		if _, err := rand.Read(u[:]); err != nil {
			panic(fmt.Sprintf("crypto/rand: %v", err)) // unrecoverable: no entropy
		}
		// Kafka reserves the all-zero and the "metadata topic" IDs.
		if u != (UUID{}) && u != (UUID{15: 1}) {
			return u
		}
	}
}

// String formats the UUID as Kafka does (URL-safe base64 is Kafka's
// display form; hex is easier to read in logs and files).
func (u UUID) String() string { return hex.EncodeToString(u[:]) }

// MarshalText implements encoding.TextMarshaler.
func (u UUID) MarshalText() ([]byte, error) { return []byte(u.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (u *UUID) UnmarshalText(b []byte) error {
	if len(b) != 32 {
		return fmt.Errorf("uuid: bad length %d", len(b))
	}
	_, err := hex.Decode(u[:], b)
	return err
}

// Record is one metadata change. Exactly one field is set.
type Record struct {
	Topic           *TopicRecord           `json:"topic,omitempty"`
	Partition       *PartitionRecord       `json:"partition,omitempty"`
	PartitionChange *PartitionChangeRecord `json:"partitionChange,omitempty"`
	RemoveTopic     *RemoveTopicRecord     `json:"removeTopic,omitempty"`
	Config          *ConfigRecord          `json:"config,omitempty"`
	ProducerIDs     *ProducerIDsRecord     `json:"producerIds,omitempty"`
	Broker          *BrokerRecord          `json:"broker,omitempty"`
	Scram           *ScramRecord           `json:"scram,omitempty"`
	Acl             *AclRecord             `json:"acl,omitempty"`
	Quota           *QuotaRecord           `json:"quota,omitempty"`
	Cluster         *ClusterRecord         `json:"cluster,omitempty"`
	Fence           *FenceRecord           `json:"fence,omitempty"`
}

// FenceRecord fences a broker the active controller has not heard from
// within broker.session.timeout.ms, or unfences it once it hears from it
// again (Kafka's BrokerRegistrationChangeRecord). A fenced broker is not
// listed to clients, gets no new partitions, and does not join an ISR.
type FenceRecord struct {
	ID     int32 `json:"id"`
	Fenced bool  `json:"fenced,omitempty"`
}

// ClusterRecord names the cluster: the first one committed sets
// Image.ClusterID, later ones change nothing (every node proposes its
// candidate when it finds the log without one).
type ClusterRecord struct {
	ID string `json:"id"`
}

// TopicRecord creates a topic.
type TopicRecord struct {
	Name string `json:"name"`
	ID   UUID   `json:"id"`
}

// PartitionRecord creates a partition of a topic.
type PartitionRecord struct {
	TopicID     UUID    `json:"topicId"`
	Partition   int32   `json:"partition"`
	Replicas    []int32 `json:"replicas"`
	ISR         []int32 `json:"isr"`
	Leader      int32   `json:"leader"`
	LeaderEpoch int32   `json:"leaderEpoch"`
}

// PartitionChangeRecord changes a partition's leader or ISR; the leader
// epoch is bumped when the leader changes, or when BumpEpoch is set with
// the same leader (a leader that restarted: its log may have lost an
// unsynced tail its followers hold, and a new epoch makes them truncate
// it). Replicas, when set, replaces the replicas and the reassignment in
// progress with Adding and Removing (none when nil).
type PartitionChangeRecord struct {
	TopicID   UUID    `json:"topicId"`
	Partition int32   `json:"partition"`
	Leader    *int32  `json:"leader,omitempty"`
	ISR       []int32 `json:"isr,omitempty"`
	Replicas  []int32 `json:"replicas,omitempty"`
	Adding    []int32 `json:"adding,omitempty"`
	Removing  []int32 `json:"removing,omitempty"`
	BumpEpoch bool    `json:"bumpEpoch,omitempty"`
}

// RemoveTopicRecord deletes a topic and its partitions.
type RemoveTopicRecord struct {
	ID UUID `json:"id"`
}

// Resource types of ConfigRecord, numbered as Kafka's ConfigResource.
const (
	ResourceTopic  int8 = 2
	ResourceBroker int8 = 4
)

// ConfigRecord sets (Value non-nil) or deletes (Value nil) a config
// override. For ResourceBroker, an empty Name is the cluster-wide default.
type ConfigRecord struct {
	ResourceType int8    `json:"resourceType"`
	ResourceName string  `json:"resourceName"`
	Name         string  `json:"name"`
	Value        *string `json:"value"`
}

// ProducerIDsRecord allocates the block [NextProducerID-BlockSize,
// NextProducerID) to a broker; IDs are never reused.
type ProducerIDsRecord struct {
	BrokerID       int32 `json:"brokerId"`
	NextProducerID int64 `json:"nextProducerId"`
}

// BrokerRecord registers a broker and its endpoints, replacing its
// earlier record.
type BrokerRecord struct {
	ID   int32  `json:"id"`
	Host string `json:"host"`
	Port int32  `json:"port"`
	Rack string `json:"rack,omitempty"`
	// Endpoints are the endpoints of the broker's named listeners, by
	// name; Host and Port are its default (first) listener's.
	Endpoints []BrokerEndpoint `json:"endpoints,omitempty"`
}

// BrokerEndpoint is where clients of one listener reach a broker.
type BrokerEndpoint struct {
	Listener string `json:"listener"`
	Host     string `json:"host"`
	Port     int32  `json:"port"`
}

// Endpoint returns where clients of listener reach the broker: that
// listener's endpoint, else the default one.
func (r *BrokerRecord) Endpoint(listener string) (string, int32) {
	for _, e := range r.Endpoints {
		if e.Listener == listener {
			return e.Host, e.Port
		}
	}
	return r.Host, r.Port
}

// ScramRecord sets (StoredKey non-nil) or deletes (StoredKey nil) a
// user's SCRAM credential for one mechanism (Kafka's
// UserScramCredentialRecord and RemoveUserScramCredentialRecord). It
// holds what authentication needs, never the password.
type ScramRecord struct {
	User       string `json:"user"`
	Mechanism  string `json:"mechanism"`
	Salt       []byte `json:"salt,omitempty"`
	Iterations int32  `json:"iterations,omitempty"`
	StoredKey  []byte `json:"storedKey,omitempty"`
	ServerKey  []byte `json:"serverKey,omitempty"`
}

// AclRecord adds an ACL binding under ID, or (Remove) removes the one
// with ID (Kafka's AccessControlEntryRecord and
// RemoveAccessControlEntryRecord). The types are numbered as Kafka's
// ACL APIs number them.
type AclRecord struct {
	ID           UUID   `json:"id"`
	Remove       bool   `json:"remove,omitempty"`
	ResourceType int8   `json:"resourceType,omitempty"`
	ResourceName string `json:"resourceName,omitempty"`
	PatternType  int8   `json:"patternType,omitempty"`
	Principal    string `json:"principal,omitempty"`
	Host         string `json:"host,omitempty"`
	Operation    int8   `json:"operation,omitempty"`
	Permission   int8   `json:"permission,omitempty"`
}

// QuotaRecord sets (Remove false) or removes one client quota of an
// entity (Kafka's QuotaRecord).
type QuotaRecord struct {
	Entity []QuotaEntityPart `json:"entity"`
	Key    string            `json:"key"`
	Value  float64           `json:"value,omitempty"`
	Remove bool              `json:"remove,omitempty"`
}

// QuotaEntityPart is one type of a client quota entity: "user",
// "client-id" or "ip", and its name; a nil name is the type's default
// (Kafka's <default>).
type QuotaEntityPart struct {
	Type string  `json:"type"`
	Name *string `json:"name,omitempty"`
}

// QuotaKey is an entity's canonical form, for maps: its parts
// (QuotaKeyPart) sorted, joined by commas. A client-id part sorts before
// a user part.
func QuotaKey(entity []QuotaEntityPart) string {
	parts := make([]string, 0, len(entity))
	for _, p := range entity {
		parts = append(parts, QuotaKeyPart(p.Type, p.Name))
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}

// QuotaKeyPart is one part of QuotaKey's form: type=name, the name
// quoted, or type=<default> for a nil name.
func QuotaKeyPart(typ string, name *string) string {
	if name == nil {
		return typ + "=<default>"
	}
	return typ + "=" + strconv.Quote(*name)
}
