package txn

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Leadership tests: the coordinator starts owning no partition (another
// broker leads them all), and partitions move with Elect and Resign, as
// a cluster's leader election moves them.

func noneOwned(int32) bool { return false }

// idsIn returns n transactional IDs of __transaction_state partition p
// (of the harness's 4).
func idsIn(p int32, n int) []string {
	var out []string
	for i := 0; len(out) < n; i++ {
		if id := fmt.Sprintf("txn-%d", i); PartitionFor(id, 4) == p {
			out = append(out, id)
		}
	}
	return out
}

// waitState waits until the transactional ID is in state s.
func (h *harness) waitState(id string, s State) Described {
	h.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		d := h.describe(id)
		if d.Err == nil && d.State == s {
			return d
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("%s: %+v, want %v", id, d, s)
		}
		time.Sleep(time.Millisecond)
	}
}

// waitLoaded waits until every partition is loaded or foreign.
func (h *harness) waitLoaded() {
	h.t.Helper()
	if !h.c.WaitLoaded(5 * time.Second) {
		h.t.Fatal("not loaded")
	}
}

func (l *memLog) count(p int32) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.data[p])
}

// TestTxnElectCompletesPrepared: a transaction left in PrepareCommit by
// the previous coordinator is completed once this one is elected
// leader of its partition, its markers carrying the leader epoch as
// their coordinator epoch (Kafka's coordinatorEpoch).
func TestTxnElectCompletesPrepared(t *testing.T) {
	h := newHarness(t, DefaultConfig())
	r := mustOK(t, h.init("r", -1, -1))
	wantErr(t, h.add("r", r.ProducerID, 0, false, tpA, tpB), nil)
	h.markers.mu.Lock()
	h.markers.fail = errors.New("partition leader unreachable")
	h.markers.mu.Unlock()
	mustOK(t, h.end("r", r.ProducerID, 0, true, false))
	if m := h.markers.last(t); m.CoordinatorEpoch != 0 {
		t.Fatalf("markers of a Start-loaded partition: coordinator epoch %d, want the configured 0", m.CoordinatorEpoch)
	}
	h.c.Close()
	h.markers.mu.Lock()
	h.markers.fail = nil
	h.markers.mu.Unlock()

	h.startOwned(DefaultConfig(), noneOwned)
	wantErr(t, h.describe("r").Err, kerr.NotCoordinator)
	n := h.markers.count()
	h.c.Elect(PartitionFor("r", 4), 7)
	h.waitState("r", CompleteCommit)
	if h.markers.count() <= n {
		t.Fatal("markers were not written after Elect")
	}
	if m := h.markers.last(t); !m.Commit || len(m.Partitions) != 2 || m.CoordinatorEpoch != 7 {
		t.Fatalf("markers after Elect: %+v, want a commit of 2 partitions at coordinator epoch 7", m)
	}
	// Transactions begun under this leadership carry its epoch too.
	wantErr(t, h.add("r", r.ProducerID, 0, false, tpA), nil)
	mustOK(t, h.end("r", r.ProducerID, 0, false, false))
	if m := h.markers.last(t); m.Commit || m.CoordinatorEpoch != 7 {
		t.Fatalf("markers of a new transaction: %+v", m)
	}
	// The other partitions stay another broker's.
	other := idsIn((PartitionFor("r", 4)+1)%4, 1)[0]
	wantErr(t, h.init(other, -1, -1).Err, kerr.NotCoordinator)
}

