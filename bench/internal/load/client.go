package load

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// ProducerConfig is how a producing client is configured.
type ProducerConfig struct {
	// Acks is -1 (all ISR), 0 or 1.
	Acks int
	// Linger is kgo's ProducerLinger; 0 sends as soon as possible.
	Linger time.Duration
	// BatchMaxBytes caps one record batch (kgo ProducerBatchMaxBytes).
	BatchMaxBytes int
	// Compression is none, gzip, snappy, lz4 or zstd.
	Compression string
	// Idempotent enables idempotent writes (needs Acks -1).
	Idempotent bool
	// MaxBuffered caps records buffered in each client.
	MaxBuffered int
	// MaxInflight caps produce requests in flight per broker when not
	// idempotent (with idempotence kgo allows 5, Kafka's limit).
	MaxInflight int
	// Partitioner is "rr" (round robin per record), "sticky" (kgo's
	// default: stay on a partition for a batch), "uniform" (the same
	// without adaptive partition choice) or "manual".
	Partitioner string
}

// DefaultProducer is the configuration of the throughput workloads: acks
// all and idempotence, as a default kgo producer, without compression.
func DefaultProducer() ProducerConfig {
	return ProducerConfig{
		Acks:          -1,
		Linger:        5 * time.Millisecond,
		BatchMaxBytes: 1_000_000,
		Compression:   "none",
		Idempotent:    true,
		MaxBuffered:   10_000,
		MaxInflight:   5,
		Partitioner:   "rr",
	}
}

func (c ProducerConfig) String() string {
	s := fmt.Sprintf("acks=%d linger=%s batch=%d compression=%s idempotent=%t buffered=%d partitioner=%s",
		c.Acks, c.Linger, c.BatchMaxBytes, c.Compression, c.Idempotent, c.MaxBuffered, c.Partitioner)
	if !c.Idempotent {
		s += fmt.Sprintf(" inflight=%d", c.MaxInflight)
	}
	return s
}

func codec(name string) (kgo.CompressionCodec, error) {
	switch strings.ToLower(name) {
	case "", "none":
		return kgo.NoCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	}
	return kgo.NoCompression(), fmt.Errorf("unknown compression %q", name)
}

func (c ProducerConfig) opts(addr, topic string) ([]kgo.Opt, error) {
	cc, err := codec(c.Compression)
	if err != nil {
		return nil, err
	}
	o := []kgo.Opt{
		kgo.SeedBrokers(addr),
		kgo.ClientID("gregor-bench"),
		kgo.DefaultProduceTopic(topic),
		kgo.ProducerLinger(c.Linger),
		kgo.ProducerBatchCompression(cc),
		kgo.RecordRetries(0), // a failed record is an error we count, not hide
		kgo.UnknownTopicRetries(-1),
	}
	if c.BatchMaxBytes > 0 {
		o = append(o, kgo.ProducerBatchMaxBytes(int32(c.BatchMaxBytes)))
	}
	if c.MaxBuffered > 0 {
		o = append(o, kgo.MaxBufferedRecords(c.MaxBuffered))
	}
	switch c.Acks {
	case -1:
		o = append(o, kgo.RequiredAcks(kgo.AllISRAcks()))
	case 0:
		o = append(o, kgo.RequiredAcks(kgo.NoAck()))
	case 1:
		o = append(o, kgo.RequiredAcks(kgo.LeaderAck()))
	default:
		return nil, fmt.Errorf("acks %d: want -1, 0 or 1", c.Acks)
	}
	if !c.Idempotent || c.Acks != -1 {
		o = append(o, kgo.DisableIdempotentWrite())
		if c.MaxInflight > 0 {
			o = append(o, kgo.MaxProduceRequestsInflightPerBroker(c.MaxInflight))
		}
	}
	switch c.Partitioner {
	case "", "rr":
		o = append(o, kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	case "sticky":
		// kgo's default.
	case "uniform":
		// kgo's default without its adaptive choice of the next
		// partition, which scans every partition's backlog at each
		// switch: at 10,000 partitions 40% of the load generator's CPU.
		o = append(o, kgo.RecordPartitioner(kgo.UniformBytesPartitioner(64<<10, false, true, nil)))
	case "manual":
		o = append(o, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	default:
		return nil, fmt.Errorf("partitioner %q: want rr, sticky, uniform or manual", c.Partitioner)
	}
	return o, nil
}

// values returns n record values of size bytes: the first half of each
// is random, the second half repeats a short pattern, so compression
// (when enabled) has roughly 2:1 to work with, as in typical JSON-ish
// payloads. Without compression the content does not matter.
func values(n, size int) [][]byte {
	r := rand.New(rand.NewPCG(1, 2))
	out := make([][]byte, n)
	for i := range out {
		v := make([]byte, size)
		for j := range v {
			if j < size/2 {
				v[j] = byte(r.Uint32())
			} else {
				v[j] = "gregor-bench "[j%13]
			}
		}
		out[i] = v
	}
	return out
}

// batchCounter is a kgo hook counting batches and records produced or
// fetched while armed.
type batchCounter struct {
	armed            atomic.Bool
	batches, records atomic.Int64
}

func (b *batchCounter) OnProduceBatchWritten(_ kgo.BrokerMetadata, _ string, _ int32, m kgo.ProduceBatchMetrics) {
	if b.armed.Load() {
		b.batches.Add(1)
		b.records.Add(int64(m.NumRecords))
	}
}

func (b *batchCounter) OnFetchBatchRead(_ kgo.BrokerMetadata, _ string, _ int32, m kgo.FetchBatchMetrics) {
	if b.armed.Load() {
		b.batches.Add(1)
		b.records.Add(int64(m.NumRecords))
	}
}

func (b *batchCounter) perBatch() float64 {
	if n := b.batches.Load(); n > 0 {
		return float64(b.records.Load()) / float64(n)
	}
	return 0
}

// pacer releases sends at a fixed rate from start, catching up in bursts
// when it falls behind (so a slow broker cannot hide latency by slowing
// the sender: coordinated omission).
type pacer struct {
	rate   float64
	start  time.Time
	sent   int64
	maxLag time.Duration
}

// due returns how many sends are due now, waiting until at least one is.
func (p *pacer) due() int64 {
	for {
		el := time.Since(p.start)
		want := int64(el.Seconds()*p.rate) + 1
		if n := want - p.sent; n > 0 {
			sched := time.Duration(float64(p.sent) / p.rate * float64(time.Second))
			p.maxLag = max(p.maxLag, el-sched)
			p.sent = want
			return n
		}
		next := time.Duration(float64(p.sent) / p.rate * float64(time.Second))
		time.Sleep(max(next-el, 20*time.Microsecond))
	}
}
