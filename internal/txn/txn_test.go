package txn

import (
	"errors"
	"io"
	"log/slog"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// memLog is an in-memory __transaction_state.
type memLog struct {
	mu   sync.Mutex
	data map[int32][][]byte
	// fail makes appends fail.
	fail error
	// hold, when set for a partition, blocks its replay until closed.
	hold map[int32]chan struct{}
	// appendHold, when set, delays appends' completions until closed.
	appendHold chan struct{}
}

func (l *memLog) Append(p int32, b []byte, done func(error)) {
	l.mu.Lock()
	err := l.fail
	if err == nil {
		if l.data == nil {
			l.data = map[int32][][]byte{}
		}
		l.data[p] = append(l.data[p], b)
	}
	hold := l.appendHold
	l.mu.Unlock()
	go func() {
		if hold != nil {
			<-hold
		}
		done(err)
	}()
}

func (l *memLog) Replay(p int32, fn func([]byte) error) error {
	l.mu.Lock()
	hold := l.hold[p]
	l.mu.Unlock()
	if hold != nil {
		<-hold
	}
	l.mu.Lock()
	bs := append([][]byte(nil), l.data[p]...)
	l.mu.Unlock()
	for _, b := range bs {
		if err := fn(b); err != nil {
			return err
		}
	}
	return nil
}

// memMarkers records WriteMarkers calls.
type memMarkers struct {
	mu    sync.Mutex
	calls []Markers
	// fail, when set, fails every partition.
	fail error
	// hold, when set, blocks calls until closed.
	hold chan struct{}
}

func (m *memMarkers) WriteMarkers(mk Markers, done func([]error)) {
	m.mu.Lock()
	m.calls = append(m.calls, mk)
	fail, hold := m.fail, m.hold
	m.mu.Unlock()
	go func() {
		if hold != nil {
			<-hold
		}
		errs := make([]error, len(mk.Partitions))
		for i := range errs {
			errs[i] = fail
		}
		done(errs)
	}()
}

func (m *memMarkers) last(t *testing.T) Markers {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.calls) == 0 {
		t.Fatal("no markers written")
	}
	return m.calls[len(m.calls)-1]
}

func (m *memMarkers) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.calls)
}

type harness struct {
	t       *testing.T
	log     *memLog
	markers *memMarkers
	c       *Coordinator
	mu      sync.Mutex
	nextPID int64
}

func newHarness(t *testing.T, cfg Config) *harness {
	h := &harness{t: t, log: &memLog{}, markers: &memMarkers{}, nextPID: 1000}
	h.start(cfg)
	return h
}

func (h *harness) start(cfg Config) { h.startOwned(cfg, nil) }

