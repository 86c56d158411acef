package server

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/goleak"

	"github.com/gregor-streaming/gregor/internal/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testHandler answers Metadata requests after a delay given by the
// request's first topic name length (ms), to reorder completions, and
// produce with acks=0 with nothing.
type testHandler struct {
	wg sync.WaitGroup
}

func (h *testHandler) Versions(key int16) (int16, int16, bool) {
	switch key {
	case 3:
		return 0, 12, true
	case 0:
		return 3, 11, true
	case 18:
		return 0, 4, true
	}
	return 0, 0, false
}

func (h *testHandler) Serve(_ context.Context, req *wire.Request, respond func(kmsg.Response)) {
	switch r := req.Body.(type) {
	case *kmsg.MetadataRequest:
		delay := time.Duration(0)
		if len(r.Topics) > 0 && r.Topics[0].Topic != nil {
			delay = time.Duration(len(*r.Topics[0].Topic)) * time.Millisecond
		}
		resp := r.ResponseKind().(*kmsg.MetadataResponse)
		resp.Version = r.Version
		resp.ControllerID = req.CorrelationID
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			time.Sleep(delay)
			respond(resp)
		}()
	case *kmsg.ProduceRequest:
		if r.TimeoutMillis == closeMarker {
			req.Client.Close()
		}
		respond(nil)
	case *kmsg.ApiVersionsRequest:
		resp := r.ResponseKind().(*kmsg.ApiVersionsResponse)
		resp.Version = r.Version
		if req.UnsupportedVersion {
			resp.ErrorCode = 35
		}
		respond(resp)
	}
}

// closeMarker as a produce's timeout makes testHandler close the
// connection, as the broker does after a failed acks=0 produce.
const closeMarker = -7

func startServer(t *testing.T, cfg Config) (*Server, *testHandler, string) {
	t.Helper()
	h := &testHandler{}
	s := New(h, cfg, nil)
	l, err := s.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Shutdown(context.Background())
		h.wg.Wait()
	})
	return s, h, l.Addr().String()
}

func send(t *testing.T, c net.Conn, req kmsg.Request, corr int32) {
	t.Helper()
	f := kmsg.NewRequestFormatter(kmsg.FormatterClientID("test"))
	if _, err := c.Write(f.AppendRequest(nil, req, corr)); err != nil {
		t.Fatal(err)
	}
}

// dial connects to addr, closing the connection when the test ends.
func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// slowMetadata is a Metadata request testHandler answers after delay
// (its topic name is one byte per millisecond).
func slowMetadata(delay time.Duration) *kmsg.MetadataRequest {
	req := kmsg.NewPtrMetadataRequest()
	req.Version = 9
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(strings.Repeat("x", int(delay/time.Millisecond)))
	req.Topics = append(req.Topics, rt)
	return req
}

func readFrame(t *testing.T, r io.Reader) []byte {
	t.Helper()
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		t.Fatalf("read size: %v", err)
	}
	b := make([]byte, binary.BigEndian.Uint32(hdr[:]))
	if _, err := io.ReadFull(r, b); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestResponsesInRequestOrder(t *testing.T) {
	_, _, addr := startServer(t, Config{})
	c := dial(t, addr)
	// Earlier requests finish later; acks=0 produces interleave.
	delays := []time.Duration{30 * time.Millisecond, 10 * time.Millisecond, time.Millisecond, 0}
	corr := int32(0)
	var want []int32
	for _, d := range delays {
		send(t, c, slowMetadata(d), corr)
		want = append(want, corr)
		corr++
		p := kmsg.NewPtrProduceRequest()
		p.Version = 9
		p.Acks = 0
		send(t, c, p, corr)
		corr++
	}
	br := bufio.NewReader(c)
	for _, w := range want {
		frame := readFrame(t, br)
		got := int32(binary.BigEndian.Uint32(frame))
		if got != w {
			t.Fatalf("correlation id %d, want %d", got, w)
		}
		// Flexible response: header tag byte, then the body.
		resp := kmsg.NewPtrMetadataResponse()
		resp.Version = 9
		if err := resp.ReadFrom(frame[5:]); err != nil {
			t.Fatal(err)
		}
		if resp.ControllerID != w {
			t.Fatalf("body for %d carried %d", w, resp.ControllerID)
		}
	}
}

func TestApiVersionsFallback(t *testing.T) {
	_, _, addr := startServer(t, Config{})
	c := dial(t, addr)
	// Version 99 with a body we cannot parse.
	frame := []byte{0, 0, 0, 12, 0, 18, 0, 99, 0, 0, 0, 5, 0xff, 0xff, 9, 9}
	if _, err := c.Write(frame); err != nil {
		t.Fatal(err)
	}
	resp := readFrame(t, c)
	if got := int32(binary.BigEndian.Uint32(resp)); got != 5 {
		t.Fatalf("correlation %d", got)
	}
	// v0 framing: no tag byte; error code first.
	if code := int16(binary.BigEndian.Uint16(resp[4:])); code != 35 {
		t.Fatalf("error code %d, want UNSUPPORTED_VERSION", code)
	}
}

