package broker

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/gregor-streaming/gregor/internal/auth"
	"github.com/gregor-streaming/gregor/internal/config"
)

// Security between the brokers of a cluster (docs/SECURITY.md, "Cluster
// security"). The peer client (peers.go: replication, transaction
// markers, AddPartitionsToTxn) dials every other broker's registered
// endpoint of the inter-broker listener with that listener's TLS
// settings and SASL credentials, as Kafka's brokers do; the other side
// authorizes it like any client (CLUSTER_ACTION, super.users). The
// controller listener's Raft transport uses mutual TLS when that
// listener maps to SSL.

// peerSecurity is how this broker connects to the others: the
// inter-broker listener and its TLS and SASL. Immutable.
type peerSecurity struct {
	// listener is the inter-broker listener's name: the others are
	// dialed at their registered endpoint of it.
	listener string
	protocol string
	// tls is set for an SSL or SASL_SSL listener.
	tls *tls.Config
	// sasl and user are set for a SASL_PLAINTEXT or SASL_SSL listener.
	sasl sasl.Mechanism
	user string
}

// peerSecurityFrom builds the peer client's security from the broker's
// properties (config.InterBroker), and returns the JAAS options Gregor
// ignores, for the caller to log.
func peerSecurityFrom(cfg *config.BrokerConfig) (peerSecurity, []string, error) {
	ib, err := cfg.InterBroker()
	if err != nil {
		return peerSecurity{}, nil, err
	}
	ps := peerSecurity{listener: ib.Listener.Name, protocol: ib.Listener.Protocol, user: ib.Username}
	if p := ib.Listener.Protocol; p == config.SSL || p == config.SASLSSL {
		get := func(name string) string { return cfg.ListenerString(ib.Listener.Name, name) }
		if ps.tls, err = auth.ClientTLS(get); err != nil {
			return peerSecurity{}, nil, fmt.Errorf("inter-broker listener %s: %w", ib.Listener.Name, err)
		}
	}
	switch ib.Mechanism {
	case auth.Plain:
		ps.sasl = plain.Auth{User: ib.Username, Pass: ib.Password}.AsMechanism()
	case auth.ScramSHA256:
		ps.sasl = scram.Auth{User: ib.Username, Pass: ib.Password}.AsSha256Mechanism()
	case auth.ScramSHA512:
		ps.sasl = scram.Auth{User: ib.Username, Pass: ib.Password}.AsSha512Mechanism()
	}
	return ps, ib.IgnoredOptions, nil
}

// controllerTLS returns the TLS configuration of the controller
// listener's Raft transport: mutual TLS with the listener's ssl.*
// settings when it maps to SSL, nil for PLAINTEXT.
func controllerTLS(cfg *config.BrokerConfig) (*tls.Config, error) {
	l, err := cfg.ControllerListener()
	if err != nil || l.Protocol != config.SSL {
		return nil, err
	}
	key := "listener.name." + strings.ToLower(l.Name) + ".ssl.client.auth"
	if v, ok := cfg.Static(key); ok && v != "required" {
		return nil, fmt.Errorf("%w: %s=%s: the controller listener requires client certificates (mutual TLS)", config.ErrInvalid, key, v)
	}
	tc, err := auth.MutualTLS(func(name string) string { return cfg.ListenerString(l.Name, name) })
	if err != nil {
		return nil, fmt.Errorf("controller listener %s: %w", l.Name, err)
	}
	return tc, nil
}

// CheckClusterSecurity checks the settings the brokers and controllers
// of a cluster (controller.quorum.voters naming more than one voter)
// connect to each other with: the inter-broker listener, its TLS and
// SASL credentials, and the controller listener's protocol and TLS. A
// single node checks only that inter.broker.listener.name or
// security.inter.broker.protocol names a listener. Open checks the same
// as it builds them; gregor serve calls it first, to refuse a bad
// configuration before opening anything.
func CheckClusterSecurity(cfg *config.BrokerConfig) error {
	if _, err := cfg.InterBrokerListener(); err != nil {
		return err
	}
	if voters, err := cfg.Voters(); err != nil || len(voters) <= 1 {
		return err
	}
	if _, _, err := peerSecurityFrom(cfg); err != nil {
		return err
	}
	_, err := controllerTLS(cfg)
	return err
}

// peerDialTimeout bounds a connection to another broker, TLS handshake
// included (franz-go's default dial timeout).
const peerDialTimeout = 10 * time.Second

