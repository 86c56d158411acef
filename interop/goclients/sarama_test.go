package goclients

import (
	"errors"
	"fmt"
	"log"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

// GREGOR_SARAMA_LOG=1 prints sarama's own log (connections, retries,
// producer state) to stderr, for debugging a case that hangs.
func init() {
	if os.Getenv("GREGOR_SARAMA_LOG") != "" {
		sarama.Logger = log.New(os.Stderr, "[sarama] ", log.Lmicroseconds)
	}
}

// Sarama (≥1.41) sends exactly the versions its configured Kafka version
// implies, so each case pins one: a modern one and Kafka 2.1, the oldest
// that Kafka 4's version floors (KIP-896) still serve.

func TestSaramaV3_6(t *testing.T) {
	saramaRoundTrip(t, sarama.V3_6_0_0, "interop-sarama-v3.6", sarama.CompressionNone)
}

func TestSaramaV2_1(t *testing.T) {
	saramaRoundTrip(t, sarama.V2_1_0_0, "interop-sarama-v2.1", sarama.CompressionNone)
}

func TestSaramaCompression(t *testing.T) {
	for _, c := range []sarama.CompressionCodec{sarama.CompressionGZIP, sarama.CompressionSnappy, sarama.CompressionLZ4, sarama.CompressionZSTD} {
		t.Run(c.String(), func(t *testing.T) {
			saramaRoundTrip(t, sarama.V3_6_0_0, "interop-sarama-v3.6", c)
		})
	}
}

func saramaConfig(v sarama.KafkaVersion, clientID string) *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.Version = v
	cfg.ClientID = clientID
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	cfg.Consumer.MaxWaitTime = 200 * time.Millisecond
	cfg.Consumer.Return.Errors = true
	return cfg
}

func saramaMessage(topic, src string, i, parts int) *sarama.ProducerMessage {
	w := want(src, i)
	m := &sarama.ProducerMessage{
		Topic:     topic,
		Partition: int32(i % parts),
		Key:       sarama.StringEncoder(w.key),
		Value:     sarama.StringEncoder(w.value),
	}
	for _, h := range w.headers {
		m.Headers = append(m.Headers, sarama.RecordHeader{Key: []byte(h[0]), Value: []byte(h[1])})
	}
	return m
}

func saramaGot(m *sarama.ConsumerMessage) got {
	g := got{partition: m.Partition, offset: m.Offset, key: string(m.Key), value: string(m.Value)}
	for _, h := range m.Headers {
		g.headers = append(g.headers, [2]string{string(h.Key), string(h.Value)})
	}
	return g
}

