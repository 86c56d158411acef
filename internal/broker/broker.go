// Package broker implements the Kafka APIs: one file per API key, each
// validating its request, calling the domain packages (partlog, metadata,
// group, …) and building the response with kmsg.
//
// Broker satisfies the server's Handler interface: Serve runs on the
// connection's reader goroutine in request order and answers through a
// callback, at once or later (long-poll fetches, produces waiting for
// fsync, joins waiting for a rebalance).
package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/config"
	"github.com/gregor-streaming/gregor/internal/metadata"
	"github.com/gregor-streaming/gregor/internal/metrics"
	"github.com/gregor-streaming/gregor/internal/partlog"
	"github.com/gregor-streaming/gregor/internal/vfs"
	"github.com/gregor-streaming/gregor/internal/wire"
)

// Options configure a Broker.
type Options struct {
	// Config is the static broker configuration. nil = defaults.
	Config *config.BrokerConfig
	// DataDir holds partition logs and cluster metadata.
	DataDir string
	// FS is the file system; nil = the OS.
	FS vfs.FS
	// AdvertisedHost and AdvertisedPort are what clients are told to
	// connect to.
	AdvertisedHost string
	AdvertisedPort int32
	// Logger; nil = slog.Default().
	Logger *slog.Logger
	// Now is the clock; nil = time.Now.
	Now func() time.Time
	// OpenFileLimit bounds the partitions the broker accepts (see
	// capacity.go); 0 = the process's RLIMIT_NOFILE, -1 = no bound.
	OpenFileLimit int64
	// ControllerListener is this node's listener for the other
	// controllers when controller.quorum.voters names more than one
	// (cluster mode, docs/CLUSTER.md); the broker serves it until Close.
	ControllerListener net.Listener
	// Dial connects to the other brokers and controllers; nil = a
	// net.Dialer. Tests cut the network between brokers with it.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Broker is a single Kafka broker.
type Broker struct {
	nodeID int32
	// advertised is the endpoint announced to clients; SetAdvertised may
	// replace it while requests are served (a listener on port 0).
	advertised atomic.Pointer[endpoint]
	// listenerEndpoints holds the endpoints of named listeners
	// (SetListenerAdvertised); a request from a listener without one
	// is answered with advertised.
	listenerEndpoints sync.Map // string -> *endpoint
	fs                vfs.FS
	dir               string
	log               *slog.Logger
	now               func() time.Time

	// static is the configuration from file, env and flags. Immutable.
	static *config.BrokerConfig
	// cfg is static plus dynamic overrides from metadata.
	cfg atomic.Pointer[config.BrokerConfig]

	meta   *metadata.Store
	syncer *partlog.Syncer
	// fileLimit is the open-file limit, read at Open; -1 for none. It
	// bounds the partitions topic creation accepts (capacity.go).
	fileLimit int64
	// wholeSync syncs the data directory's file system at once; nil
	// where unsupported.
	wholeSync vfs.WholeSyncer
	// metadataInPlace: the data directory's file system has no journal,
	// so segments allocate ahead of appends (log.allocate.ahead.bytes).
	metadataInPlace bool

	// partsMu guards parts and topicsDeleting. Lock order: partsMu
	// before partition.mu.
	partsMu sync.RWMutex
	// parts holds the open partitions by topic ID.
	parts map[metadata.UUID][]*partition

	// fetchSessions holds incremental fetch sessions (KIP-227).
	fetchSessions fetchSessionCache

	// pidMu guards nextPID and pidBlockEnd: the producer-ID block this
	// broker hands out from. Invariant: nextPID <= pidBlockEnd.
	pidMu       sync.Mutex
	nextPID     int64
	pidBlockEnd int64

	// reconcileMu serializes reconcile (log creation/deletion) and
	// guards reconciled, the image the last reconcile applied (the
	// empty image before the first).
	reconcileMu sync.Mutex
	reconciled  *metadata.Image

	// authzOn: authorizer.class.name is set, so requests are checked
	// against the ACLs; superUsers is super.users. authz caches the
	// authorizer built from the current ACLs (acls.go).
	authzOn    bool
	superUsers []string
	authz      atomic.Pointer[authzState]
	// quotas measures clients' byte rates against their client quotas
	// (quotas.go).
	quotas quotaState

	// stats are the request-path instruments /metrics reads (stats.go).
	stats metrics.BrokerStats

	// groups is the consumer group coordinator (groups.go).
	groups groupsState
	// txns is the transaction coordinator (txns.go).
	txns txnsState
	// peers is the client of the other brokers of a cluster (peers.go).
	peers peersState
	// fetchers copy the partitions this broker follows from their
	// leaders (replica_fetcher.go).
	fetchers fetchers
	// selfReplicas is []int32{nodeID}: a single node's replica set and
	// ISR of every partition. Immutable.
	selfReplicas []int32
	// abrupt skips the controlled shutdown (CloseAbruptly).
	abrupt atomic.Bool
	// shuttingDown is set once the controlled shutdown started.
	shuttingDown atomic.Bool
	// epochBumps are the partitions waiting to lead under a new epoch
	// after a restart (replica.go).
	epochBumps epochBumps

	// recovering is set while Open opens the partitions on disk.
	recovering bool
	// cluster: the metadata quorum has more than one voter, so images
	// change on other nodes (followMetadata) and this broker hosts only
	// the partitions it is a replica of.
	cluster bool
	// dial connects to the other brokers (Options.Dial); nil = a
	// net.Dialer. Immutable.
	dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// peerSec is how the peer client reaches the other brokers: the
	// inter-broker listener, its TLS and SASL (interbroker.go).
	// Immutable.
	peerSec peerSecurity

	// verifiedAppendHook, set by tests, runs after a transactional
	// batch verified with the coordinator was appended (produce.go).
	verifiedAppendHook atomic.Pointer[func()]
	// markerFault, set by tests, fails the transaction markers of the
	// partitions it returns an error for.
	markerFault atomic.Pointer[func(topic string, partition int32) error]

	// retentionKick wakes the retention loop early (cleaner.go): a
	// segment rolled. Capacity 1, non-blocking sends.
	retentionKick chan struct{}

	// ctx is cancelled by Close: parked requests finish.
	ctx    context.Context
	cancel context.CancelFunc
	// wg tracks every goroutine the broker starts (see goTracked).
	wg     sync.WaitGroup
	closed atomic.Bool
}

// Open opens (recovering) the broker's data directory.
func Open(opts Options) (*Broker, error) {
	if opts.Config == nil {
		opts.Config = config.Default()
	}
	if opts.FS == nil {
		opts.FS = vfs.Default
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.OpenFileLimit == 0 {
		opts.OpenFileLimit = openFileLimit()
	}
	if opts.DataDir == "" {
		opts.DataDir = "gregor-data"
	}
	nodeID := int32(opts.Config.Int("node.id"))
	if id := opts.Config.Int("broker.id"); id >= 0 && !opts.Config.Set("node.id") {
		nodeID = int32(id)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &Broker{
		nodeID: nodeID,
		fs:     opts.FS,
		dir:    opts.DataDir,
		log:    opts.Logger,
		now:    opts.Now,
		static: opts.Config,
		parts:  map[metadata.UUID][]*partition{},

		reconciled: metadata.Empty(),

		fileLimit: opts.OpenFileLimit,
		ctx:       ctx,
		cancel:    cancel,

		retentionKick: make(chan struct{}, 1),
		dial:          opts.Dial,
	}
	b.fetchers.b = b
	b.selfReplicas = []int32{nodeID}
	b.epochBumps.kick = make(chan struct{}, 1)
	b.SetAdvertised(opts.AdvertisedHost, opts.AdvertisedPort)
	if err := b.initAuthorizer(); err != nil {
		cancel()
		return nil, fmt.Errorf("broker: %w", err)
	}
	if err := mkdirDurable(b.fs, b.dir); err != nil {
		cancel()
		return nil, fmt.Errorf("broker: data dir: %w", err)
	}
	voters, err := controllerVoters(opts.Config, nodeID, opts.ControllerListener != nil)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("broker: %w", err)
	}
	b.cluster = len(voters) > 1
	mopts := metadata.Options{NodeID: nodeID, Listener: opts.ControllerListener, Dial: opts.Dial}
	if _, err := opts.Config.InterBrokerListener(); err != nil {
		cancel()
		return nil, fmt.Errorf("broker: %w", err)
	}
	if b.cluster {
		// CheckClusterSecurity's checks, keeping what they build.
		mopts.Voters = voters
		var ignored []string
		if b.peerSec, ignored, err = peerSecurityFrom(opts.Config); err != nil {
			cancel()
			return nil, fmt.Errorf("broker: %w", err)
		}
		if len(ignored) > 0 {
			b.log.Warn("options of the inter-broker sasl.jaas.config ignored: Gregor's users are the SCRAM credentials in the cluster metadata (gregor serve --add-scram)", "options", ignored)
		}
		if mopts.TLS, err = controllerTLS(opts.Config); err != nil {
			cancel()
			return nil, fmt.Errorf("broker: %w", err)
		}
	}
	meta, err := metadata.OpenOptions(b.fs, filepath.Join(b.dir, ClusterMetadataTopic+"-0"), b.log, mopts)
	if err != nil {
		cancel()
		return nil, err
	}
	b.meta = meta
	// Before the first image is read: no change after it is missed.
	var metaChanged <-chan struct{}
	if b.cluster {
		metaChanged = meta.Watch()
	}
	b.syncer = partlog.NewSyncer(4)
	// One syncfs for many dirty partitions instead of an fsync each
	// (opened before any log is, so it sees every writeback error).
	if ws, err := vfs.OpenWholeSyncer(b.fs, b.dir); err == nil {
		b.wholeSync = ws
		b.syncer.UseWholeSync(ws)
	}
	// Without a journal each sync writes the allocation's metadata in
	// place, which allocating ahead of the appends saves (partlog
	// alloc.go; reconcile applies log.allocate.ahead.bytes).
	b.metadataInPlace = vfs.MetadataInPlace(b.fs, b.dir)
	if b.metadataInPlace {
		b.log.Info("the data directory's file system has no journal: segments allocate their blocks ahead of appends (log.allocate.ahead.bytes)", "dir", b.dir)
	}
	if vfs.OnlineDiscard(b.fs, b.dir) {
		// Measured at stop 30: a 10,000-partition shutdown after
		// produce took 9.7-15.3 s with discard, 4.3-4.6 s without
		// (docs/PERFORMANCE.md).
		b.log.Warn("the data directory's file system is mounted with discard: every file deleted, truncated or replaced waits for the disk to discard its blocks (segment deletion, checkpoints, shutdown); mounting without it and running fstrim periodically avoids that", "dir", b.dir)
	}
	b.syncer.Observe(partlog.Observers{
		Sync:         b.observeFsync,
		CacheAdvice:  b.observeCacheAdvice,
		Preallocated: func(n int64) { b.stats.Preallocated.Add(n) },
	})
	// Small appends are acknowledged after one journal fdatasync instead
	// of a sync of every partition file they touched (partlog.Journal).
	j, err := partlog.OpenJournal(b.fs, filepath.Join(b.dir, journalDir), b.log)
	if err != nil {
		b.abandon()
		return nil, err
	}
	b.syncer.UseJournal(j)
	img := meta.Image()
	b.cfg.Store(b.effectiveConfig(img))
	start := time.Now()
	b.recovering = true
	err = b.reconcile(img)
	b.recovering = false
	if err != nil {
		b.abandon()
		return nil, err
	}
	j.ReplayDone()
	b.removeStrayLogs(img)
	b.openGroups()
	b.openTxns()
	b.startBackground()
	if b.cluster {
		b.goTracked(func() { b.followMetadata(metaChanged) })
		b.goTracked(b.isrLoop)
		b.goTracked(b.runController)
		b.goTracked(b.bumpEpochs)
	}
	b.log.Info("broker recovered", "topics", len(img.Topics), "partitions", b.partitionCount(),
		"elapsed", time.Since(start).Round(time.Millisecond), "cluster_id", img.ClusterID, "node_id", nodeID)
	return b, nil
}

// controllerVoters returns controller.quorum.voters, checked: empty, or
// naming this node (alone, as Kafka's single-node KRaft configurations
// do, or with others, given its controller listener).
func controllerVoters(cfg *config.BrokerConfig, nodeID int32, listening bool) (map[int32]string, error) {
	voters, err := cfg.Voters()
	if err != nil {
		return nil, fmt.Errorf("controller.quorum.voters: %w", err)
	}
	if _, ok := voters[nodeID]; len(voters) > 0 && !ok {
		return nil, fmt.Errorf("controller.quorum.voters does not name this node (node.id %d)", nodeID)
	}
	if len(voters) > 1 && !listening {
		return nil, fmt.Errorf("controller.quorum.voters names %d voters: a member of a quorum needs its controller listener (Options.ControllerListener; gregor serve opens it)", len(voters))
	}
	return voters, nil
}

// abandon releases what a failed Open had opened: the partitions
// opened before the failure (closed cleanly: they recovered), the
// syncers and the metadata log.
func (b *Broker) abandon() {
	if err := b.closeStorage(false); err != nil {
		b.log.Warn("closing after a failed start", "err", err)
	}
	b.cancel()
}

// mkdirDurable creates dir and any missing parents, syncing the parent of
// each one it creates: syncing only dir's parent would let a power loss
// take a new data directory, metadata and all, with a missing ancestor.
func mkdirDurable(fs vfs.FS, dir string) error {
	var created []string
	for d := filepath.Clean(dir); d != "." && d != "/"; d = filepath.Dir(d) {
		if _, err := fs.Stat(d); err == nil {
			break
		}
		created = append(created, d)
	}
	if err := fs.MkdirAll(dir); err != nil {
		return err
	}
	if len(created) == 0 {
		created = []string{filepath.Clean(dir)} // as before: cheap, and safe
	}
	for _, d := range created {
		if err := fs.SyncDir(filepath.Dir(d)); err != nil {
			return err
		}
	}
	return nil
}

// SetAdvertised sets the endpoint announced in Metadata, once the
// listener's port is known.
func (b *Broker) SetAdvertised(host string, port int32) {
	b.advertised.Store(&endpoint{host: host, port: port})
}

// endpoint is a host and port announced to clients. Immutable.
type endpoint struct {
	host string
	port int32
}

// SetListenerAdvertised sets the endpoint announced to clients of the
// named listener (wire.Client.Listener).
func (b *Broker) SetListenerAdvertised(name, host string, port int32) {
	b.listenerEndpoints.Store(name, &endpoint{host: host, port: port})
}

// endpoint returns the endpoint advertised to clients of listener.
func (b *Broker) endpoint(listener string) (string, int32) {
	if listener != "" {
		if e, ok := b.listenerEndpoints.Load(listener); ok {
			ep := e.(*endpoint)
			return ep.host, ep.port
		}
	}
	e := b.advertised.Load()
	return e.host, e.port
}

// Config returns the effective broker configuration.
func (b *Broker) Config() *config.BrokerConfig { return b.cfg.Load() }

// ClusterID returns the cluster's ID.
func (b *Broker) ClusterID() string { return b.meta.Image().ClusterID }

// NodeID returns this broker's ID.
func (b *Broker) NodeID() int32 { return b.nodeID }

// Drain makes parked requests (long-poll fetches) answer at once and
// new ones not park: the first step of a graceful shutdown (after
// ControlledShutdown in a cluster).
func (b *Broker) Drain() {
	b.txns.coord.Drain()
	b.groups.coord.Drain()
	b.cancel()
}

// Close completes parked requests, syncs and closes every log. Call it
// after the server stopped reading requests. Idempotent.
func (b *Broker) Close() error {
	if !b.closed.CompareAndSwap(false, true) {
		return nil
	}
	// First: the coordinators wait for their writes in flight, which
	// need the logs open (transaction markers complete group commits).
	b.txns.coord.Close()
	b.groups.coord.Close()
	if !b.abrupt.Load() {
		b.ControlledShutdown()
	}
	b.cancel()
	// The background loops (the controller's elections, ISR changes)
	// may wait in an update that, with the other voters gone, never
	// commits: they return now instead of after its timeout.
	b.meta.StopUpdates()
	b.wg.Wait()
	b.closePeers()
	return b.closeStorage(true)
}

// CloseAbruptly is Close without the controlled shutdown: the broker's
// leaderships stay until the controller finds it gone, as after a crash
// (for tests that simulate one).
func (b *Broker) CloseAbruptly() error {
	b.abrupt.Store(true)
	return b.Close()
}

// closeStorage closes every partition's log (snapshotting producer state
// first when snapshot is set), the syncers and the metadata log: the end
// of Close, and what a failed Open undoes.
func (b *Broker) closeStorage(snapshot bool) error {
	var errs []error
	var logs []*partlog.Log
	b.partsMu.Lock()
	for _, ps := range b.parts {
		for _, p := range ps {
			if p == nil {
				continue // another broker's
			}
			if snapshot && p.bytesSinceSnapshot > 0 {
				if err := b.snapshotProducers(p); err != nil {
					b.log.Warn("producer snapshot at shutdown failed", "topic", p.topic, "partition", p.index, "err", err)
				}
			}
			logs = append(logs, p.log)
		}
	}
	// All logs at once: two file-system syncs instead of fsyncs per log.
	if err := partlog.CloseLogs(b.syncer, logs); err != nil {
		errs = append(errs, err)
	}
	b.parts = map[metadata.UUID][]*partition{}
	b.partsMu.Unlock()
	b.syncer.Close()
	if b.wholeSync != nil {
		b.wholeSync.Close()
	}
	errs = append(errs, b.meta.Close())
	return errors.Join(errs...)
}

// goTracked runs fn on a goroutine that Close waits for.
func (b *Broker) goTracked(fn func()) {
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		fn()
	}()
}

// handlerFunc serves one request; see server.Handler.Serve.
type handlerFunc func(b *Broker, ctx context.Context, req *wire.Request, respond func(kmsg.Response))

type api struct {
	min, max int16
	fn       handlerFunc
}

// apis is filled by each handler file's init: ApiVersions is derived
// from it.
var apis = map[int16]api{}

func register(key, min, max int16, fn handlerFunc) {
	if kmax := kmsg.RequestForKey(key).MaxVersion(); max > kmax {
		panic(fmt.Sprintf("broker: key %d registered above kmsg's max %d", key, kmax))
	}
	apis[key] = api{min, max, fn}
}

// registerSync registers a handler that answers at once.
func registerSync(key, min, max int16, fn func(b *Broker, req *wire.Request) kmsg.Response) {
	register(key, min, max, func(b *Broker, _ context.Context, req *wire.Request, respond func(kmsg.Response)) {
		respond(fn(b, req))
	})
}

// Versions implements server.Handler.
func (b *Broker) Versions(key int16) (min, max int16, ok bool) {
	a, ok := apis[key]
	return a.min, a.max, ok
}

// Serve implements server.Handler.
func (b *Broker) Serve(ctx context.Context, req *wire.Request, respond func(kmsg.Response)) {
	a, ok := apis[req.Key]
	if !ok {
		respond(nil)
		return
	}
	// Set by whichever goroutine answers (a handler may answer from an
	// fsync's callback), read by the panic recovery below.
	var answered atomic.Bool
	start := time.Now()
	once := func(r kmsg.Response) {
		answered.Store(true)
		b.stats.Requests.Observe(req.Key, time.Since(start))
		if r != nil {
			r.SetVersion(req.Version)
		}
		respond(r)
	}
	defer func() {
		// A bug must not take the broker down: log it, and close
		// the connection (the client reconnects and retries).
		if v := recover(); v != nil {
			b.log.Error("handler panic", "api", kmsg.NameForKey(req.Key), "version", req.Version,
				"client", req.ClientID, "panic", v, "stack", string(debug.Stack()))
			if req.Client.Close != nil {
				req.Client.Close()
			}
			if !answered.Load() {
				respond(nil)
			}
		}
	}()
	a.fn(b, ctx, req, once)
}

func (b *Broker) partitionCount() int { return len(b.allPartitions()) }

// partition returns an open partition.
func (b *Broker) partition(id metadata.UUID, p int32) *partition {
	return partitionAt(b.partitions(id), p)
}

// partitions returns the open partitions of topic id by index (nil
// for a partition another broker hosts). Entries are only ever
// appended, so the slice may be read after partsMu is released: a
// request to many partitions of a topic looks it up once.
func (b *Broker) partitions(id metadata.UUID) []*partition {
	b.partsMu.RLock()
	defer b.partsMu.RUnlock()
	return b.parts[id]
}

// partitionAt returns ps[p] when this broker leads it: clients' requests
// are served by the leader only. Nil when p is out of range, another
// broker's, or followed here.
func partitionAt(ps []*partition, p int32) *partition {
	if q := hostedAt(ps, p); q != nil && q.leading.Load() {
		return q
	}
	return nil
}

// hostedAt returns ps[p] whatever its role here, or nil when p is out of
// range or another broker's.
func hostedAt(ps []*partition, p int32) *partition {
	if p < 0 || int(p) >= len(ps) {
		return nil
	}
	return ps[p]
}

// partitionOf returns partition p of the topic named name in img, or nil
// when either does not exist.
func (b *Broker) partitionOf(img *metadata.Image, name string, p int32) *partition {
	if t, ok := img.Topic(name); ok {
		return b.partition(t.ID, p)
	}
	return nil
}

func splitHostPort(addr string) (string, int32, error) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	n, err := strconv.Atoi(p)
	return h, int32(n), err
}

// SyncSegments runs a journal cycle now: every partition that journaled
// since the last one gets its segment files synced up to its log end,
// and the journal files that covered them are deleted. It reports
// whether the cycle completed. The Syncer runs cycles by itself; tests
// call this to put acknowledged data in the segments before damaging
// them.
func (b *Broker) SyncSegments() bool { return b.syncer.JournalCycle() }
