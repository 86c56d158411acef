package group

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// host is what a Group needs from its owner.
type host interface {
	// append writes records to the group's __consumer_offsets
	// partition; complete runs later on the group's owner with the time
	// then. Appends complete in the order they were made.
	append(recs []Record, complete func(now time.Time, err error))
	// appendTxn is append for transactional offset commits: the
	// records go in a transactional batch of the producer, which its
	// transaction's marker later commits or aborts.
	appendTxn(producerID int64, epoch int16, recs []Record, complete func(now time.Time, err error))
	// newMemberID returns a fresh member ID, as Kafka makes them:
	// clientID (or the instance ID of a static member), "-", a UUID.
	newMemberID(clientID string, instanceID *string) string
}

// member is one member of a group.
type member struct {
	id         string
	instanceID *string
	clientID   string
	clientHost string

	rebalanceTimeout time.Duration
	sessionTimeout   time.Duration
	protocolType     string
	protocols        []Protocol
	// assignment is what the leader assigned in the current generation.
	assignment []byte

	// joinCB is the parked JoinGroup of a member awaiting join; syncCB
	// the parked SyncGroup of a member awaiting its assignment.
	joinCB func(JoinResult)
	syncCB func(SyncResult)
	// isNew is set from a new member's first join until the rebalance
	// it joined completes: it expires after newMemberJoinTimeout even
	// while awaiting join.
	isNew bool
	// heartbeatDeadline is when the member expires without a heartbeat;
	// zero when no expiry is scheduled.
	heartbeatDeadline time.Time
}

func (m *member) metadata(protocol string) []byte {
	for _, p := range m.protocols {
		if p.Name == protocol {
			return p.Metadata
		}
	}
	return nil
}

// matches reports whether protocols equal the member's, in order.
func (m *member) matches(protocols []Protocol) bool {
	return slices.EqualFunc(m.protocols, protocols, func(a, b Protocol) bool {
		return a.Name == b.Name && bytes.Equal(a.Metadata, b.Metadata)
	})
}

// hasSatisfiedHeartbeat decides whether an expired heartbeat deadline
// spares the member, as Kafka's MemberMetadata does: members awaiting a
// join or sync response are bounded by the rebalance timeout instead,
// except new members, who must complete their first join in time.
func (m *member) hasSatisfiedHeartbeat() bool {
	if m.isNew {
		return false
	}
	return m.joinCB != nil || m.syncCB != nil
}

// write is an append in flight. Completions apply in append order.
type write struct {
	done     func(now time.Time, err error)
	finished bool
	err      error
}

// Group is one consumer group's state machine. It is not safe for
// concurrent use: its owner (a Coordinator mailbox, or a test) calls it
// from one goroutine at a time.
type Group struct {
	id  string
	cfg *Config
	h   host
	log *slog.Logger

	state State
	// stateTime is when the group entered its state (Kafka's
	// currentStateTimestamp); zero when unknown (old records).
	stateTime time.Time

	// protocolType is set by the first member and kept while the group
	// is empty; hasProtocolType is false for groups that only store
	// offsets.
	protocolType    string
	hasProtocolType bool
	// protocol is the protocol selected for the current generation.
	protocol    string
	hasProtocol bool
	generation  int32
	// leader is the leader's member ID; "" when there are no members.
	leader string

	// members by ID, and in the order they joined (the leader succession
	// and every listing follow it, so behaviour is deterministic).
	members map[string]*member
	order   []*member
	// static maps group.instance.id to member ID.
	static map[string]string
	// pending holds member IDs handed out by MEMBER_ID_REQUIRED that have
	// not joined yet (KIP-394), with their expiry.
	pending map[string]time.Time
	// pendingSync holds members that joined the current generation and
	// have not sent SyncGroup yet.
	pendingSync     map[string]bool
	numAwaitingJoin int
	// newMemberAdded extends the initial rebalance delay while members
	// keep arriving in a new group's first rebalance.
	newMemberAdded bool

	// joinDeadline ends the PreparingRebalance phase: the initial delay
	// of a group that was empty (initialDelay set, initialRemaining of
	// the rebalance timeout left), else the rebalance timeout.
	joinDeadline     time.Time
	initialDelay     bool
	initialRemaining time.Duration
	// syncDeadline drops members that joined but never synced.
	syncDeadline time.Time

	// subscribed is the union of the members' subscribed topics when the
	// group uses the consumer protocol; subscribedKnown is false when it
	// cannot be known (another protocol type, unparsable metadata).
	subscribed      map[string]bool
	subscribedKnown bool

	offsets offsets

	// consumer is the state of a KIP-848 consumer group; nil for a
	// classic group (consumer.go).
	consumer *consumerGroup

	// writes are appends in flight, oldest first.
	writes []*write
}

func newGroup(id string, cfg *Config, h host, log *slog.Logger) *Group {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Group{
		id:          id,
		cfg:         cfg,
		h:           h,
		log:         log,
		members:     map[string]*member{},
		static:      map[string]string{},
		pending:     map[string]time.Time{},
		pendingSync: map[string]bool{},
		offsets:     newOffsets(),
	}
}

// ID returns the group ID.
func (g *Group) ID() string { return g.id }

// State returns the group's state.
func (g *Group) State() State { return g.state }

// Generation returns the current generation.
func (g *Group) Generation() int32 { return g.generation }

func (g *Group) transition(now time.Time, s State) {
	g.state = s
	g.stateTime = now
}

// idle reports whether nothing is in flight or parked: a group that is
// also Empty without offsets may be forgotten.
func (g *Group) idle() bool {
	return len(g.writes) == 0 && len(g.pending) == 0 && g.memberCount() == 0 && g.offsets.pendingCount() == 0 && len(g.offsets.txn) == 0
}

