package config

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// TestParseJAAS: Kafka's sasl.jaas.config form, quoted values with
// escapes, and what is refused.
func TestParseJAAS(t *testing.T) {
	module, opts, err := ParseJAAS(`org.apache.kafka.common.security.plain.PlainLoginModule required
		username="broker" password="se;cr=et \"x\" \\" user_alice=alice-secret;`)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"username": "broker", "password": `se;cr=et "x" \`, "user_alice": "alice-secret"}
	if module != plainLoginModule || !reflect.DeepEqual(opts, want) {
		t.Errorf("got %q %q, want %q %q", module, opts, plainLoginModule, want)
	}
	for _, bad := range []string{
		``,
		`org.apache.kafka.common.security.plain.PlainLoginModule required username="broker"`,
		`org.apache.kafka.common.security.plain.PlainLoginModule mandatory username="broker";`,
		`org.apache.kafka.common.security.plain.PlainLoginModule required username;`,
		`org.apache.kafka.common.security.plain.PlainLoginModule required username="broker;`,
		`org.apache.kafka.common.security.plain.PlainLoginModule required username=="x";`,
		`A required; B required;`,
	} {
		if _, _, err := ParseJAAS(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	// Checked when set, under its listener and mechanism.
	if _, _, err := NewBroker(map[string]string{"listener.name.sasl_ssl.plain.sasl.jaas.config": "nonsense"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("a malformed listener.name.*.plain.sasl.jaas.config: %v", err)
	}
	c, unknown, err := NewBroker(map[string]string{"listener.name.SASL_SSL.SCRAM-SHA-512.sasl.jaas.config": scramLoginModule + ` required username="b" password="p";`})
	if err != nil || len(unknown) != 0 {
		t.Fatalf("%v, unknown %v", err, unknown)
	}
	if got := c.ListenerOverrideNames(); !reflect.DeepEqual(got, []string{"sasl_ssl"}) {
		t.Errorf("ListenerOverrideNames = %v", got)
	}
	if _, unknown, _ := NewBroker(map[string]string{"listener.name.sasl_ssl.gssapi.sasl.jaas.config": "x"}); len(unknown) != 1 {
		t.Errorf("GSSAPI credentials: unknown %v, want reported", unknown)
	}
}

// TestInterBroker: the inter-broker listener and its credentials from
// Kafka's properties, and the combinations refused at start.
func TestInterBroker(t *testing.T) {
	const (
		plainJAAS = plainLoginModule + ` required username="broker" password="broker-secret" user_alice="x";`
		scramJAAS = scramLoginModule + ` required username="broker" password="broker-secret";`
	)
	two := map[string]string{
		"listeners":                      "EXTERNAL://:9092,INTERNAL://:9093,CONTROLLER://:9094",
		"listener.security.protocol.map": "EXTERNAL:SASL_SSL,INTERNAL:SASL_PLAINTEXT,CONTROLLER:SSL,SSL:SSL,SASL_SSL:SASL_SSL",
		"sasl.enabled.mechanisms":        "PLAIN,SCRAM-SHA-512",
	}
	with := func(base map[string]string, kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	for _, tc := range []struct {
		name  string
		props map[string]string
		want  InterBroker
		err   string // in the error; "" for none
	}{
		{"default: PLAINTEXT without listeners", nil, InterBroker{Listener: Listener{Name: Plaintext, Protocol: Plaintext}}, ""},
		{"default: the first listener", with(two, "listener.name.external.plain.sasl.jaas.config", plainJAAS),
			InterBroker{Listener: Listener{"EXTERNAL", SASLSSL, ":9092"}, Mechanism: "PLAIN", Username: "broker", Password: "broker-secret", IgnoredOptions: []string{"user_alice"}}, ""},
		{"by name, SCRAM", with(two, "inter.broker.listener.name", "internal", "sasl.mechanism.inter.broker.protocol", "SCRAM-SHA-512",
			"listener.name.internal.scram-sha-512.sasl.jaas.config", scramJAAS),
			InterBroker{Listener: Listener{"INTERNAL", SASLPlaintext, ":9093"}, Mechanism: "SCRAM-SHA-512", Username: "broker", Password: "broker-secret"}, ""},
		{"by protocol", map[string]string{"listeners": "PLAINTEXT://:9092,SSL://:9093", "security.inter.broker.protocol": "SSL"},
			InterBroker{Listener: Listener{"SSL", SSL, ":9093"}}, ""},
		{"both", with(two, "inter.broker.listener.name", "INTERNAL", "security.inter.broker.protocol", "SASL_PLAINTEXT"), InterBroker{}, "mutually exclusive"},
		{"no such listener", with(two, "inter.broker.listener.name", "REPLICATION"), InterBroker{}, "no listener REPLICATION"},
		{"no listener named after the protocol", with(two, "security.inter.broker.protocol", "SASL_SSL"), InterBroker{}, "no listener named SASL_SSL"},
		{"the controller listener", with(two, "inter.broker.listener.name", "CONTROLLER"), InterBroker{}, "controller listener"},
		{"no credentials", two, InterBroker{}, "listener.name.external.plain.sasl.jaas.config"},
		{"credentials of another mechanism", with(two, "listener.name.external.scram-sha-512.sasl.jaas.config", scramJAAS), InterBroker{}, "listener.name.external.plain.sasl.jaas.config"},
		{"mechanism not enabled", with(two, "sasl.mechanism.inter.broker.protocol", "SCRAM-SHA-256"), InterBroker{}, "not enabled"},
		{"mechanism enabled elsewhere only", with(two, "listener.name.external.sasl.enabled.mechanisms", "SCRAM-SHA-512"), InterBroker{}, "not enabled on the inter-broker listener EXTERNAL"},
		{"wrong login module", with(two, "listener.name.external.plain.sasl.jaas.config", scramJAAS), InterBroker{}, "want " + plainLoginModule},
		{"no password", with(two, "listener.name.external.plain.sasl.jaas.config", plainLoginModule+` required username="broker";`), InterBroker{}, "needs username and password"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _, err := NewBroker(tc.props)
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.InterBroker()
			if tc.err != "" {
				if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want ErrInvalid containing %q", err, tc.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
	if _, _, err := NewBroker(map[string]string{"security.inter.broker.protocol": "TLS"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("security.inter.broker.protocol=TLS: %v", err)
	}
	if _, _, err := NewBroker(map[string]string{"sasl.mechanism.inter.broker.protocol": "GSSAPI"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("sasl.mechanism.inter.broker.protocol=GSSAPI: %v", err)
	}
}

// TestControllerListener: the first of controller.listener.names with
// its mapped protocol, PLAINTEXT when unmapped; SASL refused, naming
// the setting.
func TestControllerListener(t *testing.T) {
	for _, tc := range []struct {
		props map[string]string
		want  Listener
		err   string
	}{
		{nil, Listener{Name: "CONTROLLER", Protocol: Plaintext}, ""},
		{map[string]string{"listener.security.protocol.map": "CONTROLLER:SSL,PLAINTEXT:PLAINTEXT"}, Listener{Name: "CONTROLLER", Protocol: SSL}, ""},
		{map[string]string{"controller.listener.names": "raft,OTHER", "listener.security.protocol.map": "RAFT:SSL"}, Listener{Name: "RAFT", Protocol: SSL}, ""},
		{map[string]string{"listener.security.protocol.map": "CONTROLLER:SASL_SSL"}, Listener{}, "listener.security.protocol.map"},
		{map[string]string{"listener.security.protocol.map": "CONTROLLER:SASL_PLAINTEXT"}, Listener{}, "SASL on the controller listener is not supported"},
		{map[string]string{"controller.listener.names": " "}, Listener{}, "controller.listener.names"},
	} {
		c, _, err := NewBroker(tc.props)
		if err != nil {
			t.Fatal(err)
		}
		got, err := c.ControllerListener()
		if tc.err != "" {
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%v: %v, want ErrInvalid containing %q", tc.props, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%v: %+v %v, want %+v", tc.props, got, err, tc.want)
		}
	}
}