// errPeerTLS marks a failed TLS handshake with another broker.
var errPeerTLS = errors.New("TLS handshake with another broker failed")

// peerDialer returns the peer client's dialer: Options.Dial (tests cut
// the network with it) or a net.Dialer, then TLS for an SSL or SASL_SSL
// inter-broker listener. franz-go refuses its own TLS option together
// with a dialer, so the handshake is done here.
func (b *Broker) peerDialer() func(ctx context.Context, network, addr string) (net.Conn, error) {
	dial := b.dial
	if dial == nil {
		dial = (&net.Dialer{Timeout: peerDialTimeout}).DialContext
	}
	tc := b.peerSec.tls
	if tc == nil {
		return dial
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		ctx, cancel := context.WithTimeout(ctx, peerDialTimeout)
		defer cancel()
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		cfg := tc
		if cfg.ServerName == "" {
			// The host dialed, which the certificate must name
			// (ssl.endpoint.identification.algorithm=https).
			cfg = tc.Clone()
			if host, _, err := net.SplitHostPort(addr); err == nil {
				cfg.ServerName = host
			} else {
				cfg.ServerName = addr
			}
		}
		tlsConn := tls.Client(c, cfg)
		if err := tlsConn.HandshakeContext(ctx); err != nil {
			c.Close()
			return nil, fmt.Errorf("%w: %s: %w", errPeerTLS, addr, err)
		}
		return tlsConn, nil
	}
}

// peerWarnEvery bounds how often the same failure to reach another
// broker is logged at Warn.
const peerWarnEvery = 30 * time.Second

// peerFailed logs a request to broker id that failed for a reason an
// operator must fix (TLS, SASL credentials, authorization: the
// inter-broker settings) at Warn, each distinct failure at most every
// peerWarnEvery, with a hint; other failures (a broker down, a leader
// moved) are retried and logged at Debug.
func (b *Broker) peerFailed(id int32, what string, err error) {
	hint := peerHint(err)
	if hint == "" {
		b.log.Debug(what, "broker", id, "err", err)
		return
	}
	msg := err.Error()
	now := time.Now()
	b.peers.warnMu.Lock()
	last, seen := b.peers.warned[msg]
	if !seen || now.Sub(last) >= peerWarnEvery {
		if b.peers.warned == nil || len(b.peers.warned) > 64 {
			b.peers.warned = map[string]time.Time{}
		}
		b.peers.warned[msg] = now
		seen = false
	}
	b.peers.warnMu.Unlock()
	if seen {
		b.log.Debug(what, "broker", id, "err", err)
		return
	}
	ps := b.peerSec
	b.log.Warn(what, "broker", id, "listener", ps.listener, "protocol", ps.protocol, "user", ps.user, "err", err, "hint", hint)
}

// peerHint says what to check when a request to another broker failed
// because of the inter-broker settings; "" for other failures.
func peerHint(err error) string {
	switch {
	case errors.Is(err, kerr.SaslAuthenticationFailed), errors.Is(err, kerr.IllegalSaslState):
		return "the other broker refused this broker's credentials: check listener.name.<listener>.<mechanism>.sasl.jaas.config against the SCRAM user it names (gregor serve --add-scram)"
	case errors.Is(err, kerr.UnsupportedSaslMechanism):
		return "the other broker's inter-broker listener does not enable sasl.mechanism.inter.broker.protocol (sasl.enabled.mechanisms)"
	case errors.Is(err, kerr.ClusterAuthorizationFailed), errors.Is(err, kerr.TopicAuthorizationFailed):
		return "the inter-broker principal (the SASL user; over SSL, this broker's certificate subject as the other broker's ssl.principal.mapping.rules map it) needs CLUSTER_ACTION on the cluster: add it to super.users (or grant it with an ACL)"
	case errors.As(err, new(*kgo.ErrFirstReadEOF)):
		return "the other broker closed the connection at once: its inter-broker listener expects other security (TLS, SASL) than this broker uses for it (the brokers' listeners, listener.security.protocol.map and inter.broker.listener.name must agree), or, over SSL, none of its ssl.principal.mapping.rules matches this broker's certificate subject"
	case errors.Is(err, errPeerTLS), strings.Contains(err.Error(), "remote error: tls:"):
		return "check the inter-broker listener's certificates: ssl.keystore.location (with extended key usage serverAuth and clientAuth), ssl.truststore.location, ssl.endpoint.identification.algorithm"
	}
	return ""
}
