// Package raftnode drives a replicated log over etcd-io/raft
// (go.etcd.io/raft/v3): it persists raft's log and snapshots, carries its
// messages between the voters, and applies committed entries to a
// StateMachine. It carries the cluster metadata log (DESIGN.md, "Cluster:
// metadata and controller").
//
// A Node runs one goroutine, the Ready loop, which follows raft's Ready
// contract exactly: it writes the HardState, the entries and any snapshot,
// fsyncs, and only then sends the messages, applies the committed entries
// (calling StateMachine.Apply) and calls Advance. Any node may Propose; a
// follower's proposals are forwarded to the leader by raft. Each proposal
// travels in an envelope naming the proposing node, a random nonce drawn
// at each Start and a sequence number, so the result of Apply reaches the
// Propose call that made the entry and no other, even across restarts.
//
// # On-disk layout
//
// Config.Dir holds three kinds of files:
//
//	node-id                 "raftnode <id>\n": the node the directory belongs to
//	snapshot                the latest snapshot (absent until the first one)
//	wal-<seq>.log           the write-ahead log since that snapshot; seq is
//	                        16 hex digits, one more at every snapshot
//
// A WAL file is a sequence of records:
//
//	length uint32 LE   bytes of type+body, 1..64 MiB
//	crc    uint32 LE   CRC-32C of type+body
//	type   uint8       1 start, 2 entry, 3 hard state
//	body               start: snapshot index uint64 LE, snapshot term uint64 LE
//	                   entry: raftpb.Entry, hard state: raftpb.HardState
//
// Every WAL file opens with a start record naming the snapshot it
// continues (index 0 for none). An entry record at index i replaces the
// entries at i and after (a new leader overwrote them); the last hard
// state record wins. Each Ready is one write of its entry records followed
// by its hard state record, then an fsync.
//
// The snapshot file is
//
//	magic  "GRSNAP01"
//	crc    uint32 LE   CRC-32C of the rest
//	raftpb.Snapshot    metadata (index, term, voters) and the state machine's data
//
// written atomically (vfs.WriteFileAtomic).
//
// A snapshot, taken every Config.SnapshotEvery applied entries or received
// from the leader, is stored in three steps: a new WAL file, starting at
// the snapshot and holding the entries after it, is written under a
// temporary name, synced and renamed; then the snapshot file replaces the
// old one; then the old WAL file is removed. Recovery uses the WAL file
// whose start record names the snapshot on disk and removes the others, so
// a crash between any two steps leaves either the old snapshot and its WAL
// or the new ones.
//
// Recovery truncates a torn tail (a partial record, a bad checksum on the
// last record, or zeros to the end of the file) and refuses to start, with
// an error wrapping ErrCorrupt, on damage before the tail.
//
// # Transport
//
// Messages travel through a Transport; the default is TCP (Node.Serve
// accepts, each node dials every peer). A connection opens with a
// handshake,
//
//	dialer → listener:  "GRFT" version=1 uint8, 3 zero bytes,
//	                    from uint64 BE, to uint64 BE, cluster uint64 BE
//	listener → dialer:  "GRFT" version=1 uint8, status uint8, 2 zero bytes
//
// where cluster is a hash of the sorted voter IDs, so a stray connection
// or a node of another cluster is refused. Then the dialer sends frames of
// a 4-byte big-endian length (at most 64 MiB) and a marshalled
// raftpb.Message. Each peer has one outbound connection fed by a bounded
// queue: when it is full, messages are dropped (raft retransmits), so a
// slow peer never blocks the Ready loop. A snapshot travels as one
// message, so a state machine whose snapshot exceeds 64 MiB cannot catch
// up a follower that fell behind the leader's log (the leader logs an
// error and keeps trying).
//
// Membership changes are not supported: the voters are fixed when a
// directory is first used, and Start refuses a Config whose voters differ.
package raftnode
