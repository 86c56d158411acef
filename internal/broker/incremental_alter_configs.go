package broker

import (
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/config"
	"github.com/gregor-streaming/gregor/internal/wire"
)

// IncrementalAlterConfigs: v0-1
//
// Version notes:
//   - v0: SET, DELETE, APPEND, SUBTRACT (KIP-339)
//   - v1: flexible
//
// Topic resources take every topic property; broker resources ("" for
// the cluster-wide default, "<node.id>" for one broker) take the dynamic
// broker properties (docs/CONFIG.md). Changes are committed to the
// cluster metadata and apply at once.
func init() { registerSync(44, 0, 1, (*Broker).handleIncrementalAlterConfigs) }

func (b *Broker) handleIncrementalAlterConfigs(req *wire.Request) kmsg.Response {
	r := req.Body.(*kmsg.IncrementalAlterConfigsRequest)
	resp := r.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
	alters := make([]*configAlter, len(r.Resources))
	for i, rr := range r.Resources {
		a := &configAlter{typ: rr.ResourceType, name: rr.ResourceName}
		reg := config.Broker
		if rr.ResourceType == kmsg.ConfigResourceTypeTopic {
			reg = config.Topic
		}
		ops := rr.Configs
		a.next = func(cur map[string]string) (map[string]string, *topicError) {
			return incrementalAlter(reg, cur, ops)
		}
		a.err = b.configsDenied(req, kmsg.ACLOperationAlterConfigs, a.typ, a.name)
		alters[i] = a
	}
	err := b.alterConfigs(alters, r.ValidateOnly)
	for _, a := range alters {
		rr := kmsg.NewIncrementalAlterConfigsResponseResource()
		rr.ResourceType, rr.ResourceName = a.typ, a.name
		setConfigAlterError(a, err, &rr.ErrorCode, &rr.ErrorMessage)
		resp.Resources = append(resp.Resources, rr)
	}
	return resp
}

// incrementalAlter applies ops to the overrides cur as Kafka does:
// APPEND and SUBTRACT work on list properties, starting from the
// override or else the property's default.
func incrementalAlter(reg *config.Registry, cur map[string]string, ops []kmsg.IncrementalAlterConfigsRequestResourceConfig) (map[string]string, *topicError) {
	seen := map[string]bool{}
	for _, op := range ops {
		if seen[op.Name] {
			return nil, newTopicError(kerr.InvalidRequest, "error due to duplicate config keys: %q", op.Name)
		}
		seen[op.Name] = true
		d, ok := reg.Lookup(op.Name)
		if !ok {
			return nil, newTopicError(kerr.InvalidConfig, "unknown config %q", op.Name)
		}
		if op.Op != kmsg.IncrementalAlterConfigOpDelete && op.Value == nil {
			return nil, newTopicError(kerr.InvalidRequest, "null value not supported for %q", op.Name)
		}
		switch op.Op {
		case kmsg.IncrementalAlterConfigOpSet:
			cur[op.Name] = *op.Value
		case kmsg.IncrementalAlterConfigOpDelete:
			delete(cur, op.Name)
		case kmsg.IncrementalAlterConfigOpAppend, kmsg.IncrementalAlterConfigOpSubtract:
			if d.Type != config.TypeList {
				return nil, newTopicError(kerr.InvalidConfig, "config value %s is not allowed for config key %q: it is not a list", op.Op, op.Name)
			}
			base, ok := cur[op.Name]
			if !ok && !d.Null {
				base = d.Default
			}
			list := config.SplitList(base)
			for _, v := range config.SplitList(*op.Value) {
				i := slices.Index(list, v)
				switch {
				case op.Op == kmsg.IncrementalAlterConfigOpAppend && i < 0:
					list = append(list, v)
				case op.Op == kmsg.IncrementalAlterConfigOpSubtract && i >= 0:
					list = slices.Delete(list, i, i+1)
				}
			}
			cur[op.Name] = strings.Join(list, ",")
		default:
			return nil, newTopicError(kerr.InvalidRequest, "unknown operation %d on %q", op.Op, op.Name)
		}
	}
	return cur, nil
}
