package group

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Consumer groups of KIP-848 ("the next-generation consumer rebalance
// protocol"), next to the classic ones: the same Group, mailbox and
// offsets, with g.consumer set. Members heartbeat (ConsumerGroupHeartbeat)
// with their subscription; the coordinator bumps the group epoch when
// membership, subscriptions or the subscribed topics' partitions change,
// computes a target assignment with a server assignor
// (consumer_assign.go), and moves each member toward its target one
// heartbeat at a time, as Kafka's CurrentAssignmentBuilder: a partition
// still owned by another member is withheld until that member revoked
// it, and a member's epoch reaches the target epoch only once it holds
// nothing it must give up.

// Consumer group states, as Kafka names them (ConsumerGroupDescribe,
// ListGroups). Empty, Stable and Dead are shared with classic groups.
const (
	// Assigning: the group epoch moved past the target assignment's.
	Assigning State = iota + Dead + 1
	// Reconciling: some member has not reached the target assignment.
	Reconciling
)

// Member states of ConsumerGroupCurrentMemberAssignmentValue.
const (
	memberStable               int8 = 0
	memberUnrevokedPartitions  int8 = 1
	memberUnreleasedPartitions int8 = 2
)

// Special member epochs of ConsumerGroupHeartbeat.
const (
	leaveEpoch       = -1
	staticLeaveEpoch = -2
)

// ConsumerTopicPartitions is a topic's partitions in a consumer group
// assignment; Topic is the name where the group knows it.
type ConsumerTopicPartitions struct {
	TopicID    TopicID
	Topic      string
	Partitions []int32
}

// TopicLookup is the cluster's topics as a heartbeat sees them.
type TopicLookup interface {
	// Topic returns an existing topic's ID and partition count.
	Topic(name string) (id TopicID, partitions int32, ok bool)
	// TopicNames returns every topic a regex subscription may match.
	TopicNames() []string
}

// namesOnce is a TopicLookup that lists the topic names once: a
// heartbeat that recomputes the assignment matches the subscription
// metadata's and every regex member's patterns against one list, not
// one list (every topic of the image, each authorized) per member.
type namesOnce struct {
	TopicLookup
	names []string
	done  bool
}

func (l *namesOnce) TopicNames() []string {
	if !l.done {
		l.names, l.done = l.TopicLookup.TopicNames(), true
	}
	return l.names
}

// ConsumerHeartbeatRequest is a ConsumerGroupHeartbeat. Nil fields are
// unchanged since the member's last heartbeat.
type ConsumerHeartbeatRequest struct {
	Version              int16
	MemberID             string
	MemberEpoch          int32
	InstanceID           *string
	RackID               *string
	RebalanceTimeout     time.Duration // < 0: unchanged
	SubscribedTopicNames []string
	SubscribedTopicRegex *string
	ServerAssignor       *string
	// Owned is the partitions the member owns (nil: unchanged).
	Owned      []ConsumerTopicPartitions
	ClientID   string
	ClientHost string
	Topics     TopicLookup
}

// ConsumerHeartbeatResult is a ConsumerGroupHeartbeat response.
type ConsumerHeartbeatResult struct {
	Err               *kerr.Error
	ErrMessage        string
	MemberID          string
	MemberEpoch       int32
	HeartbeatInterval time.Duration
	// Assignment is set (possibly empty) when the response carries
	// one.
	Assignment    []ConsumerTopicPartitions
	HasAssignment bool
}

// ConsumerDescribedMember is a member in ConsumerGroupDescribe.
type ConsumerDescribedMember struct {
	MemberID         string
	InstanceID       *string
	RackID           *string
	MemberEpoch      int32
	ClientID         string
	ClientHost       string
	Topics           []string
	Regex            *string
	Assignment       []ConsumerTopicPartitions
	TargetAssignment []ConsumerTopicPartitions
}

// ConsumerDescribed is one group of ConsumerGroupDescribe. A group that
// is not a consumer group is GROUP_ID_NOT_FOUND.
type ConsumerDescribed struct {
	Err             *kerr.Error
	ErrMessage      string
	State           State
	Epoch           int32
	AssignmentEpoch int32
	Assignor        string
	Members         []ConsumerDescribedMember
}

// consumerGroup is the KIP-848 state of a group.
type consumerGroup struct {
	// epoch is the group epoch; targetEpoch the target assignment's.
	// Invariant: targetEpoch <= epoch.
	epoch       int32
	targetEpoch int32
	members     map[string]*cmember
	// static maps instance IDs to member IDs.
	static map[string]string
	// target is the target assignment by member ID.
	target map[string]assignment
	// topics is the subscribed topics' metadata the target was computed
	// from (ConsumerGroupPartitionMetadataValue), by name.
	topics map[string]topicMeta
	// owners maps each partition a member holds (assigned or pending
	// revocation) to that member.
	owners map[TopicID]map[int32]string
	// byName counts the members subscribing to each topic by name, and
	// regexes the members with a regex, so a heartbeat gathers the
	// subscribed topics without visiting every member.
	byName  map[string]int
	regexes int
}

type cmember struct {
	id   string
	meta cgMemberMeta
	cur  cgCurrent
	// regex is meta.Regex compiled; nil without one.
	regex *regexp.Regexp
	// assignedAt is, for each partition the member holds, the member
	// epoch at which it got it (in memory only: after a load, the
	// loaded epoch), for the commit check of KIP-1251.
	assignedAt map[TopicID]map[int32]int32
	// sessionDeadline expires the member without heartbeats;
	// rebalanceDeadline one that does not revoke in time (zero: none).
	sessionDeadline   time.Time
	rebalanceDeadline time.Time
}

func newConsumerGroup() *consumerGroup {
	return &consumerGroup{
		members: map[string]*cmember{},
		static:  map[string]string{},
		target:  map[string]assignment{},
		topics:  map[string]topicMeta{},
		owners:  map[TopicID]map[int32]string{},
		byName:  map[string]int{},
	}
}

// subscribe counts (delta 1) or uncounts (-1) a member's subscription
// in byName and regexes.
func (cg *consumerGroup) subscribe(m *cmember, delta int) {
	for _, t := range m.meta.Topics {
		if cg.byName[t] += delta; cg.byName[t] <= 0 {
			delete(cg.byName, t)
		}
	}
	if m.regex != nil {
		cg.regexes += delta
	}
}

func newCMember(id string) *cmember {
	return &cmember{id: id, meta: cgMemberMeta{RebalanceTimeout: -1, Topics: []string{}},
		cur: cgCurrent{Assigned: assignment{}, Revoking: assignment{}}}
}

// IsConsumer reports whether the group is a KIP-848 consumer group.
func (g *Group) IsConsumer() bool { return g.consumer != nil }

// memberCount counts the members of either protocol.
func (g *Group) memberCount() int {
	if g.consumer != nil {
		return len(g.consumer.members)
	}
	return len(g.members)
}

// sortedMembers returns the members in member ID order.
func (cg *consumerGroup) sortedMembers() []*cmember {
	ms := make([]*cmember, 0, len(cg.members))
	for _, m := range cg.members {
		ms = append(ms, m)
	}
	slices.SortFunc(ms, func(a, b *cmember) int { return strings.Compare(a.id, b.id) })
	return ms
}

// setOwned replaces a member's held partitions in the owner index.
func (cg *consumerGroup) setOwned(m *cmember, cur cgCurrent) {
	for _, a := range []assignment{m.cur.Assigned, m.cur.Revoking} {
		for t, ps := range a {
			for _, p := range ps {
				if cg.owners[t][p] == m.id {
					delete(cg.owners[t], p)
				}
			}
		}
	}
	m.cur = cur
	at := map[TopicID]map[int32]int32{}
	for _, a := range []assignment{cur.Assigned, cur.Revoking} {
		for t, ps := range a {
			if cg.owners[t] == nil {
				cg.owners[t] = map[int32]string{}
			}
			if at[t] == nil {
				at[t] = map[int32]int32{}
			}
			for _, p := range ps {
				cg.owners[t][p] = m.id
				e, held := m.assignedAt[t][p]
				if !held {
					e = cur.Epoch
				}
				at[t][p] = e
			}
		}
	}
	m.assignedAt = at
}

// updateState derives the group state as Kafka's ConsumerGroup does.
func (g *Group) updateConsumerState(now time.Time) {
	cg := g.consumer
	s := Stable
	switch {
	case len(cg.members) == 0:
		s = Empty
	case cg.epoch > cg.targetEpoch:
		s = Assigning
	default:
		for _, m := range cg.members {
			if m.cur.Epoch != cg.targetEpoch || m.cur.State != memberStable {
				s = Reconciling
				break
			}
		}
	}
	if s != g.state {
		g.transition(now, s)
	}
}

// preferredAssignor is the assignor most members ask for (ties: the
// earlier in consumerAssignors), else the default.
func (cg *consumerGroup) preferredAssignor() string {
	counts := map[string]int{}
	for _, m := range cg.members {
		if m.meta.ServerAssignor != nil {
			counts[*m.meta.ServerAssignor]++
		}
	}
	best := consumerAssignors[0]
	for _, a := range consumerAssignors {
		if counts[a] > counts[best] {
			best = a
		}
	}
	return best
}

// compileSubscription compiles a SubscribedTopicRegex. Kafka matches it
// against whole topic names (RE2/J's matches()), so it is anchored.
func compileSubscription(re string) (*regexp.Regexp, error) {
	if _, err := regexp.Compile(re); err != nil {
		return nil, err
	}
	return regexp.Compile("^(?:" + re + ")$")
}

// subscribedTopics returns the topics the member subscribes to by name
// or regex, sorted.
func (m *cmember) subscribedTopics(lookup TopicLookup, known map[string]topicMeta) []string {
	ts := slices.Clone(m.meta.Topics)
	if m.regex != nil {
		var names []string
		if lookup != nil {
			names = lookup.TopicNames()
		} else {
			for n := range known {
				names = append(names, n)
			}
		}
		for _, n := range names {
			if m.regex.MatchString(n) {
				ts = append(ts, n)
			}
		}
	}
	slices.Sort(ts)
	return slices.Compact(ts)
}

// consumerTombstones are the records deleting the whole consumer group
// state but its members (each member's are written when it leaves).
func (g *Group) consumerTombstones() []Record {
	return []Record{
		cgTombstone(cgTargetMetadataKey, g.id, nil),
		cgTombstone(cgPartitionMetadataKey, g.id, nil),
		cgTombstone(cgMetadataKey, g.id, nil),
	}
}

func memberTombstones(group, member string) []Record {
	return []Record{
		cgTombstone(cgCurrentMemberKey, group, &member),
		cgTombstone(cgTargetMemberKey, group, &member),
		cgTombstone(cgMemberMetadataKey, group, &member),
	}
}

// toConsumer makes an empty classic group (or a new group) a consumer
// group, as Kafka does on the first ConsumerGroupHeartbeat: the classic
// metadata is deleted, committed offsets stay.
func (g *Group) toConsumer(now time.Time) []Record {
	var recs []Record
	if g.hasProtocolType {
		recs = append(recs, groupTombstone(g.id))
	}
	g.hasProtocolType, g.protocolType = false, ""
	g.hasProtocol, g.protocol = false, ""
	g.generation, g.leader = 0, ""
	g.consumer = newConsumerGroup()
	g.transition(now, Empty)
	return recs
}

// toClassic drops an empty consumer group's state for a classic
// JoinGroup, as Kafka does; committed offsets stay.
func (g *Group) toClassic(now time.Time) {
	recs := g.consumerTombstones()
	g.consumer = nil
	g.transition(now, Empty)
	g.append(recs, func(_ time.Time, err error) {
		if err != nil {
			g.log.Warn("writing consumer group tombstones failed", "group", g.id, "err", err)
		}
	})
}

// afterWrites runs fn once the writes in flight are durable, so an
// answer never shows state that is not (Kafka answers a heartbeat once
// the records up to its own are committed); err is the last write's
// failure, NOT_COORDINATOR if the group was unloaded meanwhile.
func (g *Group) afterWrites(fn func(now time.Time, err error)) {
	if len(g.writes) == 0 {
		fn(time.Time{}, nil)
		return
	}
	prev := g.writes[len(g.writes)-1]
	g.writes = append(g.writes, &write{finished: true, done: func(now time.Time, _ error) {
		err := prev.err
		if err == nil && g.state == Dead {
			err = kerr.NotCoordinator
		}
		fn(now, err)
	}})
}

// validateConsumerHeartbeat checks the fields as Kafka's
// throwIfConsumerGroupHeartbeatRequestIsInvalid.
func validateConsumerHeartbeat(req *ConsumerHeartbeatRequest) (*kerr.Error, string) {
	bad := func(msg string) (*kerr.Error, string) { return kerr.InvalidRequest, msg }
	switch {
	case req.Version >= 1 && req.MemberID == "":
		return bad("MemberId can't be empty.")
	case req.Version == 0 && req.MemberEpoch != 0 && req.MemberID == "":
		return bad("MemberId can't be empty.")
	case req.InstanceID != nil && *req.InstanceID == "":
		return bad("InstanceId can't be empty.")
	case req.RackID != nil && *req.RackID == "":
		return bad("RackId can't be empty.")
	}
	switch {
	case req.MemberEpoch == 0:
		if req.RebalanceTimeout < 0 {
			return bad("RebalanceTimeoutMs must be provided in first request.")
		}
		if req.Owned == nil || len(req.Owned) > 0 {
			return bad("TopicPartitions must be empty when (re-)joining.")
		}
		if req.SubscribedTopicNames == nil && req.SubscribedTopicRegex == nil {
			return bad("Either SubscribedTopicNames or SubscribedTopicRegex must be non-null when (re-)joining.")
		}
	case req.MemberEpoch == staticLeaveEpoch:
		if req.InstanceID == nil {
			return bad("InstanceId can't be null.")
		}
	case req.MemberEpoch < staticLeaveEpoch:
		return bad("MemberEpoch is invalid.")
	}
	if req.ServerAssignor != nil && !knownAssignor(*req.ServerAssignor) {
		return kerr.UnsupportedAssignor, fmt.Sprintf("ServerAssignor %s is not supported. Supported assignors: %s.", *req.ServerAssignor, strings.Join(consumerAssignors, ", "))
	}
	if req.SubscribedTopicRegex != nil && *req.SubscribedTopicRegex != "" {
		if _, err := compileSubscription(*req.SubscribedTopicRegex); err != nil {
			return kerr.InvalidRegularExpression, err.Error()
		}
	}
	return nil, ""
}

// ConsumerHeartbeat handles a ConsumerGroupHeartbeat: join (epoch 0),
// heartbeat, leave (-1) or a static member's temporary leave (-2). cb
// runs once the records it wrote are durable.
func (g *Group) ConsumerHeartbeat(now time.Time, req ConsumerHeartbeatRequest, cb func(ConsumerHeartbeatResult)) {
	interval := g.cfg.ConsumerHeartbeatInterval
	fail := func(err *kerr.Error, msg string) {
		cb(ConsumerHeartbeatResult{Err: err, ErrMessage: msg, MemberID: req.MemberID, MemberEpoch: req.MemberEpoch, HeartbeatInterval: interval})
	}
	if err, msg := validateConsumerHeartbeat(&req); err != nil {
		fail(err, msg)
		return
	}
	if req.Topics != nil {
		req.Topics = &namesOnce{TopicLookup: req.Topics}
	}
	if g.state == Dead {
		fail(kerr.CoordinatorNotAvailable, "")
		return
	}
	var recs []Record
	if g.consumer == nil {
		if len(g.members) > 0 || g.state != Empty {
			fail(kerr.GroupIDNotFound, fmt.Sprintf("Group %s is not a consumer group.", g.id))
			return
		}
		if req.MemberEpoch != 0 {
			fail(kerr.UnknownMemberID, fmt.Sprintf("Member %s is not a member of group %s.", req.MemberID, g.id))
			return
		}
		recs = g.toConsumer(now)
	}
	cg := g.consumer
	res := ConsumerHeartbeatResult{MemberID: req.MemberID, HeartbeatInterval: interval}
	switch req.MemberEpoch {
	case leaveEpoch, staticLeaveEpoch:
		m := cg.members[req.MemberID]
		if req.InstanceID != nil {
			id, ok := cg.static[*req.InstanceID]
			switch {
			case !ok:
				fail(kerr.UnknownMemberID, fmt.Sprintf("Instance id %s is unknown.", *req.InstanceID))
				return
			case id != req.MemberID:
				fail(kerr.FencedInstanceID, fmt.Sprintf("Instance id %s is held by another member.", *req.InstanceID))
				return
			}
		}
		if m == nil {
			fail(kerr.UnknownMemberID, fmt.Sprintf("Member %s is not a member of group %s.", req.MemberID, g.id))
			return
		}
		res.MemberEpoch = req.MemberEpoch
		if req.MemberEpoch == staticLeaveEpoch {
			// The static member keeps its assignment until its session
			// expires, for its next incarnation to take over.
			cur := m.cur
			cur.Epoch, cur.PrevEpoch = staticLeaveEpoch, m.cur.Epoch
			m.cur = cur
			m.rebalanceDeadline = time.Time{}
			recs = append(recs, cgCurrentMemberRecord(g.id, m.id, &m.cur))
		} else {
			recs = append(recs, g.removeConsumerMember(now, m, req.Topics)...)
		}
		g.updateConsumerState(now)
		g.answerAfter(recs, res, cb)
		return
	}

	// Find or create the member.
	memberID := req.MemberID
	if memberID == "" {
		memberID = g.h.newMemberID(req.ClientID, nil)
	}
	res.MemberID = memberID
	m := cg.members[memberID]
	// isNew: a member that joined now; replaced: a static member's new
	// incarnation. Both get their current assignment written.
	isNew, replaced := false, false
	if req.MemberEpoch == 0 {
		if req.InstanceID != nil {
			if oldID, ok := cg.static[*req.InstanceID]; ok && oldID != memberID {
				old := cg.members[oldID]
				if old.cur.Epoch != staticLeaveEpoch {
					fail(kerr.UnreleasedInstanceID, fmt.Sprintf("Static member %s with instance id %s is not released yet.", oldID, *req.InstanceID))
					return
				}
				// The new incarnation takes over the old one's
				// assignment, target and epoch (the one it left
				// at): no rebalance.
				m = newCMember(memberID)
				m.meta, m.regex = old.meta, old.regex
				cur := old.cur
				cur.Epoch = old.cur.PrevEpoch
				target, hadTarget := cg.target[oldID]
				g.dropConsumerMember(old)
				recs = append(recs, memberTombstones(g.id, oldID)...)
				cg.members[memberID] = m
				cg.subscribe(m, 1)
				cg.static[*req.InstanceID] = memberID
				cg.setOwned(m, cur)
				if hadTarget {
					cg.target[memberID] = target
					recs = append(recs, cgTargetMemberRecord(g.id, memberID, target))
				}
				recs = append(recs, cgMemberMetadataRecord(g.id, memberID, &m.meta))
				replaced = true
			}
		}
		if m == nil {
			if len(cg.members) >= g.cfg.ConsumerMaxSize {
				fail(kerr.GroupMaxSizeReached, fmt.Sprintf("The consumer group has reached its maximum capacity of %d members.", g.cfg.ConsumerMaxSize))
				return
			}
			m = newCMember(memberID)
			cg.members[memberID] = m
			isNew = true
		}
	} else {
		if m == nil {
			fail(kerr.UnknownMemberID, fmt.Sprintf("Member %s is not a member of group %s.", memberID, g.id))
			return
		}
		if err := validateMemberEpoch(m, req.MemberEpoch, req.Owned); err != nil {
			fail(err, fmt.Sprintf("The consumer group member has a greater or smaller member epoch (%d) than the one known by the group coordinator (%d).", req.MemberEpoch, m.cur.Epoch))
			return
		}
	}

	// The member's subscription.
	meta := m.meta
	meta.ClientID, meta.ClientHost = req.ClientID, req.ClientHost
	if req.InstanceID != nil {
		meta.InstanceID = req.InstanceID
		cg.static[*req.InstanceID] = memberID
	}
	if req.RackID != nil {
		meta.RackID = req.RackID
	}
	if req.RebalanceTimeout >= 0 {
		meta.RebalanceTimeout = int32(req.RebalanceTimeout.Milliseconds())
	}
	if req.SubscribedTopicNames != nil {
		ts := slices.Clone(req.SubscribedTopicNames)
		slices.Sort(ts)
		meta.Topics = slices.Compact(ts)
	}
	if req.SubscribedTopicRegex != nil {
		meta.Regex = req.SubscribedTopicRegex
		if *meta.Regex == "" {
			meta.Regex = nil
		}
	}
	if req.ServerAssignor != nil {
		meta.ServerAssignor = req.ServerAssignor
	}
	bump := isNew
	if !metaEqual(&meta, &m.meta) || isNew {
		if !slices.Equal(meta.Topics, m.meta.Topics) || !ptrEqual(meta.Regex, m.meta.Regex) || !ptrEqual(meta.ServerAssignor, m.meta.ServerAssignor) {
			bump = true
		}
		cg.subscribe(m, -1)
		if !ptrEqual(meta.Regex, m.meta.Regex) {
			m.regex = nil
			if meta.Regex != nil {
				m.regex, _ = compileSubscription(*meta.Regex) // validated above
			}
		}
		m.meta = meta
		cg.subscribe(m, 1)
		recs = append(recs, cgMemberMetadataRecord(g.id, memberID, &m.meta))
	}

	// The subscribed topics' metadata.
	if topics, changed := g.subscriptionMetadata(req.Topics); changed {
		cg.topics = topics
		recs = append(recs, cgPartitionMetadataRecord(g.id, sortedTopicMetas(topics)))
		bump = true
	}
	if bump {
		cg.epoch++
		recs = append(recs, cgMetadataRecord(g.id, cg.epoch))
	}
	if cg.epoch > cg.targetEpoch {
		recs = append(recs, g.computeTarget(req.Topics)...)
	}

	// Reconcile the member toward its target.
	before := m.cur
	next := cg.reconcile(m, req.Owned)
	assignedChanged := !next.Assigned.equal(before.Assigned)
	if next.Epoch != before.Epoch || next.PrevEpoch != before.PrevEpoch || next.State != before.State ||
		assignedChanged || !next.Revoking.equal(before.Revoking) || isNew || replaced {
		cg.setOwned(m, next)
		recs = append(recs, cgCurrentMemberRecord(g.id, memberID, &m.cur))
	}
	m.sessionDeadline = now.Add(g.cfg.ConsumerSessionTimeout)
	switch {
	case m.cur.State != memberUnrevokedPartitions:
		m.rebalanceDeadline = time.Time{}
	case before.State != memberUnrevokedPartitions || before.Epoch != m.cur.Epoch || m.rebalanceDeadline.IsZero():
		m.rebalanceDeadline = now.Add(time.Duration(max(m.meta.RebalanceTimeout, 0)) * time.Millisecond)
	}
	g.updateConsumerState(now)

	res.MemberEpoch = m.cur.Epoch
	// The assignment goes to a full request (a join, or one after an
	// error), when it changed, and, beyond Kafka, when the member's
	// view is behind: a lost response (an older epoch) or owned
	// partitions that differ from it. Sending it again is harmless.
	full := req.MemberEpoch == 0 || req.RebalanceTimeout >= 0 && (req.SubscribedTopicNames != nil || req.SubscribedTopicRegex != nil) && req.Owned != nil
	behind := req.MemberEpoch != m.cur.Epoch || req.Owned != nil && !ownedAssignment(req.Owned).equal(m.cur.Assigned)
	if full || assignedChanged || behind {
		res.HasAssignment = true
		res.Assignment = cg.describeAssignment(m.cur.Assigned)
	}
	g.answerAfter(recs, res, cb)
}

// answerAfter writes recs, if any, and answers res once they and every
// earlier write are durable.
func (g *Group) answerAfter(recs []Record, res ConsumerHeartbeatResult, cb func(ConsumerHeartbeatResult)) {
	done := func(_ time.Time, err error) {
		if kerrv := storeGroupError(err); kerrv != nil {
			res = ConsumerHeartbeatResult{Err: kerrv, MemberID: res.MemberID, MemberEpoch: res.MemberEpoch, HeartbeatInterval: res.HeartbeatInterval}
		}
		cb(res)
	}
	if len(recs) == 0 {
		g.afterWrites(done)
		return
	}
	g.append(recs, done)
}

func metaEqual(a, b *cgMemberMeta) bool {
	return ptrEqual(a.InstanceID, b.InstanceID) && ptrEqual(a.RackID, b.RackID) && a.ClientID == b.ClientID &&
		a.ClientHost == b.ClientHost && slices.Equal(a.Topics, b.Topics) && ptrEqual(a.Regex, b.Regex) &&
		a.RebalanceTimeout == b.RebalanceTimeout && ptrEqual(a.ServerAssignor, b.ServerAssignor)
}

func ptrEqual(a, b *string) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return *a == *b
}

