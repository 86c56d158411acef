package server

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/config"
)

// answered reports whether c answers an ApiVersions request within d.
func answered(t *testing.T, c net.Conn, d time.Duration) bool {
	t.Helper()
	send(t, c, kmsg.NewPtrApiVersionsRequest(), 1)
	c.SetReadDeadline(time.Now().Add(d))
	_, err := c.Read(make([]byte, 4))
	c.SetReadDeadline(time.Time{})
	return err == nil
}

// TestMaxConnectionsPerIP: beyond max.connections.per.ip a connection
// from the same address is closed at once; closing one makes room.
func TestMaxConnectionsPerIP(t *testing.T) {
	s, _, addr := startServer(t, Config{MaxConnectionsPerIP: 2})
	a, b := dial(t, addr), dial(t, addr)
	if !answered(t, a, 5*time.Second) || !answered(t, b, 5*time.Second) {
		t.Fatal("connections within the limit not answered")
	}
	c := dial(t, addr)
	if answered(t, c, 5*time.Second) {
		t.Fatal("third connection from one address answered")
	}
	if n := s.ConnectionsRejected(); n != 1 {
		t.Errorf("ConnectionsRejected = %d", n)
	}
	a.Close()
	deadline := time.Now().Add(5 * time.Second)
	for s.Connections() > 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if d := dial(t, addr); !answered(t, d, 5*time.Second) {
		t.Error("no room after a connection closed")
	}
}

// TestPerIPOverride: an override bounds its address on its own, and a
// limit of 0 (Kafka's "none", -1 here) refuses every connection.
func TestPerIPOverride(t *testing.T) {
	_, _, addr := startServer(t, Config{MaxConnectionsPerIP: -1, PerIPOverrides: map[string]int{"127.0.0.1": 1}})
	if a := dial(t, addr); !answered(t, a, 5*time.Second) {
		t.Fatal("first connection not answered")
	}
	if b := dial(t, addr); answered(t, b, 5*time.Second) {
		t.Error("second connection answered with an override of 1")
	}
	_, _, addr = startServer(t, Config{MaxConnectionsPerIP: -1})
	if c := dial(t, addr); answered(t, c, 5*time.Second) {
		t.Error("connection answered with max.connections.per.ip=0 and no override")
	}
}

// TestMaxConnectionsWaits: at max.connections the server stops
// accepting; a waiting client is served once a connection closes.
func TestMaxConnectionsWaits(t *testing.T) {
	_, _, addr := startServer(t, Config{MaxConnections: 1})
	a := dial(t, addr)
	if !answered(t, a, 5*time.Second) {
		t.Fatal("first connection not answered")
	}
	b := dial(t, addr) // accepted by the kernel, not by the server
	if answered(t, b, 300*time.Millisecond) {
		t.Fatal("second connection answered at max.connections=1")
	}
	a.Close()
	b.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := b.Read(make([]byte, 4)); err != nil {
		t.Fatalf("waiting connection not served after one closed: %v", err)
	}
}

func TestConfigFrom(t *testing.T) {
	cfg, _, err := config.NewBroker(map[string]string{
		"max.connections.per.ip":           "10",
		"max.connections.per.ip.overrides": "127.0.0.1:100, [::1]:0 ,10.0.0.7:3",
	})
	if err != nil {
		t.Fatal(err)
	}
	c, err := ConfigFrom(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if c.MaxConnections != 0 || c.MaxConnectionsPerIP != 10 || c.PerIPOverrides["127.0.0.1"] != 100 || c.PerIPOverrides["::1"] != -1 || c.PerIPOverrides["10.0.0.7"] != 3 {
		t.Errorf("ConfigFrom = %+v", c)
	}
	for _, bad := range []string{"host.example:3", "127.0.0.1", "127.0.0.1:-1", "127.0.0.1:x"} {
		cfg, _, _ := config.NewBroker(map[string]string{"max.connections.per.ip.overrides": bad})
		if _, err := ConfigFrom(cfg); !errors.Is(err, config.ErrInvalid) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

// TestStalledReaderClosed: a client that sends requests and never reads
// the responses is closed once a write has made no progress for
// connections.max.idle.ms. The client end of a net.Pipe never reads, so
// the server's first response write blocks at once.
func TestStalledReaderClosed(t *testing.T) {
	h := &testHandler{}
	s := New(h, Config{IdleTimeout: 300 * time.Millisecond}, nil)
	client, server := net.Pipe()
	l := &pipeListener{conns: make(chan net.Conn, 1), done: make(chan struct{})}
	l.conns <- server
	if err := s.Serve(l); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); s.Shutdown(context.Background()); h.wg.Wait() })
	md := kmsg.NewPtrMetadataRequest()
	md.Version = 9
	go client.Write(kmsg.NewRequestFormatter(kmsg.FormatterClientID("t")).AppendRequest(nil, md, 1))
	deadline := time.Now().Add(10 * time.Second)
	for s.ConnectionsAccepted() == 0 || s.Connections() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections open although the client never read", s.Connections())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// pipeListener hands out the connections sent on conns.
type pipeListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }

// TestMaxConnectionsAcrossListeners: the limit holds over several
// listeners at once (each accept loop takes its slot before accepting).
func TestMaxConnectionsAcrossListeners(t *testing.T) {
	s, _, addr := startServer(t, Config{MaxConnections: 1})
	l2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ServeListener(l2, "OTHER", Security{}); err != nil {
		t.Fatal(err)
	}
	// Whichever accept loop took the slot serves its connection; the
	// other waits.
	a, b := dial(t, addr), dial(t, l2.Addr().String())
	na, nb := answered(t, a, time.Second), answered(t, b, time.Second)
	if na == nb {
		t.Errorf("answered: first listener %v, second %v; want exactly one at max.connections=1", na, nb)
	}
	if n := s.Connections(); n != 1 {
		t.Errorf("%d connections open at max.connections=1", n)
	}
}
