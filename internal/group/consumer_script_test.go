package group

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Script commands for KIP-848 consumer groups (testdata/group/consumer-*.txt):
//
//	topics a=4 b=2 [c=-]   the cluster's topics and partition counts (- deletes)
//	cg tag= member= epoch= [instance=] [topics=a;b] [regex=] [assignor=]
//	   [rebalance=] [owned=a:0.1;b:2] [v=]
//	                       a ConsumerGroupHeartbeat; owned= (empty) is an
//	                       empty list, no owned= a null one
//	cg-describe            ConsumerGroupDescribe
//	cg-config [max-size=] [session=] [interval=]
//
// The state line shows the group epoch, the target epoch and each member
// as id=epoch/state, its assigned partitions and, after -, those pending
// revocation.

// topicName recovers a script topic's name from its ID (topicID).
func topicName(id TopicID) string { return strings.TrimRight(string(id[:15]), "\x00") }

func fmtAssignment(a assignment) string {
	var parts []string
	for t, ps := range a {
		if len(ps) == 0 {
			continue
		}
		var s []string
		for _, p := range ps {
			s = append(s, strconv.Itoa(int(p)))
		}
		parts = append(parts, topicName(t)+":"+strings.Join(s, "."))
	}
	if len(parts) == 0 {
		return "-"
	}
	slices.Sort(parts)
	return strings.Join(parts, ";")
}

func fmtPartitions(tps []ConsumerTopicPartitions) string {
	a := assignment{}
	for _, t := range tps {
		for _, p := range t.Partitions {
			a.add(t.TopicID, p)
		}
	}
	return fmtAssignment(a)
}

func parsePartitions(spec string) []ConsumerTopicPartitions {
	out := []ConsumerTopicPartitions{}
	if spec == "" {
		return out
	}
	for _, part := range strings.Split(spec, ";") {
		name, ps, _ := strings.Cut(part, ":")
		t := ConsumerTopicPartitions{TopicID: topicID(name)}
		for _, p := range strings.Split(ps, ".") {
			n, _ := strconv.Atoi(p)
			t.Partitions = append(t.Partitions, int32(n))
		}
		out = append(out, t)
	}
	return out
}

var memberStateNames = map[int8]string{memberStable: "stable", memberUnrevokedPartitions: "unrevoked", memberUnreleasedPartitions: "unreleased"}

func consumerStateLine(cg *consumerGroup) string {
	if err := subscriptionCountsError(cg); err != "" {
		return " " + err
	}
	var b strings.Builder
	fmt.Fprintf(&b, " epoch=%d target=%d", cg.epoch, cg.targetEpoch)
	if len(cg.members) > 0 {
		b.WriteString(" members=[")
		for i, m := range cg.sortedMembers() {
			if i > 0 {
				b.WriteString(" ")
			}
			fmt.Fprintf(&b, "%s=%d/%s %s", m.id, m.cur.Epoch, memberStateNames[m.cur.State], fmtAssignment(m.cur.Assigned))
			if m.cur.Revoking.count() > 0 {
				fmt.Fprintf(&b, " -%s", fmtAssignment(m.cur.Revoking))
			}
		}
		b.WriteString("]")
	}
	return b.String()
}

func describeConsumerRecord(d decoded) string {
	c := d.cg
	if c.value == nil {
		return fmt.Sprintf("consumer key %d %s tombstone", c.version, c.member)
	}
	switch v := c.value.(type) {
	case *int32:
		if c.version == cgMetadataKey {
			return fmt.Sprintf("consumer group epoch=%d", *v)
		}
		return fmt.Sprintf("consumer target epoch=%d", *v)
	case []topicMeta:
		var ts []string
		for _, t := range v {
			ts = append(ts, fmt.Sprintf("%s(%d)", t.Name, t.Partitions))
		}
		return fmt.Sprintf("consumer topics=[%s]", strings.Join(ts, " "))
	case *cgMemberMeta:
		s := fmt.Sprintf("consumer member %s client=%s topics=%s", c.member, v.ClientID, strings.Join(v.Topics, ";"))
		if v.InstanceID != nil {
			s += " instance=" + *v.InstanceID
		}
		if v.Regex != nil {
			s += fmt.Sprintf(" regex=%q", *v.Regex)
		}
		if v.ServerAssignor != nil {
			s += " assignor=" + *v.ServerAssignor
		}
		return s + fmt.Sprintf(" rebalance=%dms", v.RebalanceTimeout)
	case assignment:
		return fmt.Sprintf("consumer target %s %s", c.member, fmtAssignment(v))
	case *cgCurrent:
		s := fmt.Sprintf("consumer current %s epoch=%d prev=%d %s %s", c.member, v.Epoch, v.PrevEpoch, memberStateNames[v.State], fmtAssignment(v.Assigned))
		if v.Revoking.count() > 0 {
			s += " -" + fmtAssignment(v.Revoking)
		}
		return s
	}
	return "consumer ?"
}

