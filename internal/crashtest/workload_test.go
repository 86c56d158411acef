package crashtest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// seedFromEnv returns GREGOR_CRASH_SEED or a fresh seed, logged so a
// failing run can be replayed.
func seedFromEnv(t *testing.T) uint64 {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("GREGOR_CRASH_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("GREGOR_CRASH_SEED=%q: %v", s, err)
		}
		seed = v
	}
	t.Logf("seed %d (replay with GREGOR_CRASH_SEED=%d)", seed, seed)
	return seed
}

// envInt returns the integer environment variable name, or def.
func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < 1 {
		t.Fatalf("%s=%q: want a positive integer", name, s)
	}
	return v
}

// ack is where the broker said a record was written.
type ack struct {
	partition int32
	offset    int64
}

// ledger records what producers were told.
type ledger struct {
	mu sync.Mutex
	// acked maps each acknowledged value to its partition and offset.
	acked map[string]ack
	// failed counts the errors of records that were not acknowledged.
	failed map[string]int
	// dataLoss counts the times a client saw OUT_OF_ORDER_SEQUENCE or
	// UNKNOWN_PRODUCER_ID: the broker forgot an acknowledged batch or
	// its producer state.
	dataLoss atomic.Int64
	n        atomic.Int64
}

func (l *ledger) record(r *kgo.Record, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.failed[err.Error()]++
		return
	}
	v := string(r.Value)
	if prev, ok := l.acked[v]; ok {
		// Cannot happen with a correct client; keep the evidence.
		l.failed[fmt.Sprintf("acknowledged twice: %q at %v and %v", v, prev, ack{r.Partition, r.Offset})]++
		return
	}
	l.acked[v] = ack{r.Partition, r.Offset}
	l.n.Add(1)
}

