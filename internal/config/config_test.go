package config

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestDefaultsAreValid(t *testing.T) {
	for _, r := range []*Registry{Broker, Topic} {
		for _, name := range r.Names() {
			d, _ := r.Lookup(name)
			if d.Null {
				continue
			}
			if err := d.Check(d.Default); err != nil {
				t.Errorf("%s: default invalid: %v", name, err)
			}
			if d.Doc == "" {
				t.Errorf("%s: no documentation", name)
			}
		}
	}
}

func TestTopicSynonymsExist(t *testing.T) {
	for _, name := range Topic.Names() {
		d, _ := Topic.Lookup(name)
		for _, s := range d.Synonyms {
			if _, ok := Broker.Lookup(s.Name); !ok {
				t.Errorf("%s: synonym %s is not a broker property", name, s.Name)
			}
		}
	}
}

func TestCheck(t *testing.T) {
	tests := []struct {
		reg         *Registry
		name, value string
		ok          bool
	}{
		{Broker, "num.partitions", "3", true},
		{Broker, "num.partitions", "0", false},
		{Broker, "num.partitions", "x", false},
		{Broker, "num.partitions", "99999999999", false},
		{Broker, "auto.create.topics.enable", "false", true},
		{Broker, "auto.create.topics.enable", "yes", false},
		{Topic, "cleanup.policy", "compact,delete", true},
		{Topic, "cleanup.policy", "compact,bogus", false},
		{Topic, "min.cleanable.dirty.ratio", "0.2", true},
		{Topic, "min.cleanable.dirty.ratio", "1.5", false},
		{Topic, "message.timestamp.type", "LogAppendTime", true},
		{Topic, "message.timestamp.type", "Now", false},
		{Topic, "retention.ms", "-1", true},
		{Topic, "retention.ms", "-2", false},
		{Topic, "no.such.thing", "1", false},
	}
	for _, tt := range tests {
		err := tt.reg.Validate(tt.name, tt.value)
		if (err == nil) != tt.ok {
			t.Errorf("%s=%s: err=%v, want ok=%v", tt.name, tt.value, err, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("%s=%s: error %v does not wrap ErrInvalid", tt.name, tt.value, err)
		}
	}
}

func TestTopicResolution(t *testing.T) {
	b, unknown, err := NewBroker(map[string]string{"log.retention.hours": "2", "bogus.name": "1", "message.max.bytes": "5000"})
	if err != nil {
		t.Fatal(err)
	}
	if len(unknown) != 1 || unknown[0] != "bogus.name" {
		t.Fatalf("unknown = %v", unknown)
	}
	tc := b.Topic(map[string]string{"segment.bytes": "1000"})
	check := func(name, want string, wantSrc Source) {
		t.Helper()
		v, src, _ := tc.Lookup(name)
		if v != want || src != wantSrc {
			t.Errorf("%s = %q (source %d), want %q (source %d)", name, v, src, want, wantSrc)
		}
	}
	check("retention.ms", "7200000", SourceStaticBroker)
	check("segment.bytes", "1000", SourceDynamicTopic)
	check("max.message.bytes", "5000", SourceStaticBroker)
	check("cleanup.policy", "delete", SourceDefault)

	dyn := b.WithDynamic(map[string]string{"log.retention.ms": "1000"}, nil)
	if v := dyn.Topic(nil).Int("retention.ms"); v != 1000 {
		t.Errorf("dynamic retention.ms = %d", v)
	}
	if got := b.RetentionMs(); got != 7200000 {
		t.Errorf("RetentionMs = %d", got)
	}
}

func TestParseProperties(t *testing.T) {
	in := "# comment\n! other\n\nnum.partitions=3\nlog.dirs : /tmp/x\nlong.value=a,\\\n  b\n"
	got, err := ParseProperties(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"num.partitions": "3", "log.dirs": "/tmp/x", "long.value": "a,b"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if _, err := ParseProperties(strings.NewReader("novalue\n")); err == nil {
		t.Error("line without = accepted")
	}
}

func TestFromEnv(t *testing.T) {
	got := FromEnv([]string{"GREGOR_NUM_PARTITIONS=4", "GREGOR_BROKERS=x", "PATH=/bin", "GREGOR_LOG_RETENTION_HOURS=1"}, nil)
	if got["num.partitions"] != "4" || got["log.retention.hours"] != "1" || len(got) != 2 {
		t.Errorf("FromEnv = %v", got)
	}
}

var update = flag.Bool("update", false, "rewrite docs/CONFIG.md")

// TestConfigDoc keeps docs/CONFIG.md in step with the registry; run with
// -update to regenerate it.
func TestConfigDoc(t *testing.T) {
	var b bytes.Buffer
	if err := WriteMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	const file = "../../docs/CONFIG.md"
	if *update {
		if err := os.WriteFile(file, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	have, err := os.ReadFile(file)
	if err != nil || !bytes.Equal(have, b.Bytes()) {
		t.Fatalf("docs/CONFIG.md is stale (%v): run go test ./internal/config -run TestConfigDoc -update", err)
	}
	for _, r := range []*Registry{Broker, Topic} {
		for _, name := range r.Names() {
			if !bytes.Contains(have, []byte("| `"+name+"` |")) {
				t.Errorf("%s missing from docs/CONFIG.md", name)
			}
		}
	}
}

func TestDynamicPrecedence(t *testing.T) {
	b, _, err := NewBroker(map[string]string{"log.retention.hours": "2", "message.max.bytes": "100"})
	if err != nil {
		t.Fatal(err)
	}
	c := b.WithDynamic(map[string]string{"message.max.bytes": "200", "log.retention.ms": "5000"}, map[string]string{"message.max.bytes": "300"})
	check := func(name, want string, wantSrc Source) {
		t.Helper()
		v, src, _ := c.Lookup(name)
		if v != want || src != wantSrc {
			t.Errorf("%s = %q (source %d), want %q (source %d)", name, v, src, want, wantSrc)
		}
	}
	check("message.max.bytes", "300", SourceDynamicBroker)
	check("log.retention.ms", "5000", SourceDynamicDefault)
	check("log.retention.hours", "2", SourceStaticBroker)
	check("num.partitions", "1", SourceDefault)
	if v := c.Topic(nil).Int("retention.ms"); v != 5000 {
		t.Errorf("retention.ms = %d, want the dynamic log.retention.ms", v)
	}
	if v := c.Topic(nil).Int("max.message.bytes"); v != 300 {
		t.Errorf("max.message.bytes = %d", v)
	}

	vals := c.Values("log.retention.ms")
	want := []Value{
		{Name: "log.retention.ms", Value: "5000", Source: SourceDynamicDefault},
		{Name: "log.retention.hours", Value: "2", Source: SourceStaticBroker},
		{Name: "log.retention.hours", Value: "168", Source: SourceDefault},
	}
	if !slices.Equal(vals, want) {
		t.Errorf("Values(log.retention.ms) = %+v, want %+v", vals, want)
	}
	tvals := c.Topic(map[string]string{"retention.ms": "1"}).Values("retention.ms")
	if len(tvals) != 4 || tvals[0] != (Value{Name: "retention.ms", Value: "1", Source: SourceDynamicTopic}) {
		t.Errorf("topic Values(retention.ms) = %+v", tvals)
	}
	if got := c.Topic(nil).Values("cleanup.policy"); len(got) != 1 || got[0].Name != "log.cleanup.policy" || got[0].Source != SourceDefault {
		t.Errorf("topic Values(cleanup.policy) = %+v", got)
	}
	if got := BrokerSynonyms("log.roll.ms"); !slices.Equal(got, []string{"log.roll.ms", "log.roll.hours"}) {
		t.Errorf("BrokerSynonyms(log.roll.ms) = %v", got)
	}
}

// TestBrokerValuesDropLeadingSynonyms: Kafka lists a broker property's
// synonyms over its whole group (DynamicBrokerConfig.brokerConfigSynonyms)
// and drops the leading entries named otherwise
// (ConfigHelper.configSynonyms).
func TestBrokerValuesDropLeadingSynonyms(t *testing.T) {
	b, _, err := NewBroker(map[string]string{"log.retention.hours": "2", "log.retention.ms": "7000"})
	if err != nil {
		t.Fatal(err)
	}
	c := b.WithDynamic(nil, map[string]string{"log.retention.minutes": "30"})
	for _, tc := range []struct {
		name string
		want []Value
	}{
		// Only log.retention.hours set: log.retention.ms has no
		// synonyms (null value, default source).
		{"log.retention.ms", nil},
		{"log.retention.hours", []Value{
			{Name: "log.retention.hours", Value: "2", Source: SourceStaticBroker},
			{Name: "log.retention.hours", Value: "168", Source: SourceDefault},
		}},
	} {
		only, _, _ := NewBroker(map[string]string{"log.retention.hours": "2"})
		if got := only.Values(tc.name); !slices.Equal(got, tc.want) {
			t.Errorf("only hours set: Values(%s) = %+v, want %+v", tc.name, got, tc.want)
		}
	}
	// The static log.retention.ms after the dynamic minutes stays: only
	// leading entries are dropped.
	want := []Value{
		{Name: "log.retention.minutes", Value: "30", Source: SourceDynamicBroker},
		{Name: "log.retention.ms", Value: "7000", Source: SourceStaticBroker},
		{Name: "log.retention.hours", Value: "2", Source: SourceStaticBroker},
		{Name: "log.retention.hours", Value: "168", Source: SourceDefault},
	}
	if got := c.Values("log.retention.minutes"); !slices.Equal(got, want) {
		t.Errorf("Values(log.retention.minutes) = %+v, want %+v", got, want)
	}
	if got := BrokerSynonyms("log.roll.hours"); !slices.Equal(got, []string{"log.roll.ms", "log.roll.hours"}) {
		t.Errorf("BrokerSynonyms(log.roll.hours) = %v", got)
	}
}

func TestValidation(t *testing.T) {
	if err := ValidateTopicOverrides(map[string]string{"min.compaction.lag.ms": "10", "max.compaction.lag.ms": "5"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("min > max compaction lag: %v", err)
	}
	if err := ValidateTopicOverrides(map[string]string{"min.compaction.lag.ms": "1", "cleanup.policy": "compact,delete"}); err != nil {
		t.Error(err)
	}
	for name, ok := range map[string]bool{"log.retention.ms": true, "log.cleaner.threads": true, "num.partitions": false,
		"log.retention.hours": false, "node.id": false, "no.such": false} {
		v := "1"
		if err := CheckDynamicBroker(name, v); (err == nil) != ok {
			t.Errorf("CheckDynamicBroker(%s): %v, want ok=%v", name, err, ok)
		}
	}
	// ssl.principal.mapping.rules is read-only, as in Kafka: a dynamic
	// update is refused, so rules change with a restart, where bad ones
	// stop the broker.
	if err := CheckDynamicBroker("ssl.principal.mapping.rules", "DEFAULT"); !errors.Is(err, ErrInvalid) {
		t.Errorf("dynamic ssl.principal.mapping.rules: %v, want refused", err)
	}
	if got := Default().String("ssl.principal.mapping.rules"); got != "DEFAULT" {
		t.Errorf("ssl.principal.mapping.rules defaults to %q, want DEFAULT", got)
	}
	// Per listener, as the other ssl.* settings.
	c, unknown, err := NewBroker(map[string]string{"listener.name.EXTERNAL.ssl.principal.mapping.rules": "RULE:^CN=(.*)$/$1/"})
	if err != nil || len(unknown) != 0 {
		t.Fatalf("listener override: %v, unknown %v", err, unknown)
	}
	if got := c.ListenerString("external", "ssl.principal.mapping.rules"); got != "RULE:^CN=(.*)$/$1/" {
		t.Errorf("EXTERNAL's rules %q", got)
	}
	if got := c.ListenerString("internal", "ssl.principal.mapping.rules"); got != "DEFAULT" {
		t.Errorf("INTERNAL's rules %q, want DEFAULT", got)
	}
}

// TestIdleDisabled: Kafka's Selector keeps idle connections forever for
// a negative connections.max.idle.ms; a server.properties with -1 was
// refused.
func TestIdleDisabled(t *testing.T) {
	b, _, err := NewBroker(map[string]string{"connections.max.idle.ms": "-1"})
	if err != nil {
		t.Fatal(err)
	}
	if v := b.Int("connections.max.idle.ms"); v != -1 {
		t.Fatalf("connections.max.idle.ms = %d", v)
	}
}

func TestEndpoints(t *testing.T) {
	c, _, err := NewBroker(map[string]string{"log.dirs": "/data/a, /data/b", "listeners": "CONTROLLER://:9093,PLAINTEXT://0.0.0.0:9092", "advertised.listeners": "PLAINTEXT://broker1:9092"})
	if err != nil {
		t.Fatal(err)
	}
	if d, ok := c.DataDir(); !ok || d != "/data/a" {
		t.Errorf("DataDir = %q %v", d, ok)
	}
	if a, ok, err := c.ListenAddr(); !ok || err != nil || a != "0.0.0.0:9092" {
		t.Errorf("ListenAddr = %q %v %v", a, ok, err)
	}
	if a, ok, err := c.AdvertisedAddr(); !ok || err != nil || a != "broker1:9092" {
		t.Errorf("AdvertisedAddr = %q %v %v", a, ok, err)
	}
	d := Default()
	if _, ok := d.DataDir(); ok {
		t.Error("default DataDir set")
	}
	if _, ok, _ := d.ListenAddr(); ok {
		t.Error("default ListenAddr set")
	}
	c, _, _ = NewBroker(map[string]string{"log.dir": "/x", "listeners": "SSL://:9093"})
	if d, ok := c.DataDir(); !ok || d != "/x" {
		t.Errorf("log.dir: %q %v", d, ok)
	}
	if a, ok, err := c.ListenAddr(); !ok || err != nil || a != ":9093" {
		t.Errorf("SSL listener: %q %v %v", a, ok, err)
	}
	if p, err := c.ListenProtocol(); p != SSL || err != nil {
		t.Errorf("SSL listener protocol: %q %v", p, err)
	}
	c, _, _ = NewBroker(map[string]string{"listeners": "CONTROLLER://:9093,sasl_ssl://h:9094"})
	if p, err := c.ListenProtocol(); p != SASLSSL || err != nil {
		t.Errorf("SASL_SSL listener protocol: %q %v", p, err)
	}
	if p, err := d.ListenProtocol(); p != Plaintext || err != nil {
		t.Errorf("default protocol: %q %v", p, err)
	}
	c, _, _ = NewBroker(map[string]string{"listeners": "CONTROLLER://:9093,EXTERNAL://:9094"})
	if _, _, err := c.ListenAddr(); !errors.Is(err, ErrInvalid) {
		t.Errorf("no client listener: %v", err)
	}
}

func TestListeners(t *testing.T) {
	c, _, err := NewBroker(map[string]string{
		"listeners":                      "INTERNAL://127.0.0.1:9092,CONTROLLER://:9093,external://0.0.0.0:9094,SSL://:9095",
		"listener.security.protocol.map": "INTERNAL:PLAINTEXT,EXTERNAL:SASL_SSL,SSL:SSL,CONTROLLER:PLAINTEXT",
		"advertised.listeners":           "INTERNAL://10.0.0.1:9092,EXTERNAL://kafka.example.com:9094",
	})
	if err != nil {
		t.Fatal(err)
	}
	ls, ok, err := c.Listeners()
	want := []Listener{{"INTERNAL", Plaintext, "127.0.0.1:9092"}, {"EXTERNAL", SASLSSL, "0.0.0.0:9094"}, {"SSL", SSL, ":9095"}}
	if !ok || err != nil || !reflect.DeepEqual(ls, want) {
		t.Errorf("Listeners = %+v %v %v, want %+v", ls, ok, err, want)
	}
	adv, err := c.AdvertisedListeners()
	if err != nil || adv["INTERNAL"] != "10.0.0.1:9092" || adv["EXTERNAL"] != "kafka.example.com:9094" || len(adv) != 2 {
		t.Errorf("AdvertisedListeners = %v %v", adv, err)
	}
	for _, bad := range []map[string]string{
		{"listeners": "PLAINTEXT://:9092,PLAINTEXT://:9093"},
		{"listeners": "INTERNAL://:9092"},
		{"listeners": "PLAINTEXT:9092"},
		{"listeners": "PLAINTEXT://:9092", "listener.security.protocol.map": "PLAINTEXT:TLS"},
	} {
		c, _, err := NewBroker(bad)
		if err == nil {
			_, _, err = c.Listeners()
		}
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("%v: %v, want ErrInvalid", bad, err)
		}
	}
}

func TestPrincipals(t *testing.T) {
	got, err := Principals(" User:alice ;User:CN=bob,O=acme;; ")
	if err != nil || len(got) != 2 || got[0] != "User:alice" || got[1] != "User:CN=bob,O=acme" {
		t.Fatalf("Principals = %q, %v", got, err)
	}
	if _, err := Principals("alice"); err == nil {
		t.Fatal("a principal without a type was accepted")
	}
}

func TestParseVoters(t *testing.T) {
	got, err := ParseVoters("1@a:9093, 2@b:9093,3@[::1]:9093")
	if err != nil || len(got) != 3 || got[1] != "a:9093" || got[3] != "[::1]:9093" {
		t.Fatalf("got %v, %v", got, err)
	}
	if got, err := ParseVoters(""); err != nil || got != nil {
		t.Fatalf("empty: %v, %v", got, err)
	}
	for _, bad := range []string{"1", "a@h:1", "-1@h:1", "1@h", "1@h:1,1@g:2", "99999999999@h:1"} {
		if _, err := ParseVoters(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if _, _, err := NewBroker(map[string]string{"controller.quorum.voters": "1@h"}); err == nil {
		t.Error("a malformed controller.quorum.voters was accepted")
	}
}