// ---- membership bookkeeping

func (g *Group) add(m *member, cb func(JoinResult)) {
	if len(g.members) == 0 {
		g.protocolType, g.hasProtocolType = m.protocolType, true
	}
	if g.leader == "" {
		g.leader = m.id
	}
	g.members[m.id] = m
	g.order = append(g.order, m)
	if m.instanceID != nil {
		g.static[*m.instanceID] = m.id
	}
	delete(g.pending, m.id)
	if cb != nil {
		m.joinCB = cb
		g.numAwaitingJoin++
	}
}

func (g *Group) remove(id string) {
	m := g.members[id]
	if m != nil {
		delete(g.members, id)
		g.order = slices.DeleteFunc(g.order, func(x *member) bool { return x == m })
		if m.joinCB != nil {
			g.numAwaitingJoin--
		}
		if m.instanceID != nil && g.static[*m.instanceID] == id {
			delete(g.static, *m.instanceID)
		}
	}
	if g.leader == id {
		g.leader = ""
		if len(g.order) > 0 {
			g.leader = g.order[0].id
		}
	}
	delete(g.pending, id)
	g.removePendingSync(id)
}

func (g *Group) removePendingSync(id string) {
	delete(g.pendingSync, id)
	if len(g.pendingSync) == 0 {
		g.syncDeadline = time.Time{}
	}
}

// updateMember replaces a member's protocols and timeouts, and its
// parked JoinGroup by cb (nil: none). A JoinGroup it replaces is from
// a request the client gave up on; it is answered so that its
// connection does not wait forever.
func (g *Group) updateMember(m *member, protocols []Protocol, rebalanceTimeout, sessionTimeout time.Duration, cb func(JoinResult)) {
	m.protocols = protocols
	m.rebalanceTimeout = rebalanceTimeout
	m.sessionTimeout = sessionTimeout
	if old := m.joinCB; old != nil {
		m.joinCB = nil
		g.numAwaitingJoin--
		if cb != nil {
			old(JoinResult{Err: kerr.RebalanceInProgress, MemberID: m.id, Generation: -1})
		}
	}
	if cb != nil {
		m.joinCB = cb
		g.numAwaitingJoin++
	}
}

// invokeJoin answers a member's parked JoinGroup, if any.
func (g *Group) invokeJoin(m *member, r JoinResult) bool {
	cb := m.joinCB
	if cb == nil {
		return false
	}
	m.joinCB = nil
	g.numAwaitingJoin--
	cb(r)
	return true
}

// invokeSync answers a member's parked SyncGroup, if any.
func (g *Group) invokeSync(m *member, r SyncResult) bool {
	cb := m.syncCB
	if cb == nil {
		return false
	}
	m.syncCB = nil
	cb(r)
	return true
}

func (g *Group) scheduleHeartbeat(now time.Time, m *member, timeout time.Duration) {
	m.heartbeatDeadline = now.Add(timeout)
}

// rebalanceTimeout is the largest rebalance timeout of the members.
func (g *Group) rebalanceTimeout() time.Duration {
	var d time.Duration
	for _, m := range g.order {
		d = max(d, m.rebalanceTimeout)
	}
	return d
}

// supportsProtocols reports whether a member with these protocols may
// join: the first member must bring a type and protocols; later ones
// the group's type and a protocol every member supports.
func (g *Group) supportsProtocols(protocolType string, protocols []Protocol) bool {
	if g.state == Empty {
		return protocolType != "" && len(protocols) > 0
	}
	if !g.hasProtocolType || g.protocolType != protocolType {
		return false
	}
	for _, p := range protocols {
		if g.supportedByAll(p.Name) {
			return true
		}
	}
	return false
}

func (g *Group) supportedByAll(name string) bool {
	for _, m := range g.order {
		if !slices.ContainsFunc(m.protocols, func(p Protocol) bool { return p.Name == name }) {
			return false
		}
	}
	return true
}

// selectProtocol picks the protocol of the next generation: among those
// every member supports, the one most members prefer (each votes for
// its first supported choice); ties go to the earliest member's
// preference order.
func (g *Group) selectProtocol() string {
	if len(g.order) == 0 {
		return ""
	}
	var candidates []string
	for _, p := range g.order[0].protocols {
		if g.supportedByAll(p.Name) && !slices.Contains(candidates, p.Name) {
			candidates = append(candidates, p.Name)
		}
	}
	votes := map[string]int{}
	for _, m := range g.order {
		for _, p := range m.protocols {
			if slices.Contains(candidates, p.Name) {
				votes[p.Name]++
				break
			}
		}
	}
	best := ""
	for _, c := range candidates {
		if best == "" || votes[c] > votes[best] {
			best = c
		}
	}
	return best
}

func (g *Group) protocolTypePtr() *string {
	if !g.hasProtocolType {
		return nil
	}
	s := g.protocolType
	return &s
}

func (g *Group) protocolPtr() *string {
	if !g.hasProtocol {
		return nil
	}
	s := g.protocol
	return &s
}

// currentMemberMetadata is the member list the leader assigns from.
func (g *Group) currentMemberMetadata() []JoinMember {
	out := make([]JoinMember, 0, len(g.order))
	for _, m := range g.order {
		out = append(out, JoinMember{MemberID: m.id, InstanceID: m.instanceID, Metadata: m.metadata(g.protocol)})
	}
	return out
}

