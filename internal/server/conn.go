package server

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/auth"
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
	// lastActive is when bytes were last read or a response answered
	// or written (Unix nanoseconds), for the idle timeout.
	lastActive atomic.Int64
	// sasl is the connection's authentication on a SASL listener; nil
	// on others. Used by the reader only.
	sasl *saslState
	// mapper is the listener's ssl.principal.mapping.rules. Immutable.
	mapper *auth.PrincipalMapper
}

func newConn(s *Server, nc net.Conn, listener string, sec Security) *Conn {
	c := &Conn{
		server: s,
		nc:     nc,
		Remote: nc.RemoteAddr().String(),
		client: &wire.Client{Remote: nc.RemoteAddr().String(), Host: remoteIP(nc), Listener: listener},
		queue:  make(chan *slot, s.cfg.QueuedMaxRequests),
		dead:   make(chan struct{}),
		mapper: sec.PrincipalMapper,
	}
	// A handler's Close stops the reader; the responses to the requests
	// already read are written, then the connection closes. Kafka closes
	// a connection through its response queue
	// (RequestChannel.closeConnection), behind the responses before it;
	// killing at once lost those, such as a Metadata response pipelined
	// before an acks=0 produce that failed.
	c.client.Close = c.stopReading
	if sec.SASL != nil {
		c.sasl = &saslState{cfg: sec.SASL}
	}
	c.active()
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
	// raw, when not nil, is a bare SASL token to send instead of a
	// response, after a v0 SaslHandshake.
	raw []byte
}

func (sl *slot) complete(resp kmsg.Response) {
	sl.once.Do(func() {
		sl.resp = resp
		// Before inflight drops: idleDeadline reads them the other
		// way round.
		sl.conn.active()
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
	identified := false
	for !c.stopping.Load() {
		if !c.waitMuted() {
			return
		}
		size, err := c.readSize(&sizeBuf)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !c.stopping.Load() {
				s.log.Debug("closing connection", "remote", c.Remote, "err", err)
			}
			return
		}
		if idle := s.cfg.IdleTimeout; idle > 0 {
			// A request arriving is not idle: the body gets its
			// own connections.max.idle.ms, not what was left of
			// the wait for its size.
			c.nc.SetReadDeadline(time.Now().Add(idle))
			if c.stopping.Load() {
				return // stopReading raced with the deadline
			}
		}
		authenticating := c.sasl != nil && !c.sasl.done
		if authenticating && size > saslMaxReceive {
			s.log.Info("closing connection: frame too large before SASL authentication", "remote", c.Remote, "size", size)
			return
		}
		buf := getBuf(int(size))
		if _, err := io.ReadFull(c.nc, *buf); err != nil {
			putBuf(buf)
			return
		}
		if authenticating {
			// Kafka mutes a channel while it authenticates: one
			// request at a time. Here a client may pipeline a few
			// (ApiVersions, then the handshake), not a stream.
			if len(c.queue) >= saslMaxPipelined {
				putBuf(buf)
				s.log.Info("closing connection: too many requests pipelined before SASL authentication", "remote", c.Remote)
				return
			}
			if !c.authenticate(buf) {
				return
			}
			continue
		}
		if !identified {
			// Authentication, if any, is over: the TLS handshake
			// ran at the first read, SASL before this request.
			if !c.identify() {
				putBuf(buf)
				return
			}
			identified = true
		}
		req, err := c.decode(*buf)
		if err != nil {
			putBuf(buf)
			s.log.Info("closing connection after bad request", "remote", c.Remote, "err", err)
			return
		}
		sl := &slot{correlationID: req.CorrelationID, done: make(chan struct{}), buf: buf, conn: c}
		if !c.enqueue(sl) {
			return
		}
		s.handler.Serve(s.ctx, req, sl.complete)
	}
}

// waitMuted waits while a quota's throttle mutes the client (Kafka stops
// reading a throttled channel until its throttle time is over); false
// when the connection stops meanwhile.
func (c *Conn) waitMuted() bool {
	until := c.client.MutedUntil()
	for d := time.Until(until); d > 0; d = time.Until(until) {
		select {
		case <-c.dead:
			return false
		case <-time.After(min(d, 50*time.Millisecond)):
		}
		if c.stopping.Load() {
			return false
		}
	}
	return true
}

// enqueue puts sl in the response order; false when the connection died.
func (c *Conn) enqueue(sl *slot) bool {
	c.inflight.Add(1)
	select {
	case c.queue <- sl:
		return true
	case <-c.dead:
		sl.complete(nil)
		return false
	}
}

// readSize reads the next frame's size, closing an idle connection.
func (c *Conn) readSize(sizeBuf *[4]byte) (int32, error) {
	s := c.server
	idle := s.cfg.IdleTimeout
	n := 0
	for n < 4 {
		if idle > 0 {
			c.nc.SetReadDeadline(c.idleDeadline(idle))
		}
		if c.stopping.Load() {
			// stopReading may have raced with the deadline above.
			return 0, net.ErrClosed
		}
		m, err := c.nc.Read(sizeBuf[n:])
		n += m
		if m > 0 {
			c.active()
		}
		if err != nil {
			var ne net.Error
			if idle > 0 && errors.As(err, &ne) && ne.Timeout() && !c.stopping.Load() && time.Now().Before(c.idleDeadline(idle)) {
				continue
			}
			return 0, err
		}
	}
	return wire.CheckFrameSize(sizeBuf, s.cfg.MaxRequestSize)
}

// active records activity on the connection.
func (c *Conn) active() { c.lastActive.Store(time.Now().UnixNano()) }

// idleDeadline is when the connection counts as idle: idle after its
// last activity, as Kafka's Selector measures connections.max.idle.ms
// from a channel's last read or write. The deadline was counted from
// when the reader last waited, so a connection was closed soon after a
// response that took most of the timeout. A connection with a request
// in flight (a long poll, a join waiting for its group) is never idle.
func (c *Conn) idleDeadline(idle time.Duration) time.Time {
	if c.inflight.Load() > 0 {
		return time.Now().Add(idle)
	}
	return time.Unix(0, c.lastActive.Load()).Add(idle)
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
	var w batchWriter
	var next *slot
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
			w.reset()
			c.drain(next)
			return
		}
		w.add(next)
		next = nil
		// Batch every response that is already complete.
	gather:
		for w.size < maxBatchedWrite {
			select {
			case sl, ok := <-c.queue:
				if !ok {
					break gather
				}
				select {
				case <-sl.done:
					w.add(sl)
				default:
					next = sl
					break gather
				}
			default:
				break gather
			}
		}
		if idle := c.server.cfg.IdleTimeout; idle > 0 {
			// A client that stops reading is idle too: a write that
			// makes no progress for connections.max.idle.ms fails,
			// and the connection closes. Without it a client that
			// pipelined requests and never read the answers held
			// its connection (and a max.connections slot) forever.
			c.nc.SetWriteDeadline(time.Now().Add(idle))
		}
		if err := w.flush(c.nc); err != nil {
			c.kill()
		}
		c.active()
	}
}

