package broker_test

import (
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/ktest"
)

// topicConfigs describes a topic's configs with kadm, by name.
func topicConfigs(t *testing.T, adm *kadm.Client, topic string) map[string]kadm.Config {
	t.Helper()
	rcs, err := adm.DescribeTopicConfigs(ctxT(t, 10*time.Second), topic)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rcs.On(topic, nil)
	if err != nil || rc.Err != nil {
		t.Fatalf("describe %s: %v %v", topic, err, rc.Err)
	}
	out := map[string]kadm.Config{}
	for _, c := range rc.Configs {
		out[c.Key] = c
	}
	return out
}

func brokerConfigs(t *testing.T, adm *kadm.Client, broker ...int32) map[string]kadm.Config {
	t.Helper()
	rcs, err := adm.DescribeBrokerConfigs(ctxT(t, 10*time.Second), broker...)
	if err != nil {
		t.Fatal(err)
	}
	if len(rcs) != 1 || rcs[0].Err != nil {
		t.Fatalf("describe broker %v: %+v", broker, rcs)
	}
	out := map[string]kadm.Config{}
	for _, c := range rcs[0].Configs {
		out[c.Key] = c
	}
	return out
}

func checkConfig(t *testing.T, cs map[string]kadm.Config, name, value string, src kmsg.ConfigSource) {
	t.Helper()
	c, ok := cs[name]
	if !ok {
		t.Fatalf("%s not described", name)
	}
	if c.MaybeValue() != value || c.Source != src {
		t.Fatalf("%s = %q (%v), want %q (%v); synonyms %+v", name, c.MaybeValue(), c.Source, value, src, c.Synonyms)
	}
}

func set(name, value string) kadm.AlterConfig {
	return kadm.AlterConfig{Op: kadm.SetConfig, Name: name, Value: kmsg.StringPtr(value)}
}

// alterErr returns the error of a one-resource alter: the request's, or
// the resource's.
func alterErr(rs kadm.AlterConfigsResponses, err error) error {
	if err != nil {
		return err
	}
	if len(rs) != 1 {
		return fmt.Errorf("%d responses", len(rs))
	}
	return rs[0].Err
}

