package config

import (
	"fmt"
	"slices"
	"strconv"
)

// Value is a property's value at one level, as DescribeConfigs reports
// it (an entry's synonyms).
type Value struct {
	Name string
	// Value is the value; "" with Null for a null value.
	Value  string
	Null   bool
	Source Source
}

// brokerSynonymChains lists, for each broker property that falls back to
// others, the chain from it: Kafka's KafkaConfig.brokerSynonyms. Built
// from the topic properties' synonym lists.
var brokerSynonymChains = func() map[string][]string {
	m := map[string][]string{}
	for _, name := range Topic.Names() {
		d, _ := Topic.Lookup(name)
		for i, s := range d.Synonyms {
			var chain []string
			for _, t := range d.Synonyms[i:] {
				chain = append(chain, t.Name)
			}
			if len(chain) > len(m[s.Name]) {
				m[s.Name] = chain
			}
		}
	}
	return m
}()

// BrokerSynonyms returns name followed by the broker properties it falls
// back to, in precedence order: log.retention.ms → log.retention.ms,
// log.retention.minutes, log.retention.hours.
func BrokerSynonyms(name string) []string {
	if chain, ok := brokerSynonymChains[name]; ok {
		return slices.Clone(chain)
	}
	return []string{name}
}

// Values lists the values a broker property has at each level, for name
// and its broker synonyms, as Kafka's DescribeConfigs lists synonyms:
// every synonym's per-broker dynamic value, then the cluster-wide
// dynamic ones, the static ones and the defaults. The first entry is
// the effective one unless a higher-precedence synonym is set at a lower
// level (Kafka's order, kept for clients that parse it).
func (c *BrokerConfig) Values(name string) []Value {
	syns := BrokerSynonyms(name)
	var out []Value
	for _, level := range []struct {
		m   map[string]string
		src Source
	}{{c.brokerDynamic, SourceDynamicBroker}, {c.clusterDynamic, SourceDynamicDefault}, {c.static, SourceStaticBroker}} {
		for _, s := range syns {
			if v, ok := level.m[s]; ok {
				out = append(out, Value{Name: s, Value: v, Source: level.src})
			}
		}
	}
	for _, s := range syns {
		if d, ok := Broker.Lookup(s); ok && !d.Null {
			out = append(out, Value{Name: s, Value: d.Default, Source: SourceDefault})
		}
	}
	return out
}

// Values lists the values a topic property has: the topic's override,
// then the values of its broker synonyms (BrokerConfig.Values), then its
// own default when no broker synonym has a default.
func (t *TopicConfig) Values(name string) []Value {
	d, ok := Topic.Lookup(name)
	if !ok {
		return nil
	}
	var out []Value
	if v, ok := t.overrides[name]; ok {
		out = append(out, Value{Name: name, Value: v, Source: SourceDynamicTopic})
	}
	hasDefault := false
	if len(d.Synonyms) > 0 {
		for _, v := range t.broker.Values(d.Synonyms[0].Name) {
			hasDefault = hasDefault || v.Source == SourceDefault
			out = append(out, v)
		}
	}
	if !hasDefault && !d.Null {
		out = append(out, Value{Name: name, Value: d.Default, Source: SourceDefault})
	}
	return out
}

// Overrides returns a copy of the topic's own overrides.
func (t *TopicConfig) Overrides() map[string]string {
	out := make(map[string]string, len(t.overrides))
	for k, v := range t.overrides {
		out[k] = v
	}
	return out
}

// ValidateTopicOverrides checks a topic's complete set of overrides:
// every name and value, and the rules between them that Kafka's
// LogConfig enforces.
func ValidateTopicOverrides(m map[string]string) error {
	for k, v := range m {
		if err := Topic.Validate(k, v); err != nil {
			return err
		}
	}
	minLag, okMin := m["min.compaction.lag.ms"]
	maxLag, okMax := m["max.compaction.lag.ms"]
	if okMin || okMax {
		lo, hi := int64(0), int64(1<<63-1)
		if okMin {
			lo, _ = strconv.ParseInt(minLag, 10, 64)
		}
		if okMax {
			hi, _ = strconv.ParseInt(maxLag, 10, 64)
		}
		if lo > hi {
			return fmt.Errorf("%w: min.compaction.lag.ms=%d is larger than max.compaction.lag.ms=%d", ErrInvalid, lo, hi)
		}
	}
	return nil
}

// CheckDynamicBroker checks a dynamic broker config change (AlterConfigs
// on a broker resource): the property must exist, be dynamic, and the
// value valid.
func CheckDynamicBroker(name, value string) error {
	d, ok := Broker.Lookup(name)
	if !ok {
		return fmt.Errorf("%w: unknown broker property %q", ErrInvalid, name)
	}
	if !d.Dynamic || d.ReadOnly {
		return fmt.Errorf("%w: cannot update these configs dynamically: %s", ErrInvalid, name)
	}
	return d.Check(value)
}
