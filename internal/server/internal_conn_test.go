package server

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/wire"
)

// clientRecorder answers ApiVersions and Metadata and records who asked.
type clientRecorder struct {
	mu      sync.Mutex
	clients []*wire.Client
}

func (h *clientRecorder) Versions(key int16) (int16, int16, bool) {
	switch key {
	case 0:
		return 3, 11, true
	case 3:
		return 0, 12, true
	case 18:
		return 0, 4, true
	case 19:
		return 2, 7, true
	}
	return 0, 0, false
}

func (h *clientRecorder) Serve(_ context.Context, req *wire.Request, respond func(kmsg.Response)) {
	h.mu.Lock()
	h.clients = append(h.clients, req.Client)
	h.mu.Unlock()
	resp := req.Body.ResponseKind()
	resp.SetVersion(req.Version)
	respond(resp)
}

func (h *clientRecorder) seen() []*wire.Client {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]*wire.Client(nil), h.clients...)
}

func startInternal(t *testing.T) (*Server, *clientRecorder) {
	t.Helper()
	h := &clientRecorder{}
	s := New(h, Config{}, nil)
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	return s, h
}

// TestServeInternal: an in-memory connection is served as
// InternalPrincipal, on the default listener, without counting as a
// client connection.
func TestServeInternal(t *testing.T) {
	s, h := startInternal(t)
	c, err := s.DialInternal()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	av := kmsg.NewPtrApiVersionsRequest()
	av.Version = 3
	send(t, c, av, 1)
	md := kmsg.NewPtrMetadataRequest()
	md.Version = 12
	send(t, c, md, 2)
	br := bufio.NewReader(c)
	for _, corr := range []uint32{1, 2} {
		f := readFrame(t, br)
		if got := uint32(f[0])<<24 | uint32(f[1])<<16 | uint32(f[2])<<8 | uint32(f[3]); got != corr {
			t.Fatalf("correlation id %d, want %d", got, corr)
		}
	}
	seen := h.seen()
	if len(seen) != 2 {
		t.Fatalf("handler saw %d requests, want 2", len(seen))
	}
	for _, cl := range seen {
		if p := cl.Principal(); p != InternalPrincipal {
			t.Errorf("principal %q, want %q", p, InternalPrincipal)
		}
		if cl.Listener != "" || cl.Host != "internal" || cl.Remote != "internal" {
			t.Errorf("listener %q host %q remote %q, want the default listener and host internal", cl.Listener, cl.Host, cl.Remote)
		}
	}
	if n := s.Connections(); n != 0 {
		t.Errorf("Connections() = %d: internal connections are not client connections", n)
	}
}

// TestServeInternalReadOnly: a request to an API that can change
// anything closes the connection before the handler sees it.
func TestServeInternalReadOnly(t *testing.T) {
	produce := kmsg.NewPtrProduceRequest()
	produce.Version = 9
	produce.Acks = -1
	create := kmsg.NewPtrCreateTopicsRequest()
	create.Version = 7
	for name, req := range map[string]kmsg.Request{"Produce": produce, "CreateTopics": create} {
		t.Run(name, func(t *testing.T) {
			s, h := startInternal(t)
			c, err := s.DialInternal()
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			f := kmsg.NewRequestFormatter(kmsg.FormatterClientID("test"))
			go c.Write(f.AppendRequest(nil, req, 1)) // may fail: the server closes
			var b [1]byte
			if n, err := c.Read(b[:]); !errors.Is(err, io.EOF) {
				t.Fatalf("read %d bytes, err %v; want the connection closed", n, err)
			}
			if n := len(h.seen()); n != 0 {
				t.Fatalf("the handler saw %d requests", n)
			}
		})
	}
	for _, k := range []kmsg.Key{kmsg.Produce, kmsg.Fetch, kmsg.OffsetCommit, kmsg.JoinGroup, kmsg.CreateTopics, kmsg.DeleteTopics,
		kmsg.CreateACLs, kmsg.DeleteACLs, kmsg.AlterConfigs, kmsg.IncrementalAlterConfigs, kmsg.AlterUserSCRAMCredentials,
		kmsg.AlterClientQuotas, kmsg.DeleteRecords, kmsg.InitProducerID, kmsg.SASLHandshake, kmsg.DeleteGroups, kmsg.OffsetDelete} {
		if readOnlyAPI(k.Int16()) {
			t.Errorf("%s is allowed on internal connections", kmsg.NameForKey(k.Int16()))
		}
	}
	for _, k := range []int16{-1, kmsg.MaxKey + 1, 32767} {
		if readOnlyAPI(k) {
			t.Errorf("key %d is allowed", k)
		}
	}
}

// TestServeInternalShutdown: Shutdown closes internal connections, and
// none are served after it.
func TestServeInternalShutdown(t *testing.T) {
	s, _ := startInternal(t)
	c, err := s.DialInternal()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var b [1]byte
	if _, err := c.Read(b[:]); !errors.Is(err, io.EOF) {
		t.Fatalf("read after Shutdown: %v, want EOF", err)
	}
	if _, err := s.DialInternal(); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("DialInternal after Shutdown: %v, want ErrServerClosed", err)
	}
	a, b2 := net.Pipe()
	defer a.Close()
	defer b2.Close()
	if err := s.ServeInternal(b2); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("ServeInternal after Shutdown: %v, want ErrServerClosed", err)
	}
}
