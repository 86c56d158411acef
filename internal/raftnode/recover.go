package raftnode

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/gregor-streaming/gregor/internal/vfs"
)

const idName = "node-id"

// recover opens the directory: it checks the node ID, loads the snapshot
// into the state machine and the memory storage, replays the WAL into the
// memory storage, and opens the WAL for appending. fresh reports a
// directory with no raft state yet, to bootstrap.
func (n *Node) recover() (fresh bool, err error) {
	fs, dir := n.fs, n.cfg.Dir
	if err := mkdirAll(fs, dir); err != nil {
		return false, err
	}
	names, err := fs.List(dir)
	if err != nil {
		return false, fmt.Errorf("raftnode: %w", err)
	}
	var seqs []uint64
	hasSnap := false
	for _, name := range names {
		if seq, ok := parseWALName(name); ok {
			seqs = append(seqs, seq)
		}
		hasSnap = hasSnap || name == snapName
	}
	if err := n.checkID(len(seqs) > 0 || hasSnap); err != nil {
		return false, err
	}

	var snap raftpb.Snapshot
	if hasSnap {
		data, err := vfs.ReadFile(fs, filepath.Join(dir, snapName))
		if err != nil {
			return false, fmt.Errorf("raftnode: %w", err)
		}
		if snap, err = decodeSnapshot(data); err != nil {
			return false, fmt.Errorf("%w (in %s)", err, dir)
		}
	}
	md := snap.Metadata
	n.wal = &wal{fs: fs, dir: dir}
	if len(seqs) == 0 {
		if hasSnap {
			return false, fmt.Errorf("%w: %s has a snapshot but no WAL", ErrCorrupt, dir)
		}
		if err := n.wal.create(1, 0, 0, nil, raftpb.HardState{}); err != nil {
			return false, err
		}
		n.log.Info("raft log created", "node", n.id, "dir", dir, "voters", sortedIDs(n.cfg.Voters))
		return true, n.wal.removeOthers()
	}

	// The WAL to use is the newest whose start names the snapshot on
	// disk; older ones are obsolete and newer ones belong to a snapshot
	// whose storing a crash interrupted.
	var (
		st    walState
		chose = false
	)
	for _, seq := range slices.Backward(seqs) {
		name := filepath.Join(dir, walName(seq))
		data, err := vfs.ReadFile(fs, name)
		if err != nil {
			return false, fmt.Errorf("raftnode: %w", err)
		}
		index, term, ok := peekStart(data)
		if !ok || index != md.Index || term != md.Term {
			continue
		}
		var valid int
		if st, valid, err = decodeWAL(data); err != nil {
			return false, fmt.Errorf("%w (in %s)", err, name)
		}
		if valid < len(data) {
			n.log.Warn("raft WAL has a torn tail; truncating it", "node", n.id, "file", name,
				"size", len(data), "valid", valid)
			if err := truncate(fs, name, int64(valid)); err != nil {
				return false, err
			}
		}
		f, err := fs.OpenAppend(name)
		if err != nil {
			return false, fmt.Errorf("raftnode: %w", err)
		}
		// After a process crash the WAL's unsynced tail is still in
		// the page cache and was just read: the node must not act on
		// a vote or an entry a later power loss takes back (a vote
		// given twice in a term breaks raft's safety).
		if err := f.Sync(); err != nil {
			f.Close()
			return false, fmt.Errorf("raftnode: syncing %s: %w", name, err)
		}
		n.wal.f, n.wal.seq = f, seq
		chose = true
		break
	}
	if !chose {
		return false, fmt.Errorf("%w: %s has no WAL continuing its snapshot at index %d", ErrCorrupt, dir, md.Index)
	}
	if err := n.wal.removeOthers(); err != nil {
		return false, err
	}

	// Nothing is committed before the first Ready (the bootstrap
	// entries, committed by construction) is saved whole, and nothing is
	// sent before that: a log without a commit index is one whose
	// bootstrap a crash interrupted, and it bootstraps again. Its torn
	// entries, if any, are replaced by the same ones.
	if !hasSnap && st.hs.Commit == 0 {
		return true, nil
	}
	if err := n.checkVoters(md.ConfState, st.entries); err != nil {
		return false, err
	}
	if hasSnap {
		if err := n.sm.Restore(md.Index, snap.Data); err != nil {
			return false, fmt.Errorf("raftnode: restoring the snapshot at %d: %w", md.Index, err)
		}
		if err := n.ms.ApplySnapshot(snap); err != nil {
			return false, fmt.Errorf("raftnode: %w", err)
		}
	}
	if err := n.ms.Append(st.entries); err != nil {
		return false, fmt.Errorf("raftnode: %w", err)
	}
	if err := n.ms.SetHardState(st.hs); err != nil {
		return false, fmt.Errorf("raftnode: %w", err)
	}
	n.hs = st.hs
	n.confState = md.ConfState
	n.snapIndex, n.snapTried, n.applied, n.appliedIndex = md.Index, md.Index, md.Index, md.Index
	n.startIndex = st.hs.Commit
	n.log.Info("raft log recovered", "node", n.id, "dir", dir, "snapshot", md.Index,
		"last_index", st.lastIndex(), "commit", st.hs.Commit, "term", st.hs.Term)
	return false, nil
}

