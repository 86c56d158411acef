package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

var topicCmd = &command{
	name:    "topic",
	summary: "create, list, describe, delete and configure topics",
	help:    "Manage topics.",
	sub: []*command{
		topicCreateCmd, topicListCmd, topicDescribeCmd, topicDeleteCmd, topicAlterConfigCmd, topicAddPartitionsCmd,
		topicReassignCmd, topicReassignmentsCmd,
	},
}

// ---- create

var topicCreateCmd = &command{
	name:    "create",
	args:    "TOPIC... [flags]",
	summary: "create topics",
	help: `Creates topics. Partitions and replication factor default to the
cluster's num.partitions and default.replication.factor.

Examples:
  gregor topic create events
  gregor topic create orders payments -p 6 -r 3
  gregor topic create logs -c retention.ms=86400000 -c cleanup.policy=delete
  gregor topic create events --if-not-exists     # idempotent, for scripts`,
	setup: func(r *runner, fs *flag.FlagSet) func([]string) error {
		partitions := fs.Int("partitions", -1, "number of partitions (default: the cluster's num.partitions)")
		fs.IntVar(partitions, "p", -1, "short for --partitions")
		rf := fs.Int("replication-factor", -1, "replicas per partition (default: the cluster's default.replication.factor)")
		fs.IntVar(rf, "r", -1, "short for --replication-factor")
		var configs multiFlag
		fs.Var(&configs, "config", "topic config `NAME=VALUE` (repeatable)")
		fs.Var(&configs, "c", "short for --config")
		dry := fs.Bool("dry-run", false, "validate only; create nothing")
		ifNotExists := fs.Bool("if-not-exists", false, "succeed when a topic already exists")
		return func(args []string) error {
			if len(args) == 0 {
				return usagef("name at least one topic")
			}
			cfg, _, err := keyValues("--config", configs)
			if err != nil {
				return err
			}
			kc := map[string]*string{}
			for k, v := range cfg {
				kc[k] = &v
			}
			r.allowForPartitions(fs, *partitions*len(args))
			adm, ctx, done, err := r.admin()
			if err != nil {
				return err
			}
			defer done()
			create := adm.CreateTopics
			if *dry {
				create = adm.ValidateCreateTopics
			}
			resps, err := create(ctx, int32(*partitions), int16(*rf), kc, args...)
			if err != nil {
				return r.wrap(err, "CreateTopics")
			}
			type result struct {
				Topic             string `json:"topic"`
				ID                string `json:"id,omitempty"`
				Partitions        int32  `json:"partitions"`
				ReplicationFactor int16  `json:"replication_factor"`
				Status            string `json:"status"`
				Error             string `json:"error,omitempty"`
			}
			var results []result
			var errs []error
			for _, name := range args {
				resp, ok := resps[name]
				res := result{Topic: name, Partitions: resp.NumPartitions, ReplicationFactor: resp.ReplicationFactor}
				switch {
				case !ok:
					resp.Err = errors.New("no answer from the cluster")
				case resp.Err == nil && *dry:
					res.Status = "valid"
				case resp.Err == nil:
					res.Status = "created"
					res.ID = topicID(resp.ID)
				case *ifNotExists && errors.Is(resp.Err, kerr.TopicAlreadyExists):
					res.Status = "exists"
					resp.Err = nil
				}
				if resp.Err != nil {
					res.Status = "failed"
					res.Error = errorText(resp.Err, resp.ErrMessage)
					errs = append(errs, itemError(name, res.Error, resp.Err))
				} else {
					errs = append(errs, nil)
				}
				results = append(results, res)
			}
			if r.json {
				if err := printJSON(r.env.Stdout, results); err != nil {
					return err
				}
			} else {
				t := newTable(r.env.Stdout, "TOPIC", "PARTITIONS", "REPLICATION", "STATUS")
				for _, res := range results {
					status := res.Status
					if res.Error != "" {
						status += ": " + res.Error
					}
					p, rf := any(res.Partitions), any(res.ReplicationFactor)
					if res.Error != "" || res.Status == "exists" {
						p, rf = "-", "-"
					}
					t.row(res.Topic, p, rf, status)
				}
				t.flush()
			}
			return itemFailure(errs, "topics")
		}
	},
}

