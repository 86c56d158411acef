package broker

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestRotateAnsweredNoAllocs: moving answered partitions to the back of
// a session runs on every incremental fetch and allocates nothing once
// the session's scratch space has grown.
func TestRotateAnsweredNoAllocs(t *testing.T) {
	s := &fetchSession{index: map[sessionKey]*sessionPartition{}}
	for p := range int32(100) {
		s.upsertLocked(sessionKey{topic: "t", partition: p}, &kmsg.FetchRequestTopicPartition{Partition: p})
	}
	rotate := func() {
		for _, sp := range s.parts[:10] {
			sp.answered = true
		}
		s.rotateAnsweredLocked(10)
	}
	rotate()
	if got := s.parts[0].key.partition; got != 10 {
		t.Fatalf("after one rotation partition %d leads, want 10", got)
	}
	if n := testing.AllocsPerRun(100, rotate); n != 0 {
		t.Fatalf("rotation allocates %.1f times", n)
	}
	if len(s.parts) != 100 || len(s.index) != 100 {
		t.Fatalf("%d partitions, %d indexed", len(s.parts), len(s.index))
	}
}
