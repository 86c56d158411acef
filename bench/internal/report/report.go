// Package report prints load results for people: one result as a short
// block, and a comparison of two targets as a table of medians and ratios.
package report

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/gregor-streaming/gregor/bench/internal/load"
)

// Print writes r as a short block.
func Print(w io.Writer, r *load.Result) {
	fmt.Fprintf(w, "%s  [%s]\n", r.Workload, r.Target)
	batch := ""
	if r.RecordsPerBatch > 0 {
		batch = fmt.Sprintf("  (%.0f records/batch)", r.RecordsPerBatch)
	}
	offered := ""
	if r.OfferedRate > 0 {
		offered = fmt.Sprintf(" of %.0f offered", r.OfferedRate)
	}
	fmt.Fprintf(w, "  %.2f s  %d records  %.0f records/s%s  %.1f MB/s%s\n",
		r.Seconds, r.Records, r.RecordsPerSec, offered, r.MBPerSec, batch)
	fmt.Fprintf(w, "  broker:  %.3f CPU-s/GiB  %.2f cores  RSS %s -> %s (peak %s)\n",
		r.BrokerCPUPerGiB, r.BrokerCores, MiB(r.BrokerRSSBefore), MiB(r.BrokerRSSAfter), MiB(r.BrokerRSSPeak))
	fmt.Fprintf(w, "  loadgen: %.2f cores  RSS %s   other processes: %.2f cores (steal %.2f)   bound: %s\n",
		r.LoadgenCores, MiB(r.LoadgenRSS), r.OtherCores, r.StealCores, r.Bound)
	if l := r.Latency; l != nil {
		fmt.Fprintf(w, "  e2e latency ms: p50 %.2f  p99 %.2f  p999 %.2f  max %.2f  mean %.2f  (n=%d, missing %d, send lag max %.1f ms)\n",
			l.P50Ms, l.P99Ms, l.P999Ms, l.MaxMs, l.MeanMs, l.Count, r.Missing, r.SendLagMs)
	}
	if l := r.AckLatency; l != nil {
		fmt.Fprintf(w, "  ack latency ms: p50 %.2f  p99 %.2f  p999 %.2f  max %.2f  (n=%d, send lag max %.1f ms)\n",
			l.P50Ms, l.P99Ms, l.P999Ms, l.MaxMs, l.Count, r.SendLagMs)
	}
	if r.Errors > 0 {
		fmt.Fprintf(w, "  errors: %d, first: %s\n", r.Errors, r.FirstError)
	}
	if r.Note != "" {
		fmt.Fprintf(w, "  note: %s\n", r.Note)
	}
	if len(r.Samples) > 0 {
		fmt.Fprintf(w, "  memory samples (s: RSS, heap in use):")
		for i, s := range r.Samples {
			if i%6 == 0 {
				fmt.Fprint(w, "\n   ")
			}
			fmt.Fprintf(w, " %4.0f: %s", s.T, MiB(s.RSS))
			if s.HeapInuse > 0 {
				fmt.Fprintf(w, "/%s", MiB(s.HeapInuse))
			}
		}
		fmt.Fprintln(w)
		if g, ok := Growth(r.Samples); ok {
			a, b := Halves(r.Samples)
			fmt.Fprintf(w, "  RSS median first half %s, second half %s; trend over the second half %+.2f MiB/min\n",
				MiB(a), MiB(b), g)
		}
	}
}

// MiB formats bytes as MiB.
func MiB(b int64) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1fMiB", float64(b)/(1<<20))
}

// Growth is the least-squares slope of RSS in MiB per minute over the
// second half of the samples (the first half includes warm-up growth);
// ok is false with fewer than 4 samples there.
func Growth(s []load.MemSample) (float64, bool) {
	s = s[len(s)/2:]
	if len(s) < 4 {
		return 0, false
	}
	var sx, sy, sxx, sxy float64
	n := float64(len(s))
	for _, p := range s {
		x, y := p.T/60, float64(p.RSS)/(1<<20)
		sx += x
		sy += y
		sxx += x * x
		sxy += x * y
	}
	d := n*sxx - sx*sx
	if d == 0 {
		return 0, false
	}
	return (n*sxy - sx*sy) / d, true
}

// Halves returns the median RSS of the first and second half of the
// samples: robust to the GC's saw-tooth where a slope is not.
func Halves(s []load.MemSample) (first, second int64) {
	med := func(s []load.MemSample) int64 {
		v := make([]int64, len(s))
		for i, x := range s {
			v[i] = x.RSS
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	if len(s) < 2 {
		return 0, 0
	}
	return med(s[:len(s)/2]), med(s[len(s)/2:])
}

// Row is one line of a comparison table.
type Row struct {
	Workload, Metric string
	// A and B are the medians for the two targets; NaN when missing.
	A, B float64
	// Format formats a value ("%.0f").
	Format string
	// Flag is printed after the ratio (e.g. "loadgen-bound").
	Flag string
}

// Table writes rows as an aligned table with the ratio A/B.
func Table(w io.Writer, nameA, nameB string, rows []Row) {
	fmt.Fprintf(w, "%-34s %-16s %12s %12s %8s  %s\n", "workload", "metric", nameA, nameB, nameA[:1]+"/"+nameB[:1], "notes")
	fmt.Fprintln(w, strings.Repeat("-", 100))
	last := ""
	for _, r := range rows {
		wl := r.Workload
		if wl == last {
			wl = ""
		}
		last = r.Workload
		ratio := "-"
		if r.A == r.A && r.B == r.B && r.B != 0 {
			ratio = fmt.Sprintf("%.2f", r.A/r.B)
		}
		fmt.Fprintf(w, "%-34s %-16s %12s %12s %8s  %s\n", wl, r.Metric, num(r.Format, r.A), num(r.Format, r.B), ratio, r.Flag)
	}
}

func num(f string, v float64) string {
	if v != v {
		return "-"
	}
	if f == "" {
		f = "%.2f"
	}
	return fmt.Sprintf(f, v)
}
