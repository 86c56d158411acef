package broker

import (
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/gregor-streaming/gregor/internal/config"
	"github.com/gregor-streaming/gregor/internal/group"
)

// groupsState wires the group coordinator to the broker: the internal
// topic __consumer_offsets, created on first use as Kafka does, and the
// append/replay paths the coordinator writes and loads through.
type groupsState struct {
	// coord is the coordinator; set by openGroups. Never nil after Open.
	coord *group.Coordinator
	// createMu serializes creating __consumer_offsets.
	createMu sync.Mutex
}

// groupConfig derives the coordinator's settings from the broker's.
func groupConfig(cfg *config.BrokerConfig) group.Config {
	ms := func(name string) time.Duration { return time.Duration(cfg.Int(name)) * time.Millisecond }
	return group.Config{
		InitialRebalanceDelay:         ms("group.initial.rebalance.delay.ms"),
		MinSessionTimeout:             ms("group.min.session.timeout.ms"),
		MaxSessionTimeout:             ms("group.max.session.timeout.ms"),
		MaxSize:                       int(cfg.Int("group.max.size")),
		OffsetsRetention:              time.Duration(cfg.Int("offsets.retention.minutes")) * time.Minute,
		OffsetsRetentionCheckInterval: ms("offsets.retention.check.interval.ms"),
		OffsetMetadataMaxBytes:        int(cfg.Int("offset.metadata.max.bytes")),
		ConsumerHeartbeatInterval:     ms("group.consumer.heartbeat.interval.ms"),
		ConsumerSessionTimeout:        ms("group.consumer.session.timeout.ms"),
		ConsumerMaxSize:               int(cfg.Int("group.consumer.max.size")),
	}
}

// openGroups creates the coordinator and, when __consumer_offsets
// exists, starts loading its groups (in the background: the coordinator
// answers COORDINATOR_LOAD_IN_PROGRESS meanwhile).
func (b *Broker) openGroups() {
	b.groups.coord = group.New(group.Options{
		Config: groupConfig(b.Config()),
		Log:    internalLog{b, OffsetsTopic},
		Clock:  group.RealClock{NowFunc: b.now},
		Logger: b.log.With("component", "group-coordinator"),
	})
	if _, ok := b.meta.Image().Topic(OffsetsTopic); ok {
		b.startCoordinator(b.groups.coord, OffsetsTopic)
	}
}

// coordinator returns the group coordinator, creating __consumer_offsets
// first if needed, so the first group request of a fresh broker is
// served rather than bounced with COORDINATOR_NOT_AVAILABLE.
func (b *Broker) coordinator() (*group.Coordinator, *kerr.Error) {
	c := b.groups.coord
	if err := b.startInternalCoordinator(c, &b.groups.createMu, OffsetsTopic, func(cfg *config.BrokerConfig) *topicSpec {
		return &topicSpec{
			name:              OffsetsTopic,
			partitions:        int32(cfg.Int("offsets.topic.num.partitions")),
			replicationFactor: b.internalReplicationFactor(cfg.Int("offsets.topic.replication.factor")),
			configs: map[string]string{
				"cleanup.policy":   "compact",
				"segment.bytes":    strconv.FormatInt(cfg.Int("offsets.topic.segment.bytes"), 10),
				"compression.type": "producer",
			},
		}
	}); err != nil {
		return nil, err
	}
	return c, nil
}

// internalCoordinator is what the group and transaction coordinators
// share for starting over their internal topic.
type internalCoordinator interface {
	Started() bool
	Start(partitions int32, owned func(int32) bool)
	WaitLoaded(timeout time.Duration) bool
	Elect(partition, epoch int32)
	Resign(partition, epoch int32)
}

// startInternalCoordinator starts c over the internal topic name unless
// it runs, creating the topic from spec first if it does not exist;
// createMu serializes the creation. When the topic was just created its
// partitions are empty, so loading is quick, and the request that
// created it waits for the load rather than being told
// COORDINATOR_LOAD_IN_PROGRESS.
func (b *Broker) startInternalCoordinator(c internalCoordinator, createMu *sync.Mutex, name string, spec func(*config.BrokerConfig) *topicSpec) *kerr.Error {
	if c.Started() {
		return nil
	}
	createMu.Lock()
	defer createMu.Unlock()
	if c.Started() {
		return nil
	}
	_, created, kerrv := b.ensureInternalTopic(name, spec)
	if kerrv != nil {
		return kerrv
	}
	if b.cluster {
		// Another broker may have created the topic: open this
		// broker's partitions of it now, not when followMetadata
		// gets to it, so the coordinator loads them at once.
		if err := b.reconcile(b.meta.Image()); err != nil {
			b.log.Error("opening the partitions of an internal topic", "topic", name, "err", err)
			return kerr.CoordinatorNotAvailable
		}
	}
	b.startCoordinator(c, name)
	if created {
		c.WaitLoaded(internalTopicLoadWait)
	}
	return nil
}

// internalTopicLoadWait bounds how long the request that created a
// coordinator's internal topic waits for the coordinator to load it.
const internalTopicLoadWait = 10 * time.Second

