package metadata

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/gregor-streaming/gregor/internal/vfs"
)

// quorum is n stores replicating one metadata log over TCP on loopback,
// each with its own in-memory file system.
type quorum struct {
	t      *testing.T
	voters map[int32]string
	fss    []*vfs.MemFS
	stores []*Store
}

func newQuorum(t *testing.T, n int) *quorum {
	q := &quorum{t: t, voters: map[int32]string{}, stores: make([]*Store, n)}
	ls := make([]net.Listener, n)
	for i := range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls[i] = l
		q.voters[int32(i)] = l.Addr().String()
		q.fss = append(q.fss, vfs.NewMem())
	}
	// Open returns once a quorum named the cluster: open them together.
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			q.stores[i], errs[i] = q.open(i, ls[i])
		}()
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, s := range q.stores {
			if s != nil {
				s.Close()
			}
		}
	})
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return q
}

func (q *quorum) open(i int, l net.Listener) (*Store, error) {
	return OpenOptions(q.fss[i], "/meta", nil, Options{
		NodeID: int32(i), Voters: q.voters, Listener: l, TickInterval: 10 * time.Millisecond,
	})
}

// restart closes store i and opens it again on its address.
func (q *quorum) restart(i int) {
	q.t.Helper()
	q.stores[i].Close()
	q.stores[i] = nil
	var l net.Listener
	var err error
	for range 50 { // the port was just released
		if l, err = net.Listen("tcp", q.voters[int32(i)]); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		q.t.Fatal(err)
	}
	if q.stores[i], err = q.open(i, l); err != nil {
		q.t.Fatal(err)
	}
}

// converge waits until every open store holds the same image offset
// and returns that image of store 0.
func (q *quorum) converge() *Image {
	q.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		same := true
		for _, s := range q.stores[1:] {
			if s.Image().Offset != q.stores[0].Image().Offset {
				same = false
			}
		}
		if same {
			return q.stores[0].Image()
		}
		if time.Now().After(deadline) {
			q.t.Fatal("the stores did not converge")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

var errExists = errors.New("exists")

// createOnce creates topic name unless it exists.
func createOnce(s *Store, name string) error {
	_, err := s.Update(func(img *Image) ([]Record, error) {
		if _, ok := img.Topic(name); ok {
			return nil, errExists
		}
		return createTopic(name, 2), nil
	})
	return err
}

// TestStoreQuorum: three stores name one cluster; updates made on every
// node at once, racing for the same topic, all apply, and apply alike
// everywhere (each batch was validated against the image it applied
// to: the shared topic is created exactly once); a node restarted
// while the others go on catches up.
func TestStoreQuorum(t *testing.T) {
	q := newQuorum(t, 3)
	cluster := q.stores[0].Image().ClusterID
	for i, s := range q.stores {
		if s.Image().ClusterID != cluster || cluster == "" {
			t.Fatalf("node %d: cluster %q, node 0 %q", i, s.Image().ClusterID, cluster)
		}
	}
	const perNode = 15
	var wg sync.WaitGroup
	var mu sync.Mutex
	created := 0
	for i, s := range q.stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range perNode {
				if err := createOnce(s, fmt.Sprintf("n%d-%d", i, k)); err != nil {
					t.Errorf("node %d: %v", i, err)
				}
				switch err := createOnce(s, "shared"); {
				case err == nil:
					mu.Lock()
					created++
					mu.Unlock()
				case !errors.Is(err, errExists):
					t.Errorf("node %d: shared: %v", i, err)
				}
			}
		}()
	}
	wg.Wait()
	if created != 1 {
		t.Fatalf("topic shared created %d times", created)
	}
	img := q.converge()
	if len(img.Topics) != 3*perNode+1 {
		t.Fatalf("%d topics, want %d", len(img.Topics), 3*perNode+1)
	}
	for i, s := range q.stores {
		other := s.Image()
		for name, tp := range img.Topics {
			if o := other.Topics[name]; o == nil || o.ID != tp.ID || len(o.Partitions) != 2 {
				t.Fatalf("node %d: topic %s differs", i, name)
			}
		}
	}
	ctrl := q.stores[0].Controller()
	if ctrl < 0 || ctrl > 2 {
		t.Fatalf("controller %d", ctrl)
	}

	// The controller goes away: the others elect another and go on.
	q.stores[ctrl].Close()
	other := (int(ctrl) + 1) % 3
	if err := createOnce(q.stores[other], "while-down"); err != nil {
		t.Fatal(err)
	}
	q.restart(int(ctrl))
	img = q.converge()
	if img.Topics["while-down"] == nil || img.ClusterID != cluster {
		t.Fatalf("after restart: topics %d cluster %q", len(img.Topics), img.ClusterID)
	}
	if err := createOnce(q.stores[ctrl], "after"); err != nil {
		t.Fatal(err)
	}
	q.converge()
}

// TestStoreLiveness: the controller's LastHeard of each node ID keeps
// advancing while the node runs and stops when it is closed;
// ControllerSince is set on the controller alone. A single node is its
// own controller and hears itself.
func TestStoreLiveness(t *testing.T) {
	single, err := Open(vfs.NewMem(), "/meta", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer single.Close()
	if single.ControllerSince().IsZero() {
		t.Error("a single node's ControllerSince is zero")
	}
	if d := time.Since(single.LastHeard(0)); d < 0 || d > time.Second {
		t.Errorf("a single node last heard itself %v ago", d)
	}
	if !single.LastHeard(1).IsZero() || !single.LastHeard(-1).IsZero() {
		t.Error("a single node heard from another")
	}

	q := newQuorum(t, 3)
	var ctrl int32 = -1
	waitUntil := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitUntil("a controller", func() bool {
		ctrl = q.stores[0].Controller()
		return ctrl >= 0 && q.stores[ctrl].Controller() == ctrl
	})
	c := q.stores[ctrl]
	for i, s := range q.stores {
		if since := s.ControllerSince(); since.IsZero() != (int32(i) != ctrl) {
			t.Errorf("node %d (controller %d): ControllerSince %v", i, ctrl, since)
		}
	}
	// fresh: the controller heard from node within the last 100 ms (ten
	// ticks of 10 ms).
	fresh := func(node int32) bool { return time.Since(c.LastHeard(node)) < 100*time.Millisecond }
	a, b := (ctrl+1)%3, (ctrl+2)%3
	waitUntil("both followers heard", func() bool { return fresh(a) && fresh(b) })
	q.stores[a].Close()
	time.Sleep(50 * time.Millisecond)
	heardA, heardB := c.LastHeard(a), c.LastHeard(b)
	time.Sleep(300 * time.Millisecond)
	if h := c.LastHeard(a); !h.Equal(heardA) {
		t.Errorf("LastHeard of a closed node moved from %v to %v", heardA, h)
	}
	if h := c.LastHeard(b); !h.After(heardB) {
		t.Errorf("LastHeard of a running node stayed at %v", heardB)
	}
}
