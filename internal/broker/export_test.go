package broker

// SetVerifiedAppendHook makes f run after each transactional batch that
// was verified with the transaction coordinator is appended, before the
// broker lets the producer's next batches skip the coordinator.
func SetVerifiedAppendHook(b *Broker, f func()) {
	b.verifiedAppendHook.Store(&f)
}

// SetLeaderEpoch moves partition of topic to leader epoch e, as a leader
// election would: batches appended from then on carry e, and requests
// are fenced against it. Metadata keeps reporting the stored epoch. A
// single node never elects a leader, so only tests change epochs.
func SetLeaderEpoch(b *Broker, topic string, partition, e int32) bool {
	t, ok := b.meta.Image().Topic(topic)
	if !ok {
		return false
	}
	p := b.partition(t.ID, partition)
	if p == nil {
		return false
	}
	p.mu.Lock()
	p.leaderEpoch = e
	p.mu.Unlock()
	return true
}

// SetMarkerFault makes f decide, for each partition a transaction
// marker is written to, an error that fails it (nil: write it); a nil
// f writes them all again.
func SetMarkerFault(b *Broker, f func(topic string, partition int32) error) {
	if f == nil {
		b.markerFault.Store(nil)
		return
	}
	b.markerFault.Store(&f)
}

// SupersededProduce is supersededProduce, for its allocation pin.
var SupersededProduce = supersededProduce
