package wire

import (
	"bytes"
	"os"
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

// spanResp stands record sets of a fetch response for ranges of a file.
type spanResp struct {
	*kmsg.FetchResponse
	f      *os.File
	ranges map[*byte][2]int64
}

func (r *spanResp) Unwrap() kmsg.Response { return r.FetchResponse }

func (r *spanResp) FileSpan(b []byte) (SendFile, int64, int, bool) {
	rg, ok := r.ranges[&b[0]]
	return r.f, rg[0], int(rg[1]), ok
}

// Record sets left in a file are framed with their file length, and
// writing the file range at the segment gives the copied frame.
func TestAppendResponseSegmentsFileSpans(t *testing.T) {
	content := bytes.Repeat([]byte("0123456789abcdefghij"), 1000)
	f, err := os.CreateTemp(t.TempDir(), "seg")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(content); err != nil {
		t.Fatal(err)
	}
	for _, version := range []int16{4, 12, 16} {
		copied := kmsg.NewPtrFetchResponse()
		copied.Version = version
		spanned := kmsg.NewPtrFetchResponse()
		spanned.Version = version
		sr := &spanResp{FetchResponse: spanned, f: f, ranges: map[*byte][2]int64{}}
		rt := kmsg.NewFetchResponseTopic()
		rt.Topic = "t"
		st := rt
		for pi, rg := range [][2]int64{{0, 300}, {5, 0}, {1000, 5000}, {7, 200}} {
			cp := kmsg.NewFetchResponseTopicPartition()
			cp.Partition = int32(pi)
			sp := cp
			if rg[1] == 0 {
				cp.RecordBatches = []byte{9, 9}
				sp.RecordBatches = cp.RecordBatches
			} else {
				cp.RecordBatches = content[rg[0] : rg[0]+rg[1]]
				ph := make([]byte, 16)
				sr.ranges[&ph[0]] = rg
				sp.RecordBatches = ph
			}
			rt.Partitions = append(rt.Partitions, cp)
			st.Partitions = append(st.Partitions[:pi:pi], sp)
		}
		copied.Topics = []kmsg.FetchResponseTopic{rt}
		spanned.Topics = []kmsg.FetchResponseTopic{st}
		want := AppendResponse(nil, 3, copied)
		got, segs := AppendResponseSegments(nil, 3, sr, nil)
		var out []byte
		prev := 0
		for _, s := range segs {
			out = append(out, got[prev:s.Pos]...)
			if s.File == nil {
				out = append(out, s.Data...)
			} else {
				b := make([]byte, s.N)
				if _, err := s.File.ReadAt(b, s.Off); err != nil {
					t.Fatal(err)
				}
				out = append(out, b...)
			}
			prev = s.Pos
		}
		out = append(out, got[prev:]...)
		if !bytes.Equal(out, want) {
			t.Fatalf("v%d: frame with file spans differs from the copied one", version)
		}
	}
}
