package broker

import (
	"slices"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/config"
	"github.com/gregor-streaming/gregor/internal/wire"
)

// DescribeConfigs: v0-4
//
// Version notes:
//   - v0: IsDefault instead of Source (kafka-python 2.0 still sends it)
//   - v1: IncludeSynonyms, Source, ConfigSynonyms
//   - v3: IncludeDocumentation, ConfigType, Documentation
//   - v4: flexible
//
// Topic resources describe every topic property with its effective value
// and where it came from (the topic's override, a dynamic or static
// broker synonym, or the default). A broker resource named by this
// broker's node.id describes every broker property; the empty name
// describes the cluster-wide dynamic defaults only, as Kafka does.
func init() { registerSync(32, 0, 4, (*Broker).handleDescribeConfigs) }

func (b *Broker) handleDescribeConfigs(req *wire.Request) kmsg.Response {
	r := req.Body.(*kmsg.DescribeConfigsRequest)
	resp := r.ResponseKind().(*kmsg.DescribeConfigsResponse)
	img := b.meta.Image()
	cfg := b.effectiveConfig(img)
	for _, rr := range r.Resources {
		rs := kmsg.NewDescribeConfigsResponseResource()
		rs.ResourceType, rs.ResourceName = rr.ResourceType, rr.ResourceName
		// Null or empty asks for every config (Kafka's ConfigHelper
		// reads both alike; some clients send an empty list).
		want := func(name string) bool { return len(rr.ConfigNames) == 0 || slices.Contains(rr.ConfigNames, name) }
		d := describer{version: r.Version, synonyms: r.IncludeSynonyms, docs: r.IncludeDocumentation}
		if terr := b.configsDenied(req, kmsg.ACLOperationDescribeConfigs, rr.ResourceType, rr.ResourceName); terr != nil {
			rs.ErrorCode, rs.ErrorMessage = terr.err.Code, kmsg.StringPtr(terr.msg)
			resp.Resources = append(resp.Resources, rs)
			continue
		}
		switch rr.ResourceType {
		case kmsg.ConfigResourceTypeTopic:
			if err := validateTopicName(rr.ResourceName); err != nil {
				// Checked first, as Kafka's ConfigHelper does: such a
				// name can never exist.
				rs.ErrorCode = kerr.InvalidTopicException.Code
				rs.ErrorMessage = kmsg.StringPtr(err.Error())
				break
			}
			t, ok := img.Topic(rr.ResourceName)
			if !ok {
				rs.ErrorCode = kerr.UnknownTopicOrPartition.Code
				rs.ErrorMessage = kmsg.StringPtr("topic " + strconv.Quote(rr.ResourceName) + " does not exist")
				break
			}
			tcfg := cfg.Topic(t.Configs)
			for _, name := range config.Topic.Names() {
				if !want(name) {
					continue
				}
				def, _ := config.Topic.Lookup(name)
				v, src, ok := tcfg.Lookup(name)
				rs.Configs = append(rs.Configs, d.entry(def, v, ok, src, false, tcfg.Values(name)))
			}
		case kmsg.ConfigResourceTypeBroker:
			switch {
			case rr.ResourceName == "":
				// The cluster-wide dynamic defaults only.
				dyn := img.BrokerConfigs[""]
				for _, name := range config.Broker.Names() {
					v, ok := dyn[name]
					if !ok || !want(name) {
						continue
					}
					def, _ := config.Broker.Lookup(name)
					var syns []config.Value
					for _, s := range cfg.Values(name) {
						if s.Source == config.SourceDynamicDefault || s.Source == config.SourceStaticBroker || s.Source == config.SourceDefault {
							syns = append(syns, s)
						}
					}
					rs.Configs = append(rs.Configs, d.entry(def, v, true, config.SourceDynamicDefault, brokerReadOnly(def), syns))
				}
			case rr.ResourceName == strconv.Itoa(int(b.nodeID)):
				for _, name := range config.Broker.Names() {
					if !want(name) {
						continue
					}
					def, _ := config.Broker.Lookup(name)
					v, src, ok := cfg.Lookup(name)
					rs.Configs = append(rs.Configs, d.entry(def, v, ok, src, brokerReadOnly(def), cfg.Values(name)))
				}
			default:
				rs.ErrorCode = kerr.InvalidRequest.Code
				rs.ErrorMessage = kmsg.StringPtr("unexpected broker id, expected " + strconv.Itoa(int(b.nodeID)) + " or empty string, but received " + strconv.Quote(rr.ResourceName))
			}
		case kmsg.ConfigResourceTypeBrokerLogger:
			rs.ErrorCode = kerr.InvalidRequest.Code
			rs.ErrorMessage = kmsg.StringPtr("broker loggers are not configurable in Gregor; use --log-level")
		default:
			rs.ErrorCode = kerr.InvalidRequest.Code
			rs.ErrorMessage = kmsg.StringPtr("unsupported config resource type " + rr.ResourceType.String())
		}
		resp.Resources = append(resp.Resources, rs)
	}
	return resp
}

// brokerReadOnly reports what DescribeConfigs says of a broker property:
// read-only unless it can change at run time.
func brokerReadOnly(d *config.Def) bool { return d.ReadOnly || !d.Dynamic }

// describer builds DescribeConfigs entries for one request.
type describer struct {
	version        int16
	synonyms, docs bool
}

func (d describer) entry(def *config.Def, value string, ok bool, src config.Source, readOnly bool, syns []config.Value) kmsg.DescribeConfigsResponseResourceConfig {
	c := kmsg.NewDescribeConfigsResponseResourceConfig()
	c.Name = def.Name
	if ok && !def.Sensitive {
		c.Value = kmsg.StringPtr(value)
	}
	c.ReadOnly = readOnly
	c.IsDefault = src == config.SourceDefault
	c.Source = kmsg.ConfigSource(src)
	c.IsSensitive = def.Sensitive
	if d.synonyms && d.version >= 1 {
		for _, s := range syns {
			cs := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
			cs.Name, cs.Source = s.Name, kmsg.ConfigSource(s.Source)
			if !s.Null && !def.Sensitive {
				cs.Value = kmsg.StringPtr(s.Value)
			}
			c.ConfigSynonyms = append(c.ConfigSynonyms, cs)
		}
	}
	c.ConfigType = kmsg.ConfigType(def.Type)
	if d.docs {
		c.Documentation = kmsg.StringPtr(def.Doc)
	}
	return c
}
