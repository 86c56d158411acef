package raftnode

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"

	"go.etcd.io/raft/v3/raftpb"
)

const (
	snapName  = "snapshot"
	snapMagic = "GRSNAP01"
)

// encodeSnapshot returns the snapshot file's contents (see the package
// doc).
func encodeSnapshot(s raftpb.Snapshot) ([]byte, error) {
	body, err := s.Marshal()
	if err != nil {
		return nil, err
	}
	buf := make([]byte, len(snapMagic)+4, len(snapMagic)+4+len(body))
	copy(buf, snapMagic)
	binary.LittleEndian.PutUint32(buf[len(snapMagic):], crc32.Checksum(body, castagnoli))
	return append(buf, body...), nil
}

// decodeSnapshot parses a snapshot file. The file is written atomically,
// so any damage is ErrCorrupt.
func decodeSnapshot(data []byte) (raftpb.Snapshot, error) {
	var s raftpb.Snapshot
	h := len(snapMagic) + 4
	if len(data) < h || string(data[:len(snapMagic)]) != snapMagic {
		return s, fmt.Errorf("%w: snapshot: bad header", ErrCorrupt)
	}
	body := data[h:]
	if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(data[len(snapMagic):]) {
		return s, fmt.Errorf("%w: snapshot: checksum mismatch", ErrCorrupt)
	}
	if err := s.Unmarshal(body); err != nil {
		return s, fmt.Errorf("%w: snapshot: %w", ErrCorrupt, err)
	}
	if s.Metadata.Index == 0 {
		return s, fmt.Errorf("%w: snapshot: index 0", ErrCorrupt)
	}
	return s, nil
}
