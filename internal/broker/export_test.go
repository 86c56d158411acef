package broker

// SetVerifiedAppendHook makes f run after each transactional batch that
// was verified with the transaction coordinator is appended, before the
// broker lets the producer's next batches skip the coordinator.
func SetVerifiedAppendHook(b *Broker, f func()) {
	b.verifiedAppendHook.Store(&f)
}
