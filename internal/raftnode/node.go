package raftnode

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"net"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/gregor-streaming/gregor/internal/vfs"
)

// StateMachine is what the log is replicated into. Apply is called for
// every committed normal entry in index order, from one goroutine, on
// every node (deterministic). Its return value is handed to the Propose
// call that proposed the entry, when that call is on this node.
//
// All three methods run on the Node's Ready loop, one at a time; while
// one runs, the node neither persists nor sends, so they should be quick.
// data passed to Apply and Restore must not be modified; it may be kept.
type StateMachine interface {
	Apply(index uint64, data []byte) any
	// Snapshot returns the state as of the last applied index (called on
	// the apply goroutine, between Apply calls).
	Snapshot() ([]byte, error)
	// Restore replaces the whole state with a snapshot taken at index.
	Restore(index uint64, data []byte) error
}

// Config configures a Node.
type Config struct {
	// ID is this node, > 0.
	ID uint64
	// Voters maps every voter's ID (this node's included) to its raft
	// address host:port. Addresses are needed only by the TCP transport,
	// and this node's own only by whoever opens its listener.
	Voters map[uint64]string
	// Dir is where the log and snapshots live; it is created if missing.
	Dir string
	// FS is the file system; nil means vfs.Default.
	FS vfs.FS
	// SM is the state machine. Required.
	SM StateMachine
	// Log receives the node's logs; nil means slog.Default().
	Log *slog.Logger
	// TickInterval is raft's logical clock; default 100ms. An election
	// times out after 10 to 20 ticks; the leader sends heartbeats every
	// tick.
	TickInterval time.Duration
	// SnapshotEvery is how many applied entries trigger a snapshot,
	// after which the log is compacted; default 1000. The leader keeps
	// that many entries before the snapshot in memory, so a follower
	// lagging less than that catches up without a snapshot.
	SnapshotEvery uint64
	// TLS, when set, secures the TCP transport: it is used both for
	// dialing peers and for serving them (Serve), so it needs
	// certificates and the CAs of both sides.
	TLS *tls.Config
	// Dial connects the TCP transport to a peer; nil means a
	// net.Dialer. Tests cut the network between nodes with it.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Transport carries messages between the voters; nil means TCP
	// (see Serve).
	Transport Transport
}

const (
	// DefaultTickInterval is Config.TickInterval's default.
	DefaultTickInterval = 100 * time.Millisecond
	// DefaultSnapshotEvery is Config.SnapshotEvery's default.
	DefaultSnapshotEvery = 1000
	// MaxProposalSize bounds the data of one proposal, so that an entry
	// always fits in a transport frame and a WAL record.
	MaxProposalSize = 32 << 20

	electionTicks  = 10
	heartbeatTicks = 1
	// maxSizePerMsg bounds the entries in one append message.
	maxSizePerMsg = 1 << 20
	// maxInflightMsgs bounds the append messages in flight to a follower.
	maxInflightMsgs = 256
	// maxUncommitted bounds the bytes of proposals the leader holds
	// uncommitted; past it proposals are dropped (and Propose retries).
	maxUncommitted = 256 << 20
	// startLeaderWait bounds, in election timeouts, how long Start waits
	// for a one-voter node to become leader.
	startLeaderWait = 5
)

var (
	// ErrStopped is returned by calls on a Node that has been closed, or
	// that stopped because it could not write to its disk (then it wraps
	// the cause).
	ErrStopped = errors.New("raftnode: stopped")
	// ErrTooLarge is returned by Propose for data over MaxProposalSize.
	ErrTooLarge = errors.New("raftnode: proposal too large")
)

// Node is one voter of a replicated log. Its methods are safe for
// concurrent use.
type Node struct {
	// Immutable after Start.
	id       uint64
	cfg      Config // with defaults filled in
	fs       vfs.FS
	log      *slog.Logger
	sm       StateMachine
	nonce    uint64 // this Start's envelope nonce
	rn       raft.Node
	ms       *raft.MemoryStorage
	tr       Transport
	tcp      *tcpTransport // tr when it is the TCP transport, else nil
	election time.Duration // election timeout (the shortest)

	// Owned by the Ready loop (and by Start before the loop runs; Close
	// after it has exited).
	wal        *wal
	hs         raftpb.HardState // the last one saved
	confState  raftpb.ConfState
	snapIndex  uint64 // index of the snapshot on disk
	snapTried  uint64 // applied index of the last snapshot attempt
	applied    uint64
	startIndex uint64 // the commit index on disk at Start
	campaigned bool

	// seq numbers this Start's proposals; readSeq its read requests.
	seq, readSeq atomic.Uint64
	// leader is raft's leader as of the last Ready, 0 if unknown.
	leader atomic.Uint64
	// termStart is the index of the first entry of this node's latest
	// term as leader, 0 before it first leads.
	termStart atomic.Uint64
	// leaderSince is when this node last became leader (a clock
	// reading), set before leader names it; meaningful only while
	// leader does.
	leaderSince atomic.Int64
	// heard holds, for every other voter, when a message from it last
	// arrived (a clock reading, 0 never). The map is built by Start and
	// never changes; the transport's receiving goroutines store into it
	// without a lock.
	heard map[uint64]*atomic.Int64
	// started is the origin of the clock readings above: nanoseconds
	// since it by the monotonic clock, plus one (never 0), so that a
	// step of the wall clock moves no reading.
	started time.Time

	// mu guards the fields below. It is a leaf: nothing is locked or
	// called under it.
	mu sync.Mutex
	// proposals maps a proposal's sequence number to the channel
	// (capacity 1) of its waiting Propose call.
	proposals map[uint64]chan any
	// reads maps a read request's context to the channel (capacity 1)
	// of its waiting Barrier call.
	reads map[string]chan uint64
	// appliedIndex mirrors applied for waiters. It only grows.
	appliedIndex uint64
	// waiters wait for appliedIndex to reach their index.
	waiters []appliedWaiter
	// leaderChanged is closed, and replaced, when the leader changes.
	leaderChanged chan struct{}

	// stopc is closed by Close to stop the Ready loop.
	stopc chan struct{}
	// done is closed when the Ready loop has exited and raft stopped.
	done chan struct{}
	// err is why the Ready loop exited, nil for Close. Written before
	// done is closed, read after.
	err error

	closeOnce sync.Once
	closeErr  error
}

type appliedWaiter struct {
	index uint64
	ch    chan struct{}
}

// Start opens the node's directory (recovering the log and the latest
// snapshot, or bootstrapping a new log with cfg.Voters) and starts the
// node. It returns once the state machine holds every entry known
// committed on disk, and, for a single voter, once it is leader (waiting
// at most a few election timeouts).
func Start(cfg Config) (*Node, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	n := &Node{
		id:            cfg.ID,
		cfg:           cfg,
		fs:            cfg.FS,
		log:           cfg.Log,
		sm:            cfg.SM,
		ms:            raft.NewMemoryStorage(),
		election:      electionTicks * cfg.TickInterval,
		proposals:     map[uint64]chan any{},
		reads:         map[string]chan uint64{},
		leaderChanged: make(chan struct{}),
		stopc:         make(chan struct{}),
		done:          make(chan struct{}),
		heard:         map[uint64]*atomic.Int64{},
		started:       time.Now(),
	}
	for id := range cfg.Voters {
		if id != cfg.ID {
			n.heard[id] = new(atomic.Int64)
		}
	}
	var nonce [8]byte
	rand.Read(nonce[:])
	n.nonce = binary.LittleEndian.Uint64(nonce[:])

	fresh, err := n.recover()
	if err != nil {
		if n.wal != nil {
			n.wal.close()
		}
		return nil, err
	}
	rc := &raft.Config{
		ID:                        n.id,
		ElectionTick:              electionTicks,
		HeartbeatTick:             heartbeatTicks,
		Storage:                   n.ms,
		Applied:                   n.applied,
		MaxSizePerMsg:             maxSizePerMsg,
		MaxInflightMsgs:           maxInflightMsgs,
		MaxUncommittedEntriesSize: maxUncommitted,
		CheckQuorum:               true,
		PreVote:                   true,
		Logger:                    raftLogger{n.log},
	}
	n.tr = cfg.Transport
	if n.tr == nil {
		n.tcp = newTCPTransport(n.id, cfg.Voters, cfg.TLS, n.election, n.log)
		n.tcp.dialer = cfg.Dial
		n.tr = n.tcp
	}
	if fresh {
		peers := make([]raft.Peer, 0, len(cfg.Voters))
		for _, id := range sortedIDs(cfg.Voters) {
			peers = append(peers, raft.Peer{ID: id})
		}
		n.rn = raft.StartNode(rc, peers)
	} else {
		n.rn = raft.RestartNode(rc)
	}
	if err := n.tr.Start(receiver{n}); err != nil {
		n.rn.Stop()
		n.wal.close()
		return nil, fmt.Errorf("raftnode: starting the transport: %w", err)
	}
	go n.run()

	if err := n.waitApplied(context.Background(), n.startIndex); err != nil {
		n.Close()
		return nil, err
	}
	if len(cfg.Voters) == 1 {
		if err := n.awaitLeadership(); err != nil {
			n.Close()
			return nil, err
		}
	}
	return n, nil
}

