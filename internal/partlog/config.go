package partlog

import "math"

// Config holds a partition log's topic-level settings, named after
// Kafka's topic configs. Zero or out-of-range fields take their defaults
// (see DefaultConfig) when a Log uses them.
type Config struct {
	// SegmentBytes is segment.bytes: the active segment rolls before an
	// append that would make it larger. Default 1 GiB; at most
	// math.MaxInt32 (index positions are 32-bit, as in Kafka).
	SegmentBytes int64
	// SegmentMs is segment.ms: the active segment rolls when an incoming
	// batch's max timestamp is more than SegmentMs after the segment's
	// first batch's max timestamp (Kafka's rule, which uses record time,
	// not wall time, so replays of old data do not roll on every append).
	// Default 7 days.
	SegmentMs int64
	// IndexIntervalBytes is index.interval.bytes: the number of log bytes
	// between entries of the sparse offset index and the time index.
	// Default 4096.
	IndexIntervalBytes int32
	// SegmentIndexBytes is segment.index.bytes: the active segment rolls
	// when its offset index (8-byte entries) or time index (12-byte
	// entries) would exceed it. Default 10 MiB.
	SegmentIndexBytes int32
}

// Defaults, as in Kafka.
const (
	DefaultSegmentBytes       = 1 << 30
	DefaultSegmentMs          = 7 * 24 * 60 * 60 * 1000
	DefaultIndexIntervalBytes = 4096
	DefaultSegmentIndexBytes  = 10 << 20
)

// DefaultConfig returns Kafka's defaults.
func DefaultConfig() Config {
	return Config{
		SegmentBytes:       DefaultSegmentBytes,
		SegmentMs:          DefaultSegmentMs,
		IndexIntervalBytes: DefaultIndexIntervalBytes,
		SegmentIndexBytes:  DefaultSegmentIndexBytes,
	}
}

// normalized returns c with unusable values replaced by defaults.
func (c Config) normalized() Config {
	if c.SegmentBytes <= 0 {
		c.SegmentBytes = DefaultSegmentBytes
	}
	if c.SegmentBytes > math.MaxInt32 {
		c.SegmentBytes = math.MaxInt32
	}
	if c.SegmentMs <= 0 {
		c.SegmentMs = DefaultSegmentMs
	}
	if c.IndexIntervalBytes <= 0 {
		c.IndexIntervalBytes = DefaultIndexIntervalBytes
	}
	if c.SegmentIndexBytes < timeIndexEntrySize {
		c.SegmentIndexBytes = DefaultSegmentIndexBytes
	}
	return c
}
