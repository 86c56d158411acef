package broker_test

import (
	"crypto/rand"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/ktest"
)

func alterQuotas(t *testing.T, adm *kadm.Client, validateOnly bool, alts ...kadm.AlterClientQuotaEntry) kadm.AlteredClientQuotas {
	t.Helper()
	ctx := ctxT(t, 10*time.Second)
	var res kadm.AlteredClientQuotas
	var err error
	if validateOnly {
		res, err = adm.ValidateAlterClientQuotas(ctx, alts)
	} else {
		res, err = adm.AlterClientQuotas(ctx, alts)
	}
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func quotaEntity(parts ...string) kadm.ClientQuotaEntity {
	var e kadm.ClientQuotaEntity
	for i := 0; i < len(parts); i += 2 {
		c := kadm.ClientQuotaEntityComponent{Type: parts[i]}
		if parts[i+1] != "<default>" {
			name := parts[i+1]
			c.Name = &name
		}
		e = append(e, c)
	}
	return e
}

func setQuota(entity kadm.ClientQuotaEntity, key string, v float64) kadm.AlterClientQuotaEntry {
	return kadm.AlterClientQuotaEntry{Entity: entity, Ops: []kadm.AlterClientQuotaOp{{Key: key, Value: v}}}
}

// TestClientQuotasAdmin: quotas set with kadm are described with exact,
// default and any filters, strict or not, kept across a restart,
// removed, and refused as Kafka refuses them (plus the keys Gregor does
// not enforce).
func TestClientQuotasAdmin(t *testing.T) {
	b := ktest.NewBroker(t)
	adm := b.Admin()
	res := alterQuotas(t, adm, false,
		setQuota(quotaEntity("user", "alice"), "producer_byte_rate", 1<<20),
		setQuota(quotaEntity("user", "alice", "client-id", "<default>"), "consumer_byte_rate", 2<<20),
		setQuota(quotaEntity("client-id", "<default>"), "producer_byte_rate", 4<<20),
	)
	for _, r := range res {
		if r.Err != nil {
			t.Fatalf("%v: %v", r.Entity, r.Err)
		}
	}
	// validate_only writes nothing.
	alterQuotas(t, adm, true, setQuota(quotaEntity("user", "bob"), "producer_byte_rate", 1))

	describe := func(strict bool, comps ...kadm.DescribeClientQuotaComponent) int {
		t.Helper()
		got, err := adm.DescribeClientQuotas(ctxT(t, 10*time.Second), strict, comps)
		if err != nil {
			t.Fatal(err)
		}
		return len(got)
	}
	str := func(s string) *string { return &s }
	exact, def, any := kmsg.QuotasMatchTypeExact, kmsg.QuotasMatchTypeDefault, kmsg.QuotasMatchTypeAny
	check := func(when string) {
		t.Helper()
		for _, c := range []struct {
			name   string
			strict bool
			comps  []kadm.DescribeClientQuotaComponent
			want   int
		}{
			{"all", false, nil, 3},
			{"user alice", false, []kadm.DescribeClientQuotaComponent{{Type: "user", MatchName: str("alice"), MatchType: exact}}, 2},
			{"user alice strict", true, []kadm.DescribeClientQuotaComponent{{Type: "user", MatchName: str("alice"), MatchType: exact}}, 1},
			{"default client", false, []kadm.DescribeClientQuotaComponent{{Type: "client-id", MatchType: def}}, 2},
			{"any user", false, []kadm.DescribeClientQuotaComponent{{Type: "user", MatchType: any}}, 2},
			{"user bob", false, []kadm.DescribeClientQuotaComponent{{Type: "user", MatchName: str("bob"), MatchType: exact}}, 0},
		} {
			if got := describe(c.strict, c.comps...); got != c.want {
				t.Errorf("%s: %s: %d entities, want %d", when, c.name, got, c.want)
			}
		}
	}
	check("live")
	b.Restart()
	adm = b.Admin()
	check("after a restart")

	for name, alt := range map[string]kadm.AlterClientQuotaEntry{
		"not enforced":   setQuota(quotaEntity("user", "alice"), "request_percentage", 50),
		"unknown key":    setQuota(quotaEntity("user", "alice"), "bytes_per_fortnight", 50),
		"fractional":     setQuota(quotaEntity("user", "alice"), "producer_byte_rate", 1.5),
		"not positive":   setQuota(quotaEntity("user", "alice"), "producer_byte_rate", 0),
		"empty name":     setQuota(quotaEntity("user", ""), "producer_byte_rate", 1),
		"ip with a user": setQuota(quotaEntity("user", "alice", "ip", "10.0.0.1"), "producer_byte_rate", 1),
		"unknown type":   setQuota(quotaEntity("group", "g"), "producer_byte_rate", 1),
	} {
		res := alterQuotas(t, adm, false, alt)
		if len(res) != 1 || !errors.Is(res[0].Err, kerr.InvalidRequest) {
			t.Errorf("%s: %+v, want INVALID_REQUEST", name, res)
		}
	}
	// Removing the last quota of an entity removes the entity.
	res = alterQuotas(t, adm, false, kadm.AlterClientQuotaEntry{Entity: quotaEntity("user", "alice"),
		Ops: []kadm.AlterClientQuotaOp{{Key: "producer_byte_rate", Remove: true}}})
	if res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
	if got := describe(false); got != 2 {
		t.Errorf("after a removal: %d entities, want 2", got)
	}
}

// incompressible returns n random bytes.
func incompressible(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// throttles counts the throttle times a client was told.
type throttles struct{ n atomic.Int64 }

func (h *throttles) OnBrokerThrottle(_ kgo.BrokerMetadata, d time.Duration, _ bool) {
	if d > 0 {
		h.n.Add(1)
	}
}

// TestProduceQuotaThrottles: a client ID over its producer_byte_rate is
// throttled by franz-go's own honouring of the throttle time: six times
// the quota takes at least 2.5 s (about 4 s with the first windows'
// allowance), while another client ID is never throttled.
func TestProduceQuotaThrottles(t *testing.T) {
	b := ktest.NewBroker(t, ktest.Set("quota.window.num", "2"), ktest.Set("quota.window.size.seconds", "1"))
	b.CreateTopic("q", 1, nil)
	const quota = 64 << 10
	alterQuotas(t, b.Admin(), false, setQuota(quotaEntity("client-id", "slow"), "producer_byte_rate", quota))
	value := incompressible(1024)
	produce := func(clientID string) (time.Duration, int64) {
		h := &throttles{}
		// Uncompressed, in many requests: the throttle a response
		// carries delays the next one.
		cl := b.Client(kgo.ClientID(clientID), kgo.WithHooks(h), kgo.ProducerLinger(0),
			kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.ProducerBatchMaxBytes(16<<10))
		ctx := ctxT(t, 60*time.Second)
		start := time.Now()
		for range 6 * quota / len(value) {
			cl.Produce(ctx, &kgo.Record{Topic: "q", Value: value}, func(_ *kgo.Record, err error) {
				if err != nil {
					t.Errorf("produce: %v", err)
				}
			})
		}
		if err := cl.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		return time.Since(start), h.n.Load()
	}
	if took, n := produce("slow"); took < 2500*time.Millisecond || n == 0 {
		t.Errorf("6x its quota took %v with %d throttles: not throttled", took, n)
	} else {
		t.Logf("6x the quota in %v, %d throttles", took, n)
	}
	if _, n := produce("fast"); n != 0 {
		t.Errorf("a client without a quota was throttled %d times", n)
	}
}

// TestFetchQuotaThrottles: a consumer over its consumer_byte_rate (a
// user's default, here User:ANONYMOUS's) reads at about its quota.
func TestFetchQuotaThrottles(t *testing.T) {
	b := ktest.NewBroker(t, ktest.Set("quota.window.num", "2"), ktest.Set("quota.window.size.seconds", "1"))
	b.CreateTopic("q", 1, nil)
	const quota = 64 << 10
	value := incompressible(1024)
	n := 6 * quota / len(value)
	// Small batches, so that each fetch returns about 32 KiB.
	cl := b.Client(kgo.ProducerLinger(0), kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.ProducerBatchMaxBytes(16<<10))
	ctx := ctxT(t, 60*time.Second)
	for range n {
		cl.Produce(ctx, &kgo.Record{Topic: "q", Value: value}, nil)
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	alterQuotas(t, b.Admin(), false, setQuota(quotaEntity("user", "<default>"), "consumer_byte_rate", quota))
	h := &throttles{}
	cons := b.Client(kgo.WithHooks(h), kgo.ConsumeTopics("q"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxBytes(32<<10), kgo.FetchMaxPartitionBytes(32<<10))
	start := time.Now()
	got := 0
	for got < n {
		fs := cons.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d: %v", got, n, err)
		}
		got += fs.NumRecords()
	}
	if took := time.Since(start); took < 2500*time.Millisecond || h.n.Load() == 0 {
		t.Errorf("6x the quota consumed in %v with %d throttles: not throttled", took, h.n.Load())
	}
	// The quota is described with the entity it was set on.
	md := kmsg.NewPtrDescribeClientQuotasRequest()
	resp, err := md.RequestWith(ctx, cl)
	if err != nil || len(resp.Entries) != 1 || resp.Entries[0].Entity[0].Name != nil {
		t.Errorf("describe: %v %+v", err, resp)
	}
}

// TestThrottledClientMuted: a client that ignores its throttle time is
// not read from until it has passed (KIP-219: the broker mutes the
// channel), so its next request is answered no sooner.
func TestThrottledClientMuted(t *testing.T) {
	b := ktest.NewBroker(t, ktest.Set("quota.window.num", "2"), ktest.Set("quota.window.size.seconds", "1"))
	b.CreateTopic("q", 1, nil)
	// rawRequest's client ID is "t".
	alterQuotas(t, b.Admin(), false, setQuota(quotaEntity("client-id", "t"), "producer_byte_rate", 64<<10))
	conn := dialRaw(t, b.Addr).nc
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	produce := func(corr int32) (time.Duration, int32) {
		r := kmsg.NewPtrProduceRequest()
		r.Version, r.Acks, r.TimeoutMillis = 9, 1, 1000
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = "q"
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Records = incompressible(128 << 10) // not a batch: refused, but its bytes count
		rt.Partitions = append(rt.Partitions, rp)
		r.Topics = append(r.Topics, rt)
		var resp kmsg.ProduceResponse
		resp.Version = 9
		start := time.Now()
		rawRequest(t, conn, r, corr, &resp)
		return time.Since(start), resp.ThrottleMillis
	}
	_, throttle := produce(1)
	if throttle < 500 {
		t.Fatalf("twice the quota in one request: throttled %d ms, want at least 500", throttle)
	}
	if took, _ := produce(2); took < time.Duration(throttle)*time.Millisecond*8/10 {
		t.Errorf("the next request was answered after %v, within the %d ms throttle", took, throttle)
	}
}
