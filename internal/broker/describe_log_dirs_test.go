package broker_test

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/ktest"
)

// TestDescribeLogDirsTopicTwice: Kafka gathers the requested partitions
// into a set and answers each topic once, so a topic named in two
// entries comes back as one with the partitions of both.
func TestDescribeLogDirsTopicTwice(t *testing.T) {
	b := ktest.NewBroker(t)
	b.CreateTopic("t", 3, nil)
	r := kmsg.NewPtrDescribeLogDirsRequest()
	r.Version = 4
	r.Topics = []kmsg.DescribeLogDirsRequestTopic{
		{Topic: "t", Partitions: []int32{0}},
		{Topic: "t", Partitions: []int32{2, 0}},
		{Topic: "missing", Partitions: []int32{0}},
	}
	resp := send[*kmsg.DescribeLogDirsResponse](t, b, r)
	if len(resp.Dirs) != 1 || len(resp.Dirs[0].Topics) != 1 {
		t.Fatalf("dirs %+v", resp.Dirs)
	}
	var got []int32
	for _, p := range resp.Dirs[0].Topics[0].Partitions {
		got = append(got, p.Partition)
	}
	if len(got) != 2 || got[0] != 0 || got[1] != 2 {
		t.Errorf("partitions %v, want [0 2]", got)
	}
}
