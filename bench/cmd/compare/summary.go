package main

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strings"

	"github.com/gregor-streaming/gregor/bench/internal/load"
	"github.com/gregor-streaming/gregor/bench/internal/report"
)

var nan = math.NaN()

// median is the per-metric median over repetitions of one workload on
// one target. Fields absent from the workload are 0.
type median struct {
	Workload        string  `json:"workload"`
	Target          string  `json:"target"`
	Reps            int     `json:"reps"`
	RecordsPerSec   float64 `json:"records_per_sec"`
	MBPerSec        float64 `json:"mb_per_sec"`
	BrokerCPUPerGiB float64 `json:"broker_cpu_s_per_gib"`
	BrokerCores     float64 `json:"broker_cores"`
	LoadgenCores    float64 `json:"loadgen_cores"`
	OtherCores      float64 `json:"other_cores"`
	StealCores      float64 `json:"steal_cores"`
	BrokerRSSMiB    float64 `json:"broker_rss_after_mib"`
	RecordsPerBatch float64 `json:"records_per_batch"`
	P50Ms           float64 `json:"p50_ms,omitempty"`
	P99Ms           float64 `json:"p99_ms,omitempty"`
	P999Ms          float64 `json:"p999_ms,omitempty"`
	MaxMs           float64 `json:"max_ms,omitempty"`
	AckP50Ms        float64 `json:"ack_p50_ms,omitempty"`
	AckP99Ms        float64 `json:"ack_p99_ms,omitempty"`
	// Bounds counts the repetitions by what bounded them.
	Bounds map[string]int `json:"bounds"`
	Errors int64          `json:"errors,omitempty"`
}

func medians(rs []*load.Result) []median {
	type key struct{ w, t string }
	groups := map[key][]*load.Result{}
	var keys []key
	for _, r := range rs {
		k := key{r.Workload, r.Target}
		if _, ok := groups[k]; !ok {
			keys = append(keys, k)
		}
		groups[k] = append(groups[k], r)
	}
	var out []median
	for _, k := range keys {
		g := groups[k]
		m := median{Workload: k.w, Target: k.t, Reps: len(g), Bounds: map[string]int{}}
		f := func(get func(*load.Result) float64) float64 {
			var v []float64
			for _, r := range g {
				v = append(v, get(r))
			}
			return medianOf(v)
		}
		lat := func(get func(*load.Latency) float64, which func(*load.Result) *load.Latency) float64 {
			var v []float64
			for _, r := range g {
				if l := which(r); l != nil {
					v = append(v, get(l))
				}
			}
			if len(v) == 0 {
				return 0
			}
			return medianOf(v)
		}
		e2e := func(r *load.Result) *load.Latency { return r.Latency }
		ack := func(r *load.Result) *load.Latency { return r.AckLatency }
		m.RecordsPerSec = f(func(r *load.Result) float64 { return r.RecordsPerSec })
		m.MBPerSec = f(func(r *load.Result) float64 { return r.MBPerSec })
		m.BrokerCPUPerGiB = f(func(r *load.Result) float64 { return r.BrokerCPUPerGiB })
		m.BrokerCores = f(func(r *load.Result) float64 { return r.BrokerCores })
		m.LoadgenCores = f(func(r *load.Result) float64 { return r.LoadgenCores })
		m.OtherCores = f(func(r *load.Result) float64 { return r.OtherCores })
		m.StealCores = f(func(r *load.Result) float64 { return r.StealCores })
		m.BrokerRSSMiB = f(func(r *load.Result) float64 { return float64(r.BrokerRSSAfter) / (1 << 20) })
		m.RecordsPerBatch = f(func(r *load.Result) float64 { return r.RecordsPerBatch })
		m.P50Ms = lat(func(l *load.Latency) float64 { return l.P50Ms }, e2e)
		m.P99Ms = lat(func(l *load.Latency) float64 { return l.P99Ms }, e2e)
		m.P999Ms = lat(func(l *load.Latency) float64 { return l.P999Ms }, e2e)
		m.MaxMs = lat(func(l *load.Latency) float64 { return l.MaxMs }, e2e)
		m.AckP50Ms = lat(func(l *load.Latency) float64 { return l.P50Ms }, ack)
		m.AckP99Ms = lat(func(l *load.Latency) float64 { return l.P99Ms }, ack)
		for _, r := range g {
			m.Bounds[r.Bound]++
			m.Errors += r.Errors
		}
		out = append(out, m)
	}
	return out
}

