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

// ListenAddr returns the host:port of the first PLAINTEXT listener in
// listeners (PLAINTEXT://host:port; an empty host means every
// interface), when listeners was set.
func (c *BrokerConfig) ListenAddr() (string, bool, error) { return c.listener("listeners") }

// AdvertisedAddr returns the host:port of the first PLAINTEXT listener
// in advertised.listeners, when it was set.
func (c *BrokerConfig) AdvertisedAddr() (string, bool, error) {
	return c.listener("advertised.listeners")
}

func (c *BrokerConfig) listener(name string) (string, bool, error) {
	v, src, set := c.Lookup(name)
	if !set || src == SourceDefault {
		return "", false, nil
	}
	for _, l := range SplitList(v) {
		proto, addr, ok := strings.Cut(l, "://")
		if !ok || !strings.EqualFold(proto, "PLAINTEXT") {
			continue // CONTROLLER and TLS/SASL listeners: not served yet
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return "", false, fmt.Errorf("%w: %s=%q: %v", ErrInvalid, name, v, err)
		}
		return addr, true, nil
	}
	return "", false, fmt.Errorf("%w: %s=%q has no PLAINTEXT listener (the only kind Gregor serves yet)", ErrInvalid, name, v)
}
