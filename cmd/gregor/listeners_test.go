package main

import (
	"strings"
	"testing"

	"github.com/gregor-streaming/gregor/internal/config"
)

func TestResolveListeners(t *testing.T) {
	cfg, _, err := config.NewBroker(map[string]string{
		"listeners":                              "INTERNAL://127.0.0.1:9092,EXTERNAL://0.0.0.0:9093",
		"listener.security.protocol.map":         "INTERNAL:PLAINTEXT,EXTERNAL:SASL_SSL",
		"advertised.listeners":                   "EXTERNAL://kafka.example.com:9093",
		"listener.name.external.ssl.client.auth": "required",
	})
	if err != nil {
		t.Fatal(err)
	}
	ls, adv, err := resolveListeners(cfg, "127.0.0.1:7000", "10.0.0.1:7000", map[string]bool{"listen": true, "advertise": true})
	if err != nil || len(ls) != 2 || ls[0].Addr != "127.0.0.1:7000" || adv["INTERNAL"] != "10.0.0.1:7000" || adv["EXTERNAL"] != "kafka.example.com:9093" {
		t.Errorf("resolveListeners = %+v %v %v", ls, adv, err)
	}
	// The controller listener's own settings name a listener that is
	// not a client listener.
	cfg, _, err = config.NewBroker(map[string]string{
		"listeners":                      "PLAINTEXT://:9092,CONTROLLER://:9093",
		"listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:SSL",
		"listener.name.controller.ssl.keystore.location": "/etc/gregor/controller.pem",
	})
	if err != nil {
		t.Fatal(err)
	}
	if ls, _, err := resolveListeners(cfg, "", "", nil); err != nil || len(ls) != 1 {
		t.Errorf("listener.name.controller.*: %+v %v", ls, err)
	}
	ls, _, err = resolveListeners(config.Default(), "127.0.0.1:9092", "", nil)
	if err != nil || len(ls) != 1 || ls[0].Protocol != config.Plaintext || ls[0].Addr != "127.0.0.1:9092" {
		t.Errorf("default: %+v %v", ls, err)
	}
	for bad, want := range map[string]string{
		"advertised.listeners":                  "advertised.listeners names",
		"listener.name.externl.ssl.client.auth": "listener.name.externl",
	} {
		props := map[string]string{"listeners": "PLAINTEXT://:9092", bad: "OTHER://h:1"}
		if bad != "advertised.listeners" {
			props[bad] = "required"
			props["listener.security.protocol.map"] = "PLAINTEXT:PLAINTEXT"
		} else {
			props["listener.security.protocol.map"] = "PLAINTEXT:PLAINTEXT,OTHER:PLAINTEXT"
		}
		cfg, _, err := config.NewBroker(props)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := resolveListeners(cfg, "", "", nil); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v", bad, err)
		}
	}
}
