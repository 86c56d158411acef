package txn

import (
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/gregor-streaming/gregor/internal/batch"
)

// Log is the coordinator's view of __transaction_state; the broker
// satisfies it with its partition append and read paths.
type Log interface {
	// Append appends one record batch (RecordBatch v2, baseOffset 0) to
	// the partition and calls done once it is durable, or with the
	// error. done may run on any goroutine, even before Append returns.
	Append(partition int32, batch []byte, done func(error))
	// Replay calls fn with each record batch of the partition, from the
	// log start to the high watermark.
	Replay(partition int32, fn func(batch []byte) error) error
}

// Markers is one WriteMarkers call: the marker of a transaction for
// each of its partitions.
type Markers struct {
	ProducerID    int64
	ProducerEpoch int16
	Commit        bool
	// CoordinatorEpoch is the epoch of the coordinator writing them;
	// partitions fence markers of an older one.
	CoordinatorEpoch int32
	// TransactionVersion is 2 when the transaction used KIP-890's
	// transactions v2 (its markers carry a bumped epoch), else 0.
	TransactionVersion int16
	Partitions         []TopicPartition
}

// MarkerWriter writes transaction markers; the broker satisfies it.
type MarkerWriter interface {
	// WriteMarkers appends the commit or abort marker to every
	// partition and calls done with one error per partition (nil: the
	// marker is durable, or the partition no longer exists, so nothing
	// is left to end there). done may run on any goroutine.
	WriteMarkers(m Markers, done func(errs []error))
}

// Config holds the coordinator's broker settings, by their Kafka
// property names.
type Config struct {
	// MaxTimeout is transaction.max.timeout.ms.
	MaxTimeout time.Duration
	// IDExpiration is transactional.id.expiration.ms.
	IDExpiration time.Duration
	// CleanupInterval is
	// transaction.abort.timed.out.transaction.cleanup.interval.ms; the
	// same sweep removes expired transactional IDs.
	CleanupInterval time.Duration
	// MarkerRetryBackoff is the wait before markers that failed are
	// written again.
	MarkerRetryBackoff time.Duration
}

// DefaultConfig returns Kafka's defaults.
func DefaultConfig() Config {
	return Config{
		MaxTimeout:         15 * time.Minute,
		IDExpiration:       7 * 24 * time.Hour,
		CleanupInterval:    10 * time.Second,
		MarkerRetryBackoff: 100 * time.Millisecond,
	}
}

// Clock is the coordinator's time source.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f on its own goroutine after d.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a Clock's pending call.
type Timer interface{ Stop() bool }

// RealClock is the system clock; NowFunc may override Now.
type RealClock struct{ NowFunc func() time.Time }

// Now implements Clock.
func (c RealClock) Now() time.Time {
	if c.NowFunc != nil {
		return c.NowFunc()
	}
	return time.Now()
}

