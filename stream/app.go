package stream

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Guarantee is an App's processing guarantee.
type Guarantee int

const (
	// AtLeastOnce flushes produced records, then commits the input
	// offsets. After a crash, records since the last commit are
	// processed again: outputs and stores may count them twice.
	AtLeastOnce Guarantee = iota
	// ExactlyOnce commits each commit interval's outputs, changelog
	// updates and input offsets in one transaction (Kafka Streams'
	// exactly_once_v2). read_committed consumers of the outputs see
	// every input record's effect exactly once.
	ExactlyOnce
)

func (g Guarantee) String() string {
	switch g {
	case AtLeastOnce:
		return "at_least_once"
	case ExactlyOnce:
		return "exactly_once"
	}
	return fmt.Sprintf("Guarantee(%d)", int(g))
}

// Config configures an App. ApplicationID and Brokers are required.
type Config struct {
	// ApplicationID names the application: its consumer group, the
	// prefix of its internal topics and of its transactional IDs.
	// Instances with the same ID share the work.
	ApplicationID string
	// Brokers are the seed brokers, host:port.
	Brokers []string
	// ProcessingGuarantee is AtLeastOnce (the default) or ExactlyOnce.
	ProcessingGuarantee Guarantee
	// CommitInterval is how often offsets commit (and, with
	// ExactlyOnce, how long a transaction stays open); a waiting
	// rebalance commits at once. Default 100ms with ExactlyOnce, 1s
	// with AtLeastOnce.
	CommitInterval time.Duration
	// InstanceID identifies this instance; with ExactlyOnce its
	// transactional ID is "<ApplicationID>-<InstanceID>". Give a
	// restarted instance the ID of the one it replaces: starting it
	// fences and aborts the transaction the old one left open, where a
	// new ID leaves that transaction to block read_committed readers
	// until TransactionTimeout. Default: random.
	InstanceID string
	// TransactionTimeout bounds an ExactlyOnce transaction; the broker
	// aborts one left open longer. Default 10s, as Kafka Streams.
	TransactionTimeout time.Duration
	// ReplicationFactor of the internal topics the App creates. Default
	// -1: the broker's default.replication.factor.
	ReplicationFactor int16
	// OnDecodeError decides what happens to a record a source's serde
	// cannot decode (err is a *DecodeError): returning nil skips it
	// (counted in Stats.Skipped), an error stops the App with that
	// error. Default: stop (Kafka Streams' LogAndFail); SkipAndLog is
	// LogAndContinue.
	OnDecodeError func(r *kgo.Record, err error) error
	// Logger receives the App's logs. Default slog.Default().
	Logger *slog.Logger
	// ClientOpts are added to every franz-go client the App makes (TLS,
	// SASL, timeouts); they may override the App's own options.
	ClientOpts []kgo.Opt
}

// DecodeError is a record a source's serde could not decode.
type DecodeError struct {
	Topic     string
	Partition int32
	Offset    int64
	Err       error
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("stream: %s/%d offset %d: %v", e.Topic, e.Partition, e.Offset, e.Err)
}

func (e *DecodeError) Unwrap() error { return e.Err }

