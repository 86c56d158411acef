package broker

import (
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/auth"
	"github.com/gregor-streaming/gregor/internal/config"
	"github.com/gregor-streaming/gregor/internal/metadata"
	"github.com/gregor-streaming/gregor/internal/wire"
)

// AlterConfigs: v0-2
//
// Version notes:
//   - v1: no change (throttle behaviour)
//   - v2: flexible
//
// Legacy, non-incremental: a resource's overrides become exactly the
// configs given; those not given return to their defaults (Kafka's
// semantics, which is why clients prefer IncrementalAlterConfigs).
func init() { registerSync(33, 0, 2, (*Broker).handleAlterConfigs) }

func (b *Broker) handleAlterConfigs(req *wire.Request) kmsg.Response {
	r := req.Body.(*kmsg.AlterConfigsRequest)
	resp := r.ResponseKind().(*kmsg.AlterConfigsResponse)
	alters := make([]*configAlter, len(r.Resources))
	for i, rr := range r.Resources {
		a := &configAlter{typ: rr.ResourceType, name: rr.ResourceName}
		configs := rr.Configs
		a.next = func(cur map[string]string) (map[string]string, *topicError) {
			next := map[string]string{}
			for _, c := range configs {
				if _, dup := next[c.Name]; dup {
					return nil, newTopicError(kerr.InvalidRequest, "duplicate config %q", c.Name)
				}
				if c.Value == nil {
					return nil, newTopicError(kerr.InvalidRequest, "null value not supported for %q", c.Name)
				}
				next[c.Name] = *c.Value
			}
			return next, nil
		}
		a.err = b.configsDenied(req, kmsg.ACLOperationAlterConfigs, a.typ, a.name)
		alters[i] = a
	}
	err := b.alterConfigs(alters, r.ValidateOnly)
	for _, a := range alters {
		rr := kmsg.NewAlterConfigsResponseResource()
		rr.ResourceType, rr.ResourceName = a.typ, a.name
		setConfigAlterError(a, err, &rr.ErrorCode, &rr.ErrorMessage)
		resp.Resources = append(resp.Resources, rr)
	}
	return resp
}

// configsDenied checks op (DESCRIBE_CONFIGS or ALTER_CONFIGS) on a
// config resource as Kafka's handlers do: a topic's own ACLs, the
// cluster's for a broker or its loggers. nil when allowed.
func (b *Broker) configsDenied(req *wire.Request, op auth.Operation, typ kmsg.ConfigResourceType, name string) *topicError {
	switch typ {
	case kmsg.ConfigResourceTypeTopic:
		if !b.authorizedTopic(req, op, name) {
			return newTopicError(kerr.TopicAuthorizationFailed, "Authorization failed.")
		}
	case kmsg.ConfigResourceTypeBroker, kmsg.ConfigResourceTypeBrokerLogger:
		if !b.authorizedCluster(req, op) {
			return newTopicError(kerr.ClusterAuthorizationFailed, "Authorization failed.")
		}
	}
	return nil
}

// configAlter is one resource of an AlterConfigs or
// IncrementalAlterConfigs request.
type configAlter struct {
	typ  kmsg.ConfigResourceType
	name string
	// next computes the resource's complete new overrides from its
	// current ones (a copy it may change).
	next func(cur map[string]string) (map[string]string, *topicError)
	// err is the outcome; nil = altered.
	err *topicError
}

func setConfigAlterError(a *configAlter, commitErr error, code *int16, msg **string) {
	switch {
	case a.err != nil:
		*code = a.err.err.Code
		*msg = kmsg.StringPtr(a.err.msg)
	case commitErr != nil:
		*code = kerr.KafkaStorageError.Code
		*msg = kmsg.StringPtr(commitErr.Error())
	}
}

