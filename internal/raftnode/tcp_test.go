package raftnode

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/gregor-streaming/gregor/internal/vfs"
)

type tcpCluster struct {
	voters map[uint64]string
	nodes  map[uint64]*Node
	sms    map[uint64]*testSM
}

// startTCP starts a cluster of size nodes over TCP on 127.0.0.1.
func startTCP(t *testing.T, size int, tlsConfig *tls.Config) *tcpCluster {
	t.Helper()
	c := &tcpCluster{voters: map[uint64]string{}, nodes: map[uint64]*Node{}, sms: map[uint64]*testSM{}}
	ls := map[uint64]net.Listener{}
	for i := 1; i <= size; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls[uint64(i)] = l
		c.voters[uint64(i)] = l.Addr().String()
	}
	for id, l := range ls {
		sm := &testSM{}
		n, err := Start(Config{
			ID: id, Voters: c.voters, Dir: "/raft", FS: vfs.NewMem(), SM: sm,
			Log: testLog(t).With("node", id), TickInterval: testTick, TLS: tlsConfig,
		})
		if err != nil {
			t.Fatal(err)
		}
		served := make(chan error, 1)
		go func() { served <- n.Serve(l) }()
		t.Cleanup(func() {
			n.Close()
			if err := <-served; !errors.Is(err, ErrStopped) {
				t.Errorf("Serve returned %v, want ErrStopped", err)
			}
		})
		c.nodes[id], c.sms[id] = n, sm
	}
	return c
}

// agree proposes from every node and checks that all apply the same.
func (c *tcpCluster) agree(t *testing.T, tag string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ids := sortedIDs(c.nodes)
	for _, id := range ids {
		if _, err := c.nodes[id].Propose(ctx, fmt.Appendf(nil, "%s-%d", tag, id)); err != nil {
			t.Fatalf("propose on node %d: %v", id, err)
		}
	}
	for _, id := range ids {
		if err := c.nodes[id].Barrier(ctx); err != nil {
			t.Fatalf("barrier on node %d: %v", id, err)
		}
	}
	want, _ := c.sms[ids[0]].state()
	for _, id := range ids[1:] {
		if got, _ := c.sms[id].state(); !slices.Equal(got, want) {
			t.Fatalf("node %d applied %v, node %d %v", id, got, ids[0], want)
		}
	}
}

func TestTCPCluster(t *testing.T) {
	c := startTCP(t, 3, nil)
	c.agree(t, "a")
	c.agree(t, "b")
}

func TestTCPTLS(t *testing.T) {
	c := startTCP(t, 3, testTLS(t))
	c.agree(t, "tls")
}

// TestTCPRefusesStrangers connects to a node with garbage and with
// handshakes it must refuse, and checks that the connection is closed
// and the cluster unharmed.
func TestTCPRefusesStrangers(t *testing.T) {
	c := startTCP(t, 3, nil)
	c.agree(t, "before")
	addr := c.voters[1]
	cluster := clusterHash(c.voters)
	frame := func(n uint32, body []byte) []byte { return append(binary.BigEndian.AppendUint32(nil, n), body...) }
	for _, tc := range []struct {
		name       string
		send       []byte
		wantStatus int // -1: no answer expected
	}{
		{"Garbage", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\nlots of garbage to fill a hello"), -1},
		{"OtherCluster", hello{protoVersion, 2, 1, cluster + 1}.marshal(), int(statusCluster)},
		{"UnknownSender", hello{protoVersion, 7, 1, cluster}.marshal(), int(statusSender)},
		{"WrongRecipient", hello{protoVersion, 2, 3, cluster}.marshal(), int(statusRecipient)},
		{"OtherVersion", hello{9, 2, 1, cluster}.marshal(), int(statusVersion)},
		{"HugeFrame", append(hello{protoVersion, 2, 1, cluster}.marshal(), frame(0xffffffff, nil)...), int(statusOK)},
		{"BadMessage", append(hello{protoVersion, 2, 1, cluster}.marshal(), frame(5, []byte{0xff, 0xff, 0xff, 0xff, 0xff})...), int(statusOK)},
		{"ForgedSender", append(hello{protoVersion, 2, 1, cluster}.marshal(),
			frame(uint32(len(mustMarshal(t, 3, 1))), mustMarshal(t, 3, 1))...), int(statusOK)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := conn.Write(tc.send); err != nil {
				t.Fatal(err)
			}
			if tc.wantStatus >= 0 {
				status, err := readAck(conn)
				if err != nil || int(status) != tc.wantStatus {
					t.Fatalf("ack: status %d, %v; want %d", status, err, tc.wantStatus)
				}
			}
			// The node closes the connection (a reset, when it left
			// bytes unread, will do).
			var ne net.Error
			if n, err := io.Copy(io.Discard, conn); errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("read after %d bytes: %v, want the node to close the connection", n, err)
			}
		})
	}
	c.agree(t, "after")
}

func mustMarshal(t *testing.T, from, to uint64) []byte {
	m := heartbeat(from, to)
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// testTLS returns a config with a self-signed certificate for 127.0.0.1
// that trusts itself, as server and as client.
func testTLS(t *testing.T) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "raftnode test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
		RootCAs:      pool,
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS13,
	}
}

// countingReceiver counts the reports a Transport makes.
type countingReceiver struct {
	mu                       sync.Mutex
	unreachable, snapFailure int
}

func (r *countingReceiver) Receive(context.Context, raftpb.Message) error { return nil }

func (r *countingReceiver) ReportUnreachable(uint64) {
	r.mu.Lock()
	r.unreachable++
	r.mu.Unlock()
}

func (r *countingReceiver) ReportSnapshot(_ uint64, status raft.SnapshotStatus) {
	r.mu.Lock()
	if status == raft.SnapshotFailure {
		r.snapFailure++
	}
	r.mu.Unlock()
}

// TestTCPSendNeverBlocks fills a stuck peer's queue: Send drops the rest
// at once and tells raft.
func TestTCPSendNeverBlocks(t *testing.T) {
	tr := newTCPTransport(1, map[uint64]string{1: "", 2: "stuck:1"}, nil, time.Second, testLog(t))
	recv := &countingReceiver{}
	tr.recv = recv
	// No goroutine drains this peer's queue.
	tr.peers = map[uint64]*peer{2: {t: tr, id: 2, addr: "stuck:1", queue: make(chan raftpb.Message, queueSize)}}
	msgs := make([]raftpb.Message, queueSize+10)
	for i := range msgs {
		msgs[i] = heartbeat(1, 2)
	}
	msgs[len(msgs)-1] = raftpb.Message{Type: raftpb.MsgSnap, From: 1, To: 2, Snapshot: &raftpb.Snapshot{}}
	done := make(chan struct{})
	go func() {
		tr.Send(msgs)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Send blocked on a stuck peer")
	}
	if recv.unreachable != 10 || recv.snapFailure != 1 {
		t.Fatalf("%d unreachable and %d snapshot failure reports, want 10 and 1", recv.unreachable, recv.snapFailure)
	}
	tr.Close()
}
