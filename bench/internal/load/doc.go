// Package load drives Kafka workloads against a broker over the wire with
// franz-go's kgo client and measures them: records/s and MB/s of payload,
// the broker process's CPU-seconds per GiB of payload and its resident
// memory (read from /proc, so any broker can be measured the same way),
// the load generator's own CPU (so a client-bound run is visible), and
// end-to-end latency with the send time carried in each record.
//
// Units: MB is 10^6 bytes, GiB is 2^30 bytes; "payload" is record values
// only (no keys, headers or batch framing). Latencies are milliseconds.
package load
