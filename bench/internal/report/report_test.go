package report

import (
	"math"
	"testing"

	"github.com/gregor-streaming/gregor/bench/internal/load"
)

func TestGrowth(t *testing.T) {
	var s []load.MemSample
	for i := range 20 {
		// 1 MiB per minute, sampled every 6 s.
		s = append(s, load.MemSample{T: float64(i) * 6, RSS: 100<<20 + int64(i)*(1<<20)/10})
	}
	g, ok := Growth(s)
	if !ok || math.Abs(g-1) > 1e-4 {
		t.Fatalf("Growth = %v, %v; want 1 MiB/min", g, ok)
	}
	if _, ok := Growth(s[:5]); ok {
		t.Fatal("too few samples: want !ok")
	}
}