// awaitLeadership waits, a few election timeouts at most, until a single
// voter leads and has applied its term's first entry, and so its whole
// log. It fails only when the node stopped.
func (n *Node) awaitLeadership() error {
	ctx, cancel := context.WithTimeout(context.Background(), startLeaderWait*n.election)
	defer cancel()
	for n.termStart.Load() == 0 {
		n.mu.Lock()
		changed := n.leaderChanged
		n.mu.Unlock()
		if n.termStart.Load() != 0 {
			break
		}
		select {
		case <-changed:
		case <-ctx.Done():
			n.log.Warn("a single voter did not become raft leader at start", "node", n.id)
			return nil
		case <-n.done:
			return n.stopErr()
		}
	}
	if err := n.waitApplied(ctx, n.termStart.Load()); err != nil {
		if isDone(n.done) {
			return n.stopErr()
		}
		n.log.Warn("a single voter did not apply its log at start", "node", n.id)
	}
	return nil
}

func (cfg *Config) validate() error {
	if cfg.ID == 0 {
		return errors.New("raftnode: node ID 0 is reserved")
	}
	if _, ok := cfg.Voters[cfg.ID]; !ok {
		return fmt.Errorf("raftnode: node %d is not one of the voters %v", cfg.ID, sortedIDs(cfg.Voters))
	}
	if _, ok := cfg.Voters[0]; ok {
		return errors.New("raftnode: voter ID 0 is reserved")
	}
	if cfg.Transport == nil {
		for id, addr := range cfg.Voters {
			if id != cfg.ID && addr == "" {
				return fmt.Errorf("raftnode: voter %d has no address", id)
			}
		}
	}
	if cfg.Dir == "" {
		return errors.New("raftnode: no directory")
	}
	if cfg.SM == nil {
		return errors.New("raftnode: no state machine")
	}
	cfg.Voters = maps.Clone(cfg.Voters) // the caller may reuse its map
	if cfg.FS == nil {
		cfg.FS = vfs.Default
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.TickInterval <= 0 {
		cfg.TickInterval = DefaultTickInterval
	}
	if cfg.SnapshotEvery == 0 {
		cfg.SnapshotEvery = DefaultSnapshotEvery
	}
	return nil
}

func sortedIDs[V any](m map[uint64]V) []uint64 {
	ids := make([]uint64, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// ID returns this node's ID.
func (n *Node) ID() uint64 { return n.id }

// Leader returns the ID of the leader as this node last knew it, 0 if
// unknown.
func (n *Node) Leader() uint64 { return n.leader.Load() }

// LeaderSince returns when this node last became leader, or the zero
// time while it is not the leader. A new leader has heard little from
// the followers yet (a follower hears only from the leader), so whoever
// judges their liveness by LastHeard counts from here at the earliest.
func (n *Node) LeaderSince() time.Time {
	if n.leader.Load() != n.id {
		return time.Time{}
	}
	return n.clockTime(n.leaderSince.Load())
}

// LastHeard returns when a message from voter id last arrived at this
// node: the zero time if none has since Start (or id is no voter), now
// for this node itself. On the leader it is each voter's liveness, since
// followers answer the heartbeats it sends every tick; on a follower it
// is only fresh for the leader.
func (n *Node) LastHeard(id uint64) time.Time {
	if id == n.id {
		return time.Now()
	}
	if h := n.heard[id]; h != nil {
		return n.clockTime(h.Load())
	}
	return time.Time{}
}

// clock returns a clock reading of now: see started.
func (n *Node) clock() int64 { return int64(time.Since(n.started)) + 1 }

// clockTime is the time of a clock reading; the zero time for 0.
// It carries a monotonic reading, so Sub and Since with it ignore wall
// clock steps.
func (n *Node) clockTime(c int64) time.Time {
	if c == 0 {
		return time.Time{}
	}
	return n.started.Add(time.Duration(c - 1))
}

// Done is closed when the node has stopped: after Close, or when it could
// not write to its disk (the error is logged, and Propose and Barrier
// return an error wrapping ErrStopped and the cause).
func (n *Node) Done() <-chan struct{} { return n.done }

// Serve accepts peer connections on l for the TCP transport until Close,
// then returns ErrStopped. It closes l when it returns. It fails at once
// when the node uses another Transport.
func (n *Node) Serve(l net.Listener) error {
	if n.tcp == nil {
		l.Close()
		return errors.New("raftnode: Serve needs the TCP transport")
	}
	return n.tcp.serve(l)
}

// Propose replicates data and returns the result of the state machine's
// Apply of it, once it is committed and applied on this node. A proposal
// lost before it was committed (its leader lost leadership) never
// returns a result: Propose then waits until ctx ends. Any node may
// propose; a follower forwards to the leader.
func (n *Node) Propose(ctx context.Context, data []byte) (any, error) {
	if len(data) > MaxProposalSize {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrTooLarge, len(data), MaxProposalSize)
	}
	select {
	case <-n.done:
		return nil, n.stopErr()
	default:
	}
	seq := n.seq.Add(1)
	ch := make(chan any, 1)
	n.mu.Lock()
	n.proposals[seq] = ch
	n.mu.Unlock()
	defer func() {
		n.mu.Lock()
		delete(n.proposals, seq)
		n.mu.Unlock()
	}()
	env := envelope{node: n.id, nonce: n.nonce, seq: seq, data: data}.marshal()
	for {
		err := n.rn.Propose(ctx, env)
		if err == nil {
			break
		}
		if !errors.Is(err, raft.ErrProposalDropped) {
			return nil, n.mapErr(err)
		}
		// Raft dropped the proposal without appending it (no leader
		// known, a leadership transfer, too much uncommitted), so it is
		// safe to propose it again once something changed.
		if err := n.pause(ctx); err != nil {
			return nil, err
		}
	}
	var err error
	select {
	case res := <-ch:
		return res, nil
	case <-ctx.Done():
		err = ctx.Err()
	case <-n.done:
		err = n.stopErr()
	}
	select {
	case res := <-ch: // applied just as ctx ended or the node stopped
		return res, nil
	default:
		return nil, err
	}
}

// pause waits for a leader change or a tick, whichever comes first.
func (n *Node) pause(ctx context.Context) error {
	n.mu.Lock()
	changed := n.leaderChanged
	n.mu.Unlock()
	t := time.NewTimer(n.cfg.TickInterval)
	defer t.Stop()
	select {
	case <-changed:
	case <-t.C:
	case <-ctx.Done():
		return ctx.Err()
	case <-n.done:
		return n.stopErr()
	}
	return nil
}

// Barrier is a linearizable read fence: it returns once this node has
// applied every entry that was committed when Barrier was called (raft's
// ReadIndex, confirmed by a quorum's heartbeats).
func (n *Node) Barrier(ctx context.Context) error {
	var key [16]byte
	binary.LittleEndian.PutUint64(key[0:], n.nonce)
	binary.LittleEndian.PutUint64(key[8:], n.readSeq.Add(1))
	ch := make(chan uint64, 1)
	n.mu.Lock()
	n.reads[string(key[:])] = ch
	n.mu.Unlock()
	defer func() {
		n.mu.Lock()
		delete(n.reads, string(key[:]))
		n.mu.Unlock()
	}()
	retry := time.NewTimer(0)
	defer retry.Stop()
	for {
		select {
		case index := <-ch:
			return n.waitApplied(ctx, index)
		case <-retry.C:
			// Ask (again): with no leader known, or across a leader
			// change, raft drops the request or its answer silently.
			if err := n.rn.ReadIndex(ctx, key[:]); err != nil {
				return n.mapErr(err)
			}
			retry.Reset(n.election)
		case <-ctx.Done():
			return ctx.Err()
		case <-n.done:
			return n.stopErr()
		}
	}
}

// waitApplied waits until this node has applied index.
func (n *Node) waitApplied(ctx context.Context, index uint64) error {
	n.mu.Lock()
	if n.appliedIndex >= index {
		n.mu.Unlock()
		return nil
	}
	ch := make(chan struct{})
	n.waiters = append(n.waiters, appliedWaiter{index, ch})
	n.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		n.mu.Lock()
		n.waiters = slices.DeleteFunc(n.waiters, func(w appliedWaiter) bool { return w.ch == ch })
		n.mu.Unlock()
		return ctx.Err()
	case <-n.done:
		return n.stopErr()
	}
}

func isDone(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// mapErr turns raft's errors into the package's.
func (n *Node) mapErr(err error) error {
	if errors.Is(err, raft.ErrStopped) {
		return n.stopErr()
	}
	return err
}

// stopErr is the error of calls on a stopped node. Call it only once the
// node is stopping: raft reported that it stopped (which happens only in
// the Ready loop's exit, just before done is closed), or done is closed.
func (n *Node) stopErr() error {
	<-n.done
	if n.err != nil {
		return fmt.Errorf("%w: %w", ErrStopped, n.err)
	}
	return ErrStopped
}

// Close stops the node: the Ready loop, raft, the transport (and the
// listeners Serve was given), and closes its files. Pending Propose and
// Barrier calls return ErrStopped. Close is idempotent; it returns the
// error that stopped the node, if one did.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		close(n.stopc)
		<-n.done
		n.closeErr = errors.Join(n.err, n.tr.Close(), n.wal.close())
	})
	return n.closeErr
}

