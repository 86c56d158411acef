package group

import (
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/gregor-streaming/gregor/internal/batch"
	"github.com/gregor-streaming/gregor/internal/coord"
)

// Log is the coordinator's view of __consumer_offsets; the broker
// satisfies it with its partition append and read paths.
type Log interface {
	// Append appends one record batch (RecordBatch v2, baseOffset 0) to
	// the partition and calls done once it is durable, or with the
	// error (a *kerr.Error where one applies). done may run on any
	// goroutine, even before Append returns. Batches appended to one
	// partition land in the log in the order of the Append calls.
	Append(partition int32, batch []byte, done func(error))
	// Replay calls fn with each record batch of the partition, from the
	// log start to the high watermark.
	Replay(partition int32, fn func(batch []byte) error) error
}

// Options configure a Coordinator.
type Options struct {
	Config Config
	Log    Log
	// Clock; nil = RealClock{}.
	Clock  Clock
	Logger *slog.Logger
	// NewMemberID makes member IDs; nil = Kafka's
	// clientID-or-instanceID "-" UUID. Tests make them predictable.
	NewMemberID func(clientID string, instanceID *string) string
}

// Coordinator is the group coordinator of the __consumer_offsets
// partitions this broker leads.
//
// Each group is owned by a mailbox: requests, append completions and
// timers are closures queued to it, run in order by one goroutine that
// exists while the queue is non-empty. No lock is held while a group
// runs, and none is taken by two groups' requests alike: a shard's lock
// (coord.Shard) guards its map only, a mailbox's queue lock
// (coord.Queue) one group's queue, and the coordinator's own state is
// atomic (c.mu serves Start, Drain and the expiry timer). Lock order:
// c.mu, shard, mailbox queue.
type Coordinator struct {
	cfg    Config
	log    Log
	clock  Clock
	logger *slog.Logger
	newID  func(clientID string, instanceID *string) string

	// shards are the __consumer_offsets partitions by index; empty
	// until Start.
	shards coord.Shards[*shard]

	// busy counts work that Close waits for (requests being queued,
	// running mailboxes, appends in flight, loaders, expiry sweeps).
	busy     coord.Busy
	draining atomic.Bool

	// mu guards the fields below, and serves Start, Drain, and Elect
	// and Resign before Start.
	mu sync.Mutex
	// expiry is the pending offset-expiry sweep.
	expiry Timer
	// preStart holds the Elect and Resign calls made before Start, by
	// partition: Start applies them (leadership.go).
	preStart map[int32]leadership
}

// shard is one __consumer_offsets partition's groups.
type shard struct {
	coord.Shard[*mailbox]
	// early holds transaction markers that arrived while loading;
	// guarded by the Shard's lock, and emptied when the leadership
	// changes (the next load replays them from the log).
	early []txnCompletion
}

