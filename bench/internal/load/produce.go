package load

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Produce is a produce-throughput workload.
type Produce struct {
	Topic string
	// Partitions creates the topic with this many partitions when > 0.
	Partitions int
	// TopicConfigs are passed to CreateTopics (retention.bytes, …).
	TopicConfigs map[string]string
	RecordSize   int
	// Producers is the number of independent clients (connections).
	Producers int
	Producer  ProducerConfig
	// Rate is the total offered rate in records/s shared by the
	// producers; 0 produces as fast as possible.
	Rate             float64
	Warmup, Duration time.Duration
	// SampleEvery > 0 records broker memory at that interval.
	SampleEvery time.Duration
	// GCPercent is this process's GOGC while the workload runs (0:
	// DefaultGCPercent; negative: left as it is).
	GCPercent int
}

// Run produces to t and measures the interval after the warm-up.
func (w Produce) Run(ctx context.Context, t Target, name string) (*Result, error) {
	if w.Producers < 1 {
		w.Producers = 1
	}
	if w.RecordSize < 8 {
		return nil, fmt.Errorf("record size %d: want at least 8", w.RecordSize)
	}
	defer setGCPercent(w.GCPercent)()
	if w.Partitions > 0 {
		if _, err := CreateTopic(ctx, t.Addr, w.Topic, w.Partitions, w.TopicConfigs); err != nil {
			return nil, err
		}
	}
	opts, err := w.Producer.opts(t.Addr, w.Topic)
	if err != nil {
		return nil, err
	}
	opts = append(opts, t.ClientOpts...)
	res := &Result{Workload: name, Target: t.Name, OfferedRate: w.Rate}
	var (
		bc      batchCounter
		acked   atomic.Int64
		window  atomic.Bool // acks counted into latency only inside the window
		mu      sync.Mutex  // guards res errors and acks
		acks    []time.Duration
		clients []*kgo.Client
	)
	opts = append(opts, kgo.WithHooks(&bc))
	for range w.Producers {
		cl, err := kgo.NewClient(opts...)
		if err != nil {
			return nil, err
		}
		clients = append(clients, cl)
	}
	defer func() {
		for _, cl := range clients {
			cl.Close()
		}
	}()
	// Connect and fetch metadata before the clock starts.
	for _, cl := range clients {
		if err := cl.Ping(ctx); err != nil {
			return nil, fmt.Errorf("ping %s: %w", t.Addr, err)
		}
	}

	vals := values(256, w.RecordSize)
	pool := sync.Pool{New: func() any { return new(kgo.Record) }}
	promise := func(r *kgo.Record, err error) {
		if err != nil {
			if window.Load() {
				mu.Lock()
				res.addError(err)
				mu.Unlock()
			}
		} else {
			acked.Add(1)
			if w.Rate > 0 && window.Load() {
				d := time.Since(r.Timestamp)
				mu.Lock()
				acks = append(acks, d)
				mu.Unlock()
			}
		}
		*r = kgo.Record{}
		pool.Put(r)
	}

	pctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { stop(); wg.Wait() }()
	lags := make([]time.Duration, w.Producers)
	start := time.Now()
	for i, cl := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var p *pacer
			if w.Rate > 0 {
				p = &pacer{rate: w.Rate / float64(w.Producers), start: start}
			}
			n := i * 17
			for pctx.Err() == nil {
				burst := int64(64)
				if p != nil {
					burst = p.due()
				}
				for range burst {
					r := pool.Get().(*kgo.Record)
					r.Value = vals[n&255]
					n++
					cl.Produce(pctx, r, promise)
				}
			}
			if p != nil {
				lags[i] = p.maxLag
			}
		}()
	}

	smp := startSampler(t, w.SampleEvery, true)
	if err := sleep(ctx, w.Warmup); err != nil {
		return nil, err
	}
	a, a0 := t.snap(), acked.Load()
	bc.armed.Store(true)
	window.Store(true)
	if err := sleep(ctx, w.Duration); err != nil {
		return nil, err
	}
	b, b0 := t.snap(), acked.Load()
	window.Store(false)
	bc.armed.Store(false)
	smp.finish(res)

	stop()
	wg.Wait()
	// Let what is buffered finish so the next workload starts on a
	// quiet broker; records failed by the cancelled context are not
	// counted (the window is closed).
	fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	for _, cl := range clients {
		cl.Flush(fctx)
	}
	cancel()

	n := b0 - a0
	res.fill(a, b, n, n*int64(w.RecordSize))
	res.RecordsPerBatch = bc.perBatch()
	res.starved(w.Duration)
	mu.Lock()
	res.AckLatency = summarize(acks)
	mu.Unlock()
	for _, l := range lags {
		res.SendLagMs = max(res.SendLagMs, ms(l))
	}
	if n == 0 {
		return res, fmt.Errorf("no record acknowledged in %s: %s", w.Duration, res.FirstError)
	}
	return res, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

var errNoData = errors.New("topic holds no records")