// receiver is the Node's side of its Transport.
type receiver struct{ n *Node }

func (r receiver) Receive(ctx context.Context, m raftpb.Message) error {
	if m.To != r.n.id {
		return fmt.Errorf("raftnode: message for node %d reached node %d", m.To, r.n.id)
	}
	// The peer is alive whether or not raft takes the message in time.
	if h := r.n.heard[m.From]; h != nil {
		h.Store(r.n.clock())
	}
	return r.n.mapErr(r.n.rn.Step(ctx, m))
}

func (r receiver) ReportUnreachable(id uint64) { r.n.rn.ReportUnreachable(id) }

func (r receiver) ReportSnapshot(id uint64, status raft.SnapshotStatus) {
	r.n.rn.ReportSnapshot(id, status)
}

// run is the Ready loop.
func (n *Node) run() {
	defer func() {
		n.rn.Stop()
		close(n.done)
	}()
	ticker := time.NewTicker(n.cfg.TickInterval)
	defer ticker.Stop()
	for {
		n.maybeCampaign()
		select {
		case <-ticker.C:
			n.rn.Tick()
		case rd := <-n.rn.Ready():
			if err := n.handleReady(rd); err != nil {
				n.log.Error("raft node stopped: it cannot go on without its disk", "node", n.id, "err", err)
				n.err = err
				return
			}
		case <-n.stopc:
			return
		}
	}
}

