package broker

import (
	"fmt"
	"hash/maphash"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/metadata"
	"github.com/gregor-streaming/gregor/internal/wire"
)

// DescribeClientQuotas: v0-1, AlterClientQuotas: v0-1 (KIP-546). Client
// quotas live in the metadata log (QuotaRecord), as in KRaft, by entity:
// a user, a client ID, or both, each named or <default>. Gregor enforces
// the byte rates, producer_byte_rate and consumer_byte_rate, as Kafka's
// ClientQuotaManager does: the rate over quota.window.num windows of
// quota.window.size.seconds, the most specific entity that sets the key
// applies, and a client over its rate gets a throttle time in its
// response and is not read from until it has passed (KIP-219).
func init() {
	registerSync(48, 0, 1, (*Broker).handleDescribeClientQuotas)
	registerSync(49, 0, 1, (*Broker).handleAlterClientQuotas)
}

// Quota entity types and the quota keys Gregor enforces.
const (
	quotaUser     = "user"
	quotaClientID = "client-id"
	quotaIP       = "ip"

	producerByteRate = "producer_byte_rate"
	consumerByteRate = "consumer_byte_rate"
)

// notEnforced are Kafka's other quota keys: refused rather than stored
// and silently ignored.
var notEnforced = []string{"request_percentage", "controller_mutation_rate", "connection_creation_rate"}

func (b *Broker) handleDescribeClientQuotas(req *wire.Request) kmsg.Response {
	r := req.Body.(*kmsg.DescribeClientQuotasRequest)
	resp := r.ResponseKind().(*kmsg.DescribeClientQuotasResponse)
	fail := func(code *kerr.Error, msg string) kmsg.Response {
		resp.ErrorCode, resp.ErrorMessage = code.Code, kmsg.StringPtr(msg)
		return resp
	}
	if !b.authorizedCluster(req, kmsg.ACLOperationDescribeConfigs) {
		return fail(kerr.ClusterAuthorizationFailed, kerr.ClusterAuthorizationFailed.Description)
	}
	// Kafka's ClientQuotasImage.describe: one component per type, and
	// ip never with user or client-id.
	seen := map[string]bool{}
	for _, c := range r.Components {
		if seen[c.EntityType] {
			return fail(kerr.InvalidRequest, "Entity type "+c.EntityType+" cannot appear more than once in the filter.")
		}
		seen[c.EntityType] = true
		switch c.EntityType {
		case quotaUser, quotaClientID, quotaIP:
		default:
			return fail(kerr.InvalidRequest, "Invalid entity type "+c.EntityType)
		}
		if c.MatchType == kmsg.QuotasMatchTypeExact && c.Match == nil {
			return fail(kerr.InvalidRequest, "Exact match of "+c.EntityType+" without a name")
		}
		if c.MatchType > kmsg.QuotasMatchTypeAny {
			return fail(kerr.InvalidRequest, fmt.Sprintf("Unknown match type %d", c.MatchType))
		}
	}
	if seen[quotaIP] && (seen[quotaUser] || seen[quotaClientID]) {
		return fail(kerr.InvalidRequest, "Invalid entity filter component combination, IP filter component should not be used with user or clientId filter component.")
	}
	img := b.meta.Image()
	for _, k := range slices.Sorted(maps.Keys(img.Quotas)) {
		q := img.Quotas[k]
		if !quotaMatches(q.Entity, r.Components, r.Strict) {
			continue
		}
		e := kmsg.NewDescribeClientQuotasResponseEntry()
		for _, p := range q.Entity {
			ee := kmsg.NewDescribeClientQuotasResponseEntryEntity()
			ee.Type, ee.Name = p.Type, p.Name
			e.Entity = append(e.Entity, ee)
		}
		for _, key := range slices.Sorted(maps.Keys(q.Values)) {
			v := kmsg.NewDescribeClientQuotasResponseEntryValue()
			v.Key, v.Value = key, q.Values[key]
			e.Values = append(e.Values, v)
		}
		resp.Entries = append(resp.Entries, e)
	}
	return resp
}

// quotaMatches reports whether an entity matches every component of a
// filter; strict also wants no type the filter does not name.
func quotaMatches(entity []metadata.QuotaEntityPart, comps []kmsg.DescribeClientQuotasRequestComponent, strict bool) bool {
	if strict && len(entity) != len(comps) {
		return false
	}
	for _, c := range comps {
		i := slices.IndexFunc(entity, func(p metadata.QuotaEntityPart) bool { return p.Type == c.EntityType })
		if i < 0 {
			return false
		}
		name := entity[i].Name
		switch c.MatchType {
		case kmsg.QuotasMatchTypeExact:
			if name == nil || *name != *c.Match {
				return false
			}
		case kmsg.QuotasMatchTypeDefault:
			if name != nil {
				return false
			}
		}
	}
	return true
}