func (g *Group) joinResult(m *member, leaderID string, withMembers bool) JoinResult {
	r := JoinResult{
		MemberID:     m.id,
		Generation:   g.generation,
		ProtocolType: g.protocolTypePtr(),
		Protocol:     g.protocolPtr(),
		Leader:       leaderID,
	}
	if withMembers {
		r.Members = g.currentMemberMetadata()
	}
	return r
}

func joinError(memberID string, err *kerr.Error) JoinResult {
	return JoinResult{Err: err, MemberID: memberID, Generation: -1}
}

// validateMember checks a request's member and instance IDs, as Kafka's
// ClassicGroup.validateMember: an unknown instance ID or member is
// UNKNOWN_MEMBER_ID; an instance ID now held by another member ID is
// FENCED_INSTANCE_ID (the request is from a replaced static member).
func (g *Group) validateMember(memberID string, instanceID *string) (*member, *kerr.Error) {
	if instanceID != nil {
		existing, ok := g.static[*instanceID]
		if !ok {
			return nil, kerr.UnknownMemberID
		}
		if existing != memberID {
			return nil, kerr.FencedInstanceID
		}
	}
	m := g.members[memberID]
	if m == nil {
		return nil, kerr.UnknownMemberID
	}
	return m, nil
}

// ---- JoinGroup

// acceptJoiningMember applies group.max.size as Kafka does: while
// preparing a rebalance, members already awaiting join are accepted and
// others up to the limit counted in awaiting members (so lowering the
// limit shrinks the group); otherwise existing members are accepted and
// new ones while the group is below the limit.
func (g *Group) acceptJoiningMember(memberID string) bool {
	switch g.state {
	case Empty, Dead:
		return true
	case PreparingRebalance:
		if m := g.members[memberID]; m != nil && m.joinCB != nil {
			return true
		}
		return g.numAwaitingJoin < g.cfg.MaxSize
	default:
		return g.members[memberID] != nil || len(g.members) < g.cfg.MaxSize
	}
}

// Join handles a JoinGroup. cb is called once: at once, or when the
// rebalance completes.
func (g *Group) Join(now time.Time, req JoinRequest, cb func(JoinResult)) {
	switch {
	case g.state == Dead:
		// The group was just deleted or unloaded: the client finds
		// the coordinator again and rejoins.
		cb(joinError(req.MemberID, kerr.CoordinatorNotAvailable))
		return
	case g.consumer != nil && len(g.consumer.members) > 0:
		// Kafka without online migration: the group is of the other
		// type.
		cb(joinError(req.MemberID, kerr.GroupIDNotFound))
		return
	case g.consumer != nil:
		g.toClassic(now)
	}
	switch {
	case req.SessionTimeout < g.cfg.MinSessionTimeout || req.SessionTimeout > g.cfg.MaxSessionTimeout:
		cb(joinError(req.MemberID, kerr.InvalidSessionTimeout))
		return
	case !g.supportsProtocols(req.ProtocolType, req.Protocols):
		cb(joinError(req.MemberID, kerr.InconsistentGroupProtocol))
		return
	}
	if !g.acceptJoiningMember(req.MemberID) {
		if m := g.members[req.MemberID]; m != nil {
			g.removeMemberAndUpdateGroup(now, m, "group.max.size reached")
		} else {
			delete(g.pending, req.MemberID)
		}
		cb(joinError("", kerr.GroupMaxSizeReached))
	} else if req.MemberID == "" {
		g.joinNewMember(now, req, cb)
	} else {
		g.joinCurrentMember(now, req, cb)
	}
	if g.state == PreparingRebalance {
		g.tryCompleteJoin(now)
	}
}

func (g *Group) joinNewMember(now time.Time, req JoinRequest, cb func(JoinResult)) {
	id := g.h.newMemberID(req.ClientID, req.InstanceID)
	if req.InstanceID != nil {
		if old, ok := g.static[*req.InstanceID]; ok {
			g.replaceStaticMemberAndRebalance(now, req, old, id, cb)
		} else {
			g.addMemberAndRebalance(now, req, id, cb)
		}
		return
	}
	if req.RequireKnownMemberID {
		// KIP-394: the member joins again with this ID, so a client
		// whose JoinGroup timed out does not leave a ghost member.
		g.pending[id] = now.Add(req.SessionTimeout)
		cb(joinError(id, kerr.MemberIDRequired))
		return
	}
	g.addMemberAndRebalance(now, req, id, cb)
}

func (g *Group) joinCurrentMember(now time.Time, req JoinRequest, cb func(JoinResult)) {
	if _, ok := g.pending[req.MemberID]; ok {
		if req.InstanceID != nil {
			// Pending IDs are only given to dynamic members.
			cb(joinError(req.MemberID, kerr.UnknownServerError))
			return
		}
		g.addMemberAndRebalance(now, req, req.MemberID, cb)
		return
	}
	m, err := g.validateMember(req.MemberID, req.InstanceID)
	if err != nil {
		cb(joinError(req.MemberID, err))
		return
	}
	switch g.state {
	case PreparingRebalance:
		g.updateMemberAndRebalance(now, m, req, cb)
	case CompletingRebalance:
		if m.matches(req.Protocols) {
			// The member lost the JoinGroup response: answer again
			// with the current generation.
			cb(g.joinResult(m, g.leader, m.id == g.leader))
		} else {
			g.updateMemberAndRebalance(now, m, req, cb)
		}
	case Stable:
		if m.id == g.leader || !m.matches(req.Protocols) {
			// A leader's rejoin asks for a rebalance: that is how
			// consumers react to metadata changes that do not change
			// their subscription (new partitions, say).
			g.updateMemberAndRebalance(now, m, req, cb)
		} else {
			cb(g.joinResult(m, g.leader, false))
		}
	default:
		cb(joinError(req.MemberID, kerr.UnknownMemberID))
	}
}

