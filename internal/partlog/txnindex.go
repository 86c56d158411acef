package partlog

import (
	"encoding/binary"
	"fmt"
	"path"
	"sort"
	"sync"

	"github.com/gregor-streaming/gregor/internal/batch"
	"github.com/gregor-streaming/gregor/internal/vfs"
)

// TxnIndexName is the file of a partition's aborted-transaction index,
// in the partition directory next to its segments.
const TxnIndexName = "aborted.txnindex"

// txnIndexEntrySize is the size of one entry on disk.
const txnIndexEntrySize = 36

// AbortedTxn is one aborted transaction of a partition, as Kafka's
// AbortedTxn: the producer, the first offset of its data in this
// partition, the offset of the abort marker, and the last stable offset
// once the transaction completed (the first offset of the earliest
// other open transaction, else the marker's offset + 1).
type AbortedTxn struct {
	ProducerID       int64
	FirstOffset      int64
	LastOffset       int64
	LastStableOffset int64
}

// TxnIndex is a partition's aborted-transaction index, Kafka's .txnindex
// kept as one file for the whole partition instead of one per segment:
// Fetch with read_committed returns the aborted transactions overlapping
// what it read, and consumers skip their records.
//
// aborted.txnindex is a sequence of 36-byte entries in marker order
// (LastOffset strictly increasing):
//
//	producerID i64 | firstOffset i64 | lastOffset i64 | lastStableOffset i64 | crc32c u32
//
// the CRC covering the 32 bytes before it. Appends go to the page cache;
// Sync makes them durable. Open drops a torn or damaged tail: the owner
// (the broker) syncs the index before each producer-state snapshot and
// replays the log after the snapshot on open, re-appending the entries of
// abort markers found there, so an entry lost from the tail is learned
// again. Entries whose markers the log lost are removed with
// TruncateFrom; entries below the log start offset with DropBefore.
//
// The whole index is kept in memory too (32 bytes per aborted
// transaction), and the file is opened only to append or sync (aborts
// are rare), so a TxnIndex holds no file open and needs no closing.
// Safe for concurrent use; its mutex is a leaf.
type TxnIndex struct {
	fs   vfs.FS
	dir  string
	name string

	// mu guards the fields below.
	mu sync.Mutex
	// entries are the index in LastOffset order; entries[:synced]
	// are durable.
	entries []AbortedTxn
	synced  int
	// failed is set when a write failed: the file no longer matches
	// entries and is rewritten whole by the next Sync.
	failed bool
	// exists reports the file exists; dirDirty that the append which
	// created it has not had its directory entry synced yet.
	exists, dirDirty bool
}

// OpenTxnIndex opens the aborted-transaction index of the partition
// directory dir; fresh reports that it had no file. The file is created by
// the first Append (most partitions never see an aborted transaction, and
// creating 10,000 partitions spent 15% of its time on these files), and
// the Sync that the broker runs before each producer-state snapshot makes
// its directory entry durable too. So a partition without the file has
// no aborted transaction below its last snapshot: one after it is
// learned again by the log replay, as for a torn tail.
func OpenTxnIndex(fs vfs.FS, dir string) (x *TxnIndex, fresh bool, err error) {
	name := path.Join(dir, TxnIndexName)
	x = &TxnIndex{fs: fs, dir: dir, name: name}
	if _, serr := fs.Stat(name); vfs.IsNotExist(serr) {
		return x, true, nil
	} else if serr != nil {
		return nil, false, fmt.Errorf("partlog: txn index: %w", serr)
	}
	x.exists = true
	f, err := fs.OpenAppend(name)
	if err != nil {
		return nil, false, fmt.Errorf("partlog: txn index: %w", err)
	}
	size, err := f.Size()
	if err != nil {
		f.Close()
		return nil, false, fmt.Errorf("partlog: txn index: %w", err)
	}
	data := make([]byte, size)
	if size > 0 {
		if _, err := f.ReadAt(data, 0); err != nil {
			f.Close()
			return nil, false, fmt.Errorf("partlog: txn index: %w", err)
		}
	}
	defer f.Close()
	valid := 0
	for len(data)-valid >= txnIndexEntrySize {
		e, ok := decodeTxnIndexEntry(data[valid : valid+txnIndexEntrySize])
		if !ok || (len(x.entries) > 0 && e.LastOffset <= x.entries[len(x.entries)-1].LastOffset) {
			break
		}
		x.entries = append(x.entries, e)
		valid += txnIndexEntrySize
	}
	if int64(valid) != size {
		// A torn or damaged tail: drop it (the log replay restores it).
		if err := f.Truncate(int64(valid)); err != nil {
			return nil, false, fmt.Errorf("partlog: txn index: %w", err)
		}
	}
	x.synced = len(x.entries)
	return x, false, nil
}

