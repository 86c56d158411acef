package stream

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// topology is a Builder compiled for one application ID: the
// sub-topologies and the names of the internal topics. It is built by
// New; partition counts are filled in by Run once the cluster is known.
type topology struct {
	appID string
	subs  []*subTopology
	// source is the node reading each source topic (repartition topics
	// included), subOf the sub-topology it belongs to.
	source map[string]*node
	subOf  map[string]*subTopology
	stores map[string]*storeSpec
	// storeSub is the sub-topology whose tasks hold each store.
	storeSub map[string]*subTopology
	// repTopic maps a repartition name to its topic; writers lists the
	// sub-topologies writing each repartition topic.
	repTopic map[string]string
	writers  map[string][]*subTopology
	sinks    []string
}

// subTopology is a connected part of the topology: nodes linked by
// record flow or by a shared store. It runs as one task per partition
// number of its source topics.
type subTopology struct {
	id int
	// sources are all the topics the sub-topology reads, sorted;
	// userSources and repSources split them.
	sources, userSources, repSources []string
	stores                           []string
	// partitions is the task count, set by Run: the partition count of
	// every source topic (co-partitioning).
	partitions int32
}

func (t *topology) repartitionTopic(name string) string { return t.repTopic[name] }

func (t *topology) changelogTopic(store string) string {
	return t.appID + "-" + store + "-changelog"
}

// compile splits b's nodes into sub-topologies with a union-find over
// parent-child edges and shared stores. Repartition topics are the
// only cut: their sink and source are separate nodes with no edge.
func compile(b *Builder, appID string) (*topology, error) {
	if err := b.err(); err != nil {
		return nil, err
	}
	if len(b.sources) == 0 {
		return nil, errors.New("stream: the topology has no source")
	}
	parent := make([]int, len(b.nodes))
	for i := range parent {
		parent[i] = i
	}
	var find func(int) int
	find = func(i int) int {
		for parent[i] != i {
			parent[i] = parent[parent[i]]
			i = parent[i]
		}
		return i
	}
	union := func(a, b int) {
		ra, rb := find(a), find(b)
		if ra < rb {
			parent[rb] = ra
		} else {
			parent[ra] = rb
		}
	}
	users := map[string][]int{}
	for _, n := range b.nodes {
		for _, c := range n.children {
			union(n.id, c.id)
		}
		for _, s := range n.stores {
			users[s] = append(users[s], n.id)
		}
	}
	for _, ids := range users {
		for _, id := range ids[1:] {
			union(ids[0], id)
		}
	}

	t := &topology{
		appID:    appID,
		source:   map[string]*node{},
		subOf:    map[string]*subTopology{},
		stores:   b.stores,
		storeSub: map[string]*subTopology{},
		repTopic: map[string]string{},
		writers:  map[string][]*subTopology{},
	}
	for name := range b.repartitions {
		t.repTopic[name] = appID + "-" + name + "-repartition"
	}
	byRoot := map[int]*subTopology{}
	subOfNode := func(n *node) *subTopology {
		r := find(n.id)
		s := byRoot[r]
		if s == nil {
			// Roots are the smallest node ID of their component and
			// nodes are visited in ID order, so numbering follows the
			// order the program built the topology: deterministic.
			s = &subTopology{id: len(t.subs)}
			byRoot[r] = s
			t.subs = append(t.subs, s)
		}
		return s
	}
	sinks := map[string]bool{}
	for _, n := range b.nodes {
		s := subOfNode(n)
		switch {
		case n.src != nil && n.src.repartition != "":
			topic := t.repTopic[n.src.repartition]
			s.sources = append(s.sources, topic)
			s.repSources = append(s.repSources, topic)
			t.source[topic], t.subOf[topic] = n, s
		case n.src != nil:
			s.sources = append(s.sources, n.src.topic)
			s.userSources = append(s.userSources, n.src.topic)
			t.source[n.src.topic], t.subOf[n.src.topic] = n, s
		case n.kind == "repartition-sink":
			topic := t.repTopic[n.repartition]
			if !slices.Contains(t.writers[topic], s) {
				t.writers[topic] = append(t.writers[topic], s)
			}
		case n.sinkTopic != "":
			sinks[n.sinkTopic] = true
		}
	}
	for _, name := range b.storeOrder {
		ids := users[name]
		if len(ids) == 0 {
			continue
		}
		s := subOfNode(b.nodes[ids[0]])
		s.stores = append(s.stores, name)
		t.storeSub[name] = s
	}
	for _, s := range t.subs {
		if len(s.sources) == 0 {
			return nil, fmt.Errorf("stream: sub-topology %d reads no topic", s.id)
		}
		sort.Strings(s.sources)
		sort.Strings(s.userSources)
		sort.Strings(s.repSources)
		sort.Strings(s.stores)
	}
	for topic := range sinks {
		if _, ok := t.subOf[topic]; ok {
			// Kafka Streams allows this too, but a topology reading its
			// own output is nearly always a mistake, and with
			// co-partitioning it would loop records forever.
			return nil, fmt.Errorf("stream: topic %q is both a source and a sink of the topology", topic)
		}
		t.sinks = append(t.sinks, topic)
	}
	sort.Strings(t.sinks)
	return t, nil
}

