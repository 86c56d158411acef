package partlog

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/gregor-streaming/gregor/internal/batch"
)

// checkpoint is the content of partition.checkpoint (layout in doc.go).
type checkpoint struct {
	clean          bool
	logStartOffset int64
	highWatermark  int64
	recoveryPoint  int64
	logEndOffset   int64
	// The active segment at a clean shutdown, to trust it on the next
	// Open without a scan; zero otherwise.
	activeBase        int64
	activeSize        int64
	activeIdxEntries  int32
	activeTidxEntries int32
	// cleanerOffset is the compactor's first dirty offset: offsets below
	// it were compacted (Kafka's cleaner-offset-checkpoint). Version 2.
	cleanerOffset int64
	// rpMark places recoveryPoint in its segment (version 3; pos -1 in
	// older versions).
	rpMark rpMark
	epochs []EpochEntry
}

const (
	checkpointMagic   = "GPCK"
	checkpointVersion = 4
	checkpointFixedV1 = 68  // bytes before the epoch entries, version 1
	checkpointFixedV2 = 76  // version 2
	checkpointFixedV3 = 116 // version 3
	checkpointFixed   = 124 // version 4: a sequence number at 116
	flagClean         = 1
	// ckptSlotSize is where the file's second slot starts (see
	// writeCkptFile): a block of its own, so writing one slot never
	// touches the other's sectors. A checkpoint larger than a slot (more
	// than 330 leader epochs) is written alone, by replacing the file.
	ckptSlotSize = 4096
)

var errCheckpoint = errors.New("partlog: bad checkpoint")

// encode encodes c with sequence number 0: its content, which
// encodings compare by (Log.ckptDisk); writeCkptFile stamps the file's
// sequence number on a copy (stampSeq).
func (c *checkpoint) encode() []byte {
	b := make([]byte, checkpointFixed, checkpointFixed+12*len(c.epochs)+4)
	copy(b, checkpointMagic)
	binary.BigEndian.PutUint16(b[4:], checkpointVersion)
	var flags uint16
	if c.clean {
		flags |= flagClean
	}
	binary.BigEndian.PutUint16(b[6:], flags)
	binary.BigEndian.PutUint64(b[8:], uint64(c.logStartOffset))
	binary.BigEndian.PutUint64(b[16:], uint64(c.highWatermark))
	binary.BigEndian.PutUint64(b[24:], uint64(c.recoveryPoint))
	binary.BigEndian.PutUint64(b[32:], uint64(c.logEndOffset))
	binary.BigEndian.PutUint64(b[40:], uint64(c.activeBase))
	binary.BigEndian.PutUint64(b[48:], uint64(c.activeSize))
	binary.BigEndian.PutUint32(b[56:], uint32(c.activeIdxEntries))
	binary.BigEndian.PutUint32(b[60:], uint32(c.activeTidxEntries))
	binary.BigEndian.PutUint32(b[64:], uint32(len(c.epochs)))
	binary.BigEndian.PutUint64(b[68:], uint64(c.cleanerOffset))
	m := &c.rpMark
	binary.BigEndian.PutUint64(b[76:], uint64(m.seg))
	binary.BigEndian.PutUint64(b[84:], uint64(m.pos))
	binary.BigEndian.PutUint64(b[92:], uint64(m.maxTs))
	binary.BigEndian.PutUint64(b[100:], uint64(m.maxTsOff))
	binary.BigEndian.PutUint64(b[108:], uint64(m.firstTs))
	// b[116:124], the sequence number, is 0.
	for _, e := range c.epochs {
		b = binary.BigEndian.AppendUint32(b, uint32(e.Epoch))
		b = binary.BigEndian.AppendUint64(b, uint64(e.StartOffset))
	}
	return binary.BigEndian.AppendUint32(b, batch.Checksum(b))
}

