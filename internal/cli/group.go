package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

var groupCmd = &command{
	name:    "group",
	summary: "list, describe (members, lag), delete and reset consumer groups",
	help:    "Manage consumer groups.",
	sub:     []*command{groupListCmd, groupDescribeCmd, groupDeleteCmd, groupResetOffsetsCmd},
}

// ---- list

var groupListCmd = &command{
	name:    "list",
	args:    "[flags]",
	summary: "list consumer groups and their states",
	help: `Lists the cluster's groups with their state and protocol type.

Examples:
  gregor group list
  gregor group list --json | jq -r '.[] | select(.state=="Empty") | .group'`,
	setup: func(r *runner, fs *flag.FlagSet) func([]string) error {
		return func(args []string) error {
			if len(args) > 0 {
				return usagef("unexpected argument %q (see group describe)", args[0])
			}
			adm, ctx, done, err := r.admin()
			if err != nil {
				return err
			}
			defer done()
			groups, err := adm.ListGroups(ctx)
			if err != nil && len(groups) == 0 {
				return r.wrap(err, "ListGroups")
			}
			type item struct {
				Group        string `json:"group"`
				State        string `json:"state"`
				ProtocolType string `json:"protocol_type"`
				Coordinator  int32  `json:"coordinator"`
			}
			items := []item{}
			for _, name := range groups.Groups() {
				g := groups[name]
				items = append(items, item{g.Group, g.State, g.ProtocolType, g.Coordinator})
			}
			if r.json {
				return printJSON(r.env.Stdout, items)
			}
			t := newTable(r.env.Stdout, "GROUP", "STATE", "PROTOCOL-TYPE")
			for _, it := range items {
				t.row(it.Group, dash(it.State), dash(it.ProtocolType))
			}
			t.flush()
			return nil
		}
	},
}

// ---- describe

type groupMemberJSON struct {
	MemberID    string           `json:"member_id"`
	InstanceID  *string          `json:"instance_id"`
	ClientID    string           `json:"client_id"`
	Host        string           `json:"host"`
	Assignments map[string][]int `json:"assignments"`
}

type groupLagJSON struct {
	Topic         string `json:"topic"`
	Partition     int32  `json:"partition"`
	CurrentOffset int64  `json:"current_offset"`
	LogEndOffset  int64  `json:"log_end_offset"`
	Lag           int64  `json:"lag"`
	MemberID      string `json:"member_id,omitempty"`
	ClientID      string `json:"client_id,omitempty"`
	Host          string `json:"host,omitempty"`
	Error         string `json:"error,omitempty"`
}

type groupJSON struct {
	Group        string            `json:"group"`
	Coordinator  int32             `json:"coordinator"`
	State        string            `json:"state"`
	ProtocolType string            `json:"protocol_type"`
	Protocol     string            `json:"protocol"`
	Members      []groupMemberJSON `json:"members"`
	TotalLag     int64             `json:"total_lag"`
	Partitions   []groupLagJSON    `json:"partitions"`
}

var groupDescribeCmd = &command{
	name:    "describe",
	args:    "GROUP... [flags]",
	summary: "show members, assignments, committed offsets and lag",
	help: `Describes consumer groups: state, members with their assigned
partitions, and per partition the committed offset, the log end offset
(high watermark) and the lag between them.

Examples:
  gregor group describe billing
  gregor group describe billing --json | jq .total_lag`,
	setup: func(r *runner, fs *flag.FlagSet) func([]string) error {
		return func(groups []string) error {
			if len(groups) == 0 {
				return usagef("name at least one group")
			}
			adm, ctx, done, err := r.admin()
			if err != nil {
				return err
			}
			defer done()
			lags, err := adm.Lag(ctx, groups...)
			if err != nil && len(lags) == 0 {
				return r.wrap(err, "DescribeGroups")
			}
			var out []groupJSON
			for _, name := range groups {
				l, ok := lags[name]
				if !ok {
					return fmt.Errorf("group %q: no answer from the cluster", name)
				}
				e := l.Error()
				if e != nil && !errors.Is(e, kerr.GroupIDNotFound) {
					return fmt.Errorf("group %q: %w", name, r.wrap(e, "DescribeGroups"))
				}
				if e != nil || l.State == "Dead" && len(l.Lag) == 0 {
					// Not a classic group: a KIP-848 consumer group,
					// which only ConsumerGroupDescribe describes?
					g, found, err := consumerGroupLag(ctx, adm, name)
					if err != nil {
						return fmt.Errorf("group %q: %w", name, r.wrap(err, "ConsumerGroupDescribe"))
					}
					if !found {
						return &failedError{msg: fmt.Sprintf("group %q does not exist", name)}
					}
					out = append(out, g)
					continue
				}
				out = append(out, groupToJSON(l))
			}
			if r.json {
				return printJSON(r.env.Stdout, out)
			}
			for i, g := range out {
				if i > 0 {
					fmt.Fprintln(r.env.Stdout)
				}
				printGroup(r, g)
			}
			return nil
		}
	},
}

