package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/wire"
)

// SaslHandshake: v0-1, SaslAuthenticate: v0-2
//
// On a SASL listener the server answers both itself until the
// connection is authenticated (server/security.go); requests that reach
// the broker come from a connection that needs no more: a PLAINTEXT or
// SSL listener, or one authenticated already. Kafka serves both APIs on
// every listener, and there they reach KafkaApis, which answers
// ILLEGAL_SASL_STATE (handleSaslHandshakeRequest with no enabled
// mechanisms, handleSaslAuthenticateRequest with "received after
// successful authentication"). A client configured for SASL against a
// listener without it so fails at once with an authentication error.
func init() {
	registerSync(17, 0, 1, (*Broker).handleSaslHandshake)
	registerSync(36, 0, 2, (*Broker).handleSaslAuthenticate)
}

func (b *Broker) handleSaslHandshake(req *wire.Request) kmsg.Response {
	r := req.Body.(*kmsg.SASLHandshakeRequest)
	resp := r.ResponseKind().(*kmsg.SASLHandshakeResponse)
	resp.ErrorCode = kerr.IllegalSaslState.Code
	resp.SupportedMechanisms = []string{}
	return resp
}

func (b *Broker) handleSaslAuthenticate(req *wire.Request) kmsg.Response {
	r := req.Body.(*kmsg.SASLAuthenticateRequest)
	resp := r.ResponseKind().(*kmsg.SASLAuthenticateResponse)
	resp.ErrorCode = kerr.IllegalSaslState.Code
	resp.ErrorMessage = kmsg.StringPtr("SaslAuthenticate request received after successful authentication")
	resp.SASLAuthBytes = []byte{}
	return resp
}
