// Package partlog is the on-disk partition log: a directory of segments
// holding RecordBatch v2 batches exactly as produced (after the broker set
// baseOffset and partitionLeaderEpoch), with Kafka's sparse offset index
// and time index per segment, group-committed fsyncs, crash recovery and
// retention support.
//
// # Files
//
// A partition directory "<topic>-<partition>" holds, per segment, three
// files named by the segment's base offset in 20 zero-padded digits, and
// one checkpoint:
//
//	00000000000000000000.log        batches
//	00000000000000000000.index      offset index
//	00000000000000000000.timeindex  time index
//	00000000000000004711.log        next segment (base offset 4711) ...
//	partition.checkpoint            offsets, clean-shutdown flag, leader epochs
//
// The active segment's index files appear with their first entries
// (written by the checkpoint, a roll or a clean close); until then a
// missing one is an empty one. Every closed segment has both, empty or
// not. A new partition is thus one segment file, not three: creating
// files is most of a large topic's creation.
//
// Only while a compaction swaps segments in (see compact.go) does it
// also hold the new segment's files under <base>.log.cleaned,
// .index.cleaned and .timeindex.cleaned, and an empty commit marker
// <base>.<next>.swap.
//
// A Syncer with a journal (journal.go) also keeps, in a directory of
// its own, the write-ahead files <20-digit number>.wal that hold small
// appends of every log until their segments are synced.
//
// # .log
//
// Back-to-back RecordBatch v2 batches, big-endian, byte-identical to what
// clients fetch (see package batch for the header):
//
//	+----------------+----------------+----------------------+-------+-------+----------+
//	| baseOffset i64 | batchLength i32| partitionLeaderEpoch | magic | crc   | attrs... |
//	|                |                | i32                  | i8 =2 | u32   | records  |
//	+----------------+----------------+----------------------+-------+-------+----------+
//	|<------------------------- batchLength + 12 bytes per batch ------------------->|
//
// Offsets inside a segment increase strictly; relative offsets
// (offset - base) fit in int32 and positions in int32 (segment.bytes is at
// most 2 GiB), as in Kafka.
//
// # .index (offset index)
//
// Sparse, 8-byte entries, strictly increasing in both fields:
//
//	+--------------------+--------------+
//	| relativeOffset i32 | position i32 |   the batch whose LAST offset is
//	+--------------------+--------------+   base+relativeOffset starts at
//	                                        byte position of the .log
//
// An entry is added for a batch when more than index.interval.bytes were
// appended since the previous entry (Kafka's rule; the first batch of a
// segment has none, position 0 is implicit). Recovery also adds one for
// the first batch after a corrupt range so the data after it stays
// reachable. Lookup: the last entry with relativeOffset <= target, then a
// scan of batch headers from its position. The active segment keeps its
// newest entries (at most 128) in memory and appends them to the file in
// blocks; the file is complete after a roll or Close.
//
// # .timeindex (time index)
//
// 12-byte entries, timestamps strictly increasing:
//
//	+--------------+--------------------+
//	| timestamp i64| relativeOffset i32 |   the largest batch maxTimestamp
//	+--------------+--------------------+   up to here is timestamp, first
//	                                        reached by the batch whose last
//	                                        offset is base+relativeOffset
//
// An entry is appended at an offset index entry when the segment's max
// timestamp grew since the last one, and once more when the segment stops
// being active (roll, Close), so the last entry is the segment's max
// timestamp. Lookup for timestamp T: the last entry with timestamp <= T;
// every record before its batch is older than T.
//
// # partition.checkpoint
//
// Two slots, at offsets 0 and 4096 (ckptSlotSize), each holding one
// encoding below with a sequence number; the valid slot with the higher
// number is the checkpoint, so a write torn by a crash leaves the other.
// A checkpoint is written in place into one slot (no new file, rename or
// freed block), and only while the other holds the newest durable
// checkpoint: the other slot once the newest is durable, the newest's
// own slot while it is not (see ckptSlots in log.go). When the layout or
// the slots' durability is unknown (a file read at open before the next
// whole-file-system sync, a failed write) or a checkpoint outgrows a
// slot, the file is replaced through a temporary file and a rename
// instead, holding slot 0 only; a new log's file is created in place.
// Files from versions 1-3 are one encoding: slot 0, sequence 0.
//
//	off  size  field
//	  0     4  magic "GPCK"
//	  4     2  version (4)
//	  6     2  flags: bit 0 = clean shutdown
//	  8     8  logStartOffset
//	 16     8  highWatermark
//	 24     8  recoveryPoint       offsets below were fsynced
//	 32     8  logEndOffset
//	 40     8  activeBase          clean shutdown only: the active segment,
//	 48     8  activeSize          its size and index entry counts, so the
//	 56     4  activeIndexEntries  next Open can trust it after a cheap
//	 60     4  activeTimeEntries   tail check
//	 64     4  N                   leader epoch entries
//	 68     8  cleanerOffset       compaction's first dirty offset (v2)
//	 76     8  markSegment         where recoveryPoint lies (v3): in the
//	 84     8  markPosition        segment with this base, at this byte
//	 92     8  markMaxTimestamp    position (-1: unknown), after batches
//	100     8  markMaxTsOffset     whose largest max timestamp, its offset
//	108     8  markFirstTimestamp  and first batch's are these
//	116     8  sequence            which slot is newer (v4)
//	124  12*N  epoch i32, startOffset i64
//	124+12N 4  CRC-32C of all bytes before it
//
// Versions 1 (no cleanerOffset; epochs at 68), 2 (no mark; epochs at 76)
// and 3 (no sequence; epochs at 116) are still read.
//
// It is rewritten lazily by the Syncer (every DefaultCheckpointInterval
// when something changed), synchronously by TruncateTo, retention and
// SetLogStartOffset, and with the clean flag by Close. The leader epoch
// history lives in the same file so it is always consistent with the
// recovery point: epochs of batches above the recovery point are
// re-learned from the batches during recovery.
//
// # Recovery
//
// After a clean shutdown Open trusts the files once the active segment's
// size and index sizes match the checkpoint and the batches after its last
// index entry are valid and end at the checkpointed log end offset. Any
// append after Open changes the size, so a crash later is detected.
// Otherwise every batch from the checkpointed recovery point to the end
// is validated (length, CRC-32C, record count,
// strictly increasing offsets below the next segment's base) and the
// indexes of those segments are rebuilt. Bytes that are not a valid batch
// are a torn tail when no valid batch follows anywhere after them: the
// segment is truncated there and later segments deleted. When valid
// batches do follow (a flipped bit, not a torn write) the range is kept,
// logged as corrupt and never served: Read returns ErrCorrupt for offsets
// in it and the acknowledged data after it stays readable. Recovered data
// is fsynced before the recovery point moves past it. Missing or corrupt
// index files are rebuilt from the log. The checkpoint's mark gives the
// recovery point's byte position, so the scan starts there rather than
// at the start of its segment (Kafka's), which after a crash is up to
// segment.bytes per partition; the index entries below it that the files
// hold are kept (the checkpoint writes them first; the last one is
// checked against its batch). Without a usable mark (older checkpoint,
// the file disagrees, index entries lost with a power failure, damage
// seen at a clean start) the segment is scanned from its start. Below the
// recovery point the synced bytes are trusted, as at a clean start.
// Opened with DeferSync (a broker's start), recovery writes neither the
// checkpoint nor the active segment's index entries when the checkpoint
// on disk still holds (recovery changed none of what it records but the
// recovery point) and the index files hold a prefix of the rebuilt
// entries: the new recovery point is progress for the checkpoint rounds,
// and the entries wait with the appends' for the next checkpoint, roll or
// close. Until then a crash recovers from the older recovery point.
// Limitation: baseOffset lies
// outside the CRC, so a flipped bit there is only caught by the offset
// ordering checks.
//
// Damage that recovery did not see (bit rot under a running broker, or
// after a clean shutdown, whose open does not re-read batches the index
// covers) is found by the CRC check every read makes. Such a read
// resyncs as recovery does, to the next position where a whole batch
// validates, and records the range in memory: offsets below that batch
// get ErrCorrupt, the data after it is served.
//
// # Concurrency and durability
//
// Appends run under Log.mu and write the active segment with one write
// call (the page cache); fsyncs run on a Syncer goroutine that serves every
// RequestSync queued before it starts with one fsync (group commit). Reads
// take Log.mu only to find the segment and position; file reads run
// without it, on reference-counted handles from a package-wide LRU
// (DefaultOpenSegmentFiles), so at most one file per partition (the active
// segment) stays open besides the cache. Closed segments' metadata and
// indexes are loaded on demand. Lock order: compactMu → ckptMu → syncMu →
// mu → Syncer.mu; the file cache's mutex is a leaf (docs/LOCKING.md).
//
// # Failures
//
// A write that fails (ENOSPC) is undone by truncating the segment to its
// last batch, and the log stays usable. A failed fsync, or a write that
// cannot be undone, makes the log refuse appends and syncs (Failed): the
// page cache may have dropped data, so nothing is reported durable that
// might not be. Reopen runs recovery again in place once the disk is
// healthy.
//
// # Retention and compaction
//
// EnforceRetention deletes whole segments, oldest first, by largest
// record timestamp (retention.ms) and total size (retention.bytes), as
// Kafka does; the log start offset moves to the first kept segment.
// Compact rewrites closed segments keeping the newest record per key
// (compact.go describes the pass and its crash-safe swap). Kafka marks
// tombstones with a delete horizon in the batch header (KIP-534); Gregor
// instead removes a tombstone once a pass compacted it and its batch's
// max timestamp is older than delete.retention.ms, which needs no header
// rewrite. A compacted group whose last batch went keeps it as a batch of
// zero records, so offsets stay contiguous to the segment end and a
// consumer positioned in a trailing gap moves on.
package partlog
