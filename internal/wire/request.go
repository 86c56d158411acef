package wire

import (
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Request is one decoded request, as the server hands it to the broker.
type Request struct {
	// Client describes the connection the request arrived on. Never nil.
	Client *Client
	// Key, Version and CorrelationID are from the request header.
	Key           int16
	Version       int16
	CorrelationID int32
	// ClientID is the header's client ID ("" when null).
	ClientID string
	// Body is the decoded request, at Version.
	Body kmsg.Request
	// UnsupportedVersion is set on an ApiVersions request whose version
	// is above the supported range: Body is a v0 request and the
	// handler answers UNSUPPORTED_VERSION (KIP-511).
	UnsupportedVersion bool
	// Received is when the request's frame was read.
	Received time.Time
}

// Client describes a client connection. Immutable but for the
// principal, set once when the connection authenticates.
type Client struct {
	// Remote is the client's address.
	Remote string
	// Host is the IP address of Remote, without the port: what ACLs
	// name as a client's host.
	Host string
	// Listener is the name of the listener the connection arrived on
	// ("" for the server's default one): Metadata answers with that
	// listener's advertised endpoint.
	Listener string
	// Close stops reading requests and closes the connection once the
	// responses to the requests already read are written; for handlers
	// that cannot answer (Kafka closes on such requests).
	Close func()

	principal atomic.Pointer[string]
	// mutedUntil is when the server may read the client's next request
	// (Unix nanoseconds; 0 none): a quota's throttle (KIP-219).
	mutedUntil atomic.Int64
}

// Mute stops the server from reading the client's next requests until
// the given time, as Kafka mutes a throttled client's channel. A later
// time extends it.
func (c *Client) Mute(until time.Time) {
	u := until.UnixNano()
	for {
		cur := c.mutedUntil.Load()
		if cur >= u || c.mutedUntil.CompareAndSwap(cur, u) {
			return
		}
	}
}

// MutedUntil is when the client's mute ends; zero time when none.
func (c *Client) MutedUntil() time.Time {
	if u := c.mutedUntil.Load(); u != 0 {
		return time.Unix(0, u)
	}
	return time.Time{}
}

// Anonymous is the principal of a connection that did not authenticate
// (Kafka's KafkaPrincipal.ANONYMOUS).
const Anonymous = "User:ANONYMOUS"

// Principal is who the client authenticated as, in Kafka's form
// ("User:alice"); Anonymous until SetPrincipal.
func (c *Client) Principal() string {
	if p := c.principal.Load(); p != nil {
		return *p
	}
	return Anonymous
}

// SetPrincipal records who the client authenticated as.
func (c *Client) SetPrincipal(p string) { c.principal.Store(&p) }

// Releaser is implemented by responses holding pooled memory or open
// files (fetched record batches). The server calls Release once the
// response has been written, or, when its connection died first, once
// the handler has produced it.
type Releaser interface {
	Release()
}