func (b *Broker) handleAlterClientQuotas(req *wire.Request) kmsg.Response {
	r := req.Body.(*kmsg.AlterClientQuotasRequest)
	resp := r.ResponseKind().(*kmsg.AlterClientQuotasResponse)
	allowed := b.authorizedCluster(req, kmsg.ACLOperationAlterConfigs)
	errs := make([]*topicError, len(r.Entries))
	entities := make([][]metadata.QuotaEntityPart, len(r.Entries))
	count := map[string]int{}
	for i, e := range r.Entries {
		for _, p := range e.Entity {
			entities[i] = append(entities[i], metadata.QuotaEntityPart{Type: p.Type, Name: p.Name})
		}
		count[metadata.QuotaKey(entities[i])]++
	}
	for i, e := range r.Entries {
		switch {
		case !allowed:
			errs[i] = newTopicError(kerr.ClusterAuthorizationFailed, "%s", kerr.ClusterAuthorizationFailed.Description)
		case count[metadata.QuotaKey(entities[i])] > 1:
			errs[i] = newTopicError(kerr.InvalidRequest, "Ignoring duplicate entity %s", metadata.QuotaKey(entities[i]))
		default:
			errs[i] = validateQuotaAlter(entities[i], e.Ops)
		}
	}
	var err error
	if !r.ValidateOnly {
		_, err = b.meta.Update(func(img *metadata.Image) ([]metadata.Record, error) {
			var recs []metadata.Record
			for i, e := range r.Entries {
				if errs[i] != nil {
					continue
				}
				cur := img.Quotas[metadata.QuotaKey(entities[i])]
				for _, op := range e.Ops {
					rec := &metadata.QuotaRecord{Entity: entities[i], Key: op.Key, Value: op.Value, Remove: op.Remove}
					if op.Remove {
						rec.Value = 0
						if cur == nil {
							continue
						}
						if _, ok := cur.Values[op.Key]; !ok {
							continue
						}
					} else if cur != nil {
						if v, ok := cur.Values[op.Key]; ok && v == op.Value {
							continue // unchanged, as Kafka writes no record
						}
					}
					recs = append(recs, metadata.Record{Quota: rec})
				}
			}
			return recs, nil
		})
	}
	for i, e := range r.Entries {
		out := kmsg.NewAlterClientQuotasResponseEntry()
		for _, p := range e.Entity {
			oe := kmsg.NewAlterClientQuotasResponseEntryEntity()
			oe.Type, oe.Name = p.Type, p.Name
			out.Entity = append(out.Entity, oe)
		}
		switch {
		case errs[i] != nil:
			out.ErrorCode, out.ErrorMessage = errs[i].err.Code, kmsg.StringPtr(errs[i].msg)
		case err != nil:
			out.ErrorCode, out.ErrorMessage = kerr.KafkaStorageError.Code, kmsg.StringPtr(err.Error())
		case !r.ValidateOnly:
			b.log.Info("client quotas altered", "entity", metadata.QuotaKey(entities[i]), "by", req.Client.Principal())
		}
		resp.Entries = append(resp.Entries, out)
	}
	return resp
}

// validateQuotaAlter checks one entity's alteration as Kafka's
// ClientQuotaControlManager: known types, each once, ip alone, no empty
// names, known keys once each, whole byte rates. Gregor also refuses the
// keys it does not enforce.
func validateQuotaAlter(entity []metadata.QuotaEntityPart, ops []kmsg.AlterClientQuotasRequestEntryOp) *topicError {
	if len(entity) == 0 {
		return newTopicError(kerr.InvalidRequest, "Invalid empty client quota entity")
	}
	types := map[string]bool{}
	for _, p := range entity {
		if types[p.Type] {
			return newTopicError(kerr.InvalidRequest, "Invalid empty client quota entity, duplicate entity entry %s", p.Type)
		}
		types[p.Type] = true
		switch p.Type {
		case quotaUser, quotaClientID, quotaIP:
		default:
			return newTopicError(kerr.InvalidRequest, "Unhandled client quota entity type: %s", p.Type)
		}
		if p.Name != nil && *p.Name == "" {
			return newTopicError(kerr.InvalidRequest, "Empty %s not supported", p.Type)
		}
	}
	if types[quotaIP] && len(types) > 1 {
		return newTopicError(kerr.InvalidRequest, "Invalid empty client quota entity")
	}
	keys := map[string]bool{}
	for _, op := range ops {
		if keys[op.Key] {
			return newTopicError(kerr.InvalidRequest, "Duplicate quota key %s not updating quota for this entity", op.Key)
		}
		keys[op.Key] = true
		if op.Remove {
			continue
		}
		switch {
		case types[quotaIP] || slices.Contains(notEnforced, op.Key):
			return newTopicError(kerr.InvalidRequest, "Gregor does not enforce %s: only %s and %s are supported", op.Key, producerByteRate, consumerByteRate)
		case op.Key != producerByteRate && op.Key != consumerByteRate:
			return newTopicError(kerr.InvalidRequest, "Invalid configuration key %s", op.Key)
		case math.IsNaN(op.Value) || math.IsInf(op.Value, 0) ||
			math.Abs(op.Value-math.Round(op.Value)) > 1e-6 || op.Value > math.MaxInt64:
			return newTopicError(kerr.InvalidRequest, "Configuration %s must be a Long value", op.Key)
		case op.Value < 1:
			return newTopicError(kerr.InvalidRequest, "Configuration %s must be at least 1 (bytes/s)", op.Key)
		}
	}
	return nil
}

