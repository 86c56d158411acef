package load

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Consume reads a topic from its earliest offsets to the end offsets it
// had when the run started, with one consumer (no group), again and again
// until MinDuration has passed: one pass over a warm topic can be too
// short for CLK_TCK-resolution CPU readings.
type Consume struct {
	Topic       string
	MinDuration time.Duration
	// MaxPasses stops after that many passes even if MinDuration has
	// not passed; 0 means no limit.
	MaxPasses int
	// FetchMaxBytes and FetchMaxPartitionBytes are kgo's; 0 keeps its
	// defaults (50 MB and 1 MiB... as kgo defines them).
	FetchMaxBytes          int32
	FetchMaxPartitionBytes int32
	// GCPercent is this process's GOGC while the workload runs (0:
	// DefaultGCPercent; negative: left as it is).
	GCPercent int
}

// Run consumes from t and measures all passes.
func (w Consume) Run(ctx context.Context, t Target, name string) (*Result, error) {
	defer setGCPercent(w.GCPercent)()
	meta, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(t.Addr), kgo.ClientID("gregor-bench")}, t.ClientOpts...)...)
	if err != nil {
		return nil, err
	}
	start, end, err := offsets(ctx, meta, w.Topic)
	meta.Close()
	if err != nil {
		return nil, err
	}
	var total int64
	parts := map[int32]kgo.Offset{}
	for p, e := range end {
		total += e - start[p]
		parts[p] = kgo.NewOffset().At(start[p])
	}
	if total == 0 {
		return nil, fmt.Errorf("%s: %w", w.Topic, errNoData)
	}
	var bc batchCounter
	bc.armed.Store(true)
	opts := []kgo.Opt{
		kgo.SeedBrokers(t.Addr),
		kgo.ClientID("gregor-bench"),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{w.Topic: parts}),
		kgo.WithHooks(&bc),
	}
	opts = append(opts, t.ClientOpts...)
	if w.FetchMaxBytes > 0 {
		opts = append(opts, kgo.FetchMaxBytes(w.FetchMaxBytes))
	}
	if w.FetchMaxPartitionBytes > 0 {
		opts = append(opts, kgo.FetchMaxPartitionBytes(w.FetchMaxPartitionBytes))
	}

	res := &Result{Workload: name, Target: t.Name}
	smp := startSampler(t, 0, false)
	var records, payload int64
	passes := 0
	a := t.snap()
	for {
		n, bytes, err := w.pass(ctx, opts, total, res)
		records += n
		payload += bytes
		passes++
		if err != nil {
			smp.finish(res)
			return res, err
		}
		if time.Since(a.self.Time) >= w.MinDuration || (w.MaxPasses > 0 && passes >= w.MaxPasses) {
			break
		}
	}
	b := t.snap()
	smp.finish(res)
	res.fill(a, b, records, payload)
	res.RecordsPerBatch = bc.perBatch()
	res.Note = fmt.Sprintf("%d passes over %d records", passes, total)
	return res, nil
}

// pass reads total records with a new client.
func (w Consume) pass(ctx context.Context, opts []kgo.Opt, total int64, res *Result) (records, payload int64, err error) {
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return 0, 0, err
	}
	defer cl.Close()
	pctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	for records < total {
		fs := cl.PollFetches(pctx)
		if pctx.Err() != nil {
			return records, payload, fmt.Errorf("consumed %d of %d records: %w", records, total, pctx.Err())
		}
		fs.EachError(func(_ string, _ int32, err error) { res.addError(err) })
		fs.EachRecord(func(r *kgo.Record) {
			records++
			payload += int64(len(r.Value))
		})
	}
	return records, payload, nil
}