// TestTxnResign: Resign answers what waits (an EndTxn waiting for its
// markers, with the decided outcome; a parked request,
// NOT_COORDINATOR), refuses every request of the partition, and stops
// marker retries and timeouts; elected again, the coordinator reloads
// the partition and finishes what the log holds.
func TestTxnResign(t *testing.T) {
	cfg := DefaultConfig()
	cfg.CleanupInterval = 0 // sweep by hand
	cfg.MarkerRetryBackoff = 5 * time.Millisecond
	h := &harness{t: t, log: &memLog{}, markers: &memMarkers{}, nextPID: 1000}
	h.startOwned(cfg, noneOwned)
	p := PartitionFor("x", 4)
	h.c.Elect(p, 1)
	h.waitLoaded()
	ids := idsIn(p, 2)
	open, ending := ids[0], ids[1]

	// An open transaction with a short timeout.
	ro := wait(t, func(f func(EndResult)) {
		h.c.InitProducerID(open, InitRequest{TimeoutMs: 20, ProducerID: -1, ProducerEpoch: -1}, f)
	})
	mustOK(t, ro)
	wantErr(t, h.add(open, ro.ProducerID, 0, false, tpA), nil)

	// A transaction whose markers keep failing: its EndTxn waits (v2
	// answers after the first failure; v1 too), a retry is scheduled.
	re := mustOK(t, h.init(ending, -1, -1))
	wantErr(t, h.add(ending, re.ProducerID, 0, true, tpA, tpB), nil)
	h.markers.mu.Lock()
	h.markers.hold = make(chan struct{})
	hold := h.markers.hold
	h.markers.mu.Unlock()
	var once sync.Once
	unhold := func() { once.Do(func() { close(hold) }) }
	t.Cleanup(unhold) // before Close, should the test stop early
	endc := make(chan EndResult, 1)
	h.c.EndTxn(ending, re.ProducerID, 0, true, true, func(e EndResult) { endc <- e })
	// The next transaction's first add parks behind the completion.
	addc := make(chan *kerr.Error, 1)
	deadline := time.Now().Add(5 * time.Second)
	for h.markers.count() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("markers never written")
		}
		time.Sleep(time.Millisecond)
	}
	h.c.AddPartitions(ending, re.ProducerID, 1, []TopicPartition{tpB}, true, func(e *kerr.Error) { addc <- e })
	time.Sleep(5 * time.Millisecond)

	h.c.Resign(p, 2)
	if e := <-endc; e.Err != nil || e.ProducerID != re.ProducerID || e.ProducerEpoch != 1 {
		t.Fatalf("EndTxn waiting for markers after Resign: %+v, want the decided outcome", e)
	}
	if e := <-addc; e != kerr.NotCoordinator {
		t.Fatalf("parked AddPartitions after Resign: %v", e)
	}
	// The markers in flight complete (failing) now: ignored, no retry.
	h.markers.mu.Lock()
	h.markers.fail = errors.New("partition leader unreachable")
	h.markers.hold = nil
	h.markers.mu.Unlock()
	unhold()
	markers, appends := h.markers.count(), h.log.count(p)

	for _, id := range []string{open, ending} {
		wantErr(t, h.init(id, -1, -1).Err, kerr.NotCoordinator)
		wantErr(t, h.add(id, ro.ProducerID, 0, false, tpA), kerr.NotCoordinator)
		wantErr(t, h.end(id, ro.ProducerID, 0, true, false).Err, kerr.NotCoordinator)
		wantErr(t, h.describe(id).Err, kerr.NotCoordinator)
		errs := wait(t, func(f func([]*kerr.Error)) { h.c.Verify(id, ro.ProducerID, 0, []TopicPartition{tpA}, f) })
		wantErr(t, errs[0], kerr.NotCoordinator)
	}
	if ls, err := h.c.List(ListFilter{MinDuration: -1}); err != nil || len(ls) != 0 {
		t.Fatalf("list after Resign: %+v %v", ls, err)
	}
	// Past the open transaction's timeout, and many marker backoffs:
	// nothing is written.
	time.Sleep(40 * time.Millisecond)
	h.c.Sweep()
	time.Sleep(20 * time.Millisecond)
	if n := h.markers.count(); n != markers {
		t.Fatalf("%d markers written after Resign", n-markers)
	}
	if n := h.log.count(p); n != appends {
		t.Fatalf("%d state writes after Resign", n-appends)
	}

	// Elected again: the prepared transaction completes with the new
	// coordinator epoch, and the open one, past its timeout, is
	// aborted by the sweep.
	h.markers.mu.Lock()
	h.markers.fail = nil
	h.markers.mu.Unlock()
	h.c.Elect(p, 3)
	h.waitLoaded()
	d := h.waitState(ending, CompleteCommit)
	if d.ProducerEpoch != 1 {
		t.Fatalf("completed after re-Elect: %+v", d)
	}
	if m := h.markers.last(t); !m.Commit || m.CoordinatorEpoch != 3 || m.ProducerEpoch != 1 {
		t.Fatalf("markers after re-Elect: %+v", m)
	}
	if d := h.describe(open); d.State != Ongoing {
		t.Fatalf("open transaction after re-Elect: %+v", d)
	}
	h.c.Sweep()
	h.waitState(open, CompleteAbort)
	if m := h.markers.last(t); m.Commit || m.CoordinatorEpoch != 3 {
		t.Fatalf("timeout abort markers after re-Elect: %+v", m)
	}
}