// startOwned starts a coordinator whose partitions are those owned
// reports (nil: all).
func (h *harness) startOwned(cfg Config, owned func(int32) bool) {
	h.c = New(Options{
		Config: cfg, Log: h.log, Markers: h.markers,
		NewProducerID: func() (int64, error) {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.nextPID++
			return h.nextPID, nil
		},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	h.c.Start(4, owned)
	if !h.c.WaitLoaded(5 * time.Second) {
		h.t.Fatal("not loaded")
	}
	h.t.Cleanup(h.c.Close)
}

func wait[T any](t *testing.T, f func(func(T))) T {
	t.Helper()
	ch := make(chan T, 1)
	f(func(v T) { ch <- v })
	select {
	case v := <-ch:
		return v
	case <-time.After(5 * time.Second):
		t.Fatal("no answer")
		panic("unreachable")
	}
}

func (h *harness) init(id string, pid int64, epoch int16) EndResult {
	return wait(h.t, func(r func(EndResult)) {
		h.c.InitProducerID(id, InitRequest{TimeoutMs: 60000, ProducerID: pid, ProducerEpoch: epoch}, r)
	})
}

func (h *harness) add(id string, pid int64, epoch int16, implicit bool, tps ...TopicPartition) *kerr.Error {
	return wait(h.t, func(r func(*kerr.Error)) { h.c.AddPartitions(id, pid, epoch, tps, implicit, r) })
}

func (h *harness) end(id string, pid int64, epoch int16, commit, tv2 bool) EndResult {
	return wait(h.t, func(r func(EndResult)) { h.c.EndTxn(id, pid, epoch, commit, tv2, r) })
}

func (h *harness) describe(id string) Described {
	return wait(h.t, func(r func(Described)) { h.c.Describe(id, r) })
}

func mustOK(t *testing.T, r EndResult) EndResult {
	t.Helper()
	if r.Err != nil {
		t.Fatalf("unexpected error %v", r.Err)
	}
	return r
}

func wantErr(t *testing.T, got, want *kerr.Error) {
	t.Helper()
	if got != want {
		t.Fatalf("error %v, want %v", got, want)
	}
}

var tpA, tpB = TopicPartition{"a", 0}, TopicPartition{"b", 1}

func TestTxnV1CommitAndRetries(t *testing.T) {
	h := newHarness(t, DefaultConfig())
	r := mustOK(t, h.init("t1", -1, -1))
	if r.ProducerEpoch != 0 {
		t.Fatalf("first epoch %d", r.ProducerEpoch)
	}
	pid := r.ProducerID
	wantErr(t, h.add("t1", pid, 0, false, tpA, tpB), nil)
	wantErr(t, h.add("t1", pid, 1, false, tpA), kerr.ProducerFenced)
	wantErr(t, h.add("t1", pid+1, 0, false, tpA), kerr.InvalidProducerIDMapping)
	if d := h.describe("t1"); d.State != Ongoing || len(d.Partitions) != 2 {
		t.Fatalf("describe: %+v", d)
	}
	mustOK(t, h.end("t1", pid, 0, true, false))
	m := h.markers.last(t)
	if !m.Commit || m.ProducerEpoch != 0 || len(m.Partitions) != 2 || m.TransactionVersion != 0 {
		t.Fatalf("markers %+v", m)
	}
	if d := h.describe("t1"); d.State != CompleteCommit || d.ProducerEpoch != 0 {
		t.Fatalf("after commit: %+v", d)
	}
	// A retried EndTxn of the same outcome succeeds; the other fails.
	mustOK(t, h.end("t1", pid, 0, true, false))
	wantErr(t, h.end("t1", pid, 0, false, false).Err, kerr.InvalidTxnState)
	// v0/v1: the next transaction continues at the same epoch.
	wantErr(t, h.add("t1", pid, 0, false, tpA), nil)
	mustOK(t, h.end("t1", pid, 0, false, false))
	if m := h.markers.last(t); m.Commit || len(m.Partitions) != 1 {
		t.Fatalf("abort markers %+v", m)
	}
	// No transaction open: EndTxn is INVALID_TXN_STATE.
	h2 := mustOK(t, h.init("t2", -1, -1))
	wantErr(t, h.end("t2", h2.ProducerID, 0, true, false).Err, kerr.InvalidTxnState)
}

func TestTxnV2EpochBumpFencesDelayedRequests(t *testing.T) {
	h := newHarness(t, DefaultConfig())
	r := mustOK(t, h.init("t", -1, -1))
	pid := r.ProducerID
	wantErr(t, h.add("t", pid, 0, true, tpA), nil)
	e := mustOK(t, h.end("t", pid, 0, true, true))
	if e.ProducerID != pid || e.ProducerEpoch != 1 {
		t.Fatalf("EndTxn v5 result %+v, want epoch 1", e)
	}
	if m := h.markers.last(t); m.ProducerEpoch != 1 || m.TransactionVersion != 2 {
		t.Fatalf("v2 markers must carry the bumped epoch: %+v", m)
	}
	// A retry of that EndTxn (old epoch) is recognised.
	if got := mustOK(t, h.end("t", pid, 0, true, true)); got.ProducerEpoch != 1 {
		t.Fatalf("retry result %+v", got)
	}
	wantErr(t, h.end("t", pid, 0, false, true).Err, kerr.InvalidTxnState)
	// The next transaction begins at epoch 1.
	wantErr(t, h.add("t", pid, 1, true, tpB), nil)
	// KAFKA-17754: the previous transaction's delayed EndTxn and
	// produce arrive now: both fenced, the open transaction untouched.
	wantErr(t, h.end("t", pid, 0, false, true).Err, kerr.ProducerFenced)
	wantErr(t, h.end("t", pid, 0, true, true).Err, kerr.ProducerFenced)
	wantErr(t, h.add("t", pid, 0, true, tpA), kerr.ProducerFenced)
	if d := h.describe("t"); d.State != Ongoing || d.ProducerEpoch != 1 || len(d.Partitions) != 1 || d.Partitions[0] != tpB {
		t.Fatalf("open transaction changed: %+v", d)
	}
	e = mustOK(t, h.end("t", pid, 1, false, true))
	if e.ProducerEpoch != 2 {
		t.Fatalf("abort result %+v", e)
	}
	// KIP-890: aborting with nothing open bumps the epoch too.
	if e = mustOK(t, h.end("t", pid, 2, false, true)); e.ProducerEpoch != 3 {
		t.Fatalf("empty abort result %+v", e)
	}
	// Committing with nothing open is INVALID_TXN_STATE.
	wantErr(t, h.end("t", pid, 3, true, true).Err, kerr.InvalidTxnState)
}

func TestTxnZombieFencing(t *testing.T) {
	h := newHarness(t, DefaultConfig())
	old := mustOK(t, h.init("z", -1, -1))
	wantErr(t, h.add("z", old.ProducerID, 0, false, tpA), nil)
	// A second producer with the same ID: its first attempt aborts the
	// open transaction and asks it to retry.
	wantErr(t, h.init("z", -1, -1).Err, kerr.ConcurrentTransactions)
	// The abort completes after that answer (the client retries).
	deadline := time.Now().Add(5 * time.Second)
	for h.describe("z").State != CompleteAbort {
		if time.Now().After(deadline) {
			t.Fatalf("not aborted: %+v", h.describe("z"))
		}
		time.Sleep(time.Millisecond)
	}
	m := h.markers.last(t)
	if m.Commit || m.ProducerEpoch != 1 {
		t.Fatalf("fencing abort markers %+v", m)
	}
	nw := mustOK(t, h.init("z", -1, -1))
	if nw.ProducerID != old.ProducerID || nw.ProducerEpoch != 2 {
		t.Fatalf("new producer %+v", nw)
	}
	// The zombie is fenced everywhere.
	wantErr(t, h.add("z", old.ProducerID, 0, false, tpA), kerr.ProducerFenced)
	wantErr(t, h.end("z", old.ProducerID, 0, true, false).Err, kerr.ProducerFenced)
	// KIP-360: the zombie may not recover with its old epoch either.
	wantErr(t, h.init("z", old.ProducerID, 0).Err, kerr.ProducerFenced)
	// The live producer may: a retry of its own bump is answered
	// without another one.
	if r := mustOK(t, h.init("z", nw.ProducerID, 2)); r.ProducerEpoch != 3 {
		t.Fatalf("KIP-360 bump %+v", r)
	}
	if r := mustOK(t, h.init("z", nw.ProducerID, 2)); r.ProducerEpoch != 3 {
		t.Fatalf("KIP-360 retry %+v", r)
	}
}

func TestTxnTimeoutAborts(t *testing.T) {
	cfg := DefaultConfig()
	cfg.CleanupInterval = 0 // sweep by hand
	h := newHarness(t, cfg)
	r := wait(t, func(f func(EndResult)) {
		h.c.InitProducerID("slow", InitRequest{TimeoutMs: 20, ProducerID: -1, ProducerEpoch: -1}, f)
	})
	mustOK(t, r)
	wantErr(t, h.add("slow", r.ProducerID, 0, true, tpA), nil)
	time.Sleep(30 * time.Millisecond)
	h.c.Sweep()
	deadline := time.Now().Add(5 * time.Second)
	for h.describe("slow").State != CompleteAbort {
		if time.Now().After(deadline) {
			t.Fatalf("not aborted: %+v", h.describe("slow"))
		}
		time.Sleep(5 * time.Millisecond)
	}
	m := h.markers.last(t)
	// v2: fenced (epoch 1), then the abort bumps once more.
	if m.Commit || m.ProducerEpoch != 2 {
		t.Fatalf("timeout markers %+v", m)
	}
	wantErr(t, h.end("slow", r.ProducerID, 0, true, true).Err, kerr.ProducerFenced)
	wantErr(t, h.end("slow", r.ProducerID, 0, false, true).Err, kerr.ProducerFenced)
}

func TestTxnIDExpiration(t *testing.T) {
	cfg := DefaultConfig()
	cfg.CleanupInterval = 0
	cfg.IDExpiration = 10 * time.Millisecond
	h := newHarness(t, cfg)
	r := mustOK(t, h.init("old", -1, -1))
	time.Sleep(20 * time.Millisecond)
	h.c.Sweep()
	deadline := time.Now().Add(5 * time.Second)
	for h.describe("old").Err != kerr.TransactionalIDNotFound {
		if time.Now().After(deadline) {
			t.Fatal("not expired")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if r2 := mustOK(t, h.init("old", -1, -1)); r2.ProducerID == r.ProducerID {
		t.Fatal("an expired transactional ID kept its producer ID")
	}
	// It survives a reload as removed (the tombstone), then re-created.
	h.c.Close()
	h.start(cfg)
	if d := h.describe("old"); d.Err != nil || d.State != Empty {
		t.Fatalf("after reload: %+v", d)
	}
}

func TestTxnReloadResumesMarkers(t *testing.T) {
	h := newHarness(t, DefaultConfig())
	r := mustOK(t, h.init("r", -1, -1))
	wantErr(t, h.add("r", r.ProducerID, 0, false, tpA, tpB), nil)
	// Markers never complete on the first coordinator: it stops with
	// the transaction in PrepareCommit.
	h.markers.mu.Lock()
	h.markers.fail = errors.New("disk on fire")
	h.markers.mu.Unlock()
	mustOK(t, h.end("r", r.ProducerID, 0, true, false)) // answered: the outcome is decided
	if d := h.describe("r"); d.Err != nil || d.State != PrepareCommit {
		t.Fatalf("state %+v", d)
	}
	// Meanwhile requests are told to retry, not parked forever.
	wantErr(t, h.add("r", r.ProducerID, 0, false, tpA), kerr.ConcurrentTransactions)
	h.c.Close()

	h.markers.mu.Lock()
	h.markers.fail = nil
	h.markers.mu.Unlock()
	n := h.markers.count()
	h.start(DefaultConfig())
	deadline := time.Now().Add(5 * time.Second)
	for h.describe("r").State != CompleteCommit {
		if time.Now().After(deadline) {
			t.Fatalf("not completed after reload: %+v", h.describe("r"))
		}
		time.Sleep(5 * time.Millisecond)
	}
	if h.markers.count() <= n {
		t.Fatal("markers were not written again")
	}
	if m := h.markers.last(t); !m.Commit || len(m.Partitions) != 2 {
		t.Fatalf("resumed markers %+v", m)
	}
}

func TestTxnMarkerRetry(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MarkerRetryBackoff = 10 * time.Millisecond
	h := newHarness(t, cfg)
	r := mustOK(t, h.init("m", -1, -1))
	wantErr(t, h.add("m", r.ProducerID, 0, false, tpA), nil)
	h.markers.mu.Lock()
	h.markers.fail = errors.New("transient")
	h.markers.mu.Unlock()
	mustOK(t, h.end("m", r.ProducerID, 0, false, false))
	time.Sleep(30 * time.Millisecond)
	h.markers.mu.Lock()
	h.markers.fail = nil
	h.markers.mu.Unlock()
	deadline := time.Now().Add(5 * time.Second)
	for h.describe("m").State != CompleteAbort {
		if time.Now().After(deadline) {
			t.Fatalf("not completed: %+v", h.describe("m"))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestTxnParksWhileCompleting(t *testing.T) {
	h := newHarness(t, DefaultConfig())
	r := mustOK(t, h.init("p", -1, -1))
	wantErr(t, h.add("p", r.ProducerID, 0, true, tpA), nil)
	h.markers.mu.Lock()
	h.markers.hold = make(chan struct{})
	hold := h.markers.hold
	h.markers.mu.Unlock()
	endc := make(chan EndResult, 1)
	h.c.EndTxn("p", r.ProducerID, 0, true, true, func(e EndResult) { endc <- e })
	// The next transaction's first produce arrives while the markers
	// are being written: it waits rather than fail.
	addc := make(chan *kerr.Error, 1)
	time.Sleep(10 * time.Millisecond)
	h.c.AddPartitions("p", r.ProducerID, 1, []TopicPartition{tpB}, true, func(e *kerr.Error) { addc <- e })
	select {
	case e := <-addc:
		t.Fatalf("answered while completing: %v", e)
	case <-endc:
		t.Fatal("EndTxn answered before its markers")
	case <-time.After(20 * time.Millisecond):
	}
	close(hold)
	if e := <-endc; e.Err != nil || e.ProducerEpoch != 1 {
		t.Fatalf("EndTxn %+v", e)
	}
	if e := <-addc; e != nil {
		t.Fatalf("parked add: %v", e)
	}
	if d := h.describe("p"); d.State != Ongoing || d.ProducerEpoch != 1 {
		t.Fatalf("%+v", d)
	}
}

func TestTxnEpochRotation(t *testing.T) {
	h := newHarness(t, DefaultConfig())
	r := mustOK(t, h.init("x", -1, -1))
	// Bring the epoch to the edge through KIP-360 bumps… by hand.
	mb := h.c.shardFor(t, "x")
	done := make(chan struct{})
	mb.do(func(tx *txn, _ time.Time) { tx.epoch = math.MaxInt16 - 1; close(done) })
	<-done
	wantErr(t, h.add("x", r.ProducerID, math.MaxInt16-1, true, tpA), nil)
	e := mustOK(t, h.end("x", r.ProducerID, math.MaxInt16-1, true, true))
	if e.ProducerID == r.ProducerID || e.ProducerEpoch != 0 {
		t.Fatalf("no rotation: %+v", e)
	}
	if m := h.markers.last(t); m.ProducerID != r.ProducerID || m.ProducerEpoch != math.MaxInt16 {
		t.Fatalf("markers %+v", m)
	}
	// The retry names the old producer ID and is recognised.
	if got := mustOK(t, h.end("x", r.ProducerID, math.MaxInt16-1, true, true)); got.ProducerID != e.ProducerID {
		t.Fatalf("retry %+v", got)
	}
	wantErr(t, h.add("x", e.ProducerID, 0, true, tpA), nil)
}

func (c *Coordinator) shardFor(t *testing.T, id string) *mailbox {
	t.Helper()
	sh, err := c.route(id)
	if err != nil {
		t.Fatal(err)
	}
	mb := sh.Get(id)
	if mb == nil {
		t.Fatal("no mailbox")
	}
	return mb
}

func TestTxnVerifyAndList(t *testing.T) {
	h := newHarness(t, DefaultConfig())
	r := mustOK(t, h.init("v", -1, -1))
	mustOK(t, h.init("w", -1, -1))
	wantErr(t, h.add("v", r.ProducerID, 0, false, tpA), nil)
	errs := wait(t, func(f func([]*kerr.Error)) { h.c.Verify("v", r.ProducerID, 0, []TopicPartition{tpA, tpB}, f) })
	if errs[0] != nil || errs[1] != kerr.InvalidTxnState {
		t.Fatalf("verify %v", errs)
	}
	errs = wait(t, func(f func([]*kerr.Error)) { h.c.Verify("v", r.ProducerID, 1, []TopicPartition{tpA}, f) })
	if errs[0] != kerr.ProducerFenced {
		t.Fatalf("verify stale epoch %v", errs)
	}
	ls, err := h.c.List(ListFilter{MinDuration: -1})
	if err != nil || len(ls) != 2 || ls[0].TransactionalID != "v" || ls[0].State != Ongoing || ls[1].State != Empty {
		t.Fatalf("list %+v %v", ls, err)
	}
	ls, _ = h.c.List(ListFilter{States: []State{Empty}, MinDuration: -1})
	if len(ls) != 1 || ls[0].TransactionalID != "w" {
		t.Fatalf("list Empty %+v", ls)
	}
	if d := h.describe("nope"); d.Err != kerr.TransactionalIDNotFound {
		t.Fatalf("describe unknown %+v", d)
	}
	wantErr(t, h.end("nope", 1, 0, true, true).Err, kerr.InvalidProducerIDMapping)
	wantErr(t, wait(t, func(f func(EndResult)) {
		h.c.InitProducerID("v", InitRequest{TimeoutMs: 1 << 30, ProducerID: -1, ProducerEpoch: -1}, f)
	}).Err, kerr.InvalidTransactionTimeout)
}

func TestPartitionFor(t *testing.T) {
	// Values from Kafka's Utils.abs("…".hashCode()) % 50.
	for id, want := range map[string]int32{"": 0, "a": 97 % 50, "txn-1": abs32(javaStringHashCode("txn-1")) % 50} {
		if got := PartitionFor(id, 50); got != want {
			t.Errorf("PartitionFor(%q) = %d, want %d", id, got, want)
		}
	}
	if got := PartitionFor("polygenelubricants", 50); got != 0 {
		// "polygenelubricants".hashCode() == Integer.MIN_VALUE.
		t.Errorf("MIN_VALUE hash: %d", got)
	}
}

func abs32(h int32) int32 {
	if h < 0 {
		return -h
	}
	return h
}

// TestTxnInitProducerIDExpectedPair: Kafka refuses a producer ID without
// its epoch (or the reverse) as INVALID_REQUEST, and checks any other
// pair as the producer's claim: an epoch that is neither the current
// nor the last one is fenced, not taken as "no claim" (which would bump
// the epoch and fence the live producer).
func TestTxnInitProducerIDExpectedPair(t *testing.T) {
	h := newHarness(t, DefaultConfig())
	r := mustOK(t, h.init("k", -1, -1))
	wantErr(t, h.init("k", r.ProducerID, -1).Err, kerr.InvalidRequest)
	wantErr(t, h.init("k", -1, 0).Err, kerr.InvalidRequest)
	wantErr(t, h.init("k", r.ProducerID, -2).Err, kerr.ProducerFenced)
	if d := h.describe("k"); d.Err != nil || d.ProducerEpoch != 0 {
		t.Fatalf("the refused calls changed the producer: %+v", d)
	}
	// The live producer's own claim still bumps.
	if e := mustOK(t, h.init("k", r.ProducerID, 0)); e.ProducerEpoch != 1 {
		t.Fatalf("KIP-360 bump %+v", e)
	}
}

// TestTxnListWhileLoading: while a __transaction_state partition is
// still loading, Kafka's listTransactionStates answers
// COORDINATOR_LOAD_IN_PROGRESS with no transactions (the admin client
// retries), not a partial list that misses the loading partition's.
func TestTxnListWhileLoading(t *testing.T) {
	h := newHarness(t, DefaultConfig())
	mustOK(t, h.init("a", -1, -1))
	h.c.Close()

	held := (PartitionFor("a", 4) + 1) % 4
	release := make(chan struct{})
	h.log.mu.Lock()
	h.log.hold = map[int32]chan struct{}{held: release}
	h.log.mu.Unlock()
	h.c = New(Options{
		Config: DefaultConfig(), Log: h.log, Markers: h.markers,
		NewProducerID: func() (int64, error) { return 0, errors.New("unused") },
		Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	h.c.Start(4, nil)
	t.Cleanup(h.c.Close)
	var once sync.Once
	unhold := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unhold) // before Close: the held load must finish
	deadline := time.Now().Add(5 * time.Second)
	for h.describe("a").Err != nil {
		if time.Now().After(deadline) {
			t.Fatalf("partition of a not loaded: %+v", h.describe("a"))
		}
		time.Sleep(time.Millisecond)
	}
	ls, err := h.c.List(ListFilter{MinDuration: -1})
	if err != kerr.CoordinatorLoadInProgress || len(ls) != 0 {
		t.Fatalf("list while loading: %+v, %v; want no transactions and COORDINATOR_LOAD_IN_PROGRESS", ls, err)
	}
	unhold()
	if !h.c.WaitLoaded(5 * time.Second) {
		t.Fatal("not loaded")
	}
	if ls, err := h.c.List(ListFilter{MinDuration: -1}); err != nil || len(ls) != 1 {
		t.Fatalf("list once loaded: %+v, %v", ls, err)
	}
}

// TestTxnListShowsAnsweredState: a state a client was just answered with
// is the one ListTransactions shows, even when the client asks from the
// very callback that answered it (the owner publishes before it answers).
func TestTxnListShowsAnsweredState(t *testing.T) {
	h := newHarness(t, DefaultConfig())
	listed := func() State {
		ls, err := h.c.List(ListFilter{MinDuration: -1})
		if err != nil || len(ls) != 1 {
			t.Errorf("list %+v %v", ls, err)
			return -1
		}
		return ls[0].State
	}
	var r EndResult
	var st State
	wait(t, func(f func(EndResult)) {
		h.c.InitProducerID("l", InitRequest{TimeoutMs: 60000, ProducerID: -1, ProducerEpoch: -1},
			func(er EndResult) { r, st = er, listed(); f(er) })
	})
	mustOK(t, r)
	if st != Empty {
		t.Fatalf("listed %v in InitProducerID's answer, want Empty", st)
	}
	wait(t, func(f func(*kerr.Error)) {
		h.c.AddPartitions("l", r.ProducerID, r.ProducerEpoch, []TopicPartition{tpA}, false,
			func(e *kerr.Error) { st = listed(); f(e) })
	})
	if st != Ongoing {
		t.Fatalf("listed %v in AddPartitionsToTxn's answer, want Ongoing", st)
	}
	wait(t, func(f func(EndResult)) {
		h.c.EndTxn("l", r.ProducerID, r.ProducerEpoch, true, false, func(er EndResult) { st = listed(); f(er) })
	})
	if st != PrepareCommit && st != CompleteCommit {
		t.Fatalf("listed %v in EndTxn's answer, want PrepareCommit or CompleteCommit", st)
	}
}
