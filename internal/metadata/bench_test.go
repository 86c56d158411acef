package metadata

import (
	"fmt"
	"log/slog"
	"testing"

	"github.com/gregor-streaming/gregor/internal/vfs"
)

// BenchmarkStoreUpdate: one committed batch creating a one-partition
// topic, on the OS file system (each commit waits for an fsync).
func BenchmarkStoreUpdate(b *testing.B) { benchCreate(b, 1) }

// BenchmarkStoreCreateLargeTopic: one batch creating a 10,000-partition
// topic (the comparison's many-partition workload).
func BenchmarkStoreCreateLargeTopic(b *testing.B) { benchCreate(b, 10000) }

// benchCreate commits one topic of parts partitions per iteration.
func benchCreate(b *testing.B, parts int32) {
	s, err := Open(vfs.Default, b.TempDir(), discard)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	b.ReportAllocs()
	for i := range b.N {
		name := fmt.Sprintf("t%d", i)
		if _, err := s.Update(func(*Image) ([]Record, error) { return createTopic(name, parts), nil }); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStoreOpen: reopening a store that holds 1,000 topics of 10
// partitions (replay of the log after its last snapshot).
func BenchmarkStoreOpen(b *testing.B) {
	dir := b.TempDir()
	s, err := Open(vfs.Default, dir, discard)
	if err != nil {
		b.Fatal(err)
	}
	for i := range 1500 {
		name := fmt.Sprintf("t%d", i)
		if _, err := s.Update(func(*Image) ([]Record, error) { return createTopic(name, 10), nil }); err != nil {
			b.Fatal(err)
		}
	}
	s.Close()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		s, err := Open(vfs.Default, dir, discard)
		if err != nil {
			b.Fatal(err)
		}
		s.Close()
	}
}

var discard = slog.New(slog.DiscardHandler)