func (g *Group) addMemberAndRebalance(now time.Time, req JoinRequest, id string, cb func(JoinResult)) {
	m := &member{
		id:               id,
		instanceID:       req.InstanceID,
		clientID:         req.ClientID,
		clientHost:       req.ClientHost,
		rebalanceTimeout: req.RebalanceTimeout,
		sessionTimeout:   req.SessionTimeout,
		protocolType:     req.ProtocolType,
		protocols:        req.Protocols,
		isNew:            true,
	}
	if g.state == PreparingRebalance && g.generation == 0 {
		g.newMemberAdded = true
	}
	g.add(m, cb)
	// A new member cannot heartbeat before its join completes, and its
	// client may have given up: bound how long it can hold the
	// rebalance.
	g.scheduleHeartbeat(now, m, newMemberJoinTimeout)
	g.maybePrepareRebalance(now, "adding member "+id)
}

func (g *Group) updateMemberAndRebalance(now time.Time, m *member, req JoinRequest, cb func(JoinResult)) {
	g.updateMember(m, req.Protocols, req.RebalanceTimeout, req.SessionTimeout, cb)
	reason := "member " + m.id + " rejoined"
	if req.Reason != "" {
		reason += ": " + req.Reason
	}
	g.maybePrepareRebalance(now, reason)
}

// replaceStaticMember gives a static member a new member ID. Requests
// parked under the old ID are fenced.
func (g *Group) replaceStaticMember(instanceID, oldID, newID string) *member {
	m := g.members[oldID]
	g.invokeJoin(m, joinError(oldID, kerr.FencedInstanceID))
	g.invokeSync(m, SyncResult{Err: kerr.FencedInstanceID})
	delete(g.members, oldID)
	m.id = newID
	g.members[newID] = m
	if g.leader == oldID {
		g.leader = newID
	}
	g.static[instanceID] = newID
	if g.pendingSync[oldID] {
		delete(g.pendingSync, oldID)
		g.pendingSync[newID] = true
	}
	return m
}

// replaceStaticMemberAndRebalance handles a known static member that
// joins with an unknown member ID: it restarted. KIP-345: in a stable
// group whose protocol would not change, it takes its old place (and
// assignment) without a rebalance.
func (g *Group) replaceStaticMemberAndRebalance(now time.Time, req JoinRequest, oldID, newID string, cb func(JoinResult)) {
	instanceID := *req.InstanceID
	g.log.Info("static member rejoined", "group", g.id, "instance", instanceID, "old_member", oldID, "new_member", newID, "state", g.state)
	currentLeader := g.leader
	m := g.replaceStaticMember(instanceID, oldID, newID)
	oldProtocols, oldRebalance, oldSession := m.protocols, m.rebalanceTimeout, m.sessionTimeout
	oldClientID, oldClientHost := m.clientID, m.clientHost
	g.updateMember(m, req.Protocols, req.RebalanceTimeout, req.SessionTimeout, cb)
	m.clientID, m.clientHost = req.ClientID, req.ClientHost
	g.scheduleHeartbeat(now, m, m.sessionTimeout)

	switch g.state {
	case Stable:
		if g.selectProtocol() != g.protocol {
			g.maybePrepareRebalance(now, "static member "+newID+" rejoined with protocols that change the group's")
			return
		}
		gen := g.generation
		assignment := map[string][]byte{}
		for _, x := range g.order {
			assignment[x.id] = x.assignment
		}
		g.storeGroup(now, assignment, func(now time.Time, err *kerr.Error) {
			switch {
			case err != nil:
				// The new member ID is not durable: restore the
				// old one and fail the join (unless a rebalance
				// answered it meanwhile).
				answer := m.joinCB
				g.updateMember(m, oldProtocols, oldRebalance, oldSession, nil)
				m.clientID, m.clientHost = oldClientID, oldClientHost
				if g.members[newID] == m {
					g.replaceStaticMember(instanceID, newID, oldID)
					g.scheduleHeartbeat(now, m, m.sessionTimeout)
				}
				if answer != nil {
					answer(JoinResult{Err: err, Generation: gen, ProtocolType: g.protocolTypePtr(), Protocol: g.protocolPtr(), Leader: currentLeader})
				}
			case req.SupportsSkipAssignment:
				// v9+: the static leader learns it leads, but must
				// not run the assignor: the group stays as it is.
				isLeader := g.leader == m.id
				r := g.joinResult(m, g.leader, isLeader)
				r.SkipAssignment = isLeader
				g.invokeJoin(m, r)
			default:
				// Older clients: answering with the previous leader
				// ID keeps a restarted leader from assigning, since
				// a stable group would not distribute it.
				g.invokeJoin(m, g.joinResult(m, currentLeader, false))
			}
		})
	case CompletingRebalance:
		// The leader may already be assigning with the old member ID:
		// start over so the assignment names the new one.
		g.prepareRebalance(now, "static member "+newID+" replaced "+oldID+" during the assignment")
	case PreparingRebalance:
		// The member now awaits the join like the others.
	}
}

// ---- rebalance

func (g *Group) canRebalance() bool {
	return g.state == Stable || g.state == CompletingRebalance || g.state == Empty
}

func (g *Group) maybePrepareRebalance(now time.Time, reason string) {
	if g.canRebalance() {
		g.prepareRebalance(now, reason)
	}
}

