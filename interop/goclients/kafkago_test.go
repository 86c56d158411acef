package goclients

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/compress"
)

const kafkaGoClientID = "interop-kafka-go"

var kafkaGoTransport = &kafka.Transport{ClientID: kafkaGoClientID}

var kafkaGoDialer = &kafka.Dialer{ClientID: kafkaGoClientID, Timeout: 10 * time.Second}

// byIndex puts record i in partition i % len(partitions), reading i from
// the "i" header, so the consumer side knows where each record belongs.
var byIndex = kafka.BalancerFunc(func(m kafka.Message, partitions ...int) int {
	for _, h := range m.Headers {
		if h.Key == "i" {
			i, _ := strconv.Atoi(string(h.Value))
			return partitions[i%len(partitions)]
		}
	}
	return partitions[0]
})

func kafkaGoMessage(src string, i int) kafka.Message {
	w := want(src, i)
	m := kafka.Message{Key: []byte(w.key), Value: []byte(w.value)}
	for _, h := range w.headers {
		m.Headers = append(m.Headers, kafka.Header{Key: h[0], Value: []byte(h[1])})
	}
	return m
}

func kafkaGoGot(m kafka.Message) got {
	g := got{partition: int32(m.Partition), offset: m.Offset, key: string(m.Key), value: string(m.Value)}
	for _, h := range m.Headers {
		g.headers = append(g.headers, [2]string{h.Key, string(h.Value)})
	}
	return g
}

func kafkaGoCreateTopic(t *testing.T, topic string, parts int) {
	t.Helper()
	client := &kafka.Client{Addr: kafka.TCP(addr), Transport: kafkaGoTransport}
	resp, err := client.CreateTopics(ctxT(t, 30*time.Second), &kafka.CreateTopicsRequest{
		Topics: []kafka.TopicConfig{{Topic: topic, NumPartitions: parts, ReplicationFactor: 1}},
	})
	if err != nil {
		t.Fatalf("CreateTopics: %v", err)
	}
	if err := resp.Errors[topic]; err != nil {
		t.Fatalf("CreateTopics %s: %v", topic, err)
	}
}

func TestKafkaGo(t *testing.T) { kafkaGoRoundTrip(t, "kafka-go", 3, nil) }

func TestKafkaGoCompression(t *testing.T) {
	for _, c := range []kafka.Compression{compress.Gzip, compress.Snappy, compress.Lz4, compress.Zstd} {
		t.Run(c.String(), func(t *testing.T) {
			kafkaGoRoundTrip(t, "kafka-go-"+c.String(), 1, c.Codec())
		})
	}
}

// kafkaGoRoundTrip creates a topic with Client.CreateTopics, writes the
// records with a Writer, checks ListOffsets, and reads every partition
// back with a group-less Reader.
func kafkaGoRoundTrip(t *testing.T, topic string, parts int, codec compress.Codec) {
	const n = 600
	src := topic
	kafkaGoCreateTopic(t, topic, parts)

	w := &kafka.Writer{
		Addr:         kafka.TCP(addr),
		Topic:        topic,
		Balancer:     byIndex,
		RequiredAcks: kafka.RequireAll,
		BatchTimeout: 5 * time.Millisecond,
		Transport:    kafkaGoTransport,
	}
	if codec != nil {
		w.Compression = kafka.Compression(codec.Code())
	}
	defer w.Close()
	ctx := ctxT(t, 60*time.Second)
	// Two calls, so a partition gets more than one batch.
	for _, r := range [][2]int{{0, n / 2}, {n / 2, n}} {
		var msgs []kafka.Message
		for i := r[0]; i < r[1]; i++ {
			msgs = append(msgs, kafkaGoMessage(src, i))
		}
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			t.Fatalf("WriteMessages: %v", err)
		}
	}

	client := &kafka.Client{Addr: kafka.TCP(addr), Transport: kafkaGoTransport}
	var reqs []kafka.OffsetRequest
	for p := range parts {
		reqs = append(reqs, kafka.FirstOffsetOf(p), kafka.LastOffsetOf(p))
	}
	lo, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		t.Fatalf("ListOffsets: %v", err)
	}
	ends := make([]int64, parts)
	var sum int64
	for _, po := range lo.Topics[topic] {
		if po.Error != nil {
			t.Fatalf("ListOffsets partition %d: %v", po.Partition, po.Error)
		}
		if po.FirstOffset != 0 {
			t.Fatalf("ListOffsets partition %d: first offset %d, want 0", po.Partition, po.FirstOffset)
		}
		ends[po.Partition] = po.LastOffset
		sum += po.LastOffset
	}
	if sum != n {
		t.Fatalf("ListOffsets: end offsets %v add up to %d, want %d", ends, sum, n)
	}

	total := 0
	for p := range parts {
		r := kafka.NewReader(kafka.ReaderConfig{
			Brokers:   []string{addr},
			Topic:     topic,
			Partition: p,
			MaxWait:   200 * time.Millisecond,
			Dialer:    kafkaGoDialer,
		})
		if err := r.SetOffset(kafka.FirstOffset); err != nil {
			t.Fatalf("SetOffset: %v", err)
		}
		var gs []got
		for int64(len(gs)) < ends[p] {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				t.Fatalf("partition %d: ReadMessage after %d records: %v", p, len(gs), err)
			}
			gs = append(gs, kafkaGoGot(m))
		}
		r.Close()
		checkPartition(t, src, int32(p), parts, 0, gs, true)
		total += len(gs)
	}
	if total != n {
		t.Fatalf("consumed %d records, want %d", total, n)
	}
}

