// Package metrics holds the broker's instruments and exposes them to
// Prometheus under Kafka-like names (docs/METRICS.md lists them).
//
// The request path only touches plain atomics that live inside the
// objects it already holds: a broker embeds a BrokerStats, each
// partition a PartitionStats. Updating them is an atomic add — no
// allocation, no map lookup, no label building. Everything else (log
// sizes, offsets, group states, connections) is read at scrape time by a
// Collector through the small Source interfaces below, so this package
// imports neither the broker nor the server (layer 0; see DESIGN.md).
package metrics