// validateMemberEpoch is Kafka's check for a heartbeat: a greater epoch
// is fenced; a smaller one is accepted only if it is the previous epoch
// and the member owns a subset of its assignment (the response that
// bumped it was lost).
func validateMemberEpoch(m *cmember, epoch int32, owned []ConsumerTopicPartitions) *kerr.Error {
	switch {
	case epoch > m.cur.Epoch:
		return kerr.FencedMemberEpoch
	case epoch < m.cur.Epoch:
		if epoch != m.cur.PrevEpoch || owned == nil || !ownedSubset(owned, m.cur.Assigned) {
			return kerr.FencedMemberEpoch
		}
	}
	return nil
}

func ownedSubset(owned []ConsumerTopicPartitions, a assignment) bool {
	for _, t := range owned {
		for _, p := range t.Partitions {
			if !a.has(t.TopicID, p) {
				return false
			}
		}
	}
	return true
}

func ownedAssignment(owned []ConsumerTopicPartitions) assignment {
	a := assignment{}
	for _, t := range owned {
		for _, p := range t.Partitions {
			a.add(t.TopicID, p)
		}
	}
	return a
}

// subscriptionMetadata returns the metadata of the topics the members
// subscribe to, and whether it differs from the group's. Without a
// lookup (a timer) it derives from the known metadata.
func (g *Group) subscriptionMetadata(lookup TopicLookup) (map[string]topicMeta, bool) {
	cg := g.consumer
	out := map[string]topicMeta{}
	add := func(name string) {
		if _, ok := out[name]; ok {
			return
		}
		if lookup == nil {
			if t, ok := cg.topics[name]; ok {
				out[name] = t
			}
			return
		}
		if id, n, ok := lookup.Topic(name); ok && n > 0 {
			out[name] = topicMeta{ID: id, Name: name, Partitions: n}
		}
	}
	for name := range cg.byName {
		add(name)
	}
	if cg.regexes > 0 {
		var names []string
		if lookup != nil {
			names = lookup.TopicNames()
		} else {
			for n := range cg.topics {
				names = append(names, n)
			}
		}
		for _, m := range cg.members {
			if m.regex == nil {
				continue
			}
			for _, n := range names {
				if m.regex.MatchString(n) {
					add(n)
				}
			}
		}
	}
	if len(out) != len(cg.topics) {
		return out, true
	}
	for n, t := range out {
		if cg.topics[n] != t {
			return out, true
		}
	}
	return out, false
}