// kafkaGoMember is a Reader with a GroupID, fetching and committing each
// message synchronously.
type kafkaGoMember struct {
	r    *kafka.Reader
	mu   sync.Mutex
	got  []got
	gens int64
	done chan struct{}
	err  error
}

func startKafkaGoMember(t *testing.T, group, topic string) *kafkaGoMember {
	t.Helper()
	m := &kafkaGoMember{
		r: kafka.NewReader(kafka.ReaderConfig{
			Brokers:           []string{addr},
			GroupID:           group,
			Topic:             topic,
			MaxWait:           200 * time.Millisecond,
			StartOffset:       kafka.FirstOffset,
			HeartbeatInterval: 500 * time.Millisecond,
			SessionTimeout:    10 * time.Second,
			RebalanceTimeout:  10 * time.Second,
			Dialer:            kafkaGoDialer,
		}),
		done: make(chan struct{}),
	}
	ctx := ctxT(t, 120*time.Second)
	go func() {
		defer close(m.done)
		for {
			msg, err := m.r.FetchMessage(ctx)
			if err != nil {
				// A closed Reader answers io.EOF.
				if ctx.Err() == nil && !errors.Is(err, io.EOF) {
					m.err = err
				}
				return
			}
			m.mu.Lock()
			m.got = append(m.got, kafkaGoGot(msg))
			m.mu.Unlock()
			if err := m.r.CommitMessages(ctx, msg); err != nil {
				m.err = fmt.Errorf("CommitMessages: %w", err)
				return
			}
		}
	}()
	t.Cleanup(m.stop)
	return m
}

// generations returns how many group generations the member has
// joined so far (Stats resets its counters on every call).
func (m *kafkaGoMember) generations() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.gens += m.r.Stats().Rebalances
	return m.gens
}

func (m *kafkaGoMember) snapshot() []got {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]got(nil), m.got...)
}

func (m *kafkaGoMember) stop() {
	m.r.Close()
	<-m.done
}

// TestKafkaGoGroup: two group Readers share a topic's partitions and
// commit; a new Reader of the same group resumes after the commits.
func TestKafkaGoGroup(t *testing.T) {
	requireGroups(t)
	const parts, n, m = 4, 400, 100
	topic, group, src := "kafka-go-group", "kafka-go-group", "kafka-go-group"
	kafkaGoCreateTopic(t, topic, parts)

	a := startKafkaGoMember(t, group, topic)
	b := startKafkaGoMember(t, group, topic)
	// kafka-go shows no assignment; wait until both members have joined
	// one generation (each answered its JoinGroup) before producing, so
	// that a late rebalance does not hand everything to the first.
	eventually(t, 60*time.Second, "both readers to join the group", func() bool {
		return a.generations() > 0 && b.generations() > 0
	})

	w := &kafka.Writer{Addr: kafka.TCP(addr), Topic: topic, Balancer: byIndex, RequiredAcks: kafka.RequireAll,
		BatchTimeout: 5 * time.Millisecond, Transport: kafkaGoTransport}
	defer w.Close()
	produce := func(from, to int) {
		var msgs []kafka.Message
		for i := from; i < to; i++ {
			msgs = append(msgs, kafkaGoMessage(src, i))
		}
		if err := w.WriteMessages(ctxT(t, 60*time.Second), msgs...); err != nil {
			t.Fatalf("WriteMessages: %v", err)
		}
	}
	produce(0, n)
	eventually(t, 60*time.Second, "the two readers to consume every record", func() bool {
		return distinct(t, a.snapshot(), b.snapshot()) >= n
	})
	a.stop()
	b.stop()
	for _, x := range []*kafkaGoMember{a, b} {
		if x.err != nil {
			t.Fatalf("group reader: %v", x.err)
		}
	}
	checkGroupShare(t, src, parts, n, [][]got{a.got, b.got})

	produce(n, n+m)
	c := startKafkaGoMember(t, group, topic)
	eventually(t, 60*time.Second, "the new reader to consume the new records", func() bool {
		return distinct(t, c.snapshot()) >= m
	})
	c.stop()
	if c.err != nil {
		t.Fatalf("group reader: %v", c.err)
	}
	checkResume(t, src, n, m, c.got)
}
