package cli

import (
	"errors"
	"flag"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// parseIDs parses a comma-separated list of non-negative numbers
// (partitions, broker IDs) given to flag name.
func parseIDs(name, v string) ([]int32, error) {
	var ids []int32
	for _, s := range strings.Split(v, ",") {
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 32)
		if err != nil || n < 0 {
			return nil, usagef("%s %q: want numbers like 0,1,2", name, v)
		}
		ids = append(ids, int32(n))
	}
	return ids, nil
}

var topicReassignCmd = &command{
	name:    "reassign",
	args:    "TOPIC -p PARTITIONS (--replicas IDS | --cancel) [flags]",
	summary: "move partitions to other brokers, or change their replica count",
	help: `Reassigns partitions of a topic to the brokers listed, in order (the
first is the preferred leader): the new replicas copy the log from the
leader and join the in-sync replicas, then the old ones are removed and
delete their copies, while the partition stays online. The command
returns once the move has started; 'gregor topic reassignments' shows the
moves in progress. --cancel stops a move, back to the replicas before it.
(Kafka's kafka-reassign-partitions.sh sends the same request.)

Examples:
  gregor topic reassign orders -p 0 --replicas 2,3       # move partition 0
  gregor topic reassign orders -p 0,1,2 --replicas 1,2,3 # three replicas each
  gregor topic reassign orders -p 0 --cancel`,
	setup: func(r *runner, fs *flag.FlagSet) func([]string) error {
		partsFlag := fs.String("partitions", "", "the partitions to move, `LIST` like 0,1,2")
		fs.StringVar(partsFlag, "p", "", "short for --partitions")
		replicasFlag := fs.String("replicas", "", "the brokers to hold them, `IDS` like 1,2,3, preferred leader first")
		cancel := fs.Bool("cancel", false, "cancel the moves in progress instead")
		return func(args []string) error {
			if len(args) != 1 {
				return usagef("name one topic")
			}
			if *partsFlag == "" {
				return usagef("give the partitions with -p")
			}
			if (*replicasFlag == "") == !*cancel {
				return usagef("give exactly one of --replicas IDS or --cancel")
			}
			parts, err := parseIDs("--partitions", *partsFlag)
			if err != nil {
				return err
			}
			var replicas []int32
			if !*cancel {
				if replicas, err = parseIDs("--replicas", *replicasFlag); err != nil {
					return err
				}
			}
			topic := args[0]
			adm, ctx, done, err := r.admin()
			if err != nil {
				return err
			}
			defer done()
			var req kadm.AlterPartitionAssignmentsReq
			for _, p := range parts {
				if *cancel {
					req.CancelAssign(topic, p)
				} else {
					req.Assign(topic, p, replicas)
				}
			}
			resps, err := adm.AlterPartitionAssignments(ctx, req)
			if err != nil {
				return r.wrap(err, "AlterPartitionReassignments")
			}
			status := "moving"
			if *cancel {
				status = "cancelled"
			}
			rs := newItemResults("partition", "partitions")
			for _, p := range parts {
				resp, found := resps[topic][p]
				if !found {
					resp.Err = errors.New("no answer from the cluster")
				}
				rs.add(fmt.Sprintf("%s/%d", topic, p), status, resp.Err, resp.ErrMessage)
			}
			return rs.print(r)
		}
	},
}

// reassignment is one move in progress, as 'topic reassignments' shows it.
type reassignment struct {
	Topic     string  `json:"topic"`
	Partition int32   `json:"partition"`
	Replicas  []int32 `json:"replicas"`
	Adding    []int32 `json:"adding"`
	Removing  []int32 `json:"removing"`
}