// consumerGroupLag describes a KIP-848 consumer group as groupToJSON
// does a classic one: ConsumerGroupDescribe for the members and their
// assignments (the assignor is the protocol), the committed offsets and
// the end offsets for the lag. found is false when the group is not a
// consumer group either.
func consumerGroupLag(ctx context.Context, adm *kadm.Client, name string) (g groupJSON, found bool, err error) {
	described, err := adm.DescribeConsumerGroups(ctx, name)
	if err != nil && len(described) == 0 {
		return g, false, err
	}
	d, ok := described[name]
	if !ok || errors.Is(d.Err, kerr.GroupIDNotFound) || errors.Is(d.Err, kerr.UnsupportedVersion) {
		return g, false, nil
	}
	if d.Err != nil {
		return g, false, d.Err
	}
	g = groupJSON{Group: name, Coordinator: d.Coordinator.NodeID, State: d.State, ProtocolType: "consumer",
		Protocol: d.AssignorName, Members: []groupMemberJSON{}, Partitions: []groupLagJSON{}}
	owner := map[string]map[int32]kadm.ConsumerGroupMember{}
	topics := map[string]bool{}
	for _, m := range d.Members {
		mj := groupMemberJSON{MemberID: m.MemberID, InstanceID: m.InstanceID, ClientID: m.ClientID, Host: m.ClientHost,
			Assignments: map[string][]int{}}
		for t, ps := range m.Assignment {
			topics[t] = true
			if owner[t] == nil {
				owner[t] = map[int32]kadm.ConsumerGroupMember{}
			}
			for p := range ps {
				mj.Assignments[t] = append(mj.Assignments[t], int(p))
				owner[t][p] = m
			}
			sort.Ints(mj.Assignments[t])
		}
		g.Members = append(g.Members, mj)
	}
	commits, err := adm.FetchOffsets(ctx, name)
	if err != nil {
		return g, true, err
	}
	commits.Each(func(o kadm.OffsetResponse) { topics[o.Topic] = true })
	names := make([]string, 0, len(topics))
	for t := range topics {
		names = append(names, t)
	}
	ends, err := adm.ListEndOffsets(ctx, names...)
	if err != nil {
		return g, true, err
	}
	ends.Each(func(e kadm.ListedOffset) {
		c, committed := commits.Lookup(e.Topic, e.Partition)
		m, owned := owner[e.Topic][e.Partition]
		if !committed && !owned {
			return
		}
		lj := groupLagJSON{Topic: e.Topic, Partition: e.Partition, CurrentOffset: -1, LogEndOffset: e.Offset, Lag: -1}
		if committed {
			lj.CurrentOffset = c.At
			if c.At >= 0 && e.Offset >= 0 {
				lj.Lag = e.Offset - c.At
			}
		}
		if owned {
			lj.MemberID, lj.ClientID, lj.Host = m.MemberID, m.ClientID, m.ClientHost
		}
		switch {
		case e.Err != nil:
			lj.Error = errorText(e.Err, "")
		case committed && c.Err != nil:
			lj.Error = errorText(c.Err, "")
		}
		if lj.Lag > 0 {
			g.TotalLag += lj.Lag
		}
		g.Partitions = append(g.Partitions, lj)
	})
	sort.Slice(g.Partitions, func(i, j int) bool {
		a, b := g.Partitions[i], g.Partitions[j]
		return a.Topic < b.Topic || a.Topic == b.Topic && a.Partition < b.Partition
	})
	return g, true, nil
}

