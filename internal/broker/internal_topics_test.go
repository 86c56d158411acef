package broker_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/gregor-streaming/gregor/internal/ktest"
)

// TestProduceToInternalTopicRefused: clients cannot append to
// __consumer_offsets or __transaction_state, as in Kafka (INVALID_TOPIC_EXCEPTION):
// their records are the coordinators' state, replayed at every start.
func TestProduceToInternalTopicRefused(t *testing.T) {
	b := ktest.NewBroker(t)
	// A group and a transaction make the coordinators create both topics.
	tcl := b.Client(kgo.TransactionalID("tx"), kgo.DefaultProduceTopic("events"), kgo.AllowAutoTopicCreation())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := tcl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := tcl.ProduceSync(ctx, &kgo.Record{Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := tcl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	gcl := b.Client(kgo.ConsumerGroup("g"), kgo.ConsumeTopics("events"))
	gcl.PollFetches(ctx)
	if err := gcl.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatal(err)
	}
	gcl.Close()

	for _, topic := range []string{"__consumer_offsets", "__transaction_state"} {
		cl := b.Client(kgo.DefaultProduceTopic(topic), kgo.RecordRetries(0))
		err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte("\xff\xff junk"), Value: []byte("junk")}).FirstErr()
		if !errors.Is(err, kerr.InvalidTopicException) {
			t.Errorf("produce to %s: err = %v, want INVALID_TOPIC_EXCEPTION", topic, err)
		}
		cl.Close()
	}

	// Whatever was or was not appended, the coordinators load again.
	b.Restart()
	gcl = b.Client(kgo.ConsumerGroup("g"), kgo.ConsumeTopics("events"))
	defer gcl.Close()
	if err := gcl.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatal(err)
	}
}