func sortedTopicMetas(topics map[string]topicMeta) []topicMeta {
	out := make([]topicMeta, 0, len(topics))
	for _, n := range sortedTopicNames(topics) {
		out = append(out, topics[n])
	}
	return out
}

// computeTarget runs the assignor and moves the target assignment to
// the group epoch; it returns the records of the members whose target
// changed and the new target epoch.
func (g *Group) computeTarget(lookup TopicLookup) []Record {
	cg := g.consumer
	spec := assignSpec{topics: cg.topics, prev: cg.target}
	for _, m := range cg.sortedMembers() {
		var ts []string
		for _, n := range m.subscribedTopics(lookup, cg.topics) {
			if _, ok := cg.topics[n]; ok {
				ts = append(ts, n)
			}
		}
		spec.members = append(spec.members, assignMember{id: m.id, topics: ts})
	}
	target := assign(cg.preferredAssignor(), spec)
	var recs []Record
	for _, am := range spec.members {
		a := target[am.id]
		if prev, ok := cg.target[am.id]; !ok || !prev.equal(a) {
			recs = append(recs, cgTargetMemberRecord(g.id, am.id, a))
		}
	}
	cg.target = target
	cg.targetEpoch = cg.epoch
	return append(recs, cgTargetMetadataRecord(g.id, cg.targetEpoch))
}

