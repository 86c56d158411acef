package server

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// InternalPrincipal is the principal of in-process connections
// (ServeInternal): the web console's. No network client can have it: the
// server gives every network connection a principal of type User (a
// SASL user User:<name>, a certificate User:<subject>, anybody else
// User:ANONYMOUS), and this one's type is Internal. The broker lets it
// do everything only when told to (broker.TrustInternalPrincipal), and
// ServeInternal answers it only the read-only APIs.
const InternalPrincipal = "Internal:console"

// readOnlyKeys are the APIs an internal connection may call: the ones
// that describe the cluster, as an admin tool's listings do. Producing,
// fetching records, joining groups, committing offsets and every Create,
// Alter or Delete are refused, so that a super-user connection that
// anyone reaching the admin port drives cannot change or read data.
var readOnlyKeys = func() (keys [kmsg.MaxKey + 1]bool) {
	for _, k := range []kmsg.Key{
		kmsg.ApiVersions, kmsg.Metadata, kmsg.ListOffsets, kmsg.OffsetForLeaderEpoch,
		kmsg.FindCoordinator, kmsg.ListGroups, kmsg.DescribeGroups, kmsg.ConsumerGroupDescribe, kmsg.OffsetFetch,
		kmsg.DescribeConfigs, kmsg.DescribeLogDirs, kmsg.DescribeCluster,
		kmsg.DescribeACLs, kmsg.DescribeUserSCRAMCredentials, kmsg.DescribeClientQuotas,
		kmsg.DescribeProducers, kmsg.DescribeTransactions, kmsg.ListTransactions,
	} {
		keys[k] = true
	}
	return keys
}()

// readOnlyAPI reports whether an internal connection may call the API
// with this key.
func readOnlyAPI(key int16) bool {
	return key >= 0 && int(key) < len(readOnlyKeys) && readOnlyKeys[key]
}

// DialInternal returns a connection to the server that exists only in
// this process: one end of a net.Pipe whose other end ServeInternal
// serves. A Kafka client dials it with kgo.Dialer, whatever listeners are
// configured and whatever security they ask for.
func (s *Server) DialInternal() (net.Conn, error) {
	client, server := net.Pipe()
	if err := s.ServeInternal(server); err != nil {
		client.Close()
		server.Close()
		return nil, err
	}
	return client, nil
}

// ServeInternal serves nc, an in-process connection, in the background
// until it closes or Shutdown: as a PLAINTEXT connection of the default
// listener whose principal is InternalPrincipal, that may call only the
// read-only APIs (readOnlyKeys; any other request closes it, as an
// unsupported one does). It takes no max.connections slot and is not
// counted among the client connections, but Shutdown closes it like the
// others.
func (s *Server) ServeInternal(nc net.Conn) error {
	rc := &internalConn{Conn: nc, r: bufio.NewReader(nc), log: s.log}
	c := newConn(s, rc, "", Security{})
	c.client.SetPrincipal(InternalPrincipal)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.conns[c] = struct{}{}
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
		s.mu.Unlock()
	}()
	return nil
}

// internalConn is an internal connection as its reader sees it: at each
// frame's start it peeks at the size and API key, and fails the read of
// a request to an API that is not read-only, before the server has
// taken any of its bytes.
type internalConn struct {
	net.Conn
	r   *bufio.Reader
	log *slog.Logger
	// left is what remains of the current frame, its size included.
	// Used by the connection's reader only.
	left int64
}

// internalAddr is an internal connection's remote address: what logs
// and ACLs' hosts see ("internal").
type internalAddr struct{}

func (internalAddr) Network() string { return "internal" }
func (internalAddr) String() string  { return "internal" }

func (c *internalConn) RemoteAddr() net.Addr { return internalAddr{} }

func (c *internalConn) Read(p []byte) (int, error) {
	if c.left == 0 {
		// The size and the API key. A read that times out here (the
		// idle timeout, stopReading) leaves the bytes buffered for the
		// next one.
		hdr, err := c.r.Peek(6)
		if err != nil {
			return 0, err
		}
		size := int32(binary.BigEndian.Uint32(hdr))
		key := int16(binary.BigEndian.Uint16(hdr[4:]))
		if size < 2 {
			return 0, fmt.Errorf("internal connection: frame size %d", size)
		}
		if !readOnlyAPI(key) {
			// A bug in the process, not a client's doing: say so.
			c.log.Warn("closing internal connection: request to an API that is not read-only", "principal", InternalPrincipal, "api", kmsg.NameForKey(key), "key", key)
			return 0, fmt.Errorf("internal connection: %s (key %d) is not a read-only API", kmsg.NameForKey(key), key)
		}
		c.left = 4 + int64(size)
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	return n, err
}