func truncate(fs vfs.FS, name string, size int64) error {
	f, err := fs.OpenAppend(name)
	if err != nil {
		return fmt.Errorf("raftnode: %w", err)
	}
	err = f.Truncate(size)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("raftnode: truncating %s: %w", name, err)
	}
	return nil
}

// checkID checks that the directory belongs to this node, and marks it so
// when it is new.
func (n *Node) checkID(hasLog bool) error {
	name := filepath.Join(n.cfg.Dir, idName)
	data, err := vfs.ReadFile(n.fs, name)
	switch {
	case err == nil:
		s, ok := strings.CutPrefix(string(data), "raftnode ")
		id, perr := strconv.ParseUint(strings.TrimSuffix(s, "\n"), 10, 64)
		if !ok || perr != nil {
			return fmt.Errorf("%w: %s: %q is not a node ID", ErrCorrupt, name, data)
		}
		if id != n.id {
			return fmt.Errorf("raftnode: %s holds the raft log of node %d, not of node %d", n.cfg.Dir, id, n.id)
		}
		return nil
	case !vfs.IsNotExist(err):
		return fmt.Errorf("raftnode: %w", err)
	case hasLog:
		return fmt.Errorf("%w: %s has a raft log but no %s", ErrCorrupt, n.cfg.Dir, idName)
	}
	if err := vfs.WriteFileAtomic(n.fs, n.cfg.Dir, name, fmt.Appendf(nil, "raftnode %d\n", n.id)); err != nil {
		return fmt.Errorf("raftnode: %w", err)
	}
	return nil
}

// checkVoters compares the voters stored in the log (the snapshot's,
// changed by the configuration changes after it) with the configured
// ones: membership changes are not supported yet.
func (n *Node) checkVoters(cs raftpb.ConfState, ents []raftpb.Entry) error {
	voters := map[uint64]bool{}
	for _, id := range cs.Voters {
		voters[id] = true
	}
	for i := range ents {
		e := &ents[i]
		if e.Type != raftpb.EntryConfChange && e.Type != raftpb.EntryConfChangeV2 {
			continue
		}
		cc, err := unmarshalConfChange(e)
		if err != nil {
			return fmt.Errorf("%w: entry %d: %w", ErrCorrupt, e.Index, err)
		}
		for _, c := range cc.AsV2().Changes {
			switch c.Type {
			case raftpb.ConfChangeAddNode:
				voters[c.NodeID] = true
			case raftpb.ConfChangeRemoveNode, raftpb.ConfChangeAddLearnerNode:
				delete(voters, c.NodeID)
			}
		}
	}
	stored := sortedIDs(voters)
	if want := sortedIDs(n.cfg.Voters); !slices.Equal(stored, want) {
		return fmt.Errorf("raftnode: the log in %s has voters %v but the configuration names %v: membership changes are not supported",
			n.cfg.Dir, stored, want)
	}
	return nil
}

// mkdirAll creates dir and its missing parents durably: each directory
// it creates is synced into its parent (and dir into its parent in any
// case, in case an earlier run crashed before doing so).
func mkdirAll(fs vfs.FS, dir string) error {
	dir = filepath.Clean(dir)
	var created []string
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := fs.Stat(d); err == nil {
			break
		} else if !vfs.IsNotExist(err) {
			return fmt.Errorf("raftnode: %w", err)
		}
		created = append(created, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	if err := fs.MkdirAll(dir); err != nil {
		return fmt.Errorf("raftnode: %w", err)
	}
	if len(created) == 0 {
		created = []string{dir}
	}
	for _, d := range created {
		if err := fs.SyncDir(filepath.Dir(d)); err != nil {
			return fmt.Errorf("raftnode: %w", err)
		}
	}
	return nil
}
