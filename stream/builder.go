package stream

import (
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Builder collects a topology: the sources, operations, stores and
// sinks that New turns into an App. Operations record problems (a nil
// serde, a store name used twice) in the Builder and New reports them,
// as Kafka Streams' TopologyException does. A Builder is not safe for
// concurrent use; once passed to New it must not change, and it may be
// passed to New several times (several instances in one process).
type Builder struct {
	nodes []*node
	// stores by name, in creation order in storeOrder.
	stores     map[string]*storeSpec
	storeOrder []string
	// sources maps each source topic, and each repartition name, to the
	// node reading it.
	sources      map[string]*node
	repartitions map[string]*node
	errs         []error
}

// NewBuilder returns an empty topology.
func NewBuilder() *Builder {
	return &Builder{
		stores:       map[string]*storeSpec{},
		sources:      map[string]*node{},
		repartitions: map[string]*node{},
	}
}

func (b *Builder) fail(format string, args ...any) {
	b.errs = append(b.errs, fmt.Errorf("stream: "+format, args...))
}

func (b *Builder) err() error { return errors.Join(b.errs...) }

// rec is a record inside a task: the typed key and value boxed in any,
// and the timestamp in milliseconds. del marks a table source's
// tombstone (a null value).
type rec struct {
	key, value any
	ts         int64
	del        bool
}

// as unboxes a value; a nil box gives T's zero value, so a processor
// never panics on a missing value.
func as[T any](x any) T {
	v, _ := x.(T)
	return v
}

// node is one processor of the topology. Nodes are immutable once the
// topology is built, and shared by every task and every App built from
// the Builder: per-task state lives in the task's stores.
type node struct {
	id       int
	kind     string
	children []*node
	// src is set on source nodes: the records of one topic (or of one
	// repartition topic) enter the topology here.
	src *source
	// process handles a record that a parent forwarded; n is the node
	// itself, for forwarding. Nil on source nodes.
	process func(t *task, n *node, r rec) error
	// sinkTopic is the topic a sink writes ("" for other nodes);
	// repartition names the repartition topic a node writes or reads.
	sinkTopic   string
	repartition string
	// stores are the names of the stores the node reads or writes.
	stores []string
}

// source decodes the records of one topic.
type source struct {
	topic       string // "" for a repartition source
	repartition string // the repartition name, for a repartition source
	decode      func(*kgo.Record) (rec, error)
}

// forward hands r to every child of n, depth first, in the order the
// children were attached.
func (n *node) forward(t *task, r rec) error {
	for _, c := range n.children {
		if err := c.process(t, c, r); err != nil {
			return err
		}
	}
	return nil
}

// add appends a processing node below parents.
func (b *Builder) add(kind string, process func(t *task, n *node, r rec) error, parents ...*node) *node {
	n := &node{id: len(b.nodes), kind: kind, process: process}
	b.nodes = append(b.nodes, n)
	for _, p := range parents {
		if p != nil {
			p.children = append(p.children, n)
		}
	}
	return n
}

// addSource adds a node reading topic (or, with repartition set, the
// repartition topic of that name).
func (b *Builder) addSource(topic, repartition string, decode func(*kgo.Record) (rec, error)) *node {
	n := &node{id: len(b.nodes), kind: "source", src: &source{topic: topic, repartition: repartition, decode: decode}}
	if repartition != "" {
		n.kind = "repartition-source"
		n.repartition = repartition
	}
	b.nodes = append(b.nodes, n)
	return n
}

// addStore registers a store, failing on a duplicate or empty name.
func (b *Builder) addStore(spec *storeSpec) bool {
	if spec.name == "" {
		b.fail("a stateful operation needs a store name")
		return false
	}
	if !validName(spec.name) {
		b.fail("store name %q: use only letters, digits, '.', '_' and '-'", spec.name)
		return false
	}
	if _, dup := b.stores[spec.name]; dup {
		b.fail("store name %q used twice", spec.name)
		return false
	}
	b.stores[spec.name] = spec
	b.storeOrder = append(b.storeOrder, spec.name)
	return true
}

// validName reports whether s can be part of a topic name (Kafka's
// legal characters).
func validName(s string) bool {
	if s == "" || len(s) > 200 {
		return false
	}
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}
