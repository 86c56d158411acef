// Package txn is the transaction coordinator: Kafka's exactly-once
// machinery on the coordinator side (KIP-98, KIP-360, KIP-588, KIP-890).
// It hands producer IDs and epochs to transactional producers, tracks
// each transactional ID's transaction through Kafka's states, writes
// them to the compacted internal topic __transaction_state, and has the
// commit or abort markers written to every partition of a transaction.
//
// # Structure
//
// Coordinator owns the transactional IDs of the __transaction_state
// partitions this broker leads. Each transactional ID is owned by one
// mailbox: requests, log-write completions, marker completions and timer
// firings are queued to it and run one at a time by a goroutine that
// exists only while the mailbox has work (as package group does for
// groups). A request that finds its transaction busy (a state write in
// flight, markers being written) is parked on the mailbox and runs again
// when the transaction settles, rather than being bounced with
// CONCURRENT_TRANSACTIONS as Kafka does; a client sees the same outcome
// sooner. It is bounced only while markers keep failing.
//
// The broker satisfies the two interfaces the coordinator writes
// through: Log (appends to and replays __transaction_state) and
// MarkerWriter (appends a control batch to each partition of a
// transaction, the data partitions and the __consumer_offsets
// partitions of transactional offset commits alike).
//
// # States
//
//	Empty ──AddPartitions──▶ Ongoing ──EndTxn──▶ PrepareCommit ──markers──▶ CompleteCommit
//	  ▲                        │  ▲                PrepareAbort ──markers──▶ CompleteAbort
//	  └── InitProducerID ◀─────┘  └─────── AddPartitions (next transaction) ◀──┘
//
// InitProducerID during Ongoing fences the producer: the epoch is bumped,
// the transaction aborted, and the caller told CONCURRENT_TRANSACTIONS
// so it retries (and bumps the epoch once more). A transaction Ongoing
// for longer than its timeout is aborted the same way by a periodic
// sweep (transaction.abort.timed.out.transaction.cleanup.interval.ms),
// which also removes transactional IDs idle for
// transactional.id.expiration.ms.
//
// Under transactions v2 (KIP-890, EndTxn v5+, produce v12+ adding
// partitions implicitly) every EndTxn bumps the epoch: Prepare* is
// written with the new epoch, the markers carry it, and partitions then
// refuse the old epoch, so a delayed produce or EndTxn of the previous
// transaction is fenced instead of landing in the next one
// (KAFKA-17754). A v2 EndTxn retried with the epoch before the bump is
// recognised as a retry.
//
// # Storage
//
// The transactional ID T lives in partition abs(javaHashCode(T)) % N of
// __transaction_state (N = transaction.state.log.num.partitions), as
// Kafka computes it. Each state change is one record, with Kafka's
// schemas so its tools can read them: key TxnMetadataKey v0 (the
// transactional ID), value TxnMetadataValue v1 (producer ID, epoch,
// timeout, state, partitions, timestamps, and the KIP-890 tagged fields
// previous and next producer ID and client transaction version). A null
// value removes an expired transactional ID. The log is replayed on
// start; transactions found in PrepareCommit or PrepareAbort have their
// markers written again, open ones are left to finish or time out.
//
// # Leadership
//
// In a cluster the leadership of __transaction_state partitions moves:
// the broker tells the coordinator with Elect (load the partition from
// its log at a new leader epoch, and complete the transactions found
// prepared) and Resign (drop its transactional IDs, their timers and
// marker retries), as Kafka's TransactionCoordinator.onElection and
// onResignation (leadership.go). The leader epoch an Elect gives is the
// coordinator epoch of the partition's markers, as in Kafka: a data
// partition refuses markers of a coordinator epoch older than the last
// it saw, so a deposed coordinator cannot end a transaction its
// successor decides. Partitions Start loads without an Elect write
// Options.CoordinatorEpoch.
package txn