func TestDescribeConfigs(t *testing.T) {
	b := ktest.NewBroker(t, ktest.Set("log.retention.hours", "2"), ktest.Set("message.max.bytes", "2000000"))
	b.CreateTopic("described", 1, map[string]*string{"cleanup.policy": kmsg.StringPtr("compact"), "segment.bytes": kmsg.StringPtr("1048576")})
	adm := b.Admin()

	cs := topicConfigs(t, adm, "described")
	checkConfig(t, cs, "cleanup.policy", "compact", kmsg.ConfigSourceDynamicTopicConfig)
	checkConfig(t, cs, "segment.bytes", "1048576", kmsg.ConfigSourceDynamicTopicConfig)
	checkConfig(t, cs, "retention.ms", "7200000", kmsg.ConfigSourceStaticBrokerConfig)
	checkConfig(t, cs, "max.message.bytes", "2000000", kmsg.ConfigSourceStaticBrokerConfig)
	checkConfig(t, cs, "delete.retention.ms", "86400000", kmsg.ConfigSourceDefaultConfig)
	syn := cs["retention.ms"].Synonyms
	if len(syn) != 2 || syn[0].Key != "log.retention.hours" || *syn[0].Value != "2" || syn[0].Source != kmsg.ConfigSourceStaticBrokerConfig ||
		syn[1].Key != "log.retention.hours" || *syn[1].Value != "168" || syn[1].Source != kmsg.ConfigSourceDefaultConfig {
		t.Fatalf("retention.ms synonyms %+v", syn)
	}
	if syn := cs["cleanup.policy"].Synonyms; len(syn) != 2 || syn[0].Source != kmsg.ConfigSourceDynamicTopicConfig || syn[1].Key != "log.cleanup.policy" {
		t.Fatalf("cleanup.policy synonyms %+v", syn)
	}

	// v3: documentation and types; a subset by name.
	req := kmsg.NewPtrDescribeConfigsRequest()
	req.Version = 3
	req.IncludeDocumentation = true
	rr := kmsg.NewDescribeConfigsRequestResource()
	rr.ResourceType, rr.ResourceName, rr.ConfigNames = kmsg.ConfigResourceTypeTopic, "described", []string{"cleanup.policy", "min.cleanable.dirty.ratio"}
	req.Resources = append(req.Resources, rr)
	resp := send[*kmsg.DescribeConfigsResponse](t, b, req)
	if len(resp.Resources) != 1 || len(resp.Resources[0].Configs) != 2 {
		t.Fatalf("v3 response %+v", resp.Resources)
	}
	for _, c := range resp.Resources[0].Configs {
		if c.Documentation == nil || *c.Documentation == "" {
			t.Errorf("%s: no documentation", c.Name)
		}
		want := map[string]kmsg.ConfigType{"cleanup.policy": kmsg.ConfigTypeList, "min.cleanable.dirty.ratio": kmsg.ConfigTypeDouble}[c.Name]
		if c.ConfigType != want {
			t.Errorf("%s: type %v, want %v", c.Name, c.ConfigType, want)
		}
	}
	// v0 (kafka-python 2.0): IsDefault instead of a source.
	req.Version = 0
	req.Resources[0].ConfigNames = []string{"cleanup.policy", "delete.retention.ms"}
	resp = send[*kmsg.DescribeConfigsResponse](t, b, req)
	for _, c := range resp.Resources[0].Configs {
		if c.IsDefault != (c.Name == "delete.retention.ms") {
			t.Errorf("v0 %s: IsDefault %v", c.Name, c.IsDefault)
		}
	}
	// Unknown topic; invalid topic names (Kafka's ConfigHelper checks
	// the name first); broker loggers; another broker's id.
	req.Version = 4
	req.Resources = nil
	for _, r := range []struct {
		typ  kmsg.ConfigResourceType
		name string
		want *kerr.Error
	}{
		{kmsg.ConfigResourceTypeTopic, "nope", kerr.UnknownTopicOrPartition},
		{kmsg.ConfigResourceTypeTopic, "bad name!", kerr.InvalidTopicException},
		{kmsg.ConfigResourceTypeTopic, "", kerr.InvalidTopicException},
		{kmsg.ConfigResourceTypeBroker, "7", kerr.InvalidRequest},
		{kmsg.ConfigResourceTypeBrokerLogger, "0", kerr.InvalidRequest},
	} {
		rr := kmsg.NewDescribeConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = r.typ, r.name
		req.Resources = []kmsg.DescribeConfigsRequestResource{rr}
		resp := send[*kmsg.DescribeConfigsResponse](t, b, req)
		errCode(t, r.typ.String()+" "+r.name, resp.Resources[0].ErrorCode, r.want)
	}

	// The broker: every property, read-only flags, static sources.
	bc := brokerConfigs(t, adm, 0)
	checkConfig(t, bc, "log.retention.hours", "2", kmsg.ConfigSourceStaticBrokerConfig)
	checkConfig(t, bc, "num.partitions", "1", kmsg.ConfigSourceDefaultConfig)
	if v := bc["log.retention.ms"]; v.Value != nil || v.Source != kmsg.ConfigSourceDefaultConfig {
		t.Fatalf("log.retention.ms %+v, want null default", v)
	}
	// Kafka drops the leading synonyms named otherwise
	// (ConfigHelper.configSynonyms): log.retention.ms has none here, as
	// kafka-configs shows; log.retention.hours lists its own.
	if syn := bc["log.retention.ms"].Synonyms; len(syn) != 0 {
		t.Fatalf("log.retention.ms synonyms %+v, want none", syn)
	}
	if syn := bc["log.retention.hours"].Synonyms; len(syn) != 2 || syn[0].Key != "log.retention.hours" || syn[0].Source != kmsg.ConfigSourceStaticBrokerConfig ||
		syn[1].Key != "log.retention.hours" || syn[1].Source != kmsg.ConfigSourceDefaultConfig {
		t.Fatalf("log.retention.hours synonyms %+v", syn)
	}
	brs, _ := adm.DescribeBrokerConfigs(ctxT(t, 10*time.Second), 0)
	_ = brs
	raw := kmsg.NewPtrDescribeConfigsRequest()
	raw.Version = 4
	rr = kmsg.NewDescribeConfigsRequestResource()
	rr.ResourceType, rr.ResourceName, rr.ConfigNames = kmsg.ConfigResourceTypeBroker, "0", []string{"node.id", "log.retention.ms"}
	raw.Resources = append(raw.Resources, rr)
	for _, c := range send[*kmsg.DescribeConfigsResponse](t, b, raw).Resources[0].Configs {
		if c.ReadOnly != (c.Name == "node.id") {
			t.Errorf("%s: read-only %v", c.Name, c.ReadOnly)
		}
	}
	// The cluster default resource lists only dynamic defaults.
	if dc := brokerConfigs(t, adm); len(dc) != 0 {
		t.Fatalf("cluster defaults before any change: %v", dc)
	}
}

