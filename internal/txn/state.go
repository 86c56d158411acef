package txn

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"unicode/utf16"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// State is a transaction's state, numbered as Kafka's TransactionState
// (the number is what __transaction_state stores).
type State int8

// Kafka's transaction states.
const (
	Empty             State = 0
	Ongoing           State = 1
	PrepareCommit     State = 2
	PrepareAbort      State = 3
	CompleteCommit    State = 4
	CompleteAbort     State = 5
	Dead              State = 6
	PrepareEpochFence State = 7
)

var stateNames = [...]string{"Empty", "Ongoing", "PrepareCommit", "PrepareAbort", "CompleteCommit", "CompleteAbort", "Dead", "PrepareEpochFence"}

// String returns the state's name as Kafka's ListTransactions and
// DescribeTransactions report it.
func (s State) String() string {
	if s >= 0 && int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "Unknown"
}

// ParseState returns the state of a name, case-sensitively as Kafka.
func ParseState(name string) (State, bool) {
	for i, n := range stateNames {
		if n == name {
			return State(i), true
		}
	}
	return 0, false
}

// TopicPartition names a partition of a transaction.
type TopicPartition struct {
	Topic     string
	Partition int32
}

func compareTP(a, b TopicPartition) int {
	return cmp.Or(strings.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
}

// noProducerEpoch is Kafka's RecordBatch.NO_PRODUCER_EPOCH.
const noProducerEpoch = -1

// epochExhausted reports whether an epoch cannot be bumped twice more
// (Kafka's isEpochExhausted: a fence bumps once, a v2 completion once).
func epochExhausted(e int16) bool { return e >= math.MaxInt16-1 }

// meta is a transactional ID's durable state, as a TxnMetadataValue
// holds it. Values are copied on every transition (prepare a new meta,
// write it, install it once durable).
type meta struct {
	producerID int64
	epoch      int16
	// lastEpoch is the epoch before the last bump, for retries of the
	// request that bumped it (KIP-360 InitProducerID, v2 EndTxn); -1
	// when a new producer took over.
	lastEpoch int16
	// prevProducerID is the producer ID before a rotation (epoch
	// exhausted); nextProducerID the one a v2 completion rotates to.
	prevProducerID, nextProducerID int64
	timeoutMs                      int32
	state                          State
	// partitions are the transaction's partitions, sorted.
	partitions []TopicPartition
	// startMs is when the transaction began (-1 when none);
	// updateMs the last transition.
	startMs, updateMs int64
	// tv2 is set when the transaction uses transactions v2 (KIP-890):
	// partitions added by produce requests, epoch bumped by EndTxn.
	tv2 bool
}

func (m meta) clone() meta {
	m.partitions = slices.Clone(m.partitions)
	return m
}

func (m *meta) hasPartition(tp TopicPartition) bool {
	_, ok := slices.BinarySearchFunc(m.partitions, tp, compareTP)
	return ok
}

// addPartitions returns m's partitions with tps added, sorted, and
// whether any was new.
func (m *meta) withPartitions(tps []TopicPartition) ([]TopicPartition, bool) {
	out := slices.Clone(m.partitions)
	added := false
	for _, tp := range tps {
		if i, ok := slices.BinarySearchFunc(out, tp, compareTP); !ok {
			out = slices.Insert(out, i, tp)
			added = true
		}
	}
	return out, added
}

// Record schema versions Gregor writes, as Kafka 4 does.
const (
	keyVersion   = 0
	valueVersion = 1
)

func recordKey(txnID string) []byte {
	k := kmsg.TxnMetadataKey{Version: keyVersion, TransactionalID: txnID}
	return k.AppendTo(nil)
}

func encodeValue(m *meta) []byte {
	v := kmsg.NewTxnMetadataValue()
	v.Version = valueVersion
	v.ProducerID = m.producerID
	v.ProducerEpoch = m.epoch
	v.TimeoutMillis = m.timeoutMs
	v.State = kmsg.TransactionState(m.state)
	for _, tp := range m.partitions {
		if n := len(v.Topics); n == 0 || v.Topics[n-1].Topic != tp.Topic {
			v.Topics = append(v.Topics, kmsg.TxnMetadataValueTopic{Topic: tp.Topic})
		}
		t := &v.Topics[len(v.Topics)-1]
		t.Partitions = append(t.Partitions, tp.Partition)
	}
	v.LastUpdateTimestamp = m.updateMs
	v.StartTimestamp = m.startMs
	v.PreviousProducerID = m.prevProducerID
	v.NextProducerID = m.nextProducerID
	v.NextProducerEpoch = -1
	if m.tv2 {
		v.ClientTransactionVersion = 2
	}
	return v.AppendTo(nil)
}

// errSchema reports a record that does not decode; load skips it.
var errSchema = errors.New("txn: malformed __transaction_state record")

// decodeRecord decodes a record of __transaction_state. A nil meta is a
// tombstone; ok is false for keys of other versions.
func decodeRecord(key, value []byte) (txnID string, m *meta, ok bool, err error) {
	var k kmsg.TxnMetadataKey
	if err := k.ReadFrom(key); err != nil {
		return "", nil, false, fmt.Errorf("%w: key: %v", errSchema, err)
	}
	if k.Version != 0 {
		return "", nil, false, nil
	}
	if value == nil {
		return k.TransactionalID, nil, true, nil
	}
	v := kmsg.NewTxnMetadataValue()
	if err := v.ReadFrom(value); err != nil {
		return "", nil, false, fmt.Errorf("%w: value: %v", errSchema, err)
	}
	m = &meta{
		producerID:     v.ProducerID,
		epoch:          v.ProducerEpoch,
		lastEpoch:      noProducerEpoch,
		prevProducerID: v.PreviousProducerID,
		nextProducerID: v.NextProducerID,
		timeoutMs:      v.TimeoutMillis,
		state:          State(v.State),
		startMs:        v.StartTimestamp,
		updateMs:       v.LastUpdateTimestamp,
		tv2:            v.ClientTransactionVersion >= 2,
	}
	if v.Version == 0 {
		m.prevProducerID, m.nextProducerID = -1, -1
	}
	for _, t := range v.Topics {
		for _, p := range t.Partitions {
			m.partitions = append(m.partitions, TopicPartition{t.Topic, p})
		}
	}
	slices.SortFunc(m.partitions, compareTP)
	m.partitions = slices.Compact(m.partitions)
	return k.TransactionalID, m, true, nil
}

// javaStringHashCode is Java's String.hashCode over UTF-16 code units,
// in int32 arithmetic (Kafka decodes the ID as UTF-8, invalid bytes
// becoming U+FFFD as Go's []rune conversion does).
func javaStringHashCode(s string) int32 {
	var h int32
	for _, u := range utf16.Encode([]rune(s)) {
		h = 31*h + int32(u)
	}
	return h
}

// PartitionFor returns the __transaction_state partition of a
// transactional ID: Kafka's Utils.abs(transactionalId.hashCode()) % n,
// where Utils.abs maps Integer.MIN_VALUE to 0.
func PartitionFor(txnID string, n int32) int32 {
	h := javaStringHashCode(txnID)
	if h == math.MinInt32 {
		h = 0
	} else if h < 0 {
		h = -h
	}
	return h % n
}
