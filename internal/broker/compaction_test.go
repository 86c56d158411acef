package broker_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/ktest"
)

// compactedView reads topic from the earliest offset with a franz-go
// consumer and returns, per key, every value seen in order (nil for a
// tombstone), and the record count. It reads at least to mustReach (an
// offset known to hold a record), then to the log's last offset or, when
// compaction removed the records there, until three polls of a second
// each bring nothing.
func compactedView(t *testing.T, b *ktest.Broker, topic string, mustReach int64) (map[string][][]byte, int) {
	t.Helper()
	ends, err := b.Admin().ListEndOffsets(ctxT(t, 10*time.Second), topic)
	if err != nil {
		t.Fatal(err)
	}
	end, _ := ends.Lookup(topic, 0)
	cl := b.Client(kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	defer cl.Close()
	seen := map[string][][]byte{}
	n := 0
	next := int64(-1)
	idle := 0
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); {
		pctx, cancel := context.WithTimeout(context.Background(), time.Second)
		fs := cl.PollFetches(pctx)
		timedOut := pctx.Err() != nil
		cancel()
		fs.EachError(func(_ string, _ int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatal(err)
			}
		})
		recs := fs.Records()
		for _, r := range recs {
			if r.Offset <= next {
				t.Fatalf("offset %d after %d", r.Offset, next)
			}
			next = r.Offset
			seen[string(r.Key)] = append(seen[string(r.Key)], r.Value)
			n++
		}
		if next >= end.Offset-1 {
			return seen, n
		}
		if timedOut && len(recs) == 0 && next >= mustReach {
			if idle++; idle == 3 {
				return seen, n
			}
		} else {
			idle = 0
		}
	}
	t.Fatalf("reading %s did not settle (at offset %d of %d)", topic, next, end.Offset)
	return nil, 0
}

// TestCompactionRealClient is the compaction check with franz-go:
// 100,000 updates over 1,000 keys, then tombstones for 100 of them.
// After compaction a consumer from the earliest offset sees exactly the
// latest value of each live key, tombstones disappear once
// delete.retention.ms passed, and the log shrank.
func TestCompactionRealClient(t *testing.T) {
	// The cleaner starts stopped (log.cleaner.threads=0) so the log's
	// size before compaction can be measured; a dynamic config change
	// starts it.
	b := ktest.NewBroker(t, ktest.Set("log.cleaner.backoff.ms", "50"), ktest.Set("log.cleaner.threads", "0"))
	const (
		topic    = "compacted"
		keys     = 1000
		updates  = 100_000
		deleted  = 100
		deleteMs = 3000
	)
	b.CreateTopic(topic, 1, map[string]*string{
		"cleanup.policy":            kmsg.StringPtr("compact"),
		"segment.bytes":             kmsg.StringPtr("1048576"),
		"min.cleanable.dirty.ratio": kmsg.StringPtr("0.1"),
		"delete.retention.ms":       kmsg.StringPtr(strconv.Itoa(deleteMs)),
		// The active segment is never compacted: roll it when idle.
		"max.compaction.lag.ms": kmsg.StringPtr("1000"),
	})
	cl := b.Client(kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(5*time.Millisecond))
	ctx := ctxT(t, 60*time.Second)
	latest := map[string]string{}
	var wg sync.WaitGroup
	var failed atomic.Value
	var mu sync.Mutex
	latestOff := map[string]int64{} // offset of each key's last acknowledged record
	produce := func(r *kgo.Record) {
		wg.Add(1)
		cl.Produce(ctx, r, func(r *kgo.Record, err error) {
			if err != nil {
				failed.CompareAndSwap(nil, err)
			}
			mu.Lock()
			latestOff[string(r.Key)] = max(latestOff[string(r.Key)], r.Offset)
			mu.Unlock()
			wg.Done()
		})
	}
	for i := range updates {
		k := "key-" + strconv.Itoa(i%keys)
		v := fmt.Sprintf("value-%d-of-%s-%040d", i, k, i) // ~70 bytes
		latest[k] = v
		produce(&kgo.Record{Key: []byte(k), Value: []byte(v)})
	}
	// The tombstones' timestamps are at least tombstonedAt: the broker
	// keeps them for delete.retention.ms after their timestamp.
	tombstonedAt := time.Now()
	for i := range deleted {
		k := "key-" + strconv.Itoa(i)
		delete(latest, k)
		produce(&kgo.Record{Key: []byte(k), Timestamp: time.Now()}) // tombstone: null value
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		t.Fatal(err)
	}
	// Compaction never removes a live key's latest record: every view
	// reads at least to the last of them.
	var lastLive int64
	for k := range latest {
		lastLive = max(lastLive, latestOff[k])
	}
	adm := b.Admin()
	sizeBefore := logDirSize(t, adm, topic)
	if err := alterErr(adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{set("log.cleaner.threads", "1")})); err != nil {
		t.Fatal(err)
	}

	// Compaction runs in the background: wait for one record per key.
	var view map[string][][]byte
	var total int
	// tombstonesEarly fails the test if a view that started before
	// delete.retention.ms passed lacks a tombstone.
	sawTombstones := false
	look := func() {
		started := time.Since(tombstonedAt)
		view, total = compactedView(t, b, topic, lastLive)
		tombs := 0
		for k, vs := range view {
			if _, live := latest[k]; !live && vs[len(vs)-1] == nil {
				tombs++
			}
		}
		if started < deleteMs*time.Millisecond && tombs < deleted {
			t.Fatalf("%d of %d tombstones left %v after they were written, before delete.retention.ms", tombs, deleted, started)
		}
		sawTombstones = sawTombstones || tombs == deleted
	}
	waitUntil(t, 30*time.Second, "compaction down to one record per key", func() bool {
		look()
		return total <= keys
	})
	for k, vs := range view {
		last := vs[len(vs)-1]
		if want, live := latest[k]; live {
			if len(vs) != 1 || string(last) != want {
				t.Fatalf("%s: values %q, want only %q", k, vs, want)
			}
		} else if len(vs) != 1 || last != nil {
			t.Fatalf("deleted %s: values %q, want only its tombstone", k, vs)
		}
	}
	for k := range latest {
		if _, ok := view[k]; !ok {
			t.Fatalf("live key %s missing", k)
		}
	}
	tombs := len(view) - len(latest)
	t.Logf("after compaction: %d records, %d of them tombstones, %.1fs after the tombstones", total, tombs, time.Since(tombstonedAt).Seconds())

	// Tombstones go once delete.retention.ms passed.
	waitUntil(t, 30*time.Second, "tombstones to go", func() bool {
		look()
		return total == len(latest)
	})
	if !sawTombstones {
		t.Log("note: compaction finished after delete.retention.ms, so no view saw the tombstones")
	}
	for k, want := range latest {
		if vs := view[k]; len(vs) != 1 || string(vs[0]) != want {
			t.Fatalf("%s: values %q, want %q", k, vs, want)
		}
	}
	sizeAfter := logDirSize(t, adm, topic)
	t.Logf("log %d → %d bytes (%.1f%%); tombstones gone %.1fs after they were written",
		sizeBefore, sizeAfter, 100*float64(sizeAfter)/float64(sizeBefore), time.Since(tombstonedAt).Seconds())
	if sizeAfter*10 > sizeBefore {
		t.Fatalf("log shrank from %d to %d bytes only", sizeBefore, sizeAfter)
	}

	// Compacted state survives a restart, and new updates compact
	// against it.
	b.Restart()
	cl = b.Client(kgo.DefaultProduceTopic(topic))
	r, err := cl.ProduceSync(ctxT(t, 10*time.Second), &kgo.Record{Key: []byte("key-500"), Value: []byte("after restart")}).First()
	if err != nil {
		t.Fatal(err)
	}
	latest["key-500"] = "after restart"
	lastLive = r.Offset
	waitUntil(t, 30*time.Second, "compaction after restart", func() bool {
		view, total = compactedView(t, b, topic, lastLive)
		return total == len(latest)
	})
	for k, want := range latest {
		if vs := view[k]; len(vs) != 1 || string(vs[0]) != want {
			t.Fatalf("after restart %s: values %q, want %q", k, vs, want)
		}
	}
}

