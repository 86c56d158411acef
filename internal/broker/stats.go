package broker

import (
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/metrics"
)

// This file is the broker's side of /metrics: metrics.BrokerSource, read
// at scrape time, and the few helpers the request path calls.

// Stats returns the broker's request-path instruments.
func (b *Broker) Stats() *metrics.BrokerStats { return &b.stats }

// CollectPartitions calls fn for every partition the broker hosts, with
// its log's size, segment count and offsets.
func (b *Broker) CollectPartitions(fn func(metrics.PartitionInfo)) {
	for _, p := range b.allPartitions() {
		segs := p.log.Segments() // nil once the log closed (topic deleted)
		if segs == nil {
			continue
		}
		var size int64
		for _, s := range segs {
			size += s.Size
		}
		p.mu.Lock()
		leader := p.leading.Load()
		under := leader && len(p.rep.isr) < len(p.rep.replicas)
		p.mu.Unlock()
		fn(metrics.PartitionInfo{
			Leader:          leader,
			UnderReplicated: under,
			Topic:           p.topic,
			Partition:       p.index,
			Size:            size,
			Segments:        len(segs),
			LogStartOffset:  p.log.LogStartOffset(),
			HighWatermark:   p.log.HighWatermark(),
			LogEndOffset:    p.log.LogEndOffset(),
			Stats:           &p.stats,
		})
	}
}

// CollectGroups calls fn for every consumer group this broker
// coordinates. While __consumer_offsets partitions are still loading
// the groups listed are incomplete, as ListGroups' are.
func (b *Broker) CollectGroups(fn func(metrics.GroupInfo)) {
	c := b.groups.coord
	if c == nil {
		return
	}
	groups, _ := c.List()
	for _, g := range groups {
		fn(metrics.GroupInfo{Group: g.Group, State: g.State.String(), Members: g.Members})
	}
}

// slowFsync is the fsync duration logged as slow: a healthy disk syncs
// in milliseconds; a second means produces with acks wait that long.
const slowFsync = time.Second

// slowFsyncLogEvery rate-limits the slow-fsync warning on a sick disk.
const slowFsyncLogEvery = 10 * time.Second

// lastSlowFsyncLog is the UnixNano of the last slow-fsync warning.
var lastSlowFsyncLog atomic.Int64

// observeCacheAdvice counts the Syncer's page-cache advice.
func (b *Broker) observeCacheAdvice(drop bool, n int64) {
	if drop {
		b.stats.CacheReleased.Add(n)
	} else {
		b.stats.CachePrefetched.Add(n)
	}
}

// observeFsync is the Syncer's observer: the fsync latency histogram and
// a rate-limited warning when the disk is slow.
func (b *Broker) observeFsync(d time.Duration) {
	b.stats.Fsync.Observe(d)
	if d < slowFsync {
		return
	}
	now := time.Now().UnixNano()
	last := lastSlowFsyncLog.Load()
	if now-last < int64(slowFsyncLogEvery) || !lastSlowFsyncLog.CompareAndSwap(last, now) {
		return
	}
	b.log.Warn("slow fsync", "elapsed", d.Round(time.Millisecond), "data_dir", b.dir)
}

// countFetch wraps a fetch's respond so the response, once final, is
// counted per partition: bytes and records out, failures. A parked fetch
// reads several times; only what is sent counts.
func (b *Broker) countFetch(targets []fetchTarget, resp *fetchResponse, respond func(kmsg.Response)) func(kmsg.Response) {
	return func(r kmsg.Response) {
		for i := range targets {
			t := &targets[i]
			if t.p == nil {
				continue
			}
			if sp, ok := resp.span(t.resp.RecordBatches); ok {
				t.p.stats.FetchedN(int64(sp.Len), sp.Records, t.resp.ErrorCode != 0)
			} else {
				t.p.stats.Fetched(t.resp.RecordBatches, t.resp.ErrorCode != 0)
			}
		}
		respond(r)
	}
}

var _ metrics.BrokerSource = (*Broker)(nil)
