package raftnode

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"path/filepath"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/gregor-streaming/gregor/internal/vfs"
)

// ErrCorrupt marks stored data that failed its checksum or structure
// checks before the tail of a file, where recovery cannot truncate it
// away without losing acknowledged writes.
var ErrCorrupt = errors.New("raftnode: corrupt data")

// WAL record types.
const (
	recStart = 1
	recEntry = 2
	recState = 3
)

const (
	recHeader = 8 // length uint32, crc uint32
	// maxRecord bounds a record's length field, so a corrupt length
	// cannot make recovery allocate or skip gigabytes. Entries are at
	// most MaxProposalSize plus the envelope.
	maxRecord = 64 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// appendRecord appends one record of type typ with body to buf.
func appendRecord(buf []byte, typ byte, body []byte) []byte {
	var h [recHeader + 1]byte
	binary.LittleEndian.PutUint32(h[0:], uint32(len(body)+1))
	h[8] = typ
	crc := crc32.Update(crc32.Checksum(h[8:9], castagnoli), castagnoli, body)
	binary.LittleEndian.PutUint32(h[4:], crc)
	buf = append(buf, h[:]...)
	return append(buf, body...)
}

func appendStart(buf []byte, index, term uint64) []byte {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[0:], index)
	binary.LittleEndian.PutUint64(b[8:], term)
	return appendRecord(buf, recStart, b[:])
}

func appendEntries(buf []byte, ents []raftpb.Entry) ([]byte, error) {
	for i := range ents {
		b, err := ents[i].Marshal()
		if err != nil {
			return buf, err
		}
		buf = appendRecord(buf, recEntry, b)
	}
	return buf, nil
}

func appendState(buf []byte, hs raftpb.HardState) ([]byte, error) {
	b, err := hs.Marshal()
	if err != nil {
		return buf, err
	}
	return appendRecord(buf, recState, b), nil
}

// walState is what a WAL file holds: the snapshot it continues, the
// entries after it, and the last hard state.
type walState struct {
	snapIndex, snapTerm uint64
	entries             []raftpb.Entry
	hs                  raftpb.HardState
}

// lastIndex is the index of the last entry, or the snapshot's.
func (s *walState) lastIndex() uint64 {
	if n := len(s.entries); n > 0 {
		return s.entries[n-1].Index
	}
	return s.snapIndex
}

// decodeWAL reads a WAL file's contents. It returns the state and the
// length of the valid prefix: a torn tail (a partial record, a bad
// checksum on the last record, or zeros to the end) ends the valid
// prefix, and anything else that fails its checks is ErrCorrupt.
// valid <= len(data) always.
func decodeWAL(data []byte) (st walState, valid int, err error) {
	off := 0
	started := false
	for off < len(data) {
		rest := data[off:]
		if len(rest) < recHeader+1 {
			break // a partial header: torn
		}
		n := binary.LittleEndian.Uint32(rest[0:])
		if n == 0 || n > maxRecord {
			if allZero(rest) {
				break
			}
			return st, off, fmt.Errorf("%w: record at offset %d: bad length %d", ErrCorrupt, off, n)
		}
		end := recHeader + int(n)
		if end > len(rest) {
			break // a partial record: torn
		}
		body := rest[recHeader:end]
		if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(rest[4:]) {
			if end == len(rest) || allZero(rest) {
				break // the last record, torn
			}
			return st, off, fmt.Errorf("%w: record at offset %d: checksum mismatch", ErrCorrupt, off)
		}
		typ, body := body[0], body[1:]
		if !started && typ != recStart {
			return st, off, fmt.Errorf("%w: record at offset %d: want a start record, found type %d", ErrCorrupt, off, typ)
		}
		switch typ {
		case recStart:
			if started || len(body) != 16 {
				return st, off, fmt.Errorf("%w: record at offset %d: misplaced or malformed start record", ErrCorrupt, off)
			}
			st.snapIndex = binary.LittleEndian.Uint64(body[0:])
			st.snapTerm = binary.LittleEndian.Uint64(body[8:])
			started = true
		case recEntry:
			var e raftpb.Entry
			if err := e.Unmarshal(body); err != nil {
				return st, off, fmt.Errorf("%w: record at offset %d: %w", ErrCorrupt, off, err)
			}
			if err := st.append(e); err != nil {
				return st, off, fmt.Errorf("%w: record at offset %d: %w", ErrCorrupt, off, err)
			}
		case recState:
			var hs raftpb.HardState
			if err := hs.Unmarshal(body); err != nil {
				return st, off, fmt.Errorf("%w: record at offset %d: %w", ErrCorrupt, off, err)
			}
			st.hs = hs
		default:
			return st, off, fmt.Errorf("%w: record at offset %d: unknown type %d", ErrCorrupt, off, typ)
		}
		off += end
	}
	if !started {
		return st, off, fmt.Errorf("%w: no start record", ErrCorrupt)
	}
	// The snapshot's index is committed even if no hard state says so.
	st.hs.Commit = max(st.hs.Commit, st.snapIndex)
	if st.hs.Commit > st.lastIndex() {
		return st, off, fmt.Errorf("%w: commit index %d past the last entry %d", ErrCorrupt, st.hs.Commit, st.lastIndex())
	}
	return st, off, nil
}