// ownsAny reports whether owned (nil: unknown, so assumed to) holds any
// partition of a.
func ownsAny(owned assignment, a assignment) bool {
	if owned == nil {
		return true
	}
	for t, ps := range a {
		for _, p := range ps {
			if owned.has(t, p) {
				return true
			}
		}
	}
	return false
}

// reconcile computes the member's next current assignment, as Kafka's
// CurrentAssignmentBuilder. owned is what the member reported owning
// (nil: not reported).
func (cg *consumerGroup) reconcile(m *cmember, ownedList []ConsumerTopicPartitions) cgCurrent {
	var owned assignment
	if ownedList != nil {
		owned = ownedAssignment(ownedList)
	}
	cur := m.cur
	switch cur.State {
	case memberStable:
		if cur.Epoch != cg.targetEpoch {
			return cg.nextAssignment(m, cur.Epoch, owned)
		}
		return cur
	case memberUnrevokedPartitions:
		if ownsAny(owned, cur.Revoking) {
			return cur
		}
		// Revoked: on to the next epoch (one at a time), toward the
		// latest target.
		return cg.nextAssignment(m, min(cur.Epoch+1, cg.targetEpoch), owned)
	default: // memberUnreleasedPartitions
		return cg.nextAssignment(m, cur.Epoch, owned)
	}
}