// ensureInternalTopic returns the partition count of the internal topic
// name, creating it from spec first if it does not exist (created is
// then true). Any failure is COORDINATOR_NOT_AVAILABLE. Callers
// serialize calls for one topic.
func (b *Broker) ensureInternalTopic(name string, spec func(*config.BrokerConfig) *topicSpec) (n int32, created bool, _ *kerr.Error) {
	if t, ok := b.meta.Image().Topic(name); ok {
		return int32(len(t.Partitions)), false, nil
	}
	errs, _, err := b.createTopics([]*topicSpec{spec(b.Config())}, false)
	if err == nil && errs[0] != nil && errs[0].err != kerr.TopicAlreadyExists {
		err = errs[0]
	}
	if err != nil {
		b.log.Error("cannot create "+name, "err", err)
		return 0, false, kerr.CoordinatorNotAvailable
	}
	t, ok := b.meta.Image().Topic(name)
	if !ok {
		return 0, false, kerr.CoordinatorNotAvailable
	}
	return int32(len(t.Partitions)), true, nil
}

// startedCoordinator returns the coordinator if __consumer_offsets
// exists; read-only requests (ListGroups, DescribeGroups, …) do not
// create the topic.
func (b *Broker) startedCoordinator() *group.Coordinator {
	if c := b.groups.coord; c.Started() {
		return c
	}
	return nil
}

// groupsTopicsDeleted drops the committed offsets of deleted topics,
// as Kafka does, so a topic re-created with the same name starts
// without them.
func (b *Broker) groupsTopicsDeleted(topics []string) {
	if c := b.groups.coord; c != nil && len(topics) > 0 {
		c.TopicsDeleted(topics)
	}
}

// internalLog is a coordinator's Log (group.Log, txn.Log) over its
// internal topic: appends go through the same partition append and
// fsync path as produce.
type internalLog struct {
	b     *Broker
	topic string
}

func (l internalLog) partition(i int32) *partition {
	return l.b.partitionOf(l.b.meta.Image(), l.topic, i)
}

// Append implements group.Log and txn.Log.
func (l internalLog) Append(i int32, data []byte, done func(error)) {
	p := l.partition(i)
	if p == nil {
		done(kerr.NotLeaderForPartition)
		return
	}
	l.b.appendInternal(p, data, done)
}

// appendInternal appends a batch built by the broker itself (internal
// topics) and calls done once it is durable: unlike produce it always
// waits for fsync, whatever flush.messages says, since the coordinator
// acknowledges commits only then.
func (b *Broker) appendInternal(p *partition, data []byte, done func(error)) {
	if max := p.cfg.Load().Int("max.message.bytes"); int64(len(data)) > max {
		done(kerr.MessageTooLarge)
		return
	}
	p.mu.Lock()
	if p.deleted {
		p.mu.Unlock()
		done(kerr.NotLeaderForPartition)
		return
	}
	base, last, err := p.log.Append(data, p.leaderEpoch)
	if err == nil {
		p.noteInternalAppendLocked(data, base, last)
		p.notifyAppendLocked()
	}
	p.mu.Unlock()
	if err != nil {
		b.log.Error("append failed", "topic", p.topic, "partition", p.index, "err", err)
		done(fmt.Errorf("%w: %w", kerr.KafkaStorageError, err))
		return
	}
	p.log.RequestSync(func(durable int64, err error) {
		if err != nil {
			b.log.Error("fsync failed", "topic", p.topic, "partition", p.index, "err", err)
			done(fmt.Errorf("%w: %w", kerr.KafkaStorageError, err))
			return
		}
		p.durableAwait(durable, last+1, internalReplicationTimeout, func(err *kerr.Error) {
			if err != nil {
				done(err)
				return
			}
			done(nil)
		})
	})
}

// internalReplicationTimeout bounds how long a coordinator's write or a
// transaction marker waits for the ISR to replicate it.
const internalReplicationTimeout = 30 * time.Second

// replayChunk is how much of an internal topic is read at a time when
// a coordinator loads.
const replayChunk = 1 << 20

// Replay implements group.Log and txn.Log: every batch from the log
// start to the high watermark.
func (l internalLog) Replay(i int32, fn func([]byte) error) error {
	p := l.partition(i)
	if p == nil {
		return fmt.Errorf("broker: %s-%d is not open", l.topic, i)
	}
	return replayPartition(p, fn)
}

// clientHost is the client's address as Kafka shows it in
// DescribeGroups ("/" and the IP).
func clientHost(remote string) string {
	if h, _, err := net.SplitHostPort(remote); err == nil {
		return "/" + h
	}
	return "/" + remote
}

// gather counts down callbacks of a fanned-out request and calls done
// after the last. Each callback writes only its own slot of the
// response; the atomic counter orders those writes before done.
type gather struct {
	left atomic.Int32
	done func()
}

func newGather(n int, done func()) *gather {
	g := &gather{done: done}
	g.left.Store(int32(n) + 1)
	return g
}

// one marks one callback finished.
func (g *gather) one() {
	if g.left.Add(-1) == 0 {
		g.done()
	}
}
