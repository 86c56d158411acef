package partlog

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/gregor-streaming/gregor/internal/batch"
	"github.com/gregor-streaming/gregor/internal/vfs"
)

// Journal is a write-ahead log shared by every log of a Syncer, so that
// acknowledging small appends to many partitions costs one sequential
// write and one fdatasync instead of an fsync (or a syncfs over
// thousands of dirty files) per round.
//
// A small append is written to its segment as always (page cache, so
// reads see it at once) and its bytes are also added to the journal. A
// sync request for a log whose every unsynced offset is journaled is
// answered once the journal is synced; the log's recovery point (what
// its segment files hold durably) stays behind. A journal cycle (every
// JournalCycleInterval, or once JournalCycleBytes were added) rolls the
// journal to a new file, makes the segments of every log that journaled
// since the previous cycle durable with one whole-file-system sync, and
// then deletes the older journal files: whatever they held is now in
// synced segments.
//
// Recovery: the journal's files are scanned when it is opened; Open of
// a log replays the entries of its key that the segments lost (those at
// or after the recovered log end offset). Keys must name one
// incarnation of a log (the broker uses the directory and the topic ID),
// so a topic deleted and created again never receives the old one's
// entries. The files found at open are kept until ReplayDone was called
// and a cycle completed after it.
//
// File format (journal/<20-digit number>.wal): a sequence of entries
//
//	u32 payload length | u32 CRC-32C of payload | payload
//	payload: u8 kind | u16 key length | key | i64 offset | batches
//
// kind 1 holds offset-assigned batches starting at offset; kind 2 (a
// cut) says the log was truncated to offset, so earlier entries' batches
// at or after it must not be replayed. A file ends at its first entry
// that does not check out (a torn write at a crash).
type Journal struct {
	fs     vfs.FS
	dir    string
	logger *slog.Logger

	// syncMu serializes writes of pending bytes, fdatasyncs and rolls.
	syncMu sync.Mutex
	f      vfs.File // current file; guarded by syncMu
	num    uint64   // current file's number; written by roll only

	// synced is the sequence number of the last entry known durable.
	synced atomic.Uint64
	// active is cleared when the journal failed: logs stop using it.
	active atomic.Bool

	// kick wakes the cycle goroutine early (JournalCycleBytes reached).
	kick chan struct{}

	// mu guards the fields below. Lock order: Log.mu → mu.
	mu sync.Mutex
	// pending holds the entries not written yet, in sequence order, in
	// chunks of journalChunk bytes, the last one being filled; written
	// chunks go to free (at most journalFreeChunks) for the next ones.
	// One buffer grown by doubling, dropped when it passed 4 MiB, had
	// been reallocated and copied about twice a second under one-record
	// batches to 10,000 partitions: 194-435 MB in 10 s, a third of the
	// broker's allocations.
	pending [][]byte
	free    [][]byte
	spare   [][]byte // the chunk list's memory, reused
	seq     uint64   // sequence number of the last entry added
	added   int64    // bytes added since the last roll
	// dirty are the logs that journaled since the last roll, each once
	// (Log.jListed). A list, not a set: with 10,000 logs a map insert
	// per append found its bucket cold in the CPU cache.
	dirty  []*Log
	failed error
	// startup are the files found at open, with the records of keys no
	// log claimed yet; replayDone is set by ReplayDone.
	startup    []startupFile
	replay     map[string][]journalRecord
	replayDone bool
}

type startupFile struct {
	name string
	f    vfs.File
}

// journalRecord is one entry found at open.
type journalRecord struct {
	cut    bool
	offset int64
	file   int // index in startup
	pos    int64
	n      int // batch bytes
}

const (
	journalSuffix    = ".wal"
	journalKindBatch = 1
	journalKindCut   = 2
	journalHeader    = 8
	// JournalMaxAppend is the largest append that goes to the journal:
	// a larger one is cheaper to fsync in its own file than to write
	// twice.
	JournalMaxAppend = 32 << 10
	// JournalCycleBytes is how many journaled bytes start a cycle early.
	// Each cycle writes out every journaling log's pending buffer (one
	// pwrite per log, thousands at many partitions); at 128 MiB a
	// cycle ran every 1.3 s under 100 MB/s of one-record batches to
	// 10,000 partitions, and at 512 MiB the interval bounds it first
	// (8% less broker CPU, docs/PERFORMANCE.md). The journal holds
	// about twice this on disk at most, the file a cycle retires and the
	// next.
	JournalCycleBytes = 512 << 20
)

