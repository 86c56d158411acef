package raftnode

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// The TCP transport's wire format is drawn in the package doc.
const (
	helloMagic   = "GRFT"
	protoVersion = 1
	helloSize    = 32
	ackSize      = 8
	// maxFrame bounds a message, snapshots included: a longer frame is
	// refused before anything is allocated for it.
	maxFrame = 64 << 20

	// queueSize bounds the messages waiting for a peer's connection;
	// past it they are dropped.
	queueSize = 1024
	// maxBatch bounds the messages written per flush.
	maxBatch = 64

	handshakeTimeout = 5 * time.Second
	writeTimeout     = 10 * time.Second
	minBackoff       = 50 * time.Millisecond
	maxBackoff       = 2 * time.Second
	// warnEvery rate-limits the warnings about one peer, or about
	// refused connections.
	warnEvery = 30 * time.Second
)

// Handshake statuses, in the listener's answer.
const (
	statusOK byte = iota
	statusVersion
	statusCluster
	statusSender
	statusRecipient
)

var statusText = [...]string{
	statusOK:        "ok",
	statusVersion:   "unsupported protocol version",
	statusCluster:   "another cluster (its voters differ)",
	statusSender:    "sender is not a voter",
	statusRecipient: "wrong node at this address",
}

var (
	errBadMagic      = errors.New("raftnode: not a raft connection (bad magic)")
	errFrameTooLarge = errors.New("raftnode: frame too large")
)

// hello opens a connection, from the dialer.
type hello struct {
	version        byte
	from, to, clus uint64
}

func (h hello) marshal() []byte {
	b := make([]byte, helloSize)
	copy(b, helloMagic)
	b[4] = h.version
	binary.BigEndian.PutUint64(b[8:], h.from)
	binary.BigEndian.PutUint64(b[16:], h.to)
	binary.BigEndian.PutUint64(b[24:], h.clus)
	return b
}

// readHello reads and parses the dialer's hello.
func readHello(r io.Reader) (hello, error) {
	var b [helloSize]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return hello{}, err
	}
	if string(b[:4]) != helloMagic {
		return hello{}, errBadMagic
	}
	return hello{
		version: b[4],
		from:    binary.BigEndian.Uint64(b[8:]),
		to:      binary.BigEndian.Uint64(b[16:]),
		clus:    binary.BigEndian.Uint64(b[24:]),
	}, nil
}

func marshalAck(status byte) []byte {
	b := make([]byte, ackSize)
	copy(b, helloMagic)
	b[4], b[5] = protoVersion, status
	return b
}

// readAck reads the listener's answer and returns its status.
func readAck(r io.Reader) (byte, error) {
	var b [ackSize]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return 0, err
	}
	if string(b[:4]) != helloMagic {
		return 0, errBadMagic
	}
	return b[5], nil
}

// clusterHash identifies a cluster by its voters, so that nodes of two
// clusters never talk.
func clusterHash(voters map[uint64]string) uint64 {
	h := fnv.New64a()
	h.Write([]byte("raftnode voters"))
	for _, id := range sortedIDs(voters) {
		h.Write(binary.BigEndian.AppendUint64(nil, id))
	}
	return h.Sum64()
}

// readFrame reads one length-prefixed frame of at most max bytes. A large
// frame's buffer grows as its bytes arrive, so a lying length costs
// nothing until the bytes come.
func readFrame(r io.Reader, max int) ([]byte, error) {
	var h [4]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(h[:])
	if uint64(n) > uint64(max) {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", errFrameTooLarge, n, max)
	}
	if n <= 64<<10 {
		b := make([]byte, n)
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, noEOF(err)
		}
		return b, nil
	}
	var buf bytes.Buffer
	if _, err := io.CopyN(&buf, r, int64(n)); err != nil {
		return nil, noEOF(err)
	}
	return buf.Bytes(), nil
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// decodeMessage reads one frame and unmarshals its message.
func decodeMessage(r io.Reader) (raftpb.Message, error) {
	var m raftpb.Message
	b, err := readFrame(r, maxFrame)
	if err != nil {
		return m, err
	}
	if err := m.Unmarshal(b); err != nil {
		return m, fmt.Errorf("raftnode: bad message: %w", err)
	}
	return m, nil
}