// saramaRoundTrip creates a topic with ClusterAdmin, produces half the
// records with a SyncProducer and half with an AsyncProducer, checks the
// offsets with ListOffsets, and reads every partition back with a
// partition consumer.
func saramaRoundTrip(t *testing.T, v sarama.KafkaVersion, clientID string, codec sarama.CompressionCodec) {
	const parts, n = 3, 600
	topic := fmt.Sprintf("sarama-%s-%s", v, codec)
	src := topic
	cfg := saramaConfig(v, clientID)
	cfg.Producer.Compression = codec

	admin := saramaCreateTopic(t, cfg, topic, parts)
	err := admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: parts, ReplicationFactor: 1}, false)
	if !errors.Is(err, sarama.ErrTopicAlreadyExists) {
		t.Fatalf("CreateTopic again: %v, want %v", err, sarama.ErrTopicAlreadyExists)
	}
	md, err := admin.DescribeTopics([]string{topic})
	if err != nil {
		t.Fatalf("DescribeTopics: %v", err)
	}
	if len(md) != 1 || md[0].Err != sarama.ErrNoError || len(md[0].Partitions) != parts {
		t.Fatalf("DescribeTopics: %+v", md)
	}
	// ClusterAdmin.ListTopics also describes every topic's configs:
	// checked once the broker serves DescribeConfigs (without it,
	// sarama fails ListTopics with "The version of API is not
	// supported").
	if advertises(t, 32) {
		topics, err := admin.ListTopics()
		if err != nil {
			t.Fatalf("ListTopics: %v", err)
		}
		if d, ok := topics[topic]; !ok || d.NumPartitions != parts {
			t.Fatalf("ListTopics: %s = %+v, %v", topic, d, ok)
		}
	} else {
		t.Log("broker lacks DescribeConfigs: ClusterAdmin.ListTopics not checked")
	}

	client, err := sarama.NewClient([]string{addr}, cfg)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	defer client.Close()

	// acked[p][offset] = record index.
	acked := make([]map[int64]int, parts)
	for p := range acked {
		acked[p] = map[int64]int{}
	}
	sp, err := sarama.NewSyncProducerFromClient(client)
	if err != nil {
		t.Fatalf("NewSyncProducer: %v", err)
	}
	var msgs []*sarama.ProducerMessage
	for i := range n / 2 {
		msgs = append(msgs, saramaMessage(topic, src, i, parts))
	}
	if err := sp.SendMessages(msgs); err != nil {
		t.Fatalf("SyncProducer.SendMessages: %v", err)
	}
	for i, m := range msgs {
		acked[m.Partition][m.Offset] = i
	}
	if err := sp.Close(); err != nil {
		t.Fatalf("SyncProducer.Close: %v", err)
	}

	ap, err := sarama.NewAsyncProducerFromClient(client)
	if err != nil {
		t.Fatalf("NewAsyncProducer: %v", err)
	}
	go func() {
		for i := n / 2; i < n; i++ {
			m := saramaMessage(topic, src, i, parts)
			m.Metadata = i
			ap.Input() <- m
		}
	}()
	timeout := time.After(60 * time.Second)
	for range n - n/2 {
		select {
		case m := <-ap.Successes():
			acked[m.Partition][m.Offset] = m.Metadata.(int)
		case err := <-ap.Errors():
			t.Fatalf("AsyncProducer: %v", err)
		case <-timeout:
			t.Fatal("AsyncProducer: timed out waiting for acks")
		}
	}
	if err := ap.Close(); err != nil {
		t.Fatalf("AsyncProducer.Close: %v", err)
	}

	// ListOffsets: earliest 0, latest = records acked per partition.
	for p := range int32(parts) {
		oldest, err := client.GetOffset(topic, p, sarama.OffsetOldest)
		if err != nil || oldest != 0 {
			t.Fatalf("GetOffset(%d, oldest) = %d, %v; want 0", p, oldest, err)
		}
		newest, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil || newest != int64(len(acked[p])) {
			t.Fatalf("GetOffset(%d, newest) = %d, %v; want %d", p, newest, err, len(acked[p]))
		}
	}

	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		t.Fatalf("NewConsumer: %v", err)
	}
	defer consumer.Close()
	total := 0
	for p := range int32(parts) {
		pc, err := consumer.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatalf("ConsumePartition(%d): %v", p, err)
		}
		var gs []got
		timeout := time.After(60 * time.Second)
		for len(gs) < len(acked[p]) {
			select {
			case m := <-pc.Messages():
				gs = append(gs, saramaGot(m))
			case err := <-pc.Errors():
				t.Fatalf("partition %d: %v", p, err)
			case <-timeout:
				t.Fatalf("partition %d: consumed %d of %d records", p, len(gs), len(acked[p]))
			}
		}
		pc.Close()
		idx := checkPartition(t, src, p, parts, 0, gs, true)
		for j, i := range idx {
			if acked[p][int64(j)] != i {
				t.Fatalf("partition %d offset %d: record %d, producer was told %d", p, j, i, acked[p][int64(j)])
			}
		}
		total += len(gs)
	}
	if total != n {
		t.Fatalf("consumed %d records, want %d", total, n)
	}
}

// saramaMember is one ConsumerGroup member: it records its claims and
// what it consumed, and marks every message (committed on Close and by
// the auto-committer).
type saramaMember struct {
	t      *testing.T
	src    string
	mu     sync.Mutex
	claims []int32
	got    []got
}

func (h *saramaMember) Setup(s sarama.ConsumerGroupSession) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.claims = nil
	for _, ps := range s.Claims() {
		h.claims = append(h.claims, ps...)
	}
	return nil
}

func (h *saramaMember) Cleanup(s sarama.ConsumerGroupSession) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.claims = nil
	s.Commit()
	return nil
}

func (h *saramaMember) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for m := range c.Messages() {
		h.mu.Lock()
		h.got = append(h.got, saramaGot(m))
		h.mu.Unlock()
		s.MarkMessage(m, "")
	}
	return nil
}

func (h *saramaMember) snapshot() (claims []int32, gs []got) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]int32(nil), h.claims...), append([]got(nil), h.got...)
}