// nextAssignment is CurrentAssignmentBuilder.computeNextAssignment: keep
// what is both held and targeted, revoke what is held but not targeted,
// and take what is targeted unless another member still holds it.
func (cg *consumerGroup) nextAssignment(m *cmember, epoch int32, owned assignment) cgCurrent {
	target := cg.target[m.id]
	assigned, revoking := assignment{}, assignment{}
	unreleased := false
	for t, ps := range m.cur.Assigned {
		for _, p := range ps {
			if target.has(t, p) {
				assigned.add(t, p)
			} else {
				revoking.add(t, p)
			}
		}
	}
	for t, ps := range target {
		for _, p := range ps {
			if assigned.has(t, p) {
				continue
			}
			if o, held := cg.owners[t][p]; held && o != m.id {
				unreleased = true
				continue
			}
			assigned.add(t, p)
		}
	}
	if revoking.count() > 0 && ownsAny(owned, revoking) {
		// The member stays in its epoch until it revokes.
		return cgCurrent{Epoch: epoch, PrevEpoch: prevEpoch(m.cur, epoch), State: memberUnrevokedPartitions, Assigned: assigned, Revoking: revoking}
	}
	state := memberStable
	if unreleased {
		state = memberUnreleasedPartitions
	}
	return cgCurrent{Epoch: cg.targetEpoch, PrevEpoch: prevEpoch(m.cur, cg.targetEpoch), State: state, Assigned: assigned, Revoking: assignment{}}
}

