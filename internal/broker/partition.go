package broker

import (
	"strings"
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/gregor-streaming/gregor/internal/config"
	"github.com/gregor-streaming/gregor/internal/metadata"
	"github.com/gregor-streaming/gregor/internal/metrics"
	"github.com/gregor-streaming/gregor/internal/partlog"
)

// leaderEpochError checks a request's CurrentLeaderEpoch against the
// partition's leader epoch (KIP-320), as Fetch, ListOffsets and
// OffsetForLeaderEpoch do: a newer one is UNKNOWN_LEADER_EPOCH, an older
// one FENCED_LEADER_EPOCH, -1 is not checked.
func leaderEpochError(current, epoch int32) *kerr.Error {
	switch {
	case current < 0 || current == epoch:
		return nil
	case current > epoch:
		return kerr.UnknownLeaderEpoch
	default:
		return kerr.FencedLeaderEpoch
	}
}

// partition is a partition this broker leads: its log, producer state
// and the waiters parked on it.
type partition struct {
	topic   string
	topicID metadata.UUID
	index   int32
	// log is the partition's log. Immutable; never nil.
	log *partlog.Log
	// cfg is the topic's effective configuration.
	cfg atomic.Pointer[config.TopicConfig]
	// settings are cfg's values the produce path needs, parsed.
	settings atomic.Pointer[produceSettings]
	// stats count the partition's traffic for /metrics; atomic.
	stats metrics.PartitionStats

	// mu serializes appends (producer-state checks, offset assignment)
	// and guards the fields below. Lock order: partsMu, then mu. No I/O
	// other than the append's page-cache write is done under mu.
	mu sync.Mutex
	// leaderEpoch is stamped on appended batches.
	leaderEpoch int32
	// producers is the idempotent producer state by producer ID.
	producers producerTable
	// ongoing maps producers with an open transaction on this
	// partition to its first offset; unstable are completed ones whose
	// marker is not below the high watermark yet; guards are the
	// transactional producers being verified with the coordinator
	// (producer.go).
	ongoing  map[int64]int64
	unstable []completedTxn
	guards   map[int64]*txnGuard
	// aborted is the aborted-transaction index; set by loadProducers,
	// never nil after. onIndexError logs its write failures.
	aborted      *partlog.TxnIndex
	onIndexError func(error)
	// watchers are parked fetches to wake when the high watermark
	// moves.
	watchers map[*fetchWaiter]struct{}
	// deleted is set when the topic is deleted; parked requests finish.
	deleted bool
	// bytesSinceSnapshot counts bytes appended since the last producer
	// state snapshot; snapshotting is set while one is written.
	bytesSinceSnapshot int64
	snapshotting       bool
	// snapshotNext is the producer snapshot file the next snapshot
	// overwrites: the one not holding the newest valid snapshot.
	snapshotNext string

	// leading is set while this broker leads the partition: clients'
	// requests are served only then (partitionAt). Written under mu.
	leading atomic.Bool
	// rep is the partition's replication state (replica.go).
	rep replicaState
}

// fetchWaiter is a parked fetch; wake has capacity 1.
type fetchWaiter struct {
	wake chan struct{}
}

func (w *fetchWaiter) signal() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (p *partition) watch(w *fetchWaiter) {
	p.mu.Lock()
	if p.watchers == nil {
		p.watchers = map[*fetchWaiter]struct{}{}
	}
	p.watchers[w] = struct{}{}
	deleted := p.deleted
	p.mu.Unlock()
	if deleted {
		w.signal()
	}
}

func (p *partition) unwatch(w *fetchWaiter) {
	p.mu.Lock()
	delete(p.watchers, w)
	p.mu.Unlock()
}

// notifyLocked wakes every parked fetch.
func (p *partition) notifyLocked() {
	for w := range p.watchers {
		w.signal()
	}
}

// produceSettings are the topic configuration values the produce path
// reads for every batch, parsed once when the configuration changes
// (config lookups with string parsing were 12% of produce CPU with many
// small batches). Immutable.
type produceSettings struct {
	maxMessageBytes int64
	logAppendTime   bool
	// tsBeforeMax and tsAfterMax bound CreateTime timestamps.
	tsBeforeMax, tsAfterMax int64
	// durable: acknowledged writes wait for fsync, Gregor's default;
	// setting flush.messages or flush.ms (Kafka's knobs) relaxes it.
	durable bool
	// compact: cleanup.policy includes compact (records need keys).
	compact bool
	// codec is compression.type's codec; recompress is false for
	// "producer" (keep the producer's).
	codec      int
	recompress bool
	// minInsync is min.insync.replicas: above 1, acks=all produce is
	// refused (one broker, one in-sync replica).
	minInsync int64
}

func newProduceSettings(c *config.TopicConfig) *produceSettings {
	_, src1, _ := c.Lookup("flush.messages")
	_, src2, _ := c.Lookup("flush.ms")
	codec, recompress := topicCodecs[c.String("compression.type")]
	return &produceSettings{
		maxMessageBytes: c.Int("max.message.bytes"),
		minInsync:       c.Int("min.insync.replicas"),
		logAppendTime:   c.String("message.timestamp.type") == "LogAppendTime",
		tsBeforeMax:     c.Int("message.timestamp.before.max.ms"),
		tsAfterMax:      c.Int("message.timestamp.after.max.ms"),
		durable:         src1 == config.SourceDefault && src2 == config.SourceDefault,
		// The policy values are "delete" and "compact" only, so a
		// substring test is exact.
		compact:    strings.Contains(c.String("cleanup.policy"), "compact"),
		codec:      codec,
		recompress: recompress,
	}
}

// setConfig installs the topic's effective configuration and its
// produce settings (newProduceSettings(c)). The settings are made once
// per topic and shared by its partitions: the produce path reads them
// for every batch, and with one copy per partition, producing one-record
// batches across 10,000 partitions missed the CPU cache on each.
func (p *partition) setConfig(c *config.TopicConfig, ps *produceSettings) {
	p.cfg.Store(c)
	p.settings.Store(ps)
}

// durable reports whether acknowledged writes wait for fsync.
func (p *partition) durable() bool { return p.settings.Load().durable }

// partlogConfig derives the log's configuration from a topic's.
func partlogConfig(c *config.TopicConfig) partlog.Config {
	pc := partlog.DefaultConfig()
	pc.SegmentBytes = c.Int("segment.bytes")
	pc.SegmentMs = c.Int("segment.ms")
	if strings.Contains(c.String("cleanup.policy"), "compact") {
		// KIP-354: the active segment is never compacted, so on a
		// compacted topic it rolls within max.compaction.lag.ms.
		pc.SegmentMs = min(pc.SegmentMs, c.Int("max.compaction.lag.ms"))
	}
	pc.IndexIntervalBytes = int32(c.Int("index.interval.bytes"))
	pc.SegmentIndexBytes = int32(c.Int("segment.index.bytes"))
	return pc
}
