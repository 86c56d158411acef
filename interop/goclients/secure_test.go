package goclients

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"
	xscram "github.com/xdg-go/scram"
)

// The suite's SASL_SSL broker (GREGOR_SECURE_ADDR, its CA in
// GREGOR_TLS_CA): user alice, password alice-secret, with SCRAM-SHA-256
// and SCRAM-SHA-512 credentials, a super user of the broker's
// StandardAuthorizer; user bob (bob-secret) has only the ACLs a case
// grants him (sarama_acl_test.go).

func secureTLS(t *testing.T) (string, *tls.Config) {
	t.Helper()
	a, ca := os.Getenv("GREGOR_SECURE_ADDR"), os.Getenv("GREGOR_TLS_CA")
	if a == "" || ca == "" {
		t.Fatal("GREGOR_SECURE_ADDR and GREGOR_TLS_CA are not set: run interop/run.sh")
	}
	pem, err := os.ReadFile(ca)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatal("no certificate in GREGOR_TLS_CA")
	}
	return a, &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
}

// TestSaramaSASL: sarama over TLS with PLAIN after a v0 handshake
// (sarama's default: the tokens travel as bare frames), PLAIN after a v1
// handshake (SaslAuthenticate) and SCRAM-SHA-512; a wrong password is
// refused.
func TestSaramaSASL(t *testing.T) {
	secureAddr, tc := secureTLS(t)
	cases := []struct {
		name      string
		mechanism sarama.SASLMechanism
		version   int16
	}{
		{"plain-v0", sarama.SASLTypePlaintext, sarama.SASLHandshakeV0},
		{"plain-v1", sarama.SASLTypePlaintext, sarama.SASLHandshakeV1},
		{"scram-sha-512", sarama.SASLTypeSCRAMSHA512, sarama.SASLHandshakeV1},
	}
	config := func(mech sarama.SASLMechanism, version int16, password string) *sarama.Config {
		cfg := saramaConfig(sarama.V3_6_0_0, "interop-sarama-sasl")
		cfg.Net.TLS.Enable, cfg.Net.TLS.Config = true, tc
		cfg.Net.SASL.Enable, cfg.Net.SASL.Mechanism, cfg.Net.SASL.Version = true, mech, version
		cfg.Net.SASL.User, cfg.Net.SASL.Password = "alice", password
		// sarama refuses a v0 handshake after ApiVersions (which a v0
		// client of Kafka before 1.0 could not send).
		cfg.ApiVersionsRequest = version != sarama.SASLHandshakeV0
		if mech == sarama.SASLTypeSCRAMSHA512 {
			cfg.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &xdgSCRAM{hash: xscram.SHA512} }
		}
		cfg.Metadata.Retry.Max = 0
		return cfg
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			topic := "sarama-sasl-" + c.name
			cfg := config(c.mechanism, c.version, "alice-secret")
			p, err := sarama.NewSyncProducer([]string{secureAddr}, cfg)
			if err != nil {
				t.Fatalf("producer: %v", err)
			}
			const n = 50
			for i := range n {
				if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: topic, Partition: 0, Value: sarama.StringEncoder(fmt.Sprintf("v-%05d", i))}); err != nil {
					t.Fatalf("send %d: %v", i, err)
				}
			}
			p.Close()
			cons, err := sarama.NewConsumer([]string{secureAddr}, cfg)
			if err != nil {
				t.Fatalf("consumer: %v", err)
			}
			defer cons.Close()
			pc, err := cons.ConsumePartition(topic, 0, sarama.OffsetOldest)
			if err != nil {
				t.Fatal(err)
			}
			defer pc.Close()
			for i := range n {
				select {
				case m := <-pc.Messages():
					if string(m.Value) != fmt.Sprintf("v-%05d", i) {
						t.Fatalf("record %d: %q", i, m.Value)
					}
				case err := <-pc.Errors():
					t.Fatalf("consume: %v", err)
				case <-time.After(30 * time.Second):
					t.Fatalf("consumed %d of %d", i, n)
				}
			}
			if _, err := sarama.NewClient([]string{secureAddr}, config(c.mechanism, c.version, "wrong")); err == nil {
				t.Error("a wrong password connected")
			}
		})
	}
}