// resolvePartitions sets every sub-topology's task count from the
// partition counts of the user topics it reads (which must agree) or,
// for one reading only repartition topics, from the largest task count
// of the sub-topologies writing them, as Kafka Streams sizes
// repartition topics. It returns the partition count each repartition
// topic must have.
func (t *topology) resolvePartitions(user map[string]int32) (map[string]int32, error) {
	rep := map[string]int32{}
	for range len(t.subs) + 1 {
		progress := false
		for _, s := range t.subs {
			if s.partitions > 0 {
				continue
			}
			var n int32
			for _, topic := range s.userSources {
				switch c := user[topic]; {
				case c <= 0:
					return nil, fmt.Errorf("stream: source topic %q: unknown partition count", topic)
				case n == 0:
					n = c
				case c != n:
					return nil, fmt.Errorf("stream: sub-topology %d reads topics that are not co-partitioned: %s", s.id, t.describeCounts(s, user))
				}
			}
			if n == 0 {
				ready := true
				for _, topic := range s.repSources {
					for _, w := range t.writers[topic] {
						if w.partitions == 0 {
							ready = false
						}
						n = max(n, w.partitions)
					}
				}
				if !ready {
					continue
				}
			}
			if n == 0 {
				return nil, fmt.Errorf("stream: sub-topology %d: no partition count", s.id)
			}
			s.partitions = n
			for _, topic := range s.repSources {
				rep[topic] = n
			}
			progress = true
		}
		if !progress {
			break
		}
	}
	for _, s := range t.subs {
		if s.partitions == 0 {
			return nil, fmt.Errorf("stream: sub-topology %d: cannot size its repartition topics %v", s.id, s.repSources)
		}
	}
	return rep, nil
}

func (t *topology) describeCounts(s *subTopology, user map[string]int32) string {
	var parts []string
	for _, topic := range s.userSources {
		parts = append(parts, fmt.Sprintf("%s has %d", topic, user[topic]))
	}
	return strings.Join(parts, ", ")
}

// sourceTopics lists every topic the App's consumer group reads.
func (t *topology) sourceTopics() []string {
	var out []string
	for topic := range t.subOf {
		out = append(out, topic)
	}
	sort.Strings(out)
	return out
}

// tasksOf maps assigned or revoked partitions to their tasks.
func (t *topology) tasksOf(parts map[string][]int32) []taskID {
	seen := map[taskID]bool{}
	var out []taskID
	for topic, ps := range parts {
		s := t.subOf[topic]
		if s == nil {
			continue
		}
		for _, p := range ps {
			id := taskID{s.id, p}
			if !seen[id] {
				seen[id] = true
				out = append(out, id)
			}
		}
	}
	slices.SortFunc(out, func(a, b taskID) int { return a.compare(b) })
	return out
}

// Describe returns a text description of the topology's sub-topologies,
// their sources, stores and sinks, with internal topic names for the
// application ID appID.
func (b *Builder) Describe(appID string) string {
	t, err := compile(b, appID)
	if err != nil {
		return err.Error()
	}
	var sb strings.Builder
	for _, s := range t.subs {
		fmt.Fprintf(&sb, "sub-topology %d\n", s.id)
		fmt.Fprintf(&sb, "  sources: %s\n", strings.Join(s.sources, ", "))
		for _, st := range s.stores {
			fmt.Fprintf(&sb, "  store: %s (changelog %s)\n", st, t.changelogTopic(st))
		}
		var outs []string
		for topic, ws := range t.writers {
			if slices.Contains(ws, s) {
				outs = append(outs, topic)
			}
		}
		sort.Strings(outs)
		for _, topic := range outs {
			fmt.Fprintf(&sb, "  repartition: %s\n", topic)
		}
	}
	if len(t.sinks) > 0 {
		fmt.Fprintf(&sb, "sinks: %s\n", strings.Join(t.sinks, ", "))
	}
	return sb.String()
}
