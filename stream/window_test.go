package stream_test

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/gregor-streaming/gregor/stream"
)

// Real-time analytics: page views counted per page and 1-minute
// tumbling window on the views' timestamps, with 30s of grace. A late
// view within the grace period still counts; one after it is dropped;
// closed windows leave the store with a tombstone in the changelog.
func TestWindowedCount(t *testing.T) {
	br := newBroker(t)
	br.CreateTopic("views", 2, nil)
	br.CreateTopic("views-per-minute", 2, nil)

	b := stream.NewBuilder()
	views := stream.Source(b, "views", stream.String(), stream.String())
	perMinute := stream.WindowedCount(
		views.GroupByKey(stream.String(), stream.String()).WindowedBy(stream.TumblingWindows(time.Minute, 30*time.Second)),
		"views-per-minute")
	windowed := stream.WindowedSerde(stream.String(), time.Minute)
	perMinute.ToStream().To("views-per-minute", windowed, stream.Int64())

	t0 := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	view := func(page string, partition int32, at time.Duration) *kgo.Record {
		return &kgo.Record{Topic: "views", Partition: partition, Key: []byte(page), Value: []byte("user"), Timestamp: t0.Add(at)}
	}
	// Each page on its own partition, so each task's stream time
	// follows the order below.
	produce(t, br,
		view("home", 0, 10*time.Second),  // window 0
		view("home", 0, 20*time.Second),  // window 0
		view("home", 0, 70*time.Second),  // window 1; stream time 70s
		view("home", 0, 50*time.Second),  // late, window 0 ends at 60s + 30s grace > 70s: counts
		view("home", 0, 125*time.Second), // window 2; stream time 125s closes window 0
		view("home", 0, 40*time.Second),  // window 0 is closed: dropped
		view("home", 0, 115*time.Second), // late for window 1, within grace (150s > 125s): counts
		view("about", 1, 5*time.Second),  // window 0
		view("about", 1, 200*time.Second),
		view("about", 1, 30*time.Second), // dropped
	)
	r := start(t, b, stream.Config{ApplicationID: "clicks", Brokers: []string{br.Addr}, ClientOpts: quickGroup()})

	key := func(page string, window int) string {
		kb, _ := windowed.Encode(stream.Windowed[string]{Key: page, Start: t0.Add(time.Duration(window) * time.Minute)})
		return string(kb)
	}
	want := map[string]int64{
		key("home", 0): 3, key("home", 1): 2, key("home", 2): 1,
		key("about", 0): 1, key("about", 3): 1,
	}
	waitFor(t, 30*time.Second, func() (bool, string) {
		got, _ := countsOf(t, br, "views-per-minute", false)
		diff := sameCounts(got, want)
		return diff == "", diff
	}, r)
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	if s := r.app.Stats(); s.DroppedLate != 2 {
		t.Errorf("DroppedLate = %d, want 2", s.DroppedLate)
	}

	// Output keys decode back to the page and its window.
	for _, rec := range readTopic(t, br, "views-per-minute", false) {
		w, err := windowed.Decode(rec.Key)
		if err != nil {
			t.Fatal(err)
		}
		if w.End.Sub(w.Start) != time.Minute || w.Start.Sub(t0)%time.Minute != 0 || (w.Key != "home" && w.Key != "about") {
			t.Errorf("output key %v", w)
		}
	}

	// Window 0 of both pages was closed and expired: its last changelog
	// entry is a tombstone. Open windows keep their counts.
	last := map[string][]byte{}
	for _, rec := range readTopic(t, br, "clicks-views-per-minute-changelog", false) {
		last[string(rec.Key)] = rec.Value
	}
	for k, n := range want {
		v, ok := last[k]
		w, _ := windowed.Decode([]byte(k))
		closed := w.Start.Equal(t0)
		switch {
		case !ok:
			t.Errorf("changelog has no entry for %v", w)
		case closed && v != nil:
			t.Errorf("changelog: closed window %v still holds %x, want a tombstone", w, v)
		case !closed:
			if got, _ := stream.Int64().Decode(v); got != n {
				t.Errorf("changelog: window %v = %d, want %d", w, got, n)
			}
		}
	}
}
