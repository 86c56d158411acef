package load

import (
	"slices"
	"time"
)

// Latency summarises a set of latencies, in milliseconds.
type Latency struct {
	Count  int     `json:"count"`
	P50Ms  float64 `json:"p50_ms"`
	P99Ms  float64 `json:"p99_ms"`
	P999Ms float64 `json:"p999_ms"`
	MaxMs  float64 `json:"max_ms"`
	MeanMs float64 `json:"mean_ms"`
}

// summarize sorts d and returns its exact percentiles (nearest rank);
// nil when d is empty. Exact rather than histogram percentiles: a run
// holds at most a few hundred thousand samples.
func summarize(d []time.Duration) *Latency {
	if len(d) == 0 {
		return nil
	}
	slices.Sort(d)
	rank := func(q float64) float64 {
		i := int(q*float64(len(d))+0.999999) - 1
		i = min(max(i, 0), len(d)-1)
		return ms(d[i])
	}
	var sum time.Duration
	for _, v := range d {
		sum += v
	}
	return &Latency{
		Count:  len(d),
		P50Ms:  rank(0.50),
		P99Ms:  rank(0.99),
		P999Ms: rank(0.999),
		MaxMs:  ms(d[len(d)-1]),
		MeanMs: ms(sum / time.Duration(len(d))),
	}
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }
