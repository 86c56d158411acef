package config

import (
	"fmt"
	"net"
	"strings"
)

// DataDir returns the data directory the properties ask for: the first
// entry of log.dirs (Gregor has one log directory), else log.dir. ok is
// false when neither was set, so the caller's default (or flag) applies.
func (c *BrokerConfig) DataDir() (dir string, ok bool) {
	for _, name := range []string{"log.dirs", "log.dir"} {
		if v, src, set := c.Lookup(name); set && src != SourceDefault {
			if dirs := SplitList(v); len(dirs) > 0 {
				return dirs[0], true
			}
		}
	}
	return "", false
}

// Security protocols of client listeners, as Kafka names them.
const (
	Plaintext     = "PLAINTEXT"
	SSL           = "SSL"
	SASLPlaintext = "SASL_PLAINTEXT"
	SASLSSL       = "SASL_SSL"
)

// Listener is one client listener of listeners: its name (the protocol
// itself, or a name listener.security.protocol.map maps to one), its
// security protocol and its host:port (an empty host means every
// interface).
type Listener struct {
	Name, Protocol, Addr string
}

// Listeners returns the client listeners of listeners, in order;
// controller listeners (controller.listener.names) are skipped. ok is
// false when listeners was not set (the caller's --listen applies, with
// PLAINTEXT).
func (c *BrokerConfig) Listeners() (ls []Listener, ok bool, err error) {
	return c.listeners("listeners")
}

// AdvertisedListeners returns advertised.listeners by listener name,
// when it was set.
func (c *BrokerConfig) AdvertisedListeners() (map[string]string, error) {
	ls, ok, err := c.listeners("advertised.listeners")
	if err != nil || !ok {
		return nil, err
	}
	m := map[string]string{}
	for _, l := range ls {
		m[l.Name] = l.Addr
	}
	return m, nil
}

// ListenAddr returns the host:port of the first client listener in
// listeners, when listeners was set.
func (c *BrokerConfig) ListenAddr() (string, bool, error) {
	ls, ok, err := c.Listeners()
	if err != nil || !ok {
		return "", false, err
	}
	return ls[0].Addr, true, nil
}

// ListenProtocol returns the security protocol of the first client
// listener: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL.
func (c *BrokerConfig) ListenProtocol() (string, error) {
	ls, ok, err := c.Listeners()
	if err != nil || !ok {
		return Plaintext, err
	}
	return ls[0].Protocol, nil
}

// AdvertisedAddr returns the host:port of the first client listener in
// advertised.listeners, when it was set.
func (c *BrokerConfig) AdvertisedAddr() (string, bool, error) {
	ls, ok, err := c.listeners("advertised.listeners")
	if err != nil || !ok {
		return "", false, err
	}
	return ls[0].Addr, true, nil
}

// protocolMap is listener.security.protocol.map: listener name to
// security protocol.
func (c *BrokerConfig) protocolMap() (map[string]string, error) {
	m := map[string]string{}
	for _, kv := range SplitList(c.String("listener.security.protocol.map")) {
		name, proto, ok := strings.Cut(kv, ":")
		name, proto = strings.ToUpper(strings.TrimSpace(name)), strings.ToUpper(strings.TrimSpace(proto))
		switch proto {
		case Plaintext, SSL, SASLPlaintext, SASLSSL:
		default:
			return nil, fmt.Errorf("%w: listener.security.protocol.map: %q: want NAME:PROTOCOL with PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL", ErrInvalid, kv)
		}
		if !ok || name == "" {
			return nil, fmt.Errorf("%w: listener.security.protocol.map: %q: want NAME:PROTOCOL", ErrInvalid, kv)
		}
		m[name] = proto
	}
	return m, nil
}

func (c *BrokerConfig) listeners(prop string) ([]Listener, bool, error) {
	v, src, set := c.Lookup(prop)
	if !set || src == SourceDefault {
		return nil, false, nil
	}
	protos, err := c.protocolMap()
	if err != nil {
		return nil, false, err
	}
	controllers := map[string]bool{}
	for _, n := range SplitList(c.String("controller.listener.names")) {
		controllers[strings.ToUpper(n)] = true
	}
	var out []Listener
	seen := map[string]bool{}
	for _, l := range SplitList(v) {
		name, addr, found := strings.Cut(l, "://")
		if !found {
			return nil, false, fmt.Errorf("%w: %s: %q: want NAME://host:port", ErrInvalid, prop, l)
		}
		name = strings.ToUpper(name)
		if controllers[name] {
			continue
		}
		proto, ok := protos[name]
		if !ok {
			return nil, false, fmt.Errorf("%w: %s: listener %s has no security protocol (listener.security.protocol.map)", ErrInvalid, prop, name)
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, false, fmt.Errorf("%w: %s=%q: %v", ErrInvalid, prop, v, err)
		}
		if seen[name] {
			return nil, false, fmt.Errorf("%w: %s: listener %s named twice", ErrInvalid, prop, name)
		}
		seen[name] = true
		out = append(out, Listener{Name: name, Protocol: proto, Addr: addr})
	}
	if len(out) == 0 {
		return nil, false, fmt.Errorf("%w: %s=%q has no client listener", ErrInvalid, prop, v)
	}
	return out, true, nil
}