// OpenJournal opens (creating) the journal in dir and scans the files
// it holds for replay. It starts a new file for new entries.
func OpenJournal(fs vfs.FS, dir string, logger *slog.Logger) (*Journal, error) {
	if logger == nil {
		logger = slog.Default()
	}
	j := &Journal{fs: fs, dir: dir, logger: logger, kick: make(chan struct{}, 1),
		replay: map[string][]journalRecord{}}
	if err := mkdirDurable(fs, dir); err != nil {
		return nil, fmt.Errorf("partlog: journal: %w", err)
	}
	files, last, err := openJournalFiles(fs, dir, "", j.replay)
	if err != nil {
		return nil, fmt.Errorf("partlog: journal: %w", err)
	}
	// After a process crash the files' unsynced tails are still in the
	// page cache, and a replay would build on entries a later power
	// loss takes back: make what the scan read durable first.
	for _, s := range files {
		if err := s.f.Sync(); err != nil {
			closeFiles(files)
			return nil, fmt.Errorf("partlog: journal: %s: %w", s.name, err)
		}
	}
	j.startup = files
	j.num = last + 1
	if j.f, err = fs.Create(j.fileName(j.num)); err != nil {
		j.closeStartup()
		return nil, fmt.Errorf("partlog: journal: %w", err)
	}
	if err := fs.SyncDir(dir); err != nil {
		j.f.Close()
		j.closeStartup()
		return nil, fmt.Errorf("partlog: journal: %w", err)
	}
	j.active.Store(true)
	return j, nil
}

// openJournalFiles opens dir's journal files in order and scans their
// entries (of key only, unless key is empty) into recs; it returns the
// open files and the highest file number. On error none stay open.
func openJournalFiles(fs vfs.FS, dir, key string, recs map[string][]journalRecord) ([]startupFile, uint64, error) {
	names, err := fs.List(dir)
	if err != nil {
		return nil, 0, err
	}
	var files []startupFile
	var last uint64
	for _, n := range names {
		num, ok := parseJournalName(n)
		if !ok {
			continue
		}
		last = max(last, num)
		f, err := fs.Open(path.Join(dir, n))
		if err != nil {
			closeFiles(files)
			return nil, 0, err
		}
		files = append(files, startupFile{name: n, f: f})
		if err := scanJournalFile(f, len(files)-1, key, recs); err != nil {
			closeFiles(files)
			return nil, 0, fmt.Errorf("%s: %w", n, err)
		}
	}
	return files, last, nil
}

func parseJournalName(n string) (uint64, bool) {
	s, ok := strings.CutSuffix(n, journalSuffix)
	if !ok || len(s) != 20 {
		return 0, false
	}
	num, err := strconv.ParseUint(s, 10, 64)
	return num, err == nil
}

func (j *Journal) fileName(num uint64) string {
	return path.Join(j.dir, fmt.Sprintf("%020d%s", num, journalSuffix))
}

// scanJournalFile reads one file's entries (of key only, unless key is
// empty) into recs, stopping at the first one that does not check out.
func scanJournalFile(f vfs.File, file int, only string, recs map[string][]journalRecord) error {
	size, err := f.Size()
	if err != nil {
		return err
	}
	var hdr [journalHeader]byte
	var payload []byte
	for pos := int64(0); pos+journalHeader <= size; {
		if _, err := f.ReadAt(hdr[:], pos); err != nil {
			return err
		}
		n := int64(binary.BigEndian.Uint32(hdr[:]))
		if n < 11 || pos+journalHeader+n > size {
			break
		}
		payload = slices.Grow(payload[:0], int(n))[:n]
		if _, err := f.ReadAt(payload, pos+journalHeader); err != nil && err != io.EOF {
			return err
		}
		if batch.Checksum(payload) != binary.BigEndian.Uint32(hdr[4:]) {
			break
		}
		kind, kl := payload[0], int(binary.BigEndian.Uint16(payload[1:]))
		if 3+kl+8 > len(payload) || kind != journalKindBatch && kind != journalKindCut {
			break
		}
		key := string(payload[3 : 3+kl])
		if only != "" && key != only {
			pos += journalHeader + n
			continue
		}
		r := journalRecord{
			cut:    kind == journalKindCut,
			offset: int64(binary.BigEndian.Uint64(payload[3+kl:])),
			file:   file,
			pos:    pos + journalHeader + int64(3+kl+8),
			n:      len(payload) - (3 + kl + 8),
		}
		recs[key] = append(recs[key], r)
		pos += journalHeader + n
	}
	return nil
}

func (j *Journal) closeStartup() { closeFiles(j.startup) }

