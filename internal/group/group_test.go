package group

import (
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestScripts runs the group state machine scripts in testdata/group.
//
// Commands (durations like 3s; see each script for examples):
//
//	config initial-delay= min-session= max-session= max-size= retention=
//	join tag= [member=] [instance=] [client=] [type=] [protocols=range(t1;t2),rr] [session=] [rebalance=] [v=]
//	sync tag= member= gen= [instance=] [assign=id:data,id:data]
//	heartbeat member= gen= [instance=]
//	leave [m=id] [m=id@instance] [m=@instance] ...
//	commit tag= [member=] [gen=] [instance=] [retention=] offsets=t:0@5[:meta],...
//	fetch [topics=t:0.1,u:2] [stable]
//	describe | delete tag= | delete-offsets tag= topics=t:0.1 | expire
//	delete-topics t,u     the topics were deleted
//	tick [duration]       advance the clock (default: to the next deadline)
//	persist [n=] [err=]   complete appends in flight (default all)
//	reload                rebuild the group from the records persisted so far
//	state
func TestScripts(t *testing.T) {
	runScripts(t, "group", func(t *testing.T) func(c *scriptCmd) string {
		h := newHarness(t)
		return h.run
	})
}

var scriptStart = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

type pendingAppend struct {
	n        int
	recs     []Record
	complete func(now time.Time, err error)
}

type harness struct {
	t   *testing.T
	cfg Config
	now time.Time
	g   *Group
	out *strings.Builder
	ids map[string]int
	// appends are in flight, oldest first; log holds the persisted
	// records.
	appends   []pendingAppend
	nAppends  int
	log       []Record
	lastState string
	// topics is the cluster's topics for consumer group heartbeats
	// (consumer_script_test.go).
	topics fakeTopics
}

func newHarness(t *testing.T) *harness {
	h := &harness{t: t, now: scriptStart, out: &strings.Builder{}, ids: map[string]int{}}
	h.cfg = DefaultConfig()
	h.g = newGroup("g", &h.cfg, h, slog.New(slog.DiscardHandler))
	return h
}

func (h *harness) append(recs []Record, complete func(now time.Time, err error)) {
	h.nAppends++
	h.appends = append(h.appends, pendingAppend{n: h.nAppends, recs: recs, complete: complete})
	fmt.Fprintf(h.out, "append #%d:\n", h.nAppends)
	for _, r := range recs {
		fmt.Fprintf(h.out, "  %s\n", describeRecord(r))
	}
}

func (h *harness) appendTxn(producerID int64, epoch int16, recs []Record, complete func(now time.Time, err error)) {
	fmt.Fprintf(h.out, "transactional (producer %d epoch %d) ", producerID, epoch)
	h.append(recs, complete)
}

func (h *harness) newMemberID(clientID string, instanceID *string) string {
	prefix := clientID
	if instanceID != nil {
		prefix = *instanceID
	}
	h.ids[prefix]++
	return fmt.Sprintf("%s-%d", prefix, h.ids[prefix])
}

func errName(err *kerr.Error) string {
	if err == nil {
		return "ok"
	}
	return err.Message
}

func describeRecord(r Record) string {
	d, ok, err := decodeRecord(r.Key, r.Value)
	switch {
	case err != nil:
		return "malformed: " + err.Error()
	case !ok:
		return "unknown key version"
	case d.isConsumer:
		return describeConsumerRecord(d)
	case d.isOffset && d.offset == nil:
		return fmt.Sprintf("offset %s:%d tombstone", d.topic, d.partition)
	case d.isOffset:
		o := d.offset
		s := fmt.Sprintf("offset %s:%d=%d epoch=%d meta=%q", d.topic, d.partition, o.Offset, o.LeaderEpoch, o.Metadata)
		if o.ExpireTimestamp >= 0 {
			s += fmt.Sprintf(" expire=+%s", time.UnixMilli(o.ExpireTimestamp).Sub(scriptStart))
		}
		return s
	case d.meta == nil:
		return "group tombstone"
	}
	v := d.meta
	s := fmt.Sprintf("group type=%q gen=%d proto=%s leader=%s members=[", v.ProtocolType, v.Generation, strPtr(v.Protocol), strPtr(v.Leader))
	for i, m := range v.Members {
		if i > 0 {
			s += " "
		}
		s += m.MemberID
		if m.InstanceID != nil {
			s += "@" + *m.InstanceID
		}
		s += fmt.Sprintf("(%s)=%q", describeMetadata(m.Subscription), m.Assignment)
	}
	return s + "]"
}

func strPtr(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

func describeMetadata(b []byte) string {
	if ts, ok := subscriptionTopics(b); ok {
		return strings.Join(ts, ";")
	}
	return string(b)
}

func (h *harness) dur(c *scriptCmd, key string, def time.Duration) time.Duration {
	v, ok := c.get(key)
	if !ok {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		h.t.Fatalf("line %d: %s: %v", c.line, key, err)
	}
	return d
}

func (h *harness) int(c *scriptCmd, key string, def int) int {
	v, ok := c.get(key)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		h.t.Fatalf("line %d: %s: %v", c.line, key, err)
	}
	return n
}

func optPtr(c *scriptCmd, key string) *string {
	if v, ok := c.get(key); ok {
		return &v
	}
	return nil
}

// protocols parses range(t1;t2),rr: with type consumer the metadata is
// a ConsumerMemberMetadata with those topics; otherwise the text in
// parentheses.
func protocols(spec, ptype string) []Protocol {
	var out []Protocol
	for _, p := range strings.Split(spec, ",") {
		name, rest, _ := strings.Cut(p, "(")
		rest = strings.TrimSuffix(rest, ")")
		var meta []byte
		if ptype == ConsumerProtocolType {
			m := kmsg.NewConsumerMemberMetadata()
			if rest != "" {
				m.Topics = strings.Split(rest, ";")
			}
			meta = m.AppendTo(nil)
		} else {
			meta = []byte(rest)
		}
		out = append(out, Protocol{Name: name, Metadata: meta})
	}
	return out
}

func (h *harness) joinCB(tag string) func(JoinResult) {
	return func(r JoinResult) {
		fmt.Fprintf(h.out, "%s: join %s member=%s gen=%d", tag, errName(r.Err), r.MemberID, r.Generation)
		if r.Err == nil {
			fmt.Fprintf(h.out, " proto=%s leader=%s", strPtr(r.Protocol), r.Leader)
			if r.SkipAssignment {
				h.out.WriteString(" skip-assignment")
			}
			if r.Members != nil {
				h.out.WriteString(" members=[")
				for i, m := range r.Members {
					if i > 0 {
						h.out.WriteString(" ")
					}
					h.out.WriteString(m.MemberID)
					if m.InstanceID != nil {
						h.out.WriteString("@" + *m.InstanceID)
					}
					fmt.Fprintf(h.out, "(%s)", describeMetadata(m.Metadata))
				}
				h.out.WriteString("]")
			}
		}
		h.out.WriteString("\n")
	}
}

func (h *harness) run(c *scriptCmd) string {
	h.out.Reset()
	g := h.g
	switch c.name {
	case "config":
		h.cfg.InitialRebalanceDelay = h.dur(c, "initial-delay", h.cfg.InitialRebalanceDelay)
		h.cfg.MinSessionTimeout = h.dur(c, "min-session", h.cfg.MinSessionTimeout)
		h.cfg.MaxSessionTimeout = h.dur(c, "max-session", h.cfg.MaxSessionTimeout)
		h.cfg.MaxSize = h.int(c, "max-size", h.cfg.MaxSize)
		h.cfg.OffsetsRetention = h.dur(c, "retention", h.cfg.OffsetsRetention)
		h.cfg.OffsetMetadataMaxBytes = h.int(c, "metadata-max", h.cfg.OffsetMetadataMaxBytes)

	case "join":
		tag, _ := c.get("tag")
		ptype, ok := c.get("type")
		if !ok {
			ptype = ConsumerProtocolType
		}
		spec, ok := c.get("protocols")
		if !ok {
			spec = "range(t)"
		}
		member, _ := c.get("member")
		client, ok := c.get("client")
		if !ok {
			client = tag
		}
		v := h.int(c, "v", 9)
		req := JoinRequest{
			MemberID:               member,
			InstanceID:             optPtr(c, "instance"),
			ClientID:               client,
			ClientHost:             "/127.0.0.1",
			ProtocolType:           ptype,
			SessionTimeout:         h.dur(c, "session", 10*time.Second),
			RebalanceTimeout:       h.dur(c, "rebalance", 30*time.Second),
			RequireKnownMemberID:   v >= 4,
			SupportsSkipAssignment: v >= 9,
		}
		if spec != "" {
			req.Protocols = protocols(spec, ptype)
		}
		g.Join(h.now, req, h.joinCB(tag))

	case "sync":
		tag, _ := c.get("tag")
		member, _ := c.get("member")
		req := SyncRequest{MemberID: member, InstanceID: optPtr(c, "instance"), Generation: int32(h.int(c, "gen", 0))}
		if spec, ok := c.get("assign"); ok {
			req.Assignments = map[string][]byte{}
			for _, a := range strings.Split(spec, ",") {
				id, data, _ := strings.Cut(a, ":")
				req.Assignments[id] = []byte(data)
			}
		}
		if p, ok := c.get("proto"); ok {
			req.Protocol = &p
		}
		g.Sync(h.now, req, func(r SyncResult) {
			fmt.Fprintf(h.out, "%s: sync %s", tag, errName(r.Err))
			if r.Err == nil {
				fmt.Fprintf(h.out, " proto=%s assignment=%q", strPtr(r.Protocol), r.Assignment)
			}
			h.out.WriteString("\n")
		})

	case "heartbeat":
		member, _ := c.get("member")
		err := g.Heartbeat(h.now, HeartbeatRequest{MemberID: member, InstanceID: optPtr(c, "instance"), Generation: int32(h.int(c, "gen", 0))})
		fmt.Fprintf(h.out, "heartbeat %s\n", errName(err))

	case "leave":
		var ms []LeaveMember
		for _, spec := range c.all("m") {
			id, inst, hasInst := strings.Cut(spec, "@")
			lm := LeaveMember{MemberID: id}
			if hasInst {
				lm.InstanceID = &inst
			}
			ms = append(ms, lm)
		}
		r := g.Leave(h.now, ms)
		if r.Err != nil {
			fmt.Fprintf(h.out, "leave %s\n", errName(r.Err))
		}
		for i, e := range r.Members {
			fmt.Fprintf(h.out, "leave %s: %s\n", c.all("m")[i], errName(e))
		}

	case "commit":
		tag, _ := c.get("tag")
		member, _ := c.get("member")
		req := CommitRequest{
			MemberID:      member,
			InstanceID:    optPtr(c, "instance"),
			Generation:    int32(h.int(c, "gen", -1)),
			RetentionTime: h.dur(c, "retention", -1),
		}
		spec, _ := c.get("offsets")
		var names []string
		for _, o := range strings.Split(spec, ",") {
			topic, rest, _ := strings.Cut(o, ":")
			part, rest, _ := strings.Cut(rest, "@")
			off, meta, _ := strings.Cut(rest, ":")
			p, _ := strconv.Atoi(part)
			n, _ := strconv.ParseInt(off, 10, 64)
			if meta == "big" {
				meta = strings.Repeat("x", h.cfg.OffsetMetadataMaxBytes+1)
			}
			req.Topics = append(req.Topics, CommitTopic{Topic: topic, Partitions: []CommitPartition{{Partition: int32(p), Offset: n, LeaderEpoch: 3, Metadata: meta}}})
			names = append(names, topic+":"+part)
		}
		g.Commit(h.now, req, func(r CommitResult) {
			fmt.Fprintf(h.out, "%s: commit", tag)
			for i, errs := range r.Topics {
				fmt.Fprintf(h.out, " %s=%s", names[i], errName(errs[0]))
			}
			h.out.WriteString("\n")
		})

	case "fetch":
		req := FetchRequest{}
		_, req.RequireStable = c.get("stable")
		if spec, ok := c.get("topics"); ok {
			req.Topics = []FetchTopic{}
			for _, t := range strings.Split(spec, ",") {
				topic, parts, _ := strings.Cut(t, ":")
				ft := FetchTopic{Topic: topic}
				for _, p := range strings.Split(parts, ".") {
					n, _ := strconv.Atoi(p)
					ft.Partitions = append(ft.Partitions, int32(n))
				}
				req.Topics = append(req.Topics, ft)
			}
		}
		r := g.Fetch(req)
		if len(r.Topics) == 0 {
			h.out.WriteString("no offsets\n")
		}
		for _, t := range r.Topics {
			for _, p := range t.Partitions {
				fmt.Fprintf(h.out, "%s:%d=%d epoch=%d meta=%q %s\n", t.Topic, p.Partition, p.Offset, p.LeaderEpoch, p.Metadata, errName(p.Err))
			}
		}

	case "describe":
		d := g.Describe()
		fmt.Fprintf(h.out, "%s type=%q proto=%q\n", d.State, d.ProtocolType, d.Protocol)
		for _, m := range d.Members {
			inst := ""
			if m.InstanceID != nil {
				inst = "@" + *m.InstanceID
			}
			fmt.Fprintf(h.out, "  %s%s client=%s meta=(%s) assignment=%q\n", m.MemberID, inst, m.ClientID, describeMetadata(m.Metadata), m.Assignment)
		}

	case "delete":
		tag, _ := c.get("tag")
		g.Delete(h.now, func(err *kerr.Error) { fmt.Fprintf(h.out, "%s: delete %s\n", tag, errName(err)) })

	case "delete-offsets":
		tag, _ := c.get("tag")
		spec, _ := c.get("topics")
		var topics []OffsetDeleteTopic
		for _, t := range strings.Split(spec, ",") {
			topic, parts, _ := strings.Cut(t, ":")
			dt := OffsetDeleteTopic{Topic: topic}
			for _, p := range strings.Split(parts, ".") {
				n, _ := strconv.Atoi(p)
				dt.Partitions = append(dt.Partitions, int32(n))
			}
			topics = append(topics, dt)
		}
		g.DeleteOffsets(h.now, topics, func(r OffsetDeleteResult) {
			fmt.Fprintf(h.out, "%s: delete-offsets %s", tag, errName(r.Err))
			for i, errs := range r.Topics {
				for j, e := range errs {
					fmt.Fprintf(h.out, " %s:%d=%s", topics[i].Topic, topics[i].Partitions[j], errName(e))
				}
			}
			h.out.WriteString("\n")
		})

	case "delete-topics":
		g.DeleteTopicOffsets(h.now, strings.Split(c.args[0].key, ","))

	case "expire":
		dead := g.ExpireOffsets(h.now)
		fmt.Fprintf(h.out, "expire: dead=%v\n", dead)

	case "tick":
		target := time.Time{}
		if len(c.args) > 0 {
			d, err := time.ParseDuration(c.args[0].key)
			if err != nil {
				h.t.Fatalf("line %d: %v", c.line, err)
			}
			target = h.now.Add(d)
		} else if target = g.Deadline(); target.IsZero() {
			h.out.WriteString("no deadline\n")
			break
		}
		// Fire deadlines one by one at their own time, as timers
		// would, then reach the target.
		for {
			d := g.Deadline()
			if d.IsZero() || d.After(target) {
				break
			}
			h.now = maxTime(h.now, d)
			g.Tick(h.now)
		}
		h.now = maxTime(h.now, target)
		fmt.Fprintf(h.out, "t=%s\n", h.now.Sub(scriptStart))

	case "persist":
		n := h.int(c, "n", len(h.appends))
		var err error
		if e, ok := c.get("err"); ok {
			code := slices.IndexFunc(allErrors, func(k *kerr.Error) bool { return k.Message == e })
			if code < 0 {
				h.t.Fatalf("line %d: unknown error %s", c.line, e)
			}
			err = allErrors[code]
		}
		if e, ok := c.get("order"); ok && e == "reverse" {
			slices.Reverse(h.appends[:n])
		}
		done := h.appends[:n]
		h.appends = slices.Clone(h.appends[n:])
		for _, a := range done {
			if err == nil {
				h.log = append(h.log, a.recs...)
			}
			fmt.Fprintf(h.out, "persisted #%d %s\n", a.n, errName(asKafkaError(err)))
			a.complete(h.now, err)
		}

	case "reload":
		// Like a crash: appends in flight are lost.
		h.appends = nil
		ld := newLoader(slog.New(slog.DiscardHandler))
		for i, r := range h.log {
			ld.apply(int64(i), r.Key, r.Value)
		}
		gs := ld.groups(h.now, &h.cfg)
		if h.g = gs["g"]; h.g == nil {
			h.g = newGroup("g", &h.cfg, h, slog.New(slog.DiscardHandler))
			h.out.WriteString("no group\n")
		}
		h.g.h = h
		h.lastState = ""

	case "state":
		h.lastState = ""

	default:
		if !h.runConsumer(c) {
			h.t.Fatalf("line %d: unknown command %q", c.line, c.name)
		}
	}
	if st := h.stateLine(); st != h.lastState {
		h.lastState = st
		h.out.WriteString(st + "\n")
	}
	return h.out.String()
}

var allErrors = []*kerr.Error{
	kerr.NotLeaderForPartition, kerr.KafkaStorageError, kerr.MessageTooLarge,
	kerr.UnknownTopicOrPartition, kerr.RequestTimedOut, kerr.CorruptMessage,
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// stateLine summarises the group; the scripts print it when it changes.
func (h *harness) stateLine() string {
	g := h.g
	var b strings.Builder
	fmt.Fprintf(&b, "state: %s gen=%d", g.state, g.generation)
	if g.hasProtocol {
		fmt.Fprintf(&b, " proto=%s", g.protocol)
	}
	if g.leader != "" {
		fmt.Fprintf(&b, " leader=%s", g.leader)
	}
	if len(g.order) > 0 {
		b.WriteString(" members=[")
		for i, m := range g.order {
			if i > 0 {
				b.WriteString(" ")
			}
			b.WriteString(m.id)
			if m.joinCB != nil {
				b.WriteString("+join")
			}
			if m.syncCB != nil {
				b.WriteString("+sync")
			}
		}
		b.WriteString("]")
	}
	if len(g.pending) > 0 {
		var ids []string
		for id := range g.pending {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		fmt.Fprintf(&b, " pending=%v", ids)
	}
	if g.consumer != nil {
		b.WriteString(consumerStateLine(g.consumer))
	}
	if d := g.Deadline(); !d.IsZero() {
		fmt.Fprintf(&b, " next=+%s", d.Sub(scriptStart))
	}
	return b.String()
}