func (g *Group) prepareRebalance(now time.Time, reason string) {
	g.log.Info("preparing to rebalance group", "group", g.id, "state", g.state, "generation", g.generation, "reason", reason)
	if g.state == CompletingRebalance {
		g.resetAndPropagateAssignmentError(now, kerr.RebalanceInProgress)
	}
	g.syncDeadline = time.Time{}
	if g.state == Empty {
		// group.initial.rebalance.delay.ms: let more members arrive
		// before the first generation, so a starting application does
		// not rebalance once per instance.
		delay := g.cfg.InitialRebalanceDelay
		g.joinDeadline = now.Add(delay)
		g.initialDelay = true
		g.initialRemaining = max(g.rebalanceTimeout()-delay, 0)
	} else {
		g.joinDeadline = now.Add(g.rebalanceTimeout())
		g.initialDelay = false
	}
	g.transition(now, PreparingRebalance)
	// Complete at once if everyone is already in (no members left, or
	// all of them awaiting join), as Kafka's DelayedJoin does.
	g.tryCompleteJoin(now)
}

func (g *Group) hasAllMembersJoined() bool {
	return len(g.members) == g.numAwaitingJoin && len(g.pending) == 0
}

func (g *Group) tryCompleteJoin(now time.Time) {
	if g.state == PreparingRebalance && !g.initialDelay && g.hasAllMembersJoined() {
		g.completeJoin(now)
	}
}

// joinExpired fires the join deadline.
func (g *Group) joinExpired(now time.Time) {
	if g.initialDelay && g.newMemberAdded && g.initialRemaining > 0 {
		g.newMemberAdded = false
		d := min(g.cfg.InitialRebalanceDelay, g.initialRemaining)
		g.initialRemaining -= d
		g.joinDeadline = now.Add(d)
		return
	}
	g.completeJoin(now)
}

// completeJoin ends PreparingRebalance: dynamic members that did not
// rejoin are dropped, the generation advances and every joined member
// gets its JoinGroup response, the leader with the member list.
func (g *Group) completeJoin(now time.Time) {
	g.joinDeadline = time.Time{}
	g.initialDelay = false
	for _, m := range slices.Clone(g.order) {
		if m.joinCB == nil && m.instanceID == nil {
			g.log.Info("removing member that did not rejoin in time", "group", g.id, "member", m.id)
			g.remove(m.id)
		}
	}
	if !g.electJoinedLeader() && len(g.members) > 0 {
		// Only static members that have not rejoined remain: wait
		// another rebalance timeout for them (or their expiry).
		g.joinDeadline = now.Add(g.rebalanceTimeout())
		return
	}
	g.initNextGeneration(now)
	if g.state == Empty {
		g.log.Info("group is empty", "group", g.id, "generation", g.generation)
		g.storeGroup(now, nil, func(time.Time, *kerr.Error) {})
		return
	}
	g.log.Info("stabilized group", "group", g.id, "generation", g.generation, "protocol", g.protocol, "members", len(g.order), "leader", g.leader)
	for _, m := range g.order {
		g.invokeJoin(m, g.joinResult(m, g.leader, m.id == g.leader))
		g.scheduleHeartbeat(now, m, m.sessionTimeout)
		m.isNew = false
		g.pendingSync[m.id] = true
	}
	g.syncDeadline = now.Add(g.rebalanceTimeout())
}

// electJoinedLeader keeps the leader if it rejoined, else picks the
// first member that did. False when no member rejoined.
func (g *Group) electJoinedLeader() bool {
	if g.leader == "" {
		return false
	}
	if g.members[g.leader].joinCB != nil {
		return true
	}
	for _, m := range g.order {
		if m.joinCB != nil {
			g.leader = m.id
			return true
		}
	}
	return false
}

func (g *Group) initNextGeneration(now time.Time) {
	g.generation++
	if len(g.members) > 0 {
		g.protocol, g.hasProtocol = g.selectProtocol(), true
		g.computeSubscribed()
		g.transition(now, CompletingRebalance)
	} else {
		g.protocol, g.hasProtocol = "", false
		g.computeSubscribed()
		g.transition(now, Empty)
	}
	clear(g.pendingSync)
	g.syncDeadline = time.Time{}
}

// computeSubscribed derives the subscribed topics of a consumer group
// from its members' metadata (ConsumerProtocolSubscription); offsets of
// other topics may expire while the group is active.
func (g *Group) computeSubscribed() {
	g.subscribed, g.subscribedKnown = nil, false
	if !g.hasProtocolType || g.protocolType != ConsumerProtocolType {
		return
	}
	topics := map[string]bool{}
	if len(g.members) > 0 {
		if !g.hasProtocol {
			return
		}
		for _, m := range g.order {
			ts, ok := subscriptionTopics(m.metadata(g.protocol))
			if !ok {
				return
			}
			for _, t := range ts {
				topics[t] = true
			}
		}
	}
	g.subscribed, g.subscribedKnown = topics, true
}

// subscriptionTopics reads the topics of a ConsumerProtocolSubscription
// (any version: version int16, then the topic array that every version
// starts with).
func subscriptionTopics(b []byte) ([]string, bool) {
	if len(b) < 6 {
		return nil, false
	}
	n := int32(binary.BigEndian.Uint32(b[2:]))
	b = b[6:]
	if n < 0 || int(n) > len(b)/2 {
		return nil, false
	}
	topics := make([]string, 0, n)
	for range n {
		if len(b) < 2 {
			return nil, false
		}
		l := int(int16(binary.BigEndian.Uint16(b)))
		if l < 0 || len(b) < 2+l {
			return nil, false
		}
		topics = append(topics, string(b[2:2+l]))
		b = b[2+l:]
	}
	return topics, true
}

