package ktest

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"
)

// StartApp starts a broker tuned for stream applications (one-partition
// coordinator topics, no initial rebalance delay) and run, an
// application's run function as its main calls it, with the broker's
// address and a silent logger, on its own goroutine. It returns the
// broker, a context that ends a minute from now, and stop, which
// cancels run and fails the test unless run then returned nil.
func StartApp(t *testing.T, run func(ctx context.Context, addr string, log *slog.Logger) error) (b *Broker, ctx context.Context, stop func()) {
	t.Helper()
	b = NewBroker(t,
		Set("log.flush.interval.ms", "1000"),
		Set("group.initial.rebalance.delay.ms", "0"),
		Set("offsets.topic.num.partitions", "1"),
		Set("transaction.state.log.num.partitions", "1"))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	runCtx, cancelRun := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- run(runCtx, b.Addr, slog.New(slog.NewTextHandler(io.Discard, nil))) }()
	return b, ctx, func() {
		t.Helper()
		cancelRun()
		if err := <-done; err != nil {
			t.Fatalf("run after cancel: %v", err)
		}
	}
}