func groupToJSON(l kadm.DescribedGroupLag) groupJSON {
	g := groupJSON{Group: l.Group, Coordinator: l.Coordinator.NodeID, State: l.State, ProtocolType: l.ProtocolType,
		Protocol: l.Protocol, Members: []groupMemberJSON{}, Partitions: []groupLagJSON{}}
	for _, m := range l.Members {
		mj := groupMemberJSON{MemberID: m.MemberID, InstanceID: m.InstanceID, ClientID: m.ClientID, Host: m.ClientHost,
			Assignments: map[string][]int{}}
		if a, ok := m.Assigned.AsConsumer(); ok {
			for _, t := range a.Topics {
				for _, p := range t.Partitions {
					mj.Assignments[t.Topic] = append(mj.Assignments[t.Topic], int(p))
				}
				sort.Ints(mj.Assignments[t.Topic])
			}
		}
		g.Members = append(g.Members, mj)
	}
	for _, ml := range l.Lag.Sorted() {
		lj := groupLagJSON{Topic: ml.Topic, Partition: ml.Partition, CurrentOffset: ml.Commit.At,
			LogEndOffset: ml.End.Offset, Lag: ml.Lag}
		if ml.Member != nil {
			lj.MemberID, lj.ClientID, lj.Host = ml.Member.MemberID, ml.Member.ClientID, ml.Member.ClientHost
		}
		if ml.Err != nil {
			lj.Error = errorText(ml.Err, "")
		}
		if ml.Lag > 0 {
			g.TotalLag += ml.Lag
		}
		g.Partitions = append(g.Partitions, lj)
	}
	return g
}