// appendEntry appends one encoded entry to dst.
func appendJournalEntry(dst []byte, kind byte, key string, offset int64, b []byte) []byte {
	n := journalEntrySize(key, b) - journalHeader
	start := len(dst)
	dst = slices.Grow(dst, journalHeader+n)
	dst = binary.BigEndian.AppendUint32(dst, uint32(n))
	dst = append(dst, 0, 0, 0, 0, kind)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(key)))
	dst = append(dst, key...)
	dst = binary.BigEndian.AppendUint64(dst, uint64(offset))
	dst = append(dst, b...)
	binary.BigEndian.PutUint32(dst[start+4:], batch.Checksum(dst[start+journalHeader:]))
	return dst
}

// journalEntrySize is the bytes appendJournalEntry adds.
func journalEntrySize(key string, b []byte) int {
	return journalHeader + 3 + len(key) + 8 + len(b)
}

const (
	// journalChunk is the size of the pending entries' chunks.
	journalChunk = 1 << 20
	// journalFreeChunks bounds the written chunks kept for reuse.
	journalFreeChunks = 8
)

// chunkLocked returns an empty chunk with room for n bytes. The caller
// holds mu.
func (j *Journal) chunkLocked(n int) []byte {
	if n > journalChunk {
		return make([]byte, 0, n)
	}
	if k := len(j.free); k > 0 {
		c := j.free[k-1]
		j.free[k-1] = nil
		j.free = j.free[:k-1]
		return c
	}
	return make([]byte, 0, journalChunk)
}

// add queues an entry for l and returns its sequence number, or 0 when
// the journal failed (the caller then relies on its segment syncs).
func (j *Journal) add(l *Log, kind byte, offset int64, b []byte) uint64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.failed != nil {
		return 0
	}
	n := journalEntrySize(l.jkey, b)
	if k := len(j.pending); k == 0 || cap(j.pending[k-1])-len(j.pending[k-1]) < n {
		j.pending = append(j.pending, j.chunkLocked(n))
	}
	last := &j.pending[len(j.pending)-1]
	*last = appendJournalEntry(*last, kind, l.jkey, offset, b)
	j.seq++
	j.added += int64(n)
	j.listLocked(l)
	if j.added >= JournalCycleBytes {
		select {
		case j.kick <- struct{}{}:
		default:
		}
	}
	return j.seq
}

// syncTo makes the entries up to sequence number seq durable; entries
// queued meanwhile share the write and the fdatasync.
func (j *Journal) syncTo(seq uint64) error {
	if j.synced.Load() >= seq {
		return nil
	}
	j.syncMu.Lock()
	defer j.syncMu.Unlock()
	if j.synced.Load() >= seq {
		return nil
	}
	return j.flushSyncMuHeld()
}

// flushSyncMuHeld writes the pending entries and fdatasyncs the file.
func (j *Journal) flushSyncMuHeld() error {
	j.mu.Lock()
	if j.failed != nil {
		err := j.failed
		j.mu.Unlock()
		return err
	}
	chunks, upTo := j.pending, j.seq
	j.pending, j.spare = j.spare[:0], nil
	j.mu.Unlock()
	var err error
	for _, c := range chunks {
		if len(c) > 0 {
			if _, err = j.f.Write(c); err != nil {
				break
			}
		}
	}
	if err == nil {
		err = j.f.Sync()
	}
	j.mu.Lock()
	for i, c := range chunks {
		if cap(c) == journalChunk && len(j.free) < journalFreeChunks {
			j.free = append(j.free, c[:0])
		}
		chunks[i] = nil
	}
	j.spare = chunks[:0]
	if err != nil {
		j.failLocked(err)
	}
	j.mu.Unlock()
	if err != nil {
		return err
	}
	j.synced.Store(upTo)
	return nil
}

// failLocked stops the journal for good: an fsync error cannot be
// retried safely, and logs go back to syncing their own files.
func (j *Journal) failLocked(err error) {
	if j.failed != nil {
		return
	}
	j.failed = err
	j.active.Store(false)
	j.pending, j.free = nil, nil
	j.logger.Error("partlog: journal failed; logs sync their own files from now on", "err", err)
}

// claim returns the records found at open for key, once.
func (j *Journal) claim(key string) ([]journalRecord, []startupFile) {
	j.mu.Lock()
	defer j.mu.Unlock()
	rs := j.replay[key]
	delete(j.replay, key)
	return rs, j.startup
}

