package server

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/wire"
)

// Conn is one client connection.
type Conn struct {
	// server is the server on which the connection arrived. Immutable.
	server *Server
	// nc is the network connection. Immutable.
	nc net.Conn
	// client describes the connection to handlers. Immutable.
	client *wire.Client
	// Remote is the client's address. Immutable.
	Remote string

	// queue carries slots from the reader to the writer in request
	// order; its capacity is queued.max.requests. Closed by the reader.
	queue chan *slot
	// stopping is set by stopReading; the reader exits at its next read.
	stopping atomic.Bool
	// dead is closed when the connection must stop at once (write error
	// or hard shutdown): the writer stops waiting for responses.
	dead     chan struct{}
	deadOnce sync.Once
	// inflight counts requests read but not yet answered.
	inflight atomic.Int32
}

func newConn(s *Server, nc net.Conn) *Conn {
	c := &Conn{
		server: s,
		nc:     nc,
		Remote: nc.RemoteAddr().String(),
		client: &wire.Client{Remote: nc.RemoteAddr().String()},
		queue:  make(chan *slot, s.cfg.QueuedMaxRequests),
		dead:   make(chan struct{}),
	}
	c.client.Close = c.kill
	return c
}

// slot is one request's place in the response order.
type slot struct {
	correlationID int32
	// resp is set by complete before done is closed.
	resp kmsg.Response
	done chan struct{}
	// buf is the request frame, returned to the pool once answered.
	buf  *[]byte
	once sync.Once
	conn *Conn
}

func (sl *slot) complete(resp kmsg.Response) {
	sl.once.Do(func() {
		sl.resp = resp
		sl.conn.inflight.Add(-1)
		close(sl.done)
	})
}

func (c *Conn) kill() {
	c.deadOnce.Do(func() {
		close(c.dead)
		c.nc.Close()
	})
}

// stopReading makes the reader stop after the request it is reading;
// in-flight requests are still answered.
func (c *Conn) stopReading() {
	c.stopping.Store(true)
	c.nc.SetReadDeadline(time.Now())
}

func (c *Conn) readLoop() {
	defer close(c.queue)
	s := c.server
	var sizeBuf [4]byte
	for !c.stopping.Load() {
		size, err := c.readSize(&sizeBuf)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !c.stopping.Load() {
				s.log.Debug("closing connection", "remote", c.Remote, "err", err)
			}
			return
		}
		buf := getBuf(int(size))
		if _, err := io.ReadFull(c.nc, *buf); err != nil {
			putBuf(buf)
			return
		}
		req, err := c.decode(*buf)
		if err != nil {
			putBuf(buf)
			s.log.Info("closing connection after bad request", "remote", c.Remote, "err", err)
			return
		}
		sl := &slot{correlationID: req.CorrelationID, done: make(chan struct{}), buf: buf, conn: c}
		c.inflight.Add(1)
		select {
		case c.queue <- sl:
		case <-c.dead:
			sl.complete(nil)
			return
		}
		s.handler.Serve(s.ctx, req, sl.complete)
	}
}

// readSize reads the next frame's size. The idle timeout applies only
// while nothing is in flight: a client waiting on a long poll is not idle.
func (c *Conn) readSize(sizeBuf *[4]byte) (int32, error) {
	s := c.server
	n := 0
	for n < 4 {
		if s.cfg.IdleTimeout > 0 {
			c.nc.SetReadDeadline(time.Now().Add(s.cfg.IdleTimeout))
		}
		if c.stopping.Load() {
			// stopReading may have raced with the deadline above.
			return 0, net.ErrClosed
		}
		m, err := c.nc.Read(sizeBuf[n:])
		n += m
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && !c.stopping.Load() && c.inflight.Load() > 0 {
				continue
			}
			return 0, err
		}
	}
	return wire.CheckFrameSize(sizeBuf, s.cfg.MaxRequestSize)
}

// errUnsupported closes the connection for a request we cannot serve, as
// Kafka does.
var errUnsupported = errors.New("unsupported API key or version")