// ---- list

var topicListCmd = &command{
	name:    "list",
	args:    "[flags]",
	summary: "list topics",
	help: `Lists topics with their partition count and replication factor.

Examples:
  gregor topic list
  gregor topic list --internal      # include __consumer_offsets
  gregor topic list --json | jq -r '.[].name'`,
	setup: func(r *runner, fs *flag.FlagSet) func([]string) error {
		internal := fs.Bool("internal", false, "include internal topics (__consumer_offsets, …)")
		fs.BoolVar(internal, "i", false, "short for --internal")
		return func(args []string) error {
			if len(args) > 0 {
				return usagef("unexpected argument %q (topic list takes no topics; see topic describe)", args[0])
			}
			adm, ctx, done, err := r.admin()
			if err != nil {
				return err
			}
			defer done()
			list := adm.ListTopics
			if *internal {
				list = adm.ListTopicsWithInternal
			}
			topics, err := list(ctx)
			if err != nil {
				return r.wrap(err, "Metadata")
			}
			type item struct {
				Name              string `json:"name"`
				ID                string `json:"id"`
				Partitions        int    `json:"partitions"`
				ReplicationFactor int    `json:"replication_factor"`
				Internal          bool   `json:"internal"`
			}
			items := []item{}
			for _, name := range topics.Names() {
				d := topics[name]
				items = append(items, item{Name: name, ID: topicID(d.ID), Partitions: len(d.Partitions),
					ReplicationFactor: d.Partitions.NumReplicas(), Internal: d.IsInternal})
			}
			if r.json {
				return printJSON(r.env.Stdout, items)
			}
			t := newTable(r.env.Stdout, "NAME", "PARTITIONS", "REPLICATION")
			for _, it := range items {
				t.row(it.Name, it.Partitions, it.ReplicationFactor)
			}
			t.flush()
			return nil
		}
	},
}

// ---- describe

// supported returns the API keys every broker of the cluster serves.
func supported(ctx context.Context, adm *kadm.Client) map[int16]bool {
	vs, err := adm.ApiVersions(ctx)
	if err != nil {
		return nil
	}
	out := map[int16]bool{}
	first := true
	vs.Each(func(v kadm.BrokerApiVersions) {
		if v.Err != nil {
			return
		}
		have := map[int16]bool{}
		v.EachKeySorted(func(key, _, _ int16) { have[key] = true })
		if first {
			out, first = have, false
			return
		}
		for k := range out {
			if !have[k] {
				delete(out, k)
			}
		}
	})
	return out
}

func apiName(key int16) string { return kmsg.NameForKey(key) }

type describedPartition struct {
	Partition      int32   `json:"partition"`
	Leader         int32   `json:"leader"`
	LeaderEpoch    int32   `json:"leader_epoch"`
	Replicas       []int32 `json:"replicas"`
	ISR            []int32 `json:"isr"`
	LogStartOffset int64   `json:"log_start_offset"`
	HighWatermark  int64   `json:"high_watermark"`
	SizeBytes      *int64  `json:"size_bytes"`
	Error          string  `json:"error,omitempty"`
}

type describedConfig struct {
	Name      string  `json:"name"`
	Value     *string `json:"value"`
	Source    string  `json:"source"`
	Sensitive bool    `json:"sensitive,omitempty"`
}

type describedTopic struct {
	Name              string               `json:"name"`
	ID                string               `json:"id"`
	Internal          bool                 `json:"internal"`
	ReplicationFactor int                  `json:"replication_factor"`
	Partitions        []describedPartition `json:"partitions"`
	// Configs are nil when the cluster cannot describe them;
	// ConfigsError says why.
	Configs      []describedConfig `json:"configs"`
	ConfigsError string            `json:"configs_error,omitempty"`
	SizesError   string            `json:"sizes_error,omitempty"`
}

