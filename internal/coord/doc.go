// Package coord is the lifecycle machinery the group and transaction
// coordinators share: the busy count Close waits for (Busy), the
// partitions of an internal topic and their background loading
// (Shards, Shard), and a mailbox's queue (Queue).
//
// Each coordinator owns one key (a group ID, a transactional ID) by a
// mailbox: messages are queued to it and run in order by one goroutine
// that exists while the queue is non-empty. What a mailbox runs, how a
// partition is replayed and what shutdown answers stay in the
// coordinators; this package only holds what must behave the same in
// both. Lock order, as the coordinators document it: the coordinator's
// mu, Shard's lock, the mailbox's Queue lock.
//
// A partition's leadership may move after Start (a cluster's leader
// election): Shard numbers its leaderships in generations, so the
// coordinators load a partition they come to lead (Shards.Reload), drop
// one they stop leading, and discard a load or a mailbox of a
// leadership that ended (Shard.ElectLocked, Shard.ResignLocked,
// Shard.Current).
package coord