// AfterFunc implements Clock.
func (RealClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

// Options configure a Coordinator.
type Options struct {
	Config  Config
	Log     Log
	Markers MarkerWriter
	// NewProducerID allocates a producer ID never handed out before.
	NewProducerID func() (int64, error)
	// CoordinatorEpoch is written into markers: the leader epoch of
	// the __transaction_state partitions (0 on a single broker).
	CoordinatorEpoch int32
	Clock            Clock
	Logger           *slog.Logger
}

// Coordinator is the transaction coordinator of the __transaction_state
// partitions this broker leads. See the package doc.
//
// Concurrency: each transactional ID is owned by a mailbox (txnMailbox);
// shard.mu guards a shard's map of mailboxes only; busy counts work
// Close waits for. Lock order: c.mu, shard.mu, mailbox.mu.
type Coordinator struct {
	cfg      Config
	log      Log
	markers  MarkerWriter
	newPID   func() (int64, error)
	epoch    int32
	clock    Clock
	logger   *slog.Logger
	shards   atomic.Pointer[[]*shard]
	busy     atomic.Int64
	idle     chan struct{}
	idleOnce sync.Once
	draining atomic.Bool

	// mu guards sweep and loaded.
	mu     sync.Mutex
	sweep  Timer
	loaded chan struct{}
}

// shard is one __transaction_state partition's transactional IDs.
type shard struct {
	partition int32
	loaded    atomic.Bool
	mu        sync.Mutex
	txns      map[string]*mailbox
}

// New returns a coordinator that serves nothing until Start.
func New(opts Options) *Coordinator {
	if opts.Clock == nil {
		opts.Clock = RealClock{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Config.MarkerRetryBackoff <= 0 {
		opts.Config.MarkerRetryBackoff = 100 * time.Millisecond
	}
	return &Coordinator{
		cfg: opts.Config, log: opts.Log, markers: opts.Markers, newPID: opts.NewProducerID,
		epoch: opts.CoordinatorEpoch, clock: opts.Clock, logger: opts.Logger, idle: make(chan struct{}),
	}
}

// Started reports whether Start ran.
func (c *Coordinator) Started() bool { return c.shards.Load() != nil }

// NumPartitions returns the partition count of __transaction_state; 0
// before Start.
func (c *Coordinator) NumPartitions() int32 {
	if s := c.shards.Load(); s != nil {
		return int32(len(*s))
	}
	return 0
}

// Start begins coordinating the n partitions of __transaction_state:
// each is replayed in the background, and its transactional IDs are
// served (COORDINATOR_LOAD_IN_PROGRESS until then). Later calls do
// nothing.
func (c *Coordinator) Start(n int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.shards.Load() != nil || c.draining.Load() || n <= 0 {
		return
	}
	shards := make([]*shard, n)
	for i := range shards {
		shards[i] = &shard{partition: int32(i), txns: map[string]*mailbox{}}
	}
	c.loaded = make(chan struct{})
	c.shards.Store(&shards)
	var next atomic.Int32
	loaders := min(int(n), 4)
	var running atomic.Int32
	running.Store(int32(loaders))
	for range loaders {
		c.acquire()
		go func() {
			defer c.release()
			defer func() {
				if running.Add(-1) == 0 {
					close(c.loaded)
				}
			}()
			for {
				i := next.Add(1) - 1
				if i >= n {
					return
				}
				c.load(shards[i])
			}
		}()
	}
	c.scheduleSweepLocked()
}

// WaitLoaded waits until every partition is loaded, up to timeout.
func (c *Coordinator) WaitLoaded(timeout time.Duration) bool {
	c.mu.Lock()
	ch := c.loaded
	c.mu.Unlock()
	if ch == nil {
		return false
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-ch:
	case <-t.C:
		return false
	}
	for _, sh := range *c.shards.Load() {
		if !sh.loaded.Load() {
			return false
		}
	}
	return true
}

// closedBit marks c.busy once Close started.
const closedBit = 1 << 62

// enter registers work that Close must wait for; false once closed.
func (c *Coordinator) enter() bool {
	for {
		b := c.busy.Load()
		if b&closedBit != 0 {
			return false
		}
		if c.busy.CompareAndSwap(b, b+1) {
			return true
		}
	}
}

// acquire registers internal work that exists because earlier
// registered work does; allowed while closing.
func (c *Coordinator) acquire() { c.busy.Add(1) }

func (c *Coordinator) release() {
	if c.busy.Add(-1) == closedBit {
		c.idleOnce.Do(func() { close(c.idle) })
	}
}

// Drain is the first step of shutdown: the sweep stops, parked requests
// are answered NOT_COORDINATOR, new ones too. Writes and markers in
// flight complete.
func (c *Coordinator) Drain() {
	c.mu.Lock()
	if c.draining.Swap(true) {
		c.mu.Unlock()
		return
	}
	if c.sweep != nil {
		c.sweep.Stop()
	}
	c.mu.Unlock()
	shards := c.shards.Load()
	if shards == nil {
		return
	}
	for _, sh := range *shards {
		for _, mb := range sh.snapshot() {
			mb.do(func(t *txn, _ time.Time) { t.failParked(kerr.NotCoordinator) })
		}
	}
}

// Close drains, then waits for writes and markers in flight and every
// goroutine. Idempotent.
func (c *Coordinator) Close() {
	c.Drain()
	if c.busy.Or(closedBit)&^closedBit == 0 {
		c.idleOnce.Do(func() { close(c.idle) })
	}
	<-c.idle
}

// ---- loading

func (c *Coordinator) load(sh *shard) {
	start := time.Now()
	backoff := 100 * time.Millisecond
	for {
		metas, err := c.replay(sh.partition)
		if err == nil {
			c.install(sh, metas)
			c.logger.Debug("transaction coordinator partition loaded", "partition", sh.partition,
				"transactional_ids", len(metas), "elapsed", time.Since(start).Round(time.Millisecond))
			return
		}
		c.logger.Error("loading __transaction_state partition failed; retrying", "partition", sh.partition, "err", err)
		if c.draining.Load() {
			return
		}
		time.Sleep(backoff)
		backoff = min(2*backoff, 5*time.Second)
	}
}

// replay returns the latest state of each transactional ID of a
// partition.
func (c *Coordinator) replay(partition int32) (map[string]*meta, error) {
	metas := map[string]*meta{}
	var reader batch.Reader
	err := c.log.Replay(partition, func(b []byte) error {
		h, err := batch.ParseHeader(b)
		if err != nil {
			return err
		}
		if h.IsControl() {
			return nil
		}
		return reader.Records(b, func(r batch.Record) bool {
			id, m, ok, err := decodeRecord(r.Key, r.Value)
			switch {
			case err != nil:
				c.logger.Warn("skipping malformed __transaction_state record", "partition", partition, "offset", r.Offset, "err", err)
			case !ok:
			case m == nil || m.state == Dead:
				delete(metas, id)
			default:
				metas[id] = m
			}
			return true
		})
	})
	if err != nil {
		return nil, err
	}
	return metas, nil
}

// install publishes a loaded partition's transactional IDs and resumes
// the markers of transactions that were completing.
func (c *Coordinator) install(sh *shard, metas map[string]*meta) {
	var resume []*mailbox
	sh.mu.Lock()
	for id, m := range metas {
		t := &txn{id: id, exists: true, meta: *m}
		mb := c.newMailbox(sh, t)
		sh.txns[id] = mb
		if m.state == PrepareCommit || m.state == PrepareAbort {
			resume = append(resume, mb)
		}
	}
	sh.mu.Unlock()
	sh.loaded.Store(true)
	for _, mb := range resume {
		mb.do(func(t *txn, now time.Time) {
			c.logger.Info("completing a transaction found prepared at load", "transactional_id", t.id, "state", t.state.String())
			t.writeMarkers(now)
		})
	}
}

// ---- routing

func (c *Coordinator) route(txnID string) (*shard, *kerr.Error) {
	shards := c.shards.Load()
	if shards == nil || c.draining.Load() {
		return nil, kerr.NotCoordinator
	}
	sh := (*shards)[PartitionFor(txnID, int32(len(*shards)))]
	if !sh.loaded.Load() {
		return nil, kerr.CoordinatorLoadInProgress
	}
	return sh, nil
}

func (sh *shard) get(id string) *mailbox {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.txns[id]
}

func (c *Coordinator) getOrCreate(sh *shard, id string) *mailbox {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	mb := sh.txns[id]
	if mb == nil {
		mb = c.newMailbox(sh, &txn{id: id})
		sh.txns[id] = mb
	}
	return mb
}

func (sh *shard) snapshot() []*mailbox {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	out := make([]*mailbox, 0, len(sh.txns))
	for _, mb := range sh.txns {
		out = append(out, mb)
	}
	return out
}

// removeIf forgets a transactional ID that no longer exists, unless a
// new one took its place or requests wait on it.
func (sh *shard) removeIf(id string, mb *mailbox) {
	sh.mu.Lock()
	if sh.txns[id] == mb {
		delete(sh.txns, id)
	}
	sh.mu.Unlock()
}

// ---- sweep

func (c *Coordinator) scheduleSweepLocked() {
	if c.draining.Load() || c.cfg.CleanupInterval <= 0 {
		return
	}
	c.sweep = c.clock.AfterFunc(c.cfg.CleanupInterval, func() {
		if !c.enter() {
			return
		}
		defer c.release()
		c.Sweep()
		c.mu.Lock()
		c.scheduleSweepLocked()
		c.mu.Unlock()
	})
}

// Sweep aborts transactions open longer than their timeout and removes
// transactional IDs idle for transactional.id.expiration.ms. It runs
// every CleanupInterval.
func (c *Coordinator) Sweep() {
	if !c.enter() {
		return
	}
	defer c.release()
	shards := c.shards.Load()
	if shards == nil {
		return
	}
	nowMs := c.clock.Now().UnixMilli()
	for _, sh := range *shards {
		if !sh.loaded.Load() {
			continue
		}
		for _, mb := range sh.snapshot() {
			// Only transactional IDs with a deadline passed wake their
			// owner (the summary may be a little stale; sweep checks
			// again).
			if s := mb.summary.Load(); s.exists && s.due(nowMs, c.cfg.IDExpiration.Milliseconds()) {
				mb.do(func(t *txn, now time.Time) { t.sweep(now) })
			}
		}
	}
}

// ---- mailbox

// summary is what ListTransactions shows of a transactional ID,
// published by its owner after every run.
type summary struct {
	exists     bool
	state      State
	producerID int64
	startMs    int64
	updateMs   int64
	timeoutMs  int32
}

// due reports whether the sweep has something to do: a transaction past
// its timeout, or an idle ID past its expiration.
func (s *summary) due(nowMs, expirationMs int64) bool {
	switch s.state {
	case Ongoing:
		return nowMs > s.startMs+int64(s.timeoutMs)
	case Empty, CompleteCommit, CompleteAbort:
		return expirationMs > 0 && nowMs-s.updateMs >= expirationMs
	}
	return false
}

// mailbox owns one transactional ID.
type mailbox struct {
	c  *Coordinator
	sh *shard
	id string
	// t is touched only by the running drain loop.
	t       *txn
	summary atomic.Pointer[summary]

	// mu guards queue and running.
	mu      sync.Mutex
	queue   []func(t *txn, now time.Time)
	running bool
}

func (c *Coordinator) newMailbox(sh *shard, t *txn) *mailbox {
	mb := &mailbox{c: c, sh: sh, id: t.id, t: t}
	t.mb = mb
	mb.publish()
	return mb
}

func (mb *mailbox) publish() {
	t := mb.t
	mb.summary.Store(&summary{exists: t.exists, state: t.state, producerID: t.producerID, startMs: t.startMs,
		updateMs: t.updateMs, timeoutMs: t.timeoutMs})
}

// do queues fn to run on the transaction's owner.
func (mb *mailbox) do(fn func(t *txn, now time.Time)) {
	mb.mu.Lock()
	mb.queue = append(mb.queue, fn)
	start := !mb.running
	mb.running = true
	mb.mu.Unlock()
	if start {
		mb.c.acquire()
		go mb.run()
	}
}

func (mb *mailbox) run() {
	defer mb.c.release()
	for {
		mb.mu.Lock()
		q := mb.queue
		mb.queue = nil
		if len(q) == 0 {
			mb.running = false
			mb.mu.Unlock()
			return
		}
		mb.mu.Unlock()
		for _, fn := range q {
			mb.step(fn)
		}
		mb.publish()
		if t := mb.t; !t.exists && !t.removed && t.idle() {
			t.removed = true
			mb.sh.removeIf(mb.id, mb)
		}
	}
}

// step runs one message; a panic is a bug, logged, and the transaction
// carries on rather than the broker going down.
func (mb *mailbox) step(fn func(t *txn, now time.Time)) {
	defer func() {
		if v := recover(); v != nil {
			mb.c.logger.Error("transaction coordinator panic", "transactional_id", mb.id, "panic", v, "stack", string(debug.Stack()))
		}
	}()
	fn(mb.t, mb.c.clock.Now())
}
