package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/wire"
)

// SaslHandshake: v0-1, SaslAuthenticate: v0-2
//
// Gregor's listeners are PLAINTEXT: no SASL is configured. Kafka serves
// both APIs on every listener, and on one without SASL they reach
// KafkaApis, which answers ILLEGAL_SASL_STATE (handleSaslHandshakeRequest
// with no enabled mechanisms, handleSaslAuthenticateRequest with "received
// after successful authentication"). A client configured for SASL so
// fails at once with an authentication error. Unserved, the handshake
// closed the connection and the client reconnected in a loop; franz-go,
// seeing no SaslHandshake advertised, even sent raw SASL bytes that
// were read as a request of an unknown key.
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
