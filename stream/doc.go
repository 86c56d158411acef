// Package stream is a stream-processing library for Gregor, or any
// Kafka cluster, in the spirit of Kafka Streams. It uses only a Kafka
// client (franz-go): no Gregor internals, no extra service.
//
// A program describes a topology with a Builder: sources read topics,
// stateless operations (Filter, Map, MapValues, FlatMap, Peek, Branch,
// Merge) transform records, groupings feed aggregations (Count, Reduce,
// Aggregate, optionally over tumbling or hopping windows) whose results
// are Tables, tables join streams, and sinks (To) write topics:
//
//	b := stream.NewBuilder()
//	lines := stream.Source(b, "lines", stream.String(), stream.String())
//	words := stream.FlatMap(lines, func(_, line string) []stream.KeyValue[string, string] { ... })
//	counts := stream.GroupBy(words, func(_, w string) string { return w },
//		stream.String(), stream.String()).Count("counts")
//	counts.ToStream().To("word-counts", stream.String(), stream.Int64())
//
//	app, err := stream.New(b, stream.Config{ApplicationID: "wordcount", Brokers: brokers,
//		ProcessingGuarantee: stream.ExactlyOnce})
//	err = app.Run(ctx)
//
// # Runtime
//
// New splits the topology into sub-topologies: parts connected by
// record flow or shared state, cut where a key-changing operation
// feeds an aggregation (the records then go through an internal
// repartition topic, "<application.id>-<name>-repartition"). A
// sub-topology runs as one task per partition number of its source
// topics, which must all have the same partition count
// (co-partitioning). All instances of an application form one consumer
// group named by the application ID; the group's balancer (protocol
// "gregor-stream", cooperative) assigns whole tasks, so partition p of
// every source topic of a sub-topology goes to the same instance.
//
// State lives in per-task in-memory stores. Every update is also
// written to the store's compacted changelog topic
// "<application.id>-<store>-changelog" (one partition per task) before
// the input offsets commit; a task that moves to another instance, or
// restarts, rebuilds its stores by reading its changelog partitions to
// their end before it processes a record.
//
// With ExactlyOnce the sink records, changelog updates, repartition
// records and input offsets of a commit interval are one Kafka
// transaction (franz-go's GroupTransactSession, KIP-447), so
// read_committed consumers of the outputs see the effect of each input
// record exactly once, across crashes and rebalances. With AtLeastOnce
// produced records are flushed and then offsets committed: a crash may
// process records again.
//
// docs/STREAMS.md in the repository is the user guide: a tutorial, the
// guarantees, internal topics and what differs from Kafka Streams.
package stream