func encodeTxnIndexEntry(dst []byte, e AbortedTxn) []byte {
	start := len(dst)
	dst = binary.BigEndian.AppendUint64(dst, uint64(e.ProducerID))
	dst = binary.BigEndian.AppendUint64(dst, uint64(e.FirstOffset))
	dst = binary.BigEndian.AppendUint64(dst, uint64(e.LastOffset))
	dst = binary.BigEndian.AppendUint64(dst, uint64(e.LastStableOffset))
	return binary.BigEndian.AppendUint32(dst, batch.Checksum(dst[start:]))
}

func decodeTxnIndexEntry(b []byte) (AbortedTxn, bool) {
	if batch.Checksum(b[:32]) != binary.BigEndian.Uint32(b[32:]) {
		return AbortedTxn{}, false
	}
	e := AbortedTxn{
		ProducerID:       int64(binary.BigEndian.Uint64(b)),
		FirstOffset:      int64(binary.BigEndian.Uint64(b[8:])),
		LastOffset:       int64(binary.BigEndian.Uint64(b[16:])),
		LastStableOffset: int64(binary.BigEndian.Uint64(b[24:])),
	}
	return e, e.FirstOffset >= 0 && e.FirstOffset <= e.LastOffset
}

// Append adds an entry. An entry whose LastOffset is not above the last
// one's is already indexed (a replay of the log after the snapshot) and
// is ignored.
func (x *TxnIndex) Append(e AbortedTxn) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if n := len(x.entries); n > 0 && e.LastOffset <= x.entries[n-1].LastOffset {
		return nil
	}
	x.entries = append(x.entries, e)
	if x.failed {
		return nil // Sync rewrites the file
	}
	f, err := x.fs.OpenAppend(x.name)
	if err == nil {
		if !x.exists {
			x.exists, x.dirDirty = true, true
		}
		_, err = f.Write(encodeTxnIndexEntry(nil, e))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		x.failed = true
		return fmt.Errorf("partlog: txn index append: %w", err)
	}
	return nil
}

// Sync makes every appended entry durable.
func (x *TxnIndex) Sync() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.failed {
		return x.rewriteLocked(x.entries)
	}
	if x.synced == len(x.entries) && !x.dirDirty {
		return nil
	}
	f, err := x.fs.OpenAppend(x.name)
	if err == nil {
		err = f.Sync()
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err == nil && x.dirDirty {
		err = x.fs.SyncDir(x.dir)
	}
	if err != nil {
		x.failed = true
		return fmt.Errorf("partlog: txn index sync: %w", err)
	}
	x.synced, x.dirDirty = len(x.entries), false
	return nil
}

// TruncateFrom removes the entries of markers at or above off: the log
// was truncated there.
func (x *TxnIndex) TruncateFrom(off int64) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	i := sort.Search(len(x.entries), func(i int) bool { return x.entries[i].LastOffset >= off })
	if i == len(x.entries) {
		return nil
	}
	return x.rewriteLocked(x.entries[:i:i])
}

// DropBefore removes the entries of transactions that ended below off
// (the log start offset): no fetch can ask for them. The file is
// rewritten only when that frees most of it.
func (x *TxnIndex) DropBefore(off int64) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	i := sort.Search(len(x.entries), func(i int) bool { return x.entries[i].LastOffset >= off })
	if i < 64 || i < len(x.entries)/2 {
		return nil
	}
	return x.rewriteLocked(append([]AbortedTxn(nil), x.entries[i:]...))
}

// rewriteLocked replaces the file with entries, atomically.
func (x *TxnIndex) rewriteLocked(entries []AbortedTxn) error {
	buf := make([]byte, 0, len(entries)*txnIndexEntrySize)
	for _, e := range entries {
		buf = encodeTxnIndexEntry(buf, e)
	}
	if err := vfs.WriteFileAtomic(x.fs, x.dir, x.name, buf); err != nil {
		x.failed = true
		return fmt.Errorf("partlog: txn index rewrite: %w", err)
	}
	x.entries = entries
	x.synced = len(entries)
	x.failed = false
	x.exists, x.dirDirty = true, false
	return nil
}

// Collect returns the aborted transactions a read of [from, upTo) must
// report, as Kafka's collectAbortedTxns: those whose marker is at or
// after from and whose data starts below upTo. The scan stops at the
// first entry whose last stable offset reaches upTo, after which no
// transaction can start below upTo.
func (x *TxnIndex) Collect(dst []AbortedTxn, from, upTo int64) []AbortedTxn {
	x.mu.Lock()
	defer x.mu.Unlock()
	i := sort.Search(len(x.entries), func(i int) bool { return x.entries[i].LastOffset >= from })
	for _, e := range x.entries[i:] {
		if e.FirstOffset < upTo {
			dst = append(dst, e)
		}
		if e.LastStableOffset >= upTo {
			break
		}
	}
	return dst
}

// Last returns the newest entry.
func (x *TxnIndex) Last() (AbortedTxn, bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if len(x.entries) == 0 {
		return AbortedTxn{}, false
	}
	return x.entries[len(x.entries)-1], true
}

// Len returns the number of entries.
func (x *TxnIndex) Len() int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return len(x.entries)
}
