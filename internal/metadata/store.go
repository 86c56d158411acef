package metadata

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gregor-streaming/gregor/internal/raftnode"
	"github.com/gregor-streaming/gregor/internal/vfs"
)

const (
	// raftDir is the replicated log's directory inside the store's.
	raftDir = "raft"
	// snapshotEvery is the number of log entries after which the image
	// is snapshotted and the log compacted.
	snapshotEvery = 1000
	// updateTimeout bounds how long Update waits for its batch to be
	// committed: a batch proposed to a leader that lost its office is
	// never committed, and the caller gets an error instead.
	updateTimeout = 30 * time.Second
)

// ErrClosed is returned by Update after Close.
var ErrClosed = errors.New("metadata: store closed")

// ErrTimeout is returned by Update when its batch was not committed in
// time: no quorum of the controllers is reachable, or the batch was
// lost in a leader change. It may still be committed later.
var ErrTimeout = errors.New("metadata: update not committed in time (no controller quorum?)")

// errConflict is the result of a batch computed from an image that a
// batch committed before it made stale; Update computes it again.
var errConflict = errors.New("metadata: batch computed from a stale image")

// Options configure a Store.
type Options struct {
	// NodeID is this node's ID (node.id).
	NodeID int32
	// Voters maps each controller's node ID to the address of its
	// controller listener. Empty: this node alone, a one-voter quorum.
	Voters map[int32]string
	// TLS, when set, secures the controller connections.
	TLS *tls.Config
	// Listener, when set, is the controller listener: the store serves
	// the other controllers' connections on it until Close.
	Listener net.Listener
	// Transport replaces TCP between the controllers (tests).
	Transport raftnode.Transport
	// Dial, when set, connects to the other controllers (tests cut
	// the network with it).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// TickInterval is the Raft tick; 0 = raftnode's default.
	TickInterval time.Duration
}

// Store replicates the metadata log through Raft (internal/raftnode)
// and publishes the current Image.
//
// Every node applies the same committed batches in the same order, so
// every node holds the same images. Update is optimistic: a batch
// carries the offset of the image it was computed from and is applied
// only if no other batch was committed in between; otherwise it is
// computed again from the newer image. So any node can update the
// metadata without a lock held across the cluster, and a batch never
// applies to an image its validation did not see.
//
// Update is serialized by mu; Image is lock-free.
type Store struct {
	fs   vfs.FS
	dir  string
	log  *slog.Logger
	node *raftnode.Node

	img atomic.Pointer[Image]

	// mu serializes Update and Close.
	mu     sync.Mutex
	closed bool

	// ctx is cancelled by Close: an Update waiting for a commit
	// returns.
	ctx    context.Context
	cancel context.CancelFunc

	// attempt is how long propose waits for one proposal before it
	// proposes again.
	attempt time.Duration

	// serving is closed when the controller listener's goroutine has
	// returned; nil without a listener.
	serving chan struct{}

	// watchMu guards watchers.
	watchMu  sync.Mutex
	watchers []chan struct{}
}

// entry is one replicated log entry's payload: a batch of records, or
// a legacy store's image imported into an empty log.
type entry struct {
	// Base is the offset of the image Records were computed from.
	Base    int64    `json:"base"`
	Records []Record `json:"records,omitempty"`
	// Import is a legacy store's snapshot (encodeSnapshot).
	Import []byte `json:"import,omitempty"`
}

// Open opens a single node's store in dir (created if missing).
func Open(fs vfs.FS, dir string, log *slog.Logger) (*Store, error) {
	return OpenOptions(fs, dir, log, Options{})
}