func (c *Conn) decode(frame []byte) (*wire.Request, error) {
	h, err := wire.PeekHeader(frame)
	if err != nil {
		return nil, err
	}
	req := &wire.Request{Client: c.client, Key: h.Key, Version: h.Version, CorrelationID: h.CorrelationID, Received: time.Now()}
	min, max, ok := c.server.handler.Versions(h.Key)
	if !ok {
		return nil, errUnsupported
	}
	body := kmsg.RequestForKey(h.Key)
	if body == nil {
		return nil, errUnsupported
	}
	if h.Version < min || h.Version > max {
		if h.Key != wire.ApiVersionsKey {
			return nil, errUnsupported
		}
		// KIP-511: answer in v0 with UNSUPPORTED_VERSION and our
		// ranges, whatever the body holds.
		body.SetVersion(0)
		req.Version = 0
		req.Body = body
		req.UnsupportedVersion = true
		return req, nil
	}
	body.SetVersion(h.Version)
	h, rest, err := wire.ParseHeader(frame, body.IsFlexible())
	if err != nil {
		return nil, err
	}
	if h.ClientID != nil {
		req.ClientID = *h.ClientID
	}
	// Only Produce decodes without copying: its record batches are the
	// bulk of its bytes and are copied once, into the log. Strings of
	// other requests outlive the frame (topic names in metadata, group
	// IDs), so they get their own memory.
	if p, ok := body.(*kmsg.ProduceRequest); ok {
		err = p.UnsafeReadFrom(rest)
	} else {
		err = body.ReadFrom(rest)
	}
	if err != nil {
		return nil, err
	}
	req.Body = body
	return req, nil
}

const maxBatchedWrite = 1 << 20

func (c *Conn) writeLoop() {
	defer c.kill()
	var buf []byte
	var next *slot
	broken := false
	for {
		if next == nil {
			var ok bool
			if next, ok = <-c.queue; !ok {
				return
			}
		}
		select {
		case <-next.done:
		case <-c.dead:
			broken = true
			next = nil
			c.drain()
			return
		}
		buf = c.appendResponse(buf[:0], next)
		next = nil
		// Batch every response that is already complete.
	gather:
		for len(buf) < maxBatchedWrite {
			select {
			case sl, ok := <-c.queue:
				if !ok {
					break gather
				}
				select {
				case <-sl.done:
					buf = c.appendResponse(buf, sl)
				default:
					next = sl
					break gather
				}
			default:
				break gather
			}
		}
		if len(buf) > 0 && !broken {
			if _, err := c.nc.Write(buf); err != nil {
				broken = true
				c.kill()
			}
		}
		if cap(buf) > 4*maxBatchedWrite {
			buf = nil // don't pin a huge fetch response's buffer
		}
	}
}

// drain lets the reader finish after a kill. Frames of requests still
// being handled are left to the garbage collector.
func (c *Conn) drain() {
	for range c.queue {
	}
}

// appendResponse encodes sl's response and then releases its request
// frame: the response may alias it (produce topic names).
func (c *Conn) appendResponse(dst []byte, sl *slot) []byte {
	if sl.resp != nil {
		dst = wire.AppendResponse(dst, sl.correlationID, sl.resp)
		if r, ok := sl.resp.(wire.Releaser); ok {
			r.Release()
		}
	}
	putBuf(sl.buf)
	sl.buf = nil
	return dst
}

// bufPools pools request buffers by power-of-two size class up to 1 MiB;
// larger frames are allocated exactly.
var bufPools [21]sync.Pool

func getBuf(size int) *[]byte {
	class := sizeClass(size)
	if class >= len(bufPools) {
		b := make([]byte, size)
		return &b
	}
	if p, _ := bufPools[class].Get().(*[]byte); p != nil {
		*p = (*p)[:size]
		return p
	}
	b := make([]byte, size, 1<<class)
	return &b
}

func putBuf(p *[]byte) {
	if p == nil {
		return
	}
	class := sizeClass(cap(*p))
	if class >= len(bufPools) || cap(*p) != 1<<class {
		return
	}
	bufPools[class].Put(p)
}

// sizeClass is the smallest c with 1<<c >= n.
func sizeClass(n int) int {
	c := 0
	for 1<<c < n {
		c++
	}
	return c
}
