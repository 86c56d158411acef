// Command pageviews is real-time analytics with the stream library: it
// reads page-view events, one JSON object per record ({"page": "/home",
// "user": "ada"}), and counts the views of each page per minute, by the
// time the view happened (the record's timestamp), exactly once. Views
// up to --grace late are still counted in their minute; later ones are
// dropped. Each count update is written as text, "PAGE MINUTE COUNT".
//
//	go run ./cmd/gregor serve &
//	go run ./stream/examples/pageviews --brokers 127.0.0.1:9092 &
//	printf '{"page":"/home","user":"ada"}\n{"page":"/docs","user":"bob"}\n{"page":"/home","user":"cy"}\n' |
//	  go run ./cmd/gregor produce pageviews
//	go run ./cmd/gregor consume pageview-counts --read-committed -e -f '%v\n'
//
// It creates the topics when they do not exist; stop it with Ctrl-C.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/gregor-streaming/gregor/stream"
	"github.com/gregor-streaming/gregor/stream/examples/internal/topics"
)

// view is one page-view event.
type view struct {
	Page string `json:"page"`
	User string `json:"user"`
}

func main() {
	brokers := flag.String("brokers", "127.0.0.1:9092", "comma-separated seed brokers")
	in := flag.String("in", "pageviews", "topic of page-view events (JSON)")
	out := flag.String("out", "pageview-counts", "topic of per-page, per-minute counts")
	appID := flag.String("app", "pageviews", "application ID: consumer group and internal topic prefix")
	window := flag.Duration("window", time.Minute, "window length")
	grace := flag.Duration("grace", 10*time.Second, "how late a view may arrive and still count")
	partitions := flag.Int("partitions", 3, "partitions of the topics it creates")
	flag.Parse()

	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, strings.Split(*brokers, ","), *in, *out, *appID, *window, *grace, int32(*partitions), log); err != nil {
		log.Error("pageviews", "err", err)
		os.Exit(1)
	}
}

// run processes until ctx is done.
func run(ctx context.Context, seeds []string, in, out, appID string, window, grace time.Duration, partitions int32, log *slog.Logger) error {
	if err := topics.Create(ctx, seeds, partitions, in, out); err != nil {
		return err
	}

	b := stream.NewBuilder()
	views := stream.Source(b, in, stream.String(), stream.JSON[view]())
	// Repartitioned by page, so that each page's counts live in one task.
	byPage := stream.GroupBy(views.Filter(func(_ string, v view) bool { return v.Page != "" }),
		func(_ string, v view) string { return v.Page }, stream.String(), stream.JSON[view]())
	counts := stream.WindowedCount(byPage.WindowedBy(stream.TumblingWindows(window, grace)), "views-per-minute")
	stream.Map(counts.ToStream(), func(w stream.Windowed[string], n int64) (string, string) {
		return w.Key, fmt.Sprintf("%s %s %d", w.Key, w.Start.Format("2006-01-02T15:04"), n)
	}).To(out, stream.String(), stream.String())

	log.Debug("topology", "description", b.Describe(appID))
	a, err := stream.New(b, stream.Config{
		ApplicationID:       appID,
		Brokers:             seeds,
		ProcessingGuarantee: stream.ExactlyOnce,
		Logger:              log,
		OnDecodeError:       stream.SkipAndLog(log), // a malformed event is skipped, not fatal
	})
	if err != nil {
		return err
	}
	return a.Run(ctx)
}
