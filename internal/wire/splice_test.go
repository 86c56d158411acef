package wire

import (
	"bytes"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// join writes frame bytes and segments the way the server's writer does.
func join(b []byte, segs []Segment) []byte {
	var out []byte
	prev := 0
	for _, s := range segs {
		out = append(out, b[prev:s.Pos]...)
		out = append(out, s.Data...)
		prev = s.Pos
	}
	return append(out, b[prev:]...)
}

func TestAppendResponseSegmentsMatchesCopy(t *testing.T) {
	for _, version := range []int16{4, 11, 12, 13, 16} {
		resp := kmsg.NewPtrFetchResponse()
		resp.Version = version
		for ti := range 3 {
			rt := kmsg.NewFetchResponseTopic()
			rt.Topic = "topic"
			rt.TopicID[0] = byte(ti)
			for pi := range 4 {
				rp := kmsg.NewFetchResponseTopicPartition()
				rp.Partition = int32(pi)
				rp.HighWatermark = 99
				switch pi {
				case 0:
				case 1:
					rp.RecordBatches = []byte{1, 2, 3}
				default:
					rp.RecordBatches = bytes.Repeat([]byte{byte(ti*10 + pi)}, 100*pi*(ti+1))
				}
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		want := AppendResponse([]byte("prefix"), 7, resp)
		got, segs := AppendResponseSegments([]byte("prefix"), 7, resp, nil)
		if len(segs) != 6 {
			t.Fatalf("v%d: %d segments, want 6", version, len(segs))
		}
		if j := join(got, segs); !bytes.Equal(j, want) {
			t.Fatalf("v%d: spliced frame differs from the copied one", version)
		}
		// The response is restored.
		if again := AppendResponse([]byte("prefix"), 7, resp); !bytes.Equal(again, want) {
			t.Fatalf("v%d: response not restored", version)
		}
	}
}

func TestAppendResponseSegmentsOtherResponses(t *testing.T) {
	md := kmsg.NewPtrMetadataResponse()
	md.Version = 12
	got, segs := AppendResponseSegments(nil, 1, md, nil)
	if len(segs) != 0 || !bytes.Equal(got, AppendResponse(nil, 1, md)) {
		t.Fatal("non-fetch response changed")
	}
}
