package partlog

import "errors"

// Errors returned by Log methods. They are wrapped with context (offsets,
// file names); test with errors.Is.
var (
	// ErrOffsetOutOfRange is returned by Read for an offset outside
	// [LogStartOffset, LogEndOffset]; the broker maps it to
	// OFFSET_OUT_OF_RANGE.
	ErrOffsetOutOfRange = errors.New("partlog: offset out of range")
	// ErrCorrupt marks stored data that failed its checksum or structure
	// checks. A corrupt batch is never served.
	ErrCorrupt = errors.New("partlog: corrupt data")
	// ErrClosed is returned by every method of a closed Log, and passed
	// to RequestSync callbacks that were pending when it closed.
	ErrClosed = errors.New("partlog: log closed")
	// ErrInvalidBatch is returned by Append and AppendRaw when the bytes
	// are not a sequence of whole RecordBatch v2 batches.
	ErrInvalidBatch = errors.New("partlog: invalid record batch")
	// ErrNonMonotonicOffset is returned by AppendRaw when a batch's
	// offsets are below the log end offset or overlap the previous batch.
	ErrNonMonotonicOffset = errors.New("partlog: non-monotonic batch offset")
	// ErrNoSyncer is passed to RequestSync callbacks of a Log opened
	// without a Syncer, or whose Syncer is closed.
	ErrNoSyncer = errors.New("partlog: no syncer")
)