// workload is a set of idempotent acks=all producers, each with its own
// client (so its own producer ID), writing keyed records with unique
// values "p<producer>-<sequence>[|padding]" in random bursts until
// finish. Its clients are seeded with addr, a broker's address or
// several comma-separated.
type workload struct {
	t       *testing.T
	led     *ledger
	clients []*kgo.Client
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

func startWorkload(t *testing.T, addr, topic string, producers int, seed uint64, opts ...kgo.Opt) *workload {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w := &workload{t: t, led: &ledger{acked: map[string]ack{}, failed: map[string]int{}}, cancel: cancel}
	for id := range producers {
		cl, err := kgo.NewClient(append([]kgo.Opt{
			kgo.SeedBrokers(strings.Split(addr, ",")...),
			kgo.DefaultProduceTopic(topic),
			kgo.RequiredAcks(kgo.AllISRAcks()), // the default, spelled out
			kgo.MaxBufferedRecords(4000),
			kgo.ProducerLinger(time.Millisecond),
			// Reconnect and refresh metadata quickly after a restart, so
			// every cycle runs under load.
			kgo.RetryBackoffFn(func(int) time.Duration { return 20 * time.Millisecond }),
			kgo.MetadataMinAge(50 * time.Millisecond),
			// A broker killed again during its recovery can be away
			// for seconds: requests (InitProducerID included, whose
			// failure fails every buffered record) must outlast it.
			kgo.RequestRetries(1 << 20),
			kgo.RetryTimeout(2 * time.Minute),
			// A broker killed right after accepting a connection gives
			// an EOF on its first read, which kgo by default takes for
			// a TLS or SASL misconfiguration and does not retry.
			kgo.AlwaysRetryEOF(),
			kgo.ProducerOnDataLossDetected(func(string, int32) { w.led.dataLoss.Add(1) }),
		}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		w.clients = append(w.clients, cl)
		rng := rand.New(rand.NewPCG(seed, uint64(100+id)))
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			w.produce(ctx, cl, id, rng)
		}()
	}
	t.Cleanup(func() {
		cancel()
		w.wg.Wait()
		for _, cl := range w.clients {
			cl.Close()
		}
	})
	return w
}

func (w *workload) produce(ctx context.Context, cl *kgo.Client, id int, rng *rand.Rand) {
	for seq := 0; ; {
		for range 1 + rng.IntN(64) {
			v := fmt.Appendf(nil, "p%d-%09d", id, seq)
			if rng.IntN(20) == 0 {
				// Some larger records, so batches cross index
				// intervals and segments roll.
				v = append(v, '|')
				v = append(v, strings.Repeat("x", rng.IntN(4096))...)
			}
			key := fmt.Appendf(nil, "key-%d", rng.IntN(1000))
			cl.Produce(ctx, &kgo.Record{Key: key, Value: v}, w.led.record)
			seq++
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Duration(rng.IntN(10)) * time.Millisecond):
		}
	}
}

// acked is the number of acknowledged records so far.
func (w *workload) acked() int64 { return w.led.n.Load() }

// waitAcked waits until n records are acknowledged, or d passes.
func (w *workload) waitAcked(n int64, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for w.acked() < n {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}

// finish stops producing and waits for every buffered record to be
// acknowledged or failed.
func (w *workload) finish() {
	w.t.Helper()
	w.cancel()
	w.wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, cl := range w.clients {
		if err := cl.Flush(ctx); err != nil {
			w.t.Fatalf("flushing producers: %v (the broker stopped acknowledging)", err)
		}
	}
}

// checkErrors fails the test for any error a record got other than the
// cancellation that ends the workload: with unbounded retries, a
// correct broker makes every record succeed eventually.
func (w *workload) checkErrors() {
	w.t.Helper()
	w.led.mu.Lock()
	defer w.led.mu.Unlock()
	canceled := context.Canceled.Error()
	for msg, n := range w.led.failed {
		if msg == canceled {
			continue
		}
		w.t.Errorf("%d records failed: %s", n, msg)
	}
	if n := w.led.dataLoss.Load(); n > 0 {
		w.t.Errorf("producers detected data loss %d times (OUT_OF_ORDER_SEQUENCE_NUMBER or UNKNOWN_PRODUCER_ID)", n)
	}
}

// stored is one record read back.
type stored struct {
	partition int32
	offset    int64
}

// verify reads every partition of topic from the start to its high
// watermark and checks the ledger against it: every acknowledged value
// is stored exactly once, at its acknowledged partition and offset; no
// value is stored twice; offsets have no holes when contiguous is set;
// each producer's records are in production order in every partition.
// addr is a broker's address, or several comma-separated. It returns
// the number of records read.
func verify(t *testing.T, addr, topic string, led *ledger, contiguous bool) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	seeds := kgo.SeedBrokers(strings.Split(addr, ",")...)
	adm, err := kgo.NewClient(seeds)
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	ends, err := kadm.NewClient(adm).ListEndOffsets(ctx, topic)
	if err != nil || ends.Error() != nil {
		t.Fatalf("ListEndOffsets: %v %v", err, ends.Error())
	}
	starts, err := kadm.NewClient(adm).ListStartOffsets(ctx, topic)
	if err != nil || starts.Error() != nil {
		t.Fatalf("ListStartOffsets: %v %v", err, starts.Error())
	}
	want := map[int32]int64{}
	parts := map[int32]kgo.Offset{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			want[o.Partition] = o.Offset
			parts[o.Partition] = kgo.NewOffset().AtStart()
		}
	})
	// Say plainly when the partition's offsets already rule out an
	// acknowledgement, before the record-by-record report.
	led.mu.Lock()
	maxAcked := map[int32]int64{}
	for _, a := range led.acked {
		maxAcked[a.partition] = max(maxAcked[a.partition], a.offset+1)
	}
	led.mu.Unlock()
	for p, m := range maxAcked {
		if want[p] < m {
			t.Errorf("partition %d: high watermark %d, but offset %d was acknowledged", p, want[p], m-1)
		}
	}
	starts.Each(func(o kadm.ListedOffset) {
		if o.Offset != 0 {
			t.Errorf("partition %d: log start offset %d, want 0 (nothing was deleted)", o.Partition, o.Offset)
		}
	})
	cl, err := kgo.NewClient(seeds,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: parts}),
		kgo.FetchMaxWait(100*time.Millisecond),
		kgo.FetchMaxBytes(32<<20), kgo.FetchMaxPartitionBytes(8<<20))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	seen := map[string]stored{}
	next := map[int32]int64{}             // next expected offset per partition
	lastSeq := map[int32]map[string]int{} // per partition, per producer
	total, done := 0, 0
	// problem reports a finding; after 20, only counts them, so one bug
	// does not bury the others.
	problems := 0
	problem := func(format string, args ...any) {
		t.Helper()
		if problems++; problems <= 20 {
			t.Errorf(format, args...)
		}
	}
	for done < len(want) {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading back: %v; read %d records, positions %v of %v", ctx.Err(), total, next, want)
		}
		fs.EachError(func(topic string, p int32, err error) {
			t.Fatalf("fetch %s/%d: %v", topic, p, err)
		})
		fs.EachRecord(func(r *kgo.Record) {
			total++
			p, off := r.Partition, r.Offset
			if off >= want[p] {
				return // produced after ListEndOffsets; not ours to check
			}
			if off < next[p] {
				t.Fatalf("partition %d: offset %d read after %d", p, off, next[p]-1)
			}
			if contiguous && off != next[p] {
				problem("partition %d: offsets [%d, %d) missing", p, next[p], off)
			}
			next[p] = off + 1
			if next[p] == want[p] {
				done++
			}
			v := string(r.Value)
			if prev, ok := seen[v]; ok {
				problem("value %.40q stored twice: partition %d offset %d and partition %d offset %d", v, prev.partition, prev.offset, p, off)
			}
			seen[v] = stored{p, off}
			producer, seq, ok := parseValue(v)
			if !ok {
				problem("partition %d offset %d: value %.40q was never produced", p, off, v)
				return
			}
			if lastSeq[p] == nil {
				lastSeq[p] = map[string]int{}
			}
			if last, ok := lastSeq[p][producer]; ok && seq <= last {
				problem("partition %d offset %d: %s's record %d after its record %d (reordered)", p, off, producer, seq, last)
			}
			lastSeq[p][producer] = seq
		})
	}
	if problems > 20 {
		t.Errorf("%d problems in the read-back, the first 20 above", problems)
	}

	led.mu.Lock()
	defer led.mu.Unlock()
	missing, moved := 0, 0
	for v, a := range led.acked {
		s, ok := seen[v]
		switch {
		case !ok:
			if missing++; missing <= 10 {
				t.Errorf("acknowledged record %.40q (partition %d offset %d) is lost", v, a.partition, a.offset)
			}
		case s.partition != a.partition || s.offset != a.offset:
			if moved++; moved <= 10 {
				t.Errorf("acknowledged record %.40q at partition %d offset %d is stored at partition %d offset %d", v, a.partition, a.offset, s.partition, s.offset)
			}
		}
	}
	if missing+moved > 0 {
		t.Errorf("%d of %d acknowledged records lost, %d at the wrong offset", missing, len(led.acked), moved)
	}
	t.Logf("verified: %d records stored in %d partitions, %d acknowledged (all present at their offsets), %d stored without an acknowledgement",
		len(seen), len(want), len(led.acked), len(seen)-len(led.acked))
	return len(seen)
}

// parseValue splits "p<id>-<seq>[|padding]".
func parseValue(v string) (producer string, seq int, ok bool) {
	v, _, _ = strings.Cut(v, "|")
	producer, s, ok := strings.Cut(v, "-")
	if !ok || !strings.HasPrefix(producer, "p") {
		return "", 0, false
	}
	seq, err := strconv.Atoi(s)
	return producer, seq, err == nil
}