// throttleProduce returns respond, recording the request's record bytes
// against the client's producer_byte_rate: when over it, the response
// carries the throttle time and the client is muted for it.
func (b *Broker) throttleProduce(req *wire.Request, r *kmsg.ProduceRequest, respond func(kmsg.Response)) func(kmsg.Response) {
	img := b.meta.Image()
	if len(img.Quotas) == 0 {
		return respond
	}
	n := 0
	for i := range r.Topics {
		for j := range r.Topics[i].Partitions {
			n += len(r.Topics[i].Partitions[j].Records)
		}
	}
	if n == 0 {
		return respond
	}
	d := b.quotas.record(img, b.Config(), req, producerByteRate, n, b.now())
	if d <= 0 {
		return respond
	}
	req.Client.Mute(b.now().Add(d))
	return func(kr kmsg.Response) {
		if pr, ok := kr.(*kmsg.ProduceResponse); ok {
			pr.ThrottleMillis = int32(d.Milliseconds())
		}
		respond(kr)
	}
}

// throttleFetch returns respond, recording the response's record bytes
// against the client's consumer_byte_rate when it is sent. Unlike Kafka,
// which answers a throttled fetch with no records, the records go out
// and the mute that follows keeps the client to its rate.
func (b *Broker) throttleFetch(req *wire.Request, targets []fetchTarget, resp *fetchResponse, respond func(kmsg.Response)) func(kmsg.Response) {
	if len(b.meta.Image().Quotas) == 0 {
		return respond
	}
	return func(kr kmsg.Response) {
		n := 0
		for i := range targets {
			if sp, ok := resp.span(targets[i].resp.RecordBatches); ok {
				n += sp.Len
			} else {
				n += len(targets[i].resp.RecordBatches)
			}
		}
		now := b.now()
		if n == 0 {
			respond(kr)
			return
		}
		if d := b.quotas.record(b.meta.Image(), b.Config(), req, consumerByteRate, n, now); d > 0 {
			resp.ThrottleMillis = int32(d.Milliseconds())
			req.Client.Mute(now.Add(d))
		}
		respond(kr)
	}
}

// quotaState measures clients' byte rates (Kafka's ClientQuotaManager
// sensors), one rate per quota key and client, as the quota entity that
// applies groups them: all of a user's clients share a user quota, each
// client ID has its own under a <default> one.
type quotaState struct {
	mu        sync.Mutex
	seed      maphash.Seed
	rates     map[rateKey]*rate
	lastSweep time.Time
}

// rateKey names one rate: a quota key and a hash of the user and client
// ID the applying entity groups by. A hash, not the names: client IDs
// are up to 32 KiB each and come from every request header.
type rateKey struct {
	key string
	id  uint64
}

// maxRates bounds the rates kept (~0.5 KiB each): a client cycling
// client IDs under a <default> quota must not grow the map without end.
// At the bound, idle rates go first, then arbitrary ones (their clients
// start afresh, as after an hour idle).
const maxRates = 20000

// record adds n bytes to the client's rate for key and returns how long
// it must wait to be back under its quota; 0 without a quota.
func (q *quotaState) record(img *metadata.Image, cfg interface{ Int(string) int64 }, req *wire.Request, key string, n int, now time.Time) time.Duration {
	user := strings.TrimPrefix(req.Client.Principal(), "User:")
	quota, rk, ok := resolveQuota(img, key, user, req.ClientID)
	if !ok {
		return 0
	}
	windows := int(cfg.Int("quota.window.num"))
	window := time.Duration(cfg.Int("quota.window.size.seconds")) * time.Second
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.rates == nil {
		q.rates, q.seed = map[rateKey]*rate{}, maphash.MakeSeed()
	}
	k := rateKey{key: key, id: rk.hash(q.seed)}
	r := q.rates[k]
	if r == nil {
		if len(q.rates) >= maxRates {
			q.evict(now)
		}
		r = &rate{}
		q.rates[k] = r
	}
	d := r.record(now, float64(n), quota, windows, window)
	// Forget clients idle for an hour (Kafka's sensors expire too).
	if now.Sub(q.lastSweep) > time.Minute {
		q.lastSweep = now
		q.forget(now, time.Hour)
	}
	return d
}

