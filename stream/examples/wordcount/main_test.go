package main

import (
	"context"
	"log/slog"
	"maps"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/gregor-streaming/gregor/internal/ktest"
)

// TestWordCount runs the example as a user would, against a real
// in-process broker: two lines in, each word's final count out,
// read_committed, and a clean stop.
func TestWordCount(t *testing.T) {
	b, ctx, stop := ktest.StartApp(t, func(ctx context.Context, addr string, log *slog.Logger) error {
		return run(ctx, addr, "lines", "word-counts", "wordcount", "one", 2, log)
	})
	cl := b.Client(kgo.AllowAutoTopicCreation())
	for _, line := range []string{"the quick fox", "The lazy dog, the end"} {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "lines", Value: []byte(line)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]string{"the": "3", "quick": "1", "fox": "1", "lazy": "1", "dog": "1", "end": "1"}
	cons := b.Client(kgo.ConsumeTopics("word-counts"), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got := map[string]string{}
	for !maps.Equal(got, want) {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("counts %v, want %v", got, want)
		}
		fs.EachRecord(func(r *kgo.Record) { got[string(r.Key)] = string(r.Value) })
	}
	stop()
}