// prevEpoch is the previous epoch after moving to epoch: the current one
// when it changes.
func prevEpoch(cur cgCurrent, epoch int32) int32 {
	if epoch != cur.Epoch {
		return cur.Epoch
	}
	return cur.PrevEpoch
}

// describeAssignment lists an assignment by topic ID order, with the
// names the group knows.
func (cg *consumerGroup) describeAssignment(a assignment) []ConsumerTopicPartitions {
	names := map[TopicID]string{}
	for n, t := range cg.topics {
		names[t.ID] = n
	}
	out := []ConsumerTopicPartitions{}
	for _, t := range a.topics() {
		out = append(out, ConsumerTopicPartitions{TopicID: t, Topic: names[t], Partitions: slices.Clone(a[t])})
	}
	return out
}

// dropConsumerMember forgets a member in memory.
func (g *Group) dropConsumerMember(m *cmember) {
	cg := g.consumer
	cg.setOwned(m, cgCurrent{Assigned: assignment{}, Revoking: assignment{}})
	cg.subscribe(m, -1)
	delete(cg.members, m.id)
	delete(cg.target, m.id)
	if m.meta.InstanceID != nil && cg.static[*m.meta.InstanceID] == m.id {
		delete(cg.static, *m.meta.InstanceID)
	}
}

// removeConsumerMember removes a member that left or expired: its
// records are tombstoned and the group epoch bumps (the assignment is
// recomputed on the next heartbeat, as Kafka does).
func (g *Group) removeConsumerMember(now time.Time, m *cmember, lookup TopicLookup) []Record {
	cg := g.consumer
	g.dropConsumerMember(m)
	recs := memberTombstones(g.id, m.id)
	if topics, changed := g.subscriptionMetadata(lookup); changed {
		cg.topics = topics
		recs = append(recs, cgPartitionMetadataRecord(g.id, sortedTopicMetas(topics)))
	}
	cg.epoch++
	return append(recs, cgMetadataRecord(g.id, cg.epoch))
}

// consumerDeadline is the earliest member timer.
func (g *Group) consumerDeadline() time.Time {
	var d time.Time
	if g.consumer == nil {
		return d
	}
	for _, m := range g.consumer.members {
		for _, t := range []time.Time{m.sessionDeadline, m.rebalanceDeadline} {
			if !t.IsZero() && (d.IsZero() || t.Before(d)) {
				d = t
			}
		}
	}
	return d
}