var topicDescribeCmd = &command{
	name:    "describe",
	args:    "TOPIC... [flags]",
	summary: "show partitions, leaders, offsets, sizes and configs",
	help: `Describes topics: per partition its leader, replicas, in-sync
replicas, log start offset, high watermark and size on disk; and the
topic's configs (only those set on the topic unless --all-configs).

Examples:
  gregor topic describe events
  gregor topic describe events --all-configs
  gregor topic describe events --json | jq '.[0].partitions[].high_watermark'`,
	setup: func(r *runner, fs *flag.FlagSet) func([]string) error {
		all := fs.Bool("all-configs", false, "show every config, defaults included")
		fs.BoolVar(all, "a", false, "short for --all-configs")
		return func(args []string) error {
			if len(args) == 0 {
				return usagef("name at least one topic")
			}
			adm, ctx, done, err := r.admin()
			if err != nil {
				return err
			}
			defer done()
			topics, err := describeTopics(ctx, r, adm, args, *all)
			if err != nil {
				return err
			}
			if r.json {
				return printJSON(r.env.Stdout, topics)
			}
			w := r.env.Stdout
			for i, t := range topics {
				if i > 0 {
					fmt.Fprintln(w)
				}
				kv := newTable(w, "TOPIC", t.Name)
				kv.row("ID", t.ID)
				kv.row("PARTITIONS", len(t.Partitions))
				kv.row("REPLICATION", t.ReplicationFactor)
				kv.row("INTERNAL", t.Internal)
				kv.flush()
				fmt.Fprintln(w)
				switch {
				case t.ConfigsError != "":
					fmt.Fprintf(w, "CONFIGS  unavailable: %s\n", t.ConfigsError)
				case len(t.Configs) == 0:
					fmt.Fprintln(w, "CONFIGS  none set on the topic (--all-configs shows the defaults)")
				default:
					ct := newTable(w, "CONFIG", "VALUE", "SOURCE")
					for _, c := range t.Configs {
						v := "-"
						if c.Value != nil {
							v = *c.Value
						} else if c.Sensitive {
							v = "(sensitive)"
						}
						ct.row(c.Name, v, c.Source)
					}
					ct.flush()
				}
				fmt.Fprintln(w)
				pt := newTable(w, "PARTITION", "LEADER", "EPOCH", "REPLICAS", "ISR", "LOG-START", "HIGH-WATERMARK", "SIZE")
				for _, p := range t.Partitions {
					size := "-"
					if p.SizeBytes != nil {
						size = humanBytes(*p.SizeBytes)
					}
					if p.Error != "" {
						pt.row(p.Partition, "-", "-", "-", "-", "-", "-", "error: "+p.Error)
						continue
					}
					pt.row(p.Partition, p.Leader, p.LeaderEpoch, int32List(p.Replicas), int32List(p.ISR),
						dash(p.LogStartOffset), dash(p.HighWatermark), size)
				}
				pt.flush()
				if t.SizesError != "" {
					fmt.Fprintf(w, "(sizes unavailable: %s)\n", t.SizesError)
				}
			}
			return nil
		}
	},
}

