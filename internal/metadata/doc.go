// Package metadata holds the cluster metadata: a log of records applied by
// a deterministic Apply to an immutable Image.
//
// Every change to topics, partitions, configs and producer-ID blocks is a
// Record. Apply(image, records) returns a new Image and never mutates the
// old one, so readers load the current Image from an atomic pointer without
// locks. The Store persists the records in a checksummed log with periodic
// image snapshots and replays them on start; the Raft controller will
// replicate this same log (DESIGN.md, "Cluster: metadata and controller").
//
// Log file layout (metadata.log), one frame per committed batch of records:
//
//	length uint32   bytes of payload
//	crc    uint32   CRC-32C of payload
//	payload         JSON: {"offset": n, "records": [Record...]}
//
// A snapshot (snapshot.json, written atomically) holds the image at an
// offset; the log then holds only later batches. A torn or corrupt frame at
// the tail is truncated on open.
package metadata
