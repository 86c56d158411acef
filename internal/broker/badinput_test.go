package broker_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/batch"
	"github.com/gregor-streaming/gregor/internal/ktest"
)

// rawConn is a client connection that sends hand-made bytes.
type rawConn struct {
	t  *testing.T
	nc net.Conn
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &rawConn{t: t, nc: nc}
}

func (c *rawConn) write(b []byte) {
	c.t.Helper()
	c.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.nc.Write(b); err != nil && !errors.Is(err, net.ErrClosed) && !isReset(err) {
		c.t.Fatalf("write: %v", err)
	}
}

// frame returns a frame around b: a 4-byte size, then b.
func frame(b []byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(b))), b...)
}

// request encodes r at its set version with a v1/v2 header.
func request(r kmsg.Request, corr int32) []byte {
	return kmsg.NewRequestFormatter(kmsg.FormatterClientID("raw")).AppendRequest(nil, r, corr)
}

// readFrame reads one response frame and returns its body after the
// correlation ID (non-flexible header).
func (c *rawConn) readFrame(corr int32) ([]byte, error) {
	c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	var size [4]byte
	if _, err := io.ReadFull(c.nc, size[:]); err != nil {
		return nil, err
	}
	b := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(c.nc, b); err != nil {
		return nil, err
	}
	if got := int32(binary.BigEndian.Uint32(b)); got != corr {
		return nil, fmt.Errorf("correlation ID %d, want %d", got, corr)
	}
	return b[4:], nil
}

// expectClosed checks the broker closed the connection without
// answering.
func (c *rawConn) expectClosed(what string) {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	var b [1]byte
	n, err := c.nc.Read(b[:])
	if n > 0 {
		c.t.Fatalf("%s: the broker answered instead of closing the connection", what)
	}
	if !errors.Is(err, io.EOF) && !isReset(err) {
		c.t.Fatalf("%s: want the connection closed, got %v", what, err)
	}
}

func isReset(err error) bool {
	var ne *net.OpError
	return errors.As(err, &ne) && !ne.Timeout()
}

// produceV7 sends a Produce v7 (non-flexible) of one partition's records
// and returns the partition's error.
func (c *rawConn) produceV7(topic string, records []byte, corr int32) (*kerr.Error, error) {
	req := kmsg.NewPtrProduceRequest()
	req.Version = 7
	req.Acks = -1
	req.TimeoutMillis = 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = records
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	c.write(request(req, corr))
	body, err := c.readFrame(corr)
	if err != nil {
		return nil, err
	}
	resp := kmsg.NewPtrProduceResponse()
	resp.Version = 7
	if err := resp.ReadFrom(body); err != nil {
		return nil, err
	}
	code := resp.Topics[0].Partitions[0].ErrorCode
	if code == 0 {
		return nil, nil
	}
	return kerr.ErrorForCode(code).(*kerr.Error), nil
}

