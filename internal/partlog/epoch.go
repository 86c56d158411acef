package partlog

// EpochEntry is one entry of the leader epoch history: the first offset
// written under a leader epoch (Kafka's leader-epoch-checkpoint).
type EpochEntry struct {
	Epoch       int32
	StartOffset int64
}

// Kafka's UNDEFINED_EPOCH and UNDEFINED_EPOCH_OFFSET.
const (
	UndefinedEpoch       int32 = -1
	UndefinedEpochOffset int64 = -1
)

// assignEpoch appends (epoch, start) when epoch is newer than the last
// entry; older or equal epochs are ignored, as in Kafka.
func assignEpoch(es []EpochEntry, epoch int32, start int64) []EpochEntry {
	if epoch < 0 {
		return es
	}
	if n := len(es); n > 0 && es[n-1].Epoch >= epoch {
		return es
	}
	return append(es, EpochEntry{Epoch: epoch, StartOffset: start})
}

// truncateEpochsFromEnd drops entries starting at or after end (the new
// log end offset), as Kafka's truncateFromEnd.
func truncateEpochsFromEnd(es []EpochEntry, end int64) []EpochEntry {
	n := len(es)
	for n > 0 && es[n-1].StartOffset >= end {
		n--
	}
	return es[:n]
}

// truncateEpochsFromStart drops entries wholly below start (the new log
// start offset); the last of them is kept with its start moved up to
// start, as Kafka's truncateFromStart.
func truncateEpochsFromStart(es []EpochEntry, start int64) []EpochEntry {
	i := 0
	for i+1 < len(es) && es[i+1].StartOffset <= start {
		i++
	}
	if i > 0 {
		es = append(es[:0], es[i:]...)
	}
	if len(es) > 0 && es[0].StartOffset < start {
		es[0].StartOffset = start
	}
	return es
}

// endOffsetForEpoch implements OffsetForLeaderEpoch (Kafka's
// LeaderEpochFileCache.endOffsetFor).
func endOffsetForEpoch(es []EpochEntry, epoch int32, leo int64) (int32, int64) {
	if epoch == UndefinedEpoch || len(es) == 0 {
		return UndefinedEpoch, UndefinedEpochOffset
	}
	if es[len(es)-1].Epoch == epoch {
		return epoch, leo
	}
	// higher: first entry with Epoch > epoch; floor: the one before it.
	hi := -1
	for i, e := range es {
		if e.Epoch > epoch {
			hi = i
			break
		}
	}
	if hi < 0 {
		return UndefinedEpoch, UndefinedEpochOffset
	}
	if hi == 0 {
		return epoch, es[0].StartOffset
	}
	return es[hi-1].Epoch, es[hi].StartOffset
}

// epochForOffset returns the epoch offset was written under: that of the
// last entry starting at or before it, or UndefinedEpoch when every entry
// starts after it (Kafka's LeaderEpochFileCache.epochForOffset).
func epochForOffset(es []EpochEntry, offset int64) int32 {
	epoch := UndefinedEpoch
	for _, e := range es {
		if e.StartOffset > offset {
			break
		}
		epoch = e.Epoch
	}
	return epoch
}
