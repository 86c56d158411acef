// Package server accepts Kafka client connections and runs each one as a
// reader goroutine and a writer goroutine.
//
// The reader reads frames (the size checked against
// socket.request.max.bytes before anything is allocated), parses the
// request header, decodes the body with kmsg and hands the request to the
// Handler, in order. The Handler answers through a callback, at once or
// later (long-poll fetches, produces waiting for fsync); the writer sends
// responses strictly in request order, batching those that are ready into
// one write. At most queued.max.requests requests are in flight per
// connection: beyond that the reader stops reading, which pushes back on
// the client through TCP.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/wire"
)

// Handler serves decoded requests. The server declares it; the broker
// implements it.
type Handler interface {
	// Versions returns the supported version range of an API key; ok is
	// false for keys the broker does not serve.
	Versions(key int16) (min, max int16, ok bool)
	// Serve handles one request. It runs on the connection's reader
	// goroutine in request order, and must call respond exactly once,
	// then or later from any goroutine. respond(nil) sends no response
	// (acks=0 produce). The request, and any bytes aliasing it, stay
	// valid until the response has been written, so a response may
	// refer to the request's strings.
	Serve(ctx context.Context, req *wire.Request, respond func(kmsg.Response))
}

// Config tunes the server.
type Config struct {
	// MaxRequestSize is socket.request.max.bytes.
	MaxRequestSize int32
	// QueuedMaxRequests bounds in-flight requests per connection.
	QueuedMaxRequests int
	// IdleTimeout closes connections without a request in flight
	// that have neither sent a byte nor been answered for this long
	// (connections.max.idle.ms); 0 or less disables.
	IdleTimeout time.Duration
	// Security is the listeners' TLS and SASL; zero for PLAINTEXT.
	Security Security
	// MaxConnections bounds the connections open at once
	// (max.connections): at the limit the server stops accepting
	// until one closes. 0: no limit; negative: none at all.
	MaxConnections int
	// MaxConnectionsPerIP bounds the connections from one IP address
	// (max.connections.per.ip); a connection beyond it is closed at
	// once. PerIPOverrides sets the bound of single addresses. 0: no
	// limit; negative: none from that address.
	MaxConnectionsPerIP int
	PerIPOverrides      map[string]int
}

// Server accepts connections and serves them.
type Server struct {
	handler Handler
	cfg     Config
	log     *slog.Logger

	// ctx is cancelled by Shutdown; handlers see it on every request.
	ctx    context.Context
	cancel context.CancelFunc

	// mu guards listeners, conns and closed.
	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*Conn]struct{}
	closed    bool

	// wg tracks accept loops and connection goroutines.
	wg sync.WaitGroup

	// perIP counts open connections by remote IP address (guarded by
	// mu); slots holds a token per connection when MaxConnections is
	// set (nil without a limit).
	perIP map[string]int
	slots chan struct{}

	// Stats for metrics.
	connsRejected atomic.Int64
	connsOpen     atomic.Int64
	connsAccepted atomic.Int64
	authOK        atomic.Int64
	authFailed    atomic.Int64
}

// New returns a server that dispatches to h.
func New(h Handler, cfg Config, log *slog.Logger) *Server {
	if cfg.MaxRequestSize <= 0 {
		cfg.MaxRequestSize = 100 << 20
	}
	if cfg.QueuedMaxRequests <= 0 {
		cfg.QueuedMaxRequests = 500
	}
	if log == nil {
		log = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	var slots chan struct{}
	if cfg.MaxConnections != 0 {
		// Negative: no slot at all (Kafka's max.connections=0).
		slots = make(chan struct{}, max(cfg.MaxConnections, 0))
	}
	return &Server{
		handler:   h,
		cfg:       cfg,
		log:       log,
		ctx:       ctx,
		cancel:    cancel,
		listeners: map[net.Listener]struct{}{},
		conns:     map[*Conn]struct{}{},
		perIP:     map[string]int{},
		slots:     slots,
	}
}

// Listen listens on a TCP address and serves it in the background.
func (s *Server) Listen(addr string) (net.Listener, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	if err := s.Serve(l); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("server: closed")

// Serve accepts connections on l in the background until Shutdown,
// with the Config's Security.
func (s *Server) Serve(l net.Listener) error { return s.ServeListener(l, "", s.cfg.Security) }

// ServeListener is Serve for a named listener with its own security
// (listeners=INTERNAL://…,EXTERNAL://…); handlers see the name in
// wire.Client.Listener.
func (s *Server) ServeListener(l net.Listener, name string, sec Security) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrServerClosed
	}
	s.listeners[l] = struct{}{}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.acceptLoop(l, name, sec)
	}()
	return nil
}