// describeTopics gathers what topic describe shows. Metadata and
// offsets are required; configs and sizes are best effort, with the
// reason when the cluster cannot give them.
func describeTopics(ctx context.Context, r *runner, adm *kadm.Client, names []string, allConfigs bool) ([]describedTopic, error) {
	md, err := adm.ListTopicsWithInternal(ctx, names...)
	if err != nil {
		return nil, r.wrap(err, "Metadata")
	}
	for _, n := range names {
		d, ok := md[n]
		if !ok || d.Err != nil {
			if ok && !errors.Is(d.Err, kerr.UnknownTopicOrPartition) {
				return nil, fmt.Errorf("topic %q: %w", n, d.Err)
			}
			return nil, &failedError{msg: fmt.Sprintf("unknown topic %q", n)}
		}
	}
	starts, err := adm.ListStartOffsets(ctx, names...)
	if err != nil {
		return nil, r.wrap(err, "ListOffsets")
	}
	ends, err := adm.ListEndOffsets(ctx, names...)
	if err != nil {
		return nil, r.wrap(err, "ListOffsets")
	}
	apis := supported(ctx, adm)

	var configs kadm.ResourceConfigs
	var configsErr string
	if !apis[kmsg.DescribeConfigs.Int16()] {
		configsErr = "the cluster does not support " + apiName(kmsg.DescribeConfigs.Int16())
	} else if configs, err = adm.DescribeTopicConfigs(ctx, names...); err != nil {
		configsErr = r.wrap(err, "DescribeConfigs").Error()
	}
	sizes := map[string]map[int32]int64{}
	var sizesErr string
	if !apis[kmsg.DescribeLogDirs.Int16()] {
		sizesErr = "the cluster does not support " + apiName(kmsg.DescribeLogDirs.Int16())
	} else if dirs, err := adm.DescribeAllLogDirs(ctx, md.TopicsSet()); err != nil && len(dirs) == 0 {
		sizesErr = r.wrap(err, "DescribeLogDirs").Error()
	} else {
		// A partition's size is its leader's replica's (every
		// replica holds the same records); a broker that did not
		// answer (down, in a cluster) leaves its partitions without
		// one.
		dirs.Each(func(d kadm.DescribedLogDir) {
			d.Topics.Each(func(p kadm.DescribedLogDirPartition) {
				if p.IsFuture {
					return
				}
				if lp, ok := md[p.Topic].Partitions[p.Partition]; ok && lp.Leader != p.Broker {
					return
				}
				if sizes[p.Topic] == nil {
					sizes[p.Topic] = map[int32]int64{}
				}
				sizes[p.Topic][p.Partition] += p.Size
			})
		})
	}

	var out []describedTopic
	for _, n := range names {
		d := md[n]
		t := describedTopic{Name: n, ID: topicID(d.ID), Internal: d.IsInternal, ReplicationFactor: d.Partitions.NumReplicas(),
			Partitions: []describedPartition{}, ConfigsError: configsErr}
		if sizesErr != "" {
			t.SizesError = sizesErr
		}
		for _, p := range d.Partitions.Sorted() {
			dp := describedPartition{Partition: p.Partition, Leader: p.Leader, LeaderEpoch: p.LeaderEpoch,
				Replicas: nonNil(p.Replicas), ISR: nonNil(p.ISR), LogStartOffset: -1, HighWatermark: -1}
			if p.Err != nil {
				dp.Error = errorText(p.Err, "")
			}
			if o, ok := starts.Lookup(n, p.Partition); ok && o.Err == nil {
				dp.LogStartOffset = o.Offset
			}
			if o, ok := ends.Lookup(n, p.Partition); ok && o.Err == nil {
				dp.HighWatermark = o.Offset
			}
			if s, ok := sizes[n][p.Partition]; ok {
				dp.SizeBytes = &s
			}
			t.Partitions = append(t.Partitions, dp)
		}
		if configsErr == "" {
			t.Configs = []describedConfig{}
			for _, rc := range configs {
				if rc.Name != n {
					continue
				}
				if rc.Err != nil {
					t.Configs, t.ConfigsError = nil, errorText(rc.Err, rc.ErrMessage)
					break
				}
				for _, c := range rc.Configs {
					if !allConfigs && c.Source != kmsg.ConfigSourceDynamicTopicConfig {
						continue
					}
					t.Configs = append(t.Configs, describedConfig{Name: c.Key, Value: c.Value, Source: configSource(c.Source), Sensitive: c.Sensitive})
				}
			}
			sort.Slice(t.Configs, func(i, j int) bool { return t.Configs[i].Name < t.Configs[j].Name })
		}
		out = append(out, t)
	}
	return out, nil
}

