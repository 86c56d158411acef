package broker

import (
	"context"
	"errors"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gregor-streaming/gregor/internal/config"
	"github.com/gregor-streaming/gregor/internal/partlog"
)

// The background work on partition logs, each loop a goroutine the
// broker tracks (stopped by Drain/Close):
//
//   - retention: every log.retention.check.interval.ms, and soon after a
//     segment rolls, delete the segments of cleanup.policy=delete topics
//     past retention.ms or retention.bytes (Kafka's LogManager
//     cleanupLogs, which only runs on the interval);
//   - compaction: Kafka's log cleaner: pick the dirtiest logs of
//     cleanup.policy=compact topics whose dirty ratio reaches
//     min.cleanable.dirty.ratio (or whose oldest dirty data passed
//     max.compaction.lag.ms, or whose tombstones expired), compact up to
//     log.cleaner.threads of them at a time, and sleep
//     log.cleaner.backoff.ms when none needs it. An active segment idle
//     for longer than max.compaction.lag.ms is rolled so it can be
//     compacted (Kafka rolls it only at the next append);
//   - storage recovery: a partition whose log failed (an fsync error, or
//     a write that could not be undone) answers produce with
//     KAFKA_STORAGE_ERROR; every storageRetryInterval the broker reopens
//     it, which re-runs recovery, so it takes writes again once the disk
//     is healthy.
//
// Every setting is read at each pass, so dynamic changes apply without
// a restart.

// storageRetryInterval is how often failed logs are reopened.
const storageRetryInterval = time.Second

// startBackground starts the retention, compaction and storage recovery
// loops.
func (b *Broker) startBackground() {
	b.goTracked(b.retentionLoop)
	b.goTracked(b.compactionLoop)
	b.goTracked(b.storageRecoveryLoop)
}

// sleep waits d or until the broker stops; false when it stopped.
func (b *Broker) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-b.ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// allPartitions returns the open partitions (this broker's, in a
// cluster).
func (b *Broker) allPartitions() []*partition {
	b.partsMu.RLock()
	defer b.partsMu.RUnlock()
	var out []*partition
	for _, ps := range b.parts {
		for _, p := range ps {
			if p != nil {
				out = append(out, p)
			}
		}
	}
	return out
}

// kickRetention asks for a retention pass soon: a segment rolled, so
// retention.bytes may be exceeded by a whole segment. Without it the
// partition would grow by whatever arrives between two passes (Kafka's
// behaviour); with it, a pass follows each roll. Called under the
// log's lock (partlog.Options.OnRoll): it only signals.
func (b *Broker) kickRetention() {
	select {
	case b.retentionKick <- struct{}{}:
	default:
	}
}

// minRetentionGap spaces passes that rolls trigger.
const minRetentionGap = 10 * time.Millisecond

func (b *Broker) retentionLoop() {
	for {
		interval := time.Duration(b.Config().Int("log.retention.check.interval.ms")) * time.Millisecond
		t := time.NewTimer(max(interval, time.Millisecond))
		select {
		case <-b.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		case <-b.retentionKick:
			t.Stop()
		}
		b.enforceRetention()
		if !b.sleep(minRetentionGap) {
			return
		}
	}
}

// enforceRetention runs one retention pass over every partition.
func (b *Broker) enforceRetention() {
	now := b.now()
	for _, p := range b.allPartitions() {
		if b.ctx.Err() != nil {
			return
		}
		cfg := p.cfg.Load()
		if !hasCleanupPolicy(cfg, "delete") || p.log.Failed() != nil {
			continue
		}
		res, err := p.log.EnforceRetention(partlog.Retention{Ms: cfg.Int("retention.ms"), Bytes: cfg.Int("retention.bytes"), Now: now})
		if err != nil {
			if !errors.Is(err, partlog.ErrClosed) {
				b.log.Error("retention failed", "topic", p.topic, "partition", p.index, "err", err)
			}
			continue
		}
		if res.Segments > 0 {
			b.log.Info("deleted log segments past retention", "topic", p.topic, "partition", p.index,
				"segments", res.Segments, "bytes", res.Bytes, "by_time", res.ByTime, "by_size", res.BySize,
				"log_start_offset", res.LogStartOffset)
		}
	}
}