// forget drops the rates idle for longer than idle.
func (q *quotaState) forget(now time.Time, idle time.Duration) {
	for k, r := range q.rates {
		if now.Sub(r.last) > idle {
			delete(q.rates, k)
		}
	}
}

// evict makes room at maxRates: rates idle for a minute, then arbitrary
// ones down to nine tenths of the bound.
func (q *quotaState) evict(now time.Time) {
	q.forget(now, time.Minute)
	for k := range q.rates {
		if len(q.rates) < maxRates*9/10 {
			return
		}
		delete(q.rates, k)
	}
}

// quotaTags are the names a rate is kept under: the user and client ID
// when the applying entity has those types.
type quotaTags struct {
	user, clientID       string
	withUser, withClient bool
}

func (t quotaTags) hash(seed maphash.Seed) uint64 {
	var h maphash.Hash
	h.SetSeed(seed)
	if t.withUser {
		h.WriteByte('u')
		h.WriteString(t.user)
		h.WriteByte(0)
	}
	if t.withClient {
		h.WriteByte('c')
		h.WriteString(t.clientID)
	}
	return h.Sum64()
}

// resolveQuota finds the quota for key that applies to a user's client,
// the most specific entity setting it first, in Kafka's order:
// user+client, user+<default> client, user, <default> user+client,
// <default> user+<default> client, <default> user, client, <default>
// client.
func resolveQuota(img *metadata.Image, key, user, clientID string) (float64, quotaTags, bool) {
	// The entities' QuotaKeys, built from their parts in QuotaKey's
	// order (client-id before user) rather than sorted per request.
	up, ud := metadata.QuotaKeyPart(quotaUser, &user), metadata.QuotaKeyPart(quotaUser, nil)
	cp, cd := metadata.QuotaKeyPart(quotaClientID, &clientID), metadata.QuotaKeyPart(quotaClientID, nil)
	levels := [...]struct {
		entity               string
		withUser, withClient bool
	}{
		{cp + "," + up, true, true},
		{cd + "," + up, true, true},
		{up, true, false},
		{cp + "," + ud, true, true},
		{cd + "," + ud, true, true},
		{ud, true, false},
		{cp, false, true},
		{cd, false, true},
	}
	for _, l := range levels {
		q := img.Quotas[l.entity]
		if q == nil {
			continue
		}
		v, ok := q.Values[key]
		if !ok {
			continue
		}
		return v, quotaTags{user: user, clientID: clientID, withUser: l.withUser, withClient: l.withClient}, true
	}
	return 0, quotaTags{}, false
}

// rate is a byte rate sampled in windows, as Kafka's Rate over a
// SampledStat: samples start when the last one is a window old, those
// older than all the windows are dropped, and the rate divides by the
// time the samples cover, at least windows-1 windows (so a new client
// may burst that much before being throttled, as in Kafka).
type rate struct {
	starts []time.Time
	sums   []float64
	cur    int
	last   time.Time
}

// record adds v and returns the throttle time for quota: how long until
// the rate is back to quota, (rate-quota)/quota of the covered time,
// at most all the windows.
func (r *rate) record(now time.Time, v, quota float64, windows int, window time.Duration) time.Duration {
	if len(r.starts) != windows {
		r.starts, r.sums, r.cur = make([]time.Time, windows), make([]float64, windows), 0
		r.starts[0] = now
	}
	r.last = now
	if now.Sub(r.starts[r.cur]) >= window {
		r.cur = (r.cur + 1) % windows
		r.starts[r.cur], r.sums[r.cur] = now, 0
	}
	r.sums[r.cur] += v
	total, oldest := 0.0, now
	for i := range r.starts {
		if r.starts[i].IsZero() || now.Sub(r.starts[i]) >= time.Duration(windows)*window {
			r.starts[i], r.sums[i] = time.Time{}, 0
			continue
		}
		total += r.sums[i]
		if r.starts[i].Before(oldest) {
			oldest = r.starts[i]
		}
	}
	elapsed := now.Sub(oldest)
	if full := int(elapsed / window); full < windows-1 {
		elapsed += time.Duration(windows-1-full) * window
	}
	if elapsed <= 0 {
		elapsed = window
	}
	measured := total / elapsed.Seconds()
	if !(measured > quota) {
		return 0
	}
	// In floating point until clamped: a tiny quota or a huge burst
	// would overflow time.Duration (negative: no throttle at all).
	limit := time.Duration(windows) * window
	if f := (measured - quota) / quota * float64(elapsed); f < float64(limit) {
		return time.Duration(f)
	}
	return limit
}