// TestConsumerOffsetsCompacted commits a group's offsets many times and
// checks that __consumer_offsets is compacted (its records are keyed by
// group and partition) and that the coordinator loads the compacted log
// after a restart with the last commits.
func TestConsumerOffsetsCompacted(t *testing.T) {
	b := ktest.NewBroker(t, ktest.Set("offsets.topic.num.partitions", "1"), ktest.Set("log.cleaner.backoff.ms", "50"))
	b.CreateTopic("tracked", 10, nil)
	adm := b.Admin()
	ctx := ctxT(t, 60*time.Second)
	commit := func(round int) {
		var os kadm.Offsets
		for p := range int32(10) {
			os.AddOffset("tracked", p, int64(round*10+int(p)), -1)
		}
		if err := adm.CommitAllOffsets(ctx, "g", os); err != nil {
			t.Fatal(err)
		}
	}
	commit(0) // creates __consumer_offsets
	cs := topicConfigs(t, adm, "__consumer_offsets")
	checkConfig(t, cs, "cleanup.policy", "compact", kmsg.ConfigSourceDynamicTopicConfig)
	// Small segments that roll when idle, so the test compacts quickly.
	if err := alterErr(adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{set("segment.bytes", "20000"), set("max.compaction.lag.ms", "500")}, "__consumer_offsets")); err != nil {
		t.Fatal(err)
	}
	const rounds = 500
	for r := 1; r < rounds; r++ {
		commit(r)
	}
	before := logDirSize(t, adm, "__consumer_offsets")
	waitUntil(t, 30*time.Second, "__consumer_offsets to be compacted", func() bool {
		return logDirSize(t, adm, "__consumer_offsets") < before/10
	})
	t.Logf("__consumer_offsets: %d → %d bytes", before, logDirSize(t, adm, "__consumer_offsets"))
	b.Restart()
	adm = b.Admin()
	var got kadm.OffsetResponses
	waitUntil(t, 30*time.Second, "offsets to load", func() bool {
		var err error
		got, err = adm.FetchOffsets(ctxT(t, 10*time.Second), "g")
		return err == nil && got.Error() == nil
	})
	for p := range int32(10) {
		o, ok := got.Lookup("tracked", p)
		if want := int64((rounds-1)*10 + int(p)); !ok || o.At != want {
			t.Fatalf("partition %d: committed %+v, want %d", p, o, want)
		}
	}
}