var topicReassignmentsCmd = &command{
	name:    "reassignments",
	args:    "[TOPIC...] [flags]",
	summary: "show the partition moves in progress",
	help: `Shows the partition moves ('gregor topic reassign') still in progress:
each partition's replicas, those being added (copying the log) and those
being removed once the added ones are in sync. Nothing listed: no move
is in progress.

Examples:
  gregor topic reassignments
  gregor topic reassignments orders --json`,
	setup: func(r *runner, fs *flag.FlagSet) func([]string) error {
		return func(args []string) error {
			adm, ctx, done, err := r.admin()
			if err != nil {
				return err
			}
			defer done()
			md, err := adm.ListTopicsWithInternal(ctx, args...)
			if err != nil {
				return r.wrap(err, "Metadata")
			}
			set := kadm.TopicsSet{}
			for _, name := range md.Names() {
				for p := range md[name].Partitions {
					set.Add(name, p)
				}
			}
			moves := []reassignment{}
			if len(set) > 0 {
				l, err := adm.ListPartitionReassignments(ctx, set)
				if err != nil {
					return r.wrap(err, "ListPartitionReassignments")
				}
				for _, ps := range l {
					for _, p := range ps {
						moves = append(moves, reassignment{p.Topic, p.Partition, p.Replicas, p.AddingReplicas, p.RemovingReplicas})
					}
				}
			}
			slices.SortFunc(moves, func(a, b reassignment) int {
				if c := strings.Compare(a.Topic, b.Topic); c != 0 {
					return c
				}
				return int(a.Partition - b.Partition)
			})
			if r.json {
				return printJSON(r.env.Stdout, moves)
			}
			t := newTable(r.env.Stdout, "TOPIC", "PARTITION", "REPLICAS", "ADDING", "REMOVING")
			for _, m := range moves {
				t.row(m.Topic, m.Partition, dash(int32List(m.Replicas)), dash(int32List(m.Adding)), dash(int32List(m.Removing)))
			}
			t.flush()
			return nil
		}
	},
}

var clusterElectCmd = &command{
	name:    "elect-leaders",
	args:    "[TOPIC[:PARTITIONS]...] [flags]",
	summary: "give partitions back to their preferred leaders",
	help: `Makes each partition's preferred replica (the first of its replicas)
its leader again when it is in sync, as the cluster also does by itself
every leader.imbalance.check.interval.seconds. With no topic named, every
partition that needs it; TOPIC:0,2 names partitions. --unclean instead
elects a leader for partitions whose leader is gone, even a replica that
is not in sync (records acknowledged may be lost). (Kafka's
kafka-leader-election.sh sends the same request.)

Examples:
  gregor cluster elect-leaders
  gregor cluster elect-leaders orders payments:0,1
  gregor cluster elect-leaders orders:3 --unclean`,
	setup: func(r *runner, fs *flag.FlagSet) func([]string) error {
		unclean := fs.Bool("unclean", false, "elect a leader for partitions without one, in sync or not")
		return func(args []string) error {
			var set kadm.TopicsSet
			var whole []string
			for _, a := range args {
				topic, list, hasList := strings.Cut(a, ":")
				if topic == "" {
					return usagef("%q: want TOPIC or TOPIC:PARTITIONS", a)
				}
				if !hasList {
					whole = append(whole, topic)
					continue
				}
				parts, err := parseIDs(topic, list)
				if err != nil {
					return err
				}
				set.Add(topic, parts...)
			}
			adm, ctx, done, err := r.admin()
			if err != nil {
				return err
			}
			defer done()
			if len(whole) > 0 {
				md, err := adm.ListTopicsWithInternal(ctx, whole...)
				if err != nil {
					return r.wrap(err, "Metadata")
				}
				for _, name := range whole {
					d, ok := md[name]
					if !ok || d.Err != nil {
						return fmt.Errorf("topic %q: %w", name, kerr.UnknownTopicOrPartition)
					}
					for p := range d.Partitions {
						set.Add(name, p)
					}
				}
			}
			how := kadm.ElectPreferredReplica
			if *unclean {
				how = kadm.ElectLiveReplica
			}
			res, err := adm.ElectLeaders(ctx, how, set)
			if err != nil {
				return r.wrap(err, "ElectLeaders")
			}
			type row struct {
				name string
				res  kadm.ElectLeadersResult
			}
			var rows []row
			for topic, ps := range res {
				for p, r := range ps {
					rows = append(rows, row{fmt.Sprintf("%s/%d", topic, p), r})
				}
			}
			slices.SortFunc(rows, func(a, b row) int {
				if c := strings.Compare(a.res.Topic, b.res.Topic); c != 0 {
					return c
				}
				return int(a.res.Partition - b.res.Partition)
			})
			rs := newItemResults("partition", "partitions")
			for _, row := range rows {
				if errors.Is(row.res.Err, kerr.ElectionNotNeeded) {
					rs.add(row.name, "not needed", nil, "")
					continue
				}
				rs.add(row.name, "elected", row.res.Err, row.res.ErrMessage)
			}
			return rs.print(r)
		}
	},
}
