// Command wordcount is the stream library's word count: it reads lines
// from one topic, splits them into words and writes each word's running
// count to another topic, exactly once. The counts are written as
// decimal text (Kafka's WordCountDemo writes 8-byte longs) so that any
// consumer prints them.
//
//	go run ./cmd/gregor serve &
//	go run ./stream/examples/wordcount --brokers 127.0.0.1:9092 --in lines --out word-counts &
//	printf 'the quick fox\nthe lazy dog\n' | go run ./cmd/gregor produce lines
//	go run ./cmd/gregor consume word-counts --read-committed -e -f '%k %v\n'
//
// It creates the two topics when they do not exist. Run it twice (with
// different --instance values) to share the work; stop it with Ctrl-C.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"unicode"

	"github.com/gregor-streaming/gregor/stream"
	"github.com/gregor-streaming/gregor/stream/examples/internal/topics"
)

func main() {
	brokers := flag.String("brokers", "127.0.0.1:9092", "comma-separated seed brokers")
	in := flag.String("in", "lines", "topic of text lines")
	out := flag.String("out", "word-counts", "topic of word counts")
	app := flag.String("app", "wordcount", "application ID: consumer group and internal topic prefix")
	instance := flag.String("instance", "", "this instance's ID (default: random)")
	partitions := flag.Int("partitions", 3, "partitions of the topics it creates")
	flag.Parse()

	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *brokers, *in, *out, *app, *instance, int32(*partitions), log); err != nil {
		log.Error("wordcount", "err", err)
		os.Exit(1)
	}
}

// run processes until ctx is done.
func run(ctx context.Context, brokers, in, out, appID, instance string, partitions int32, log *slog.Logger) error {
	seeds := strings.Split(brokers, ",")
	if err := topics.Create(ctx, seeds, partitions, in, out); err != nil {
		return err
	}

	b := stream.NewBuilder()
	lines := stream.Source(b, in, stream.String(), stream.String())
	words := stream.FlatMapValues(lines, func(_, line string) []string {
		return strings.FieldsFunc(strings.ToLower(line), func(r rune) bool {
			return !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '\''
		})
	})
	counts := stream.GroupBy(words, func(_, w string) string { return w }, stream.String(), stream.String()).Count("counts")
	stream.MapValues(counts.ToStream(), func(_ string, n int64) string { return strconv.FormatInt(n, 10) }).
		To(out, stream.String(), stream.String())

	fmt.Fprint(os.Stderr, b.Describe(appID))
	a, err := stream.New(b, stream.Config{
		ApplicationID:       appID,
		Brokers:             seeds,
		ProcessingGuarantee: stream.ExactlyOnce,
		InstanceID:          instance,
		Logger:              log,
	})
	if err != nil {
		return err
	}
	return a.Run(ctx)
}
