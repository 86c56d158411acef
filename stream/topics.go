package stream

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
)

// internalTopic is a topic the App creates: a repartition topic or a
// changelog.
type internalTopic struct {
	partitions int32
	configs    map[string]*string
}

// prepareTopics sizes the sub-topologies from the source topics'
// partition counts and creates the internal topics that are missing,
// checking the partition counts of those that exist.
func (a *App) prepareTopics(ctx context.Context) error {
	var users []string
	for _, s := range a.topo.subs {
		users = append(users, s.userSources...)
	}
	details, err := a.adm.ListTopics(ctx, users...)
	if err != nil {
		return fmt.Errorf("stream: describe source topics: %w", err)
	}
	counts := map[string]int32{}
	for _, topic := range users {
		d, ok := details[topic]
		switch {
		case !ok || errors.Is(d.Err, kerr.UnknownTopicOrPartition):
			return fmt.Errorf("stream: source topic %q does not exist", topic)
		case d.Err != nil:
			return fmt.Errorf("stream: source topic %q: %w", topic, d.Err)
		}
		counts[topic] = int32(len(d.Partitions))
	}
	rep, err := a.topo.resolvePartitions(counts)
	if err != nil {
		return err
	}
	want := map[string]internalTopic{}
	for topic, n := range rep {
		want[topic] = internalTopic{partitions: n, configs: map[string]*string{"cleanup.policy": ptr("delete")}}
	}
	for name, s := range a.topo.storeSub {
		want[a.topo.changelogTopic(name)] = internalTopic{partitions: s.partitions, configs: map[string]*string{"cleanup.policy": ptr("compact")}}
	}
	return a.ensureTopics(ctx, want)
}

// ensureTopics creates the topics of want that do not exist. One that
// exists must have the partition count wanted: a changelog partition
// belongs to one task, and a repartition topic must be co-partitioned
// with the topics its sub-topology reads.
func (a *App) ensureTopics(ctx context.Context, want map[string]internalTopic) error {
	if len(want) == 0 {
		return nil
	}
	names := slices.Sorted(maps.Keys(want))
	existing, err := a.adm.ListTopics(ctx, names...)
	if err != nil {
		return fmt.Errorf("stream: describe internal topics: %w", err)
	}
	for _, name := range names {
		w := want[name]
		if d, ok := existing[name]; ok && d.Err == nil {
			if n := int32(len(d.Partitions)); n != w.partitions {
				return fmt.Errorf("stream: internal topic %s has %d partitions; the topology needs %d (delete it, or the application's internal topics, to reset)", name, n, w.partitions)
			}
			continue
		}
		resp, err := a.adm.CreateTopic(ctx, w.partitions, a.cfg.ReplicationFactor, w.configs, name)
		if err == nil {
			err = resp.Err
		}
		if errors.Is(err, kerr.TopicAlreadyExists) {
			// Another instance created it a moment ago; Run checks
			// partition counts on its next start.
			continue
		}
		if err != nil {
			return fmt.Errorf("stream: create internal topic %s: %w", name, err)
		}
		a.log.Info("stream: created internal topic", "topic", name, "partitions", w.partitions)
	}
	return nil
}

func ptr(s string) *string { return &s }
