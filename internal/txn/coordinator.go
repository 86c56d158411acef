package txn

import (
	"errors"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/gregor-streaming/gregor/internal/batch"
	"github.com/gregor-streaming/gregor/internal/coord"
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
	// CoordinatorEpoch is written into the markers of transactions
	// of partitions Start loads without an Elect (0 on a single
	// broker); a partition loaded by Elect writes the leader epoch it
	// was elected at instead, as Kafka's coordinator epoch is the
	// __transaction_state partition's leader epoch at load.
	CoordinatorEpoch int32
	Clock            Clock
	Logger           *slog.Logger
}

// Coordinator is the transaction coordinator of the __transaction_state
// partitions this broker leads. See the package doc.
//
// Concurrency: each transactional ID is owned by a mailbox; a shard's
// lock (coord.Shard) guards its map of mailboxes only; busy counts work
// Close waits for. Lock order: c.mu, shard, mailbox queue.
type Coordinator struct {
	cfg      Config
	log      Log
	markers  MarkerWriter
	newPID   func() (int64, error)
	epoch    int32
	clock    Clock
	logger   *slog.Logger
	shards   coord.Shards[*shard]
	busy     coord.Busy
	draining atomic.Bool

	// mu guards the fields below, and serves Start, Drain, and Elect
	// and Resign before Start.
	mu    sync.Mutex
	sweep Timer
	// preStart holds the Elect and Resign calls made before Start, by
	// partition: Start applies them (leadership.go).
	preStart map[int32]leadership
}

// shard is one __transaction_state partition's transactional IDs.
type shard = coord.Shard[*mailbox]

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
		epoch: opts.CoordinatorEpoch, clock: opts.Clock, logger: opts.Logger,
	}
}

// Started reports whether Start ran.
func (c *Coordinator) Started() bool { return c.shards.Load() != nil }

// NumPartitions returns the partition count of __transaction_state; 0
// before Start.
func (c *Coordinator) NumPartitions() int32 {
	return int32(len(c.shards.Load()))
}

// Start begins coordinating the n partitions of __transaction_state:
// each is replayed in the background, and its transactional IDs are
// served (COORDINATOR_LOAD_IN_PROGRESS until then). Later calls do
// nothing; leadership then changes through Elect and Resign. owned,
// when not nil, says which partitions are this broker's: the others'
// transactional IDs get NOT_COORDINATOR. A partition named by an Elect
// or Resign before Start follows that call instead (owned is then only
// a default).
func (c *Coordinator) Start(n int32, owned func(int32) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.shards.Load() != nil || c.draining.Load() || n <= 0 {
		return
	}
	shards := make([]*shard, n)
	for i := range shards {
		sh := &shard{Partition: int32(i)}
		shards[i] = sh
		if l, ok := c.preStart[int32(i)]; ok {
			l.apply(sh)
		} else if owned != nil && !owned(int32(i)) {
			sh.SetForeign()
		}
	}
	c.preStart = nil
	c.shards.Start(&c.busy, shards, c.load)
	c.scheduleSweepLocked()
}

// WaitLoaded waits until every partition is loaded, up to timeout.
func (c *Coordinator) WaitLoaded(timeout time.Duration) bool {
	return c.shards.WaitLoaded(timeout)
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
	for _, sh := range c.shards.Load() {
		for _, mb := range sh.Snapshot() {
			mb.do(func(t *txn, _ time.Time) { t.failParked(kerr.NotCoordinator) })
		}
	}
}

// Close drains, then waits for writes and markers in flight and every
// goroutine. Idempotent.
func (c *Coordinator) Close() {
	c.Drain()
	c.busy.Close()
}

// ---- loading

// errStale stops a replay whose leadership ended: its results would be
// discarded.
var errStale = errors.New("txn: load of a leadership that ended")