// isSubscribedTo reports whether the group's members subscribe to
// topic, as Kafka's ClassicGroup.isSubscribedToTopic: while the
// subscriptions are unknown (a consumer group before its first
// generation, or members whose metadata cannot be parsed), a consumer
// group counts as subscribed to every topic, so its offsets are kept.
func (g *Group) isSubscribedTo(topic string) bool {
	if g.consumer != nil {
		return g.consumerSubscribed(topic)
	}
	if !g.subscribedKnown {
		return g.hasProtocolType && g.protocolType == ConsumerProtocolType
	}
	return g.subscribed[topic]
}

// resetAndPropagateAssignmentError clears assignments and fails parked
// SyncGroups, as a new rebalance or a failed write does.
func (g *Group) resetAndPropagateAssignmentError(now time.Time, err *kerr.Error) {
	for _, m := range g.order {
		m.assignment = nil
	}
	g.propagateAssignment(now, err)
}

func (g *Group) setAndPropagateAssignment(now time.Time, assignment map[string][]byte) {
	for _, m := range g.order {
		m.assignment = assignment[m.id]
	}
	g.propagateAssignment(now, nil)
}

func (g *Group) propagateAssignment(now time.Time, err *kerr.Error) {
	for _, m := range g.order {
		r := SyncResult{Err: err}
		if err == nil {
			r.ProtocolType, r.Protocol, r.Assignment = g.protocolTypePtr(), g.protocolPtr(), m.assignment
		}
		if g.invokeSync(m, r) {
			// A session that expired while the member waited for
			// the leader was ignored: restart it now.
			g.scheduleHeartbeat(now, m, m.sessionTimeout)
		}
	}
}

// removeMemberAndUpdateGroup removes a member that left or expired and
// rebalances the rest.
func (g *Group) removeMemberAndUpdateGroup(now time.Time, m *member, reason string) {
	g.log.Info("removing member", "group", g.id, "member", m.id, "reason", reason)
	// A member can expire with its JoinGroup parked (new members):
	// UNKNOWN_MEMBER_ID makes a live client join again.
	g.invokeJoin(m, joinError("", kerr.UnknownMemberID))
	g.invokeSync(m, SyncResult{Err: kerr.UnknownMemberID})
	g.remove(m.id)
	switch g.state {
	case Stable, CompletingRebalance:
		g.maybePrepareRebalance(now, "removing member "+m.id+": "+reason)
	case PreparingRebalance:
		g.tryCompleteJoin(now)
	}
}

// ---- SyncGroup

// Sync handles a SyncGroup. cb is called once: at once, or when the
// leader's assignment is durable.
func (g *Group) Sync(now time.Time, req SyncRequest, cb func(SyncResult)) {
	if g.state == Dead {
		cb(SyncResult{Err: kerr.CoordinatorNotAvailable})
		return
	}
	if g.consumer != nil {
		cb(SyncResult{Err: kerr.GroupIDNotFound})
		return
	}
	m, err := g.validateMember(req.MemberID, req.InstanceID)
	switch {
	case err != nil:
	case req.Generation != g.generation:
		err = kerr.IllegalGeneration
	case req.ProtocolType != nil && (!g.hasProtocolType || *req.ProtocolType != g.protocolType):
		err = kerr.InconsistentGroupProtocol
	case req.Protocol != nil && (!g.hasProtocol || *req.Protocol != g.protocol):
		err = kerr.InconsistentGroupProtocol
	}
	if err != nil {
		cb(SyncResult{Err: err})
		return
	}
	switch g.state {
	case Empty:
		cb(SyncResult{Err: kerr.UnknownMemberID})
	case PreparingRebalance:
		cb(SyncResult{Err: kerr.RebalanceInProgress})
	case CompletingRebalance:
		if old := m.syncCB; old != nil {
			// A retry from a client that gave up on the first.
			m.syncCB = nil
			old(SyncResult{Err: kerr.RebalanceInProgress})
		}
		m.syncCB = cb
		g.removePendingSync(m.id)
		if m.id != g.leader {
			return
		}
		// Members the leader left out get an empty assignment.
		assignment := make(map[string][]byte, len(g.order))
		for _, x := range g.order {
			assignment[x.id] = req.Assignments[x.id]
		}
		gen := g.generation
		g.storeGroup(now, assignment, func(now time.Time, err *kerr.Error) {
			// Another member may have joined while the write was in
			// flight: act only on the generation it was for.
			if g.state != CompletingRebalance || g.generation != gen {
				return
			}
			if err != nil {
				g.resetAndPropagateAssignmentError(now, err)
				g.maybePrepareRebalance(now, "storing the assignment failed: "+err.Message)
				return
			}
			g.setAndPropagateAssignment(now, assignment)
			g.transition(now, Stable)
		})
	case Stable:
		g.removePendingSync(m.id)
		cb(SyncResult{ProtocolType: g.protocolTypePtr(), Protocol: g.protocolPtr(), Assignment: m.assignment})
		g.scheduleHeartbeat(now, m, m.sessionTimeout)
	}
}

// ---- Heartbeat and LeaveGroup

// Heartbeat handles a Heartbeat.
func (g *Group) Heartbeat(now time.Time, req HeartbeatRequest) *kerr.Error {
	if g.state == Dead {
		return kerr.CoordinatorNotAvailable
	}
	if g.consumer != nil {
		return kerr.GroupIDNotFound
	}
	m, err := g.validateMember(req.MemberID, req.InstanceID)
	if err != nil {
		return err
	}
	if req.Generation != g.generation {
		return kerr.IllegalGeneration
	}
	switch g.state {
	case CompletingRebalance, Stable:
		// Heartbeats may start right after the JoinGroup response,
		// before the assignment arrives.
		g.scheduleHeartbeat(now, m, m.sessionTimeout)
		return nil
	case PreparingRebalance:
		g.scheduleHeartbeat(now, m, m.sessionTimeout)
		return kerr.RebalanceInProgress
	default:
		return kerr.UnknownMemberID
	}
}