// fireConsumer expires the members whose timer is due at d.
func (g *Group) fireConsumer(now, d time.Time) bool {
	if g.consumer == nil {
		return false
	}
	for _, m := range g.consumer.sortedMembers() {
		reason := ""
		switch {
		case m.sessionDeadline.Equal(d):
			reason = "session timeout expired"
		case m.rebalanceDeadline.Equal(d):
			reason = "partitions not revoked within the rebalance timeout"
		default:
			continue
		}
		g.log.Info("removing consumer group member", "group", g.id, "member", m.id, "reason", reason)
		recs := g.removeConsumerMember(now, m, nil)
		g.updateConsumerState(now)
		g.append(recs, func(_ time.Time, err error) {
			if err != nil {
				g.log.Warn("writing a removed member's records failed", "group", g.id, "err", err)
			}
		})
		return true
	}
	return false
}

// ConsumerDescribe handles one group of ConsumerGroupDescribe.
func (g *Group) ConsumerDescribe() ConsumerDescribed {
	if g.consumer == nil || g.state == Dead {
		return ConsumerDescribed{Err: kerr.GroupIDNotFound, ErrMessage: fmt.Sprintf("Group %s is not a consumer group.", g.id)}
	}
	cg := g.consumer
	d := ConsumerDescribed{State: g.state, Epoch: cg.epoch, AssignmentEpoch: cg.targetEpoch, Assignor: cg.preferredAssignor()}
	for _, m := range cg.sortedMembers() {
		d.Members = append(d.Members, ConsumerDescribedMember{
			MemberID: m.id, InstanceID: m.meta.InstanceID, RackID: m.meta.RackID, MemberEpoch: m.cur.Epoch,
			ClientID: m.meta.ClientID, ClientHost: m.meta.ClientHost, Topics: slices.Clone(m.meta.Topics), Regex: m.meta.Regex,
			Assignment:       cg.describeAssignment(m.cur.Assigned),
			TargetAssignment: cg.describeAssignment(cg.target[m.id]),
		})
	}
	return d
}

// validateConsumerCommitPartitions is validateConsumerCommit, except
// that an OffsetCommit at an older member epoch gets, instead of
// STALE_MEMBER_EPOCH for the whole request, a check per partition, as
// Kafka 4.3 does (KIP-1251): a partition the member still holds, and
// got at that epoch or before, is committed; others are
// STALE_MEMBER_EPOCH. No other member can hold such a partition, so
// this fences zombies as strictly, while a commit racing the heartbeat
// that moved the member on (franz-go commits on revocation) succeeds.
func (g *Group) validateConsumerCommitPartitions(memberID string, instanceID *string, epoch int32, version int16, txn bool) (*kerr.Error, func(topic string, partition int32) *kerr.Error) {
	err := g.validateConsumerCommit(memberID, instanceID, epoch, version, txn)
	if err != kerr.StaleMemberEpoch {
		return err, nil
	}
	cg := g.consumer
	m := cg.members[memberID]
	return nil, func(topic string, partition int32) *kerr.Error {
		t, ok := cg.topics[topic]
		if !ok {
			return kerr.StaleMemberEpoch
		}
		if at, held := m.assignedAt[t.ID][partition]; !held || at > epoch {
			return kerr.StaleMemberEpoch
		}
		return nil
	}
}

// validateConsumerCommit checks an OffsetCommit (or, txn set, a
// TxnOffsetCommit) to a consumer group as Kafka's
// ConsumerGroup.validateOffsetCommit: without membership only to an
// empty group; else the member must exist and send its current epoch.
func (g *Group) validateConsumerCommit(memberID string, instanceID *string, epoch int32, version int16, txn bool) *kerr.Error {
	cg := g.consumer
	if epoch < 0 && len(cg.members) == 0 {
		return nil
	}
	if txn && epoch < 0 && memberID == "" && instanceID == nil {
		return nil
	}
	m := cg.members[memberID]
	if m == nil {
		return kerr.UnknownMemberID
	}
	if !txn && version > 0 && version < 9 {
		return kerr.UnsupportedVersion
	}
	switch {
	case epoch > m.cur.Epoch:
		return kerr.FencedMemberEpoch
	case epoch < m.cur.Epoch && txn:
		// STALE_MEMBER_EPOCH is not part of TxnOffsetCommit: Kafka
		// answers ILLEGAL_GENERATION there.
		return kerr.IllegalGeneration
	case epoch < m.cur.Epoch:
		return kerr.StaleMemberEpoch
	}
	return nil
}

// validateConsumerFetch checks an OffsetFetch v9+ as Kafka's
// ConsumerGroup.validateOffsetFetch: epoch -1 (admin tools) reads
// freely, else the member must exist at that epoch.
func (g *Group) validateConsumerFetch(memberID *string, epoch int32) *kerr.Error {
	if g.consumer == nil || memberID == nil || epoch == -1 {
		return nil
	}
	m := g.consumer.members[*memberID]
	if m == nil {
		return kerr.UnknownMemberID
	}
	if epoch != m.cur.Epoch {
		return kerr.StaleMemberEpoch
	}
	return nil
}

// consumerSubscribed reports whether a member subscribes to the topic.
func (g *Group) consumerSubscribed(topic string) bool {
	for _, m := range g.consumer.members {
		if slices.Contains(m.meta.Topics, topic) || m.regex != nil && m.regex.MatchString(topic) {
			return true
		}
	}
	return false
}

// describeAsClassic is DescribeGroups of a consumer group, as Kafka 4
// answers it: the group is not a classic one, so it is Dead (v6:
// GROUP_ID_NOT_FOUND).
func (g *Group) describeAsClassic() DescribedGroup {
	return DescribedGroup{State: Dead, ErrMessage: fmt.Sprintf("Group %s is not a classic group.", g.id)}
}

// ---- loading