// runConsumer runs the consumer group commands; false for others.
func (h *harness) runConsumer(c *scriptCmd) bool {
	switch c.name {
	case "topics":
		if h.topics == nil {
			h.topics = fakeTopics{}
		}
		for _, a := range c.args {
			if a.val == "-" {
				delete(h.topics, a.key)
				continue
			}
			n, _ := strconv.Atoi(a.val)
			h.topics[a.key] = int32(n)
		}

	case "cg":
		tag, _ := c.get("tag")
		member, _ := c.get("member")
		epoch := h.int(c, "epoch", 0)
		req := ConsumerHeartbeatRequest{
			Version:     int16(h.int(c, "v", 1)),
			MemberID:    member,
			MemberEpoch: int32(epoch),
			InstanceID:  optPtr(c, "instance"),
			ClientID:    "c",
			ClientHost:  "/h",
			Topics:      h.topics,
		}
		req.RebalanceTimeout = -1
		if epoch == 0 {
			req.RebalanceTimeout = time.Minute
			req.Owned = []ConsumerTopicPartitions{}
		}
		req.RebalanceTimeout = h.dur(c, "rebalance", req.RebalanceTimeout)
		if ts, ok := c.get("topics"); ok {
			req.SubscribedTopicNames = []string{}
			if ts != "" {
				req.SubscribedTopicNames = strings.Split(ts, ";")
			}
		}
		req.SubscribedTopicRegex = optPtr(c, "regex")
		req.ServerAssignor = optPtr(c, "assignor")
		if o, ok := c.get("owned"); ok {
			req.Owned = parsePartitions(o)
		}
		h.g.ConsumerHeartbeat(h.now, req, func(r ConsumerHeartbeatResult) {
			fmt.Fprintf(h.out, "%s: cg %s", tag, errName(r.Err))
			if r.Err == nil {
				fmt.Fprintf(h.out, " member=%s epoch=%d", r.MemberID, r.MemberEpoch)
				if r.HasAssignment {
					fmt.Fprintf(h.out, " assignment=%s", fmtPartitions(r.Assignment))
				}
			}
			h.out.WriteString("\n")
		})

	case "cg-config":
		h.cfg.ConsumerMaxSize = h.int(c, "max-size", h.cfg.ConsumerMaxSize)
		h.cfg.ConsumerSessionTimeout = h.dur(c, "session", h.cfg.ConsumerSessionTimeout)
		h.cfg.ConsumerHeartbeatInterval = h.dur(c, "interval", h.cfg.ConsumerHeartbeatInterval)

	case "cg-describe":
		d := h.g.ConsumerDescribe()
		if d.Err != nil {
			fmt.Fprintf(h.out, "describe: %s\n", errName(d.Err))
			break
		}
		fmt.Fprintf(h.out, "describe: %s epoch=%d target=%d assignor=%s\n", d.State, d.Epoch, d.AssignmentEpoch, d.Assignor)
		for _, m := range d.Members {
			fmt.Fprintf(h.out, "  %s epoch=%d topics=%s assigned=%s target=%s\n", m.MemberID, m.MemberEpoch,
				strings.Join(m.Topics, ";"), fmtPartitions(m.Assignment), fmtPartitions(m.TargetAssignment))
		}

	default:
		return false
	}
	return true
}

// subscriptionCountsError reports byName or regexes disagreeing with
// the members' subscriptions; the scripts print it in the state line.
func subscriptionCountsError(cg *consumerGroup) string {
	byName, regexes := map[string]int{}, 0
	for _, m := range cg.members {
		for _, n := range m.meta.Topics {
			byName[n]++
		}
		if m.regex != nil {
			regexes++
		}
	}
	if len(byName) != len(cg.byName) || regexes != cg.regexes {
		return fmt.Sprintf("BROKEN subscription counts %v/%d, members say %v/%d", cg.byName, cg.regexes, byName, regexes)
	}
	for n, c := range byName {
		if cg.byName[n] != c {
			return fmt.Sprintf("BROKEN subscription counts %v/%d, members say %v/%d", cg.byName, cg.regexes, byName, regexes)
		}
	}
	return ""
}
