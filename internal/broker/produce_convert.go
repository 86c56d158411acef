package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/gregor-streaming/gregor/internal/batch"
)

// Per-record work that a topic's configuration asks of the produce path,
// as Kafka's LogValidator does. Without it (cleanup.policy without
// compact, compression.type=producer, the defaults) the batch is stored
// as sent and nothing here allocates.

// topicCodecs maps compression.type to a codec; "producer" keeps the
// producer's.
var topicCodecs = map[string]int{
	"uncompressed": batch.CodecNone,
	"gzip":         batch.CodecGzip,
	"snappy":       batch.CodecSnappy,
	"lz4":          batch.CodecLZ4,
	"zstd":         batch.CodecZstd,
}

// convertProduced checks and converts a produced batch (header h, already
// validated) for the topic: a compacted topic refuses records without a
// key (INVALID_RECORD), and a compression.type other than producer
// re-encodes the batch in that codec when the producer used another.
// It returns the batch to append, which is records itself when nothing
// changes.
func convertProduced(ps *produceSettings, records []byte, h batch.Header) ([]byte, batch.Header, *topicError) {
	compact := ps.compact
	target, recompress := ps.codec, ps.recompress && ps.codec != h.Codec()
	if !compact && !recompress {
		return records, h, nil
	}
	var bld *batch.Builder
	if recompress {
		bld = batch.NewBuilder(target).
			SetProducer(h.ProducerID, h.ProducerEpoch, h.BaseSequence).
			SetTransactional(h.IsTransactional()).
			SetBaseOffset(h.BaseOffset)
	}
	var keyless bool
	err := batch.Records(records, func(r batch.Record) bool {
		if compact && r.Key == nil {
			keyless = true
			return false
		}
		if bld != nil {
			bld.AddAt(r)
		}
		return true
	})
	switch {
	case err != nil:
		return nil, h, newTopicError(kerr.CorruptMessage, "%v", err)
	case keyless:
		return nil, h, newTopicError(kerr.InvalidRecord, "compacted topic cannot accept a record without a key")
	case bld == nil:
		return records, h, nil
	}
	out, err := bld.Build()
	if err != nil {
		return nil, h, newTopicError(kerr.CorruptMessage, "%v", err)
	}
	nh, err := batch.ParseHeader(out)
	if err != nil {
		return nil, h, newTopicError(kerr.CorruptMessage, "%v", err)
	}
	return out, nh, nil
}
