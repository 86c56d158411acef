package server

import (
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/gregor-streaming/gregor/internal/config"
)

// ConfigFrom returns the server settings of the broker properties
// (socket.request.max.bytes, queued.max.requests,
// connections.max.idle.ms, max.connections, max.connections.per.ip and
// its overrides). Security is set per listener (SecurityFor).
func ConfigFrom(cfg *config.BrokerConfig) (Config, error) {
	c := Config{
		MaxRequestSize:      int32(cfg.Int("socket.request.max.bytes")),
		QueuedMaxRequests:   int(cfg.Int("queued.max.requests")),
		IdleTimeout:         time.Duration(cfg.Int("connections.max.idle.ms")) * time.Millisecond,
		MaxConnections:      limit(cfg.Int("max.connections")),
		MaxConnectionsPerIP: limit(cfg.Int("max.connections.per.ip")),
	}
	for _, kv := range config.SplitList(cfg.String("max.connections.per.ip.overrides")) {
		// An IPv6 address holds colons: the count follows the last.
		i := strings.LastIndex(kv, ":")
		if i < 0 {
			return Config{}, fmt.Errorf("%w: max.connections.per.ip.overrides: %q: want IP:COUNT", config.ErrInvalid, kv)
		}
		count, err := strconv.Atoi(strings.TrimSpace(kv[i+1:]))
		ip := strings.Trim(strings.TrimSpace(kv[:i]), "[]")
		if err != nil || count < 0 || net.ParseIP(ip) == nil {
			return Config{}, fmt.Errorf("%w: max.connections.per.ip.overrides: %q: want IP:COUNT", config.ErrInvalid, kv)
		}
		if c.PerIPOverrides == nil {
			c.PerIPOverrides = map[string]int{}
		}
		c.PerIPOverrides[net.ParseIP(ip).String()] = limit(int64(count))
	}
	return c, nil
}

// limit maps a Kafka connection limit to Config's: Int.MaxValue (no
// limit) to 0, and 0 (no connection at all: a per-IP limit of 0 with
// overrides lets only the listed addresses in) to -1.
func limit(n int64) int {
	switch {
	case n >= math.MaxInt32:
		return 0
	case n <= 0:
		return -1
	}
	return int(n)
}
