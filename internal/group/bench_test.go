package group

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

// BenchmarkCoordinatorHeartbeat: a heartbeat through the group's
// mailbox (queue, run, answer).
func BenchmarkCoordinatorHeartbeat(b *testing.B) {
	e := newCoordEnv(b, newMemLog(), true)
	ids, gen := e.form("g", 1)
	done := make(chan *kerr.Error, 1)
	respond := func(err *kerr.Error) { done <- err }
	req := HeartbeatRequest{MemberID: ids[0], Generation: gen}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		e.c.Heartbeat("g", req, respond)
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCoordinatorCommit: an OffsetCommit of 10 partitions,
// encoded as one batch, appended (in memory) and applied.
func BenchmarkCoordinatorCommit(b *testing.B) {
	e := newCoordEnv(b, newMemLog(), true)
	req := CommitRequest{Generation: -1, RetentionTime: -1, Topics: []CommitTopic{{Topic: "topic"}}}
	for p := range int32(10) {
		req.Topics[0].Partitions = append(req.Topics[0].Partitions, CommitPartition{Partition: p, Offset: 100, LeaderEpoch: 1})
	}
	done := make(chan CommitResult, 1)
	respond := func(r CommitResult) { done <- r }
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		req.Topics[0].Partitions[0].Offset = int64(i)
		e.c.Commit("g", req, false, respond)
		if r := <-done; r.Topics[0][0] != nil {
			b.Fatal(r.Topics[0][0])
		}
	}
}
