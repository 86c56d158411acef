package metrics

import (
	"math"
	"sync/atomic"
	"time"
)

// LatencyBuckets are the upper bounds, in seconds, of every latency
// histogram: 100µs to 10s, roughly ×2.5 apart, which covers a page-cache
// produce and a 5 s long-poll fetch alike.
var LatencyBuckets = [...]float64{
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
	0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
}

// latencyBounds are LatencyBuckets in nanoseconds, for Observe.
var latencyBounds = func() (b [len(LatencyBuckets)]int64) {
	for i, s := range LatencyBuckets {
		b[i] = int64(math.Round(s * 1e9))
	}
	return b
}()

// Histogram is a latency histogram over LatencyBuckets. The zero value is
// ready; Observe is lock-free and does not allocate.
type Histogram struct {
	// counts[i] counts observations in bucket i (not cumulative); the
	// last slot is the +Inf overflow.
	counts [len(LatencyBuckets) + 1]atomic.Uint64
	count  atomic.Uint64
	sumNs  atomic.Int64
}

// Observe records one duration.
func (h *Histogram) Observe(d time.Duration) {
	ns := int64(d)
	i := 0
	for i < len(latencyBounds) && ns > latencyBounds[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sumNs.Add(ns)
	h.count.Add(1)
}

// Snapshot returns the observation count, the sum in seconds and the
// cumulative count per bucket upper bound, as Prometheus wants them.
// Concurrent Observes may make count and buckets differ by a few; the
// count is taken as the +Inf bucket so the exposition stays consistent.
func (h *Histogram) Snapshot() (count uint64, sum float64, buckets map[float64]uint64) {
	buckets = make(map[float64]uint64, len(LatencyBuckets))
	var cum uint64
	for i, ub := range LatencyBuckets {
		cum += h.counts[i].Load()
		buckets[ub] = cum
	}
	count = cum + h.counts[len(LatencyBuckets)].Load()
	return count, float64(h.sumNs.Load()) / 1e9, buckets
}

// Count returns the number of observations.
func (h *Histogram) Count() uint64 { return h.count.Load() }
