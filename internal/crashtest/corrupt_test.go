package crashtest

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/batch"
	"github.com/gregor-streaming/gregor/internal/ktest"
	"github.com/gregor-streaming/gregor/internal/vfs"
)

// rawPartition produces and fetches whole batches of partition 0 of a
// topic with hand-made requests, to see exactly what the broker stores
// and serves.
type rawPartition struct {
	t     *testing.T
	b     *ktest.Broker
	topic string
	id    [16]byte
	// cl reconnects by itself across restarts (same address).
	cl *kgo.Client
}

func newRawPartition(t *testing.T, b *ktest.Broker, topic string, configs map[string]*string) *rawPartition {
	t.Helper()
	b.CreateTopic(topic, 1, configs)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	md, err := b.Admin().Metadata(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	return &rawPartition{t: t, b: b, topic: topic, id: md.Topics[topic].ID, cl: b.Client(
		kgo.RetryBackoffFn(func(int) time.Duration { return 10 * time.Millisecond }),
		kgo.MetadataMinAge(10*time.Millisecond), kgo.AlwaysRetryEOF())}
}

// produce writes one batch of n records with values of size bytes and
// returns its base offset.
func (r *rawPartition) produce(n, size int, tag string) int64 {
	r.t.Helper()
	bb := batch.NewBuilder(batch.CodecNone)
	now := time.Now().UnixMilli()
	for i := range n {
		v := fmt.Sprintf("%s-%d-", tag, i)
		v += strings.Repeat("v", max(0, size-len(v)))
		bb.Add(batch.Record{Key: []byte(tag), Value: []byte(v), Timestamp: now})
	}
	data, err := bb.Build()
	if err != nil {
		r.t.Fatal(err)
	}
	req := kmsg.NewPtrProduceRequest()
	req.Acks = -1
	req.TimeoutMillis = 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic, rt.TopicID = r.topic, r.id
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = data
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := req.RequestWith(ctx, r.cl)
	if err != nil {
		r.t.Fatal(err)
	}
	p := resp.Topics[0].Partitions[0]
	if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
		r.t.Fatalf("produce: %v", err)
	}
	return p.BaseOffset
}

// fetch fetches from offset and returns the partition's error and the
// batches served, each checked whole (a batch that fails its CRC fails
// the test: the broker served garbage).
func (r *rawPartition) fetch(offset int64) (*kerr.Error, [][]byte) {
	r.t.Helper()
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = -1
	req.MaxBytes = 1 << 20
	req.MinBytes = 1
	req.MaxWaitMillis = 0
	req.SessionEpoch = -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic, rt.TopicID = r.topic, r.id
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.FetchOffset = offset
	rp.PartitionMaxBytes = 1 << 20
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := req.RequestWith(ctx, r.cl)
	if err != nil {
		r.t.Fatal(err)
	}
	if resp.ErrorCode != 0 {
		r.t.Fatalf("fetch: top-level %v", kerr.ErrorForCode(resp.ErrorCode))
	}
	p := resp.Topics[0].Partitions[0]
	var out [][]byte
	for data := p.RecordBatches; len(data) > 0; {
		h, err := batch.Validate(data)
		if err != nil {
			r.t.Fatalf("fetch at %d served a bad batch: %v", offset, err)
		}
		out = append(out, data[:h.Size()])
		data = data[h.Size():]
	}
	if p.ErrorCode == 0 {
		return nil, out
	}
	return kerr.ErrorForCode(p.ErrorCode).(*kerr.Error), out
}

// segmentFile is the name of the partition's first segment.
func (r *rawPartition) segmentFile() string {
	return path.Join(r.b.Dir, r.topic+"-0", "00000000000000000000.log")
}

