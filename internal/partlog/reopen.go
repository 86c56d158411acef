package partlog

import "fmt"

// Failed returns the error that made the log refuse appends (a failed
// fsync, or a write that could not be undone), or nil when it is
// healthy. Reopen clears it.
func (l *Log) Failed() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.failed
}

// Reopen recovers a failed log in place, as closing and opening it
// would, so a partition whose disk failed takes appends again once the
// disk is healthy without its callers replacing the *Log. The files are
// recovered as by Open after a crash: the page cache may have dropped
// what a failed fsync did not write, so nothing past the last good
// fsync is trusted without a check, and recovered data is synced before
// the recovery point passes it. RequestSync callbacks still pending get
// the failure (their offsets may not have survived). On error the log
// stays failed and unchanged. A healthy log is left alone.
func (l *Log) Reopen() error {
	l.ckptMu.Lock()
	defer l.ckptMu.Unlock()
	l.syncMu.Lock()
	defer l.unlockSync()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	failure := l.failed
	if failure == nil {
		return nil
	}
	// Recover into a fresh Log without a Syncer (it must not register
	// itself anywhere), then move its state here. Holding mu keeps
	// readers out meanwhile; readers already past it see truncGen move
	// and retry.
	l.truncGen.Add(1)
	nl, err := Open(Options{FS: l.fs, Dir: l.dir, Config: l.cfg, Now: l.now, Logger: l.logger})
	if err != nil {
		return fmt.Errorf("partlog: reopen %s: %w", l.dir, err)
	}
	for _, r := range l.rolled {
		r.f.release()
	}
	for _, s := range l.segs {
		files.remove(s)
	}
	if l.w != nil {
		l.w.release()
	}
	ws := l.waiters
	l.waiters = nil
	l.dropPendLocked() // what the journal acknowledged is replayed below
	l.segs, l.w, l.act = nl.segs, nl.w, nl.act
	l.logStartOffset, l.highWatermark, l.logEndOffset, l.recoveryPoint = nl.logStartOffset, nl.highWatermark, nl.logEndOffset, nl.recoveryPoint
	l.rpMark = nl.rpMark
	l.epochs, l.cleanerOffset, l.tombstoneDue = nl.epochs, nl.cleanerOffset, nl.tombstoneDue
	l.ckptDisk, l.ckptSlots = nl.ckptDisk, nl.ckptSlots // what the recovery read or wrote
	l.rolled, l.dirDirty, l.failed = nil, nl.dirDirty, nil
	l.truncGen.Add(1)
	l.markCkptDirtyLocked()
	if j := l.journal(); j != nil {
		// Acknowledged appends the segments lost are in the journal.
		recs, files, err := j.scanKey(l.jkey)
		if err == nil {
			err = l.replayRecordsLocked(j, recs, files)
			closeFiles(files)
		}
		if err != nil {
			l.failLocked(fmt.Errorf("partlog: journal replay on reopen: %w", err))
			return err
		}
	}
	l.jEnd, l.jDurable = l.logEndOffset, l.logEndOffset
	l.logger.Warn("partlog: failed log reopened and recovered", "failure", failure,
		"logStartOffset", l.logStartOffset, "logEndOffset", l.logEndOffset)
	if len(ws) > 0 {
		// Callbacks never run on the caller's goroutine (RequestSync's
		// contract).
		go callWaiters(ws, l.recoveryPoint, fmt.Errorf("partlog: log failed before the sync: %w", failure))
	}
	return nil
}