// Leave handles a LeaveGroup.
func (g *Group) Leave(now time.Time, members []LeaveMember) LeaveResult {
	if g.state == Dead {
		return LeaveResult{Err: kerr.CoordinatorNotAvailable}
	}
	if g.consumer != nil {
		return LeaveResult{Err: kerr.GroupIDNotFound}
	}
	res := LeaveResult{Members: make([]*kerr.Error, len(members))}
	for i, lm := range members {
		res.Members[i] = g.leaveOne(now, lm)
	}
	return res
}

func (g *Group) leaveOne(now time.Time, lm LeaveMember) *kerr.Error {
	id := lm.MemberID
	if lm.InstanceID != nil {
		// v3+: a static member may leave by instance ID alone (an
		// admin removing it); with both, they must match.
		existing, ok := g.static[*lm.InstanceID]
		switch {
		case !ok:
			return kerr.UnknownMemberID
		case id != "" && existing != id:
			return kerr.FencedInstanceID
		}
		id = existing
	}
	if _, ok := g.pending[id]; ok {
		delete(g.pending, id)
		g.tryCompleteJoin(now)
		return nil
	}
	m := g.members[id]
	if m == nil {
		return kerr.UnknownMemberID
	}
	reason := "left the group"
	if lm.Reason != "" {
		reason += ": " + lm.Reason
	}
	g.removeMemberAndUpdateGroup(now, m, reason)
	return nil
}

// ---- timers

// Deadline returns when Tick must next run; zero if nothing is
// scheduled.
func (g *Group) Deadline() time.Time {
	var d time.Time
	earliest := func(t time.Time) {
		if !t.IsZero() && (d.IsZero() || t.Before(d)) {
			d = t
		}
	}
	for _, m := range g.order {
		earliest(m.heartbeatDeadline)
	}
	for _, t := range g.pending {
		earliest(t)
	}
	earliest(g.joinDeadline)
	earliest(g.syncDeadline)
	earliest(g.consumerDeadline())
	return d
}

// Tick fires every deadline that has passed by now, earliest first.
func (g *Group) Tick(now time.Time) {
	for {
		d := g.Deadline()
		if d.IsZero() || d.After(now) {
			return
		}
		g.fire(now, d)
	}
}

// fire runs the timer due at d (the earliest), in a fixed order among
// timers due at the same instant: join, sync, pending members, members.
func (g *Group) fire(now, d time.Time) {
	switch {
	case g.joinDeadline.Equal(d):
		g.joinDeadline = time.Time{}
		if g.state == PreparingRebalance {
			g.joinExpired(now)
		}
		return
	case g.syncDeadline.Equal(d):
		g.syncDeadline = time.Time{}
		g.syncExpired(now)
		return
	case g.fireConsumer(now, d):
		return
	}
	var ids []string
	for id, t := range g.pending {
		if t.Equal(d) {
			ids = append(ids, id)
		}
	}
	if len(ids) > 0 {
		slices.Sort(ids)
		for _, id := range ids {
			delete(g.pending, id)
		}
		g.tryCompleteJoin(now)
		return
	}
	for _, m := range g.order {
		if m.heartbeatDeadline.Equal(d) {
			m.heartbeatDeadline = time.Time{}
			if !m.hasSatisfiedHeartbeat() {
				reason := "session timeout expired"
				if m.isNew {
					reason = "new member did not complete its join in time"
				}
				g.removeMemberAndUpdateGroup(now, m, reason)
			}
			return
		}
	}
}

// syncExpired drops the members that joined but did not sync within the
// rebalance timeout, and rebalances.
func (g *Group) syncExpired(now time.Time) {
	if g.state != CompletingRebalance && g.state != Stable || len(g.pendingSync) == 0 {
		return
	}
	var ids []string
	for _, m := range slices.Clone(g.order) {
		if g.pendingSync[m.id] {
			ids = append(ids, m.id)
			g.invokeJoin(m, joinError("", kerr.UnknownMemberID))
			g.remove(m.id)
		}
	}
	g.prepareRebalance(now, fmt.Sprintf("members %v did not send SyncGroup in time", ids))
}

// ---- persistence

// storeGroup writes the group's metadata with the given assignment and
// calls done with the write's outcome, mapped as Kafka maps append
// errors for group metadata.
func (g *Group) storeGroup(now time.Time, assignment map[string][]byte, done func(now time.Time, err *kerr.Error)) {
	rec := groupRecord(g.id, g.metadataValue(now, assignment))
	g.append([]Record{rec}, func(now time.Time, err error) {
		done(now, storeGroupError(err))
	})
}

func (g *Group) metadataValue(now time.Time, assignment map[string][]byte) *kmsg.GroupMetadataValue {
	v := kmsg.NewGroupMetadataValue()
	v.Version = groupValueVersion
	v.ProtocolType = g.protocolType
	v.Generation = g.generation
	v.Protocol = g.protocolPtr()
	if g.leader != "" {
		l := g.leader
		v.Leader = &l
	}
	v.CurrentStateTimestamp = -1
	if !g.stateTime.IsZero() {
		v.CurrentStateTimestamp = g.stateTime.UnixMilli()
	}
	for _, m := range g.order {
		mv := kmsg.NewGroupMetadataValueMember()
		mv.MemberID = m.id
		mv.InstanceID = m.instanceID
		mv.ClientID = m.clientID
		mv.ClientHost = m.clientHost
		mv.RebalanceTimeoutMillis = int32(m.rebalanceTimeout.Milliseconds())
		mv.SessionTimeoutMillis = int32(m.sessionTimeout.Milliseconds())
		mv.Subscription = m.metadata(g.protocol)
		if mv.Subscription == nil {
			mv.Subscription = []byte{}
		}
		mv.Assignment = assignment[m.id]
		if mv.Assignment == nil {
			mv.Assignment = []byte{}
		}
		v.Members = append(v.Members, mv)
	}
	return &v
}