func find(ms []median, workload, target string) *median {
	for i := range ms {
		if ms[i].Workload == workload && ms[i].Target == target {
			return &ms[i]
		}
	}
	return nil
}

// boundNote summarises what bounded each target's repetitions, e.g.
// "G:loadgen×2,broker K:broker×3", and the median noise from others.
func boundNote(g, k *median) string {
	var parts []string
	for _, m := range []*median{g, k} {
		if m == nil {
			continue
		}
		var bs []string
		for b, n := range m.Bounds {
			bs = append(bs, fmt.Sprintf("%s×%d", b, n))
		}
		sort.Strings(bs)
		parts = append(parts, fmt.Sprintf("%s:%s", strings.ToUpper(m.Target[:1]), strings.Join(bs, ",")))
	}
	noise, steal := 0.0, 0.0
	for _, m := range []*median{g, k} {
		if m != nil {
			noise = max(noise, m.OtherCores)
			steal = max(steal, m.StealCores)
		}
	}
	s := "bound " + strings.Join(parts, " ")
	if noise >= 0.25 {
		s += fmt.Sprintf("; others used %.1f cores", noise)
	}
	if steal >= 0.1 {
		s += fmt.Sprintf(" (hypervisor steal %.1f)", steal)
	}
	return s
}

func printTable(w io.Writer, ws []workload, ms []median) {
	var rows []report.Row
	for _, wl := range ws {
		g, k := find(ms, wl.name, "gregor"), find(ms, wl.name, "kfake")
		if g == nil && k == nil {
			continue
		}
		val := func(m *median, get func(*median) float64) float64 {
			if m == nil {
				return nan
			}
			return get(m)
		}
		add := func(metric, format string, get func(*median) float64) {
			rows = append(rows, report.Row{Workload: wl.name, Metric: metric, Format: format, A: val(g, get), B: val(k, get)})
		}
		note := boundNote(g, k)
		switch wl.kind {
		case "produce", "consume":
			add("records/s", "%.0f", func(m *median) float64 { return m.RecordsPerSec })
			rows[len(rows)-1].Flag = note
			add("MB/s", "%.1f", func(m *median) float64 { return m.MBPerSec })
			add("CPU-s/GiB", "%.2f", func(m *median) float64 { return m.BrokerCPUPerGiB })
			add("broker cores", "%.2f", func(m *median) float64 { return m.BrokerCores })
			add("loadgen cores", "%.2f", func(m *median) float64 { return m.LoadgenCores })
			add("records/batch", "%.0f", func(m *median) float64 { return m.RecordsPerBatch })
			add("RSS after MiB", "%.0f", func(m *median) float64 { return m.BrokerRSSMiB })
		case "paced":
			add("records/s", "%.0f", func(m *median) float64 { return m.RecordsPerSec })
			rows[len(rows)-1].Flag = note
			add("CPU-s/GiB", "%.2f", func(m *median) float64 { return m.BrokerCPUPerGiB })
			add("broker cores", "%.2f", func(m *median) float64 { return m.BrokerCores })
			add("ack p50 ms", "%.2f", func(m *median) float64 { return m.AckP50Ms })
			add("ack p99 ms", "%.2f", func(m *median) float64 { return m.AckP99Ms })
			add("RSS after MiB", "%.0f", func(m *median) float64 { return m.BrokerRSSMiB })
		case "e2e":
			add("p50 ms", "%.2f", func(m *median) float64 { return m.P50Ms })
			rows[len(rows)-1].Flag = note
			add("p99 ms", "%.2f", func(m *median) float64 { return m.P99Ms })
			add("p999 ms", "%.2f", func(m *median) float64 { return m.P999Ms })
			add("max ms", "%.2f", func(m *median) float64 { return m.MaxMs })
			add("CPU-s/GiB", "%.1f", func(m *median) float64 { return m.BrokerCPUPerGiB })
			add("broker cores", "%.2f", func(m *median) float64 { return m.BrokerCores })
			add("loadgen cores", "%.2f", func(m *median) float64 { return m.LoadgenCores })
		}
	}
	report.Table(w, "gregor", "kfake", rows)
}