// ReplayDone tells the journal that every log that may have entries in
// the files found at open was opened: entries of keys not claimed by
// then belong to deleted logs, and the files can go after the next
// cycle.
func (j *Journal) ReplayDone() {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.replayDone = true
	j.replay = nil
}

// roll makes the current file durable, switches to a new one and
// returns the logs that journaled since the last roll and the files a
// successful cycle over them may delete. Cycles (cycleMu) serialize
// rolls, the only writer of num.
func (j *Journal) roll() (logs []*Log, old []string, err error) {
	j.mu.Lock()
	idle := len(j.dirty) == 0 && j.added == 0 && len(j.pending) == 0 && !(j.replayDone && len(j.startup) > 0)
	replayDone := j.replayDone
	j.mu.Unlock()
	if idle {
		return nil, nil, nil // nothing to sync or delete
	}
	// The next file is created and made durable first, so
	// acknowledgements wait only for the switch, not for this I/O.
	next := j.num + 1
	f, err := j.fs.Create(j.fileName(next))
	if err == nil {
		if err = j.fs.SyncDir(j.dir); err != nil {
			f.Close()
		}
	}
	if err != nil {
		return nil, nil, err // the current file stays in use
	}
	j.syncMu.Lock()
	if err := j.flushSyncMuHeld(); err != nil {
		j.syncMu.Unlock()
		f.Close()
		return nil, nil, err
	}
	prev := j.f
	j.f, j.num = f, next
	j.mu.Lock()
	logs = j.dirty
	for _, l := range logs {
		l.jListed = false
	}
	j.dirty = nil
	j.added = 0
	j.mu.Unlock()
	j.syncMu.Unlock()
	prev.Close()

	// The file just closed, and older ones left by failed cycles.
	names, _ := j.fs.List(j.dir)
	for _, n := range names {
		num, ok := parseJournalName(n)
		if !ok || num >= next || !replayDone && j.isStartup(n) {
			continue
		}
		old = append(old, path.Join(j.dir, n))
	}
	return logs, old, nil
}

func (j *Journal) isStartup(name string) bool {
	for _, s := range j.startup {
		if s.name == name {
			return true
		}
	}
	return false
}

