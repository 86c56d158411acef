package console

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// The counters the overview's traffic comes from (docs/METRICS.md).
const (
	metricBytesIn  = "gregor_topic_bytes_in_total"
	metricBytesOut = "gregor_topic_bytes_out_total"
)

// rateWindow is how old the baseline sample gets before a look replaces
// it: rates are averaged over at least this long once the console has
// run that long, and over the time since the last look when looks are
// rarer. No goroutine samples in the background.
const rateWindow = 10 * time.Second

// traffic turns the metrics' byte counters into rates.
type traffic struct {
	g   prometheus.Gatherer
	now func() time.Time

	// mu guards base, the sample rates are measured from.
	mu   sync.Mutex
	base trafficSample
}

type trafficSample struct {
	at      time.Time
	in, out float64
}

func newTraffic(g prometheus.Gatherer, now func() time.Time) *traffic {
	t := &traffic{g: g, now: now}
	if s, ok := t.sample(); ok {
		t.base = s
	}
	return t
}

// sample sums the byte counters over their topics.
func (t *traffic) sample() (trafficSample, bool) {
	mfs, err := t.g.Gather()
	s := trafficSample{at: t.now()}
	found := false
	// A partial gather (err != nil) still holds what it could collect.
	for _, mf := range mfs {
		var sum *float64
		switch mf.GetName() {
		case metricBytesIn:
			sum = &s.in
		case metricBytesOut:
			sum = &s.out
		default:
			continue
		}
		found = true
		for _, m := range mf.GetMetric() {
			*sum += m.GetCounter().GetValue()
		}
	}
	// Before the first produce there is no series; the broker being up
	// (it is, if the console could read it) makes that zero bytes.
	return s, found || err == nil
}

// look returns the totals now and the rates since the baseline.
func (t *traffic) look() *Traffic {
	cur, ok := t.sample()
	if !ok {
		return nil
	}
	tr := &Traffic{BytesInTotal: cur.in, BytesOutTotal: cur.out}
	t.mu.Lock()
	defer t.mu.Unlock()
	base := t.base
	if dt := cur.at.Sub(base.at).Seconds(); !base.at.IsZero() && dt > 0 && cur.in >= base.in && cur.out >= base.out {
		in, out := (cur.in-base.in)/dt, (cur.out-base.out)/dt
		tr.BytesInPerSec, tr.BytesOutPerSec, tr.WindowSeconds = &in, &out, dt
	}
	if base.at.IsZero() || cur.at.Sub(base.at) >= rateWindow {
		t.base = cur
	}
	return tr
}
