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

// ListenAddr returns the host:port of the first client listener in
// listeners (PROTOCOL://host:port; an empty host means every
// interface), when listeners was set.
func (c *BrokerConfig) ListenAddr() (string, bool, error) {
	_, addr, ok, err := c.listener("listeners")
	return addr, ok, err
}

// ListenProtocol returns the security protocol of the client listener:
// PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL.
func (c *BrokerConfig) ListenProtocol() (string, error) {
	proto, _, ok, err := c.listener("listeners")
	if err != nil || !ok {
		return Plaintext, err
	}
	return proto, nil
}

// AdvertisedAddr returns the host:port of the first client listener in
// advertised.listeners, when it was set.
func (c *BrokerConfig) AdvertisedAddr() (string, bool, error) {
	_, addr, ok, err := c.listener("advertised.listeners")
	return addr, ok, err
}

func (c *BrokerConfig) listener(name string) (proto, addr string, ok bool, err error) {
	v, src, set := c.Lookup(name)
	if !set || src == SourceDefault {
		return "", "", false, nil
	}
	for _, l := range SplitList(v) {
		p, a, found := strings.Cut(l, "://")
		if !found {
			continue
		}
		p = strings.ToUpper(p)
		switch p {
		case Plaintext, SSL, SASLPlaintext, SASLSSL:
		default:
			continue // CONTROLLER and other named listeners
		}
		if _, _, err := net.SplitHostPort(a); err != nil {
			return "", "", false, fmt.Errorf("%w: %s=%q: %v", ErrInvalid, name, v, err)
		}
		return p, a, true, nil
	}
	return "", "", false, fmt.Errorf("%w: %s=%q has no PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL listener", ErrInvalid, name, v)
}
