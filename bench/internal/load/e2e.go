package load

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// E2E measures end-to-end latency: one producer sends at a fixed rate to
// one partition, each record carrying its send time (UnixNano, first 8
// bytes of the value); one consumer tailing the partition computes
// receipt time minus send time. Producer and consumer share this
// process's clock. Consumers see a record only once it is below the high
// watermark, so with a durable broker the figure includes the fsync.
type E2E struct {
	Topic string
	// Partitions creates the topic when > 0 (the workload uses 1).
	Partitions       int
	RecordSize       int
	Rate             float64
	Producer         ProducerConfig
	Warmup, Duration time.Duration
	// Drain is how long to wait after the window for stragglers.
	Drain time.Duration
	// TopicConfigs are passed to CreateTopics (retention.bytes, …).
	TopicConfigs map[string]string
	// SampleEvery > 0 records broker memory at that interval.
	SampleEvery time.Duration
	// GCPercent is this process's GOGC while the workload runs (0:
	// DefaultGCPercent; negative: left as it is). The instrument's own
	// collections stall its producer and consumer, and those stalls
	// land in the latency it reports for the broker.
	GCPercent int
}

// Run runs the workload against t.
func (w E2E) Run(ctx context.Context, t Target, name string) (*Result, error) {
	if w.RecordSize < 8 {
		return nil, fmt.Errorf("record size %d: want at least 8", w.RecordSize)
	}
	if w.Rate <= 0 {
		return nil, fmt.Errorf("e2e needs a rate")
	}
	if w.Drain <= 0 {
		w.Drain = 5 * time.Second
	}
	defer setGCPercent(w.GCPercent)()
	if w.Partitions > 0 {
		if _, err := CreateTopic(ctx, t.Addr, w.Topic, w.Partitions, w.TopicConfigs); err != nil {
			return nil, err
		}
	}
	popts, err := w.Producer.opts(t.Addr, w.Topic)
	if err != nil {
		return nil, err
	}
	popts = append(popts, t.ClientOpts...)
	prod, err := kgo.NewClient(popts...)
	if err != nil {
		return nil, err
	}
	defer prod.Close()
	_, end, err := offsets(ctx, prod, w.Topic)
	if err != nil {
		return nil, err
	}
	parts := map[int32]kgo.Offset{}
	for p, e := range end {
		parts[p] = kgo.NewOffset().At(e)
	}
	cons, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(t.Addr),
		kgo.ClientID("gregor-bench"),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{w.Topic: parts}),
	}, t.ClientOpts...)...)
	if err != nil {
		return nil, err
	}
	defer cons.Close()
	if err := prod.Ping(ctx); err != nil {
		return nil, err
	}

	res := &Result{Workload: name, Target: t.Name, OfferedRate: w.Rate}
	// Window membership is decided after the run from the send times,
	// so producer and consumer cannot disagree about a record sent while
	// the window opened.
	var (
		mu   sync.Mutex // guards recv, res errors
		recv []sample   // every record received
		acks []sample   // every record acknowledged: send time, ack time
		sent []int64    // every send time; only the producer goroutine appends
	)
	cctx, stopCons := context.WithCancel(ctx)
	consDone := make(chan struct{})
	defer func() { stopCons(); <-consDone }()
	go func() {
		defer close(consDone)
		for cctx.Err() == nil {
			fs := cons.PollFetches(cctx)
			now := time.Now().UnixNano()
			fs.EachError(func(_ string, _ int32, err error) {
				if cctx.Err() == nil {
					mu.Lock()
					res.addError(err)
					mu.Unlock()
				}
			})
			mu.Lock()
			fs.EachRecord(func(r *kgo.Record) {
				if len(r.Value) >= 8 {
					recv = append(recv, sample{int64(binary.LittleEndian.Uint64(r.Value)), now})
				}
			})
			mu.Unlock()
		}
	}()

	pctx, stopProd := context.WithCancel(ctx)
	prodDone := make(chan struct{})
	defer func() { stopProd(); <-prodDone }()
	p := &pacer{rate: w.Rate, start: time.Now()}
	var closing atomic.Bool // set once the run is measured: later failures are the client closing
	promise := func(r *kgo.Record, err error) {
		now := time.Now().UnixNano()
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			if ctx.Err() == nil && !closing.Load() {
				res.addError(err)
			}
			return
		}
		acks = append(acks, sample{int64(binary.LittleEndian.Uint64(r.Value)), now})
	}
	go func() {
		defer close(prodDone)
		for pctx.Err() == nil {
			for range p.due() {
				v := make([]byte, w.RecordSize)
				ns := time.Now().UnixNano()
				binary.LittleEndian.PutUint64(v, uint64(ns))
				sent = append(sent, ns)
				// ctx, not pctx: stopping the sender must not fail
				// records still buffered from inside the window.
				prod.Produce(ctx, &kgo.Record{Value: v}, promise)
			}
		}
	}()

	smp := startSampler(t, w.SampleEvery, true)
	if err := sleep(ctx, w.Warmup); err != nil {
		return nil, err
	}
	a := t.snap()
	if err := sleep(ctx, w.Duration); err != nil {
		return nil, err
	}
	b := t.snap()
	smp.finish(res)
	stopProd()
	<-prodDone
	ws, we := a.self.Time.UnixNano(), b.self.Time.UnixNano()
	var n int64
	for _, ns := range sent {
		if ns >= ws && ns < we {
			n++
		}
	}
	var lat []time.Duration
	deadline := time.Now().Add(w.Drain)
	for {
		mu.Lock()
		lat = inWindow(lat[:0], recv, ws, we)
		mu.Unlock()
		if int64(len(lat)) >= n || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	closing.Store(true)
	stopCons()
	<-consDone
	// The acknowledgement part of the end-to-end figure: what is left
	// is the consumer's side (fetch wake-up and delivery).
	mu.Lock()
	res.AckLatency = summarize(inWindow(nil, acks, ws, we))
	mu.Unlock()

	res.fill(a, b, n, n*int64(w.RecordSize))
	res.starved(w.Duration)
	res.Latency = summarize(lat)
	res.Missing = n - int64(len(lat))
	res.SendLagMs = ms(p.maxLag)
	if res.Latency == nil {
		return res, fmt.Errorf("no record received end to end: %s", res.FirstError)
	}
	return res, nil
}

// sample is one record's send time and the time it was received or
// acknowledged (UnixNano).
type sample struct{ sent, got int64 }

// inWindow appends to dst the latencies of the samples sent in [ws, we).
func inWindow(dst []time.Duration, ss []sample, ws, we int64) []time.Duration {
	for _, s := range ss {
		if s.sent >= ws && s.sent < we {
			dst = append(dst, time.Duration(s.got-s.sent))
		}
	}
	return dst
}
