// Package group is the consumer group coordinator: Kafka's classic group
// protocol (JoinGroup, SyncGroup, Heartbeat, LeaveGroup), the consumer
// groups of KIP-848 (ConsumerGroupHeartbeat: the coordinator assigns;
// consumer.go) and committed offsets, stored in the compacted internal
// topic __consumer_offsets.
//
// # Structure
//
// Group is a deterministic state machine, one per group ID, with Kafka's
// states Empty, PreparingRebalance, CompletingRebalance, Stable and Dead.
// It does no I/O and reads no clock: every call takes the current time,
// timers are deadlines that the owner asks for with Deadline and fires
// with Tick, and writes leave through an appender whose completion the
// owner feeds back later. The data-driven scripts under testdata/ pin its
// behaviour (go test -run TestScripts -rewrite regenerates them).
//
// Coordinator owns the groups of the __consumer_offsets partitions this
// broker leads. Each group is owned by one mailbox: requests, append
// completions and timer firings are queued to it and run one at a time
// by a goroutine that exists only while the mailbox has work. No lock is
// shared by two groups' state; a shard's mutex guards only its map of
// mailboxes. See docs/GROUPS.md.
//
// In a cluster the leadership of __consumer_offsets partitions moves:
// the broker tells the coordinator with Elect (load the partition from
// its log, at a new leader epoch) and Resign (drop its groups, answering
// what waits on them NOT_COORDINATOR), as Kafka's
// GroupCoordinator.onElection and onResignation (leadership.go). Each
// change starts a new generation of the partition: a stale load is
// discarded, and the old generation's mailboxes are retired, routing
// the requests that reach them again and dropping late completions and
// timers.
//
// # Storage
//
// The group of ID G lives in partition abs(javaHash(G)) % N of
// __consumer_offsets, exactly as Kafka computes it, so tools agree on
// the coordinator. Records use Kafka's own schemas (kmsg), the key and
// value each starting with an int16 schema version:
//
//	key version 0/1  OffsetCommitKey   group, topic, partition
//	                 OffsetCommitValue v3 (v1 when the commit carried a
//	                 retention time): offset, leader epoch, metadata,
//	                 commit timestamp [, expire timestamp]
//	key version 2    GroupMetadataKey  group
//	                 GroupMetadataValue v3: protocol type, generation,
//	                 protocol, leader, state timestamp, members with
//	                 their subscription and assignment
//	key version 3-8  KIP-848 consumer group records (consumer_records.go)
//	null value       tombstone: the offset or the group is deleted
//
// Other key versions (share and streams groups) are skipped on load. A record
// batch holds one request's records, appended with producer ID -1, and
// the request is answered once it is durable. Transactional offset
// commits (TxnOffsetCommit) are a transactional batch of the producer
// instead, held aside until the transaction's marker in the same
// partition commits or aborts them (txn.go).
package group
