package partlog

import (
	"fmt"
	"sync"
)

// Small journaled appends are not written to their segment one by one:
// while the journal holds a durable copy, the bytes wait in a buffer of
// the active segment (activeState.pend) and reach the file in one write
// when the buffer fills, a read or a sync needs them there, the segment
// rolls, or the log closes. With 10,000 partitions each append is one
// small batch, and its write(2) (page allocation, an inode timestamp
// update through the file system's journal) cost about half the broker's
// CPU; a memcpy costs almost nothing.
//
// Invariants, under Log.mu: the file holds the segment's first
// a.size-len(a.pend) bytes and pend the rest; every pending byte was
// added to the journal (an append that is not journaled flushes the
// buffer first, so the file stays in offset order). A crash loses the
// buffer as it loses unsynced page cache, and so does a killed process
// (which would have left the page cache): recovery replays the journal.
// A failed flush fails the log (sticky, as a failed fsync): the
// acknowledged part of the buffer is in the journal, which Reopen
// replays.

const (
	// pendMax is the most a log buffers before writing. A write's fixed
	// cost (about 5 µs here) is paid once per pendMax bytes; its cost
	// per byte (page cache pages, about 2 ns) stays. 8 KiB saves most
	// of the first at half the memory of 16 KiB.
	pendMax = 8 << 10
	// pendBudget bounds the buffer memory of all logs of a Syncer
	// (pendMax each: 16,384 buffering logs); beyond it appends are
	// written at once.
	pendBudget = 128 << 20
)

var pendPool = sync.Pool{New: func() any { b := make([]byte, 0, pendMax); return &b }}

// bufferLocked adds b, holding offsets from first on, to the pending
// buffer; false when it does not fit (the caller writes it).
func (l *Log) bufferLocked(b []byte, first int64) (bool, error) {
	a := &l.act
	if len(a.pend)+len(b) > pendMax {
		if err := l.flushPendLocked(); err != nil {
			return false, err
		}
	}
	if len(b) > pendMax {
		return false, nil
	}
	if a.pend == nil {
		if l.syncer.pendBytes.Load()+pendMax > pendBudget {
			return false, nil
		}
		a.pend = (*pendPool.Get().(*[]byte))[:0]
		a.pendFirst = first
		l.syncer.pendBytes.Add(pendMax)
	}
	a.pend = append(a.pend, b...)
	return true, nil
}

// flushPendLocked writes the pending buffer to the active segment. A
// failure fails the log: the buffer's acknowledged bytes live only in
// the journal now, and Reopen brings them back from there.
func (l *Log) flushPendLocked() error {
	a := &l.act
	if len(a.pend) == 0 {
		return nil
	}
	if l.failed != nil {
		return l.failed
	}
	written := a.size - int64(len(a.pend))
	n, err := l.w.writeData(a.pend, written, l.allocAhead())
	if err == nil && n != len(a.pend) {
		err = fmt.Errorf("short write: %d of %d bytes", n, len(a.pend))
	}
	if err != nil {
		err = fmt.Errorf("partlog: write buffered appends to %s at %d: %w", a.seg.logName, written, err)
		l.failLocked(err)
		return err
	}
	l.dropPendLocked()
	return nil
}

// dropPendLocked forgets the pending buffer (written, or the active
// state is being replaced).
func (l *Log) dropPendLocked() {
	a := &l.act
	if a.pend == nil {
		return
	}
	l.syncer.pendBytes.Add(-pendMax)
	p := a.pend[:0]
	pendPool.Put(&p)
	a.pend = nil
}