func TestIncrementalAlterConfigs(t *testing.T) {
	b := ktest.NewBroker(t)
	b.CreateTopic("alter", 1, nil)
	adm := b.Admin()
	ctx := ctxT(t, 30*time.Second)

	if err := alterErr(adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{set("retention.ms", "60000"), set("segment.bytes", "1048576")}, "alter")); err != nil {
		t.Fatal(err)
	}
	cs := topicConfigs(t, adm, "alter")
	checkConfig(t, cs, "retention.ms", "60000", kmsg.ConfigSourceDynamicTopicConfig)
	checkConfig(t, cs, "segment.bytes", "1048576", kmsg.ConfigSourceDynamicTopicConfig)

	// APPEND and SUBTRACT work on lists, from the default.
	appendCompact := kadm.AlterConfig{Op: kadm.AppendConfig, Name: "cleanup.policy", Value: kmsg.StringPtr("compact")}
	if err := alterErr(adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{appendCompact}, "alter")); err != nil {
		t.Fatal(err)
	}
	checkConfig(t, topicConfigs(t, adm, "alter"), "cleanup.policy", "delete,compact", kmsg.ConfigSourceDynamicTopicConfig)
	if err := alterErr(adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{appendCompact}, "alter")); err != nil {
		t.Fatal(err)
	}
	checkConfig(t, topicConfigs(t, adm, "alter"), "cleanup.policy", "delete,compact", kmsg.ConfigSourceDynamicTopicConfig)
	subtract := kadm.AlterConfig{Op: kadm.SubtractConfig, Name: "cleanup.policy", Value: kmsg.StringPtr("delete")}
	if err := alterErr(adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{subtract}, "alter")); err != nil {
		t.Fatal(err)
	}
	checkConfig(t, topicConfigs(t, adm, "alter"), "cleanup.policy", "compact", kmsg.ConfigSourceDynamicTopicConfig)

	// DELETE returns a property to its default.
	del := kadm.AlterConfig{Op: kadm.DeleteConfig, Name: "retention.ms"}
	if err := alterErr(adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{del}, "alter")); err != nil {
		t.Fatal(err)
	}
	checkConfig(t, topicConfigs(t, adm, "alter"), "retention.ms", "604800000", kmsg.ConfigSourceDefaultConfig)

	// Invalid names and values: INVALID_CONFIG, nothing changed.
	for _, bad := range [][]kadm.AlterConfig{
		{set("no.such.config", "1")},
		{set("retention.ms", "soon")},
		{set("retention.ms", "-5")},
		{set("cleanup.policy", "compact,shred")},
		{set("min.cleanable.dirty.ratio", "1.5")},
		{set("compression.type", "brotli")},
		{set("message.timestamp.type", "Yesterday")},
		{{Op: kadm.AppendConfig, Name: "retention.ms", Value: kmsg.StringPtr("1")}},
		{set("min.compaction.lag.ms", "100"), set("max.compaction.lag.ms", "10")},
		{set("segment.bytes", "2048"), set("bogus", "1")},
	} {
		err := alterErr(adm.AlterTopicConfigs(ctx, bad, "alter"))
		if !errors.Is(err, kerr.InvalidConfig) {
			t.Errorf("%+v: %v, want INVALID_CONFIG", bad, err)
		}
	}
	checkConfig(t, topicConfigs(t, adm, "alter"), "segment.bytes", "1048576", kmsg.ConfigSourceDynamicTopicConfig)
	if err := alterErr(adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{set("retention.ms", "1")}, "missing")); !errors.Is(err, kerr.UnknownTopicOrPartition) {
		t.Errorf("unknown topic: %v", err)
	}
	dup := []kadm.AlterConfig{set("retention.ms", "1"), set("retention.ms", "2")}
	if err := alterErr(adm.AlterTopicConfigs(ctx, dup, "alter")); !errors.Is(err, kerr.InvalidRequest) {
		t.Errorf("duplicate keys: %v", err)
	}
	// Validate only changes nothing.
	if err := alterErr(adm.ValidateAlterTopicConfigs(ctx, []kadm.AlterConfig{set("retention.ms", "5")}, "alter")); err != nil {
		t.Fatal(err)
	}
	checkConfig(t, topicConfigs(t, adm, "alter"), "retention.ms", "604800000", kmsg.ConfigSourceDefaultConfig)

	// Broker: dynamic properties at the cluster default and per broker;
	// read-only and unknown ones refused.
	if err := alterErr(adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{set("log.retention.ms", "3600000")})); err != nil {
		t.Fatal(err)
	}
	if err := alterErr(adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{set("message.max.bytes", "3000000")}, 0)); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []kadm.AlterConfig{set("num.partitions", "3"), set("node.id", "4"), set("no.such", "1"), set("log.cleaner.threads", "x")} {
		if err := alterErr(adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{bad})); !errors.Is(err, kerr.InvalidConfig) {
			t.Errorf("broker %s: %v, want INVALID_CONFIG", bad.Name, err)
		}
	}
	bc := brokerConfigs(t, adm, 0)
	checkConfig(t, bc, "log.retention.ms", "3600000", kmsg.ConfigSourceDynamicDefaultBrokerConfig)
	checkConfig(t, bc, "message.max.bytes", "3000000", kmsg.ConfigSourceDynamicBrokerConfig)
	dc := brokerConfigs(t, adm)
	checkConfig(t, dc, "log.retention.ms", "3600000", kmsg.ConfigSourceDynamicDefaultBrokerConfig)
	cs = topicConfigs(t, adm, "alter")
	checkConfig(t, cs, "retention.ms", "3600000", kmsg.ConfigSourceDynamicDefaultBrokerConfig)
	checkConfig(t, cs, "max.message.bytes", "3000000", kmsg.ConfigSourceDynamicBrokerConfig)

	// Everything persists in the metadata log.
	b.Restart()
	adm = b.Admin()
	cs = topicConfigs(t, adm, "alter")
	checkConfig(t, cs, "cleanup.policy", "compact", kmsg.ConfigSourceDynamicTopicConfig)
	checkConfig(t, cs, "retention.ms", "3600000", kmsg.ConfigSourceDynamicDefaultBrokerConfig)
	checkConfig(t, cs, "max.message.bytes", "3000000", kmsg.ConfigSourceDynamicBrokerConfig)
	if got := b.B.Config().Int("message.max.bytes"); got != 3000000 {
		t.Fatalf("effective message.max.bytes after restart = %d", got)
	}
}

