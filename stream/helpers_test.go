package stream_test

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/gregor-streaming/gregor/internal/ktest"
	"github.com/gregor-streaming/gregor/stream"
)

// newBroker starts an in-process Gregor broker tuned for quick groups
// and transactions. No test here crashes the broker, so produces are
// acknowledged before fsync (log.flush.interval.ms): a slow shared disk
// then slows the tests less.
func newBroker(t *testing.T) *ktest.Broker {
	t.Helper()
	return ktest.NewBroker(t,
		ktest.Set("log.flush.interval.ms", "1000"),
		ktest.Set("group.initial.rebalance.delay.ms", "0"),
		ktest.Set("group.min.session.timeout.ms", "1000"),
		ktest.Set("offsets.topic.num.partitions", "1"),
		ktest.Set("transaction.state.log.num.partitions", "1"),
		ktest.Set("transaction.abort.timed.out.transaction.cleanup.interval.ms", "200"),
	)
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// quickGroup are client options for short session timeouts, so that
// a killed member leaves the group quickly.
// GREGOR_STREAM_KGO_LOG=debug|info adds franz-go's logs.
func quickGroup() []kgo.Opt {
	opts := []kgo.Opt{
		kgo.SessionTimeout(2 * time.Second),
		kgo.HeartbeatInterval(200 * time.Millisecond),
		kgo.RebalanceTimeout(10 * time.Second),
		kgo.FetchMaxWait(200 * time.Millisecond),
	}
	switch os.Getenv("GREGOR_STREAM_KGO_LOG") {
	case "debug":
		opts = append(opts, kgo.WithLogger(kgo.BasicLogger(os.Stderr, kgo.LogLevelDebug, nil)))
	case "info":
		opts = append(opts, kgo.WithLogger(kgo.BasicLogger(os.Stderr, kgo.LogLevelInfo, nil)))
	}
	return opts
}

// running is an App whose Run runs in a goroutine.
type running struct {
	app  *stream.App
	errc chan error
	done bool
	err  error
}

// start makes an App of b and cfg and runs it until stop or the end
// of the test.
func start(t *testing.T, b *stream.Builder, cfg stream.Config) *running {
	t.Helper()
	app, err := stream.New(b, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	r := &running{app: app, errc: make(chan error, 1)}
	go func() { r.errc <- app.Run(context.Background()) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop closes the App and returns Run's error.
func (r *running) stop(t *testing.T) error {
	t.Helper()
	if !r.done {
		r.app.Close()
		r.err, r.done = <-r.errc, true
	}
	return r.err
}

// wait returns Run's error once Run returns by itself.
func (r *running) wait(t *testing.T, d time.Duration) error {
	t.Helper()
	if r.done {
		return r.err
	}
	select {
	case r.err = <-r.errc:
		r.done = true
		return r.err
	case <-time.After(d):
		t.Fatalf("Run did not return within %v", d)
		return nil
	}
}

// waitFor polls cond until it holds, failing the test with cond's last
// explanation after d, or at once if one of apps stops.
func waitFor(t *testing.T, d time.Duration, cond func() (bool, string), apps ...*running) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		for _, r := range apps {
			if r.done {
				continue
			}
			select {
			case r.err = <-r.errc:
				r.done = true
				t.Fatalf("Run returned while waiting: %v", r.err)
			default:
			}
		}
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v: %s", d, why)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// produce writes records synchronously, in order.
func produce(t *testing.T, br *ktest.Broker, recs ...*kgo.Record) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(br.Addr), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	// Records without a partition set are placed like the default
	// partitioner would, by the key's murmur2 hash.
	keyed := kgo.StickyKeyPartitioner(nil)
	parts := map[string]kgo.TopicPartitioner{}
	ctx := ctxT(t, 15*time.Second)
	details, err := kadm.NewClient(cl).ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r.Partition < 0 {
			tp := parts[r.Topic]
			if tp == nil {
				tp = keyed.ForTopic(r.Topic)
				parts[r.Topic] = tp
			}
			r.Partition = int32(tp.Partition(r, len(details[r.Topic].Partitions)))
		}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// keyed is a record for produce, placed by the key's hash.
func keyed(topic, key string, value []byte) *kgo.Record {
	return &kgo.Record{Topic: topic, Key: []byte(key), Value: value, Partition: -1}
}

// readTopic returns the records of topic up to its end: the last
// stable offset when committed (what a read_committed consumer sees),
// else the high watermark.
func readTopic(t *testing.T, br *ktest.Broker, topic string, committed bool) []*kgo.Record {
	t.Helper()
	ctx := ctxT(t, 15*time.Second)
	adm := br.Admin()
	var ends kadm.ListedOffsets
	var err error
	if committed {
		ends, err = adm.ListCommittedOffsets(ctx, topic)
	} else {
		ends, err = adm.ListEndOffsets(ctx, topic)
	}
	if err != nil {
		t.Fatalf("list offsets of %s: %v", topic, err)
	}
	remaining := map[int32]int64{}
	from := map[int32]kgo.Offset{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			t.Fatalf("offsets of %s/%d: %v", topic, o.Partition, o.Err)
		}
		if o.Offset > 0 {
			remaining[o.Partition] = o.Offset
			from[o.Partition] = kgo.NewOffset().AtStart()
		}
	})
	if len(remaining) == 0 {
		return nil
	}
	iso := kgo.ReadUncommitted()
	if committed {
		iso = kgo.ReadCommitted()
	}
	// Control records are kept so that the last offset before the end
	// is seen even when it is a transaction marker.
	cl, err := kgo.NewClient(kgo.SeedBrokers(br.Addr), kgo.FetchIsolationLevel(iso), kgo.KeepControlRecords(),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: from}), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []*kgo.Record
	for len(remaining) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading %s: still waiting for %v", topic, remaining)
		}
		fs.EachRecord(func(r *kgo.Record) {
			end, ok := remaining[r.Partition]
			if !ok || r.Offset >= end {
				return
			}
			if !r.Attrs.IsControl() {
				out = append(out, r)
			}
			if r.Offset >= end-1 {
				delete(remaining, r.Partition)
			}
		})
	}
	return out
}