func TestBadFramesCloseConnection(t *testing.T) {
	_, _, addr := startServer(t, Config{MaxRequestSize: 1024})
	for name, frame := range map[string][]byte{
		"too large":    {0, 0, 0x10, 0},
		"negative":     {0xff, 0xff, 0xff, 0xf0},
		"tiny":         {0, 0, 0, 2, 0, 0},
		"unknown key":  {0, 0, 0, 10, 0x7f, 0, 0, 0, 0, 0, 0, 1, 0xff, 0xff},
		"bad version":  {0, 0, 0, 10, 0, 3, 0, 99, 0, 0, 0, 1, 0xff, 0xff},
		"garbage body": {0, 0, 0, 14, 0, 3, 0, 9, 0, 0, 0, 1, 0xff, 0xff, 0, 0xff, 0xff, 0xff},
	} {
		t.Run(name, func(t *testing.T) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.Write(frame)
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			var b [1]byte
			if _, err := c.Read(b[:]); err != io.EOF && !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("read: %v, want EOF or reset (closed)", err)
			}
		})
	}
}

func TestIdleTimeout(t *testing.T) {
	_, _, addr := startServer(t, Config{IdleTimeout: 50 * time.Millisecond})
	c := dial(t, addr)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var b [1]byte
	if _, err := c.Read(b[:]); err != io.EOF {
		t.Fatalf("read: %v, want EOF", err)
	}
}

func TestShutdownFinishesInFlight(t *testing.T) {
	s, h, addr := startServer(t, Config{})
	c := dial(t, addr)
	send(t, c, slowMetadata(40*time.Millisecond), 77)
	time.Sleep(10 * time.Millisecond)
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.wg.Wait()
	frame := readFrame(t, c)
	if got := int32(binary.BigEndian.Uint32(frame)); got != 77 {
		t.Fatalf("correlation %d", got)
	}
	var b [1]byte
	if _, err := c.Read(b[:]); err != io.EOF {
		t.Fatalf("after shutdown: %v, want EOF", err)
	}
}

// TestCloseAfterEarlierResponses: a handler closing the connection (a
// failed acks=0 produce) lets the responses to earlier requests out
// first, as Kafka's RequestChannel.closeConnection queues the close
// behind them. The connection was killed at once, losing them.
func TestCloseAfterEarlierResponses(t *testing.T) {
	_, h, addr := startServer(t, Config{})
	c := dial(t, addr)
	send(t, c, slowMetadata(30*time.Millisecond), 1)
	p := kmsg.NewPtrProduceRequest()
	p.Version = 9
	p.Acks = 0
	p.TimeoutMillis = closeMarker
	send(t, c, p, 2)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	frame := readFrame(t, c)
	if got := int32(binary.BigEndian.Uint32(frame)); got != 1 {
		t.Fatalf("correlation %d, want 1", got)
	}
	var b [1]byte
	if _, err := c.Read(b[:]); err != io.EOF && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("after close: %v, want EOF", err)
	}
	h.wg.Wait()
}

// TestIdleCountsFromLastResponse: connections.max.idle.ms runs from the
// connection's last activity, a response written included, as Kafka's
// Selector counts it. The timeout ran from when the reader last waited,
// so a connection whose response took 700ms of a 1s timeout was closed
// 300ms after it.
func TestIdleCountsFromLastResponse(t *testing.T) {
	_, _, addr := startServer(t, Config{IdleTimeout: time.Second})
	c := dial(t, addr)
	send(t, c, slowMetadata(700*time.Millisecond), 1)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	readFrame(t, c)
	time.Sleep(600 * time.Millisecond) // 1.3s after the request, 0.6s after its answer
	send(t, c, kmsg.NewPtrMetadataRequest(), 2)
	if got := int32(binary.BigEndian.Uint32(readFrame(t, c))); got != 2 {
		t.Fatalf("correlation %d, want 2", got)
	}
}

// TestIdleNotWhileRequestArrives: a request whose bytes are arriving is
// not idle. The body's read kept the deadline set before its size
// arrived, so a request begun just before the timeout was cut off.
func TestIdleNotWhileRequestArrives(t *testing.T) {
	_, _, addr := startServer(t, Config{IdleTimeout: time.Second})
	c := dial(t, addr)
	req := kmsg.NewPtrMetadataRequest()
	req.Version = 9
	frame := kmsg.NewRequestFormatter(kmsg.FormatterClientID("test")).AppendRequest(nil, req, 1)
	time.Sleep(700 * time.Millisecond)
	if _, err := c.Write(frame[:6]); err != nil {
		t.Fatal(err)
	}
	time.Sleep(600 * time.Millisecond) // past the first deadline
	if _, err := c.Write(frame[6:]); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if got := int32(binary.BigEndian.Uint32(readFrame(t, c))); got != 1 {
		t.Fatalf("correlation %d, want 1", got)
	}
}