// load replays a partition and installs its transactional IDs,
// retrying a failed replay until shutdown or until the leadership it
// loads for ended. It does nothing when the partition needs no load or
// another loader has it (coord.Shard.Claim).
func (c *Coordinator) load(sh *shard) {
	gen, ok := sh.Claim()
	if !ok {
		return
	}
	// A load under way when shutdown begins still completes (Drain
	// serves commits until Close), as before leadership moved.
	stale := func() bool { return !sh.Current(gen) }
	start := time.Now()
	coord.Retry(func() bool { return c.draining.Load() || stale() }, func() error {
		metas, err := c.replay(sh.Partition, stale)
		if errors.Is(err, errStale) {
			return nil
		}
		if err != nil {
			c.logger.Error("loading __transaction_state partition failed; retrying", "partition", sh.Partition, "err", err)
			return err
		}
		if !c.install(sh, gen, metas) {
			c.logger.Debug("transaction coordinator partition load discarded: its leadership ended", "partition", sh.Partition)
			return nil
		}
		c.logger.Debug("transaction coordinator partition loaded", "partition", sh.Partition,
			"transactional_ids", len(metas), "elapsed", time.Since(start).Round(time.Millisecond))
		return nil
	})
}

// replay returns the latest state of each transactional ID of a
// partition; it stops with errStale once stale reports true.
func (c *Coordinator) replay(partition int32, stale func() bool) (map[string]*meta, error) {
	metas := map[string]*meta{}
	var reader batch.Reader
	err := c.log.Replay(partition, func(b []byte) error {
		if stale() {
			return errStale
		}
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
	if err == nil && stale() {
		err = errStale
	}
	if err != nil {
		return nil, err
	}
	return metas, nil
}

// install publishes a loaded partition's transactional IDs and resumes
// the markers of transactions that were completing, as Kafka's
// TransactionStateManager.loadTransactionsForTxnTopicPartition hands
// them to the marker channel; open transactions keep their start time,
// so they time out as they would have. Nothing is installed when the
// leadership gen it was loaded for ended meanwhile (false).
func (c *Coordinator) install(sh *shard, gen uint64, metas map[string]*meta) bool {
	var resume []*mailbox
	sh.Lock()
	if !sh.Current(gen) {
		sh.Unlock()
		return false
	}
	epoch := c.coordEpochLocked(sh)
	for id, m := range metas {
		t := &txn{id: id, exists: true, meta: *m}
		mb := c.newMailbox(sh, t, epoch)
		sh.PutLocked(id, mb)
		if m.state == PrepareCommit || m.state == PrepareAbort {
			resume = append(resume, mb)
		}
	}
	sh.SetLoaded()
	sh.Unlock()
	for _, mb := range resume {
		mb.do(func(t *txn, now time.Time) {
			c.logger.Info("completing a transaction found prepared at load", "transactional_id", t.id, "state", t.state.String(),
				"coordinator_epoch", t.mb.coordEpoch)
			t.writeMarkers(now)
		})
	}
	return true
}

// coordEpochLocked is the coordinator epoch of the shard's current
// generation: the leader epoch it was elected at, else the configured
// one. The caller holds the shard's lock.
func (c *Coordinator) coordEpochLocked(sh *shard) int32 {
	if e, ok := sh.LeaderEpochLocked(); ok {
		return e
	}
	return c.epoch
}

// ---- routing

func (c *Coordinator) route(txnID string) (*shard, *kerr.Error) {
	shards := c.shards.Load()
	if shards == nil || c.draining.Load() {
		return nil, kerr.NotCoordinator
	}
	sh := shards[PartitionFor(txnID, int32(len(shards)))]
	if err := shardError(sh); err != nil {
		return nil, err
	}
	return sh, nil
}

// shardError is the error for a shard that does not serve its
// transactional IDs: NOT_COORDINATOR for another broker's,
// COORDINATOR_LOAD_IN_PROGRESS while loading; nil when it serves them.
func shardError(sh *shard) *kerr.Error {
	switch {
	case sh.Foreign():
		return kerr.NotCoordinator
	case !sh.Loaded():
		return kerr.CoordinatorLoadInProgress
	}
	return nil
}

// lookup returns the mailbox of a transactional ID of sh (nil when
// there is none), making one for an ID not seen before when create is
// set, or the error of route if the shard stopped serving since route
// (a Resign or Elect in between).
func (c *Coordinator) lookup(sh *shard, id string, create bool) (*mailbox, *kerr.Error) {
	var mb *mailbox
	var ok bool
	if create {
		mb, ok = sh.LookupOrCreate(id, func() *mailbox { return c.newMailbox(sh, &txn{id: id}, c.coordEpochLocked(sh)) })
	} else {
		mb, ok = sh.Lookup(id)
	}
	if !ok {
		if err := shardError(sh); err != nil {
			return nil, err
		}
		return nil, kerr.CoordinatorLoadInProgress
	}
	return mb, nil
}

// ---- sweep

func (c *Coordinator) scheduleSweepLocked() {
	if c.draining.Load() || c.cfg.CleanupInterval <= 0 {
		return
	}
	c.sweep = c.clock.AfterFunc(c.cfg.CleanupInterval, func() {
		if !c.busy.Enter() {
			return
		}
		defer c.busy.Release()
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
	if !c.busy.Enter() {
		return
	}
	defer c.busy.Release()
	nowMs := c.clock.Now().UnixMilli()
	for _, sh := range c.shards.Load() {
		if !sh.Loaded() {
			continue
		}
		for _, mb := range sh.Snapshot() {
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
// published by its owner after every durable change (before answering
// the requests that waited on it) and after every run.
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
	// coordEpoch is the coordinator epoch of the shard's generation the
	// mailbox belongs to, written into its markers. Immutable.
	coordEpoch int32
	// t is touched only by the running drain loop.
	t       *txn
	summary atomic.Pointer[summary]

	// queue holds the messages the drain loop runs.
	queue coord.Queue[message]

	// retired is set when the mailbox's partition was resigned or
	// reloaded (the mailbox left its shard then): the drain loop
	// unloads the transaction, routes requests again and drops its own
	// messages (leadership.go). unloaded is set once it did; owned by
	// the drain loop.
	retired  atomic.Bool
	unloaded bool
}

// message is what a mailbox runs: fn on the transaction, or, once the
// mailbox is retired, redo (a request routed again); a message without
// redo (a write or marker completion, a timer, a sweep) is dropped then.
type message struct {
	fn   func(t *txn, now time.Time)
	redo func()
}

func (c *Coordinator) newMailbox(sh *shard, t *txn, coordEpoch int32) *mailbox {
	mb := &mailbox{c: c, sh: sh, id: t.id, t: t, coordEpoch: coordEpoch}
	t.mb = mb
	mb.publish()
	return mb
}

func (mb *mailbox) publish() {
	t := mb.t
	mb.summary.Store(&summary{exists: t.exists, state: t.state, producerID: t.producerID, startMs: t.startMs,
		updateMs: t.updateMs, timeoutMs: t.timeoutMs})
}

// do queues fn to run on the transaction's owner; a retired mailbox
// drops it.
func (mb *mailbox) do(fn func(t *txn, now time.Time)) { mb.send(message{fn: fn}) }

// request queues a client request: fn on the transaction, or redo once
// the mailbox is retired.
func (mb *mailbox) request(fn func(t *txn, now time.Time), redo func()) {
	mb.send(message{fn: fn, redo: redo})
}

func (mb *mailbox) send(m message) {
	if mb.queue.Push(m) {
		mb.c.busy.Acquire()
		go mb.run()
	}
}

// run is the drain loop; a transactional ID that no longer exists
// leaves its shard once idle, unless a new one took its place or
// requests wait on it.
func (mb *mailbox) run() {
	defer mb.c.busy.Release()
	for {
		q := mb.queue.Take()
		if q == nil {
			return
		}
		for _, m := range q {
			if mb.retired.Load() {
				mb.unload()
				if m.redo != nil {
					m.redo()
				}
				continue
			}
			mb.step(m.fn)
		}
		if mb.retired.Load() {
			mb.unload()
			continue
		}
		mb.publish()
		if t := mb.t; !t.exists && !t.removed && t.idle() {
			t.removed = true
			mb.sh.RemoveIf(mb.id, mb)
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