func TestAlterConfigsReplacesAll(t *testing.T) {
	b := ktest.NewBroker(t)
	b.CreateTopic("legacy", 1, map[string]*string{"retention.ms": kmsg.StringPtr("1000")})
	adm := b.Admin()
	ctx := ctxT(t, 30*time.Second)
	if err := alterErr(adm.AlterTopicConfigsState(ctx, []kadm.AlterConfig{{Name: "segment.ms", Value: kmsg.StringPtr("60000")}}, "legacy")); err != nil {
		t.Fatal(err)
	}
	cs := topicConfigs(t, adm, "legacy")
	checkConfig(t, cs, "segment.ms", "60000", kmsg.ConfigSourceDynamicTopicConfig)
	checkConfig(t, cs, "retention.ms", "604800000", kmsg.ConfigSourceDefaultConfig) // not given: reset
	if err := alterErr(adm.AlterTopicConfigsState(ctx, []kadm.AlterConfig{{Name: "segment.ms", Value: kmsg.StringPtr("0")}}, "legacy")); !errors.Is(err, kerr.InvalidConfig) {
		t.Fatalf("segment.ms=0: %v", err)
	}
	if err := alterErr(adm.AlterBrokerConfigsState(ctx, []kadm.AlterConfig{{Name: "log.cleaner.backoff.ms", Value: kmsg.StringPtr("500")}})); err != nil {
		t.Fatal(err)
	}
	checkConfig(t, brokerConfigs(t, adm), "log.cleaner.backoff.ms", "500", kmsg.ConfigSourceDynamicDefaultBrokerConfig)
	if err := alterErr(adm.AlterBrokerConfigsState(ctx, []kadm.AlterConfig{{Name: "auto.create.topics.enable", Value: kmsg.StringPtr("false")}})); !errors.Is(err, kerr.InvalidConfig) {
		t.Fatalf("read-only broker config: %v", err)
	}
}

