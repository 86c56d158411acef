package raftnode

import (
	"encoding/binary"
	"errors"
)

// envelope wraps each proposal so that the node that proposed it can hand
// Apply's result to the waiting Propose call:
//
//	version uint8 = 1
//	node    uvarint   the proposing node's ID
//	nonce   uint64 LE random, drawn at each Start
//	seq     uvarint   the proposing node's sequence number since Start
//	data              the caller's bytes, all that the StateMachine sees
//
// The nonce keeps a restarted node, whose sequence numbers start over,
// from matching an entry proposed before the restart to a new waiter.
type envelope struct {
	node, nonce, seq uint64
	data             []byte
}

const envelopeVersion = 1

// maxEnvelopeHeader bounds the bytes an envelope adds to the data.
const maxEnvelopeHeader = 1 + binary.MaxVarintLen64 + 8 + binary.MaxVarintLen64

func (e envelope) marshal() []byte {
	buf := make([]byte, 0, maxEnvelopeHeader+len(e.data))
	buf = append(buf, envelopeVersion)
	buf = binary.AppendUvarint(buf, e.node)
	buf = binary.LittleEndian.AppendUint64(buf, e.nonce)
	buf = binary.AppendUvarint(buf, e.seq)
	return append(buf, e.data...)
}

var errBadEnvelope = errors.New("raftnode: malformed proposal envelope")

// unmarshalEnvelope parses an envelope; data aliases b.
func unmarshalEnvelope(b []byte) (envelope, error) {
	var e envelope
	if len(b) == 0 || b[0] != envelopeVersion {
		return e, errBadEnvelope
	}
	b = b[1:]
	var n int
	if e.node, n = binary.Uvarint(b); n <= 0 {
		return e, errBadEnvelope
	}
	b = b[n:]
	if len(b) < 8 {
		return e, errBadEnvelope
	}
	e.nonce, b = binary.LittleEndian.Uint64(b), b[8:]
	if e.seq, n = binary.Uvarint(b); n <= 0 {
		return e, errBadEnvelope
	}
	e.data = b[n:]
	return e, nil
}