// OpenOptions opens the store in dir (created if missing): it recovers
// the replicated log, imports a legacy store found in dir, and returns
// once the image holds the cluster's ID, which for a quorum of more
// than one node means once a quorum has formed.
func OpenOptions(fs vfs.FS, dir string, log *slog.Logger, opts Options) (*Store, error) {
	if log == nil {
		log = slog.Default()
	}
	if err := fs.MkdirAll(dir); err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	// Make the directory itself durable before anything in it matters.
	if err := fs.SyncDir(filepath.Dir(dir)); err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	legacy, err := hasLegacy(fs, dir)
	if err != nil {
		return nil, err
	}
	if legacy && len(opts.Voters) > 1 {
		return nil, fmt.Errorf("metadata: %s holds a single node's metadata (written before the metadata log was replicated); it cannot join a quorum of %d controllers", dir, len(opts.Voters))
	}
	voters := map[uint64]string{}
	for id, addr := range opts.Voters {
		voters[raftID(id)] = addr
	}
	if len(voters) == 0 {
		voters[raftID(opts.NodeID)] = ""
	}
	if _, ok := voters[raftID(opts.NodeID)]; !ok {
		return nil, fmt.Errorf("metadata: node %d is not one of the controller quorum's voters", opts.NodeID)
	}
	ctx, cancel := context.WithCancel(context.Background())
	tick := opts.TickInterval
	if tick <= 0 {
		tick = raftnode.DefaultTickInterval
	}
	// Two election timeouts (raftnode's is 10 ticks): a lost proposal
	// costs a few seconds, a slow commit is not proposed again at once.
	s := &Store{fs: fs, dir: dir, log: log, ctx: ctx, cancel: cancel, attempt: 20 * tick}
	s.img.Store(Empty())
	node, err := raftnode.Start(raftnode.Config{
		ID:            raftID(opts.NodeID),
		Voters:        voters,
		Dir:           filepath.Join(dir, raftDir),
		FS:            fs,
		SM:            (*machine)(s),
		Log:           log.With("component", "raft"),
		TickInterval:  opts.TickInterval,
		SnapshotEvery: snapshotEvery,
		TLS:           opts.TLS,
		Transport:     opts.Transport,
		Dial:          opts.Dial,
	})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("metadata: %w", err)
	}
	s.node = node
	if l := opts.Listener; l != nil {
		s.serving = make(chan struct{})
		go func() {
			defer close(s.serving)
			if err := node.Serve(l); err != nil && !errors.Is(err, raftnode.ErrStopped) {
				log.Error("metadata: the controller listener failed", "addr", l.Addr(), "err", err)
			}
		}()
	}
	if err := s.bootstrap(legacy); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// bootstrap imports a legacy store (when the replicated log is still
// empty) and names the cluster if nobody has.
func (s *Store) bootstrap(legacy bool) error {
	if legacy {
		if s.Image().Offset < 0 {
			img, err := loadLegacy(s.fs, s.dir)
			if err != nil {
				return err
			}
			data, err := encodeSnapshot(img)
			if err != nil {
				return err
			}
			if _, err := s.propose(entry{Base: -1, Import: data}); err != nil {
				return fmt.Errorf("metadata: importing the legacy store: %w", err)
			}
			s.log.Info("imported the metadata of a data directory written before the metadata log was replicated",
				"dir", s.dir, "topics", len(img.Topics), "cluster_id", img.ClusterID)
		}
		if err := retireLegacy(s.fs, s.dir); err != nil {
			return err
		}
	}
	candidate := NewUUID().String()[:22]
	for {
		_, err := s.Update(func(img *Image) ([]Record, error) {
			if img.ClusterID != "" {
				return nil, nil
			}
			return []Record{{Cluster: &ClusterRecord{ID: candidate}}}, nil
		})
		if err == nil {
			return nil
		}
		if !errors.Is(err, ErrTimeout) {
			return err
		}
		s.log.Warn("waiting for a quorum of the controllers to name the cluster", "err", err)
	}
}

// raftID maps a node ID (0 allowed, as Kafka's) to a Raft ID (> 0).
func raftID(node int32) uint64 { return uint64(node) + 1 }

// Image returns the current image. Never nil.
func (s *Store) Image() *Image { return s.img.Load() }

// Controller returns the node ID of the active controller (the Raft
// leader), or -1 when there is none.
func (s *Store) Controller() int32 {
	if id := s.node.Leader(); id > 0 {
		return int32(id - 1)
	}
	return -1
}

// ControllerSince returns when this node became the active controller
// (the Raft leader), or the zero time while it is not.
func (s *Store) ControllerSince() time.Time { return s.node.LeaderSince() }

// LastHeard returns when this node last received a message from node's
// controller (its Raft voter): on the active controller, which every
// voter answers every tick, that voter's liveness. It is now for this
// node itself and the zero time for a node that is not a voter or was
// not heard from since this node started. A new controller has heard
// from the followers only since ControllerSince.
func (s *Store) LastHeard(node int32) time.Time {
	if node < 0 {
		return time.Time{}
	}
	return s.node.LastHeard(raftID(node))
}

// Watch returns a channel that receives a value (without blocking the
// store: capacity 1) after every image change.
func (s *Store) Watch() <-chan struct{} {
	ch := make(chan struct{}, 1)
	s.watchMu.Lock()
	s.watchers = append(s.watchers, ch)
	s.watchMu.Unlock()
	return ch
}

