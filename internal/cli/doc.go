// Package cli implements gregor's client subcommands — topic, produce,
// consume, group, cluster, user, acl, quota — in the spirit of rpk and
// kcat. They talk to any Kafka-compatible cluster over the wire with
// franz-go (kgo, kadm), never to the broker's internals.
//
// Conventions every command keeps: -b/--brokers (default GREGOR_BROKERS,
// else 127.0.0.1:9092); TLS and SASL flags with environment defaults
// (security.go); human tables on stdout by default and --json for
// scripts; errors as one line on stderr; exit status 0 ok, 1 the
// operation failed, 2 usage, 3 cluster unreachable, 4 not authorized (see
// exitcodes.go); a live rate on stderr for long produce/consume runs when
// it is a terminal.
package cli