// peekStart reads a WAL file's start record, if it has a whole one.
func peekStart(data []byte) (index, term uint64, ok bool) {
	const size = recHeader + 1 + 16
	if len(data) < size || binary.LittleEndian.Uint32(data) != 17 || data[recHeader] != recStart ||
		crc32.Checksum(data[recHeader:size], castagnoli) != binary.LittleEndian.Uint32(data[4:]) {
		return 0, 0, false
	}
	return binary.LittleEndian.Uint64(data[recHeader+1:]), binary.LittleEndian.Uint64(data[recHeader+9:]), true
}

// append adds e, replacing the entries at its index and after, as a new
// leader's entries replace an old suffix.
func (s *walState) append(e raftpb.Entry) error {
	last := s.lastIndex()
	switch {
	case e.Index <= s.snapIndex:
		return fmt.Errorf("entry %d at or below the snapshot %d", e.Index, s.snapIndex)
	case e.Index > last+1:
		return fmt.Errorf("entry %d leaves a gap after %d", e.Index, last)
	}
	s.entries = s.entries[:e.Index-s.snapIndex-1]
	prevTerm := s.snapTerm
	if n := len(s.entries); n > 0 {
		prevTerm = s.entries[n-1].Term
	}
	if e.Term < prevTerm {
		return fmt.Errorf("entry %d has term %d below its predecessor's %d", e.Index, e.Term, prevTerm)
	}
	s.entries = append(s.entries, e)
	return nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// wal appends to the current WAL file. It is used only by the Ready
// loop (and by Start before the loop runs).
type wal struct {
	fs  vfs.FS
	dir string
	// f is the current WAL file, opened for appending; nil after close.
	f vfs.File
	// seq is f's sequence number.
	seq uint64
	// buf is reused for each write.
	buf []byte
}

func walName(seq uint64) string { return fmt.Sprintf("wal-%016x.log", seq) }

// parseWALName returns the sequence number of a WAL file name.
func parseWALName(name string) (uint64, bool) {
	var seq uint64
	if len(name) != len("wal-0000000000000000.log") {
		return 0, false
	}
	if _, err := fmt.Sscanf(name, "wal-%016x.log", &seq); err != nil {
		return 0, false
	}
	return seq, walName(seq) == name
}

// save appends entries and, when hs is not nil, a hard state after them,
// in one write, and syncs when sync is set.
func (w *wal) save(ents []raftpb.Entry, hs *raftpb.HardState, sync bool) error {
	buf, err := appendEntries(w.buf[:0], ents)
	if err != nil {
		return err
	}
	if hs != nil {
		if buf, err = appendState(buf, *hs); err != nil {
			return err
		}
	}
	w.buf = buf[:0]
	if len(buf) > 0 {
		if _, err := w.f.Write(buf); err != nil {
			return fmt.Errorf("raftnode: writing the WAL: %w", err)
		}
	}
	if sync {
		if err := w.f.Sync(); err != nil {
			return fmt.Errorf("raftnode: syncing the WAL: %w", err)
		}
	}
	return nil
}

// create writes a new WAL file with sequence seq holding a start record
// for the snapshot (index, term), ents and hs, under a temporary name that
// is synced and renamed into place, and makes it the current file. The
// previous file is closed but stays on disk (see removeOthers).
func (w *wal) create(seq, index, term uint64, ents []raftpb.Entry, hs raftpb.HardState) error {
	buf := appendStart(nil, index, term)
	buf, err := appendEntries(buf, ents)
	if err != nil {
		return err
	}
	if buf, err = appendState(buf, hs); err != nil {
		return err
	}
	name := filepath.Join(w.dir, walName(seq))
	tmp := name + ".tmp"
	f, err := w.fs.Create(tmp)
	if err != nil {
		return fmt.Errorf("raftnode: %w", err)
	}
	_, err = f.Write(buf)
	if err == nil {
		err = f.Sync()
	}
	if err == nil {
		err = w.fs.Rename(tmp, name)
	}
	if err == nil {
		err = w.fs.SyncDir(w.dir)
	}
	if err != nil {
		f.Close()
		return fmt.Errorf("raftnode: writing %s: %w", name, err)
	}
	if w.f != nil {
		w.f.Close() // it was only appended to, and every append was synced or need not be
	}
	w.f, w.seq = f, seq
	return nil
}

// removeOthers removes every WAL file but the current one, and leftover
// temporary files, then syncs the directory.
func (w *wal) removeOthers() error {
	names, err := w.fs.List(w.dir)
	if err != nil {
		return fmt.Errorf("raftnode: %w", err)
	}
	removed := false
	for _, name := range names {
		seq, isWAL := parseWALName(name)
		if isWAL && seq == w.seq || !isWAL && filepath.Ext(name) != ".tmp" {
			continue
		}
		if err := w.fs.Remove(filepath.Join(w.dir, name)); err != nil {
			return fmt.Errorf("raftnode: %w", err)
		}
		removed = true
	}
	if removed {
		if err := w.fs.SyncDir(w.dir); err != nil {
			return fmt.Errorf("raftnode: %w", err)
		}
	}
	return nil
}

func (w *wal) close() error {
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	return err
}
