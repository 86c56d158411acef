package broker

import (
	"github.com/gregor-streaming/gregor/internal/partlog"
	"github.com/twmb/franz-go/pkg/kerr"
)

// Partitions are limited by the open-file limit (RLIMIT_NOFILE, `ulimit
// -n`): each keeps its active segment open for appends, one descriptor.
// A broker that accepted more could not open them, and would not start
// again with them in its metadata. As Redpanda does, topic creation
// refuses partitions past the limit with INVALID_PARTITIONS (Kafka has
// no such check and needs a large limit).

// fdReserve is the descriptors kept for everything else: connections,
// the journal, the metadata log, checkpoints being rewritten and
// compactions. The package-wide cache of segment read handles is
// counted apart (two per cached segment).
const fdReserve = 1024

// partitionCapacity is how many partitions an open-file limit of lim
// leaves room for; -1 for no limit (lim < 0). Under a small limit
// (below ~6,000) half is kept for the rest.
func partitionCapacity(lim int64) int64 {
	if lim < 0 {
		return -1
	}
	return lim - min(2*partlog.DefaultOpenSegmentFiles+fdReserve, lim/2)
}

// checkCapacity refuses adding partitions to the have a broker hosts
// (counting those accepted earlier in the same request) when they would
// exceed its capacity.
func (b *Broker) checkCapacity(have, adding int) *topicError {
	capacity := partitionCapacity(b.fileLimit)
	if capacity < 0 || int64(have+adding) <= capacity {
		return nil
	}
	return newTopicError(kerr.InvalidPartitions,
		"cannot host %d more partitions: this broker has %d, and its open-file limit (ulimit -n) of %d leaves room for %d (one open file per partition, %d for the rest); raise the limit and restart the broker",
		adding, have, b.fileLimit, capacity, b.fileLimit-capacity)
}