// TestTornTailTruncated cuts the power after acknowledged batches, leaves
// the bytes a torn write would leave at the end of the active segment,
// and checks that recovery truncates them: the acknowledged batches are
// served unchanged, the log end is where it was, and the next produce
// continues from there, also after a clean restart.
func TestTornTailTruncated(t *testing.T) {
	next := func() []byte {
		bb := batch.NewBuilder(batch.CodecNone)
		for i := range 20 {
			bb.Add(batch.Record{Value: fmt.Appendf(nil, "torn-%d", i), Timestamp: time.Now().UnixMilli()})
		}
		b, err := bb.Build()
		if err != nil {
			t.Fatal(err)
		}
		batch.SetBaseOffset(b, 30)
		return b
	}
	rng := rand.New(rand.NewPCG(1, 2))
	garbage := make([]byte, 1000)
	for i := range garbage {
		garbage[i] = byte(rng.Uint32())
	}
	for _, tc := range []struct {
		name string
		tail []byte
	}{
		{"partial header", next()[:30]},
		{"header only", next()[:batch.HeaderSize]},
		{"partial batch", func() []byte { b := next(); return b[:len(b)-5] }()},
		{"whole batch with bad CRC", func() []byte { b := next(); b[len(b)-3] ^= 0x10; return b }()},
		{"zeros", make([]byte, 4096)},
		{"garbage", garbage},
		{"valid batch then partial", func() []byte { b := next(); return append(b, next()[:40]...) }()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := ktest.NewBroker(t, ktest.WithFS(vfs.NewMem()))
			r := newRawPartition(t, b, "torn", nil)
			var want [][]byte
			for i := range 3 {
				r.produce(10, 50, fmt.Sprint("b", i))
			}
			_, want = r.fetch(0)
			if len(want) != 3 {
				t.Fatalf("fetched %d batches, want 3", len(want))
			}
			// The batches reach the segment (not only the journal),
			// so the torn tail lands after them.
			if !b.B.SyncSegments() {
				t.Fatal("journal cycle failed")
			}
			b.PowerOff(vfs.CrashOptions{})
			fs := b.FS()
			st, err := fs.Stat(r.segmentFile())
			if err != nil {
				t.Fatal(err)
			}
			f, err := fs.OpenAppend(r.segmentFile())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.Write(tc.tail); err != nil {
				t.Fatal(err)
			}
			f.Sync()
			f.Close()
			b.Start()

			// A complete valid batch at the tail is a write that
			// reached the disk: recovery keeps it.
			wantEnd, wantSize := int64(30), st.Size
			if tc.name == "valid batch then partial" {
				wantEnd, wantSize = 50, st.Size+int64(len(next()))
			}
			if got, _ := b.FS().Stat(r.segmentFile()); got.Size != wantSize {
				t.Errorf("segment is %d bytes after recovery, want %d", got.Size, wantSize)
			}
			checkEnd(t, b, "torn", wantEnd)
			kerrNil(t, r, 0, want)
			if base := r.produce(5, 10, "after"); base != wantEnd {
				t.Fatalf("produce after recovery at offset %d, want %d", base, wantEnd)
			}
			b.Restart()
			checkEnd(t, b, "torn", wantEnd+5)
			kerrNil(t, r, 0, want)
			if _, got := r.fetch(wantEnd); len(got) != 1 {
				t.Fatalf("batch produced after recovery: fetched %d batches", len(got))
			}
		})
	}
}

// kerrNil checks that a fetch at offset succeeds and starts with want.
func kerrNil(t *testing.T, r *rawPartition, offset int64, want [][]byte) {
	t.Helper()
	err, got := r.fetch(offset)
	if err != nil {
		t.Fatalf("fetch at %d: %v", offset, err)
	}
	if len(got) < len(want) {
		t.Fatalf("fetch at %d: %d batches, want at least %d", offset, len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("fetch at %d: batch %d differs from the one acknowledged", offset, i)
		}
	}
}

func checkEnd(t *testing.T, b *ktest.Broker, topic string, want int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ends, err := b.Admin().ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	o, _ := ends.Lookup(topic, 0)
	if o.Err != nil || o.Offset != want {
		t.Fatalf("log end offset %d (%v), want %d", o.Offset, o.Err, want)
	}
}

// batchFields names the bytes of a batch header a flip may hit, by
// offset. baseOffset (0-7) and partitionLeaderEpoch (12-15) lie outside
// the CRC and are not covered: see partlog's package doc.
var batchFields = []struct {
	name string
	pos  func(size int) int
}{
	{"length", func(int) int { return 11 }},
	{"length high byte", func(int) int { return 8 }},
	{"magic", func(int) int { return 16 }},
	{"crc", func(int) int { return 19 }},
	{"attributes", func(int) int { return 22 }},
	{"lastOffsetDelta", func(int) int { return 26 }},
	{"lastOffsetDelta high byte", func(int) int { return 23 }},
	{"baseTimestamp", func(int) int { return 34 }},
	{"maxTimestamp", func(int) int { return 42 }},
	{"producerId", func(int) int { return 50 }},
	{"producerEpoch", func(int) int { return 52 }},
	{"baseSequence", func(int) int { return 56 }},
	{"recordsCount", func(int) int { return 60 }},
	{"first record", func(int) int { return 61 }},
	{"middle record", func(size int) int { return size / 2 }},
	{"last byte", func(size int) int { return size - 1 }},
}

