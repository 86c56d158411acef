package raftnode

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/gregor-streaming/gregor/internal/vfs"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testTick is the tick of the tests' nodes: elections take 100-200ms.
const testTick = 10 * time.Millisecond

// testLog is quiet unless RAFTNODE_LOG is set.
func testLog(t testing.TB) *slog.Logger {
	if os.Getenv("RAFTNODE_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// applied is one entry a testSM applied.
type applied struct {
	Index uint64 `json:"i"`
	Data  string `json:"d"`
}

// testSM records every entry it applies; its snapshot is the whole
// record, so two nodes' records must always be prefixes of one another.
type testSM struct {
	mu       sync.Mutex
	entries  []applied
	last     uint64
	restores int
	// bad records a broken promise (an index out of order).
	bad string
}

func (s *testSM) Apply(index uint64, data []byte) any {
	s.mu.Lock()
	defer s.mu.Unlock()
	if index <= s.last && s.bad == "" {
		s.bad = fmt.Sprintf("Apply(%d) after %d", index, s.last)
	}
	s.entries = append(s.entries, applied{index, string(data)})
	s.last = index
	return index
}

func (s *testSM) Snapshot() ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return json.Marshal(s.entries)
}

func (s *testSM) Restore(index uint64, data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var e []applied
	if err := json.Unmarshal(data, &e); err != nil {
		return err
	}
	if n := len(e); n > 0 && e[n-1].Index > index {
		return fmt.Errorf("snapshot at %d holds entry %d", index, e[n-1].Index)
	}
	s.entries, s.last = e, index
	s.restores++
	return nil
}

func (s *testSM) state() ([]applied, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.entries), s.bad
}

func (s *testSM) data() []string {
	e, _ := s.state()
	d := make([]string, len(e))
	for i, a := range e {
		d[i] = a.Data
	}
	return d
}

// isPrefix reports whether a is a prefix of b.
func isPrefix(a, b []applied) bool { return len(a) <= len(b) && slices.Equal(a, b[:len(a)]) }

// cluster is a test cluster of nodes on a memNet, each with its own
// in-memory file system.
type cluster struct {
	t      testing.TB
	net    *memNet
	ids    []uint64
	voters map[uint64]string
	// snapshotEvery is every node's Config.SnapshotEvery.
	snapshotEvery uint64

	mu    sync.Mutex
	fs    map[uint64]*vfs.MemFS
	sm    map[uint64]*testSM
	nodes map[uint64]*Node // nil when stopped
}

func newCluster(t testing.TB, size int, snapshotEvery uint64) *cluster {
	t.Helper()
	c := &cluster{
		t: t, net: newMemNet(), voters: map[uint64]string{}, snapshotEvery: snapshotEvery,
		fs: map[uint64]*vfs.MemFS{}, sm: map[uint64]*testSM{}, nodes: map[uint64]*Node{},
	}
	for i := 1; i <= size; i++ {
		id := uint64(i)
		c.ids = append(c.ids, id)
		c.voters[id] = ""
		c.fs[id] = vfs.NewMem()
	}
	t.Cleanup(func() {
		for _, id := range c.ids {
			c.stop(id)
		}
	})
	for _, id := range c.ids {
		c.start(id)
	}
	return c
}

func (c *cluster) config(id uint64) Config {
	c.mu.Lock()
	defer c.mu.Unlock()
	sm := &testSM{}
	c.sm[id] = sm
	return Config{
		ID: id, Voters: c.voters, Dir: "/raft", FS: c.fs[id], SM: sm,
		Log: testLog(c.t).With("node", id), TickInterval: testTick,
		SnapshotEvery: c.snapshotEvery, Transport: c.net.transport(id),
	}
}

// start starts node id on its file system, with a new state machine.
func (c *cluster) start(id uint64) *Node {
	c.t.Helper()
	n, err := Start(c.config(id))
	if err != nil {
		c.t.Fatalf("starting node %d: %v", id, err)
	}
	c.mu.Lock()
	c.nodes[id] = n
	c.mu.Unlock()
	return n
}