// New returns a coordinator that serves nothing until Start.
func New(opts Options) *Coordinator {
	if opts.Clock == nil {
		opts.Clock = RealClock{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.NewMemberID == nil {
		opts.NewMemberID = newMemberID
	}
	return &Coordinator{cfg: opts.Config, log: opts.Log, clock: opts.Clock, logger: opts.Logger, newID: opts.NewMemberID}
}

func newMemberID(clientID string, instanceID *string) string {
	prefix := clientID
	if instanceID != nil {
		prefix = *instanceID
	}
	var u [16]byte
	_, _ = rand.Read(u[:])
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return fmt.Sprintf("%s-%x-%x-%x-%x-%x", prefix, u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// Started reports whether Start ran.
func (c *Coordinator) Started() bool { return c.shards.Load() != nil }

// NumPartitions returns the partition count of __consumer_offsets; 0
// before Start.
func (c *Coordinator) NumPartitions() int32 {
	return int32(len(c.shards.Load()))
}

// PartitionFor returns the __consumer_offsets partition of a group.
func (c *Coordinator) PartitionFor(groupID string) int32 {
	return PartitionFor(groupID, c.NumPartitions())
}

// Start begins coordinating the n partitions of __consumer_offsets:
// each is replayed in the background, and its groups are served
// (COORDINATOR_LOAD_IN_PROGRESS until then). owned, when not nil, says
// which partitions are this broker's: the others' groups get
// NOT_COORDINATOR. A partition named by an Elect or Resign before Start
// follows that call instead (owned is then only a default). Later calls
// do nothing; leadership then changes through Elect and Resign.
func (c *Coordinator) Start(n int32, owned func(int32) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.shards.Load() != nil || c.draining.Load() || n <= 0 {
		return
	}
	shards := make([]*shard, n)
	for i := range shards {
		sh := &shard{Shard: coord.Shard[*mailbox]{Partition: int32(i)}}
		shards[i] = sh
		if l, ok := c.preStart[int32(i)]; ok {
			l.apply(&sh.Shard)
		} else if owned != nil && !owned(int32(i)) {
			sh.SetForeign()
		}
	}
	c.preStart = nil
	c.shards.Start(&c.busy, shards, c.load)
	c.scheduleExpiryLocked()
}

// WaitLoaded waits until every partition is loaded, up to timeout; it
// reports whether they are. The broker waits after creating
// __consumer_offsets, whose partitions are empty, so the request that
// created it is served at once.
func (c *Coordinator) WaitLoaded(timeout time.Duration) bool {
	return c.shards.WaitLoaded(timeout)
}

func (c *Coordinator) scheduleExpiryLocked() {
	if c.draining.Load() || c.cfg.OffsetsRetentionCheckInterval <= 0 {
		return
	}
	c.expiry = c.clock.AfterFunc(c.cfg.OffsetsRetentionCheckInterval, func() {
		if !c.busy.Enter() {
			return
		}
		defer c.busy.Release()
		c.expireOffsets()
		c.mu.Lock()
		c.scheduleExpiryLocked()
		c.mu.Unlock()
	})
}

// ExpireOffsets runs the offset-expiry sweep now (it also runs every
// offsets.retention.check.interval.ms).
func (c *Coordinator) ExpireOffsets() {
	if !c.busy.Enter() {
		return
	}
	defer c.busy.Release()
	c.expireOffsets()
}

func (c *Coordinator) expireOffsets() {
	for _, sh := range c.shards.Load() {
		if !sh.Loaded() {
			continue
		}
		for _, mb := range sh.Snapshot() {
			mb.do(func(g *Group, now time.Time) { g.ExpireOffsets(now) })
		}
	}
}

// TopicsDeleted removes every group's committed offsets of the deleted
// topics (tombstones in __consumer_offsets).
func (c *Coordinator) TopicsDeleted(topics []string) {
	if len(topics) == 0 || !c.busy.Enter() {
		return
	}
	defer c.busy.Release()
	topics = slices.Clone(topics)
	for _, sh := range c.shards.Load() {
		for _, mb := range sh.Snapshot() {
			mb.do(func(g *Group, now time.Time) { g.DeleteTopicOffsets(now, topics) })
		}
	}
}

func (c *Coordinator) isDraining() bool { return c.draining.Load() }

// Drain is the first step of shutdown: parked JoinGroup and SyncGroup
// requests are answered NOT_COORDINATOR (the clients find the
// coordinator again), new ones too, and group timers stop, so no
// rebalance completes half-way. Commits, fetches and heartbeats are
// still served until Close.
func (c *Coordinator) Drain() {
	c.mu.Lock()
	if c.draining.Swap(true) {
		c.mu.Unlock()
		return
	}
	if c.expiry != nil {
		c.expiry.Stop()
	}
	c.mu.Unlock()
	for _, sh := range c.shards.Load() {
		for _, mb := range sh.Snapshot() {
			mb.do(func(g *Group, now time.Time) {
				for _, m := range g.order {
					g.invokeJoin(m, joinError(m.id, kerr.NotCoordinator))
					g.invokeSync(m, SyncResult{Err: kerr.NotCoordinator})
				}
			})
		}
	}
}

// Close drains, waits for writes in flight and every goroutine, and
// refuses further requests with NOT_COORDINATOR. Idempotent.
func (c *Coordinator) Close() {
	c.Drain()
	c.busy.Close()
}

// ---- loading

// errStale stops a replay whose leadership ended: its results would be
// discarded.
var errStale = errors.New("group: load of a leadership that ended")

// load replays a partition and installs its groups, retrying a failed
// replay until shutdown or until the leadership it loads for ended. It
// does nothing when the partition needs no load or another loader has
// it (coord.Shard.Claim).
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
		groups, err := c.replay(sh.Partition, stale)
		if errors.Is(err, errStale) {
			return nil
		}
		if err != nil {
			c.logger.Error("loading __consumer_offsets partition failed; retrying", "partition", sh.Partition, "err", err)
			return err
		}
		if !c.install(sh, gen, groups) {
			c.logger.Debug("group coordinator partition load discarded: its leadership ended", "partition", sh.Partition)
			return nil
		}
		c.logger.Debug("group coordinator partition loaded", "partition", sh.Partition,
			"groups", len(groups), "elapsed", time.Since(start).Round(time.Millisecond))
		return nil
	})
}

// replay rebuilds the groups of a partition from its records; it stops
// with errStale once stale reports true.
func (c *Coordinator) replay(partition int32, stale func() bool) (map[string]*Group, error) {
	ld := newLoader(c.logger.With("partition", partition))
	var reader batch.Reader
	err := c.log.Replay(partition, func(b []byte) error {
		if stale() {
			return errStale
		}
		h, err := batch.ParseHeader(b)
		if err != nil {
			return err
		}
		switch {
		case h.IsControl():
			// A transaction marker ends the producer's
			// transactional offset commits.
			return reader.Records(b, func(r batch.Record) bool {
				if typ, err := batch.ParseControlKey(r.Key); err == nil && (typ == batch.ControlCommit || typ == batch.ControlAbort) {
					ld.completeTxn(h.ProducerID, typ == batch.ControlCommit)
				}
				return false
			})
		case h.IsTransactional():
			return reader.Records(b, func(r batch.Record) bool {
				ld.applyTxn(h.ProducerID, r.Offset, r.Key, r.Value)
				return true
			})
		}
		return reader.Records(b, func(r batch.Record) bool {
			ld.apply(r.Offset, r.Key, r.Value)
			return true
		})
	})
	if err == nil && stale() {
		err = errStale
	}
	if err != nil {
		return nil, err
	}
	return ld.groups(c.clock.Now(), &c.cfg), nil
}

// install publishes a loaded partition's groups, unless the leadership
// gen it was loaded for ended meanwhile (false: discarded).
func (c *Coordinator) install(sh *shard, gen uint64, groups map[string]*Group) bool {
	var kick []*mailbox
	sh.Lock()
	if !sh.Current(gen) {
		sh.Unlock()
		return false
	}
	for id, g := range groups {
		mb := c.newMailbox(sh, g)
		sh.PutLocked(id, mb)
		if g.memberCount() > 0 {
			kick = append(kick, mb)
		}
	}
	early := sh.early
	sh.early = nil
	sh.SetLoaded()
	var all []*mailbox
	if len(early) > 0 {
		all = sh.SnapshotLocked()
	}
	sh.Unlock()
	// Markers written while the partition loaded (replay may or may not
	// have read them; applying one twice changes nothing).
	for _, mb := range all {
		mb.do(func(g *Group, _ time.Time) {
			for _, e := range early {
				g.CompleteTxn(e.producerID, e.commit)
			}
		})
	}
	// Arm the loaded members' session timers.
	for _, mb := range kick {
		mb.do(func(*Group, time.Time) {})
	}
	return true
}

// ---- routing

// route returns a group's shard, or the error for a coordinator that
// cannot serve it now.
func (c *Coordinator) route(groupID string) (*shard, *kerr.Error) {
	shards := c.shards.Load()
	if shards == nil {
		return nil, kerr.NotCoordinator
	}
	sh := shards[PartitionFor(groupID, int32(len(shards)))]
	if err := shardError(sh); err != nil {
		return nil, err
	}
	return sh, nil
}

// shardError is the error for a shard that does not serve its groups:
// NOT_COORDINATOR for another broker's, COORDINATOR_LOAD_IN_PROGRESS
// while loading; nil when it serves them.
func shardError(sh *shard) *kerr.Error {
	switch {
	case sh.Foreign():
		return kerr.NotCoordinator
	case !sh.Loaded():
		return kerr.CoordinatorLoadInProgress
	}
	return nil
}

// lookup returns the mailbox of a group of sh (nil when there is none),
// making an empty group when create is set, or the error of route if
// the shard stopped serving since route (a Resign or Elect in between).
func (c *Coordinator) lookup(sh *shard, id string, create bool) (*mailbox, *kerr.Error) {
	var mb *mailbox
	var ok bool
	if create {
		mb, ok = sh.LookupOrCreate(id, func() *mailbox { return c.newMailbox(sh, newGroup(id, &c.cfg, nil, c.logger)) })
	} else {
		mb, ok = sh.Lookup(id)
	}
	if !ok {
		if err := shardError(sh); err != nil {
			return nil, err
		}
		// Served again already (Elect, then a quick load): route once
		// more rather than guess.
		return nil, kerr.CoordinatorLoadInProgress
	}
	return mb, nil
}

// ---- requests
//
// A request is routed to its group's mailbox and queued there with a
// redo: when it reaches a mailbox whose partition was resigned or
// reloaded meanwhile, it is routed again from the start instead of
// running on a group this coordinator no longer owns.

// Join handles a JoinGroup.
func (c *Coordinator) Join(groupID string, req JoinRequest, respond func(JoinResult)) {
	if groupID == "" {
		respond(joinError(req.MemberID, kerr.InvalidGroupID))
		return
	}
	if !c.busy.Enter() {
		respond(joinError(req.MemberID, kerr.NotCoordinator))
		return
	}
	defer c.busy.Release()
	if c.isDraining() {
		respond(joinError(req.MemberID, kerr.NotCoordinator))
		return
	}
	sh, err := c.route(groupID)
	if err != nil {
		respond(joinError(req.MemberID, err))
		return
	}
	if req.SessionTimeout < c.cfg.MinSessionTimeout || req.SessionTimeout > c.cfg.MaxSessionTimeout {
		respond(joinError(req.MemberID, kerr.InvalidSessionTimeout))
		return
	}
	mb, err := c.lookup(sh, groupID, req.MemberID == "")
	switch {
	case err != nil:
		respond(joinError(req.MemberID, err))
	case mb == nil:
		respond(joinError(req.MemberID, kerr.UnknownMemberID))
	default:
		mb.request(func(g *Group, now time.Time) { g.Join(now, req, respond) },
			func() { c.Join(groupID, req, respond) })
	}
}

// Sync handles a SyncGroup.
func (c *Coordinator) Sync(groupID string, req SyncRequest, respond func(SyncResult)) {
	if groupID == "" {
		respond(SyncResult{Err: kerr.InvalidGroupID})
		return
	}
	if !c.busy.Enter() {
		respond(SyncResult{Err: kerr.NotCoordinator})
		return
	}
	defer c.busy.Release()
	if c.isDraining() {
		respond(SyncResult{Err: kerr.NotCoordinator})
		return
	}
	fail := func(err *kerr.Error) {
		if err == kerr.CoordinatorLoadInProgress {
			// The rebalance in progress was lost with the old
			// coordinator: rejoin. Older clients do not expect
			// COORDINATOR_LOAD_IN_PROGRESS here (as Kafka).
			err = kerr.RebalanceInProgress
		}
		respond(SyncResult{Err: err})
	}
	sh, err := c.route(groupID)
	if err != nil {
		fail(err)
		return
	}
	mb, err := c.lookup(sh, groupID, false)
	switch {
	case err != nil:
		fail(err)
	case mb == nil:
		respond(SyncResult{Err: kerr.UnknownMemberID})
	default:
		mb.request(func(g *Group, now time.Time) { g.Sync(now, req, respond) },
			func() { c.Sync(groupID, req, respond) })
	}
}

// Heartbeat handles a Heartbeat.
func (c *Coordinator) Heartbeat(groupID string, req HeartbeatRequest, respond func(*kerr.Error)) {
	if groupID == "" {
		respond(kerr.InvalidGroupID)
		return
	}
	if !c.busy.Enter() {
		respond(kerr.NotCoordinator)
		return
	}
	defer c.busy.Release()
	fail := func(err *kerr.Error) {
		if err == kerr.CoordinatorLoadInProgress {
			// Kafka answers blindly while loading: the member's
			// session starts when its group is loaded.
			err = nil
		}
		respond(err)
	}
	sh, err := c.route(groupID)
	if err != nil {
		fail(err)
		return
	}
	mb, err := c.lookup(sh, groupID, false)
	switch {
	case err != nil:
		fail(err)
	case mb == nil:
		respond(kerr.UnknownMemberID)
	default:
		mb.request(func(g *Group, now time.Time) { respond(g.Heartbeat(now, req)) },
			func() { c.Heartbeat(groupID, req, respond) })
	}
}

// Leave handles a LeaveGroup. An unknown group answers UNKNOWN_MEMBER_ID
// per member.
func (c *Coordinator) Leave(groupID string, members []LeaveMember, respond func(LeaveResult)) {
	if groupID == "" {
		respond(LeaveResult{Err: kerr.InvalidGroupID})
		return
	}
	if !c.busy.Enter() {
		respond(LeaveResult{Err: kerr.NotCoordinator})
		return
	}
	defer c.busy.Release()
	sh, err := c.route(groupID)
	if err != nil {
		respond(LeaveResult{Err: err})
		return
	}
	mb, err := c.lookup(sh, groupID, false)
	switch {
	case err != nil:
		respond(LeaveResult{Err: err})
	case mb == nil:
		res := LeaveResult{Members: make([]*kerr.Error, len(members))}
		for i := range res.Members {
			res.Members[i] = kerr.UnknownMemberID
		}
		respond(res)
	default:
		mb.request(func(g *Group, now time.Time) { respond(g.Leave(now, members)) },
			func() { c.Leave(groupID, members, respond) })
	}
}

// Commit handles an OffsetCommit. A commit with generation -1 to an
// unknown group creates an offsets-only group; otherwise an unknown
// group is ILLEGAL_GENERATION, or GROUP_ID_NOT_FOUND when
// groupNotFound is set (v9+).
func (c *Coordinator) Commit(groupID string, req CommitRequest, groupNotFound bool, respond func(CommitResult)) {
	c.commit(groupID, req.Generation, req.Topics, groupNotFound, respond,
		func(g *Group, now time.Time) { g.Commit(now, req, respond) })
}

// commit routes an OffsetCommit or TxnOffsetCommit to its group, as
// Commit describes, and runs fn there.
func (c *Coordinator) commit(groupID string, generation int32, topics []CommitTopic, groupNotFound bool, respond func(CommitResult), fn func(g *Group, now time.Time)) {
	fail := func(err *kerr.Error) { respond(commitResult(topics, err)) }
	if !c.busy.Enter() {
		fail(kerr.NotCoordinator)
		return
	}
	defer c.busy.Release()
	sh, err := c.route(groupID)
	if err != nil {
		fail(err)
		return
	}
	mb, err := c.lookup(sh, groupID, generation < 0)
	switch {
	case err != nil:
		fail(err)
	case mb == nil && groupNotFound:
		fail(kerr.GroupIDNotFound)
	case mb == nil:
		fail(kerr.IllegalGeneration)
	default:
		mb.request(fn, func() { c.commit(groupID, generation, topics, groupNotFound, respond, fn) })
	}
}

// Fetch handles one group of an OffsetFetch. A group the coordinator
// never saw has no offsets (-1), and no error.
func (c *Coordinator) Fetch(groupID string, req FetchRequest, respond func(FetchResult)) {
	if !c.busy.Enter() {
		respond(FetchResult{Err: kerr.NotCoordinator})
		return
	}
	defer c.busy.Release()
	sh, err := c.route(groupID)
	if err != nil {
		respond(FetchResult{Err: err})
		return
	}
	mb, err := c.lookup(sh, groupID, false)
	switch {
	case err != nil:
		respond(FetchResult{Err: err})
	case mb == nil:
		g := newGroup(groupID, &c.cfg, nil, c.logger)
		respond(g.Fetch(req))
	default:
		mb.request(func(g *Group, _ time.Time) { respond(g.Fetch(req)) },
			func() { c.Fetch(groupID, req, respond) })
	}
}

// Describe handles one group of DescribeGroups; an unknown group is
// Dead with no error (the handler maps it per version).
func (c *Coordinator) Describe(groupID string, respond func(DescribedGroup)) {
	if !c.busy.Enter() {
		respond(DescribedGroup{Err: kerr.NotCoordinator, State: Dead})
		return
	}
	defer c.busy.Release()
	sh, err := c.route(groupID)
	if err != nil {
		respond(DescribedGroup{Err: err, State: Dead})
		return
	}
	mb, err := c.lookup(sh, groupID, false)
	switch {
	case err != nil:
		respond(DescribedGroup{Err: err, State: Dead})
	case mb == nil:
		respond(DescribedGroup{State: Dead})
	default:
		mb.request(func(g *Group, _ time.Time) { respond(g.Describe()) },
			func() { c.Describe(groupID, respond) })
	}
}

// Delete handles one group of DeleteGroups.
func (c *Coordinator) Delete(groupID string, respond func(*kerr.Error)) {
	if !c.busy.Enter() {
		respond(kerr.NotCoordinator)
		return
	}
	defer c.busy.Release()
	sh, err := c.route(groupID)
	if err != nil {
		respond(err)
		return
	}
	mb, err := c.lookup(sh, groupID, false)
	switch {
	case err != nil:
		respond(err)
	case mb == nil:
		respond(kerr.GroupIDNotFound)
	default:
		mb.request(func(g *Group, now time.Time) { g.Delete(now, respond) },
			func() { c.Delete(groupID, respond) })
	}
}

// DeleteOffsets handles an OffsetDelete.
func (c *Coordinator) DeleteOffsets(groupID string, topics []OffsetDeleteTopic, respond func(OffsetDeleteResult)) {
	if groupID == "" {
		respond(OffsetDeleteResult{Err: kerr.InvalidGroupID})
		return
	}
	if !c.busy.Enter() {
		respond(OffsetDeleteResult{Err: kerr.NotCoordinator})
		return
	}
	defer c.busy.Release()
	sh, err := c.route(groupID)
	if err != nil {
		respond(OffsetDeleteResult{Err: err})
		return
	}
	mb, err := c.lookup(sh, groupID, false)
	switch {
	case err != nil:
		respond(OffsetDeleteResult{Err: err})
	case mb == nil:
		respond(OffsetDeleteResult{Err: kerr.GroupIDNotFound})
	default:
		mb.request(func(g *Group, now time.Time) { g.DeleteOffsets(now, topics, respond) },
			func() { c.DeleteOffsets(groupID, topics, respond) })
	}
}

// List returns the groups of every loaded partition, sorted by ID, and
// COORDINATOR_LOAD_IN_PROGRESS when some partition is still loading
// (the groups listed are then incomplete, as in Kafka).
func (c *Coordinator) List() ([]ListedGroup, *kerr.Error) {
	shards := c.shards.Load()
	if shards == nil {
		return nil, nil
	}
	var out []ListedGroup
	var err *kerr.Error
	for _, sh := range shards {
		if !sh.Loaded() {
			err = kerr.CoordinatorLoadInProgress
			continue
		}
		for _, mb := range sh.Snapshot() {
			s := mb.summary.Load()
			if s.state == Dead {
				continue
			}
			out = append(out, ListedGroup{Group: mb.id, ProtocolType: s.protocolType, Type: s.typ, State: s.state, Members: s.members})
		}
	}
	slices.SortFunc(out, func(a, b ListedGroup) int { return strings.Compare(a.Group, b.Group) })
	return out, err
}

// ---- mailbox

// summary is what ListGroups shows of a group, published by its owner
// after every run.
type summary struct {
	state        State
	protocolType string
	// typ is "classic" or "consumer".
	typ     string
	members int
}

// mailbox owns one group.
type mailbox struct {
	c  *Coordinator
	sh *shard
	id string
	// g is the group; touched only by the running drain loop.
	g *Group
	// summary is published by the drain loop for List.
	summary atomic.Pointer[summary]

	// queue holds the messages the drain loop runs.
	queue coord.Queue[message]

	// retired is set when the mailbox's partition was resigned or
	// reloaded (the mailbox left its shard then): the drain loop
	// unloads the group, routes requests again and drops its own
	// messages (leadership.go). unloaded is set once it did; owned by
	// the drain loop.
	retired  atomic.Bool
	unloaded bool

	// timer and timerAt are the armed group deadline, and timerSeq
	// numbers the arming so a fired timer is known to be spent; owned
	// by the drain loop.
	timer    Timer
	timerAt  time.Time
	timerSeq uint64
}

// message is what a mailbox runs: fn on the group, or, once the mailbox
// is retired, redo (a request routed again); a message without redo
// (an append completion, a timer, a sweep) is dropped then.
type message struct {
	fn   func(g *Group, now time.Time)
	redo func()
}

func (c *Coordinator) newMailbox(sh *shard, g *Group) *mailbox {
	mb := &mailbox{c: c, sh: sh, id: g.id, g: g}
	g.h = mb
	mb.publish()
	return mb
}

func (mb *mailbox) publish() {
	s := &summary{state: mb.g.state, members: mb.g.memberCount(), typ: "classic"}
	if mb.g.hasProtocolType {
		s.protocolType = mb.g.protocolType
	}
	if mb.g.consumer != nil {
		s.protocolType, s.typ = ConsumerProtocolType, "consumer"
	}
	mb.summary.Store(s)
}

// do queues fn to run on the group's owner; a retired mailbox drops it.
func (mb *mailbox) do(fn func(g *Group, now time.Time)) { mb.send(message{fn: fn}) }

// request queues a client request: fn on the group, or redo once the
// mailbox is retired.
func (mb *mailbox) request(fn func(g *Group, now time.Time), redo func()) {
	mb.send(message{fn: fn, redo: redo})
}

func (mb *mailbox) send(m message) {
	if mb.queue.Push(m) {
		mb.c.busy.Acquire()
		go mb.run()
	}
}

// run is the drain loop.
func (mb *mailbox) run() {
	defer mb.c.busy.Release()
	for {
		q := mb.queue.Take()
		if q == nil {
			return
		}
		draining := mb.c.isDraining()
		for _, m := range q {
			if mb.retired.Load() {
				mb.unload()
				if m.redo != nil {
					m.redo()
				}
				continue
			}
			mb.step(func(g *Group, now time.Time) {
				// Deadlines that passed fire before the request, so
				// it sees the group as of now.
				if !draining {
					g.Tick(now)
				}
				m.fn(g, now)
			})
		}
		if mb.retired.Load() {
			mb.unload()
			continue
		}
		mb.settle()
	}
}

// step runs one message. A panic is a bug: it is logged and the group
// carries on, rather than taking the broker down.
func (mb *mailbox) step(fn func(g *Group, now time.Time)) {
	defer func() {
		if v := recover(); v != nil {
			mb.c.logger.Error("group coordinator panic", "group", mb.id, "panic", v, "stack", string(debug.Stack()))
		}
	}()
	fn(mb.g, mb.c.clock.Now())
}

// settle fires due timers, arms the next, publishes the summary and
// forgets a dead group.
func (mb *mailbox) settle() {
	g := mb.g
	if mb.c.isDraining() {
		mb.stopTimer()
	} else {
		mb.step(func(g *Group, now time.Time) {
			g.Tick(now)
			mb.arm(now, g.Deadline())
		})
	}
	mb.publish()
	if g.state == Dead {
		mb.sh.RemoveIf(mb.id, mb)
	}
}

func (mb *mailbox) stopTimer() {
	if mb.timer != nil {
		mb.timer.Stop()
		mb.timer, mb.timerAt = nil, time.Time{}
	}
}

func (mb *mailbox) arm(now, at time.Time) {
	if at.Equal(mb.timerAt) && mb.timer != nil {
		return
	}
	mb.stopTimer()
	if at.IsZero() {
		return
	}
	mb.timerSeq++
	seq := mb.timerSeq
	mb.timerAt = at
	mb.timer = mb.c.clock.AfterFunc(at.Sub(now), func() {
		if !mb.c.busy.Enter() {
			return
		}
		defer mb.c.busy.Release()
		mb.do(func(*Group, time.Time) {
			// The timer is spent: settle arms a new one even if the
			// deadline did not move.
			if mb.timerSeq == seq {
				mb.timer, mb.timerAt = nil, time.Time{}
			}
		})
	})
}

// append implements host: it encodes the records as one batch and
// appends it; the completion is queued to the mailbox.
func (mb *mailbox) append(recs []Record, complete func(now time.Time, err error)) {
	mb.appendBatch(batch.NewBuilder(batch.CodecNone), recs, complete)
}

// appendBatch encodes the records with b and appends the batch.
func (mb *mailbox) appendBatch(b *batch.Builder, recs []Record, complete func(now time.Time, err error)) {
	c := mb.c
	ts := c.clock.Now().UnixMilli()
	for _, r := range recs {
		b.Add(batch.Record{Timestamp: ts, Key: r.Key, Value: r.Value})
	}
	data, err := b.Build()
	if err != nil {
		mb.do(func(_ *Group, now time.Time) { complete(now, err) })
		return
	}
	if mb.retired.Load() {
		// The partition is another broker's, or reloading: the write
		// stays pending on the group, which unload answers
		// NOT_COORDINATOR.
		return
	}
	c.busy.Acquire()
	c.log.Append(mb.sh.Partition, data, func(err error) {
		mb.do(func(_ *Group, now time.Time) { complete(now, err) })
		c.busy.Release()
	})
}

// newMemberID implements host.
func (mb *mailbox) newMemberID(clientID string, instanceID *string) string {
	return mb.c.newID(clientID, instanceID)
}
