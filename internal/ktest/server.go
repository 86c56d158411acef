package ktest

import "github.com/gregor-streaming/gregor/internal/server"

// Server returns the running broker's Kafka listener (for metrics and
// connection counts); replaced by Restart.
func (b *Broker) Server() *server.Server { return b.srv }