func printGroup(r *runner, g groupJSON) {
	w := r.env.Stdout
	kv := newTable(w, "GROUP", g.Group)
	kv.row("COORDINATOR", g.Coordinator)
	kv.row("STATE", g.State)
	proto := g.ProtocolType
	if g.Protocol != "" {
		proto += "/" + g.Protocol
	}
	kv.row("PROTOCOL", dash(proto))
	kv.row("MEMBERS", len(g.Members))
	kv.row("TOTAL-LAG", g.TotalLag)
	kv.flush()
	if len(g.Members) > 0 {
		fmt.Fprintln(w)
		mt := newTable(w, "MEMBER-ID", "CLIENT-ID", "HOST", "ASSIGNMENTS")
		for _, m := range g.Members {
			var as []string
			topics := make([]string, 0, len(m.Assignments))
			for t := range m.Assignments {
				topics = append(topics, t)
			}
			sort.Strings(topics)
			for _, t := range topics {
				ps := make([]string, len(m.Assignments[t]))
				for i, p := range m.Assignments[t] {
					ps[i] = strconv.Itoa(p)
				}
				as = append(as, t+":"+strings.Join(ps, ","))
			}
			mt.row(m.MemberID, m.ClientID, m.Host, dash(strings.Join(as, " ")))
		}
		mt.flush()
	}
	if len(g.Partitions) > 0 {
		fmt.Fprintln(w)
		lt := newTable(w, "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "MEMBER-ID")
		for _, p := range g.Partitions {
			lag := any(p.Lag)
			if p.Error != "" {
				lag = "error: " + p.Error
			} else if p.Lag < 0 {
				lag = "-"
			}
			lt.row(p.Topic, p.Partition, dash(p.CurrentOffset), dash(p.LogEndOffset), lag, dash(p.MemberID))
		}
		lt.flush()
	}
}

// ---- delete

var groupDeleteCmd = &command{
	name:    "delete",
	args:    "GROUP... [flags]",
	summary: "delete consumer groups and their committed offsets",
	help: `Deletes groups and their committed offsets. A group with active
members cannot be deleted (NON_EMPTY_GROUP): stop its consumers first.

Examples:
  gregor group delete billing
  gregor group delete old-a old-b --json`,
	setup: func(r *runner, fs *flag.FlagSet) func([]string) error {
		return func(groups []string) error {
			if len(groups) == 0 {
				return usagef("name at least one group")
			}
			adm, ctx, done, err := r.admin()
			if err != nil {
				return err
			}
			defer done()
			resps, err := adm.DeleteGroups(ctx, groups...)
			if err != nil && len(resps) == 0 {
				return r.wrap(err, "DeleteGroups")
			}
			results := newItemResults("group", "groups")
			for _, g := range groups {
				resp, ok := resps[g]
				if !ok {
					resp.Err = errors.New("no answer from the cluster")
				}
				results.add(g, "deleted", r.wrap(resp.Err, "DeleteGroups"), "")
			}
			return results.print(r)
		}
	},
}

// ---- reset-offsets

var groupResetOffsetsCmd = &command{
	name:    "reset-offsets",
	args:    "GROUP (--topic TOPIC[:P,P...]... | --all-topics) (--to-earliest | --to-latest | --to-offset N | --to-datetime TIME | --shift-by N) [flags]",
	summary: "move a group's committed offsets",
	help: `Sets the committed offsets of an inactive group (no members: stop its
consumers first, as Kafka requires). Targets are clamped to what the
partitions hold. --dry-run shows the plan without committing.

--all-topics resets every topic the group has committed offsets for.
--to-datetime takes RFC 3339, Unix milliseconds, or -DURATION (ago).

Examples:
  gregor group reset-offsets billing --topic events --to-earliest --dry-run
  gregor group reset-offsets billing --topic events:0,1 --to-offset 42
  gregor group reset-offsets billing --all-topics --to-datetime -1h
  gregor group reset-offsets billing --topic events --shift-by -100`,
	setup: func(r *runner, fs *flag.FlagSet) func([]string) error {
		var topicSpecs multiFlag
		fs.Var(&topicSpecs, "topic", "`TOPIC` or TOPIC:P,P to reset (repeatable)")
		fs.Var(&topicSpecs, "t", "short for --topic")
		allTopics := fs.Bool("all-topics", false, "every topic with committed offsets")
		toEarliest := fs.Bool("to-earliest", false, "the log start offset")
		toLatest := fs.Bool("to-latest", false, "the log end offset (skip everything so far)")
		toOffset := fs.Int64("to-offset", -1, "offset `N`")
		toDatetime := fs.String("to-datetime", "", "the first offset at or after `TIME`")
		shiftBy := fs.Int64("shift-by", 0, "move the committed offset by `N` (negative: back)")
		dry := fs.Bool("dry-run", false, "show the new offsets without committing them")
		return func(args []string) error {
			if len(args) != 1 {
				return usagef("name exactly one group")
			}
			group := args[0]
			if (len(topicSpecs) > 0) == *allTopics {
				return usagef("give --topic TOPIC (repeatable) or --all-topics")
			}
			modes := 0
			for _, on := range []bool{*toEarliest, *toLatest, *toOffset >= 0, *toDatetime != "", *shiftBy != 0} {
				if on {
					modes++
				}
			}
			if modes != 1 {
				return usagef("give exactly one of --to-earliest, --to-latest, --to-offset, --to-datetime, --shift-by")
			}
			var atMillis int64
			if *toDatetime != "" {
				ms, err := parseTime(*toDatetime)
				if err != nil {
					return usagef("--to-datetime %q: %v", *toDatetime, err)
				}
				atMillis = ms
			}
			wanted := map[string]map[int32]bool{} // nil map = all partitions
			for _, spec := range topicSpecs {
				t, ps, hasParts := strings.Cut(spec, ":")
				if _, ok := wanted[t]; !ok {
					wanted[t] = nil
				}
				if hasParts {
					if wanted[t] == nil {
						wanted[t] = map[int32]bool{}
					}
					for _, s := range strings.Split(ps, ",") {
						p, err := strconv.Atoi(s)
						if err != nil || p < 0 {
							return usagef("--topic %q: want TOPIC or TOPIC:0,1,2", spec)
						}
						wanted[t][int32(p)] = true
					}
				}
			}

			adm, ctx, done, err := r.admin()
			if err != nil {
				return err
			}
			defer done()
			described, err := adm.DescribeGroups(ctx, group)
			if err != nil && len(described) == 0 {
				return r.wrap(err, "DescribeGroups")
			}
			// A group that does not exist yet may get offsets: it then
			// starts where they say, as with Kafka's tool.
			if d, ok := described[group]; ok && !errors.Is(d.Err, kerr.GroupIDNotFound) {
				if d.Err != nil {
					return fmt.Errorf("group %q: %w", group, d.Err)
				}
				if len(d.Members) > 0 {
					return &failedError{msg: fmt.Sprintf("group %q has %d active members (state %s); stop its consumers first", group, len(d.Members), d.State)}
				}
			}
			current, err := adm.FetchOffsets(ctx, group)
			if err != nil {
				return r.wrap(err, "OffsetFetch")
			}
			if *allTopics {
				current.Each(func(o kadm.OffsetResponse) {
					if _, ok := wanted[o.Topic]; !ok {
						wanted[o.Topic] = nil
					}
				})
				if len(wanted) == 0 {
					return &failedError{msg: fmt.Sprintf("group %q has no committed offsets", group)}
				}
			}
			topics := make([]string, 0, len(wanted))
			for t := range wanted {
				topics = append(topics, t)
			}
			sort.Strings(topics)
			md, err := adm.ListTopics(ctx, topics...)
			if err != nil {
				return r.wrap(err, "Metadata")
			}
			for _, t := range topics {
				if d, ok := md[t]; !ok || d.Err != nil {
					return &failedError{msg: fmt.Sprintf("unknown topic %q", t)}
				}
			}
			starts, err := adm.ListStartOffsets(ctx, topics...)
			if err != nil {
				return r.wrap(err, "ListOffsets")
			}
			ends, err := adm.ListEndOffsets(ctx, topics...)
			if err != nil {
				return r.wrap(err, "ListOffsets")
			}
			var byTime kadm.ListedOffsets
			if *toDatetime != "" {
				if byTime, err = adm.ListOffsetsAfterMilli(ctx, atMillis, topics...); err != nil {
					return r.wrap(err, "ListOffsets")
				}
			}

			type plan struct {
				Topic     string `json:"topic"`
				Partition int32  `json:"partition"`
				Old       *int64 `json:"old_offset"`
				New       int64  `json:"new_offset"`
				Error     string `json:"error,omitempty"`
			}
			var plans []plan
			var commit kadm.Offsets
			for _, t := range topics {
				for _, p := range md[t].Partitions.Sorted() {
					if ps := wanted[t]; ps != nil && !ps[p.Partition] {
						continue
					}
					lo, hi := int64(0), int64(0)
					if o, ok := starts.Lookup(t, p.Partition); ok && o.Err == nil {
						lo = o.Offset
					}
					if o, ok := ends.Lookup(t, p.Partition); ok && o.Err == nil {
						hi = o.Offset
					}
					pl := plan{Topic: t, Partition: p.Partition}
					cur := int64(-1)
					if o, ok := current.Lookup(t, p.Partition); ok && o.Err == nil && o.At >= 0 {
						cur = o.At
						pl.Old = &cur
					}
					var target int64
					switch {
					case *toEarliest:
						target = lo
					case *toLatest:
						target = hi
					case *toOffset >= 0:
						target = *toOffset
					case *toDatetime != "":
						target = hi
						if o, ok := byTime.Lookup(t, p.Partition); ok && o.Err == nil && o.Offset >= 0 {
							target = o.Offset
						}
					default:
						base := cur
						if base < 0 {
							base = lo
						}
						target = base + *shiftBy
					}
					pl.New = min(max(target, lo), hi)
					plans = append(plans, pl)
					commit.AddOffset(t, p.Partition, pl.New, -1)
				}
			}
			var errs []error
			if !*dry && len(plans) > 0 {
				resps, err := adm.CommitOffsets(ctx, group, commit)
				if err != nil {
					if errors.Is(err, kerr.UnknownMemberID) || errors.Is(err, kerr.RebalanceInProgress) {
						return &failedError{msg: fmt.Sprintf("group %q became active; stop its consumers first", group)}
					}
					return r.wrap(err, "OffsetCommit")
				}
				for i := range plans {
					if o, ok := resps.Lookup(plans[i].Topic, plans[i].Partition); ok && o.Err != nil {
						plans[i].Error = errorText(o.Err, "")
						errs = append(errs, itemError(fmt.Sprintf("%s/%d", plans[i].Topic, plans[i].Partition), plans[i].Error, o.Err))
					} else {
						errs = append(errs, nil)
					}
				}
			}
			if r.json {
				out := struct {
					Group      string `json:"group"`
					DryRun     bool   `json:"dry_run"`
					Partitions []plan `json:"partitions"`
				}{group, *dry, plans}
				if out.Partitions == nil {
					out.Partitions = []plan{}
				}
				if err := printJSON(r.env.Stdout, out); err != nil {
					return err
				}
			} else {
				t := newTable(r.env.Stdout, "TOPIC", "PARTITION", "OLD-OFFSET", "NEW-OFFSET", "STATUS")
				for _, pl := range plans {
					old := "-"
					if pl.Old != nil {
						old = strconv.FormatInt(*pl.Old, 10)
					}
					status := "reset"
					if *dry {
						status = "dry run"
					}
					if pl.Error != "" {
						status = "failed: " + pl.Error
					}
					t.row(pl.Topic, pl.Partition, old, pl.New, status)
				}
				t.flush()
			}
			return itemFailure(errs, "partitions")
		}
	},
}