// drain lets the reader finish after a kill, and releases the responses
// of the requests still in flight (next, then the queued ones) as their
// handlers complete: a fetch response may hold segment files open. Their
// frames are left to the garbage collector.
func (c *Conn) drain(next *slot) {
	release := func(sl *slot) {
		<-sl.done
		if r, ok := sl.resp.(wire.Releaser); ok {
			r.Release()
		}
	}
	wait := func(sl *slot) {
		select {
		case <-sl.done:
			release(sl)
		default:
			go release(sl) // a parked fetch: don't hold up the close
		}
	}
	wait(next)
	for sl := range c.queue {
		wait(sl)
	}
}

// batchWriter gathers encoded responses and writes them with one writev:
// small encoded bytes in buf, fetched record batches as segments between
// them (never copied in user space).
type batchWriter struct {
	buf       []byte
	segs      []wire.Segment
	releasers []wire.Releaser
	bufs      net.Buffers
	size      int
}

func (w *batchWriter) add(sl *slot) {
	if sl.raw != nil {
		w.buf = binary.BigEndian.AppendUint32(w.buf, uint32(len(sl.raw)))
		w.buf = append(w.buf, sl.raw...)
		w.size = len(w.buf)
	}
	if sl.resp != nil {
		before := len(w.segs)
		w.buf, w.segs = wire.AppendResponseSegments(w.buf, sl.correlationID, sl.resp, w.segs)
		w.size = len(w.buf)
		for i := range w.segs[before:] {
			w.size += w.segs[before+i].Len()
		}
		if r, ok := sl.resp.(wire.Releaser); ok {
			w.releasers = append(w.releasers, r)
		}
	}
	// The response may alias the request's strings: only now is the
	// frame free.
	putBuf(sl.buf)
	sl.buf = nil
}

func (w *batchWriter) flush(nc net.Conn) error {
	var err error
	if len(w.buf) > 0 {
		if len(w.segs) == 0 {
			_, err = nc.Write(w.buf)
		} else {
			err = w.writeSegments(nc)
		}
	}
	w.reset()
	return err
}

// writeSegments writes buf with the segments between its bytes: runs of
// memory with one writev, file ranges with sendfile.
func (w *batchWriter) writeSegments(nc net.Conn) error {
	w.bufs = w.bufs[:0]
	prev := 0
	for i := range w.segs {
		s := &w.segs[i]
		if s.File == nil {
			w.bufs = append(w.bufs, w.buf[prev:s.Pos], s.Data)
			prev = s.Pos
			continue
		}
		w.bufs = append(w.bufs, w.buf[prev:s.Pos])
		prev = s.Pos
		bufs := w.bufs // WriteTo consumes its receiver
		if _, err := bufs.WriteTo(nc); err != nil {
			return err
		}
		clear(w.bufs)
		w.bufs = w.bufs[:0]
		if err := sendFile(nc, s.File, s.Off, s.N); err != nil {
			return err
		}
	}
	w.bufs = append(w.bufs, w.buf[prev:])
	bufs := w.bufs
	_, err := bufs.WriteTo(nc)
	return err
}

// reset releases pooled response memory and empties the batch.
func (w *batchWriter) reset() {
	for _, r := range w.releasers {
		r.Release()
	}
	clear(w.releasers)
	w.releasers = w.releasers[:0]
	clear(w.segs)
	w.segs = w.segs[:0]
	clear(w.bufs)
	w.bufs = w.bufs[:0]
	w.size = 0
	if cap(w.buf) > 4*maxBatchedWrite {
		w.buf = nil // don't pin a huge response's buffer
	} else {
		w.buf = w.buf[:0]
	}
}

// bufPools pools request buffers by power-of-two size class up to
// 128 MiB (above socket.request.max.bytes' default); larger frames are
// allocated exactly. Produce requests of about 1 MiB (a client's default
// batch) were allocated and zeroed afresh for every request before: 8%
// of produce CPU at 100 B records, 21% at 1 KiB.
var bufPools [28]sync.Pool

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