func decodeCheckpoint(b []byte) (checkpoint, error) {
	c := checkpoint{rpMark: noMark}
	if len(b) < checkpointFixedV1+4 {
		return c, fmt.Errorf("%w: %d bytes", errCheckpoint, len(b))
	}
	body, sum := b[:len(b)-4], binary.BigEndian.Uint32(b[len(b)-4:])
	if batch.Checksum(body) != sum {
		return c, fmt.Errorf("%w: CRC mismatch", errCheckpoint)
	}
	if string(b[:4]) != checkpointMagic {
		return c, fmt.Errorf("%w: magic %q", errCheckpoint, b[:4])
	}
	v := binary.BigEndian.Uint16(b[4:])
	fixed := ckptFixedLen(v)
	if fixed == 0 {
		return c, fmt.Errorf("%w: version %d", errCheckpoint, v)
	}
	if uint64(len(body)) < fixed {
		return c, fmt.Errorf("%w: %d bytes", errCheckpoint, len(b))
	}
	if v >= 2 { // version 1, before compaction: no cleaner offset
		c.cleanerOffset = int64(binary.BigEndian.Uint64(b[68:]))
	}
	if v >= 3 {
		c.rpMark = rpMark{
			seg:      int64(binary.BigEndian.Uint64(b[76:])),
			pos:      int64(binary.BigEndian.Uint64(b[84:])),
			maxTs:    int64(binary.BigEndian.Uint64(b[92:])),
			maxTsOff: int64(binary.BigEndian.Uint64(b[100:])),
			firstTs:  int64(binary.BigEndian.Uint64(b[108:])),
		}
	}
	c.clean = binary.BigEndian.Uint16(b[6:])&flagClean != 0
	c.logStartOffset = int64(binary.BigEndian.Uint64(b[8:]))
	c.highWatermark = int64(binary.BigEndian.Uint64(b[16:]))
	c.recoveryPoint = int64(binary.BigEndian.Uint64(b[24:]))
	c.logEndOffset = int64(binary.BigEndian.Uint64(b[32:]))
	c.activeBase = int64(binary.BigEndian.Uint64(b[40:]))
	c.activeSize = int64(binary.BigEndian.Uint64(b[48:]))
	c.activeIdxEntries = int32(binary.BigEndian.Uint32(b[56:]))
	c.activeTidxEntries = int32(binary.BigEndian.Uint32(b[60:]))
	n := binary.BigEndian.Uint32(b[64:])
	if uint64(len(body)) != fixed+12*uint64(n) {
		return c, fmt.Errorf("%w: %d epochs in %d bytes", errCheckpoint, n, len(b))
	}
	if c.logStartOffset < 0 || c.highWatermark < 0 || c.recoveryPoint < 0 || c.logEndOffset < 0 ||
		c.activeBase < 0 || c.activeSize < 0 || c.activeIdxEntries < 0 || c.activeTidxEntries < 0 || c.cleanerOffset < 0 {
		return c, fmt.Errorf("%w: negative field", errCheckpoint)
	}
	c.epochs = make([]EpochEntry, n)
	p := body[fixed:]
	for i := range c.epochs {
		c.epochs[i] = EpochEntry{Epoch: int32(binary.BigEndian.Uint32(p)), StartOffset: int64(binary.BigEndian.Uint64(p[4:]))}
		p = p[12:]
	}
	return c, nil
}

// ckptFixedLen is how many bytes precede the epoch entries in an
// encoding of version v, 0 for a version not known.
func ckptFixedLen(v uint16) uint64 {
	switch v {
	case 1:
		return checkpointFixedV1
	case 2:
		return checkpointFixedV2
	case 3:
		return checkpointFixedV3
	case checkpointVersion:
		return checkpointFixed
	}
	return 0
}

// ckptLen returns the length of the checkpoint encoding that b starts
// with, from its version and epoch count, or 0 when b cannot start one.
func ckptLen(b []byte) int {
	if len(b) < checkpointFixedV1+4 || string(b[:4]) != checkpointMagic {
		return 0
	}
	fixed := ckptFixedLen(binary.BigEndian.Uint16(b[4:]))
	if fixed == 0 {
		return 0
	}
	n := fixed + 12*uint64(binary.BigEndian.Uint32(b[64:])) + 4
	if n > uint64(len(b)) {
		return 0
	}
	return int(n)
}

// ckptSeq is the sequence number of a valid encoding (0 before version
// 4).
func ckptSeq(b []byte) uint64 {
	if binary.BigEndian.Uint16(b[4:]) < checkpointVersion {
		return 0
	}
	return binary.BigEndian.Uint64(b[116:])
}

// stampSeq returns a copy of enc, an encoding from encode, with sequence
// number seq and its CRC recomputed.
func stampSeq(enc []byte, seq uint64) []byte {
	b := append([]byte(nil), enc...)
	binary.BigEndian.PutUint64(b[116:], seq)
	body := b[:len(b)-4]
	binary.BigEndian.PutUint32(b[len(b)-4:], batch.Checksum(body))
	return b
}

// ckptFile is what a checkpoint file holds: its newest valid slot.
type ckptFile struct {
	c    checkpoint
	seq  uint64
	slot int
	// size is the newest encoding's length.
	size int
}

// decodeCkptFile reads the newest valid checkpoint of a file's content
// b: slot 0 at the start (the whole file, as every version before 4
// wrote it) and slot 1 at ckptSlotSize, the valid one with the higher
// sequence number. A slot torn by a crash fails its CRC and the other
// is used. The error is slot 0's when neither is valid.
func decodeCkptFile(b []byte) (ckptFile, error) {
	var best ckptFile
	found := false
	n0 := ckptLen(b)
	c0, err := decodeCheckpoint(b[:n0])
	if err == nil {
		best, found = ckptFile{c: c0, seq: ckptSeq(b), size: n0}, true
	}
	// Slot 1 exists only beside a slot 0 that fits its slot (or one
	// torn beyond reading): a larger encoding was written alone.
	if len(b) > ckptSlotSize && (!found || n0 <= ckptSlotSize) {
		b1 := b[ckptSlotSize:]
		n1 := ckptLen(b1)
		if c1, err1 := decodeCheckpoint(b1[:n1]); err1 == nil && n1 <= ckptSlotSize && (!found || ckptSeq(b1) > best.seq) {
			best, found = ckptFile{c: c1, seq: ckptSeq(b1), slot: 1, size: n1}, true
		}
	}
	if !found {
		return best, err
	}
	return best, nil
}