// maybeCampaign makes a single voter campaign at once after start, rather
// than after an election timeout, so that a single-node broker starts
// fast. Raft ignores a campaign while committed configuration changes are
// unapplied, hence the wait for the start index.
func (n *Node) maybeCampaign() {
	if n.campaigned || len(n.cfg.Voters) != 1 || n.applied < n.startIndex ||
		!slices.Contains(n.confState.Voters, n.id) {
		return
	}
	n.campaigned = true
	if err := n.rn.Campaign(context.Background()); err != nil {
		n.log.Debug("raft campaign at start failed", "node", n.id, "err", err)
	}
}

// handleReady follows raft's Ready contract: persist, then send, then
// apply, then Advance.
func (n *Node) handleReady(rd raft.Ready) error {
	if !raft.IsEmptyHardState(rd.HardState) {
		n.hs = rd.HardState
	}

	// Persist.
	if !raft.IsEmptySnap(rd.Snapshot) {
		if err := n.saveSnapshot(rd.Snapshot, rd.Entries); err != nil {
			return err
		}
		if err := n.ms.ApplySnapshot(rd.Snapshot); err != nil {
			return fmt.Errorf("raftnode: %w", err)
		}
	} else if len(rd.Entries) > 0 || !raft.IsEmptyHardState(rd.HardState) {
		var hs *raftpb.HardState
		if !raft.IsEmptyHardState(rd.HardState) {
			hs = &rd.HardState
		}
		if err := n.wal.save(rd.Entries, hs, rd.MustSync); err != nil {
			return err
		}
	}
	if err := n.ms.Append(rd.Entries); err != nil {
		return fmt.Errorf("raftnode: %w", err)
	}
	if ss := rd.SoftState; ss != nil && ss.RaftState == raft.StateLeader {
		// The Ready that makes a node leader holds its term's first
		// (empty) entry.
		last, _ := n.ms.LastIndex()
		n.termStart.Store(last)
	}
	if rd.SoftState != nil {
		n.setLeader(rd.SoftState.Lead)
	}
	if !raft.IsEmptyHardState(rd.HardState) {
		if err := n.ms.SetHardState(rd.HardState); err != nil {
			return fmt.Errorf("raftnode: %w", err)
		}
	}

	// Send.
	if len(rd.Messages) > 0 {
		n.tr.Send(rd.Messages)
	}

	// Apply.
	if !raft.IsEmptySnap(rd.Snapshot) {
		md := rd.Snapshot.Metadata
		if err := n.sm.Restore(md.Index, rd.Snapshot.Data); err != nil {
			return fmt.Errorf("raftnode: restoring the snapshot at %d: %w", md.Index, err)
		}
		n.applied, n.snapTried, n.confState = md.Index, md.Index, md.ConfState
		n.log.Info("raft snapshot received from the leader", "node", n.id, "index", md.Index, "term", md.Term)
	}
	for i := range rd.CommittedEntries {
		if err := n.apply(&rd.CommittedEntries[i]); err != nil {
			return err
		}
	}
	n.publishApplied()
	for _, rs := range rd.ReadStates {
		n.mu.Lock()
		if ch, ok := n.reads[string(rs.RequestCtx)]; ok {
			select {
			case ch <- rs.Index:
			default:
			}
		}
		n.mu.Unlock()
	}
	if err := n.maybeSnapshot(); err != nil {
		return err
	}
	n.rn.Advance()
	return nil
}

