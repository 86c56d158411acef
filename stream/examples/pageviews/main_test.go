package main

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/gregor-streaming/gregor/internal/ktest"
)

// TestPageViews runs the example as a user would, against a real
// in-process broker: three views and a malformed event in, per-page
// counts for their minute out, read_committed, and a clean stop.
func TestPageViews(t *testing.T) {
	b, ctx, stop := ktest.StartApp(t, func(ctx context.Context, addr string, log *slog.Logger) error {
		return run(ctx, []string{addr}, "pageviews", "pageview-counts", "pageviews", time.Minute, 10*time.Second, 2, log)
	})

	minute := time.Now().UTC().Truncate(time.Minute)
	at := minute.Add(time.Second) // all in one minute, whenever the test runs
	cl := b.Client(kgo.AllowAutoTopicCreation())
	for _, v := range []string{`{"page":"/home","user":"ada"}`, `{"page":"/docs","user":"bob"}`, `not json`, `{"page":"/home","user":"cy"}`} {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "pageviews", Value: []byte(v), Timestamp: at}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	want := []string{
		"/docs " + minute.Format("2006-01-02T15:04") + " 1",
		"/home " + minute.Format("2006-01-02T15:04") + " 2",
	}
	cons := b.Client(kgo.ConsumeTopics("pageview-counts"), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	latest := map[string]string{}
	for {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("counts so far %v, want %v", latest, want)
		}
		fs.EachRecord(func(r *kgo.Record) { latest[string(r.Key)] = string(r.Value) })
		var got []string
		for _, v := range latest {
			got = append(got, v)
		}
		slices.Sort(got)
		if slices.Equal(got, want) {
			break
		}
		if len(got) > 0 && strings.HasSuffix(latest["/home"], " 3") {
			t.Fatalf("counted too much: %v", got)
		}
	}
	stop()
}
