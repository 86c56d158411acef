package broker

import (
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/gregor-streaming/gregor/internal/batch"
	"github.com/gregor-streaming/gregor/internal/vfs"
)

// Producer state snapshots let a partition rebuild its idempotence and
// transaction state without reading its whole log: on open, the newest
// snapshot not beyond the recovered log end is loaded and only the log
// after it is replayed (Kafka's <offset>.snapshot files do the same job).
//
// Two files, producer.snapshot and producer.snapshot.prev, hold the two
// newest snapshots (the older one is kept because a crash can lose the
// log tail a newer snapshot describes): a new snapshot overwrites the
// file holding the older one in place, and a start loads the newer
// valid one at or below the log end, whatever its name. Writing in place
// instead of renaming the current file over the previous one and a new
// file over the current spares a create, two renames and a freed block
// per snapshot (on a file system mounted with discard each freed block
// waits for the disk).
// Each holds:
//
//	magic "GPST" | version u16 (2) | offset i64 | count u32 |
//	count × entry | crc32c u32 (of everything before it)
//	entry: producerID i64 | epoch i16 | lastTimestamp i64 |
//	       coordinatorEpoch i32 | txnFirstOffset i64 (-1: none) | n u8 |
//	       n × (firstSeq i32 | lastSeq i32 | firstOffset i64 | lastOffset i64)
//
// Version 1 (no coordinatorEpoch and txnFirstOffset) is still read. The
// aborted-transaction index is synced before a snapshot is written, so
// the index holds every abort marker below the snapshot's offset.
const (
	producerSnapshotName = "producer.snapshot"
	producerSnapshotPrev = "producer.snapshot.prev"
	// producerSnapshotEvery is how many appended bytes trigger a new
	// snapshot, bounding the replay after a crash.
	producerSnapshotEvery = 64 << 20
)

var errSnapshot = errors.New("producer snapshot corrupt")

// producerSnapshot is a decoded snapshot: the producers and the first
// offsets of their open transactions.
type producerSnapshot struct {
	producers map[int64]*producerState
	ongoing   map[int64]int64
}

func encodeProducerSnapshot(offset int64, producers map[int64]*producerState, ongoing map[int64]int64) []byte {
	b := make([]byte, 0, 18+len(producers)*(31+producerWindow*24)+4)
	b = append(b, "GPST"...)
	b = binary.BigEndian.AppendUint16(b, 2)
	b = binary.BigEndian.AppendUint64(b, uint64(offset))
	b = binary.BigEndian.AppendUint32(b, uint32(len(producers)))
	for id, st := range producers {
		b = binary.BigEndian.AppendUint64(b, uint64(id))
		b = binary.BigEndian.AppendUint16(b, uint16(st.epoch))
		b = binary.BigEndian.AppendUint64(b, uint64(st.lastTimestamp))
		b = binary.BigEndian.AppendUint32(b, uint32(st.coordinatorEpoch))
		first, open := ongoing[id]
		if !open {
			first = -1
		}
		b = binary.BigEndian.AppendUint64(b, uint64(first))
		b = append(b, byte(len(st.batches)))
		for _, m := range st.batches {
			b = binary.BigEndian.AppendUint32(b, uint32(m.firstSeq))
			b = binary.BigEndian.AppendUint32(b, uint32(m.lastSeq))
			b = binary.BigEndian.AppendUint64(b, uint64(m.firstOffset))
			b = binary.BigEndian.AppendUint64(b, uint64(m.lastOffset))
		}
	}
	return binary.BigEndian.AppendUint32(b, batch.Checksum(b))
}

func decodeProducerSnapshot(b []byte) (int64, producerSnapshot, error) {
	var snap producerSnapshot
	if len(b) < 22 || string(b[:4]) != "GPST" {
		return 0, snap, errSnapshot
	}
	version := binary.BigEndian.Uint16(b[4:])
	if version != 1 && version != 2 {
		return 0, snap, errSnapshot
	}
	body := b[:len(b)-4]
	if batch.Checksum(body) != binary.BigEndian.Uint32(b[len(b)-4:]) {
		return 0, snap, errSnapshot
	}
	offset := int64(binary.BigEndian.Uint64(body[6:]))
	count := binary.BigEndian.Uint32(body[14:])
	body = body[18:]
	fixed := 19
	if version == 2 {
		fixed = 31
	}
	snap.producers = make(map[int64]*producerState, min(count, 1<<16))
	snap.ongoing = map[int64]int64{}
	for range count {
		if len(body) < fixed {
			return 0, snap, errSnapshot
		}
		id := int64(binary.BigEndian.Uint64(body))
		st := &producerState{
			id:               id,
			epoch:            int16(binary.BigEndian.Uint16(body[8:])),
			lastTimestamp:    int64(binary.BigEndian.Uint64(body[10:])),
			coordinatorEpoch: -1,
		}
		if version == 2 {
			st.coordinatorEpoch = int32(binary.BigEndian.Uint32(body[18:]))
			if first := int64(binary.BigEndian.Uint64(body[22:])); first >= 0 {
				snap.ongoing[id] = first
			}
		}
		n := int(body[fixed-1])
		body = body[fixed:]
		if n > producerWindow || len(body) < n*24 {
			return 0, snap, errSnapshot
		}
		for range n {
			st.batches = append(st.batches, batchMeta{
				firstSeq:    int32(binary.BigEndian.Uint32(body)),
				lastSeq:     int32(binary.BigEndian.Uint32(body[4:])),
				firstOffset: int64(binary.BigEndian.Uint64(body[8:])),
				lastOffset:  int64(binary.BigEndian.Uint64(body[16:])),
			})
			body = body[24:]
		}
		snap.producers[id] = st
	}
	if len(body) != 0 {
		return 0, snap, errSnapshot
	}
	return offset, snap, nil
}