// SkipAndLog is an OnDecodeError that logs the record to log (nil:
// slog.Default()) and skips it.
func SkipAndLog(log *slog.Logger) func(*kgo.Record, error) error {
	if log == nil {
		log = slog.Default()
	}
	return func(r *kgo.Record, err error) error {
		log.Warn("stream: skipping a record that does not decode", "topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "err", err)
		return nil
	}
}

// ErrClosed is returned by Run on an App already closed.
var ErrClosed = errors.New("stream: app closed")

// Stats are an App's counters since it started.
type Stats struct {
	// Processed counts records handed to the topology, from source and
	// repartition topics (again after an aborted transaction or a
	// crash).
	Processed int64
	// Skipped counts records OnDecodeError skipped.
	Skipped int64
	// DroppedLate counts records (times windows) that arrived after
	// their window closed, or had a negative timestamp.
	DroppedLate int64
	// Commits and Aborts count offset commits, and with ExactlyOnce
	// transactions committed and aborted.
	Commits, Aborts int64
	// Restored counts changelog records replayed into stores.
	Restored int64
	// Tasks is the number of tasks this instance runs now.
	Tasks int
}

type stats struct {
	processed, skipped, droppedLate, commits, aborts, restored, tasks atomic.Int64
}

const (
	// maxPollRecords bounds the records processed between two chances
	// to commit (Kafka Streams' max.poll.records).
	maxPollRecords = 1000
	// commitTimeout bounds a commit (flush, offsets, EndTxn) and the
	// commit at shutdown.
	commitTimeout = 30 * time.Second
)

// App runs a topology: one instance of an application. Make it with
// New, run it with Run, stop it by cancelling Run's context or with
// Close.
type App struct {
	topo *topology
	cfg  Config
	log  *slog.Logger
	// onProduce is the produce promise, made once.
	onProduce func(*kgo.Record, error)
	// decompressor decodes restored batches.
	decompressor kgo.Decompressor
	stats        stats

	// hookBeforeCommit, set by tests before Run, runs before each
	// commit with the main client; sendHook, set by unit tests without
	// a client, takes the records the App would produce.
	hookBeforeCommit func(*kgo.Client)
	sendHook         func(*kgo.Record)

	started atomic.Bool
	// done is closed when Run returns.
	done chan struct{}
	// cancelMu guards closed and cancel (Run's context).
	cancelMu sync.Mutex
	closed   bool
	cancel   context.CancelFunc

	// The fields below are owned by the Run goroutine. The mutexes
	// further down are leaves: none is held while taking another or
	// while calling into franz-go.

	// cl is the group member and producer; sess wraps it with
	// ExactlyOnce. admCl (and adm on it) serves metadata, topic creation
	// and restores.
	cl    *kgo.Client
	sess  *kgo.GroupTransactSession
	admCl *kgo.Client
	adm   *kadm.Client
	tasks map[taskID]*task
	// open is set while records were processed since the last commit:
	// with ExactlyOnce, while a transaction is open. Rebalances stay
	// blocked (BlockRebalanceOnPoll) while it is set.
	open     bool
	openedAt time.Time
	// broken is set when processing stopped in the middle of a polled
	// batch: committing would skip the rest of the batch.
	broken bool

	// evMu guards events and sessionFailed, written by the group
	// callbacks. Leaf lock.
	evMu   sync.Mutex
	events []groupEvent
	// sessionFailed mirrors GroupTransactSession's revoked/lost flag:
	// set by a revocation or loss, it makes the session abort the next
	// transaction; cleared when a transaction ends.
	sessionFailed bool

	// rebalanceWaiting is set when a rebalance waits for this instance
	// to commit (OnPartitionsCallbackBlocked).
	rebalanceWaiting atomic.Bool
	// pollMu guards pollCancel, which interrupts the current poll;
	// woken records a wake-up that came between two polls.
	pollMu     sync.Mutex
	pollCancel context.CancelFunc
	woken      atomic.Bool

	// errMu guards produceErr, the first failed produce since the last
	// commit.
	errMu      sync.Mutex
	produceErr error
}

type groupEventKind int

const (
	evAssigned groupEventKind = iota
	evRevoked
	evLost
)

func (k groupEventKind) String() string {
	return [...]string{"assigned", "revoked", "lost"}[k]
}

// groupEvent is a partition assignment change reported by the group,
// applied to the tasks by the Run goroutine in order.
type groupEvent struct {
	kind  groupEventKind
	parts map[string][]int32
}

// New checks cfg and compiles the topology into an App.
func New(b *Builder, cfg Config) (*App, error) {
	if b == nil {
		return nil, errors.New("stream: nil Builder")
	}
	if !validName(cfg.ApplicationID) {
		return nil, fmt.Errorf("stream: ApplicationID %q: must be non-empty, of letters, digits, '.', '_' and '-'", cfg.ApplicationID)
	}
	if len(cfg.Brokers) == 0 {
		return nil, errors.New("stream: no Brokers")
	}
	switch cfg.ProcessingGuarantee {
	case AtLeastOnce:
		if cfg.CommitInterval <= 0 {
			cfg.CommitInterval = time.Second
		}
	case ExactlyOnce:
		if cfg.CommitInterval <= 0 {
			cfg.CommitInterval = 100 * time.Millisecond
		}
	default:
		return nil, fmt.Errorf("stream: unknown ProcessingGuarantee %d", cfg.ProcessingGuarantee)
	}
	if cfg.TransactionTimeout <= 0 {
		cfg.TransactionTimeout = 10 * time.Second
	}
	if cfg.InstanceID == "" {
		var id [8]byte
		rand.Read(id[:])
		cfg.InstanceID = hex.EncodeToString(id[:])
	}
	if cfg.ReplicationFactor == 0 {
		cfg.ReplicationFactor = -1
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.OnDecodeError == nil {
		cfg.OnDecodeError = func(_ *kgo.Record, err error) error { return err }
	}
	topo, err := compile(b, cfg.ApplicationID)
	if err != nil {
		return nil, err
	}
	a := &App{
		topo:         topo,
		cfg:          cfg,
		log:          cfg.Logger.With("application.id", cfg.ApplicationID, "instance", cfg.InstanceID),
		decompressor: kgo.DefaultDecompressor(),
		done:         make(chan struct{}),
		tasks:        map[taskID]*task{},
	}
	a.onProduce = a.produced
	return a, nil
}

// Stats returns the App's counters. Safe to call at any time.
func (a *App) Stats() Stats {
	return Stats{
		Processed:   a.stats.processed.Load(),
		Skipped:     a.stats.skipped.Load(),
		DroppedLate: a.stats.droppedLate.Load(),
		Commits:     a.stats.commits.Load(),
		Aborts:      a.stats.aborts.Load(),
		Restored:    a.stats.restored.Load(),
		Tasks:       int(a.stats.tasks.Load()),
	}
}

// Close stops Run, if it runs, and waits for it to return (after its
// last commit and leaving the group). Idempotent; always nil: Run
// reports errors.
func (a *App) Close() error {
	a.cancelMu.Lock()
	a.closed = true
	cancel := a.cancel
	a.cancelMu.Unlock()
	if cancel != nil {
		cancel()
	}
	if a.started.Load() {
		<-a.done
	}
	return nil
}

// Run creates the internal topics the topology needs, joins the
// application's consumer group and processes records until ctx is done
// or a fatal error, which it returns (nil when ctx ended it). Before
// returning it commits the work in progress and leaves the group. Run
// may be called once.
func (a *App) Run(ctx context.Context) error {
	if !a.started.CompareAndSwap(false, true) {
		return errors.New("stream: Run called twice")
	}
	defer close(a.done)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	a.cancelMu.Lock()
	closed := a.closed
	a.cancel = cancel
	a.cancelMu.Unlock()
	if closed {
		return ErrClosed
	}
	if err := a.setup(ctx); err != nil {
		a.closeClients()
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	a.log.Info("stream: running", "guarantee", a.cfg.ProcessingGuarantee, "sub-topologies", len(a.topo.subs))
	return a.shutdown(a.loop(ctx))
}

// setup prepares the topics and makes the clients.
func (a *App) setup(ctx context.Context) error {
	var err error
	a.admCl, err = kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(a.cfg.Brokers...)}, a.cfg.ClientOpts...)...)
	if err != nil {
		return fmt.Errorf("stream: client: %w", err)
	}
	a.adm = kadm.NewClient(a.admCl)
	if err := a.prepareTopics(ctx); err != nil {
		return err
	}
	manual := map[string]bool{}
	for name := range a.topo.storeSub {
		manual[a.topo.changelogTopic(name)] = true
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(a.cfg.Brokers...),
		kgo.ConsumerGroup(a.cfg.ApplicationID),
		kgo.ConsumeTopics(a.topo.sourceTopics()...),
		kgo.Balancers(&balancer{a.topo}),
		kgo.BlockRebalanceOnPoll(),
		kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.OnPartitionsAssigned(a.onAssigned),
		kgo.OnPartitionsRevoked(a.onRevoked),
		kgo.OnPartitionsLost(a.onLost),
		kgo.OnPartitionsCallbackBlocked(a.onBlocked),
		kgo.RecordPartitioner(partitioner{manual: manual, keyed: kgo.StickyKeyPartitioner(nil)}),
	}
	if a.cfg.ProcessingGuarantee == ExactlyOnce {
		opts = append(opts,
			kgo.TransactionalID(a.cfg.ApplicationID+"-"+a.cfg.InstanceID),
			kgo.TransactionTimeout(a.cfg.TransactionTimeout),
			kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		)
	}
	opts = append(opts, a.cfg.ClientOpts...)
	if a.cfg.ProcessingGuarantee == ExactlyOnce {
		if a.sess, err = kgo.NewGroupTransactSession(opts...); err != nil {
			return fmt.Errorf("stream: client: %w", err)
		}
		a.cl = a.sess.Client()
	} else if a.cl, err = kgo.NewClient(opts...); err != nil {
		return fmt.Errorf("stream: client: %w", err)
	}
	return nil
}

