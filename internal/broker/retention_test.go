package broker_test

import (
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/ktest"
)

// dirSize sums the sizes of the files in dir.
func dirSize(t *testing.T, dir string) int64 {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, e := range ents {
		if fi, err := e.Info(); err == nil {
			n += fi.Size()
		}
	}
	return n
}

// TestRetentionBytes is the retention check, at full size: with
// retention.bytes of 200 MiB, writing 2 GiB keeps the partition
// directory under 260 MiB (sampled every 10 ms all along), and consumers
// from the earliest offset start at the advanced log start offset.
// Segments are 16 MiB; a retention pass follows every segment roll, so
// the bound holds whatever the write rate (about 5 s here; skipped with
// -short).
func TestRetentionBytes(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 2 GiB; skipped with -short")
	}
	const mib = 1 << 20
	const (
		retention = 200 * mib
		total     = 2048 * mib
		bound     = 260 * mib
		segment   = 16 * mib
	)

	b := ktest.NewBroker(t, ktest.Set("log.retention.check.interval.ms", "100"))
	b.CreateTopic("retained", 1, map[string]*string{
		"retention.bytes": kmsg.StringPtr(strconv.FormatInt(retention, 10)),
		"segment.bytes":   kmsg.StringPtr(strconv.FormatInt(segment, 10)),
	})
	dir := filepath.Join(b.Dir, "retained-0")

	// Sample the directory's size while writing.
	var peak atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			if s := dirSize(t, dir); s > peak.Load() {
				peak.Store(s)
			}
		}
	}()

	const valueSize = 64 << 10
	pool := make([]byte, 4*mib)
	rand.Read(pool)
	value := func(i int) []byte {
		off := (i * 7919) % (len(pool) - valueSize)
		return pool[off : off+valueSize]
	}
	cl := b.Client(kgo.DefaultProduceTopic("retained"), kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.ProducerBatchMaxBytes(1*mib), kgo.MaxBufferedBytes(64*mib))
	ctx := ctxT(t, 5*time.Minute)
	start := time.Now()
	n := int(total / valueSize)
	var produceErr atomic.Value
	var pwg sync.WaitGroup
	for i := range n {
		pwg.Add(1)
		cl.Produce(ctx, &kgo.Record{Key: []byte(strconv.Itoa(i)), Value: value(i)}, func(_ *kgo.Record, err error) {
			if err != nil {
				produceErr.CompareAndSwap(nil, err)
			}
			pwg.Done()
		})
	}
	pwg.Wait()
	if err, _ := produceErr.Load().(error); err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	time.Sleep(300 * time.Millisecond) // a last retention pass
	close(stop)
	wg.Wait()
	final := dirSize(t, dir)
	t.Logf("wrote %d MiB in %v (%.0f MiB/s); partition dir peak %.1f MiB, final %.1f MiB (retention.bytes %d MiB, bound %d MiB)",
		total/mib, elapsed.Round(time.Millisecond), float64(total)/mib/elapsed.Seconds(),
		float64(peak.Load())/mib, float64(final)/mib, retention/mib, bound/mib)
	if peak.Load() > bound || final > bound {
		t.Fatalf("partition directory peaked at %d bytes (final %d), bound %d", peak.Load(), final, bound)
	}
	if final < retention {
		t.Fatalf("partition directory %d bytes, below retention.bytes %d: deleted too much", final, retention)
	}

	// Consumers from the earliest offset begin at the log start offset.
	adm := b.Admin()
	starts, err := adm.ListStartOffsets(ctx, "retained")
	if err != nil {
		t.Fatal(err)
	}
	lso, _ := starts.Lookup("retained", 0)
	if lso.Offset <= 0 || lso.Offset >= int64(n) {
		t.Fatalf("log start offset %d of %d records", lso.Offset, n)
	}
	got := consumeFirst(t, b, "retained")
	if got[0].Offset != lso.Offset || string(got[0].Key) != strconv.FormatInt(lso.Offset, 10) || string(got[0].Value) != string(value(int(lso.Offset))) {
		t.Fatalf("first consumed record at %d (key %q), log start offset %d", got[0].Offset, got[0].Key, lso.Offset)
	}
	_ = context.Background
}

// consumeFirst polls topic from its earliest offset until it gets
// records and returns the first fetch's.
func consumeFirst(t *testing.T, b *ktest.Broker, topic string) []*kgo.Record {
	t.Helper()
	cl := b.Client(kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	ctx := ctxT(t, 30*time.Second)
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("no records from %s: %v", topic, ctx.Err())
		}
		if err := fs.Err(); err != nil {
			t.Fatal(err)
		}
		if recs := fs.Records(); len(recs) > 0 {
			return recs
		}
	}
}
