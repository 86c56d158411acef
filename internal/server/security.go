package server

import (
	"crypto/tls"
	"fmt"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/auth"
	"github.com/gregor-streaming/gregor/internal/config"
	"github.com/gregor-streaming/gregor/internal/wire"
)

// Security is what a listener asks of its connections: TLS (SSL and
// SASL_SSL listeners) and SASL authentication before any other request
// (SASL_PLAINTEXT and SASL_SSL).
type Security struct {
	TLS  *tls.Config
	SASL *SASL
	// PrincipalMapper maps a TLS client certificate's subject to the
	// client's principal name (ssl.principal.mapping.rules); nil keeps
	// the whole subject (DEFAULT).
	PrincipalMapper *auth.PrincipalMapper
}

// SASL configures SASL authentication.
type SASL struct {
	// Mechanisms are the enabled mechanisms (auth.Plain,
	// auth.ScramSHA256, auth.ScramSHA512), offered in this order.
	Mechanisms []string
	// Lookup finds a user's SCRAM credentials.
	Lookup auth.Lookup
}

// saslMaxReceive bounds a frame read before authentication, as Kafka's
// sasl.server.max.receive.size: an unauthenticated client must not make
// the broker allocate socket.request.max.bytes.
const saslMaxReceive = 512 << 10

// saslMaxPipelined bounds the requests waiting for their responses while
// a connection authenticates.
const saslMaxPipelined = 8

// SecurityFromConfig builds the security of the first client listener
// the broker properties describe (listeners, ssl.*,
// sasl.enabled.mechanisms).
func SecurityFromConfig(cfg *config.BrokerConfig, lookup auth.Lookup) (Security, error) {
	ls, ok, err := cfg.Listeners()
	if err != nil || !ok {
		return Security{}, err
	}
	return SecurityFor(cfg, ls[0], lookup)
}

// SecurityFor builds the security of listener l from the ssl.* and
// sasl.enabled.mechanisms properties, l's own
// listener.name.<name>.… overriding the broker-wide ones, as in Kafka
// (an empty name reads the broker-wide ones only).
func SecurityFor(cfg *config.BrokerConfig, l config.Listener, lookup auth.Lookup) (Security, error) {
	get := func(name string) string { return cfg.ListenerString(l.Name, name) }
	var err error
	var sec Security
	// Parsed on every listener, as Kafka builds every listener's
	// principal builder: bad rules stop the broker at start.
	if sec.PrincipalMapper, err = auth.ParsePrincipalMappingRules(get(principalMappingRules)); err != nil {
		setting := principalMappingRules
		if o := "listener.name." + strings.ToLower(l.Name) + "." + principalMappingRules; l.Name != "" {
			if _, ok := cfg.Static(o); ok {
				setting = o
			}
		}
		return Security{}, fmt.Errorf("%w: %s: %v", config.ErrInvalid, setting, err)
	}
	if l.Protocol == config.SSL || l.Protocol == config.SASLSSL {
		if sec.TLS, err = auth.ServerTLS(get); err != nil {
			return Security{}, err
		}
	}
	if l.Protocol == config.SASLPlaintext || l.Protocol == config.SASLSSL {
		mechs := config.SplitList(get("sasl.enabled.mechanisms"))
		if len(mechs) == 0 {
			return Security{}, fmt.Errorf("%w: listener %s needs sasl.enabled.mechanisms", config.ErrInvalid, l.Protocol)
		}
		for i, m := range mechs {
			mechs[i] = strings.ToUpper(m)
			if !slices.Contains(auth.Mechanisms(), mechs[i]) {
				return Security{}, fmt.Errorf("%w: sasl.enabled.mechanisms: %q is not supported (supported: %s)", config.ErrInvalid, m, strings.Join(auth.Mechanisms(), ", "))
			}
		}
		sec.SASL = &SASL{Mechanisms: mechs, Lookup: lookup}
	}
	return sec, nil
}

const principalMappingRules = "ssl.principal.mapping.rules"

// saslState is a connection's SASL authentication, used only by its
// reader goroutine.
type saslState struct {
	cfg *SASL
	// mech is the mechanism the handshake chose ("" before it).
	mech    string
	session auth.Session
	// raw: the handshake was v0, so the tokens come as bare frames
	// instead of SaslAuthenticate requests.
	raw  bool
	done bool
	user string
}

