package broker_test

// Regression tests for broker bugs that third-party clients found in the
// interop suite (interop/run.sh). Each sends the request exactly as the
// client does, on a raw connection, and checks the bytes the client
// parses, since a kmsg round trip can hide encoding differences (null
// versus empty).

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/ktest"
)

// rawRoundTrip sends req on a new connection and returns the response
// frame after its size and correlation ID (and, for flexible responses
// other than ApiVersions, after the response header's tag byte).
func rawRoundTrip(t *testing.T, addr string, req kmsg.Request) []byte {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	frame := kmsg.NewRequestFormatter(kmsg.FormatterClientID("compat-test")).AppendRequest(nil, req, 7)
	if _, err := c.Write(frame); err != nil {
		t.Fatal(err)
	}
	var size [4]byte
	if _, err := io.ReadFull(c, size[:]); err != nil {
		t.Fatalf("reading response size: %v", err)
	}
	resp := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(c, resp); err != nil {
		t.Fatal(err)
	}
	if corr := int32(binary.BigEndian.Uint32(resp)); corr != 7 {
		t.Fatalf("correlation ID %d, want 7", corr)
	}
	resp = resp[4:]
	if req.IsFlexible() && req.Key() != 18 {
		resp = resp[1:]
	}
	return resp
}

// A partition with nothing to return carries an empty record set, not a
// null one: librdkafka 2.0 (Debian's kcat and confluent-kafka-python,
// Fetch v11) fails to parse null with "invalid MessageSetSize -1", so
// `kcat -C -e` never reached the end of a partition and every librdkafka
// consumer logged protocol errors at the high watermark.
func TestFetchEmptyRecordSetIsNotNull(t *testing.T) {
	b := ktest.NewBroker(t)
	b.CreateTopic("empty", 1, nil)
	cl := b.Client(kgo.DefaultProduceTopic("empty"))
	if err := cl.ProduceSync(ctxT(t, 10*time.Second), &kgo.Record{Value: []byte("one")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		version   int16
		partition int32
		wantErr   int16
	}{
		{"v4 at the high watermark (kafka-python 2.0.2)", 4, 0, 0},
		{"v11 at the high watermark (librdkafka 2.0)", 11, 0, 0},
		{"v11 unknown partition", 11, 5, 3},
		{"v12 flexible at the high watermark", 12, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := kmsg.NewPtrFetchRequest()
			req.SetVersion(tc.version)
			req.ReplicaID = -1
			req.MaxBytes = 1 << 20
			req.SessionEpoch = -1
			rt := kmsg.NewFetchRequestTopic()
			rt.Topic = "empty"
			rp := kmsg.NewFetchRequestTopicPartition()
			rp.Partition = tc.partition
			rp.FetchOffset = 1 // the high watermark: nothing to return
			rp.PartitionMaxBytes = 1 << 20
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			raw := rawRoundTrip(t, b.Addr, req)

			resp := kmsg.NewPtrFetchResponse()
			resp.SetVersion(tc.version)
			if err := resp.ReadFrom(raw); err != nil {
				t.Fatalf("decode: %v", err)
			}
			if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
				t.Fatalf("response %+v", resp)
			}
			if got := resp.Topics[0].Partitions[0].ErrorCode; got != tc.wantErr {
				t.Fatalf("error code %d, want %d", got, tc.wantErr)
			}
			// One topic and one partition with no tagged fields: the
			// record set's length ends the frame (non-flexible, int32)
			// or is followed by three empty tag sections (flexible,
			// compact length+1).
			want := []byte{0, 0, 0, 0}
			if req.IsFlexible() {
				want = []byte{1, 0, 0, 0}
			}
			if tail := raw[len(raw)-4:]; !bytes.Equal(tail, want) {
				t.Fatalf("record set encoded as % x, want % x (empty, not null)", tail, want)
			}
		})
	}
}