// loadProducerSnapshot returns the newest valid snapshot at or below
// the log end offset (offset -1 when there is none) and the file the
// next snapshot should overwrite: the other one.
func (b *Broker) loadProducerSnapshot(dir string, leo int64) (int64, producerSnapshot, string) {
	bestOff, best, bestName := int64(-1), producerSnapshot{}, ""
	for _, name := range []string{producerSnapshotName, producerSnapshotPrev} {
		data, err := vfs.ReadFile(b.fs, filepath.Join(dir, name))
		if err != nil {
			continue
		}
		off, snap, err := decodeProducerSnapshot(data)
		if err != nil {
			b.log.Warn("ignoring corrupt producer snapshot", "file", filepath.Join(dir, name))
			continue
		}
		if off > leo {
			// Beyond the recovered log end: it describes a tail the
			// crash lost, and once the log grows past its offset again
			// it would match a history that no longer exists. Kafka
			// deletes such snapshots too; the removal is synced before
			// any new append.
			b.log.Info("removing producer snapshot beyond the log end", "file", filepath.Join(dir, name), "offset", off, "logEndOffset", leo)
			if err := b.fs.Remove(filepath.Join(dir, name)); err != nil {
				b.log.Warn("removing producer snapshot", "err", err)
			} else if err := b.fs.SyncDir(dir); err != nil {
				b.log.Warn("removing producer snapshot", "err", err)
			}
			continue
		}
		if off > bestOff {
			bestOff, best, bestName = off, snap, name
		}
	}
	next := producerSnapshotName
	if bestName == producerSnapshotName {
		next = producerSnapshotPrev
	}
	return bestOff, best, next
}

// snapshotProducers writes the partition's producer state at its current
// log end offset, over the older of its two snapshot files. The state is
// copied under mu; the file is written without it.
func (b *Broker) snapshotProducers(p *partition) error {
	p.mu.Lock()
	offset := p.log.LogEndOffset()
	data := encodeProducerSnapshot(offset, p.producers.m, p.ongoing)
	p.bytesSinceSnapshot = 0
	name := p.snapshotNext
	if name == "" {
		name = producerSnapshotName
	}
	p.mu.Unlock()

	// Every abort marker below offset must be durable in the index
	// before a snapshot says the log below offset needs no replay.
	if err := p.aborted.Sync(); err != nil {
		return fmt.Errorf("producer snapshot: %w", err)
	}
	if err := p.aborted.DropBefore(p.log.LogStartOffset()); err != nil {
		return fmt.Errorf("producer snapshot: %w", err)
	}

	// No fsync: a snapshot is an optimisation. One lost or torn by a
	// crash fails its checksum or is missing, and the log is replayed
	// from the other snapshot or its start instead. The file written
	// holds the older snapshot, so a torn write never costs the newer.
	f, err := b.fs.OpenWrite(filepath.Join(p.log.Dir(), name))
	if err != nil {
		return fmt.Errorf("producer snapshot: %w", err)
	}
	_, werr := f.WriteAt(data, 0)
	if werr == nil {
		// A shorter snapshot than the file's: cut the rest (the
		// decoder reads the whole file).
		var size int64
		if size, werr = f.Size(); werr == nil && size > int64(len(data)) {
			werr = f.Truncate(int64(len(data)))
		}
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		// Torn or cut short: this file no longer holds a valid
		// snapshot, the other still does; overwrite this one again.
		return fmt.Errorf("producer snapshot: %w", werr)
	}
	p.mu.Lock()
	if name == producerSnapshotName {
		p.snapshotNext = producerSnapshotPrev
	} else {
		p.snapshotNext = producerSnapshotName
	}
	p.mu.Unlock()
	return nil
}

// noteAppendLocked counts appended bytes and reports whether a producer
// snapshot is due; the caller then calls startProducerSnapshot after
// releasing mu.
func (p *partition) noteAppendLocked(n int) bool {
	p.bytesSinceSnapshot += int64(n)
	if p.bytesSinceSnapshot < producerSnapshotEvery || p.snapshotting {
		return false
	}
	p.snapshotting = true
	return true
}

// startProducerSnapshot writes a snapshot in the background.
func (b *Broker) startProducerSnapshot(p *partition) {
	done := func() {
		p.mu.Lock()
		p.snapshotting = false
		p.mu.Unlock()
	}
	if b.closed.Load() {
		done() // Close writes the final snapshot
		return
	}
	b.goTracked(func() {
		defer done()
		if err := b.snapshotProducers(p); err != nil {
			b.log.Warn("producer snapshot failed", "topic", p.topic, "partition", p.index, "err", err)
		}
	})
}