// TestTxnResignWriteInFlight: a state write in flight when the
// partition is resigned is answered NOT_COORDINATOR; its late
// completion is ignored.
func TestTxnResignWriteInFlight(t *testing.T) {
	h := &harness{t: t, log: &memLog{}, markers: &memMarkers{}, nextPID: 1000}
	h.startOwned(DefaultConfig(), noneOwned)
	p := PartitionFor("w", 4)
	h.c.Elect(p, 1)
	h.waitLoaded()
	r := mustOK(t, h.init("w", -1, -1))
	release := make(chan struct{})
	h.log.mu.Lock()
	h.log.appendHold = release
	h.log.mu.Unlock()
	var once sync.Once
	unhold := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unhold) // before Close, should the test stop early
	addc := make(chan *kerr.Error, 1)
	h.c.AddPartitions("w", r.ProducerID, 0, []TopicPartition{tpA}, false, func(e *kerr.Error) { addc <- e })
	deadline := time.Now().Add(5 * time.Second)
	for h.log.count(p) < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the write never reached the log")
		}
		time.Sleep(time.Millisecond)
	}
	h.c.Resign(p, 2)
	if e := <-addc; e != kerr.NotCoordinator {
		t.Fatalf("add in flight after Resign: %v", e)
	}
	h.log.mu.Lock()
	h.log.appendHold = nil
	h.log.mu.Unlock()
	unhold()
	// The write had reached the log: a new leadership finds it, as in
	// Kafka (the client's retry is then answered from it).
	h.c.Elect(p, 3)
	h.waitLoaded()
	if d := h.waitState("w", Ongoing); len(d.Partitions) != 1 {
		t.Fatalf("after re-Elect: %+v", d)
	}
	wantErr(t, h.add("w", r.ProducerID, 0, false, tpA), nil)
}

// TestTxnStaleLeadership: stale Elect and Resign calls change nothing,
// before and after Start.
func TestTxnStaleLeadership(t *testing.T) {
	h := &harness{t: t, log: &memLog{}, markers: &memMarkers{}, nextPID: 1000}
	p, q := PartitionFor("s", 4), (PartitionFor("s", 4)+1)%4
	ids := idsIn(q, 1)
	h.c = New(Options{Config: DefaultConfig(), Log: h.log, Markers: h.markers,
		NewProducerID: func() (int64, error) { return 1, nil }, Logger: slog.New(slog.DiscardHandler)})
	t.Cleanup(h.c.Close)
	// Before Start: q elected at 2 (the stale Resign ignored), p
	// resigned at 5 (the Elect at 5 not newer).
	h.c.Elect(q, 2)
	h.c.Resign(q, 1)
	h.c.Resign(p, 5)
	h.c.Elect(p, 5)
	h.c.Start(4, nil)
	h.waitLoaded()
	wantErr(t, h.describe("s").Err, kerr.NotCoordinator)
	wantErr(t, h.describe(ids[0]).Err, kerr.TransactionalIDNotFound)

	h.c.Elect(p, 5)
	h.c.Resign(q, 1)
	h.waitLoaded()
	wantErr(t, h.describe("s").Err, kerr.NotCoordinator)
	wantErr(t, h.describe(ids[0]).Err, kerr.TransactionalIDNotFound)
	mustOK(t, h.init(ids[0], -1, -1))
	if m := h.markers.count(); m != 0 {
		t.Fatalf("%d markers", m)
	}
	h.c.Elect(p, 6)
	h.waitLoaded()
	wantErr(t, h.describe("s").Err, kerr.TransactionalIDNotFound)
}
