package config

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// BrokerConfig is the effective broker configuration. It is immutable:
// changes build a new value.
type BrokerConfig struct {
	// static holds values from the properties file, environment and
	// flags (SourceStaticBroker).
	static map[string]string
	// clusterDynamic holds cluster-wide dynamic defaults from metadata
	// (SourceDynamicDefault): AlterConfigs on the broker resource "".
	clusterDynamic map[string]string
	// brokerDynamic holds this broker's dynamic overrides from metadata
	// (SourceDynamicBroker): AlterConfigs on the broker resource
	// "<node.id>".
	brokerDynamic map[string]string
}

// NewBroker validates static properties and returns the configuration.
// Unknown names are returned in unknown (Kafka warns about them and goes
// on); invalid values are an error.
func NewBroker(static map[string]string) (c *BrokerConfig, unknown []string, err error) {
	c = &BrokerConfig{static: map[string]string{}}
	for k, v := range static {
		d, ok := Broker.Lookup(k)
		if !ok {
			// listener.name.NAME.PROPERTY: a broker property for
			// one listener (ListenerString), checked as the property,
			// kept under the name in lower case as Kafka spells it
			// (an upper-case name was accepted and then ignored).
			if name, prop, isOverride := splitListenerOverride(k); isOverride {
				d, ok = Broker.Lookup(overrideDef(prop))
				k = "listener.name." + name + "." + prop
			}
		}
		if !ok {
			if _, isTopic := Topic.Lookup(k); !isTopic {
				unknown = append(unknown, k)
			}
			c.static[k] = v
			continue
		}
		if err := d.Check(v); err != nil {
			return nil, nil, err
		}
		c.static[k] = strings.TrimSpace(v)
	}
	slices.Sort(unknown)
	return c, unknown, nil
}

// Default returns a configuration with every property at its default.
func Default() *BrokerConfig {
	c, _, _ := NewBroker(nil)
	return c
}

// WithDynamic returns a copy of c with the dynamic broker values from
// cluster metadata: cluster is the cluster-wide default (resource ""),
// broker this broker's own (resource "<node.id>"), which wins.
func (c *BrokerConfig) WithDynamic(cluster, broker map[string]string) *BrokerConfig {
	return &BrokerConfig{static: c.static, clusterDynamic: maps.Clone(cluster), brokerDynamic: maps.Clone(broker)}
}

// Static returns the static value of name, if set.
func (c *BrokerConfig) Static(name string) (string, bool) {
	v, ok := c.static[name]
	return v, ok
}

// Lookup returns the effective value of a broker property and where it
// came from; ok is false for a null value.
func (c *BrokerConfig) Lookup(name string) (value string, src Source, ok bool) {
	if v, ok := c.brokerDynamic[name]; ok {
		return v, SourceDynamicBroker, true
	}
	if v, ok := c.clusterDynamic[name]; ok {
		return v, SourceDynamicDefault, true
	}
	if v, ok := c.static[name]; ok {
		return v, SourceStaticBroker, true
	}
	d, found := Broker.Lookup(name)
	if !found || d.Null {
		return "", SourceDefault, false
	}
	return d.Default, SourceDefault, true
}

// String returns a property's effective value ("" if null).
func (c *BrokerConfig) String(name string) string {
	v, _, _ := c.Lookup(name)
	return v
}

// Int returns an integer property's effective value (0 if null).
func (c *BrokerConfig) Int(name string) int64 {
	n, _ := strconv.ParseInt(c.String(name), 10, 64)
	return n
}

// Bool returns a boolean property's effective value.
func (c *BrokerConfig) Bool(name string) bool { return c.String(name) == "true" }

// Float returns a double property's effective value.
func (c *BrokerConfig) Float(name string) float64 {
	f, _ := strconv.ParseFloat(c.String(name), 64)
	return f
}

// Set reports whether name has a non-default value.
func (c *BrokerConfig) Set(name string) bool {
	_, src, ok := c.Lookup(name)
	return ok && src != SourceDefault
}

// RetentionMs resolves log.retention.{ms,minutes,hours} like Kafka.
func (c *BrokerConfig) RetentionMs() int64 {
	return c.scaled("log.retention", "ms", "minutes", "hours")
}

// RollMs resolves log.roll.{ms,hours}.
func (c *BrokerConfig) RollMs() int64 { return c.scaled("log.roll", "ms", "", "hours") }

func (c *BrokerConfig) scaled(prefix, ms, minutes, hours string) int64 {
	if _, _, ok := c.Lookup(prefix + "." + ms); ok {
		return c.Int(prefix + "." + ms)
	}
	if minutes != "" {
		if _, _, ok := c.Lookup(prefix + "." + minutes); ok {
			return scaleMs(c.Int(prefix+"."+minutes), msPerMinute)
		}
	}
	return scaleMs(c.Int(prefix+"."+hours), msPerHour)
}

func scaleMs(v, scale int64) int64 {
	if v < 0 {
		return -1
	}
	return v * scale
}

// TopicConfig is the effective configuration of one topic: its own
// overrides over the broker's synonyms over defaults. Immutable.
type TopicConfig struct {
	broker    *BrokerConfig
	overrides map[string]string
}

// Topic returns the configuration of a topic with the given overrides.
func (c *BrokerConfig) Topic(overrides map[string]string) *TopicConfig {
	return &TopicConfig{broker: c, overrides: overrides}
}

