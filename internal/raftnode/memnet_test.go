package raftnode

import (
	"context"
	"sync"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// memNet is an in-memory network of Transports with fault injection:
// links cut in either direction (isolate, partition) and a delay. Every
// message is marshalled and unmarshalled on the way, as over TCP.
type memNet struct {
	// mu guards the fields below.
	mu sync.Mutex
	// eps is each node's current endpoint.
	eps map[uint64]*memEndpoint
	// cut holds the directed links {from, to} that drop everything.
	cut   map[[2]uint64]bool
	delay time.Duration
}

func newMemNet() *memNet {
	return &memNet{eps: map[uint64]*memEndpoint{}, cut: map[[2]uint64]bool{}}
}

// transport returns a new endpoint for node id, to use in one Config;
// it replaces the node's previous endpoint when it starts.
func (nw *memNet) transport(id uint64) *memEndpoint {
	ctx, cancel := context.WithCancel(context.Background())
	return &memEndpoint{nw: nw, id: id, inbox: make(chan delivery, 4096), ctx: ctx, cancel: cancel}
}

// isolate cuts every link to and from id.
func (nw *memNet) isolate(id uint64, ids []uint64) {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	for _, o := range ids {
		if o != id {
			nw.cut[[2]uint64{id, o}] = true
			nw.cut[[2]uint64{o, id}] = true
		}
	}
}

// partition cuts every link between nodes of different groups.
func (nw *memNet) partition(groups ...[]uint64) {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	for i, g := range groups {
		for j, h := range groups {
			if i == j {
				continue
			}
			for _, a := range g {
				for _, b := range h {
					nw.cut[[2]uint64{a, b}] = true
				}
			}
		}
	}
}

// freeze cuts every link to and from id, and returns a function that
// restores them as they were.
func (nw *memNet) freeze(id uint64, ids []uint64) (restore func()) {
	nw.mu.Lock()
	saved := map[[2]uint64]bool{}
	for _, o := range ids {
		for _, l := range [][2]uint64{{id, o}, {o, id}} {
			saved[l] = nw.cut[l]
			nw.cut[l] = true
		}
	}
	nw.mu.Unlock()
	return func() {
		nw.mu.Lock()
		defer nw.mu.Unlock()
		for l, cut := range saved {
			if cut {
				nw.cut[l] = true
			} else {
				delete(nw.cut, l)
			}
		}
	}
}

// heal restores every link.
func (nw *memNet) heal() {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	clear(nw.cut)
}

func (nw *memNet) setDelay(d time.Duration) {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	nw.delay = d
}

func (nw *memNet) isCut(from, to uint64) bool {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	return nw.cut[[2]uint64{from, to}]
}

type delivery struct {
	m   raftpb.Message
	due time.Time
}

// memEndpoint is one node's Transport on a memNet. A goroutine delivers
// its inbox in order.
type memEndpoint struct {
	nw    *memNet
	id    uint64
	recv  Receiver
	inbox chan delivery
	// ctx is cancelled by Close.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func (ep *memEndpoint) Start(r Receiver) error {
	ep.recv = r
	ep.nw.mu.Lock()
	ep.nw.eps[ep.id] = ep
	ep.nw.mu.Unlock()
	ep.wg.Add(1)
	go ep.deliver()
	return nil
}

func (ep *memEndpoint) Send(msgs []raftpb.Message) {
	for _, m := range msgs {
		ep.nw.mu.Lock()
		dst, cut, delay := ep.nw.eps[m.To], ep.nw.cut[[2]uint64{ep.id, m.To}], ep.nw.delay
		ep.nw.mu.Unlock()
		ok := dst != nil && !cut
		if ok {
			b, err := m.Marshal()
			if err != nil {
				panic(err)
			}
			var c raftpb.Message
			if err := c.Unmarshal(b); err != nil {
				panic(err)
			}
			select {
			case dst.inbox <- delivery{c, time.Now().Add(delay)}:
			default:
				ok = false
			}
		}
		if !ok && m.Type == raftpb.MsgSnap {
			ep.recv.ReportSnapshot(m.To, raft.SnapshotFailure)
		}
	}
}

func (ep *memEndpoint) deliver() {
	defer ep.wg.Done()
	for {
		var d delivery
		select {
		case d = <-ep.inbox:
		case <-ep.ctx.Done():
			return
		}
		if wait := time.Until(d.due); wait > 0 {
			select {
			case <-time.After(wait):
			case <-ep.ctx.Done():
				return
			}
		}
		// A partition made while the message was on its way drops it too.
		// A proposal reaching a node that lost its leadership would
		// block until one is elected: bound it.
		ctx, cancel := context.WithTimeout(ep.ctx, 50*time.Millisecond)
		delivered := !ep.nw.isCut(d.m.From, ep.id) && ep.recv.Receive(ctx, d.m) == nil
		cancel()
		if d.m.Type == raftpb.MsgSnap {
			status := raft.SnapshotFailure
			if delivered {
				status = raft.SnapshotFinish
			}
			ep.nw.mu.Lock()
			src := ep.nw.eps[d.m.From]
			ep.nw.mu.Unlock()
			if src != nil {
				src.recv.ReportSnapshot(ep.id, status)
			}
		}
	}
}

func (ep *memEndpoint) Close() error {
	ep.cancel()
	ep.wg.Wait()
	ep.nw.mu.Lock()
	if ep.nw.eps[ep.id] == ep {
		delete(ep.nw.eps, ep.id)
	}
	ep.nw.mu.Unlock()
	return nil
}