// tcpTransport is the default Transport: one outbound connection per peer,
// fed by a bounded queue, and one goroutine per inbound connection.
type tcpTransport struct {
	// Immutable.
	id       uint64
	cluster  uint64
	voters   map[uint64]string
	tls      *tls.Config
	election time.Duration
	log      *slog.Logger
	// dialer, when set, replaces the net.Dialer (Config.Dial). Set
	// before Start.
	dialer func(ctx context.Context, network, addr string) (net.Conn, error)

	// recv and peers are set by Start, immutable after.
	recv  Receiver
	peers map[uint64]*peer

	// ctx is cancelled by Close.
	ctx    context.Context
	cancel context.CancelFunc
	// wg counts the peer and inbound connection goroutines. Add is
	// called only under mu while !closed.
	wg sync.WaitGroup

	// mu guards the fields below. A leaf.
	mu        sync.Mutex
	closed    bool
	listeners map[net.Listener]struct{}
	conns     map[net.Conn]struct{}
	// lastRefusal is when a refused inbound connection was last
	// logged at Warn.
	lastRefusal time.Time
}

func newTCPTransport(id uint64, voters map[uint64]string, tlsConfig *tls.Config, election time.Duration, log *slog.Logger) *tcpTransport {
	ctx, cancel := context.WithCancel(context.Background())
	return &tcpTransport{
		id:        id,
		cluster:   clusterHash(voters),
		voters:    voters,
		tls:       tlsConfig,
		election:  election,
		log:       log,
		ctx:       ctx,
		cancel:    cancel,
		listeners: map[net.Listener]struct{}{},
		conns:     map[net.Conn]struct{}{},
	}
}

// Start implements Transport: it starts one goroutine per peer.
func (t *tcpTransport) Start(r Receiver) error {
	t.recv = r
	t.peers = map[uint64]*peer{}
	t.mu.Lock()
	defer t.mu.Unlock()
	for id, addr := range t.voters {
		if id == t.id {
			continue
		}
		p := &peer{t: t, id: id, addr: addr, queue: make(chan raftpb.Message, queueSize)}
		t.peers[id] = p
		t.wg.Add(1)
		go p.run()
	}
	return nil
}

// Send implements Transport.
func (t *tcpTransport) Send(msgs []raftpb.Message) {
	for _, m := range msgs {
		p := t.peers[m.To]
		if p == nil {
			continue
		}
		select {
		case p.queue <- m:
		default:
			// A slow or unreachable peer: raft will send again.
			if m.Type == raftpb.MsgSnap {
				t.recv.ReportSnapshot(m.To, raft.SnapshotFailure)
			}
			t.recv.ReportUnreachable(m.To)
		}
	}
}

// Close implements Transport: it closes the listeners and connections
// and waits for their goroutines.
func (t *tcpTransport) Close() error {
	t.mu.Lock()
	t.closed = true
	t.cancel()
	for l := range t.listeners {
		l.Close()
	}
	for c := range t.conns {
		c.Close()
	}
	t.mu.Unlock()
	t.wg.Wait()
	return nil
}

// track registers an open connection so that Close closes it; it
// refuses (and closes) it after Close.
func (t *tcpTransport) track(c net.Conn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		c.Close()
		return false
	}
	t.conns[c] = struct{}{}
	return true
}

func (t *tcpTransport) untrack(c net.Conn) {
	c.Close()
	t.mu.Lock()
	delete(t.conns, c)
	t.mu.Unlock()
}

// serve accepts inbound connections on l until Close.
func (t *tcpTransport) serve(l net.Listener) error {
	if t.tls != nil {
		l = tls.NewListener(l, t.tls)
	}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		l.Close()
		return ErrStopped
	}
	t.listeners[l] = struct{}{}
	t.mu.Unlock()
	defer func() {
		t.mu.Lock()
		delete(t.listeners, l)
		t.mu.Unlock()
		l.Close()
	}()
	var delay time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			if t.ctx.Err() != nil {
				return ErrStopped
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			// Like net/http: back off on errors such as EMFILE.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			t.log.Warn("raft listener: accept failed; retrying", "err", err, "delay", delay)
			select {
			case <-time.After(delay):
			case <-t.ctx.Done():
				return ErrStopped
			}
			continue
		}
		delay = 0
		t.mu.Lock()
		if t.closed {
			t.mu.Unlock()
			c.Close()
			return ErrStopped
		}
		t.conns[c] = struct{}{}
		t.wg.Add(1)
		t.mu.Unlock()
		go t.handle(c)
	}
}

