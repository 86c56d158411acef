package group

import (
	"log/slog"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// loader rebuilds groups from __consumer_offsets records in log order,
// with Kafka's precedence: the latest metadata record (or tombstone) of
// a group, and per partition the latest offset record (or tombstone).
// A group tombstone does not drop offsets (their own tombstones do);
// offsets of a group without metadata make an offsets-only group.
type loader struct {
	log   *slog.Logger
	metas map[string]*kmsg.GroupMetadataValue
	// cons holds consumer groups' (KIP-848) records.
	cons map[string]*cgLoad
	offs map[string]map[topicPartition]*offset
	// order is the order groups first appeared in, so loading is
	// deterministic.
	order []string
	seen  map[string]bool
	// txn holds transactional commits not yet ended by a marker, by
	// producer ID and group (txn.go).
	txn map[int64]map[string]map[topicPartition]*offset
}

func newLoader(log *slog.Logger) *loader {
	return &loader{
		log:   log,
		metas: map[string]*kmsg.GroupMetadataValue{},
		cons:  map[string]*cgLoad{},
		offs:  map[string]map[topicPartition]*offset{},
		seen:  map[string]bool{},
		txn:   map[int64]map[string]map[topicPartition]*offset{},
	}
}

// apply applies one record. Key and value may alias a buffer that is
// reused afterwards: kmsg copies strings, and byte fields are cloned.
func (ld *loader) apply(off int64, key, value []byte) {
	d, ok, err := decodeRecord(key, value)
	if err != nil {
		ld.log.Warn("skipping malformed __consumer_offsets record", "offset", off, "err", err)
		return
	}
	if !ok {
		return
	}
	if !ld.seen[d.group] {
		ld.seen[d.group] = true
		ld.order = append(ld.order, d.group)
	}
	if d.isConsumer {
		l := ld.cons[d.group]
		if l == nil {
			l = newCGLoad()
			ld.cons[d.group] = l
		}
		l.apply(d.cg)
		return
	}
	if d.isGroup {
		if d.meta == nil {
			delete(ld.metas, d.group)
			return
		}
		v := d.meta
		for i := range v.Members {
			m := &v.Members[i]
			m.Subscription = slices.Clone(m.Subscription)
			m.Assignment = slices.Clone(m.Assignment)
		}
		ld.metas[d.group] = v
		return
	}
	m := ld.offs[d.group]
	if m == nil {
		m = map[topicPartition]*offset{}
		ld.offs[d.group] = m
	}
	tp := topicPartition{d.topic, d.partition}
	if d.offset == nil {
		delete(m, tp)
		return
	}
	d.offset.order = uint64(off)
	m[tp] = d.offset
}

// groups returns the loaded groups, their sessions starting at now.
func (ld *loader) groups(now time.Time, cfg *Config) map[string]*Group {
	out := map[string]*Group{}
	// Transactions still open at the end of the log keep their commits
	// aside, by group. Offsets keep their log offsets as their order,
	// so a transaction that commits after loading replaces only older
	// ones; commits made after loading count on from the largest.
	open := map[string]map[int64]map[topicPartition]*offset{}
	for pid, byGroup := range ld.txn {
		for group, m := range byGroup {
			if open[group] == nil {
				open[group] = map[int64]map[topicPartition]*offset{}
			}
			open[group][pid] = m
		}
	}
	for _, id := range ld.order {
		meta := ld.metas[id]
		cons := ld.cons[id]
		if cons != nil && !cons.hasMeta {
			cons = nil
		}
		if meta == nil && cons == nil && len(ld.offs[id]) == 0 && len(open[id]) == 0 {
			continue
		}
		g := newGroup(id, cfg, nil, ld.log)
		switch {
		case cons != nil:
			// A group converted to a consumer group tombstoned its
			// classic metadata, so at most one survives.
			g.loadConsumer(cons)
		case meta != nil:
			g.loadMetadata(meta)
		}
		for tp, o := range ld.offs[id] {
			g.loadOffset(tp.topic, tp.partition, o)
			g.offsets.seq = max(g.offsets.seq, o.order)
		}
		for pid, m := range open[id] {
			g.offsets.txn[pid] = m
			for _, o := range m {
				g.offsets.seq = max(g.offsets.seq, o.order)
			}
		}
		g.loaded(now)
		out[id] = g
	}
	return out
}
