package console

import (
	"cmp"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The pages read the cluster as a Kafka admin client does, with the
// read-only APIs only (the broker refuses the others on the console's
// connection). Metadata is asked for afresh on every page rather than
// taken from the client's cache, so that a topic created a moment ago
// shows. What a page can show without (sizes, configs, offsets) is best
// effort: the page says why it is missing.

// errNotFound answers 404: no such topic or group.
type errNotFound struct{ what string }

func (e *errNotFound) Error() string { return e.what + " does not exist" }

// metadata asks for the given topics' metadata, or every topic's when
// topics is nil. Never creates a topic (AllowAutoTopicCreation false).
func (c *Console) metadata(ctx context.Context, topics []string) (*kmsg.MetadataResponse, error) {
	req := kmsg.NewPtrMetadataRequest()
	if topics != nil {
		req.Topics = []kmsg.MetadataRequestTopic{}
		for _, t := range topics {
			rt := kmsg.NewMetadataRequestTopic()
			rt.Topic = kmsg.StringPtr(t)
			req.Topics = append(req.Topics, rt)
		}
	}
	resp, err := req.RequestWith(ctx, c.cl)
	if err != nil {
		return nil, fmt.Errorf("Metadata: %w", err)
	}
	return resp, nil
}

func (c *Console) overview(ctx context.Context) (*Overview, error) {
	md, err := c.metadata(ctx, nil)
	if err != nil {
		return nil, err
	}
	now := c.now()
	o := &Overview{
		ClusterID:     deref(md.ClusterID),
		ControllerID:  md.ControllerID,
		Version:       c.opts.Version,
		Started:       c.opts.Started,
		UptimeSeconds: now.Sub(c.opts.Started).Seconds(),
		Brokers:       []Broker{},
		Listeners:     slices.Clone(c.opts.Listeners),
	}
	if o.Listeners == nil {
		o.Listeners = []Listener{}
	}
	for _, b := range md.Brokers {
		o.Brokers = append(o.Brokers, Broker{NodeID: b.NodeID, Host: b.Host, Port: b.Port, Rack: b.Rack, Controller: b.NodeID == md.ControllerID})
	}
	slices.SortFunc(o.Brokers, func(a, b Broker) int { return cmp.Compare(a.NodeID, b.NodeID) })
	for _, t := range md.Topics {
		if t.ErrorCode != 0 {
			continue
		}
		o.Topics++
		if t.IsInternal {
			o.InternalTopics++
		}
		o.Partitions += len(t.Partitions)
	}
	if groups, err := c.adm.ListGroups(ctx); err != nil && len(groups) == 0 {
		o.GroupsError = errText(err)
	} else {
		o.Groups = len(groups)
	}
	if c.traffic != nil {
		o.Traffic = c.traffic.look()
	}
	return o, nil
}

// matches reports whether name contains filter, ignoring case.
func matches(name, filter string) bool {
	return filter == "" || strings.Contains(strings.ToLower(name), strings.ToLower(filter))
}

// topicOffsets holds the log start offsets, high watermarks and sizes
// of some topics' partitions, and why any of them are missing.
type topicOffsets struct {
	starts, ends kadm.ListedOffsets
	sizes        map[string]map[int32]int64
	offsetsErr   string
	sizesErr     string
}

func (c *Console) offsets(ctx context.Context, md *kmsg.MetadataResponse, names []string) topicOffsets {
	var o topicOffsets
	if len(names) == 0 {
		return o
	}
	var err error
	if o.starts, err = c.adm.ListStartOffsets(ctx, names...); err != nil {
		o.offsetsErr = "ListOffsets: " + errText(err)
	} else if o.ends, err = c.adm.ListEndOffsets(ctx, names...); err != nil {
		o.offsetsErr = "ListOffsets: " + errText(err)
	}
	set := kadm.TopicsSet{}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	for _, t := range md.Topics {
		if name := deref(t.Topic); want[name] {
			for _, p := range t.Partitions {
				set.Add(name, p.Partition)
			}
		}
	}
	dirs, err := c.adm.DescribeAllLogDirs(ctx, set)
	if err != nil {
		o.sizesErr = "DescribeLogDirs: " + errText(err)
		return o
	}
	o.sizes = map[string]map[int32]int64{}
	dirs.Each(func(d kadm.DescribedLogDir) {
		d.Topics.Each(func(p kadm.DescribedLogDirPartition) {
			if p.IsFuture {
				return
			}
			if o.sizes[p.Topic] == nil {
				o.sizes[p.Topic] = map[int32]int64{}
			}
			o.sizes[p.Topic][p.Partition] += p.Size
		})
	})
	return o
}

// partition returns a partition's log start offset, high watermark and
// size, -1 for each that is unknown.
func (o *topicOffsets) partition(topic string, p int32) (start, hw, size int64) {
	start, hw, size = -1, -1, -1
	if l, ok := o.starts.Lookup(topic, p); ok && l.Err == nil {
		start = l.Offset
	}
	if l, ok := o.ends.Lookup(topic, p); ok && l.Err == nil {
		hw = l.Offset
	}
	if s, ok := o.sizes[topic][p]; ok {
		size = s
	}
	return start, hw, size
}

// row sums a topic's partitions into its row.
func (o *topicOffsets) row(t *kmsg.MetadataResponseTopic) TopicRow {
	name := deref(t.Topic)
	r := TopicRow{Name: name, ID: topicID(t.TopicID), Internal: t.IsInternal, Partitions: len(t.Partitions)}
	if t.ErrorCode != 0 {
		r.Error = errText(kerr.ErrorForCode(t.ErrorCode))
	}
	sizeKnown := o.sizes != nil
	for _, p := range t.Partitions {
		r.ReplicationFactor = max(r.ReplicationFactor, len(p.Replicas))
		start, hw, size := o.partition(name, p.Partition)
		if hw >= 0 {
			r.HighWatermarks += hw
			if start >= 0 {
				r.Records += hw - start
			}
		}
		if size < 0 {
			sizeKnown = false
		}
		r.SizeBytes += max(size, 0)
	}
	if !sizeKnown {
		r.SizeBytes = -1
	}
	return r
}

func (c *Console) topics(ctx context.Context, filter string) (*TopicList, error) {
	md, err := c.metadata(ctx, nil)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, t := range md.Topics {
		if name := deref(t.Topic); t.ErrorCode == 0 && matches(name, filter) {
			names = append(names, name)
		}
	}
	o := c.offsets(ctx, md, names)
	l := &TopicList{Filter: filter, Topics: []TopicRow{}, OffsetsError: o.offsetsErr, SizesError: o.sizesErr}
	for i := range md.Topics {
		t := &md.Topics[i]
		if t.ErrorCode == 0 && matches(deref(t.Topic), filter) {
			l.Topics = append(l.Topics, o.row(t))
		}
	}
	slices.SortFunc(l.Topics, func(a, b TopicRow) int { return strings.Compare(a.Name, b.Name) })
	return l, nil
}

func (c *Console) topic(ctx context.Context, name string) (*Topic, error) {
	md, err := c.metadata(ctx, []string{name})
	if err != nil {
		return nil, err
	}
	var t *kmsg.MetadataResponseTopic
	for i := range md.Topics {
		if deref(md.Topics[i].Topic) == name {
			t = &md.Topics[i]
		}
	}
	if t == nil || t.ErrorCode == kerr.UnknownTopicOrPartition.Code || t.ErrorCode == kerr.InvalidTopicException.Code {
		return nil, &errNotFound{fmt.Sprintf("topic %q", name)}
	}
	if t.ErrorCode != 0 {
		return nil, fmt.Errorf("topic %q: %s", name, errText(kerr.ErrorForCode(t.ErrorCode)))
	}
	o := c.offsets(ctx, md, []string{name})
	row := o.row(t)
	out := &Topic{
		Name: row.Name, ID: row.ID, Internal: row.Internal, ReplicationFactor: row.ReplicationFactor,
		SizeBytes: row.SizeBytes, HighWatermarks: row.HighWatermarks, Records: row.Records,
		Partitions: []Partition{}, Configs: []Config{}, OffsetsError: o.offsetsErr, SizesError: o.sizesErr,
	}
	for _, p := range t.Partitions {
		start, hw, size := o.partition(name, p.Partition)
		dp := Partition{Partition: p.Partition, Leader: p.Leader, LeaderEpoch: p.LeaderEpoch,
			Replicas: nonNil(p.Replicas), ISR: nonNil(p.ISR), LogStartOffset: start, HighWatermark: hw, SizeBytes: size}
		if p.ErrorCode != 0 {
			dp.Error = errText(kerr.ErrorForCode(p.ErrorCode))
		}
		out.Partitions = append(out.Partitions, dp)
	}
	slices.SortFunc(out.Partitions, func(a, b Partition) int { return cmp.Compare(a.Partition, b.Partition) })

	configs, err := c.adm.DescribeTopicConfigs(ctx, name)
	if err != nil {
		out.ConfigsError = "DescribeConfigs: " + errText(err)
	}
	for _, rc := range configs {
		if rc.Name != name {
			continue
		}
		if rc.Err != nil {
			out.ConfigsError = errText(rc.Err)
			break
		}
		for _, cf := range rc.Configs {
			if cf.Source == kmsg.ConfigSourceDefaultConfig {
				continue
			}
			out.Configs = append(out.Configs, Config{Name: cf.Key, Value: cf.Value, Source: configSource(cf.Source), Sensitive: cf.Sensitive})
		}
	}
	slices.SortFunc(out.Configs, func(a, b Config) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

func (c *Console) groups(ctx context.Context, filter string) (*GroupList, error) {
	listed, err := c.adm.ListGroups(ctx)
	if err != nil && len(listed) == 0 {
		return nil, fmt.Errorf("ListGroups: %w", err)
	}
	l := &GroupList{Filter: filter, Groups: []GroupRow{}}
	var names []string
	for _, name := range listed.Groups() {
		if matches(name, filter) {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return l, nil
	}
	// Lag describes the groups and fetches their offsets and the
	// partitions' ends: one page, the whole picture.
	lags, err := c.adm.Lag(ctx, names...)
	if err != nil && len(lags) == 0 {
		return nil, fmt.Errorf("DescribeGroups: %w", err)
	}
	for _, name := range names {
		lg := listed[name]
		row := GroupRow{Group: name, State: lg.State, ProtocolType: lg.ProtocolType, Coordinator: lg.Coordinator}
		if gl, ok := lags[name]; ok && lg.GroupType == "consumer" && errors.Is(gl.DescribeErr, kerr.GroupIDNotFound) {
			// A KIP-848 consumer group, which DescribeGroups does not
			// describe.
			if g, found, err := c.consumerGroup(ctx, name); err != nil {
				row.Error = errText(err)
			} else if found {
				row.State, row.ProtocolType, row.Protocol = g.State, g.ProtocolType, g.Protocol
				row.Members, row.Lag = len(g.Members), g.Lag
			}
		} else if ok {
			row.State, row.ProtocolType, row.Protocol = cmp.Or(gl.State, row.State), cmp.Or(gl.ProtocolType, row.ProtocolType), gl.Protocol
			row.Members, row.Lag = len(gl.Members), gl.Lag.Total()
			if e := gl.Error(); e != nil {
				row.Error = errText(e)
			}
		} else {
			row.Error = "no answer from the cluster"
		}
		l.Groups = append(l.Groups, row)
	}
	return l, nil
}

func (c *Console) group(ctx context.Context, id string) (*Group, error) {
	lags, err := c.adm.Lag(ctx, id)
	if err != nil && len(lags) == 0 {
		return nil, fmt.Errorf("DescribeGroups: %w", err)
	}
	gl, ok := lags[id]
	switch {
	case !ok:
		return nil, fmt.Errorf("group %q: no answer from the cluster", id)
	case errors.Is(gl.DescribeErr, kerr.GroupIDNotFound), gl.DescribeErr == nil && gl.State == "Dead" && len(gl.Lag) == 0:
		// Kafka describes a group it does not know as Dead, and so a
		// KIP-848 consumer group, which ConsumerGroupDescribe
		// describes.
		g, found, err := c.consumerGroup(ctx, id)
		switch {
		case err != nil:
			return nil, fmt.Errorf("group %q: ConsumerGroupDescribe: %s", id, errText(err))
		case !found:
			return nil, &errNotFound{fmt.Sprintf("group %q", id)}
		}
		return g, nil
	case gl.DescribeErr != nil:
		return nil, fmt.Errorf("group %q: DescribeGroups: %s", id, errText(gl.DescribeErr))
	}
	g := &Group{Group: id, State: gl.State, ProtocolType: gl.ProtocolType, Protocol: gl.Protocol,
		Coordinator: gl.Coordinator.NodeID, Members: []Member{}, Offsets: []Offset{}, Lag: gl.Lag.Total()}
	if gl.FetchErr != nil {
		g.OffsetsError = "OffsetFetch: " + errText(gl.FetchErr)
	}
	for _, m := range gl.Members {
		mm := Member{MemberID: m.MemberID, InstanceID: m.InstanceID, ClientID: m.ClientID, ClientHost: m.ClientHost, Assigned: []Assignment{}}
		if a, ok := m.Assigned.AsConsumer(); ok {
			for _, t := range a.Topics {
				mm.Assigned = append(mm.Assigned, Assignment{Topic: t.Topic, Partitions: slices.Sorted(slices.Values(t.Partitions))})
			}
			slices.SortFunc(mm.Assigned, func(a, b Assignment) int { return strings.Compare(a.Topic, b.Topic) })
		}
		g.Members = append(g.Members, mm)
	}
	for _, ml := range gl.Lag.Sorted() {
		o := Offset{Topic: ml.Topic, Partition: ml.Partition, Committed: ml.Commit.At, LogEndOffset: -1, Lag: ml.Lag}
		if ml.End.Err == nil {
			o.LogEndOffset = ml.End.Offset
		}
		if ml.Member != nil {
			o.MemberID = ml.Member.MemberID
		}
		if ml.Err != nil {
			o.Error = errText(ml.Err)
		}
		g.Offsets = append(g.Offsets, o)
	}
	return g, nil
}

// consumerGroup describes a KIP-848 consumer group as group does a
// classic one: members and assignments from ConsumerGroupDescribe (the
// assignor as the protocol), the committed offsets, the end offsets and
// the lag. found is false when it is not a consumer group either.
func (c *Console) consumerGroup(ctx context.Context, id string) (g *Group, found bool, err error) {
	described, err := c.adm.DescribeConsumerGroups(ctx, id)
	if err != nil && len(described) == 0 {
		return nil, false, err
	}
	d, ok := described[id]
	if !ok || errors.Is(d.Err, kerr.GroupIDNotFound) || errors.Is(d.Err, kerr.UnsupportedVersion) {
		return nil, false, nil
	}
	if d.Err != nil {
		return nil, false, d.Err
	}
	g = &Group{Group: id, State: d.State, ProtocolType: "consumer", Protocol: d.AssignorName,
		Coordinator: d.Coordinator.NodeID, Members: []Member{}, Offsets: []Offset{}}
	owner := map[string]map[int32]string{}
	topics := map[string]bool{}
	for _, m := range d.Members {
		mm := Member{MemberID: m.MemberID, InstanceID: m.InstanceID, ClientID: m.ClientID, ClientHost: m.ClientHost, Assigned: []Assignment{}}
		for t, ps := range m.Assignment {
			topics[t] = true
			if owner[t] == nil {
				owner[t] = map[int32]string{}
			}
			a := Assignment{Topic: t}
			for p := range ps {
				a.Partitions = append(a.Partitions, p)
				owner[t][p] = m.MemberID
			}
			slices.Sort(a.Partitions)
			mm.Assigned = append(mm.Assigned, a)
		}
		slices.SortFunc(mm.Assigned, func(a, b Assignment) int { return strings.Compare(a.Topic, b.Topic) })
		g.Members = append(g.Members, mm)
	}
	commits, err := c.adm.FetchOffsets(ctx, id)
	if err != nil {
		g.OffsetsError = "OffsetFetch: " + errText(err)
	}
	commits.Each(func(o kadm.OffsetResponse) { topics[o.Topic] = true })
	if len(topics) == 0 {
		return g, true, nil
	}
	ends, err := c.adm.ListEndOffsets(ctx, slices.Sorted(maps.Keys(topics))...)
	if err != nil && len(ends) == 0 {
		return nil, true, err
	}
	ends.Each(func(e kadm.ListedOffset) {
		cm, committed := commits.Lookup(e.Topic, e.Partition)
		member, owned := owner[e.Topic][e.Partition]
		if !committed && !owned {
			return
		}
		o := Offset{Topic: e.Topic, Partition: e.Partition, Committed: -1, LogEndOffset: -1, Lag: -1, MemberID: member}
		if e.Err == nil {
			o.LogEndOffset = e.Offset
		} else {
			o.Error = errText(e.Err)
		}
		if committed {
			o.Committed = cm.At
			if cm.Err != nil {
				o.Error = errText(cm.Err)
			}
		}
		if o.Committed >= 0 && o.LogEndOffset >= 0 {
			o.Lag = o.LogEndOffset - o.Committed
			g.Lag += o.Lag
		}
		g.Offsets = append(g.Offsets, o)
	})
	slices.SortFunc(g.Offsets, func(a, b Offset) int {
		return cmp.Or(strings.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	return g, true, nil
}

func (c *Console) security(ctx context.Context) (*Security, error) {
	s := &Security{ACLs: []ACL{}, ScramUsers: []ScramUser{}, Quotas: []Quota{}}

	// One filter matching every binding, as kafka-acls --list does.
	req := kmsg.NewPtrDescribeACLsRequest()
	req.ResourceType = kmsg.ACLResourceTypeAny
	req.ResourcePatternType = kmsg.ACLResourcePatternTypeAny
	req.Operation = kmsg.ACLOperationAny
	req.PermissionType = kmsg.ACLPermissionTypeAny
	resp, err := req.RequestWith(ctx, c.cl)
	switch {
	case err != nil:
		return nil, fmt.Errorf("DescribeAcls: %w", err)
	case resp.ErrorCode == kerr.SecurityDisabled.Code:
		// No authorizer: the lists below still mean something (SCRAM
		// users authenticate, quotas apply).
	case resp.ErrorCode != 0:
		s.AuthorizerEnabled = true
		s.ACLsError = errText(kerr.ErrorForCode(resp.ErrorCode))
		if resp.ErrorMessage != nil {
			s.ACLsError += ": " + *resp.ErrorMessage
		}
	default:
		s.AuthorizerEnabled = true
		for _, r := range resp.Resources {
			for _, a := range r.ACLs {
				s.ACLs = append(s.ACLs, ACL{
					Principal: a.Principal, Host: a.Host,
					ResourceType: r.ResourceType.String(), ResourceName: r.ResourceName, PatternType: r.ResourcePatternType.String(),
					Operation: a.Operation.String(), Permission: a.PermissionType.String(),
				})
			}
		}
		slices.SortFunc(s.ACLs, func(a, b ACL) int {
			return cmp.Or(strings.Compare(a.ResourceType, b.ResourceType), strings.Compare(a.ResourceName, b.ResourceName),
				strings.Compare(a.PatternType, b.PatternType), strings.Compare(a.Principal, b.Principal),
				strings.Compare(a.Host, b.Host), strings.Compare(a.Operation, b.Operation), strings.Compare(a.Permission, b.Permission))
		})
	}

	if users, err := c.adm.DescribeUserSCRAMs(ctx); err != nil {
		s.ScramError = "DescribeUserScramCredentials: " + errText(err)
	} else {
		for _, u := range users.Sorted() {
			if u.Err != nil {
				continue // ResourceNotFound: no such user
			}
			su := ScramUser{User: u.User, Mechanisms: []string{}}
			for _, ci := range u.CredInfos {
				su.Mechanisms = append(su.Mechanisms, ci.Mechanism.String())
			}
			slices.Sort(su.Mechanisms)
			s.ScramUsers = append(s.ScramUsers, su)
		}
	}

	if quotas, err := c.adm.DescribeClientQuotas(ctx, false, nil); err != nil {
		s.QuotasError = "DescribeClientQuotas: " + errText(err)
	} else {
		for _, q := range quotas {
			var parts []string
			for _, e := range q.Entity {
				parts = append(parts, e.String())
			}
			slices.Sort(parts)
			qq := Quota{Entity: strings.Join(parts, ", "), Values: []QuotaValue{}}
			for _, v := range q.Values {
				qq.Values = append(qq.Values, QuotaValue{Key: v.Key, Value: v.Value})
			}
			slices.SortFunc(qq.Values, func(a, b QuotaValue) int { return strings.Compare(a.Key, b.Key) })
			s.Quotas = append(s.Quotas, qq)
		}
		slices.SortFunc(s.Quotas, func(a, b Quota) int { return strings.Compare(a.Entity, b.Entity) })
	}
	return s, nil
}

// errText is an error as the pages show it: a Kafka error by its name
// and description.
func errText(err error) string {
	var ke *kerr.Error
	if errors.As(err, &ke) && err == error(ke) {
		return ke.Message + ": " + ke.Description
	}
	return err.Error()
}

// configSource names a config's source as kafka-configs does.
func configSource(s kmsg.ConfigSource) string {
	switch s {
	case kmsg.ConfigSourceDynamicTopicConfig:
		return "topic"
	case kmsg.ConfigSourceDynamicBrokerConfig:
		return "dynamic-broker"
	case kmsg.ConfigSourceDynamicDefaultBrokerConfig:
		return "dynamic-default-broker"
	case kmsg.ConfigSourceStaticBrokerConfig:
		return "static-broker"
	case kmsg.ConfigSourceDefaultConfig:
		return "default"
	}
	return strings.ToLower(s.String())
}

// topicID renders a topic ID as Kafka's tools do (Uuid.toString: base64,
// URL alphabet, no padding); "" for the zero ID.
func topicID(id [16]byte) string {
	if id == ([16]byte{}) {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString(id[:])
}

func nonNil(xs []int32) []int32 {
	if xs == nil {
		return []int32{}
	}
	return slices.Clone(xs)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