func (b *Broker) compactionLoop() {
	th := &throttler{}
	for {
		cfg := b.Config()
		backoff := time.Duration(cfg.Int("log.cleaner.backoff.ms")) * time.Millisecond
		threads := int(cfg.Int("log.cleaner.threads"))
		if !cfg.Bool("log.cleaner.enable") || threads <= 0 {
			if !b.sleep(max(backoff, 100*time.Millisecond)) {
				return
			}
			continue
		}
		th.setRate(cfg.Float("log.cleaner.io.max.bytes.per.second"))
		if n := b.compactDirtiest(cfg, threads, th); n == 0 {
			if !b.sleep(max(backoff, time.Millisecond)) {
				return
			}
		}
		if b.ctx.Err() != nil {
			return
		}
	}
}

// compactDirtiest compacts up to threads of the logs that need it most,
// concurrently, and returns how many it compacted.
func (b *Broker) compactDirtiest(cfg *config.BrokerConfig, threads int, th *throttler) int {
	type candidate struct {
		p     *partition
		ratio float64
	}
	now := b.now()
	var cands []candidate
	for _, p := range b.allPartitions() {
		tcfg := p.cfg.Load()
		if !hasCleanupPolicy(tcfg, "compact") || p.log.Failed() != nil {
			continue
		}
		// Like Kafka, never past the last stable offset: an open
		// transaction's fate is not known yet.
		c, err := p.log.Cleanability(now, tcfg.Int("min.compaction.lag.ms"), p.lastStableOffset())
		if err != nil {
			continue
		}
		maxLag := tcfg.Int("max.compaction.lag.ms")
		if c.ActiveSize > 0 && c.ActiveMaxTimestamp >= 0 && now.UnixMilli()-c.ActiveMaxTimestamp > maxLag {
			// The active segment is never compacted and rolls only on
			// an append: roll an idle one so its records do not stay
			// uncompacted past max.compaction.lag.ms.
			if err := p.log.Roll(); err == nil {
				p.log.RequestSync(func(int64, error) {})
			}
		}
		ratio := c.DirtyRatio()
		overdue := c.DirtyBytes > 0 && c.FirstDirtyTimestamp >= 0 &&
			now.UnixMilli()-c.FirstDirtyTimestamp > maxLag
		if c.DirtyBytes > 0 && ratio >= tcfg.Float("min.cleanable.dirty.ratio") || overdue || c.TombstonesDue {
			if overdue || c.TombstonesDue {
				ratio = math.Inf(1) // Kafka cleans logs past their max lag first
			}
			cands = append(cands, candidate{p, ratio})
		}
	}
	if len(cands) == 0 {
		return 0
	}
	slices.SortFunc(cands, func(a, b candidate) int {
		switch {
		case a.ratio > b.ratio:
			return -1
		case a.ratio < b.ratio:
			return 1
		}
		return 0
	})
	cands = cands[:min(threads, len(cands))]
	maxKeys := int(cfg.Int("log.cleaner.dedupe.buffer.size") / 32 / int64(len(cands)))
	buf := int(cfg.Int("log.cleaner.io.buffer.size"))
	var wg sync.WaitGroup
	var worked atomic.Int32
	for _, c := range cands {
		wg.Add(1)
		go func() { // joined below; the loop's goroutine is tracked
			defer wg.Done()
			if b.compact(c.p, now, maxKeys, buf, th) {
				worked.Add(1)
			}
		}()
	}
	wg.Wait()
	// Candidates that could do nothing (segments changed under the
	// pass, an error) must not make the loop spin without its backoff.
	return int(worked.Load())
}