func printRestart(w io.Writer, rr *restartResult) {
	fmt.Fprintf(w, "\n== %d partitions, %d records of 1 KiB\n", rr.Partitions, rr.Records)
	for _, tn := range []string{"gregor", "kfake"} {
		t := rr.Targets[tn]
		if t == nil {
			continue
		}
		fmt.Fprintf(w, "%-7s create topic %.1f s; produce %.1f s; heap/partition after create %.1f KiB; RSS/partition after create %.1f KiB; %d open fds\n",
			tn, t.CreateSeconds, t.ProduceSeconds, t.HeapPerPartitionCreatedKiB, t.RSSPerPartitionCreatedKiB, t.OpenFDsCreated)
		if t.HeapRestarted > 0 || t.RSSRestarted > 0 {
			fmt.Fprintf(w, "        after restart with data: heap/partition %.1f KiB, RSS/partition %.1f KiB, %d open fds\n",
				t.HeapPerPartitionRestartedKiB, t.RSSPerPartitionRestartedKiB, t.OpenFDsRestarted)
		}
		fmt.Fprintf(w, "        heap source: %s\n", t.HeapSource)
	}
	if m := rr.Median; m != nil {
		fmt.Fprintf(w, "gregor restart (median of %d): shutdown %.2f s; %s\n", len(rr.Restarts), m.ShutdownSeconds, m)
	}
	if m := rr.Cold; m != nil {
		fmt.Fprintf(w, "gregor restart, page cache dropped: %s\n", m)
	}
	if m := rr.Crash; m != nil {
		fmt.Fprintf(w, "gregor restart after kill -9, page cache dropped: %s\n", m)
	}
}

// targetCheck is one of issue 7's targets with the measured value.
type targetCheck struct {
	Target   string  `json:"target"`
	Measured string  `json:"measured"`
	Met      *bool   `json:"met,omitempty"`
	Value    float64 `json:"value"`
}