// authenticate serves a frame read before authentication finished:
// ApiVersions, SaslHandshake and SaslAuthenticate requests, or a bare
// token after a v0 handshake. Anything else closes the connection, as
// Kafka does. It reports whether the connection goes on; it owns buf.
func (c *Conn) authenticate(buf *[]byte) bool {
	st := c.sasl
	if st.raw {
		// A bare token (KIP-43's framing after SaslHandshake v0).
		out, done, err := st.session.Step(*buf)
		putBuf(buf)
		if err != nil {
			c.server.authFailed.Add(1)
			c.server.log.Info("SASL authentication failed", "remote", c.Remote, "mechanism", st.mech, "err", err)
			return false
		}
		c.finishStep(done)
		if out == nil {
			out = []byte{} // an empty token is still a frame
		}
		sl := &slot{done: make(chan struct{}), conn: c, raw: out}
		if !c.enqueue(sl) {
			return false
		}
		sl.complete(nil)
		return true
	}
	req, err := c.decode(*buf)
	if err != nil {
		putBuf(buf)
		c.server.log.Info("closing connection after bad request", "remote", c.Remote, "err", err)
		return false
	}
	sl := &slot{correlationID: req.CorrelationID, done: make(chan struct{}), buf: buf, conn: c}
	switch req.Key {
	case wire.ApiVersionsKey:
		if !c.enqueue(sl) {
			return false
		}
		c.server.handler.Serve(c.server.ctx, req, sl.complete)
		return true
	case saslHandshakeKey:
		resp, ok := c.handshake(req.Body.(*kmsg.SASLHandshakeRequest))
		resp.SetVersion(req.Version)
		if !c.enqueue(sl) {
			return false
		}
		sl.complete(resp)
		return ok
	case saslAuthenticateKey:
		resp, ok := c.authenticateStep(req.Body.(*kmsg.SASLAuthenticateRequest))
		resp.SetVersion(req.Version)
		if !c.enqueue(sl) {
			return false
		}
		sl.complete(resp)
		return ok
	}
	putBuf(buf)
	c.server.log.Info("closing connection: request before SASL authentication", "remote", c.Remote, "api", kmsg.NameForKey(req.Key))
	return false
}

const (
	saslHandshakeKey    = 17
	saslAuthenticateKey = 36
)

func (c *Conn) handshake(req *kmsg.SASLHandshakeRequest) (*kmsg.SASLHandshakeResponse, bool) {
	st := c.sasl
	resp := req.ResponseKind().(*kmsg.SASLHandshakeResponse)
	resp.SupportedMechanisms = st.cfg.Mechanisms
	if st.mech != "" {
		resp.ErrorCode = kerr.IllegalSaslState.Code
		return resp, false
	}
	mech := req.Mechanism
	if !slices.Contains(st.cfg.Mechanisms, mech) {
		resp.ErrorCode = kerr.UnsupportedSaslMechanism.Code
		return resp, false
	}
	session, err := auth.NewSession(mech, st.cfg.Lookup)
	if err != nil {
		resp.ErrorCode = kerr.UnsupportedSaslMechanism.Code
		return resp, false
	}
	st.mech, st.session, st.raw = mech, session, req.Version == 0
	return resp, true
}

func (c *Conn) authenticateStep(req *kmsg.SASLAuthenticateRequest) (*kmsg.SASLAuthenticateResponse, bool) {
	st := c.sasl
	resp := req.ResponseKind().(*kmsg.SASLAuthenticateResponse)
	if st.session == nil {
		resp.ErrorCode = kerr.IllegalSaslState.Code
		msg := "SaslAuthenticate before SaslHandshake"
		resp.ErrorMessage = &msg
		return resp, false
	}
	out, done, err := st.session.Step(req.SASLAuthBytes)
	if err != nil {
		c.server.authFailed.Add(1)
		c.server.log.Info("SASL authentication failed", "remote", c.Remote, "mechanism", st.mech, "err", err)
		resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
		msg := err.Error()
		resp.ErrorMessage = &msg
		return resp, false
	}
	resp.SASLAuthBytes = out
	c.finishStep(done)
	return resp, true
}

func (c *Conn) finishStep(done bool) {
	st := c.sasl
	if !done {
		return
	}
	st.done, st.user = true, st.session.User()
	c.server.authOK.Add(1)
	c.server.log.Debug("SASL authenticated", "remote", c.Remote, "mechanism", st.mech, "user", st.user)
}

// identify sets the client's principal once authentication is over, as
// Kafka's DefaultKafkaPrincipalBuilder: a SASL user is User:<name> (as
// given: Kafka maps only Kerberos names, which Gregor does not serve), a
// TLS client certificate User:<what ssl.principal.mapping.rules make of
// its subject in RFC 2253 form, by default the subject>, anybody else
// User:ANONYMOUS. A subject that no rule matches fails the connection's
// authentication: false, and the connection closes, as Kafka closes it
// when building the principal fails (NoMatchingRule) at its first
// request.
func (c *Conn) identify() bool {
	if c.sasl != nil && c.sasl.done {
		c.client.SetPrincipal("User:" + c.sasl.user)
		return true
	}
	if tc, ok := c.nc.(*tls.Conn); ok {
		if certs := tc.ConnectionState().PeerCertificates; len(certs) > 0 {
			name, err := c.mapper.Name(certs[0].Subject.String())
			if err != nil {
				c.server.authFailed.Add(1)
				c.server.log.Info("TLS client authentication failed: closing connection", "remote", c.Remote, "err", err)
				return false
			}
			c.client.SetPrincipal("User:" + name)
		}
	}
	return true
}