// handle reads an inbound connection: the handshake, then messages.
// Anything malformed closes it.
func (t *tcpTransport) handle(c net.Conn) {
	defer t.wg.Done()
	defer t.untrack(c)
	c.SetDeadline(time.Now().Add(handshakeTimeout))
	h, err := readHello(c)
	if err != nil {
		t.refused(c, "bad handshake", err)
		return
	}
	status := t.check(h)
	if _, err := c.Write(marshalAck(status)); err != nil {
		t.refused(c, "handshake failed", err)
		return
	}
	if status != statusOK {
		t.refused(c, statusText[status], nil)
		return
	}
	c.SetDeadline(time.Time{})
	r := bufio.NewReaderSize(c, 64<<10)
	for {
		m, err := decodeMessage(r)
		if err != nil {
			if t.ctx.Err() == nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				t.log.Warn("raft peer connection closed: bad input", "peer", h.from, "remote", c.RemoteAddr().String(), "err", err)
			}
			return
		}
		if m.From != h.from || m.To != t.id {
			t.log.Warn("raft peer connection closed: message with wrong addresses", "peer", h.from,
				"from", m.From, "to", m.To)
			return
		}
		ctx, cancel := context.WithTimeout(t.ctx, t.election)
		err = t.recv.Receive(ctx, m)
		cancel()
		if errors.Is(err, ErrStopped) {
			return
		}
		if err != nil {
			// A proposal that found no leader: dropped, as raft allows.
			t.log.Debug("raft message dropped", "peer", h.from, "type", m.Type.String(), "err", err)
		}
	}
}

// check validates a dialer's hello.
func (t *tcpTransport) check(h hello) byte {
	switch {
	case h.version != protoVersion:
		return statusVersion
	case h.clus != t.cluster:
		return statusCluster
	case h.to != t.id:
		return statusRecipient
	case h.from == t.id || t.peers[h.from] == nil:
		return statusSender
	}
	return statusOK
}

// refused logs a refused inbound connection, at Warn at most every
// warnEvery.
func (t *tcpTransport) refused(c net.Conn, why string, err error) {
	if t.ctx.Err() != nil {
		return
	}
	level := slog.LevelDebug
	t.mu.Lock()
	if now := time.Now(); now.Sub(t.lastRefusal) >= warnEvery {
		t.lastRefusal, level = now, slog.LevelWarn
	}
	t.mu.Unlock()
	t.log.Log(t.ctx, level, "raft connection refused", "remote", c.RemoteAddr().String(), "reason", why, "err", err)
}

// peer sends to one peer over one connection at a time.
type peer struct {
	// Immutable.
	t     *tcpTransport
	id    uint64
	addr  string
	queue chan raftpb.Message

	// Owned by run.
	down     bool
	lastWarn time.Time
}

