package metrics

import (
	"sync/atomic"
	"time"
)

// MaxAPIKey bounds the API keys Requests tracks; higher keys are counted
// under the last slot. Kafka's keys stay below 100.
const MaxAPIKey = 127

// Requests counts requests and their latency per API key. The zero value
// is ready.
type Requests struct {
	keys [MaxAPIKey + 1]requestStats
}

type requestStats struct {
	latency Histogram
}

// Observe records one request of API key key that took d from arrival
// to response.
func (r *Requests) Observe(key int16, d time.Duration) {
	if key < 0 || key > MaxAPIKey {
		key = MaxAPIKey
	}
	r.keys[key].latency.Observe(d)
}

// Latency returns the histogram of API key key.
func (r *Requests) Latency(key int16) *Histogram {
	if key < 0 || key > MaxAPIKey {
		key = MaxAPIKey
	}
	return &r.keys[key].latency
}

// BrokerStats are the broker-wide instruments the request path updates.
// A broker embeds one; the zero value is ready.
type BrokerStats struct {
	// Requests is the per-API-key request count and latency.
	Requests Requests
	// Fsync is the latency of every log fsync (group commit: one
	// observation per sync, however many produces share it).
	Fsync Histogram
	// FetchPurgatory is the number of fetches parked waiting for data
	// (Kafka's DelayedOperationPurgatory, delayedOperation=Fetch).
	FetchPurgatory atomic.Int64
	// ProducePurgatory is the number of partition appends whose produce
	// response waits for fsync (delayedOperation=Produce).
	ProducePurgatory atomic.Int64
	// CacheReleased and CachePrefetched count the bytes of segment
	// files released from the page cache behind the writers and
	// prefetched for readers (log.cache.keep.bytes).
	CacheReleased, CachePrefetched atomic.Int64
	// Preallocated counts the bytes of zeros written past active
	// segments' data (partlog/prealloc.go).
	Preallocated atomic.Int64
}

// PartitionStats are one partition's traffic counters. A partition
// embeds one; the zero value is ready. Records are counted from batch
// headers (lastOffsetDelta+1), never by decoding records.
type PartitionStats struct {
	bytesIn, recordsIn     atomic.Int64
	bytesOut, recordsOut   atomic.Int64
	produceReqs, fetchReqs atomic.Int64
	produceFail, fetchFail atomic.Int64
}

// Produced counts a produce to the partition: a batch of n records in
// size bytes appended, or failed.
func (s *PartitionStats) Produced(size int, n int32, failed bool) {
	s.produceReqs.Add(1)
	if failed {
		s.produceFail.Add(1)
		return
	}
	s.bytesIn.Add(int64(size))
	s.recordsIn.Add(int64(n))
}

// Fetched counts the partition's part of one fetch response: the record
// batches sent (whole batches, as stored, control batches included), or
// a failure.
func (s *PartitionStats) Fetched(batches []byte, failed bool) {
	var records int64
	if !failed && len(batches) > 0 {
		records = CountRecords(batches)
	}
	s.FetchedN(int64(len(batches)), records, failed)
}

// FetchedN counts a fetch of a partition that returned bytes of record
// batches holding records (batches sent from a file, not in memory).
func (s *PartitionStats) FetchedN(bytes, records int64, failed bool) {
	s.fetchReqs.Add(1)
	if failed {
		s.fetchFail.Add(1)
		return
	}
	if bytes == 0 {
		return
	}
	s.bytesOut.Add(bytes)
	s.recordsOut.Add(records)
}

// Totals is a snapshot of PartitionStats.
type Totals struct {
	BytesIn, RecordsIn, BytesOut, RecordsOut int64
	ProduceRequests, FailedProduceRequests   int64
	FetchRequests, FailedFetchRequests       int64
}

// Load returns the counters.
func (s *PartitionStats) Load() Totals {
	return Totals{
		BytesIn: s.bytesIn.Load(), RecordsIn: s.recordsIn.Load(),
		BytesOut: s.bytesOut.Load(), RecordsOut: s.recordsOut.Load(),
		ProduceRequests: s.produceReqs.Load(), FailedProduceRequests: s.produceFail.Load(),
		FetchRequests: s.fetchReqs.Load(), FailedFetchRequests: s.fetchFail.Load(),
	}
}

func (t *Totals) add(o Totals) {
	t.BytesIn += o.BytesIn
	t.RecordsIn += o.RecordsIn
	t.BytesOut += o.BytesOut
	t.RecordsOut += o.RecordsOut
	t.ProduceRequests += o.ProduceRequests
	t.FailedProduceRequests += o.FailedProduceRequests
	t.FetchRequests += o.FetchRequests
	t.FailedFetchRequests += o.FailedFetchRequests
}

// CountRecords returns the records in a run of RecordBatch v2 bytes by
// reading each batch header's recordsCount (which, unlike
// lastOffsetDelta+1, stays right after compaction): no decoding, no
// allocation. A truncated trailing batch is not counted.
func CountRecords(b []byte) int64 {
	const (
		lengthAt  = 8  // after baseOffset
		overhead  = 12 // baseOffset + batchLength
		countAt   = 57 // the last field of the 61-byte header
		headerLen = 61
	)
	var n int64
	for len(b) >= headerLen {
		length := int64(be32(b[lengthAt:]))
		size := length + overhead
		if size < headerLen || size > int64(len(b)) {
			break
		}
		n += int64(be32(b[countAt:]))
		b = b[size:]
	}
	return n
}

func be32(b []byte) int32 {
	return int32(uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]))
}
