package broker

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/config"
	"github.com/gregor-streaming/gregor/internal/metadata"
	"github.com/gregor-streaming/gregor/internal/wire"
)

// TestRateThrottleClamped: however small the quota or large the burst,
// the throttle is the configured maximum, never an overflowed negative
// duration (which would not throttle at all).
func TestRateThrottleClamped(t *testing.T) {
	for _, c := range []struct{ quota, bytes float64 }{{1, 16 << 30}, {1e-7, 1 << 20}, {1, 1e300}} {
		var r rate
		if d := r.record(time.Now(), c.bytes, c.quota, 11, time.Second); d != 11*time.Second {
			t.Errorf("quota %g, %g bytes: throttle %v, want the 11 s maximum", c.quota, c.bytes, d)
		}
	}
}

// TestQuotaValuesValidated: byte rates are whole numbers of at least 1,
// never NaN or infinite.
func TestQuotaValuesValidated(t *testing.T) {
	u := "alice"
	entity := []metadata.QuotaEntityPart{{Type: quotaUser, Name: &u}}
	for _, v := range []float64{math.NaN(), math.Inf(1), math.Inf(-1), 1e-7, 0.5, 0, -5, 1.5} {
		if err := validateQuotaAlter(entity, []kmsg.AlterClientQuotasRequestEntryOp{{Key: producerByteRate, Value: v}}); err == nil {
			t.Errorf("producer_byte_rate=%v accepted", v)
		}
	}
	if err := validateQuotaAlter(entity, []kmsg.AlterClientQuotasRequestEntryOp{{Key: producerByteRate, Value: 1}}); err != nil {
		t.Errorf("producer_byte_rate=1 refused: %v", err)
	}
}

// TestQuotaRatesBounded: a client cycling client IDs under a <default>
// client quota keeps at most maxRates rates, whatever the IDs' length.
func TestQuotaRatesBounded(t *testing.T) {
	img := metadata.Empty()
	img.Quotas[metadata.QuotaKey([]metadata.QuotaEntityPart{{Type: quotaClientID}})] = &metadata.ClientQuota{
		Entity: []metadata.QuotaEntityPart{{Type: quotaClientID}},
		Values: map[string]float64{producerByteRate: 1 << 20},
	}
	cfg, _, err := config.NewBroker(nil)
	if err != nil {
		t.Fatal(err)
	}
	var q quotaState
	now := time.Now()
	client := &wire.Client{}
	for i := range maxRates + maxRates/2 {
		req := &wire.Request{Client: client, ClientID: fmt.Sprintf("client-%d", i)}
		q.record(img, cfg, req, producerByteRate, 100, now)
	}
	if n := len(q.rates); n > maxRates {
		t.Errorf("%d rates kept, bound %d", n, maxRates)
	}
	// One client's rate is kept across its requests.
	req := &wire.Request{Client: client, ClientID: "steady"}
	q.record(img, cfg, req, producerByteRate, 1, now)
	n := len(q.rates)
	q.record(img, cfg, req, producerByteRate, 1, now)
	if len(q.rates) != n {
		t.Errorf("the same client added a second rate")
	}
}

// TestResolveQuotaEveryEntity: each of Kafka's eight entity shapes, set
// alone, is the one that applies to a user's client, grouped as Kafka
// groups it.
func TestResolveQuotaEveryEntity(t *testing.T) {
	user, client := "alice", "app"
	u, c := &user, &client
	for _, e := range []struct {
		parts                []metadata.QuotaEntityPart
		withUser, withClient bool
	}{
		{[]metadata.QuotaEntityPart{{Type: quotaUser, Name: u}, {Type: quotaClientID, Name: c}}, true, true},
		{[]metadata.QuotaEntityPart{{Type: quotaClientID}, {Type: quotaUser, Name: u}}, true, true},
		{[]metadata.QuotaEntityPart{{Type: quotaUser, Name: u}}, true, false},
		{[]metadata.QuotaEntityPart{{Type: quotaUser}, {Type: quotaClientID, Name: c}}, true, true},
		{[]metadata.QuotaEntityPart{{Type: quotaUser}, {Type: quotaClientID}}, true, true},
		{[]metadata.QuotaEntityPart{{Type: quotaUser}}, true, false},
		{[]metadata.QuotaEntityPart{{Type: quotaClientID, Name: c}}, false, true},
		{[]metadata.QuotaEntityPart{{Type: quotaClientID}}, false, true},
	} {
		img := metadata.Empty()
		img.Quotas[metadata.QuotaKey(e.parts)] = &metadata.ClientQuota{Entity: e.parts, Values: map[string]float64{producerByteRate: 7}}
		v, tags, ok := resolveQuota(img, producerByteRate, user, client)
		if !ok || v != 7 || tags.withUser != e.withUser || tags.withClient != e.withClient {
			t.Errorf("%s: resolved %v %v %+v", metadata.QuotaKey(e.parts), ok, v, tags)
		}
		if _, _, ok := resolveQuota(img, producerByteRate, "bob", "other"); ok == (e.parts[0].Name != nil || len(e.parts) > 1 && e.parts[1].Name != nil) {
			t.Errorf("%s: applies to bob's other client: %v", metadata.QuotaKey(e.parts), ok)
		}
	}
}