// TestFlippedBitNeverServed flips one bit in the middle batch B of four
// acknowledged batches A B C D in one segment, and checks that no fetch
// ever serves bytes other than what was acknowledged, that B is reported
// as CORRUPT_MESSAGE (Kafka's error for a batch failing its checksum,
// which the Java consumer surfaces to the application instead of
// retrying silently, as it would KAFKA_STORAGE_ERROR), that C and D are
// still served, and that the partition keeps taking writes. The flip
// happens under a running broker ("live", found by the CRC check on
// reads), after a clean shutdown (the fast open path does not re-read
// batches covered by the index) or after a power loss (recovery scans
// and marks the range corrupt). Besides the named header fields, it
// flips random bits (GREGOR_CRASH_SEED).
func TestFlippedBitNeverServed(t *testing.T) {
	seed := seedFromEnv(t)
	rng := rand.New(rand.NewPCG(seed, 3))
	type flip struct {
		name string
		pos  func(size int) int
		bit  uint
	}
	var flips []flip
	for i, f := range batchFields {
		flips = append(flips, flip{f.name, f.pos, uint(i*3) % 8})
	}
	for i := range 8 {
		p, bit := rng.IntN(1<<20), uint(rng.IntN(8))
		flips = append(flips, flip{fmt.Sprintf("random %d", i), func(size int) int {
			// Anywhere covered by length, magic or the CRC.
			q := 8 + p%(size-8)
			if q >= 12 && q < 16 {
				q += 4
			}
			return q
		}, bit})
	}
	for _, mode := range []string{"live", "clean", "power loss"} {
		for _, f := range flips {
			t.Run(fmt.Sprintf("%s/%s/bit%d", mode, f.name, f.bit), func(t *testing.T) {
				flipTest(t, mode, f.pos, f.bit)
			})
		}
	}
}

func flipTest(t *testing.T, mode string, pos func(int) int, bit uint) {
	b := ktest.NewBroker(t, ktest.WithFS(vfs.NewMem()))
	// An index entry for every batch: the clean open path then trusts
	// everything before the last batch without reading it.
	r := newRawPartition(t, b, "flip", map[string]*string{"index.interval.bytes": kadm.StringPtr("0")})
	bases := []int64{}
	for i, tag := range []string{"A", "B", "C", "D"} {
		bases = append(bases, r.produce(10, 100+i*7, tag))
	}
	_, orig := r.fetch(0)
	if len(orig) != 4 {
		t.Fatalf("fetched %d batches, want 4", len(orig))
	}
	name := r.segmentFile()
	var fs vfs.FS
	switch mode {
	case "live":
		fs = b.FS()
	case "clean":
		b.Stop()
		fs = b.FS()
	case "power loss":
		if !b.B.SyncSegments() { // the batches in the segment, not only the journal
			t.Fatal("journal cycle failed")
		}
		b.PowerOff(vfs.CrashOptions{})
		fs = b.FS()
	}
	data, err := vfs.ReadFile(fs, name)
	if err != nil {
		t.Fatal(err)
	}
	bpos := len(orig[0])
	at := bpos + pos(len(orig[1]))
	data[at] ^= 1 << bit
	f, err := fs.Create(name) // same file: a live broker's handle sees it
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	f.Sync()
	f.Close()
	if mode != "live" {
		b.Start()
	}
	t.Logf("flipped bit %d of byte %d of B (segment position %d)", bit, at-bpos, at)

	isOrig := func(got []byte) int {
		for i, o := range orig {
			if bytes.Equal(got, o) {
				return i
			}
		}
		return -1
	}
	check := func(when string) {
		t.Helper()
		// results summarises each offset's fetch: A-D (the first batch
		// served), "-" (nothing), or the error.
		var results []string
		for off := int64(0); off < 40; off++ {
			err, got := r.fetch(off)
			res := "-"
			for j, g := range got {
				switch i := isOrig(g); {
				case i == 1:
					t.Fatalf("%s: fetch at %d served the damaged batch B", when, off)
				case i < 0:
					h, _ := batch.ParseHeader(g)
					if h.BaseOffset < 40 {
						t.Fatalf("%s: fetch at %d served a batch at %d that was never acknowledged", when, off, h.BaseOffset)
					}
				case j == 0:
					res = string(rune('A' + i))
				}
			}
			if err != nil {
				res = err.Message
			}
			results = append(results, res)
		}
		// Compress runs: "0-9:A 10-19:CORRUPT_MESSAGE ...".
		var sum []string
		for i := 0; i < len(results); {
			j := i
			for j < len(results) && results[j] == results[i] {
				j++
			}
			sum = append(sum, fmt.Sprintf("%d-%d:%s", i, j-1, results[i]))
			i = j
		}
		want := []string{"0-9:A", "10-19:CORRUPT_MESSAGE", "20-29:C", "30-39:D"}
		if got := strings.Join(sum, " "); got != strings.Join(want, " ") {
			t.Errorf("%s: fetches by offset %s, want %s", when, got, strings.Join(want, " "))
		}
	}
	check("after the flip")
	end := r.produce(3, 10, "E")
	if end != 40 {
		t.Errorf("produce after the flip at offset %d, want 40", end)
	}
	if err, got := r.fetch(end); err != nil || len(got) != 1 {
		t.Errorf("fetch of the batch produced after the flip: %v, %d batches", err, len(got))
	}
	b.Restart()
	check("after a restart")
}