// countsOf reads a topic of string keys and int64 counts: the last
// count of each key, and every count in order.
func countsOf(t *testing.T, br *ktest.Broker, topic string, committed bool) (last map[string]int64, seq map[string][]int64) {
	t.Helper()
	last, seq = map[string]int64{}, map[string][]int64{}
	for _, r := range readTopic(t, br, topic, committed) {
		n, err := stream.Int64().Decode(r.Value)
		if err != nil {
			t.Fatalf("%s offset %d: %v", topic, r.Offset, err)
		}
		last[string(r.Key)] = n
		seq[string(r.Key)] = append(seq[string(r.Key)], n)
	}
	return last, seq
}

// sameCounts explains how got differs from want ("" if equal).
func sameCounts(got, want map[string]int64) string {
	if maps.Equal(got, want) {
		return ""
	}
	var diffs []string
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if got[k] != want[k] {
			diffs = append(diffs, fmt.Sprintf("%s: got %d want %d", k, got[k], want[k]))
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s: unexpected %d", k, got[k]))
		}
	}
	slices.Sort(diffs)
	if len(diffs) > 8 {
		diffs = append(diffs[:8], fmt.Sprintf("and %d more", len(diffs)-8))
	}
	return strings.Join(diffs, "; ")
}

// checkExactlyOnce fails unless every key's counts are exactly 1, 2,
// ..., n: each input counted once, in order, with no update lost or
// emitted twice.
func checkExactlyOnce(t *testing.T, seq map[string][]int64) {
	t.Helper()
	for k, s := range seq {
		for i, n := range s {
			if n != int64(i+1) {
				t.Fatalf("key %q: counts %v: update %d is %d, want %d", k, s, i, n, i+1)
			}
		}
	}
}

var vocabulary = strings.Fields("kafka gregor stream table window join count topic partition offset commit broker log record key value group task store changelog")

// lines makes n lines of words from the vocabulary, deterministic for
// a seed, keyed prefix-i so that they spread over the partitions, and
// the count of each word in them.
func lines(topic, prefix string, n int, seed uint64) ([]*kgo.Record, map[string]int64) {
	rng := rand.New(rand.NewPCG(seed, 1))
	counts := map[string]int64{}
	recs := make([]*kgo.Record, n)
	for i := range recs {
		words := make([]string, 1+rng.IntN(6))
		for j := range words {
			words[j] = vocabulary[rng.IntN(len(vocabulary))]
			counts[words[j]]++
		}
		line := strings.Join(words, " ")
		if i%7 == 0 {
			line = strings.ToUpper(line) // word count folds case
		}
		recs[i] = keyed(topic, fmt.Sprintf("%s-%d", prefix, i), []byte(line))
	}
	return recs, counts
}

func addCounts(ms ...map[string]int64) map[string]int64 {
	out := map[string]int64{}
	for _, m := range ms {
		for k, v := range m {
			out[k] += v
		}
	}
	return out
}

// wordCount is the canonical topology: split lines into words, count
// each word, write the counts.
func wordCount(in, out string, peek func(key, line string)) *stream.Builder {
	b := stream.NewBuilder()
	src := stream.Source(b, in, stream.String(), stream.String())
	if peek != nil {
		src = src.Peek(peek)
	}
	words := stream.FlatMapValues(src, func(_, line string) []string {
		return strings.Fields(strings.ToLower(line))
	})
	counts := stream.GroupBy(words, func(_, w string) string { return w }, stream.String(), stream.String()).Count("counts")
	counts.ToStream().To(out, stream.String(), stream.Int64())
	return b
}