// partitioner places changelog records on their task's partition
// (Record.Partition) and everything else by the murmur2 hash of the
// key, as Kafka's default partitioner and Kafka Streams do, so that
// repartition topics are co-partitioned with topics other clients
// write.
type partitioner struct {
	manual map[string]bool
	keyed  kgo.Partitioner
}

func (p partitioner) ForTopic(topic string) kgo.TopicPartitioner {
	if p.manual[topic] {
		return kgo.ManualPartitioner().ForTopic(topic)
	}
	return p.keyed.ForTopic(topic)
}

// The group callbacks run on franz-go's goroutines, never while the
// Run goroutine processes records (BlockRebalanceOnPoll); they only
// queue the change for the Run goroutine.

func (a *App) onAssigned(_ context.Context, _ *kgo.Client, parts map[string][]int32) {
	a.enqueue(evAssigned, parts, false)
}

func (a *App) onRevoked(_ context.Context, _ *kgo.Client, parts map[string][]int32) {
	a.enqueue(evRevoked, parts, len(parts) > 0)
}

func (a *App) onLost(_ context.Context, _ *kgo.Client, parts map[string][]int32) {
	a.enqueue(evLost, parts, true)
}

func (a *App) enqueue(kind groupEventKind, parts map[string][]int32, failsTxn bool) {
	a.evMu.Lock()
	if len(parts) > 0 {
		a.events = append(a.events, groupEvent{kind, parts})
	}
	if failsTxn {
		a.sessionFailed = true
	}
	a.evMu.Unlock()
	a.wake()
}

