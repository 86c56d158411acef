package goclients

import (
	"crypto/rand"
	"errors"
	"strings"
	"testing"

	"github.com/IBM/sarama"
	metrics "github.com/rcrowley/go-metrics"
)

// TestSaramaQuotas: sarama's ClusterAdmin sets, describes and removes
// client quotas (KIP-546), Gregor refuses a key it does not enforce, and
// a producer whose client ID is over its producer_byte_rate is told a
// throttle time (sarama's throttle-time-in-ms histogram).
func TestSaramaQuotas(t *testing.T) {
	const (
		admID     = "interop-sarama-quota-admin"
		throttled = "interop-sarama-throttled"
		topic     = "sarama-quota"
	)
	admin, err := sarama.NewClusterAdmin([]string{addr}, saramaConfig(sarama.V3_6_0_0, admID))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if err := admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1}, false); err != nil &&
		!errors.Is(err, sarama.ErrTopicAlreadyExists) {
		t.Fatal(err)
	}
	client := []sarama.QuotaEntityComponent{{EntityType: sarama.QuotaEntityClientID, MatchType: sarama.QuotaMatchExact, Name: throttled}}
	defaultUser := []sarama.QuotaEntityComponent{{EntityType: sarama.QuotaEntityUser, MatchType: sarama.QuotaMatchDefault}}
	if err := admin.AlterClientQuotas(client, sarama.ClientQuotasOp{Key: "producer_byte_rate", Value: 1024}, false); err != nil {
		t.Fatalf("set producer_byte_rate: %v", err)
	}
	if err := admin.AlterClientQuotas(defaultUser, sarama.ClientQuotasOp{Key: "consumer_byte_rate", Value: 1 << 30}, false); err != nil {
		t.Fatalf("set the default user's consumer_byte_rate: %v", err)
	}
	if err := admin.AlterClientQuotas(client, sarama.ClientQuotasOp{Key: "request_percentage", Value: 50}, false); err == nil {
		t.Error("request_percentage, which Gregor does not enforce, was accepted")
	}
	describe := func(f sarama.QuotaFilterComponent) []sarama.DescribeClientQuotasEntry {
		t.Helper()
		got, err := admin.DescribeClientQuotas([]sarama.QuotaFilterComponent{f}, false)
		if err != nil {
			t.Fatalf("describe: %v", err)
		}
		return got
	}
	byClient := sarama.QuotaFilterComponent{EntityType: sarama.QuotaEntityClientID, MatchType: sarama.QuotaMatchExact, Match: throttled}
	if got := describe(byClient); len(got) != 1 || got[0].Values["producer_byte_rate"] != 1024 || len(got[0].Values) != 1 {
		t.Errorf("the client ID's quotas: %+v", got)
	}
	if got := describe(sarama.QuotaFilterComponent{EntityType: sarama.QuotaEntityUser, MatchType: sarama.QuotaMatchDefault}); len(got) != 1 ||
		got[0].Values["consumer_byte_rate"] != 1<<30 || got[0].Entity[0].MatchType != sarama.QuotaMatchDefault {
		t.Errorf("the default user's quotas: %+v", got)
	}

	// 64 KiB against 1 KiB/s: more than the first windows allow, so the
	// response carries a throttle time.
	cfg := saramaConfig(sarama.V3_6_0_0, throttled)
	cfg.MetricRegistry = metrics.NewRegistry()
	p, err := sarama.NewSyncProducer([]string{addr}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	value := make([]byte, 64<<10)
	rand.Read(value)
	if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: topic, Partition: 0, Value: sarama.ByteEncoder(value)}); err != nil {
		t.Fatalf("produce: %v", err)
	}
	// Read before Close, which unregisters the producer's metrics.
	// sarama keeps the histogram per broker: throttle-time-in-ms-for-broker-N.
	var most int64
	cfg.MetricRegistry.Each(func(name string, m interface{}) {
		if h, ok := m.(metrics.Histogram); ok && strings.HasPrefix(name, "throttle-time-in-ms") {
			most = max(most, h.Max())
		}
	})
	if most <= 0 {
		t.Errorf("no throttle time reported to a producer 64x over its quota")
	} else {
		t.Logf("throttled up to %d ms", most)
	}
	p.Close()

	for _, c := range []struct {
		entity []sarama.QuotaEntityComponent
		key    string
	}{{client, "producer_byte_rate"}, {defaultUser, "consumer_byte_rate"}} {
		if err := admin.AlterClientQuotas(c.entity, sarama.ClientQuotasOp{Key: c.key, Remove: true}, false); err != nil {
			t.Fatalf("remove %s: %v", c.key, err)
		}
	}
	if got := describe(byClient); len(got) != 0 {
		t.Errorf("after removal: %+v", got)
	}
}