func checkTargets(ms []median, rr *restartResult) []targetCheck {
	var out []targetCheck
	ratio := func(name, desc string, get func(*median) float64, limit float64, le bool) {
		g, k := find(ms, name, "gregor"), find(ms, name, "kfake")
		if g == nil || k == nil || get(k) == 0 {
			return
		}
		r := get(g) / get(k)
		met := r <= limit
		if !le {
			met = r >= limit
		}
		out = append(out, targetCheck{Target: desc, Value: r, Met: &met,
			Measured: fmt.Sprintf("%.2f (gregor %.2f, kfake %.2f)", r, get(g), get(k))})
	}
	cpu := func(m *median) float64 { return m.BrokerCPUPerGiB }
	rps := func(m *median) float64 { return m.RecordsPerSec }
	ratio("a produce 100B 8p", "produce 100 B: CPU-s/GiB gregor/kfake <= 0.5", cpu, 0.5, true)
	ratio("b produce 1KiB 8p", "produce 1 KiB: CPU-s/GiB gregor/kfake <= 0.5", cpu, 0.5, true)
	ratio("c consume 100B 8p", "consume 100 B: CPU-s/GiB gregor/kfake <= 0.5", cpu, 0.5, true)
	ratio("c consume 1KiB 8p", "consume 1 KiB: CPU-s/GiB gregor/kfake <= 0.5", cpu, 0.5, true)
	ratio("a produce 100B 8p", "produce 100 B: records/s gregor/kfake >= 1.0", rps, 1, false)
	ratio("b produce 1KiB 8p", "produce 1 KiB: records/s gregor/kfake >= 1.0", rps, 1, false)
	ratio("c consume 100B 8p", "consume 100 B: records/s gregor/kfake >= 1.0", rps, 1, false)
	ratio("c consume 1KiB 8p", "consume 1 KiB: records/s gregor/kfake >= 1.0", rps, 1, false)
	abs := func(desc string, v, limit float64, measured string) {
		met := v <= limit
		out = append(out, targetCheck{Target: desc, Value: v, Met: &met, Measured: measured})
	}
	for _, m := range ms {
		if m.Target == "gregor" && strings.HasPrefix(m.Workload, "d e2e 1KiB 10k/s") {
			abs("e2e 10k/s 1 KiB: p99 <= 2 ms", m.P99Ms, 2, fmt.Sprintf("%.2f ms", m.P99Ms))
			abs("e2e 10k/s 1 KiB: p999 <= 10 ms", m.P999Ms, 10, fmt.Sprintf("%.2f ms", m.P999Ms))
		}
		if m.Target == "gregor" && strings.HasPrefix(m.Workload, "e 1KiB ") && strings.Contains(m.Workload, "p max") {
			if b := find(ms, "b produce 1KiB 8p", "gregor"); b != nil && b.RecordsPerSec > 0 {
				r := m.RecordsPerSec / b.RecordsPerSec
				met := r >= 0.7
				out = append(out, targetCheck{Target: "many partitions: records/s >= 0.7x of 8 partitions (" + m.Workload + " vs b)",
					Value: r, Met: &met, Measured: fmt.Sprintf("%.2f (%.0f vs %.0f records/s)", r, m.RecordsPerSec, b.RecordsPerSec)})
			}
		}
	}
	if rr != nil {
		if rr.Median != nil {
			abs(fmt.Sprintf("restart with %d partitions holding data <= 10 s (to first produce)", rr.Partitions),
				rr.Median.Produce, 10, fmt.Sprintf("%.2f s", rr.Median.Produce))
		}
		if rr.Cold != nil {
			abs(fmt.Sprintf("restart with %d partitions, page cache dropped, <= 10 s (to first produce)", rr.Partitions),
				rr.Cold.Produce, 10, fmt.Sprintf("%.2f s", rr.Cold.Produce))
		}
		if rr.Crash != nil {
			abs(fmt.Sprintf("restart with %d partitions after kill -9, page cache dropped, <= 10 s", rr.Partitions),
				rr.Crash.Produce, 10, fmt.Sprintf("%.2f s", rr.Crash.Produce))
		}
		if g := rr.Targets["gregor"]; g != nil && g.HeapRestarted > 0 {
			abs("heap per idle partition <= 20 KiB (after restart)", g.HeapPerPartitionRestartedKiB, 20,
				fmt.Sprintf("%.1f KiB (%s)", g.HeapPerPartitionRestartedKiB, g.HeapSource))
		}
	}
	out = append(out, targetCheck{Target: "memory bounded over a 10-minute run", Measured: "not in this run: bench/run.sh soak"})
	return out
}

func printTargets(w io.Writer, ts []targetCheck) {
	fmt.Fprintln(w, "\n== issue 7 targets")
	for _, t := range ts {
		st := "    "
		if t.Met != nil {
			st = "MISS"
			if *t.Met {
				st = "met "
			}
		}
		fmt.Fprintf(w, "%s  %-70s %s\n", st, t.Target, t.Measured)
	}
}
