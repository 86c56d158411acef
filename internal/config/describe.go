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

// BrokerSynonyms returns the broker properties Kafka lists as synonyms
// of name (DynamicBrokerConfig.brokerConfigSynonyms): the whole group,
// in precedence order, for each of its members, so log.retention.hours
// → log.retention.ms, log.retention.minutes, log.retention.hours; and
// log.flush.interval.ms → it and log.flush.scheduler.interval.ms (but
// not the other way). Any other property is its own only synonym.
func BrokerSynonyms(name string) []string {
	for _, g := range kafkaSynonymGroups {
		if slices.Contains(g.members, name) {
			return slices.Clone(g.synonyms)
		}
	}
	return []string{name}
}

var kafkaSynonymGroups = []struct{ members, synonyms []string }{
	{[]string{"log.roll.ms", "log.roll.hours"}, []string{"log.roll.ms", "log.roll.hours"}},
	{[]string{"log.roll.jitter.ms", "log.roll.jitter.hours"}, []string{"log.roll.jitter.ms", "log.roll.jitter.hours"}},
	{[]string{"log.flush.interval.ms"}, []string{"log.flush.interval.ms", "log.flush.scheduler.interval.ms"}},
	{[]string{"log.retention.ms", "log.retention.minutes", "log.retention.hours"}, []string{"log.retention.ms", "log.retention.minutes", "log.retention.hours"}},
}

// Values lists the values a broker property has at each level, as
// Kafka's DescribeConfigs lists a broker entry's synonyms
// (ConfigHelper.configSynonyms): the per-broker dynamic value of every
// synonym (BrokerSynonyms), then the cluster-wide dynamic ones, the
// static ones and the non-null defaults; then, as Kafka does, the
// leading entries of other synonyms are dropped, up to the first of name
// itself. So log.retention.ms with only log.retention.hours set has no
// synonyms at all (and, being null, the value null from the default
// source), as kafka-configs shows it. The first entry, if any, gives the
// source.
func (c *BrokerConfig) Values(name string) []Value {
	out := c.values(BrokerSynonyms(name))
	for len(out) > 0 && out[0].Name != name {
		out = out[1:]
	}
	return out
}

// values lists the values of the given synonyms, level by level.
func (c *BrokerConfig) values(syns []string) []Value {
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

// topicSynonymChain is the chain of broker synonyms a topic property
// falls back to, from its first: log.retention.ms, log.retention.minutes,
// log.retention.hours for retention.ms.
func topicSynonymChain(d *Def) []string {
	chain := make([]string, len(d.Synonyms))
	for i, s := range d.Synonyms {
		chain[i] = s.Name
	}
	return chain
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
		for _, v := range t.broker.values(topicSynonymChain(d)) {
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
