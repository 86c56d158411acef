package ktest

import (
	"encoding/binary"
	"io"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Proxy is a fault-injecting TCP proxy in front of a broker. It forwards
// client connections to the broker and, per its Faults, drops responses
// (closing the connection after the broker processed the request, so
// the client retries something that already happened) or delays them.
// It knows Kafka's framing (a 4-byte size before each response), so
// faults hit whole responses.
//
// Clients must reach the broker only through the proxy: Advertise makes
// the broker tell clients the proxy's address in Metadata.
type Proxy struct {
	t      testing.TB
	target string
	ln     net.Listener

	mu     sync.Mutex
	faults Faults
	rng    *rand.Rand
	conns  map[net.Conn]struct{}
	closed bool

	wg sync.WaitGroup
	// Dropped and Delayed count the responses faults hit.
	Dropped, Delayed atomic.Int64
}

// Faults configures a Proxy.
type Faults struct {
	// Keys are the API keys whose responses faults hit (Kafka's
	// numbers, 0 is Produce); empty: every API but ApiVersions (whose
	// loss clients take for a TLS mismatch, not a network fault).
	Keys []int16
	// DropResponse is the probability that a response is dropped: the
	// connection is closed instead of delivering it.
	DropResponse float64
	// DelayResponse is the probability that a response is delayed by
	// Delay before it is delivered.
	DelayResponse float64
	Delay         time.Duration
}

// NewProxy starts a proxy to target (host:port), closed at test end.
func NewProxy(t testing.TB, target string, seed uint64) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("ktest: proxy: %v", err)
	}
	p := &Proxy{t: t, target: target, ln: ln, rng: rand.New(rand.NewPCG(seed, 0x9e3779b9)), conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.Close)
	return p
}

// Addr is the proxy's address.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Advertise makes b announce the proxy in Metadata (until b restarts),
// so clients connect through it.
func (p *Proxy) Advertise(b *Broker) {
	host, port, _ := net.SplitHostPort(p.Addr())
	n, _ := strconv.Atoi(port)
	b.B.SetAdvertised(host, int32(n))
}

// SetFaults changes the faults for responses from now on.
func (p *Proxy) SetFaults(f Faults) {
	p.mu.Lock()
	p.faults = f
	p.mu.Unlock()
}

// Close stops the proxy and closes its connections. Idempotent.
func (p *Proxy) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.ln.Close()
	p.wg.Wait()
}

func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	c.Close()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			client.Close()
			continue
		}
		if !p.track(client) || !p.track(server) {
			client.Close()
			server.Close()
			continue
		}
		// keys maps the correlation IDs of requests in flight on this
		// connection to their API keys.
		keys := &sync.Map{}
		p.wg.Add(2)
		go func() { // requests: frame by frame, noting their keys
			defer p.wg.Done()
			p.requests(server, client, keys)
			p.untrack(server)
			p.untrack(client)
		}()
		go func() { // responses: frame by frame, with faults
			defer p.wg.Done()
			p.responses(client, server, keys)
			p.untrack(server)
			p.untrack(client)
		}()
	}
}

// readFrame reads one size-prefixed Kafka frame, size included.
func readFrame(r io.Reader) ([]byte, error) {
	var size [4]byte
	if _, err := io.ReadFull(r, size[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(size[:])
	if n > 1<<30 || n < 4 {
		return nil, io.ErrUnexpectedEOF
	}
	frame := make([]byte, 4+n)
	copy(frame, size[:])
	if _, err := io.ReadFull(r, frame[4:]); err != nil {
		return nil, err
	}
	return frame, nil
}

func (p *Proxy) requests(server, client net.Conn, keys *sync.Map) {
	for {
		frame, err := readFrame(client)
		if err != nil || len(frame) < 12 {
			return
		}
		key := int16(binary.BigEndian.Uint16(frame[4:]))
		corr := int32(binary.BigEndian.Uint32(frame[8:]))
		keys.Store(corr, key)
		if _, err := server.Write(frame); err != nil {
			return
		}
	}
}

// decide returns the fault for the next response, of API key key.
func (p *Proxy) decide(key int16) (drop bool, delay time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f := p.faults
	if len(f.Keys) == 0 && key == 18 || len(f.Keys) > 0 && !slices.Contains(f.Keys, key) {
		return false, 0
	}
	if f.DropResponse > 0 && p.rng.Float64() < f.DropResponse {
		return true, 0
	}
	if f.DelayResponse > 0 && p.rng.Float64() < f.DelayResponse {
		return false, f.Delay
	}
	return false, 0
}

func (p *Proxy) responses(client, server net.Conn, keys *sync.Map) {
	for {
		body, err := readFrame(server)
		if err != nil {
			return
		}
		key := int16(-1)
		if k, ok := keys.LoadAndDelete(int32(binary.BigEndian.Uint32(body[4:]))); ok {
			key = k.(int16)
		}
		drop, delay := p.decide(key)
		if drop {
			p.Dropped.Add(1)
			return // closes both connections: the response is lost
		}
		if delay > 0 {
			p.Delayed.Add(1)
			time.Sleep(delay)
		}
		if _, err := client.Write(body); err != nil {
			return
		}
	}
}