// append starts a write; its completion runs after those of earlier
// writes, whatever order the log reports them in.
func (g *Group) append(recs []Record, done func(now time.Time, err error)) {
	g.appendWith(-1, -1, recs, done)
}

// appendWith is append, in a transactional batch of the producer when
// producerID >= 0.
func (g *Group) appendWith(producerID int64, epoch int16, recs []Record, done func(now time.Time, err error)) {
	w := &write{done: done}
	g.writes = append(g.writes, w)
	complete := func(now time.Time, err error) {
		w.finished, w.err = true, err
		for len(g.writes) > 0 && g.writes[0].finished {
			head := g.writes[0]
			g.writes = g.writes[1:]
			head.done(now, head.err)
		}
	}
	if producerID >= 0 {
		g.h.appendTxn(producerID, epoch, recs, complete)
		return
	}
	g.h.append(recs, complete)
}

// storeGroupError maps a failed group metadata write as Kafka's
// GroupMetadataManager.storeGroup does.
func storeGroupError(err error) *kerr.Error {
	if err == nil {
		return nil
	}
	switch ke := asKafkaError(err); ke {
	case kerr.UnknownTopicOrPartition, kerr.NotEnoughReplicas, kerr.NotEnoughReplicasAfterAppend, kerr.RequestTimedOut:
		return kerr.CoordinatorNotAvailable
	case kerr.NotLeaderForPartition, kerr.KafkaStorageError:
		return kerr.NotCoordinator
	case kerr.MessageTooLarge, kerr.RecordListTooLarge, kerr.InvalidFetchSize:
		return kerr.UnknownServerError
	case nil:
		return kerr.UnknownServerError
	default:
		return ke
	}
}

// ---- loading

// loadMetadata restores the group from its latest metadata record. A
// group with members is Stable: its members keep their generation and
// assignment, and must heartbeat within their session timeout.
func (g *Group) loadMetadata(v *kmsg.GroupMetadataValue) {
	g.protocolType, g.hasProtocolType = v.ProtocolType, true
	g.generation = v.Generation
	g.protocol, g.hasProtocol = "", false
	if v.Protocol != nil {
		g.protocol, g.hasProtocol = *v.Protocol, true
	}
	g.leader = ""
	if v.Leader != nil {
		g.leader = *v.Leader
	}
	g.stateTime = time.Time{}
	if v.CurrentStateTimestamp >= 0 {
		g.stateTime = time.UnixMilli(v.CurrentStateTimestamp)
	}
	g.members = map[string]*member{}
	g.order = nil
	g.static = map[string]string{}
	for _, mv := range v.Members {
		m := &member{
			id:               mv.MemberID,
			instanceID:       mv.InstanceID,
			clientID:         mv.ClientID,
			clientHost:       mv.ClientHost,
			rebalanceTimeout: time.Duration(mv.RebalanceTimeoutMillis) * time.Millisecond,
			sessionTimeout:   time.Duration(mv.SessionTimeoutMillis) * time.Millisecond,
			protocolType:     v.ProtocolType,
			protocols:        []Protocol{{Name: g.protocol, Metadata: mv.Subscription}},
			assignment:       mv.Assignment,
		}
		if mv.RebalanceTimeoutMillis < 0 {
			m.rebalanceTimeout = m.sessionTimeout
		}
		g.members[m.id] = m
		g.order = append(g.order, m)
		if m.instanceID != nil {
			g.static[*m.instanceID] = m.id
		}
	}
	if len(g.members) > 0 && g.members[g.leader] == nil {
		g.leader = g.order[0].id
	}
	g.state = Empty
	if len(g.members) > 0 {
		g.state = Stable
	}
	g.computeSubscribed()
}

// loaded finishes loading: members' sessions start now, and a group
// larger than group.max.size rebalances to shed members.
func (g *Group) loaded(now time.Time) {
	if g.consumer != nil {
		g.loadedConsumer(now)
		return
	}
	for _, m := range g.order {
		g.scheduleHeartbeat(now, m, m.sessionTimeout)
	}
	if len(g.members) > g.cfg.MaxSize {
		g.prepareRebalance(now, "the group is larger than group.max.size")
	}
}

// Describe handles one group of DescribeGroups. Member metadata and
// assignments are shown in the Stable state only, as Kafka does.
func (g *Group) Describe() DescribedGroup {
	d := DescribedGroup{State: g.state, ProtocolType: g.protocolType}
	if g.state == Dead {
		d.ProtocolType = ""
		return d
	}
	if g.consumer != nil {
		return g.describeAsClassic()
	}
	stable := g.state == Stable
	if stable {
		d.Protocol = g.protocol
	}
	for _, m := range g.order {
		dm := DescribedMember{MemberID: m.id, InstanceID: m.instanceID, ClientID: m.clientID, ClientHost: m.clientHost}
		if stable {
			dm.Metadata, dm.Assignment = m.metadata(g.protocol), m.assignment
		}
		d.Members = append(d.Members, dm)
	}
	return d
}

// asKafkaError extracts a Kafka error from err; nil if there is none.
func asKafkaError(err error) *kerr.Error {
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke
	}
	return nil
}