// acquireSlot takes one of MaxConnections' slots, waiting while none is
// free (the listener stops accepting, as Kafka's acceptor does); false
// when the server shuts down meanwhile. A slot is held from before
// Accept until the connection closes, so the limit holds exactly
// whatever the number of listeners.
func (s *Server) acquireSlot() bool {
	if s.slots == nil {
		return true
	}
	select {
	case s.slots <- struct{}{}:
		return true
	case <-s.ctx.Done():
		return false
	}
}

func (s *Server) releaseSlot() {
	if s.slots != nil {
		<-s.slots
	}
}

// ipLimit is the connection bound of a remote IP address: 0 for none,
// negative for no connection at all.
func (s *Server) ipLimit(ip string) int {
	if n, ok := s.cfg.PerIPOverrides[ip]; ok {
		return n
	}
	return s.cfg.MaxConnectionsPerIP
}

func (s *Server) acceptLoop(l net.Listener, name string, sec Security) {
	var backoff time.Duration
	for {
		if !s.acquireSlot() {
			return
		}
		nc, err := l.Accept()
		if err != nil {
			s.releaseSlot()
			if errors.Is(err, net.ErrClosed) || s.ctx.Err() != nil {
				return
			}
			// Like net/http: back off on errors such as EMFILE
			// instead of spinning.
			if backoff == 0 {
				backoff = 5 * time.Millisecond
			} else if backoff *= 2; backoff > time.Second {
				backoff = time.Second
			}
			s.log.Warn("accept failed; retrying", "err", err, "backoff", backoff)
			select {
			case <-time.After(backoff):
			case <-s.ctx.Done():
				return
			}
			continue
		}
		backoff = 0
		if tc, ok := nc.(*net.TCPConn); ok {
			tc.SetNoDelay(true)
		}
		if sec.TLS != nil {
			// The handshake runs at the reader's first read, under
			// the idle timeout's deadline.
			nc = tls.Server(nc, sec.TLS)
		}
		ip := remoteIP(nc)
		c := newConn(s, nc, name, sec)
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			s.releaseSlot()
			nc.Close()
			return
		}
		if limit := s.ipLimit(ip); limit < 0 || (limit > 0 && s.perIP[ip] >= limit) {
			s.mu.Unlock()
			s.releaseSlot()
			s.connsRejected.Add(1)
			s.log.Info("closing connection: max.connections.per.ip reached", "remote", c.Remote, "limit", limit)
			nc.Close()
			continue
		}
		s.perIP[ip]++
		s.conns[c] = struct{}{}
		s.connsOpen.Add(1)
		s.connsAccepted.Add(1)
		s.wg.Add(2)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			c.readLoop()
		}()
		go func() {
			defer s.wg.Done()
			c.writeLoop()
			s.mu.Lock()
			delete(s.conns, c)
			if s.perIP[ip]--; s.perIP[ip] <= 0 {
				delete(s.perIP, ip)
			}
			s.mu.Unlock()
			s.connsOpen.Add(-1)
			s.releaseSlot()
		}()
	}
}

// Connections returns the number of open connections.
func (s *Server) Connections() int64 { return s.connsOpen.Load() }

// Shutdown stops accepting connections, stops reading new requests,
// lets in-flight requests finish and their responses be written, then
// closes every connection. When ctx ends first, connections are closed
// at once. Shutdown waits for all of the server's goroutines.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	for l := range s.listeners {
		l.Close()
	}
	for c := range s.conns {
		c.stopReading()
	}
	s.mu.Unlock()

	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		s.cancel()
		return nil
	case <-ctx.Done():
	}
	s.cancel()
	s.mu.Lock()
	for c := range s.conns {
		c.kill()
	}
	s.mu.Unlock()
	<-done
	return ctx.Err()
}

// remoteIP is the IP address of nc's peer, as max.connections.per.ip
// counts it.
func remoteIP(nc net.Conn) string {
	addr := nc.RemoteAddr().String()
	if host, _, err := net.SplitHostPort(addr); err == nil {
		return host
	}
	return addr
}
