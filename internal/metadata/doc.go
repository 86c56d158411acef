// Package metadata holds the cluster metadata: a log of records applied by
// a deterministic Apply to an immutable Image.
//
// Every change to topics, partitions, configs, ACLs, quotas and
// producer-ID blocks is a Record. Apply(image, records) returns a new
// Image and never mutates the old one, so readers load the current Image
// from an atomic pointer without locks.
//
// The Store replicates the log through Raft (internal/raftnode, over
// go.etcd.io/raft), as Kafka's KRaft does: the controllers are the
// voters, every node applies the same batches in the same order and
// holds the same images. A single node is a quorum of one running the
// same code (DESIGN.md, "Cluster: metadata and controller"). Each log
// entry is a JSON batch of records with the offset of the image it was
// computed from (an optimistic check: a batch made stale by another is
// skipped and computed again); an image's Offset is the Raft index of
// the last batch applied to it. Snapshots (snapshot.go) hold the image
// as JSON behind a CRC-32C line.
//
// A data directory written before the log was replicated holds a log of
// the store's own (legacy.go); it is imported once into the replicated
// log and its files are renamed with an ".imported" suffix.
package metadata
