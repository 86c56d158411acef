package broker_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"

	"github.com/gregor-streaming/gregor/internal/ktest"
)

// TestSaslWithoutSasl: on a listener without SASL, Kafka answers
// SaslHandshake and SaslAuthenticate with ILLEGAL_SASL_STATE (KafkaApis);
// Gregor closed the connection instead.
func TestSaslWithoutSasl(t *testing.T) {
	b := ktest.NewBroker(t)
	for v := int16(0); v <= 1; v++ {
		r := kmsg.NewPtrSASLHandshakeRequest()
		r.Version, r.Mechanism = v, "PLAIN"
		resp := send[*kmsg.SASLHandshakeResponse](t, b, r)
		errCode(t, "sasl handshake", resp.ErrorCode, kerr.IllegalSaslState)
		if len(resp.SupportedMechanisms) != 0 {
			t.Errorf("v%d: mechanisms %v, want none", v, resp.SupportedMechanisms)
		}
	}
	for v := int16(0); v <= 2; v++ {
		r := kmsg.NewPtrSASLAuthenticateRequest()
		r.Version, r.SASLAuthBytes = v, []byte("\x00user\x00secret")
		resp := send[*kmsg.SASLAuthenticateResponse](t, b, r)
		errCode(t, "sasl authenticate", resp.ErrorCode, kerr.IllegalSaslState)
		if resp.ErrorMessage == nil {
			t.Errorf("v%d: no error message", v)
		}
	}
}

// TestSaslClientFailsClearly: a client configured for SASL/PLAIN gets
// ILLEGAL_SASL_STATE at once, not reconnects until its deadline.
func TestSaslClientFailsClearly(t *testing.T) {
	b := ktest.NewBroker(t)
	cl := b.Client(kgo.SASL(plain.Auth{User: "user", Pass: "secret"}.AsMechanism()))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := cl.Ping(ctx)
	if !errors.Is(err, kerr.IllegalSaslState) {
		t.Fatalf("ping: %v, want ILLEGAL_SASL_STATE", err)
	}
}