// Lookup returns the effective value of a topic property and its source.
func (t *TopicConfig) Lookup(name string) (value string, src Source, ok bool) {
	if v, ok := t.overrides[name]; ok {
		return v, SourceDynamicTopic, true
	}
	d, found := Topic.Lookup(name)
	if !found {
		return "", SourceUnknown, false
	}
	for _, s := range d.Synonyms {
		v, src, ok := t.broker.Lookup(s.Name)
		if !ok || src == SourceDefault {
			continue
		}
		if s.Scale > 1 {
			n, err := strconv.ParseInt(v, 10, 64)
			if err == nil {
				v = strconv.FormatInt(scaleMs(n, s.Scale), 10)
			}
		}
		return v, src, true
	}
	if d.Null {
		return "", SourceDefault, false
	}
	return d.Default, SourceDefault, true
}

// String returns a topic property's effective value.
func (t *TopicConfig) String(name string) string {
	v, _, _ := t.Lookup(name)
	return v
}

// Int returns an integer topic property's effective value.
func (t *TopicConfig) Int(name string) int64 {
	n, _ := strconv.ParseInt(t.String(name), 10, 64)
	return n
}

// Float returns a double topic property's effective value.
func (t *TopicConfig) Float(name string) float64 {
	f, _ := strconv.ParseFloat(t.String(name), 64)
	return f
}

// Bool returns a boolean topic property's effective value.
func (t *TopicConfig) Bool(name string) bool { return t.String(name) == "true" }

// Overridden reports whether the topic sets name itself.
func (t *TopicConfig) Overridden(name string) bool {
	_, ok := t.overrides[name]
	return ok
}

// ParseProperties reads a Java-style properties file: key=value or
// key: value lines, # and ! comments, blank lines ignored. Line
// continuations with a trailing backslash are joined.
func ParseProperties(r io.Reader) (map[string]string, error) {
	out := map[string]string{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	var pending string
	lineNo := 0
	for sc.Scan() {
		lineNo++
		line := strings.TrimSpace(sc.Text())
		if pending != "" {
			line = pending + line
			pending = ""
		}
		if line == "" || line[0] == '#' || line[0] == '!' {
			continue
		}
		if strings.HasSuffix(line, `\`) {
			pending = strings.TrimSuffix(line, `\`)
			continue
		}
		i := strings.IndexAny(line, "=:")
		if i <= 0 {
			return nil, fmt.Errorf("line %d: expected key=value", lineNo)
		}
		out[strings.TrimSpace(line[:i])] = strings.TrimSpace(line[i+1:])
	}
	return out, sc.Err()
}

// FromEnv returns broker properties from GREGOR_* environment variables:
// GREGOR_NUM_PARTITIONS=3 sets num.partitions (underscores become dots,
// lower-cased). Only names that are defined are taken, so
// GREGOR_LOG_RETENTION_HOURS maps unambiguously; names with literal
// underscores are not used by Kafka's broker properties.
func FromEnv(environ []string, log *slog.Logger) map[string]string {
	out := map[string]string{}
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(k, "GREGOR_") {
			continue
		}
		name := strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(k, "GREGOR_"), "_", "."))
		if _, ok := Broker.Lookup(name); ok {
			out[name] = v
		}
	}
	return out
}

// splitListenerOverride splits listener.name.NAME.PROPERTY into NAME in
// lower case and PROPERTY, when PROPERTY is one a listener reads (ssl.*,
// sasl.enabled.mechanisms, MECHANISM.sasl.jaas.config with MECHANISM in
// lower case).
func splitListenerOverride(key string) (name, prop string, ok bool) {
	rest, ok := strings.CutPrefix(key, "listener.name.")
	if !ok {
		return "", "", false
	}
	name, prop, ok = strings.Cut(rest, ".")
	if !ok {
		return "", "", false
	}
	if mech, jaas, _ := strings.Cut(prop, "."); jaas == "sasl.jaas.config" {
		// listener.name.NAME.MECHANISM.sasl.jaas.config: a
		// listener's credentials for one mechanism (Kafka's form).
		switch mech = strings.ToLower(mech); mech {
		case "plain", "scram-sha-256", "scram-sha-512":
			return strings.ToLower(name), mech + "." + jaas, true
		}
		return "", "", false
	}
	if !(strings.HasPrefix(prop, "ssl.") || prop == "sasl.enabled.mechanisms") {
		return "", "", false
	}
	return strings.ToLower(name), prop, true
}

// overrideDef is the property a listener override's PROPERTY is checked
// as: MECHANISM.sasl.jaas.config as sasl.jaas.config.
func overrideDef(prop string) string {
	if _, jaas, _ := strings.Cut(prop, "."); jaas == "sasl.jaas.config" {
		return jaas
	}
	return prop
}

// ListenerString returns a property's value for the named listener:
// listener.name.<name, lower case>.<property> when set, as Kafka reads
// per-listener security settings, else the broker-wide value.
func (c *BrokerConfig) ListenerString(listener, name string) string {
	if listener != "" {
		if v, ok := c.static["listener.name."+strings.ToLower(listener)+"."+name]; ok {
			return v
		}
	}
	return c.String(name)
}

// ListenerOverrideNames returns the listener names (lower case) that
// listener.name.NAME.* properties were given for, so that a caller can
// refuse names no listener has: a misspelt name would otherwise leave
// its listener with the broker-wide settings, failing open.
func (c *BrokerConfig) ListenerOverrideNames() []string {
	var names []string
	for k := range c.static {
		if name, _, ok := splitListenerOverride(k); ok && !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}