func nonNil(xs []int32) []int32 {
	if xs == nil {
		return []int32{}
	}
	return slices.Clone(xs)
}

// configSource names a config's source as kafka-configs.sh does.
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

// ---- delete

var topicDeleteCmd = &command{
	name:    "delete",
	args:    "TOPIC... [flags]",
	summary: "delete topics and all their records",
	help: `Deletes topics with all their records. There is no undo.

Examples:
  gregor topic delete events
  gregor topic delete a b c --if-exists`,
	setup: func(r *runner, fs *flag.FlagSet) func([]string) error {
		ifExists := fs.Bool("if-exists", false, "succeed when a topic does not exist")
		return func(args []string) error {
			if len(args) == 0 {
				return usagef("name at least one topic")
			}
			adm, ctx, done, err := r.admin()
			if err != nil {
				return err
			}
			defer done()
			resps, err := adm.DeleteTopics(ctx, args...)
			if err != nil {
				return r.wrap(err, "DeleteTopics")
			}
			results := newItemResults("topic", "topics")
			for _, name := range args {
				resp, ok := resps[name]
				if !ok {
					resp.Err = errors.New("no answer from the cluster")
				}
				status := "deleted"
				if *ifExists && errors.Is(resp.Err, kerr.UnknownTopicOrPartition) {
					status, resp.Err = "absent", nil
				}
				results.add(name, status, resp.Err, resp.ErrMessage)
			}
			return results.print(r)
		}
	},
}

// ---- alter-config

var topicAlterConfigCmd = &command{
	name:    "alter-config",
	args:    "TOPIC... [flags]",
	summary: "set or remove topic configs",
	help: `Changes topic configs incrementally (IncrementalAlterConfigs): the
configs not named keep their values. --delete returns a config to the
cluster default.

Examples:
  gregor topic alter-config events --set retention.ms=3600000
  gregor topic alter-config events --set cleanup.policy=compact --delete retention.bytes
  gregor topic alter-config events --append cleanup.policy=compact --dry-run`,
	setup: func(r *runner, fs *flag.FlagSet) func([]string) error {
		var sets, dels, appends, subtracts multiFlag
		fs.Var(&sets, "set", "set config `NAME=VALUE` (repeatable)")
		fs.Var(&dels, "delete", "return config `NAME` to its default (repeatable)")
		fs.Var(&appends, "append", "append `NAME=VALUE` to a list config (repeatable)")
		fs.Var(&subtracts, "subtract", "remove `NAME=VALUE` from a list config (repeatable)")
		dry := fs.Bool("dry-run", false, "validate only; change nothing")
		return func(args []string) error {
			if len(args) == 0 {
				return usagef("name at least one topic")
			}
			var alters []kadm.AlterConfig
			for _, op := range []struct {
				flag string
				kvs  []string
				op   kadm.IncrementalOp
			}{{"--set", sets, kadm.SetConfig}, {"--append", appends, kadm.AppendConfig}, {"--subtract", subtracts, kadm.SubtractConfig}} {
				m, order, err := keyValues(op.flag, op.kvs)
				if err != nil {
					return err
				}
				for _, k := range order {
					v := m[k]
					alters = append(alters, kadm.AlterConfig{Op: op.op, Name: k, Value: &v})
				}
			}
			for _, k := range dels {
				alters = append(alters, kadm.AlterConfig{Op: kadm.DeleteConfig, Name: k})
			}
			if len(alters) == 0 {
				return usagef("nothing to change: give --set, --delete, --append or --subtract")
			}
			adm, ctx, done, err := r.admin()
			if err != nil {
				return err
			}
			defer done()
			alter := adm.AlterTopicConfigs
			if *dry {
				alter = adm.ValidateAlterTopicConfigs
			}
			resps, err := alter(ctx, alters, args...)
			if err != nil {
				return r.wrap(err, "IncrementalAlterConfigs")
			}
			byName := map[string]kadm.AlterConfigsResponse{}
			for _, resp := range resps {
				byName[resp.Name] = resp
			}
			status := "altered"
			if *dry {
				status = "valid"
			}
			results := newItemResults("topic", "topics")
			for _, name := range args {
				resp, ok := byName[name]
				if !ok {
					resp.Err = errors.New("no answer from the cluster")
				}
				results.add(name, status, resp.Err, resp.ErrMessage)
			}
			return results.print(r)
		}
	},
}