// Update computes records from the current image with fn and commits
// them: replicated to a quorum, applied and published before Update
// returns the new image. Updates on this node are serialized, so fn
// sees every earlier one of this node; when another node's batch was
// committed between the image fn saw and this batch, fn runs again on
// the newer image. An error from fn aborts without writing; an fn that
// returns no records commits nothing.
func (s *Store) Update(fn func(img *Image) ([]Record, error)) (*Image, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		if s.closed {
			return nil, ErrClosed
		}
		cur := s.img.Load()
		recs, err := fn(cur)
		if err != nil || len(recs) == 0 {
			return cur, err
		}
		// Validate before proposing: a batch that cannot apply is
		// the caller's error, not a log entry every node skips.
		if _, err := Apply(cur, cur.Offset+1, recs); err != nil {
			return nil, err
		}
		next, err := s.propose(entry{Base: cur.Offset, Records: recs})
		if errors.Is(err, errConflict) {
			continue
		}
		return next, err
	}
}

// propose replicates e and returns the image it produced.
//
// A proposal can be lost (forwarded to a leader that just failed, say):
// raft never reports that, so propose proposes e again after each
// attempt's timeout, until updateTimeout. A batch committed twice is
// harmless: the second finds the image moved past its Base and is
// skipped, and this call returns errConflict when only it was seen.
func (s *Store) propose(e entry) (*Image, error) {
	data, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("metadata: encode: %w", err)
	}
	deadline := time.Now().Add(updateTimeout)
	for {
		until := time.Now().Add(s.attempt)
		if until.After(deadline) {
			until = deadline
		}
		ctx, cancel := context.WithDeadline(s.ctx, until)
		res, err := s.node.Propose(ctx, data)
		cancel()
		switch {
		case errors.Is(err, raftnode.ErrStopped) || s.ctx.Err() != nil:
			return nil, ErrClosed
		case errors.Is(err, context.DeadlineExceeded):
			if time.Now().Before(deadline) {
				continue
			}
			return nil, ErrTimeout
		case err != nil:
			return nil, fmt.Errorf("metadata: %w", err)
		}
		switch r := res.(type) {
		case *Image:
			return r, nil
		case error:
			return nil, r
		default:
			return nil, fmt.Errorf("metadata: unexpected apply result %T", res)
		}
	}
}

// Close stops replicating and closes the log. Idempotent.
// StopUpdates makes the Updates waiting for a commit, and every later
// one, return ErrClosed at once: a node shutting down stops waiting for
// commits that may not come (the last voters of a cluster stopping have
// no quorum). Close does it too, after taking the lock an Update holds.
func (s *Store) StopUpdates() { s.cancel() }

func (s *Store) Close() error {
	s.cancel() // an Update waiting for a commit returns
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	err := s.node.Close()
	if s.serving != nil {
		<-s.serving
	}
	return err
}

// publish makes img current and tells the watchers.
func (s *Store) publish(img *Image) {
	s.img.Store(img)
	s.watchMu.Lock()
	for _, ch := range s.watchers {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	s.watchMu.Unlock()
}

// machine is the Store as raftnode's state machine. Its methods run on
// raftnode's apply goroutine.
type machine Store

// Apply implements raftnode.StateMachine. It returns the new image, or
// the error that made every node skip the entry.
func (m *machine) Apply(index uint64, data []byte) any {
	s := (*Store)(m)
	var e entry
	if err := json.Unmarshal(data, &e); err != nil {
		s.log.Error("metadata: skipping an undecodable log entry", "index", index, "err", err)
		return fmt.Errorf("metadata: entry %d: %w", index, err)
	}
	cur := s.img.Load()
	if e.Import != nil {
		if cur.Offset >= 0 {
			return fmt.Errorf("metadata: entry %d: import into a log that is not empty", index)
		}
		img, err := decodeSnapshot(e.Import)
		if err != nil {
			return fmt.Errorf("metadata: entry %d: import: %w", index, err)
		}
		img.Offset = int64(index)
		img.AclsChanged = img.Offset
		s.publish(img)
		return img
	}
	if e.Base != cur.Offset {
		return errConflict
	}
	next, err := Apply(cur, int64(index), e.Records)
	if err != nil {
		// Every node skips it alike: Apply is deterministic.
		s.log.Error("metadata: skipping a batch that does not apply", "index", index, "err", err)
		return err
	}
	s.publish(next)
	return next
}

// Snapshot implements raftnode.StateMachine.
func (m *machine) Snapshot() ([]byte, error) {
	return encodeSnapshot((*Store)(m).img.Load())
}

// Restore implements raftnode.StateMachine.
func (m *machine) Restore(index uint64, data []byte) error {
	img, err := decodeSnapshot(data)
	if err != nil {
		return fmt.Errorf("metadata: snapshot at %d: %w", index, err)
	}
	(*Store)(m).publish(img)
	return nil
}