// cgLoad gathers a consumer group's records while loading.
type cgLoad struct {
	hasMeta     bool
	epoch       int32
	targetEpoch int32
	topics      []topicMeta
	members     map[string]*cgMemberMeta
	target      map[string]assignment
	current     map[string]*cgCurrent
}

func newCGLoad() *cgLoad {
	return &cgLoad{members: map[string]*cgMemberMeta{}, target: map[string]assignment{}, current: map[string]*cgCurrent{}}
}

// apply applies one decoded record (a nil value is a tombstone).
func (l *cgLoad) apply(d cgDecoded) {
	switch d.version {
	case cgMetadataKey:
		if d.value == nil {
			*l = *newCGLoad()
			return
		}
		l.hasMeta, l.epoch = true, *d.value.(*int32)
	case cgTargetMetadataKey:
		l.targetEpoch = 0
		if d.value != nil {
			l.targetEpoch = *d.value.(*int32)
		}
	case cgPartitionMetadataKey:
		l.topics = nil
		if d.value != nil {
			l.topics = d.value.([]topicMeta)
		}
	case cgMemberMetadataKey:
		if d.value == nil {
			delete(l.members, d.member)
		} else {
			l.members[d.member] = d.value.(*cgMemberMeta)
		}
	case cgTargetMemberKey:
		if d.value == nil {
			delete(l.target, d.member)
		} else {
			l.target[d.member] = d.value.(assignment)
		}
	case cgCurrentMemberKey:
		if d.value == nil {
			delete(l.current, d.member)
		} else {
			l.current[d.member] = d.value.(*cgCurrent)
		}
	}
}

// loadConsumer restores the consumer group state. Members whose
// metadata record is missing are dropped (their records are partial).
func (g *Group) loadConsumer(l *cgLoad) {
	cg := newConsumerGroup()
	cg.epoch, cg.targetEpoch = l.epoch, min(l.targetEpoch, l.epoch)
	for _, t := range l.topics {
		cg.topics[t.Name] = t
	}
	ids := make([]string, 0, len(l.members))
	for id := range l.members {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		m := newCMember(id)
		m.meta = *l.members[id]
		if m.meta.Topics == nil {
			m.meta.Topics = []string{}
		}
		if m.meta.Regex != nil {
			if re, err := compileSubscription(*m.meta.Regex); err == nil {
				m.regex = re
			}
		}
		cg.members[id] = m
		cg.subscribe(m, 1)
		if m.meta.InstanceID != nil {
			cg.static[*m.meta.InstanceID] = id
		}
		if c := l.current[id]; c != nil {
			cg.setOwned(m, *c)
		}
		if a, ok := l.target[id]; ok {
			cg.target[id] = a
		}
	}
	g.consumer = cg
	g.hasProtocolType, g.protocolType = false, ""
}

// loadedConsumer starts the loaded members' timers.
func (g *Group) loadedConsumer(now time.Time) {
	for _, m := range g.consumer.members {
		m.sessionDeadline = now.Add(g.cfg.ConsumerSessionTimeout)
		if m.cur.State == memberUnrevokedPartitions {
			m.rebalanceDeadline = now.Add(time.Duration(max(m.meta.RebalanceTimeout, 0)) * time.Millisecond)
		}
	}
	g.updateConsumerState(now)
}

// ---- coordinator

// ConsumerHeartbeat handles a ConsumerGroupHeartbeat; a join (epoch 0)
// creates the group.
func (c *Coordinator) ConsumerHeartbeat(groupID string, req ConsumerHeartbeatRequest, respond func(ConsumerHeartbeatResult)) {
	fail := func(err *kerr.Error) {
		respond(ConsumerHeartbeatResult{Err: err, MemberID: req.MemberID, MemberEpoch: req.MemberEpoch, HeartbeatInterval: c.cfg.ConsumerHeartbeatInterval})
	}
	if groupID == "" {
		fail(kerr.InvalidGroupID)
		return
	}
	// A bad request must not create the group it names.
	if err, msg := validateConsumerHeartbeat(&req); err != nil {
		respond(ConsumerHeartbeatResult{Err: err, ErrMessage: msg})
		return
	}
	if !c.busy.Enter() {
		fail(kerr.NotCoordinator)
		return
	}
	defer c.busy.Release()
	if c.isDraining() {
		fail(kerr.NotCoordinator)
		return
	}
	sh, err := c.route(groupID)
	if err != nil {
		fail(err)
		return
	}
	mb, err := c.lookup(sh, groupID, req.MemberEpoch == 0)
	switch {
	case err != nil:
		fail(err)
	case mb == nil:
		fail(kerr.UnknownMemberID)
	default:
		mb.request(func(g *Group, now time.Time) { g.ConsumerHeartbeat(now, req, respond) },
			func() { c.ConsumerHeartbeat(groupID, req, respond) })
	}
}

// ConsumerDescribe handles one group of ConsumerGroupDescribe.
func (c *Coordinator) ConsumerDescribe(groupID string, respond func(ConsumerDescribed)) {
	if !c.busy.Enter() {
		respond(ConsumerDescribed{Err: kerr.NotCoordinator})
		return
	}
	defer c.busy.Release()
	sh, err := c.route(groupID)
	if err != nil {
		respond(ConsumerDescribed{Err: err})
		return
	}
	mb, err := c.lookup(sh, groupID, false)
	switch {
	case err != nil:
		respond(ConsumerDescribed{Err: err})
	case mb == nil:
		respond(ConsumerDescribed{Err: kerr.GroupIDNotFound, ErrMessage: "Group " + groupID + " not found."})
	default:
		mb.request(func(g *Group, _ time.Time) { respond(g.ConsumerDescribe()) },
			func() { c.ConsumerDescribe(groupID, respond) })
	}
}