// runMember consumes in the group until stopped; Close leaves the group
// after committing.
func runSaramaMember(t *testing.T, cfg *sarama.Config, group, topic string, h *saramaMember) (stop func()) {
	t.Helper()
	cg, err := sarama.NewConsumerGroup([]string{addr}, group, cfg)
	if err != nil {
		t.Fatalf("NewConsumerGroup: %v", err)
	}
	ctx := ctxT(t, 120*time.Second)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			if err := cg.Consume(ctx, []string{topic}, h); err != nil {
				if errors.Is(err, sarama.ErrClosedConsumerGroup) {
					return
				}
				t.Errorf("Consume: %v", err)
				return
			}
		}
	}()
	go func() {
		for err := range cg.Errors() {
			t.Errorf("consumer group: %v", err)
		}
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			if err := cg.Close(); err != nil {
				t.Errorf("ConsumerGroup.Close: %v", err)
			}
			<-done
		})
	}
	t.Cleanup(stop)
	return stop
}

// TestSaramaGroup: two ConsumerGroup members share a topic's partitions;
// they commit; a third member of the same group resumes exactly after
// the commits.
func TestSaramaGroup(t *testing.T) {
	requireGroups(t)
	for _, tc := range []struct {
		name     string
		v        sarama.KafkaVersion
		clientID string
	}{
		{"V3_6_0_0", sarama.V3_6_0_0, "interop-sarama-v3.6"},
		{"V2_1_0_0", sarama.V2_1_0_0, "interop-sarama-v2.1"},
	} {
		t.Run(tc.name, func(t *testing.T) { saramaGroup(t, tc.v, tc.clientID) })
	}
}

func saramaGroup(t *testing.T, v sarama.KafkaVersion, clientID string) {
	const parts, n, m = 4, 400, 100
	topic := fmt.Sprintf("sarama-group-%s", v)
	group, src := topic, topic
	cfg := saramaConfig(v, clientID)
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Offsets.AutoCommit.Interval = 100 * time.Millisecond
	cfg.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategyRange()}

	saramaCreateTopic(t, cfg, topic, parts)

	a, b := &saramaMember{t: t, src: src}, &saramaMember{t: t, src: src}
	stopA := runSaramaMember(t, cfg, group, topic, a)
	stopB := runSaramaMember(t, cfg, group, topic, b)
	eventually(t, 60*time.Second, "both members to share the partitions", func() bool {
		ca, _ := a.snapshot()
		cb, _ := b.snapshot()
		seen := map[int32]bool{}
		for _, p := range append(ca, cb...) {
			seen[p] = true
		}
		return len(ca) > 0 && len(cb) > 0 && len(ca)+len(cb) == parts && len(seen) == parts
	})

	client, err := sarama.NewClient([]string{addr}, cfg)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	defer client.Close()
	sp, err := sarama.NewSyncProducerFromClient(client)
	if err != nil {
		t.Fatalf("NewSyncProducer: %v", err)
	}
	defer sp.Close()
	produce := func(from, to int) {
		var msgs []*sarama.ProducerMessage
		for i := from; i < to; i++ {
			msgs = append(msgs, saramaMessage(topic, src, i, parts))
		}
		if err := sp.SendMessages(msgs); err != nil {
			t.Fatalf("SendMessages: %v", err)
		}
	}
	produce(0, n)
	eventually(t, 60*time.Second, "the two members to consume every record", func() bool {
		_, ga := a.snapshot()
		_, gb := b.snapshot()
		return distinct(t, ga, gb) >= n
	})
	stopA()
	stopB()
	checkGroupShare(t, src, parts, n, [][]got{a.got, b.got})

	// The records produced now are all a new member may see.
	produce(n, n+m)
	c := &saramaMember{t: t, src: src}
	stopC := runSaramaMember(t, cfg, group, topic, c)
	eventually(t, 60*time.Second, "the new member to consume the new records", func() bool {
		_, gc := c.snapshot()
		return distinct(t, gc) >= m
	})
	stopC()
	checkResume(t, src, n, m, c.got)
}

// checkGroupShare verifies what the members of a group consumed: every
// record 0..n-1 exactly as produced, and each member got some.
func checkGroupShare(t *testing.T, src string, parts, n int, members [][]got) {
	t.Helper()
	seen := map[int]bool{}
	for k, gs := range members {
		if len(gs) == 0 {
			t.Fatalf("member %d consumed nothing: the partitions were not shared", k)
		}
		for _, g := range gs {
			i := g.check(t, src, true)
			if i%parts != int(g.partition) {
				t.Fatalf("record %d in partition %d, want %d", i, g.partition, i%parts)
			}
			seen[i] = true
		}
	}
	for i := range n {
		if !seen[i] {
			t.Fatalf("record %d was never consumed", i)
		}
	}
}