// TestConfigChangeAppliesLive shortens a topic's retention and checks the
// next retention pass deletes its old data, without a restart.
func TestConfigChangeAppliesLive(t *testing.T) {
	b := ktest.NewBroker(t, ktest.Set("log.retention.check.interval.ms", "50"))
	b.CreateTopic("live", 1, map[string]*string{"segment.bytes": kmsg.StringPtr("1048576")})
	cl := b.Client(kgo.DefaultProduceTopic("live"))
	ctx := ctxT(t, 30*time.Second)
	old := time.Now().Add(-time.Hour)
	var recs []*kgo.Record
	for i := range 2000 {
		recs = append(recs, &kgo.Record{Value: make([]byte, 1000), Timestamp: old.Add(time.Duration(i) * time.Millisecond)})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	adm := b.Admin()
	start := func() int64 {
		os, err := adm.ListStartOffsets(ctx, "live")
		if err != nil {
			t.Fatal(err)
		}
		o, _ := os.Lookup("live", 0)
		return o.Offset
	}
	time.Sleep(200 * time.Millisecond)
	if s := start(); s != 0 {
		t.Fatalf("log start offset %d before the change", s)
	}
	if err := alterErr(adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{set("retention.ms", "60000")}, "live")); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 10*time.Second, "retention to apply", func() bool { return start() == 2000 })
	// Producing goes on at the log end; consumers from the start begin
	// there.
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("new")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	got := consumeN(t, b, "live", 1)
	if got[0].Offset != 2000 || string(got[0].Value) != "new" {
		t.Fatalf("first record %d %q", got[0].Offset, got[0].Value)
	}
}

// waitUntil polls cond every 20 ms until it holds or timeout passes.
func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var _ = strconv.Itoa

// TestAlterConfigsDuplicateResource: a resource named twice in one
// (Incremental)AlterConfigs is INVALID_REQUEST in both entries and left
// unchanged, as Kafka's ConfigAdminManager answers ("Each resource must
// appear at most once."); another resource of the request is altered.
func TestAlterConfigsDuplicateResource(t *testing.T) {
	b := ktest.NewBroker(t)
	b.CreateTopic("twice", 1, nil)
	b.CreateTopic("once", 1, nil)
	adm := b.Admin()

	inc := kmsg.NewPtrIncrementalAlterConfigsRequest()
	for _, r := range []struct{ topic, value string }{{"twice", "1000"}, {"once", "2000"}, {"twice", "3000"}} {
		rr := kmsg.NewIncrementalAlterConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeTopic, r.topic
		c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		c.Name, c.Op, c.Value = "retention.ms", kmsg.IncrementalAlterConfigOpSet, kmsg.StringPtr(r.value)
		rr.Configs = append(rr.Configs, c)
		inc.Resources = append(inc.Resources, rr)
	}
	for _, rr := range send[*kmsg.IncrementalAlterConfigsResponse](t, b, inc).Resources {
		want := kerr.InvalidRequest
		if rr.ResourceName == "once" {
			want = nil
		}
		errCode(t, "incremental "+rr.ResourceName, rr.ErrorCode, want)
	}
	checkConfig(t, topicConfigs(t, adm, "twice"), "retention.ms", "604800000", kmsg.ConfigSourceDefaultConfig)
	checkConfig(t, topicConfigs(t, adm, "once"), "retention.ms", "2000", kmsg.ConfigSourceDynamicTopicConfig)

	legacy := kmsg.NewPtrAlterConfigsRequest()
	for _, v := range []string{"4000", "5000"} {
		rr := kmsg.NewAlterConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeTopic, "twice"
		c := kmsg.NewAlterConfigsRequestResourceConfig()
		c.Name, c.Value = "retention.ms", kmsg.StringPtr(v)
		rr.Configs = append(rr.Configs, c)
		legacy.Resources = append(legacy.Resources, rr)
	}
	for i, rr := range send[*kmsg.AlterConfigsResponse](t, b, legacy).Resources {
		errCode(t, "legacy entry "+strconv.Itoa(i), rr.ErrorCode, kerr.InvalidRequest)
	}
	checkConfig(t, topicConfigs(t, adm, "twice"), "retention.ms", "604800000", kmsg.ConfigSourceDefaultConfig)
}