func (a *App) onBlocked(context.Context, *kgo.Client) {
	a.rebalanceWaiting.Store(true)
	a.wake()
}

// loop polls and processes records until ctx ends or an error.
func (a *App) loop(ctx context.Context) error {
	for {
		fetches := a.poll(ctx)
		if err := a.fetchError(fetches); err != nil {
			return err
		}
		a.applyEvents()
		if reset, err := a.resetSession(ctx); err != nil {
			return err
		} else if reset {
			a.allowRebalance()
			continue
		}
		if err := a.process(ctx, fetches); err != nil {
			a.broken = true
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if ctx.Err() != nil {
			return nil // shutdown commits
		}
		if a.open && (a.rebalanceWaiting.Load() || time.Since(a.openedAt) >= a.cfg.CommitInterval) {
			if _, err := a.commit(ctx); err != nil {
				return err
			}
		}
		if !a.open {
			a.allowRebalance()
		}
	}
}

// poll waits for records: with work open, no longer than the commit
// deadline. A group callback or a waiting rebalance interrupts it
// (wake), so that assignments apply and commits happen promptly.
func (a *App) poll(ctx context.Context) kgo.Fetches {
	var pctx context.Context
	var cancel context.CancelFunc
	if a.open {
		pctx, cancel = context.WithDeadline(ctx, a.openedAt.Add(a.cfg.CommitInterval))
	} else {
		pctx, cancel = context.WithCancel(ctx)
	}
	defer cancel()
	a.pollMu.Lock()
	a.pollCancel = cancel
	a.pollMu.Unlock()
	if a.woken.Swap(false) || (a.open && a.rebalanceWaiting.Load()) {
		cancel() // the signal came before the poll could be interrupted
	}
	fetches := a.cl.PollRecords(pctx, maxPollRecords)
	a.pollMu.Lock()
	a.pollCancel = nil
	a.pollMu.Unlock()
	return fetches
}

// wake interrupts the current or next poll.
func (a *App) wake() {
	a.woken.Store(true)
	a.pollMu.Lock()
	if a.pollCancel != nil {
		a.pollCancel()
	}
	a.pollMu.Unlock()
}

func (a *App) allowRebalance() {
	a.rebalanceWaiting.Store(false)
	a.cl.AllowRebalance()
}

// fetchError logs the errors a poll reports and returns a fatal one:
// a group error (franz-go reports those with no topic) that rejoining
// cannot cure, such as another application using the same group ID.
func (a *App) fetchError(fetches kgo.Fetches) error {
	var fatal error
	fetches.EachError(func(topic string, partition int32, err error) {
		switch {
		case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		case topic == "" && (errors.Is(err, kerr.InconsistentGroupProtocol) ||
			errors.Is(err, kerr.GroupAuthorizationFailed) ||
			errors.Is(err, kerr.TopicAuthorizationFailed) ||
			errors.Is(err, kerr.InvalidGroupID) ||
			errors.Is(err, kerr.FencedInstanceID)):
			fatal = fmt.Errorf("stream: consumer group %s: %w", a.cfg.ApplicationID, err)
		default:
			a.log.Warn("stream: fetch", "topic", topic, "partition", partition, "err", err)
		}
	})
	return fatal
}

// applyEvents applies the queued assignment changes. An assigned task
// starts empty and restores before its first record, even if this
// instance ran it before: only the changelog is trusted.
func (a *App) applyEvents() {
	a.evMu.Lock()
	evs := a.events
	a.events = nil
	a.evMu.Unlock()
	for _, ev := range evs {
		ids := a.topo.tasksOf(ev.parts)
		for _, id := range ids {
			if ev.kind == evAssigned {
				a.tasks[id] = &task{id: id, sub: a.topo.subs[id.sub], app: a}
			} else {
				delete(a.tasks, id)
			}
		}
		a.log.Info("stream: tasks "+ev.kind.String(), "tasks", fmt.Sprint(ids))
	}
	a.stats.tasks.Store(int64(len(a.tasks)))
}

// resetSession ends the transact session after a revocation, before
// anything is processed: GroupTransactSession aborts the first
// transaction ending after a revocation, and rewinds to the committed
// offsets, even when the revocation came while no transaction was open
// (as ours always do). Ending it now makes the next transaction
// committable; the batch just polled is dropped, as the rewind fetches
// it again.
func (a *App) resetSession(ctx context.Context) (bool, error) {
	if a.sess == nil || a.open {
		return false, nil
	}
	a.evMu.Lock()
	failed := a.sessionFailed
	a.sessionFailed = false
	a.evMu.Unlock()
	if !failed {
		return false, nil
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
	defer cancel()
	if _, err := a.sess.End(cctx, kgo.TryAbort); err != nil {
		return false, fmt.Errorf("stream: end transact session: %w", err)
	}
	return true, nil
}

// process runs every record of the batch through its task. It stops at
// the first error, leaving the batch half done.
//
// Tasks about to process their first record are restored first, before
// a transaction begins: a restore may take longer than the transaction
// timeout. If a transaction is open already, it is committed first; if
// that commit aborts, the session has rewound to the committed offsets
// and the batch is dropped, to be fetched again.
func (a *App) process(ctx context.Context, fetches kgo.Fetches) error {
	var restore []*task
	for it := fetches.RecordIter(); !it.Done(); {
		if t := a.taskFor(it.Next()); t != nil && !t.restored() && !slices.Contains(restore, t) {
			restore = append(restore, t)
		}
	}
	if len(restore) > 0 && a.open && a.sess != nil {
		if committed, err := a.commit(ctx); err != nil || !committed {
			return err
		}
	}
	for _, t := range restore {
		if err := a.restore(ctx, t); err != nil {
			return err
		}
	}
	for it := fetches.RecordIter(); !it.Done(); {
		r := it.Next()
		if !a.open {
			if a.sess != nil {
				if err := a.sess.Begin(); err != nil {
					return fmt.Errorf("stream: begin transaction: %w", err)
				}
			}
			a.open, a.openedAt = true, time.Now()
		}
		if err := a.processRecord(ctx, r); err != nil {
			return err
		}
	}
	return nil
}

// taskFor returns the task processing r, nil for a topic the topology
// does not read.
func (a *App) taskFor(r *kgo.Record) *task {
	sub := a.topo.subOf[r.Topic]
	if sub == nil {
		return nil
	}
	id := taskID{sub.id, r.Partition}
	t := a.tasks[id]
	if t == nil {
		// Assignments are queued before their records can be polled;
		// be safe anyway.
		t = &task{id: id, sub: sub, app: a}
		a.tasks[id] = t
		a.stats.tasks.Store(int64(len(a.tasks)))
	}
	return t
}

func (a *App) processRecord(ctx context.Context, r *kgo.Record) error {
	t := a.taskFor(r)
	if t == nil {
		return nil
	}
	if !t.restored() {
		// Only after an abort, for a task whose records follow in the
		// same batch (AtLeastOnce never aborts).
		if err := a.restore(ctx, t); err != nil {
			return err
		}
	}
	src := a.topo.source[r.Topic]
	in, err := src.src.decode(r)
	if err != nil {
		derr := &DecodeError{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Err: err}
		if herr := a.cfg.OnDecodeError(r, derr); herr != nil {
			return herr
		}
		a.stats.skipped.Add(1)
		return nil
	}
	a.stats.processed.Add(1)
	return src.forward(t, in)
}

// send produces r: within the open transaction with ExactlyOnce; with
// AtLeastOnce, flushed before the next offset commit.
func (a *App) send(r *kgo.Record) {
	if a.sendHook != nil {
		a.sendHook(r)
		return
	}
	a.cl.Produce(context.Background(), r, a.onProduce)
}

func (a *App) produced(r *kgo.Record, err error) {
	if err == nil {
		return
	}
	a.errMu.Lock()
	if a.produceErr == nil {
		a.produceErr = fmt.Errorf("stream: produce to %s: %w", r.Topic, err)
	}
	a.errMu.Unlock()
}

func (a *App) takeProduceErr() error {
	a.errMu.Lock()
	defer a.errMu.Unlock()
	err := a.produceErr
	a.produceErr = nil
	return err
}

// commit makes the open work durable and reports whether it did.
// AtLeastOnce: flush the produced records, then commit the offsets of
// the polled records. ExactlyOnce: flush, commit the offsets in the
// transaction and end it; if the session aborts instead (a rebalance
// fenced it), every store is thrown away, to be restored from the
// changelogs, and the session has rewound the positions to the
// committed offsets.
func (a *App) commit(ctx context.Context) (bool, error) {
	began := time.Now()
	defer func() {
		if d := time.Since(began); d > 5*time.Second {
			a.log.Warn("stream: slow commit", "took", d.Round(time.Millisecond))
		}
	}()
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
	defer cancel()
	if a.hookBeforeCommit != nil {
		a.hookBeforeCommit(a.cl)
	}
	ferr := a.cl.Flush(cctx)
	if ferr != nil {
		ferr = fmt.Errorf("stream: flush: %w", ferr)
	}
	perr := a.takeProduceErr()
	a.open = false
	if a.sess == nil {
		if err := errors.Join(ferr, perr); err != nil {
			return false, err
		}
		if err := a.cl.CommitUncommittedOffsets(cctx); err != nil {
			a.log.Warn("stream: offset commit failed; records since the last commit will be processed again", "err", err)
			return false, nil
		}
		a.stats.commits.Add(1)
		return true, nil
	}
	committed, err := a.sess.End(cctx, kgo.TransactionEndTry(ferr == nil && perr == nil))
	a.evMu.Lock()
	a.sessionFailed = false
	a.evMu.Unlock()
	if err := errors.Join(ferr, perr); err != nil {
		a.rollback()
		return false, err
	}
	if err != nil {
		a.rollback()
		return false, fmt.Errorf("stream: end transaction: %w", err)
	}
	if !committed {
		a.stats.aborts.Add(1)
		a.rollback()
		a.log.Info("stream: transaction aborted by a rebalance; restoring stores and processing again")
		return false, nil
	}
	a.stats.commits.Add(1)
	return true, nil
}

// rollback drops every store: an aborted transaction took their
// changelog updates with it.
func (a *App) rollback() {
	for _, t := range a.tasks {
		t.stores = nil
	}
}

// shutdown commits the open work, unless processing stopped halfway
// through a batch or failed (then an ExactlyOnce transaction is
// aborted), and closes the clients, leaving the group.
func (a *App) shutdown(runErr error) error {
	if a.open {
		if runErr == nil && !a.broken {
			if _, err := a.commit(context.Background()); err != nil {
				runErr = err
			}
		} else if a.sess != nil {
			ctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
			if _, err := a.sess.End(ctx, kgo.TryAbort); err != nil {
				a.log.Warn("stream: abort transaction", "err", err)
			}
			cancel()
		}
	}
	a.closeClients()
	if runErr != nil {
		a.log.Error("stream: stopped", "err", runErr)
	}
	return runErr
}

func (a *App) closeClients() {
	switch {
	case a.sess != nil:
		a.sess.CloseAllowingRebalance()
	case a.cl != nil:
		a.cl.CloseAllowingRebalance()
	}
	if a.admCl != nil {
		a.admCl.Close()
	}
	a.tasks = map[taskID]*task{}
	a.stats.tasks.Store(0)
}