// xdgSCRAM is sarama's SCRAMClient on github.com/xdg-go/scram, as
// sarama's own example does.
type xdgSCRAM struct {
	hash xscram.HashGeneratorFcn
	conv *xscram.ClientConversation
}

func (x *xdgSCRAM) Begin(user, password, authzID string) error {
	c, err := x.hash.NewClient(user, password, authzID)
	if err != nil {
		return err
	}
	x.conv = c.NewConversation()
	return nil
}

func (x *xdgSCRAM) Step(challenge string) (string, error) { return x.conv.Step(challenge) }
func (x *xdgSCRAM) Done() bool                            { return x.conv.Done() }

// TestKafkaGoSASL: kafka-go over TLS with PLAIN and SCRAM-SHA-256 writes
// and reads back records; a wrong password is refused.
func TestKafkaGoSASL(t *testing.T) {
	secureAddr, tc := secureTLS(t)
	mechs := map[string]func(password string) sasl.Mechanism{
		"plain": func(p string) sasl.Mechanism { return plain.Mechanism{Username: "alice", Password: p} },
		"scram-sha-256": func(p string) sasl.Mechanism {
			m, err := scram.Mechanism(scram.SHA256, "alice", p)
			if err != nil {
				t.Fatal(err)
			}
			return m
		},
	}
	for name, mech := range mechs {
		t.Run(name, func(t *testing.T) {
			topic := "kafka-go-sasl-" + name
			transport := &kafka.Transport{TLS: tc, SASL: mech("alice-secret"), ClientID: "interop-kafka-go-sasl"}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cl := &kafka.Client{Addr: kafka.TCP(secureAddr), Transport: transport}
			if _, err := cl.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{Topic: topic, NumPartitions: 1, ReplicationFactor: 1}}}); err != nil {
				t.Fatalf("create topic: %v", err)
			}
			w := &kafka.Writer{Addr: kafka.TCP(secureAddr), Topic: topic, RequiredAcks: kafka.RequireAll, BatchTimeout: 5 * time.Millisecond, Transport: transport}
			const n = 50
			var msgs []kafka.Message
			for i := range n {
				msgs = append(msgs, kafka.Message{Value: []byte(fmt.Sprintf("v-%05d", i))})
			}
			if err := w.WriteMessages(ctx, msgs...); err != nil {
				t.Fatalf("write: %v", err)
			}
			w.Close()
			r := kafka.NewReader(kafka.ReaderConfig{
				Brokers: []string{secureAddr}, Topic: topic, Partition: 0, MaxWait: 200 * time.Millisecond,
				Dialer: &kafka.Dialer{TLS: tc, SASLMechanism: mech("alice-secret"), ClientID: "interop-kafka-go-sasl", Timeout: 10 * time.Second},
			})
			defer r.Close()
			for i := range n {
				m, err := r.ReadMessage(ctx)
				if err != nil {
					t.Fatalf("read %d: %v", i, err)
				}
				if string(m.Value) != fmt.Sprintf("v-%05d", i) {
					t.Fatalf("record %d: %q", i, m.Value)
				}
			}
			bad := &kafka.Client{Addr: kafka.TCP(secureAddr), Transport: &kafka.Transport{TLS: tc, SASL: mech("wrong")}}
			_, err := bad.Metadata(ctx, &kafka.MetadataRequest{})
			var ke kafka.Error
			if err == nil || (errors.As(err, &ke) && ke != kafka.SASLAuthenticationFailed) {
				t.Errorf("wrong password: %v", err)
			}
		})
	}
}