// TestAlterConfigsOtherBroker: a broker resource must be "" (the cluster
// default) or this broker's node.id; any other id is INVALID_REQUEST in
// both alter APIs, as Kafka's ConfigAdminManager answers ("Unexpected
// broker id").
func TestAlterConfigsOtherBroker(t *testing.T) {
	b := ktest.NewBroker(t)
	for _, name := range []string{"7", "-1", "x"} {
		inc := kmsg.NewPtrIncrementalAlterConfigsRequest()
		rr := kmsg.NewIncrementalAlterConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeBroker, name
		c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		c.Name, c.Op, c.Value = "log.cleaner.backoff.ms", kmsg.IncrementalAlterConfigOpSet, kmsg.StringPtr("500")
		rr.Configs = append(rr.Configs, c)
		inc.Resources = append(inc.Resources, rr)
		errCode(t, "incremental broker "+name, send[*kmsg.IncrementalAlterConfigsResponse](t, b, inc).Resources[0].ErrorCode, kerr.InvalidRequest)

		legacy := kmsg.NewPtrAlterConfigsRequest()
		lr := kmsg.NewAlterConfigsRequestResource()
		lr.ResourceType, lr.ResourceName = kmsg.ConfigResourceTypeBroker, name
		lc := kmsg.NewAlterConfigsRequestResourceConfig()
		lc.Name, lc.Value = "log.cleaner.backoff.ms", kmsg.StringPtr("500")
		lr.Configs = append(lr.Configs, lc)
		legacy.Resources = append(legacy.Resources, lr)
		errCode(t, "legacy broker "+name, send[*kmsg.AlterConfigsResponse](t, b, legacy).Resources[0].ErrorCode, kerr.InvalidRequest)
	}
	checkConfig(t, brokerConfigs(t, b.Admin(), 0), "log.cleaner.backoff.ms", "15000", kmsg.ConfigSourceDefaultConfig)
}

// TestDescribeConfigsEmptyNames: an empty (not null) list of config
// names asks for every config, as Kafka's ConfigHelper reads it; some
// clients send [] rather than null.
func TestDescribeConfigsEmptyNames(t *testing.T) {
	b := ktest.NewBroker(t)
	b.CreateTopic("all", 1, nil)
	for _, v := range []int16{0, 4} {
		req := kmsg.NewPtrDescribeConfigsRequest()
		req.Version = v
		for _, r := range []struct {
			typ  kmsg.ConfigResourceType
			name string
		}{{kmsg.ConfigResourceTypeTopic, "all"}, {kmsg.ConfigResourceTypeBroker, "0"}} {
			rr := kmsg.NewDescribeConfigsRequestResource()
			rr.ResourceType, rr.ResourceName, rr.ConfigNames = r.typ, r.name, []string{}
			req.Resources = append(req.Resources, rr)
		}
		for _, rs := range send[*kmsg.DescribeConfigsResponse](t, b, req).Resources {
			errCode(t, rs.ResourceName, rs.ErrorCode, nil)
			if len(rs.Configs) < 10 {
				t.Errorf("v%d %s %q: %d configs for an empty name list", v, rs.ResourceType, rs.ResourceName, len(rs.Configs))
			}
		}
	}
}
