package load

import (
	"testing"
	"time"
)

func TestSummarize(t *testing.T) {
	if summarize(nil) != nil {
		t.Fatal("empty: want nil")
	}
	var d []time.Duration
	for i := 1000; i >= 1; i-- { // unsorted on purpose
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	l := summarize(d)
	want := Latency{Count: 1000, P50Ms: 500, P99Ms: 990, P999Ms: 999, MaxMs: 1000, MeanMs: 500.5}
	if *l != want {
		t.Fatalf("summarize = %+v, want %+v", *l, want)
	}
}

func TestPacer(t *testing.T) {
	p := &pacer{rate: 10000, start: time.Now()}
	var sent int64
	for time.Since(p.start) < 200*time.Millisecond {
		sent += p.due()
	}
	// 2,000 due in 200 ms, never more than the elapsed time allows
	// (a descheduled test catches up in one burst).
	if limit := int64(time.Since(p.start).Seconds()*p.rate) + 1; sent < 2000 || sent > limit {
		t.Fatalf("sent %d, want 2000..%d", sent, limit)
	}
}
