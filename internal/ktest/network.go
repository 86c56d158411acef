package ktest

import (
	"context"
	"errors"
	"net"
	"slices"
	"sync"
)

// Network is the network between the brokers of a cluster (WithNetwork):
// every connection one broker dials to another, for replication,
// inter-broker requests or the controllers' Raft, goes through it, so a
// test can cut the cluster in parts and heal it. Clients' connections
// do not: they reach every broker throughout, as in Jepsen's partitions
// of the servers.
//
// A cut link closes its connections, and a dial over it waits
// for the heal or for the dialer to give up (a dropped SYN), so each
// side sees its peers gone, not refusing.
type Network struct {
	// mu guards the fields below.
	mu sync.Mutex
	// cut holds the links cut, each as {lower node, higher node}.
	cut map[[2]int]bool
	// addrs maps a broker or controller address to its node.
	addrs map[string]int
	// conns are the open connections between nodes.
	conns map[*netConn]struct{}
	// healed is closed and replaced whenever links are restored.
	healed chan struct{}
}

// NewNetwork returns a network without cuts.
func NewNetwork() *Network {
	return &Network{cut: map[[2]int]bool{}, addrs: map[string]int{}, conns: map[*netConn]struct{}{}, healed: make(chan struct{})}
}

// WithNetwork connects the brokers through n (NewCluster only).
func WithNetwork(n *Network) Option { return func(o *options) { o.net = n } }

// errPartitioned is what a dial across a cut returns once its dialer
// gives up.
var errPartitioned = errors.New("ktest: network partitioned")

// link is the key of the link between a and b.
func link(a, b int) [2]int {
	if a > b {
		a, b = b, a
	}
	return [2]int{a, b}
}

// Cut cuts the links between a and each of others, both ways, and closes
// the connections over them.
func (n *Network) Cut(a int, others ...int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, b := range others {
		if a != b {
			n.cut[link(a, b)] = true
		}
	}
	for c := range n.conns {
		if n.cut[link(c.from, c.to)] {
			delete(n.conns, c)
			c.Conn.Close()
		}
	}
}

// Nodes returns the nodes registered on the network, in no order.
func (n *Network) Nodes() []int {
	n.mu.Lock()
	defer n.mu.Unlock()
	var nodes []int
	for _, node := range n.addrs {
		if !slices.Contains(nodes, node) {
			nodes = append(nodes, node)
		}
	}
	return nodes
}

// Isolate cuts node off from every other node.
func (n *Network) Isolate(node int) { n.Cut(node, n.Nodes()...) }

// Bridge cuts a off from b, and nothing else: every other node still
// reaches both (Jepsen's bridge, with three nodes).
func (n *Network) Bridge(a, b int) { n.Cut(a, b) }

// Heal restores every link.
func (n *Network) Heal() {
	n.mu.Lock()
	defer n.mu.Unlock()
	clear(n.cut)
	close(n.healed)
	n.healed = make(chan struct{})
}

// register notes that addr is node's.
func (n *Network) register(node int, addr string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.addrs[addr] = node
}

// cutLocked: from cannot reach to.
func (n *Network) cutLocked(from, to int) bool { return n.cut[link(from, to)] }

// dialer returns node's dial function.
func (n *Network) dialer(from int) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		for {
			n.mu.Lock()
			to, known := n.addrs[addr]
			if !known || !n.cutLocked(from, to) {
				n.mu.Unlock()
				break
			}
			healed := n.healed
			n.mu.Unlock()
			select {
			case <-ctx.Done():
				return nil, errPartitioned
			case <-healed:
			}
		}
		var d net.Dialer
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		n.mu.Lock()
		defer n.mu.Unlock()
		to, known := n.addrs[addr]
		if !known {
			return c, nil
		}
		if n.cutLocked(from, to) {
			// Cut while dialing.
			c.Close()
			return nil, errPartitioned
		}
		nc := &netConn{Conn: c, n: n, from: from, to: to}
		n.conns[nc] = struct{}{}
		return nc, nil
	}
}

// netConn is a connection between two nodes.
type netConn struct {
	net.Conn
	n        *Network
	from, to int
}

func (c *netConn) Close() error {
	c.n.mu.Lock()
	delete(c.n.conns, c)
	c.n.mu.Unlock()
	return c.Conn.Close()
}