// relist lists logs again after a failed cycle.
func (j *Journal) relist(logs []*Log) {
	open := logs[:0:0]
	for _, l := range logs {
		if !l.isClosed() { // Log.mu before j.mu
			open = append(open, l)
		}
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, l := range open {
		j.listLocked(l)
	}
}

// listLocked puts l on the dirty list unless it is there.
func (j *Journal) listLocked(l *Log) {
	if !l.jListed {
		l.jListed = true
		j.dirty = append(j.dirty, l)
	}
}

// scanKey makes the pending entries durable and reads every current
// file's entries of key (Reopen replays them). The caller closes files.
func (j *Journal) scanKey(key string) ([]journalRecord, []startupFile, error) {
	j.syncMu.Lock()
	defer j.syncMu.Unlock()
	if err := j.flushSyncMuHeld(); err != nil {
		return nil, nil, err
	}
	recs := map[string][]journalRecord{}
	files, _, err := openJournalFiles(j.fs, j.dir, key, recs)
	if err != nil {
		return nil, nil, err
	}
	return recs[key], files, nil
}

func closeFiles(fs []startupFile) {
	for _, s := range fs {
		s.f.Close()
	}
}

// remove deletes journal files a cycle made unnecessary.
func (j *Journal) remove(names []string) {
	j.mu.Lock()
	if j.replayDone && len(j.startup) > 0 {
		j.closeStartup()
		j.startup = nil
	}
	j.mu.Unlock()
	for _, n := range names {
		if err := j.fs.Remove(n); err != nil && !vfs.IsNotExist(err) {
			j.logger.Warn("partlog: removing journal file", "file", n, "err", err)
		}
	}
	if len(names) > 0 {
		// Not needed for safety (a file that comes back is replayed
		// harmlessly), but a restart then scans less.
		_ = j.fs.SyncDir(j.dir)
	}
}

// holds reports whether the journal's records of key found at open
// hold offset off (recovery may then cut damage at off and replay).
func (j *Journal) holds(key string, off int64) bool {
	j.mu.Lock()
	recs, files := j.replay[key], j.startup
	j.mu.Unlock()
	found := false
	err := journalBatches(recs, files, func(h *batch.Header, _ []byte, _ bool) bool {
		found = h.BaseOffset <= off && off < h.NextOffset()
		return !found
	})
	return err == nil && found
}

// journalBatches calls fn with each batch the batch records of recs hold
// (read from files, CRC checked) that no later cut truncated, in order,
// and whether it is its record's first; fn returns false to stop.
func journalBatches(recs []journalRecord, files []startupFile, fn func(h *batch.Header, b []byte, first bool) bool) error {
	limits := cutLimits(recs)
	var buf []byte
	for i, r := range recs {
		if r.cut {
			continue
		}
		buf = slices.Grow(buf[:0], r.n)[:r.n]
		if _, err := files[r.file].f.ReadAt(buf, r.pos); err != nil && err != io.EOF {
			return err
		}
		for p := 0; p < len(buf); {
			h, err := batch.Validate(buf[p:])
			if err != nil {
				return fmt.Errorf("entry at %s:%d: %w", files[r.file].name, r.pos, err)
			}
			b := buf[p : p+h.Size()]
			first := p == 0
			p += len(b)
			if h.NextOffset() > limits[i] { // truncated later
				continue
			}
			if !fn(&h, b, first) {
				return nil
			}
		}
	}
	return nil
}

// cutLimits gives each record the lowest offset a later cut truncated
// to: its batches ending past it must not be replayed.
func cutLimits(recs []journalRecord) []int64 {
	limits := make([]int64, len(recs))
	limit := int64(math.MaxInt64)
	for i := len(recs) - 1; i >= 0; i-- {
		if recs[i].cut {
			limit = min(limit, recs[i].offset)
		}
		limits[i] = limit
	}
	return limits
}

// close writes and syncs what is pending and closes the files. The
// files stay: the next open replays what segments lack.
func (j *Journal) close() error {
	j.syncMu.Lock()
	defer j.syncMu.Unlock()
	err := j.flushSyncMuHeld()
	if errors.Is(err, errJournalClosed) {
		return nil
	}
	j.mu.Lock()
	j.closeStartup()
	j.startup = nil
	if j.failed == nil {
		j.failed = errJournalClosed
		j.active.Store(false)
		j.pending, j.free = nil, nil
	}
	j.mu.Unlock()
	if cerr := j.f.Close(); err == nil {
		err = cerr
	}
	return err
}

var errJournalClosed = errors.New("partlog: journal closed")

// replayJournal appends the journaled batches of the log's key that its
// segments lost (Open, after recovery). The replayed offsets are
// durable in the journal; the log is listed for the next cycle, which
// syncs its segments before the journal files go.
func (l *Log) replayJournal() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	defer func() { l.jEnd, l.jDurable = l.logEndOffset, l.logEndOffset }()
	j := l.journal()
	if j == nil {
		return nil
	}
	recs, files := j.claim(l.jkey)
	if len(recs) == 0 {
		return nil
	}
	return l.replayRecordsLocked(j, recs, files)
}

// replayRecordsLocked appends what recs hold past the log end offset.
func (l *Log) replayRecordsLocked(j *Journal, recs []journalRecord, files []startupFile) error {
	from := l.logEndOffset
	var appendErr error
	err := journalBatches(recs, files, func(h *batch.Header, b []byte, first bool) bool {
		switch {
		case h.NextOffset() <= l.logEndOffset: // the segments kept it
			return true
		case h.BaseOffset < l.logEndOffset || h.BaseOffset > l.logEndOffset && first:
			// Not contiguous with what the segments hold: the journal
			// cannot fill the gap, so stop rather than invent one.
			l.logger.Error("partlog: journal entry does not continue the log; replay stopped",
				"logEndOffset", l.logEndOffset, "batchBaseOffset", h.BaseOffset)
			return false
		}
		if appendErr = l.appendLocked(b, h.BaseOffset, h.LastOffset(), h.MaxTimestamp, false); appendErr != nil {
			return false
		}
		l.epochs = assignEpoch(l.epochs, h.PartitionLeaderEpoch, h.BaseOffset)
		return true
	})
	if err = cmp.Or(appendErr, err); err != nil {
		return err
	}
	j.mu.Lock()
	j.listLocked(l) // the next cycle syncs the segments
	j.mu.Unlock()
	if l.logEndOffset > from {
		l.logger.Info("partlog: replayed journal", "from", from, "to", l.logEndOffset)
		l.markCkptDirtyLocked()
	}
	return nil
}

// journalCutLocked makes a truncation to offset durable in the journal
// before the segments change, so a replay never brings back what it
// removed.
func (l *Log) journalCutLocked(offset int64) error {
	j := l.journal()
	if j == nil {
		return nil
	}
	seq := j.add(l, journalKindCut, offset, nil)
	if seq == 0 {
		return nil
	}
	return j.syncTo(seq)
}
