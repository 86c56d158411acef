package metrics

import (
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestHistogramBuckets(t *testing.T) {
	var h Histogram
	h.Observe(50 * time.Microsecond)  // ≤ 100µs
	h.Observe(100 * time.Microsecond) // ≤ 100µs: upper bounds are inclusive
	h.Observe(3 * time.Millisecond)   // ≤ 5ms
	h.Observe(time.Minute)            // +Inf
	n, sum, b := h.Snapshot()
	if n != 4 {
		t.Fatalf("count %d, want 4", n)
	}
	if want := (50e3 + 100e3 + 3e6 + 60e9) / 1e9; sum < want-1e-9 || sum > want+1e-9 {
		t.Errorf("sum %v, want %v", sum, want)
	}
	for ub, want := range map[float64]uint64{0.0001: 2, 0.0025: 2, 0.005: 3, 10: 3} {
		if b[ub] != want {
			t.Errorf("bucket le=%v: %d, want %d", ub, b[ub], want)
		}
	}
}

func TestCountRecords(t *testing.T) {
	mk := func(n int32, length int32) []byte {
		b := make([]byte, max(12+length, 61))
		b[8], b[9], b[10], b[11] = byte(length>>24), byte(length>>16), byte(length>>8), byte(length)
		b[57], b[58], b[59], b[60] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
		return b
	}
	two := append(mk(3, 49), mk(5, 80)...)
	if got := CountRecords(two); got != 8 {
		t.Errorf("two batches: %d records, want 8", got)
	}
	if got := CountRecords(two[:len(two)-1]); got != 3 {
		t.Errorf("truncated second batch: %d records, want 3", got)
	}
	if got := CountRecords(nil); got != 0 {
		t.Errorf("empty: %d", got)
	}
	if got := CountRecords(mk(7, 10)); got != 0 {
		t.Errorf("length shorter than a header: %d, want 0", got)
	}
}

// The request path's instruments must not allocate.
func TestHotPathAllocs(t *testing.T) {
	var bs BrokerStats
	var ps PartitionStats
	b := make([]byte, 61)
	b[11] = 49
	b[60] = 1
	allocs := testing.AllocsPerRun(100, func() {
		bs.Requests.Observe(0, time.Millisecond)
		bs.Fsync.Observe(time.Millisecond)
		bs.FetchPurgatory.Add(1)
		ps.Produced(100, 3, false)
		ps.Fetched(b, false)
	})
	if allocs != 0 {
		t.Errorf("%v allocations per update, want 0", allocs)
	}
}

type fakeBroker struct{ stats BrokerStats }

func (f *fakeBroker) Stats() *BrokerStats { return &f.stats }
func (f *fakeBroker) CollectPartitions(fn func(PartitionInfo)) {
	fn(PartitionInfo{Topic: "t", Partition: 0, Size: 10, Segments: 1, LogEndOffset: 3, HighWatermark: 3})
}
func (f *fakeBroker) CollectGroups(fn func(GroupInfo)) {}
func (f *fakeBroker) NodeID() int32                    { return 1 }
func (f *fakeBroker) ClusterID() string                { return "c" }

// The registry's output is consistent (Describe matches Collect, no
// duplicate series) and passes Prometheus' linter.
func TestCollectorLint(t *testing.T) {
	c := &Collector{}
	c.SetBroker(&fakeBroker{})
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	if _, err := reg.Gather(); err != nil {
		t.Fatal(err)
	}
	problems, err := testutil.CollectAndLint(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

// docs/METRICS.md documents every metric, and nothing that does not exist.
func TestMetricsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/METRICS.md")
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for _, m := range regexp.MustCompile("`(gregor_[a-z_]+)`").FindAllStringSubmatch(string(doc), -1) {
		documented[m[1]] = true
	}
	nameRE := regexp.MustCompile(`fqName: "([^"]+)"`)
	exported := map[string]bool{}
	for _, d := range allDescs {
		m := nameRE.FindStringSubmatch(d.String())
		if m == nil {
			t.Fatalf("cannot read name of %s", d)
		}
		exported[m[1]] = true
		if !documented[m[1]] {
			t.Errorf("%s is not documented in docs/METRICS.md", m[1])
		}
	}
	for name := range documented {
		base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_count"), "_sum")
		if !exported[base] {
			t.Errorf("docs/METRICS.md documents %s, which does not exist", name)
		}
	}
}
