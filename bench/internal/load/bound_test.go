package load

import (
	"runtime"
	"testing"
	"time"

	"github.com/gregor-streaming/gregor/bench/internal/proc"
)

// fillBound runs fill over a 10 s interval in which the load generator
// and the broker used the given cores and the whole host hostCores.
func fillBound(loadgen, broker, hostCores float64) string {
	ncpu := float64(runtime.NumCPU())
	t0 := time.Unix(1_700_000_000, 0)
	const sec = 10
	var a, b snap
	a.self.Time, b.self.Time = t0, t0.Add(sec*time.Second)
	b.self.CPU = time.Duration(loadgen * sec * float64(time.Second))
	b.broker.CPU = time.Duration(broker * sec * float64(time.Second))
	b.host = proc.Host{Total: 100_000, Busy: uint64(100_000 * hostCores / ncpu)}
	var r Result
	r.fill(a, b, 1_000_000, 1<<30)
	return r.Bound
}

func TestBound(t *testing.T) {
	ncpu := float64(runtime.NumCPU())
	for _, tc := range []struct {
		name                  string
		loadgen, broker, host float64
		want                  string
	}{
		// One producer to 8 partitions at GOGC 100 (stop 24): the
		// client's serial encoding bound it with a core idle.
		{"client near a core, host not saturated", 1.08, 0.24, 1.35, "loadgen"},
		{"neither near a core", 0.58, 0.41, 1.05, "latency"},
		{"client near a core, broker more than half as busy", 0.90, 0.60, 1.6, "latency"},
		{"host saturated, broker the larger user", 0.5, 0.9*ncpu - 0.5, 0.9 * ncpu, "broker"},
		{"host saturated, client the larger user", 0.9*ncpu - 0.5, 0.5, 0.9 * ncpu, "loadgen"},
	} {
		if got := fillBound(tc.loadgen, tc.broker, tc.host); got != tc.want {
			t.Errorf("%s: bound %q, want %q", tc.name, got, tc.want)
		}
	}
}