// stop closes node id, if it runs.
func (c *cluster) stop(id uint64) {
	c.t.Helper()
	c.mu.Lock()
	n := c.nodes[id]
	c.nodes[id] = nil
	c.mu.Unlock()
	if n != nil {
		if err := n.Close(); err != nil {
			c.t.Errorf("closing node %d: %v", id, err)
		}
	}
}

// crash stops node id as a power failure would: its file system keeps
// only what was synced when crash was called (see opts).
func (c *cluster) crash(id uint64, opts vfs.CrashOptions) {
	c.t.Helper()
	c.crashAll([]uint64{id}, opts)
}

// crashAll crashes nodes at one instant. The nodes go on running until
// they are stopped, so they are first cut off: nothing they do after the
// instant may reach anyone.
func (c *cluster) crashAll(ids []uint64, opts vfs.CrashOptions) {
	c.t.Helper()
	var restore []func()
	for _, id := range ids {
		restore = append(restore, c.net.freeze(id, c.ids))
	}
	c.mu.Lock()
	for _, id := range ids {
		c.fs[id] = c.fs[id].CrashWith(opts)
	}
	c.mu.Unlock()
	for _, id := range ids {
		c.stop(id)
	}
	for _, r := range slices.Backward(restore) {
		r()
	}
}

func (c *cluster) node(id uint64) *Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[id]
}

func (c *cluster) stateMachine(id uint64) *testSM {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sm[id]
}

func (c *cluster) running() []uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ids []uint64
	for _, id := range c.ids {
		if c.nodes[id] != nil {
			ids = append(ids, id)
		}
	}
	return ids
}

// waitLeader waits until a running node other than those excluded is
// leader, and returns it.
func (c *cluster) waitLeader(exclude ...uint64) uint64 {
	c.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, id := range c.running() {
			if n := c.node(id); n != nil && n.Leader() == id && !slices.Contains(exclude, id) {
				return id
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	c.t.Fatalf("no leader elected (excluding %v)", exclude)
	return 0
}

// propose proposes data on node id, waiting at most d.
func (c *cluster) propose(id uint64, data string, d time.Duration) (any, error) {
	n := c.node(id)
	if n == nil {
		return nil, ErrStopped
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return n.Propose(ctx, []byte(data))
}

// mustPropose proposes and fails the test unless the proposal applies.
func (c *cluster) mustPropose(id uint64, data string) uint64 {
	c.t.Helper()
	res, err := c.propose(id, data, 10*time.Second)
	if err != nil {
		c.t.Fatalf("propose %q on node %d: %v", data, id, err)
	}
	return res.(uint64)
}

// converge waits until every running node has applied the same entries
// (after a Barrier on each) and returns them.
func (c *cluster) converge() []applied {
	c.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ids := c.running()
		for _, id := range ids {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err := c.node(id).Barrier(ctx)
			cancel()
			if err != nil {
				c.t.Fatalf("barrier on node %d: %v", id, err)
			}
		}
		want, bad := c.stateMachine(ids[0]).state()
		same := bad == ""
		for _, id := range ids[1:] {
			got, bad := c.stateMachine(id).state()
			same = same && bad == "" && slices.Equal(got, want)
		}
		if same {
			return want
		}
		if time.Now().After(deadline) {
			c.checkPrefixes()
			for _, id := range ids {
				e, _ := c.stateMachine(id).state()
				st := c.node(id).rn.Status()
				var last applied
				if len(e) > 0 {
					last = e[len(e)-1]
				}
				c.t.Logf("node %d: %d entries, last %v; raft %+v", id, len(e), last, st)
			}
			c.t.Fatalf("nodes %v did not converge", ids)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// checkPrefixes checks that the running nodes' applied entries are
// prefixes of one another, and that none broke its order.
func (c *cluster) checkPrefixes() {
	c.t.Helper()
	var longest []applied
	var states [][]applied
	for _, id := range c.running() {
		s, bad := c.stateMachine(id).state()
		if bad != "" {
			c.t.Fatalf("node %d: %s", id, bad)
		}
		states = append(states, s)
		if len(s) > len(longest) {
			longest = s
		}
	}
	for i, s := range states {
		if !isPrefix(s, longest) {
			c.t.Fatalf("applied entries diverge: %v is not a prefix of %v (state %d)", s, longest, i)
		}
	}
}