func goodBatch(t *testing.T, n int) []byte {
	t.Helper()
	bb := batch.NewBuilder(batch.CodecNone)
	for i := range n {
		bb.Add(batch.Record{Key: []byte("k"), Value: fmt.Appendf(nil, "bad-input-%d", i), Timestamp: time.Now().UnixMilli()})
	}
	b, err := bb.Build()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestMalformedFrames sends what broken or hostile clients send, each on
// its own connection: every one gets its Kafka error code or a closed
// connection, the broker keeps serving, and the records stored before
// are unchanged, before and after a restart.
func TestMalformedFrames(t *testing.T) {
	b := ktest.NewBroker(t)
	b.CreateTopic("intact", 1, nil)
	cl := b.Client(kgo.DefaultProduceTopic("intact"))
	var stored []*kgo.Record
	for i := range 50 {
		stored = append(stored, &kgo.Record{Value: fmt.Appendf(nil, "stored-%d", i)})
	}
	if err := cl.ProduceSync(ctxT(t, 10*time.Second), stored...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	md := kmsg.NewPtrMetadataRequest()
	md.Version = 12
	mdFrame := request(md, 1)
	mdBody := mdFrame[4:]

	closes := []struct {
		name string
		send []byte
		// halfClose ends the client's side after sending.
		halfClose bool
	}{
		{"negative size", []byte{0xff, 0xff, 0xff, 0xff}, false},
		{"huge size", []byte{0x7f, 0xff, 0xff, 0xff}, false},
		{"size above socket.request.max.bytes", binary.BigEndian.AppendUint32(nil, 100<<20+1), false},
		{"size below a header", frame([]byte{0, 3, 0}), false},
		{"zero size", []byte{0, 0, 0, 0}, false},
		{"truncated header", append(binary.BigEndian.AppendUint32(nil, 20), mdBody[:6]...), true},
		{"truncated frame", append(binary.BigEndian.AppendUint32(nil, uint32(len(mdBody)+10)), mdBody...), true},
		{"client ID longer than the frame", frame([]byte{0, 3, 0, 12, 0, 0, 0, 1, 0x7f, 0xff}), false},
		{"negative client ID length", frame([]byte{0, 3, 0, 12, 0, 0, 0, 1, 0x80, 0x00}), false},
		{"unknown API key", frame([]byte{0x03, 0xe7, 0, 0, 0, 0, 0, 1, 0xff, 0xff}), false},
		{"unsupported version", frame([]byte{0, 3, 0, 99, 0, 0, 0, 1, 0xff, 0xff}), false},
		{"Produce v2 body garbage", frame(append([]byte{0, 0, 0, 2, 0, 0, 0, 1, 0xff, 0xff}, 0xde, 0xad, 0xbe, 0xef)), false},
		{"Metadata body garbage", frame(append(append([]byte{}, mdBody[:13]...), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)), false},
		{"records length beyond the frame", func() []byte {
			req := kmsg.NewPtrProduceRequest()
			req.Version, req.Acks, req.TimeoutMillis = 7, -1, 1000
			req.Topics = []kmsg.ProduceRequestTopic{{Topic: "intact", Partitions: []kmsg.ProduceRequestTopicPartition{{Records: goodBatch(t, 3)}}}}
			f := request(req, 1)
			return f[:len(f)-20] // the frame's size still says the whole
		}(), true},
	}
	for _, tc := range closes {
		t.Run("closed/"+tc.name, func(t *testing.T) {
			c := dialRaw(t, b.Addr)
			c.write(tc.send)
			if tc.halfClose {
				c.nc.(*net.TCPConn).CloseWrite()
			}
			c.expectClosed(tc.name)
		})
	}

	t.Run("garbage after a valid request", func(t *testing.T) {
		// kmsg reads what the version defines and ignores the rest,
		// as Kafka does for trailing bytes: answered, or closed.
		c := dialRaw(t, b.Addr)
		c.write(frame(append(append([]byte{}, mdBody...), 0xde, 0xad, 0xbe, 0xef)))
		if body, err := c.readFrame(1); err == nil {
			resp := kmsg.NewPtrMetadataResponse()
			resp.Version = 12
			if err := resp.ReadFrom(body[1:]); err != nil { // v12: one tag byte
				t.Fatalf("answer does not decode: %v", err)
			}
		} else if !errors.Is(err, io.EOF) && !isReset(err) {
			t.Fatal(err)
		}
	})

	t.Run("ApiVersions above the range", func(t *testing.T) {
		c := dialRaw(t, b.Addr)
		c.write(frame([]byte{0, 18, 0, 99, 0, 0, 0, 5, 0xff, 0xff, 1, 2, 3}))
		body, err := c.readFrame(5)
		if err != nil {
			t.Fatal(err)
		}
		if code := int16(binary.BigEndian.Uint16(body)); code != kerr.UnsupportedVersion.Code {
			t.Fatalf("error code %d, want UNSUPPORTED_VERSION", code)
		}
	})

	bad := func(mutate func([]byte) []byte) []byte { return mutate(goodBatch(t, 5)) }
	produceErrors := []struct {
		name    string
		records []byte
		want    []*kerr.Error
	}{
		{"bad CRC", bad(func(b []byte) []byte { b[len(b)-2] ^= 1; return b }), []*kerr.Error{kerr.CorruptMessage}},
		{"CRC field", bad(func(b []byte) []byte { b[18] ^= 0x40; return b }), []*kerr.Error{kerr.CorruptMessage}},
		{"record count above lastOffsetDelta+1", bad(func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[57:], 6)
			batch.UpdateCRC(b)
			return b
		}), []*kerr.Error{kerr.CorruptMessage, kerr.InvalidRecord}},
		{"record count below lastOffsetDelta+1", bad(func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[57:], 4)
			batch.UpdateCRC(b)
			return b
		}), []*kerr.Error{kerr.CorruptMessage, kerr.InvalidRecord}},
		{"lastOffsetDelta beyond the records", bad(func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[23:], 1000)
			batch.UpdateCRC(b)
			return b
		}), []*kerr.Error{kerr.CorruptMessage, kerr.InvalidRecord}},
		{"negative lastOffsetDelta", bad(func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[23:], 0xffffffff)
			batch.UpdateCRC(b)
			return b
		}), []*kerr.Error{kerr.CorruptMessage, kerr.InvalidRecord}},
		{"batch length beyond the records", bad(func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[8:], uint32(len(b)+100))
			return b
		}), []*kerr.Error{kerr.InvalidRecord}}, // no whole batch, as Kafka
		{"batch length below a header", bad(func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[8:], 10)
			return b
		}), []*kerr.Error{kerr.CorruptMessage}},
		{"magic 1", bad(func(b []byte) []byte { b[16] = 1; return b }), []*kerr.Error{kerr.CorruptMessage, kerr.UnsupportedForMessageFormat, kerr.InvalidRecord}},
		{"truncated batch", bad(func(b []byte) []byte { return b[:len(b)-7] }), []*kerr.Error{kerr.InvalidRecord}},
		{"header only", bad(func(b []byte) []byte { return b[:batch.HeaderSize] }), []*kerr.Error{kerr.InvalidRecord}},
		{"two batches", append(goodBatch(t, 2), goodBatch(t, 2)...), []*kerr.Error{kerr.InvalidRecord}},
		{"good batch then garbage", append(goodBatch(t, 2), 1, 2, 3, 4, 5), []*kerr.Error{kerr.InvalidRecord, kerr.CorruptMessage}},
		{"empty records", []byte{}, []*kerr.Error{kerr.CorruptMessage, kerr.InvalidRecord}},
		{"records garbage", []byte("this is not a record batch, not even close to one........"), []*kerr.Error{kerr.CorruptMessage}},
	}
	for i, tc := range produceErrors {
		t.Run("produce/"+tc.name, func(t *testing.T) {
			c := dialRaw(t, b.Addr)
			corr := int32(100 + i)
			got, err := c.produceV7("intact", tc.records, corr)
			if err != nil {
				t.Fatalf("no produce answer: %v", err)
			}
			ok := false
			for _, w := range tc.want {
				ok = ok || got == w
			}
			if !ok {
				t.Fatalf("produce error %v, want one of %v", got, tc.want)
			}
			// The connection stays usable.
			if got, err := c.produceV7("no-such-topic-and-no-autocreate-on-produce", goodBatch(t, 1), corr+1000); err != nil || got != kerr.UnknownTopicOrPartition {
				t.Fatalf("next request on the connection: %v, %v", got, err)
			}
		})
	}

	check := func(when string) {
		t.Helper()
		got := consumeN(t, b, "intact", len(stored))
		for i, r := range got {
			if r.Offset != int64(i) || string(r.Value) != string(stored[i].Value) {
				t.Fatalf("%s: record %d is %q at offset %d, want %q", when, i, r.Value, r.Offset, stored[i].Value)
			}
		}
		ends, err := b.Admin().ListEndOffsets(ctxT(t, 5*time.Second), "intact")
		if err != nil {
			t.Fatal(err)
		}
		if o, _ := ends.Lookup("intact", 0); o.Offset != int64(len(stored)) {
			t.Fatalf("%s: log end offset %d, want %d: a bad produce was stored", when, o.Offset, len(stored))
		}
	}
	check("after the bad input")
	b.Restart()
	check("after a restart")
}