// alterConfigs validates every resource's new overrides against the
// current image and, unless validateOnly, commits them as ConfigRecords
// in one metadata update and applies them to the open partitions and the
// broker's configuration at once (reconcile). Per-resource failures are
// left in the alters; the error is the commit's.
func (b *Broker) alterConfigs(alters []*configAlter, validateOnly bool) error {
	img, err := b.meta.Update(func(img *metadata.Image) ([]metadata.Record, error) {
		var recs []metadata.Record
		// A resource named more than once is refused in every entry,
		// the first included, as Kafka's ConfigAdminManager does: which
		// of the entries should win is not the broker's to guess.
		count := map[string]int{}
		key := func(a *configAlter) string { return fmt.Sprintf("%d/%s", a.typ, a.name) }
		for _, a := range alters {
			count[key(a)]++
		}
		for _, a := range alters {
			if a.err != nil {
				continue // refused by the authorizer
			}
			if n := count[key(a)]; n > 1 {
				a.err = newTopicError(kerr.InvalidRequest, "each resource must appear at most once: %s appears %d times", a.name, n)
				continue
			}
			rtype, cur, terr := b.configResource(img, a.typ, a.name)
			if terr != nil {
				a.err = terr
				continue
			}
			work := maps.Clone(cur)
			if work == nil {
				work = map[string]string{}
			}
			next, terr := a.next(work)
			if terr == nil {
				terr = validateOverrides(rtype, cur, next)
			}
			if terr != nil {
				a.err = terr
				continue
			}
			if !validateOnly {
				recs = append(recs, configRecords(rtype, a.name, cur, next)...)
			}
		}
		return recs, nil
	})
	if err != nil {
		return err
	}
	if validateOnly {
		return nil
	}
	for _, a := range alters {
		if a.err == nil {
			b.log.Info("configs altered", "resource_type", a.typ.String(), "resource", a.name)
		}
	}
	return b.reconcile(img)
}

// configResource resolves a config resource: its metadata type and its
// current overrides.
func (b *Broker) configResource(img *metadata.Image, typ kmsg.ConfigResourceType, name string) (int8, map[string]string, *topicError) {
	switch typ {
	case kmsg.ConfigResourceTypeTopic:
		t, ok := img.Topic(name)
		if !ok {
			return 0, nil, newTopicError(kerr.UnknownTopicOrPartition, "topic %q does not exist", name)
		}
		return metadata.ResourceTopic, t.Configs, nil
	case kmsg.ConfigResourceTypeBroker:
		// "" is the cluster-wide default; otherwise only this broker's
		// own properties, as Kafka (which would never read settings
		// stored for another id here).
		if name != "" && name != strconv.Itoa(int(b.nodeID)) {
			return 0, nil, newTopicError(kerr.InvalidRequest, "unexpected broker id, expected %d or empty string, but received %q", b.nodeID, name)
		}
		return metadata.ResourceBroker, img.BrokerConfigs[name], nil
	case kmsg.ConfigResourceTypeBrokerLogger:
		return 0, nil, newTopicError(kerr.InvalidRequest, "broker loggers are not configurable in Gregor; use --log-level")
	}
	return 0, nil, newTopicError(kerr.InvalidRequest, "unsupported config resource type %d", typ)
}

// validateOverrides checks a resource's complete new overrides: topic
// properties by the topic rules, broker ones must be dynamic. Any bad
// name or value is INVALID_CONFIG.
func validateOverrides(rtype int8, cur, next map[string]string) *topicError {
	if rtype == metadata.ResourceTopic {
		if err := config.ValidateTopicOverrides(next); err != nil {
			return newTopicError(kerr.InvalidConfig, "%v", err)
		}
		return nil
	}
	for _, name := range slices.Sorted(maps.Keys(next)) {
		if v, ok := cur[name]; ok && v == next[name] {
			continue // unchanged (it was valid when set)
		}
		if err := config.CheckDynamicBroker(name, next[name]); err != nil {
			return newTopicError(kerr.InvalidConfig, "%v", err)
		}
	}
	return nil
}

// configRecords returns the records that turn overrides cur into next,
// in name order.
func configRecords(rtype int8, name string, cur, next map[string]string) []metadata.Record {
	var recs []metadata.Record
	for _, k := range slices.Sorted(maps.Keys(cur)) {
		if _, ok := next[k]; !ok {
			recs = append(recs, metadata.Record{Config: &metadata.ConfigRecord{ResourceType: rtype, ResourceName: name, Name: k}})
		}
	}
	for _, k := range slices.Sorted(maps.Keys(next)) {
		if v, ok := cur[k]; ok && v == next[k] {
			continue
		}
		v := next[k]
		recs = append(recs, metadata.Record{Config: &metadata.ConfigRecord{ResourceType: rtype, ResourceName: name, Name: k, Value: &v}})
	}
	return recs
}

// effectiveConfig is the broker configuration with the dynamic values of
// img: the cluster-wide default (resource "") and this broker's own
// (resource "<node.id>").
func (b *Broker) effectiveConfig(img *metadata.Image) *config.BrokerConfig {
	return b.static.WithDynamic(img.BrokerConfigs[""], img.BrokerConfigs[strconv.Itoa(int(b.nodeID))])
}
