package raftnode

import (
	"context"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// Transport carries raft messages between the voters. The default is TCP
// (Node.Serve); tests use an in-memory network with fault injection.
// Raft tolerates lost, delayed, duplicated and reordered messages, so a
// Transport may do any of these.
type Transport interface {
	// Start is called once, by Start before any Send, with where the
	// incoming messages go.
	Start(r Receiver) error
	// Send queues messages for their recipients (m.To) and returns at
	// once: it never waits for a peer. The messages must not be
	// modified.
	Send(msgs []raftpb.Message)
	// Close stops the transport and waits for its goroutines. Node.Close
	// calls it once, after the node stopped sending.
	Close() error
}

// Receiver is the node's side of a Transport.
type Receiver interface {
	// Receive hands a message from a peer to raft. It may block until
	// raft takes it or ctx ends.
	Receive(ctx context.Context, m raftpb.Message) error
	// ReportUnreachable tells raft that messages to the peer id were
	// lost, so it probes the peer instead of streaming to it.
	ReportUnreachable(id uint64)
	// ReportSnapshot tells raft whether a MsgSnap to the peer id was
	// delivered (raft.SnapshotFinish) or not (raft.SnapshotFailure);
	// each MsgSnap must get one report.
	ReportSnapshot(id uint64, status raft.SnapshotStatus)
}