// setLeader records a leader change and wakes whoever waits for one.
// Only the Ready loop calls it (it alone writes leader).
func (n *Node) setLeader(lead uint64) {
	old := n.leader.Load()
	if old == lead {
		return
	}
	if lead == n.id {
		// Before leader names this node, so that LeaderSince never
		// returns an earlier term's time.
		n.leaderSince.Store(n.clock())
	}
	n.leader.Store(lead)
	switch {
	case lead == 0:
		n.log.Info("raft leader lost", "node", n.id, "old_leader", old, "term", n.hs.Term)
	default:
		n.log.Info("raft leader changed", "node", n.id, "leader", lead, "old_leader", old, "term", n.hs.Term)
	}
	n.mu.Lock()
	close(n.leaderChanged)
	n.leaderChanged = make(chan struct{})
	n.mu.Unlock()
}

// apply applies one committed entry.
func (n *Node) apply(e *raftpb.Entry) error {
	if e.Index <= n.applied {
		return nil // covered by a snapshot
	}
	switch e.Type {
	case raftpb.EntryNormal:
		if len(e.Data) > 0 { // empty: a new leader's entry
			n.applyNormal(e)
		}
	case raftpb.EntryConfChange, raftpb.EntryConfChangeV2:
		cc, err := unmarshalConfChange(e)
		if err != nil {
			return fmt.Errorf("raftnode: entry %d: %w", e.Index, err)
		}
		n.confState = *n.rn.ApplyConfChange(cc)
	}
	n.applied = e.Index
	return nil
}

