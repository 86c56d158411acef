package batch

import (
	"encoding/binary"
	"fmt"
)

// ControlType is the type of a control record, from its key.
type ControlType int16

// Control record types, as Kafka's ControlRecordType numbers them.
const (
	ControlAbort          ControlType = 0 // end of an aborted transaction
	ControlCommit         ControlType = 1 // end of a committed transaction
	ControlLeaderChange   ControlType = 2 // KRaft leader change
	ControlSnapshotHeader ControlType = 3 // KRaft snapshot header
	ControlSnapshotFooter ControlType = 4 // KRaft snapshot footer
	ControlKRaftVersion   ControlType = 5 // KRaft version (KIP-853)
	ControlKRaftVoters    ControlType = 6 // KRaft voter set (KIP-853)
)

// ControlBatch builds the end-transaction marker that a transaction
// coordinator's WriteTxnMarkers puts in each partition, exactly as Kafka
// writes it: one control record in a transactional, control, uncompressed
// batch of the producer, with baseSequence -1 and both timestamps ts. Its
// key is version int16 0 and type int16 (0 abort, 1 commit); its value
// (EndTxnMarker v0) is version int16 0 and coordinatorEpoch int32. The
// broker sets baseOffset and partitionLeaderEpoch on append.
func ControlBatch(producerID int64, epoch int16, commit bool, coordinatorEpoch int32, ts int64) []byte {
	typ := ControlAbort
	if commit {
		typ = ControlCommit
	}
	key := binary.BigEndian.AppendUint16(make([]byte, 2, 4), uint16(typ)) // version 0
	value := binary.BigEndian.AppendUint32(make([]byte, 2, 6), uint32(coordinatorEpoch))
	b := NewBuilder(CodecNone).SetProducer(producerID, epoch, -1).SetTransactional(true).SetControl(true)
	b.Add(Record{Timestamp: ts, Key: key, Value: value})
	out, _ := b.Build() // one uncompressed record: cannot fail
	return out
}

// ParseControlKey returns the type in a control record's key: version
// int16 then type int16. Like Kafka it refuses a negative version and
// reads the type of any other version.
func ParseControlKey(key []byte) (ControlType, error) {
	if len(key) < 4 {
		return 0, fmt.Errorf("%w: control record key of %d bytes", ErrRecord, len(key))
	}
	if v := int16(binary.BigEndian.Uint16(key)); v < 0 {
		return 0, fmt.Errorf("%w: control record key version %d", ErrRecord, v)
	}
	return ControlType(binary.BigEndian.Uint16(key[2:])), nil
}

// ParseEndTxnMarker returns the coordinator epoch in the value of an
// abort or commit control record: version int16 then coordinatorEpoch
// int32. Later versions may append fields, which are ignored as Kafka
// does.
func ParseEndTxnMarker(value []byte) (coordinatorEpoch int32, err error) {
	if len(value) < 6 {
		return 0, fmt.Errorf("%w: end transaction marker of %d bytes", ErrRecord, len(value))
	}
	if v := int16(binary.BigEndian.Uint16(value)); v < 0 {
		return 0, fmt.Errorf("%w: end transaction marker version %d", ErrRecord, v)
	}
	return int32(binary.BigEndian.Uint32(value[2:])), nil
}