// ---- add-partitions

var topicAddPartitionsCmd = &command{
	name:    "add-partitions",
	args:    "TOPIC... (-n COUNT | --total COUNT) [flags]",
	summary: "add partitions to topics",
	help: `Adds partitions to topics. Kafka never removes partitions, and keyed
records may map to other partitions afterwards.

Examples:
  gregor topic add-partitions events -n 3        # three more
  gregor topic add-partitions events --total 12  # up to twelve in all`,
	setup: func(r *runner, fs *flag.FlagSet) func([]string) error {
		add := fs.Int("num", 0, "partitions to add")
		fs.IntVar(add, "n", 0, "short for --num")
		total := fs.Int("total", 0, "the partition count to grow to")
		dry := fs.Bool("dry-run", false, "validate only; change nothing")
		return func(args []string) error {
			if len(args) == 0 {
				return usagef("name at least one topic")
			}
			if (*add > 0) == (*total > 0) {
				return usagef("give exactly one of -n COUNT (to add) or --total COUNT")
			}
			r.allowForPartitions(fs, max(*add, *total)*len(args))
			adm, ctx, done, err := r.admin()
			if err != nil {
				return err
			}
			defer done()
			var resps kadm.CreatePartitionsResponses
			switch {
			case *add > 0 && *dry:
				resps, err = adm.ValidateCreatePartitions(ctx, *add, args...)
			case *add > 0:
				resps, err = adm.CreatePartitions(ctx, *add, args...)
			case *dry:
				resps, err = adm.ValidateUpdatePartitions(ctx, *total, args...)
			default:
				resps, err = adm.UpdatePartitions(ctx, *total, args...)
			}
			if err != nil {
				return r.wrap(err, "CreatePartitions")
			}
			type result struct {
				Topic      string `json:"topic"`
				Status     string `json:"status"`
				Partitions int    `json:"partitions,omitempty"`
				Error      string `json:"error,omitempty"`
			}
			var results []result
			var errs []error
			var ok []string
			for _, name := range args {
				resp, found := resps[name]
				if !found {
					resp.Err = errors.New("no answer from the cluster")
				}
				res := result{Topic: name, Status: "added"}
				if *dry {
					res.Status = "valid"
				}
				if resp.Err != nil {
					res.Status, res.Error = "failed", errorText(resp.Err, resp.ErrMessage)
					errs = append(errs, itemError(name, res.Error, resp.Err))
				} else {
					errs = append(errs, nil)
					ok = append(ok, name)
				}
				results = append(results, res)
			}
			// Show the resulting counts, as the user wants to know.
			if len(ok) > 0 {
				if md, err := adm.ListTopicsWithInternal(ctx, ok...); err == nil {
					for i := range results {
						if d, found := md[results[i].Topic]; found && results[i].Error == "" {
							results[i].Partitions = len(d.Partitions)
						}
					}
				}
			}
			if r.json {
				if err := printJSON(r.env.Stdout, results); err != nil {
					return err
				}
			} else {
				t := newTable(r.env.Stdout, "TOPIC", "PARTITIONS", "STATUS")
				for _, res := range results {
					s := res.Status
					if res.Error != "" {
						s += ": " + res.Error
					}
					parts := any(res.Partitions)
					if res.Partitions == 0 {
						parts = "-"
					}
					t.row(res.Topic, parts, s)
				}
				t.flush()
			}
			return itemFailure(errs, "topics")
		}
	},
}