// compact runs one compaction pass over p and reports whether it
// rewrote or read anything.
func (b *Broker) compact(p *partition, now time.Time, maxKeys, bufSize int, th *throttler) bool {
	tcfg := p.cfg.Load()
	start := time.Now()
	res, err := p.log.Compact(b.ctx, partlog.CompactOptions{
		Now:                 now,
		DeleteRetentionMs:   tcfg.Int("delete.retention.ms"),
		MinCompactionLagMs:  tcfg.Int("min.compaction.lag.ms"),
		UnstableOffset:      p.lastStableOffset(),
		MaxKeys:             maxKeys,
		BufferSize:          bufSize,
		ProducerLastOffsets: p.producerLastOffsets(),
		Throttle:            th.wait,
	})
	switch {
	case err == nil:
	case errors.Is(err, context.Canceled), errors.Is(err, partlog.ErrClosed):
		return false
	default:
		b.log.Error("compaction failed", "topic", p.topic, "partition", p.index, "err", err)
		return false
	}
	if res.Segments == 0 {
		return false
	}
	b.log.Info("log compacted", "topic", p.topic, "partition", p.index,
		"segments", res.Segments, "into", res.Groups, "bytes_before", res.BytesBefore, "bytes_after", res.BytesAfter,
		"records_removed", res.RecordsRemoved, "tombstones_removed", res.TombstonesRemoved,
		"cleaned_to", res.CleanedTo, "elapsed", time.Since(start).Round(time.Millisecond))
	return true
}

// producerLastOffsets maps each producer with state on p to the last
// offset of its latest batch, which compaction keeps so the producer's
// sequence state is rebuilt from the log (Kafka keeps it too).
func (p *partition) producerLastOffsets() map[int64]int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := make(map[int64]int64, p.producers.len())
	for id, st := range p.producers.all() {
		if n := len(st.batches); n > 0 {
			m[id] = st.batches[n-1].lastOffset
		}
	}
	return m
}

func (b *Broker) storageRecoveryLoop() {
	for b.sleep(storageRetryInterval) {
		for _, p := range b.allPartitions() {
			if b.ctx.Err() != nil {
				return
			}
			if p.log.Failed() != nil {
				b.recoverPartition(p)
			}
		}
	}
}

// recoverPartition reopens a failed partition log, rebuilding the
// producer state from what recovery kept: the log may have lost batches
// that never became durable, and an idempotent producer's retry of one
// must be appended, not answered as a duplicate. p.mu is held throughout
// (an exception to "no I/O under partition.mu", for a rare repair) so no
// append lands between the reopen and the new producer state.
func (b *Broker) recoverPartition(p *partition) {
	var fire []*hwWaiter
	defer func() { fireAll(fire, nil) }()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.deleted {
		return
	}
	failure := p.log.Failed()
	if failure == nil {
		return
	}
	if err := p.log.Reopen(); err != nil {
		b.log.Warn("partition log still failing", "topic", p.topic, "partition", p.index, "err", err)
		return
	}
	if err := b.loadProducers(p); err != nil {
		b.log.Error("rebuilding producer state after storage recovery", "topic", p.topic, "partition", p.index, "err", err)
	}
	// Everything recovery kept is durable here; the high watermark
	// follows as far as the ISR allows (all of it with one replica).
	p.rep.localEnd = p.log.LogEndOffset()
	fire = p.updateHighWatermarkLocked()
	p.notifyLocked()
	b.log.Info("partition log recovered after a storage failure", "topic", p.topic, "partition", p.index,
		"failure", failure, "log_end_offset", p.log.LogEndOffset())
}

// throttler limits the compactor's I/O to a rate shared by its threads
// (log.cleaner.io.max.bytes.per.second), measuring in windows as Kafka's
// Throttler does.
type throttler struct {
	mu     sync.Mutex
	rate   float64 // bytes per second; +Inf or huge = unlimited
	start  time.Time
	amount float64
}

func (t *throttler) setRate(r float64) {
	t.mu.Lock()
	t.rate = r
	t.mu.Unlock()
}

const throttleWindow = 300 * time.Millisecond

// wait accounts n bytes and sleeps when the rate is exceeded.
func (t *throttler) wait(n int) {
	t.mu.Lock()
	if t.rate <= 0 || t.rate >= 1e300 {
		t.mu.Unlock()
		return
	}
	now := time.Now()
	if t.start.IsZero() || now.Sub(t.start) > 10*throttleWindow {
		t.start, t.amount = now, 0
	}
	t.amount += float64(n)
	elapsed := now.Sub(t.start)
	var sleep time.Duration
	if elapsed >= throttleWindow || t.amount > t.rate*throttleWindow.Seconds() {
		want := time.Duration(t.amount / t.rate * float64(time.Second))
		if want > elapsed {
			sleep = want - elapsed
		}
		t.start, t.amount = now.Add(sleep), 0
	}
	t.mu.Unlock()
	if sleep > 0 {
		time.Sleep(sleep)
	}
}