// run connects, streams the queue, and reconnects with backoff until the
// transport closes.
func (p *peer) run() {
	defer p.t.wg.Done()
	backoff := minBackoff
	for {
		c, err := p.dial()
		if err == nil {
			backoff = minBackoff
			if p.down {
				p.t.log.Info("raft peer reachable", "peer", p.id, "addr", p.addr)
			}
			p.down = false
			err = p.stream(c)
			p.t.untrack(c)
		}
		if p.t.ctx.Err() != nil {
			return
		}
		p.failed(err)
		p.drain()
		select {
		case <-time.After(backoff):
		case <-p.t.ctx.Done():
			return
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// failed logs a connection failure, at Warn when the peer was up or
// warnEvery after the last warning, else at Debug.
func (p *peer) failed(err error) {
	level := slog.LevelDebug
	if now := time.Now(); !p.down || now.Sub(p.lastWarn) >= warnEvery {
		p.lastWarn, level = now, slog.LevelWarn
	}
	p.down = true
	p.t.log.Log(p.t.ctx, level, "raft peer unreachable", "peer", p.id, "addr", p.addr, "err", err)
	p.t.recv.ReportUnreachable(p.id)
}

// drain drops the queued messages: they are stale by the time the peer is
// back, and raft must learn that its snapshots did not go.
func (p *peer) drain() {
	for {
		select {
		case m := <-p.queue:
			if m.Type == raftpb.MsgSnap {
				p.t.recv.ReportSnapshot(p.id, raft.SnapshotFailure)
			}
		default:
			return
		}
	}
}

// dial connects and handshakes.
func (p *peer) dial() (net.Conn, error) {
	ctx, cancel := context.WithTimeout(p.t.ctx, handshakeTimeout)
	defer cancel()
	dial := p.t.dialer
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	c, err := dial(ctx, "tcp", p.addr)
	if err != nil {
		return nil, err
	}
	if p.t.tls != nil {
		tc := tls.Client(c, p.tlsConfig())
		if err := tc.HandshakeContext(ctx); err != nil {
			c.Close()
			return nil, err
		}
		c = tc
	}
	if !p.t.track(c) {
		return nil, ErrStopped
	}
	deadline, _ := ctx.Deadline()
	c.SetDeadline(deadline)
	h := hello{version: protoVersion, from: p.t.id, to: p.id, clus: p.t.cluster}
	if _, err := c.Write(h.marshal()); err != nil {
		p.t.untrack(c)
		return nil, err
	}
	status, err := readAck(c)
	if err == nil && status != statusOK {
		text := "unknown"
		if int(status) < len(statusText) {
			text = statusText[status]
		}
		err = fmt.Errorf("raftnode: peer %d at %s refused the connection: %s", p.id, p.addr, text)
	}
	if err != nil {
		p.t.untrack(c)
		return nil, err
	}
	c.SetDeadline(time.Time{})
	return c, nil
}

// stream writes queued messages to c in batches until an error or Close.
func (p *peer) stream(c net.Conn) error {
	w := bufio.NewWriterSize(c, 64<<10)
	for {
		var m raftpb.Message
		select {
		case m = <-p.queue:
		case <-p.t.ctx.Done():
			return nil
		}
		snaps, size := 0, 0 // MsgSnaps and bytes in the batch
		for i := 1; ; i++ {
			b, err := m.Marshal()
			if err != nil || len(b) > maxFrame {
				p.t.log.Error("raft message not sent: cannot encode it in a frame", "peer", p.id,
					"type", m.Type.String(), "bytes", len(b), "err", err)
				if m.Type == raftpb.MsgSnap {
					p.t.recv.ReportSnapshot(p.id, raft.SnapshotFailure)
				}
			} else {
				if m.Type == raftpb.MsgSnap {
					snaps++
				}
				size += 4 + len(b)
				c.SetWriteDeadline(time.Now().Add(writeTimeout + time.Duration(size>>20)*time.Second))
				var h [4]byte
				binary.BigEndian.PutUint32(h[:], uint32(len(b)))
				w.Write(h[:])
				if _, err := w.Write(b); err != nil {
					return p.lost(snaps, err)
				}
			}
			if i == maxBatch || len(p.queue) == 0 {
				break
			}
			m = <-p.queue // only this goroutine receives
		}
		if err := w.Flush(); err != nil {
			return p.lost(snaps, err)
		}
		for ; snaps > 0; snaps-- {
			p.t.recv.ReportSnapshot(p.id, raft.SnapshotFinish)
		}
	}
}

// lost reports a batch that may not have arrived.
func (p *peer) lost(snaps int, err error) error {
	for ; snaps > 0; snaps-- {
		p.t.recv.ReportSnapshot(p.id, raft.SnapshotFailure)
	}
	return err
}

// tlsConfig is the transport's TLS configuration for dialing p: the
// server name, when not set, is p's host, as tls.Dialer does.
func (p *peer) tlsConfig() *tls.Config {
	if p.t.tls.ServerName != "" || p.t.tls.InsecureSkipVerify {
		return p.t.tls
	}
	c := p.t.tls.Clone()
	if host, _, err := net.SplitHostPort(p.addr); err == nil {
		c.ServerName = host
	} else {
		c.ServerName = p.addr
	}
	return c
}
