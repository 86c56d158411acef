package stream_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/gregor-streaming/gregor/stream"
)

// Stop mid-stream and restart: a new instance restores the counts from
// the changelog and continues them; with ExactlyOnce every word's
// counts run 1, 2, ..., n across the restart, with no reset and no
// update counted twice.
func TestRestartRestores(t *testing.T) {
	br := newBroker(t)
	br.CreateTopic("restart-lines", 3, nil)
	br.CreateTopic("restart-counts", 3, nil)
	cfg := stream.Config{
		ApplicationID: "restart", Brokers: []string{br.Addr}, ProcessingGuarantee: stream.ExactlyOnce,
		ClientOpts: quickGroup(),
	}
	a, countA := lines("restart-lines", "a", 1000, 20)
	produce(t, br, a...)
	first := start(t, wordCount("restart-lines", "restart-counts", nil), cfg)
	// Once the first counts are out, more lines arrive and the instance
	// stops while they do.
	waitFor(t, 30*time.Second, func() (bool, string) {
		got, _ := countsOf(t, br, "restart-counts", true)
		return len(got) > 0, "no counts yet"
	}, first)
	b, countB := lines("restart-lines", "b", 400, 21)
	produce(t, br, b[:200]...)
	if err := first.stop(t); err != nil {
		t.Fatal(err)
	}
	s := first.app.Stats()
	t.Logf("first instance stopped after %d records and %d commits", s.Processed, s.Commits)
	produce(t, br, b[200:]...)
	second := start(t, wordCount("restart-lines", "restart-counts", nil), cfg)
	want := addCounts(countA, countB)
	waitFor(t, 30*time.Second, func() (bool, string) {
		got, _ := countsOf(t, br, "restart-counts", true)
		d := sameCounts(got, want)
		return d == "", d
	}, second)
	_, seq := countsOf(t, br, "restart-counts", true)
	checkExactlyOnce(t, seq)
	if err := second.stop(t); err != nil {
		t.Fatal(err)
	}
	// The second instance rebuilt its stores from the changelog.
	if s := second.app.Stats(); s.Restored == 0 {
		t.Errorf("stats %+v: nothing restored", s)
	}
}

// Two instances of one application in one process share the tasks and
// produce the right totals together; when one leaves, the other takes
// its tasks over with nothing lost or counted twice.
func TestTwoInstances(t *testing.T) {
	br := newBroker(t)
	br.CreateTopic("shared-lines", 4, nil)
	br.CreateTopic("shared-counts", 4, nil)
	cfg := func(id string) stream.Config {
		return stream.Config{
			ApplicationID: "shared", Brokers: []string{br.Addr}, ProcessingGuarantee: stream.ExactlyOnce,
			InstanceID: id, ClientOpts: quickGroup(),
		}
	}
	topo := wordCount("shared-lines", "shared-counts", nil)
	one := start(t, topo, cfg("one"))
	two := start(t, topo, cfg("two"))
	// 2 sub-topologies x 4 partitions = 8 tasks, 4 each.
	waitFor(t, 30*time.Second, func() (bool, string) {
		s1, s2 := one.app.Stats(), two.app.Stats()
		return s1.Tasks == 4 && s2.Tasks == 4, "tasks: " + itoa(int64(s1.Tasks)) + " and " + itoa(int64(s2.Tasks))
	}, one, two)

	a, countA := lines("shared-lines", "a", 400, 30)
	produce(t, br, a...)
	waitFor(t, 30*time.Second, func() (bool, string) {
		got, _ := countsOf(t, br, "shared-counts", true)
		d := sameCounts(got, countA)
		return d == "", d
	}, one, two)
	if p1, p2 := one.app.Stats().Processed, two.app.Stats().Processed; p1 == 0 || p2 == 0 {
		t.Fatalf("processed %d and %d records: both instances should work", p1, p2)
	}

	// Instance two leaves while lines keep coming.
	b, countB := lines("shared-lines", "b", 400, 31)
	produce(t, br, b[:200]...)
	if err := two.stop(t); err != nil {
		t.Fatal(err)
	}
	produce(t, br, b[200:]...)
	waitFor(t, 30*time.Second, func() (bool, string) {
		return one.app.Stats().Tasks == 8, "tasks of the remaining instance: " + itoa(int64(one.app.Stats().Tasks))
	}, one)
	want := addCounts(countA, countB)
	waitFor(t, 30*time.Second, func() (bool, string) {
		got, _ := countsOf(t, br, "shared-counts", true)
		d := sameCounts(got, want)
		return d == "", d
	}, one)
	_, seq := countsOf(t, br, "shared-counts", true)
	checkExactlyOnce(t, seq)
}

// A record the source serde cannot decode stops the App by default,
// with a *DecodeError; with SkipAndLog it is skipped and counted.
func TestDecodeErrors(t *testing.T) {
	br := newBroker(t)
	br.CreateTopic("amounts", 1, nil)
	br.CreateTopic("totals", 1, nil)
	topo := func() *stream.Builder {
		b := stream.NewBuilder()
		amounts := stream.Source(b, "amounts", stream.String(), stream.Int64())
		amounts.GroupByKey(stream.String(), stream.Int64()).
			Reduce("totals", func(a, b int64) int64 { return a + b }).
			ToStream().To("totals", stream.String(), stream.Int64())
		return b
	}
	n := func(v int64) []byte { b, _ := stream.Int64().Encode(v); return b }
	produce(t, br,
		&kgo.Record{Topic: "amounts", Key: []byte("acct"), Value: n(5)},
		&kgo.Record{Topic: "amounts", Key: []byte("acct"), Value: []byte("bad")}, // 3 bytes: not an int64
		&kgo.Record{Topic: "amounts", Key: []byte("acct"), Value: n(7)},
	)

	r := start(t, topo(), stream.Config{ApplicationID: "strict", Brokers: []string{br.Addr}, ClientOpts: quickGroup()})
	err := r.wait(t, 30*time.Second)
	var derr *stream.DecodeError
	if !errors.As(err, &derr) || derr.Topic != "amounts" || derr.Offset != 1 || !strings.Contains(err.Error(), "8 bytes") {
		t.Fatalf("Run: %v, want a DecodeError at amounts offset 1", err)
	}

	r = start(t, topo(), stream.Config{
		ApplicationID: "lenient", Brokers: []string{br.Addr}, ClientOpts: quickGroup(),
		OnDecodeError: stream.SkipAndLog(nil),
	})
	waitFor(t, 30*time.Second, func() (bool, string) {
		got, _ := countsOf(t, br, "totals", false)
		return got["acct"] == 12, "total " + itoa(got["acct"])
	}, r)
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	if s := r.app.Stats(); s.Skipped != 1 || s.Processed != 2 {
		t.Errorf("stats %+v: want 1 skipped, 2 processed", s)
	}
}