// distinct counts the different records among consumed ones.
func distinct(t *testing.T, members ...[]got) int {
	t.Helper()
	seen := map[int]bool{}
	for _, gs := range members {
		for _, g := range gs {
			seen[g.index(t)] = true
		}
	}
	return len(seen)
}

// checkResume verifies that a member joining after the commits got
// exactly records n..n+m-1 and nothing before them.
func checkResume(t *testing.T, src string, n, m int, gs []got) {
	t.Helper()
	seen := map[int]bool{}
	for _, g := range gs {
		i := g.check(t, src, true)
		if i < n {
			t.Fatalf("new member re-consumed record %d (partition %d offset %d): the commits were not honoured", i, g.partition, g.offset)
		}
		seen[i] = true
	}
	if len(seen) != m {
		t.Fatalf("new member consumed %d distinct records, want %d", len(seen), m)
	}
}

// TestSaramaIdempotent: an idempotent AsyncProducer (InitProducerID,
// sequence numbers) writes every record exactly once, in order; the
// stored batches carry its producer ID and gap-free sequences.
func TestSaramaIdempotent(t *testing.T) {
	requireIdempotence(t)
	const parts, n = 3, 3000
	topic, src := "sarama-idempotent", "sarama-idempotent"
	cfg := saramaConfig(sarama.V3_6_0_0, "interop-sarama-v3.6")
	cfg.Producer.Idempotent = true
	cfg.Net.MaxOpenRequests = 1
	// Batches of about 50 records; the frequency flushes what is left
	// when the input stops short of a multiple of 50 (sarama otherwise
	// holds it forever: requests in flight let the buffer pass 50 at
	// uneven counts, so the tail was below the threshold now and then).
	cfg.Producer.Flush.Messages = 50
	cfg.Producer.Flush.Frequency = 10 * time.Millisecond

	saramaCreateTopic(t, cfg, topic, parts)
	client, err := sarama.NewClient([]string{addr}, cfg)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	defer client.Close()
	ap, err := sarama.NewAsyncProducerFromClient(client)
	if err != nil {
		t.Fatalf("NewAsyncProducer: %v", err)
	}
	go func() {
		for i := range n {
			ap.Input() <- saramaMessage(topic, src, i, parts)
		}
	}()
	counts := make([]int64, parts)
	timeout := time.After(60 * time.Second)
	for i := range n {
		select {
		case m := <-ap.Successes():
			counts[m.Partition]++
		case err := <-ap.Errors():
			t.Fatalf("AsyncProducer: %v", err)
		case <-timeout:
			t.Fatalf("AsyncProducer: timed out waiting for acks; %d of %d acknowledged", i, n)
		}
	}
	if err := ap.Close(); err != nil {
		t.Fatalf("AsyncProducer.Close: %v", err)
	}

	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		t.Fatalf("NewConsumer: %v", err)
	}
	defer consumer.Close()
	for p := range int32(parts) {
		newest, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil || newest != counts[p] {
			t.Fatalf("partition %d: end offset %d, %v; want %d (duplicates or losses)", p, newest, err, counts[p])
		}
		pc, err := consumer.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatalf("ConsumePartition(%d): %v", p, err)
		}
		var gs []got
		timeout := time.After(60 * time.Second)
		for int64(len(gs)) < counts[p] {
			select {
			case m := <-pc.Messages():
				gs = append(gs, saramaGot(m))
			case err := <-pc.Errors():
				t.Fatalf("partition %d: %v", p, err)
			case <-timeout:
				t.Fatalf("partition %d: consumed %d of %d records", p, len(gs), counts[p])
			}
		}
		pc.Close()
		idx := checkPartition(t, src, p, parts, 0, gs, true)
		if want := (n - int(p) + parts - 1) / parts; len(idx) != want {
			t.Fatalf("partition %d: %d records, want %d", p, len(idx), want)
		}
		checkIdempotentBatches(t, topic, int(p))
	}
}

// saramaCreateTopic creates topic with parts partitions through sarama's
// admin client and returns the client, closed when the test ends.
func saramaCreateTopic(t *testing.T, cfg *sarama.Config, topic string, parts int32) sarama.ClusterAdmin {
	t.Helper()
	admin, err := sarama.NewClusterAdmin([]string{addr}, cfg)
	if err != nil {
		t.Fatalf("NewClusterAdmin: %v", err)
	}
	t.Cleanup(func() { admin.Close() })
	if err := admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: parts, ReplicationFactor: 1}, false); err != nil {
		t.Fatalf("CreateTopic: %v", err)
	}
	return admin
}
