package ktest

import (
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// NewCluster starts n brokers (node IDs 0..n-1) forming one cluster
// (docs/CLUSTER.md), each with its own data directory, and stops them
// when the test ends. WithNetwork puts a Network between them.
func NewCluster(t testing.TB, n int, opts ...Option) []*Broker {
	t.Helper()
	var voters []string
	for i := range n {
		// A free port for each controller listener, released for
		// the broker to bind again.
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		voters = append(voters, strconv.Itoa(i)+"@"+l.Addr().String())
		l.Close()
	}
	bs := make([]*Broker, n)
	for i := range n {
		bs[i] = newBroker(t, append([]Option{Set("node.id", strconv.Itoa(i)),
			Set("controller.quorum.voters", strings.Join(voters, ","))}, opts...))
	}
	// A broker opens once a quorum of controllers is up: boot together.
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, b := range bs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = b.boot("127.0.0.1:0")
		}()
	}
	wg.Wait()
	for _, b := range bs {
		t.Cleanup(b.Stop)
	}
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return bs
}

// listenRetry listens on addr with listen, retrying for about a
// second: a port just released (a restart, or NewCluster's free ports)
// may be taken for a moment, by the kernel or another process.
func listenRetry(listen func(addr string) (net.Listener, error), addr string) (net.Listener, error) {
	l, err := listen(addr)
	for i := 0; err != nil && i < 50; i++ {
		time.Sleep(20 * time.Millisecond)
		l, err = listen(addr)
	}
	return l, err
}

// tcpListen listens on a TCP address.
func tcpListen(addr string) (net.Listener, error) { return net.Listen("tcp", addr) }