func unmarshalConfChange(e *raftpb.Entry) (raftpb.ConfChangeI, error) {
	if e.Type == raftpb.EntryConfChange {
		var cc raftpb.ConfChange
		err := cc.Unmarshal(e.Data)
		return cc, err
	}
	var cc raftpb.ConfChangeV2
	err := cc.Unmarshal(e.Data)
	return cc, err
}

func (n *Node) applyNormal(e *raftpb.Entry) {
	env, err := unmarshalEnvelope(e.Data)
	if err != nil {
		// Every node skips it alike, so the state machines stay equal.
		n.log.Error("raft entry skipped: not a proposal envelope", "node", n.id, "index", e.Index, "err", err)
		return
	}
	res := n.sm.Apply(e.Index, env.data)
	if env.node != n.id || env.nonce != n.nonce {
		return
	}
	n.mu.Lock()
	ch, ok := n.proposals[env.seq]
	n.mu.Unlock()
	if ok {
		select {
		case ch <- res:
		default:
		}
	}
}

// publishApplied makes the applied index visible to waiters.
func (n *Node) publishApplied() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.appliedIndex == n.applied {
		return
	}
	n.appliedIndex = n.applied
	n.waiters = slices.DeleteFunc(n.waiters, func(w appliedWaiter) bool {
		if w.index <= n.applied {
			close(w.ch)
			return true
		}
		return false
	})
}

// maybeSnapshot takes a snapshot once SnapshotEvery entries were applied
// since the last, stores it and compacts the log.
func (n *Node) maybeSnapshot() error {
	if n.applied-n.snapTried < n.cfg.SnapshotEvery || n.applied <= n.snapIndex {
		return nil
	}
	n.snapTried = n.applied
	data, err := n.sm.Snapshot()
	if err != nil {
		// The log keeps growing until a later snapshot works; the node
		// stays correct meanwhile.
		n.log.Error("raft snapshot failed", "node", n.id, "index", n.applied, "err", err)
		return nil
	}
	snap, err := n.ms.CreateSnapshot(n.applied, &n.confState, data)
	if err != nil {
		return fmt.Errorf("raftnode: snapshot at %d: %w", n.applied, err)
	}
	last, _ := n.ms.LastIndex()
	var ents []raftpb.Entry
	if last > n.applied {
		if ents, err = n.ms.Entries(n.applied+1, last+1, math.MaxUint64); err != nil {
			return fmt.Errorf("raftnode: snapshot at %d: %w", n.applied, err)
		}
	}
	if err := n.saveSnapshot(snap, ents); err != nil {
		return err
	}
	// Keep SnapshotEvery entries in memory for followers that lag a little.
	if n.applied > n.cfg.SnapshotEvery {
		if err := n.ms.Compact(n.applied - n.cfg.SnapshotEvery); err != nil && !errors.Is(err, raft.ErrCompacted) {
			return fmt.Errorf("raftnode: compacting to %d: %w", n.applied-n.cfg.SnapshotEvery, err)
		}
	}
	n.log.Debug("raft snapshot taken", "node", n.id, "index", n.applied, "bytes", len(data))
	return nil
}

// saveSnapshot stores snap with the entries after it: a new WAL file
// starting at the snapshot, then the snapshot file, then the old WAL
// file removed (see the package doc for why this order survives a crash).
func (n *Node) saveSnapshot(snap raftpb.Snapshot, ents []raftpb.Entry) error {
	md := snap.Metadata
	hs := n.hs
	hs.Commit = max(hs.Commit, md.Index)
	if err := n.wal.create(n.wal.seq+1, md.Index, md.Term, ents, hs); err != nil {
		return err
	}
	data, err := encodeSnapshot(snap)
	if err != nil {
		return fmt.Errorf("raftnode: %w", err)
	}
	if err := vfs.WriteFileAtomic(n.fs, n.cfg.Dir, filepath.Join(n.cfg.Dir, snapName), data); err != nil {
		return fmt.Errorf("raftnode: writing the snapshot: %w", err)
	}
	if err := n.wal.removeOthers(); err != nil {
		return err
	}
	n.snapIndex = md.Index
	return nil
}
