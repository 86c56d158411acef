// Command loadgen drives one workload against a running Kafka-compatible
// broker and reports records/s, MB/s, the broker's CPU-seconds per GiB of
// payload (from /proc/PID/stat), its RSS, and the load generator's own CPU.
//
//	loadgen produce --brokers 127.0.0.1:9092 --topic t --partitions 8 --size 100
//	loadgen consume --brokers 127.0.0.1:9092 --topic t
//	loadgen e2e     --brokers 127.0.0.1:9092 --topic lat --rate 10000 --size 1024
//
// The broker process is found from the listener's port (--pid overrides
// it; --pid -1 skips broker readings). --admin points at the broker's
// admin HTTP port for heap samples.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/gregor-streaming/gregor/bench/internal/load"
	"github.com/gregor-streaming/gregor/bench/internal/proc"
	"github.com/gregor-streaming/gregor/bench/internal/report"
)

const usage = `Usage: loadgen produce|consume|e2e [flags]

  produce   throughput (or a fixed --rate) of acknowledged records
  consume   read a topic from its earliest offsets to its current end
  e2e       end-to-end latency at a fixed --rate (send time in the record)

Run 'loadgen CMD -h' for a command's flags.
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	var err error
	switch os.Args[1] {
	case "produce":
		err = produce(ctx, os.Args[2:])
	case "consume":
		err = consume(ctx, os.Args[2:])
	case "e2e":
		err = e2e(ctx, os.Args[2:])
	case "-h", "-help", "--help", "help":
		fmt.Print(usage)
		return
	default:
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

// common holds the flags every command has.
type common struct {
	brokers, admin, jsonOut string
	pid                     int
	// Security of the measuring clients.
	tlsCA, saslMechanism, saslUser, saslPassword string
}

func (c *common) register(fs *flag.FlagSet) {
	fs.StringVar(&c.brokers, "brokers", "127.0.0.1:9092", "broker HOST:PORT")
	fs.IntVar(&c.pid, "pid", 0, "broker PID for /proc readings (0: the process listening on the broker port; -1: none)")
	fs.StringVar(&c.admin, "admin", "", "broker admin base URL for heap samples, e.g. http://127.0.0.1:9644")
	fs.StringVar(&c.jsonOut, "json", "", "also write the result as JSON to this file (- for stdout)")
	fs.StringVar(&c.tlsCA, "tls-ca", "", "connect with TLS, trusting the CA certificates in this PEM file")
	fs.StringVar(&c.saslMechanism, "sasl-mechanism", "", "authenticate with PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (--sasl-user, --sasl-password)")
	fs.StringVar(&c.saslUser, "sasl-user", "", "SASL user")
	fs.StringVar(&c.saslPassword, "sasl-password", "", "SASL password")
}

// security returns the client options for --tls-ca and --sasl-*.
func (c *common) security() ([]kgo.Opt, error) {
	var opts []kgo.Opt
	if c.tlsCA != "" {
		pem, err := os.ReadFile(c.tlsCA)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--tls-ca %s: no PEM certificate", c.tlsCA)
		}
		opts = append(opts, kgo.DialTLSConfig(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}))
	}
	a := scram.Auth{User: c.saslUser, Pass: c.saslPassword}
	switch strings.ToUpper(c.saslMechanism) {
	case "":
	case "PLAIN":
		opts = append(opts, kgo.SASL(plain.Auth{User: c.saslUser, Pass: c.saslPassword}.AsMechanism()))
	case "SCRAM-SHA-256":
		opts = append(opts, kgo.SASL(a.AsSha256Mechanism()))
	case "SCRAM-SHA-512":
		opts = append(opts, kgo.SASL(a.AsSha512Mechanism()))
	default:
		return nil, fmt.Errorf("--sasl-mechanism %q: want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", c.saslMechanism)
	}
	return opts, nil
}

func (c *common) target() (load.Target, error) {
	t := load.Target{Name: "broker", Addr: c.brokers, Admin: strings.TrimSuffix(c.admin, "/")}
	var err error
	if t.ClientOpts, err = c.security(); err != nil {
		return t, err
	}
	switch {
	case c.pid > 0:
		t.PID = c.pid
	case c.pid == 0:
		_, port, err := net.SplitHostPort(c.brokers)
		if err != nil {
			return t, err
		}
		p, _ := strconv.Atoi(port)
		pid, err := proc.ListenerPID(p)
		if err != nil {
			return t, fmt.Errorf("%w (pass --pid, or --pid -1 to skip broker readings)", err)
		}
		t.PID = pid
	}
	return t, nil
}

func (c *common) finish(r *load.Result, err error) error {
	if r != nil {
		report.Print(os.Stdout, r)
		if c.jsonOut != "" {
			b, _ := json.MarshalIndent(r, "", "  ")
			b = append(b, '\n')
			if c.jsonOut == "-" {
				os.Stdout.Write(b)
			} else if werr := os.WriteFile(c.jsonOut, b, 0o644); werr != nil && err == nil {
				err = werr
			}
		}
	}
	return err
}

func producerFlags(fs *flag.FlagSet, pc *load.ProducerConfig) {
	fs.IntVar(&pc.Acks, "acks", pc.Acks, "required acks: -1 (all), 0, 1")
	fs.DurationVar(&pc.Linger, "linger", pc.Linger, "producer linger")
	fs.IntVar(&pc.BatchMaxBytes, "batch-max-bytes", pc.BatchMaxBytes, "max bytes of one record batch")
	fs.StringVar(&pc.Compression, "compression", pc.Compression, "none, gzip, snappy, lz4, zstd")
	fs.BoolVar(&pc.Idempotent, "idempotent", pc.Idempotent, "idempotent producer (needs --acks -1)")
	fs.IntVar(&pc.MaxBuffered, "max-buffered", pc.MaxBuffered, "max records buffered per client")
	fs.IntVar(&pc.MaxInflight, "max-inflight", pc.MaxInflight, "max produce requests in flight per broker (non-idempotent only)")
	fs.StringVar(&pc.Partitioner, "partitioner", pc.Partitioner, "rr (round robin), sticky (kgo default), uniform (sticky without adaptive partition choice)")
}

// gcFlag registers --gogc, the load generator's own GOGC while it
// measures.
func gcFlag(fs *flag.FlagSet, p *int) {
	fs.IntVar(p, "gogc", load.DefaultGCPercent, "the load generator's own GOGC while it measures (-1: leave it as GOGC says)")
}

// topicFlags registers the topic configs set when a command creates its
// topic; the returned func reads them after parsing.
func topicFlags(fs *flag.FlagSet) func() map[string]string {
	retention := fs.Int64("retention-bytes", 0, "topic retention.bytes per partition when creating it (0: broker default); keeps long runs within disk")
	segment := fs.Int64("segment-bytes", 0, "topic segment.bytes when creating it (0: broker default)")
	rf := fs.Int("replication-factor", 1, "replicas per partition when creating the topic (a cluster)")
	minISR := fs.Int("min-insync-replicas", 0, "topic min.insync.replicas when creating it (0: broker default)")
	return func() map[string]string {
		load.ReplicationFactor = int16(*rf)
		m := map[string]string{}
		if *minISR > 0 {
			m["min.insync.replicas"] = strconv.Itoa(*minISR)
		}
		if *retention > 0 {
			m["retention.bytes"] = strconv.FormatInt(*retention, 10)
		}
		if *segment > 0 {
			m["segment.bytes"] = strconv.FormatInt(*segment, 10)
		}
		return m
	}
}

func produce(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("produce", flag.ExitOnError)
	var c common
	c.register(fs)
	w := load.Produce{Producer: load.DefaultProducer()}
	fs.StringVar(&w.Topic, "topic", "bench", "topic")
	fs.IntVar(&w.Partitions, "partitions", 8, "create the topic with this many partitions (0: use an existing topic)")
	fs.IntVar(&w.RecordSize, "size", 100, "record value bytes")
	fs.IntVar(&w.Producers, "producers", 1, "concurrent producer clients")
	fs.Float64Var(&w.Rate, "rate", 0, "total records/s (0: as fast as possible)")
	fs.DurationVar(&w.Warmup, "warmup", 2*time.Second, "unmeasured warm-up")
	fs.DurationVar(&w.Duration, "duration", 10*time.Second, "measured duration")
	fs.DurationVar(&w.SampleEvery, "sample", 0, "sample broker RSS (and heap with --admin) at this interval, e.g. 10s")
	gcFlag(fs, &w.GCPercent)
	topicConfigs := topicFlags(fs)
	producerFlags(fs, &w.Producer)
	fs.Parse(args)
	w.TopicConfigs = topicConfigs()
	t, err := c.target()
	if err != nil {
		return err
	}
	name := fmt.Sprintf("produce %dB %dp x%d %s", w.RecordSize, w.Partitions, w.Producers, w.Producer)
	r, err := w.Run(ctx, t, name)
	return c.finish(r, err)
}

func consume(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("consume", flag.ExitOnError)
	var c common
	c.register(fs)
	var w load.Consume
	fs.StringVar(&w.Topic, "topic", "bench", "topic")
	fs.DurationVar(&w.MinDuration, "min-duration", 5*time.Second, "repeat passes from earliest until this long")
	fs.IntVar(&w.MaxPasses, "max-passes", 0, "stop after this many passes (0: no limit)")
	fetchMax := fs.Int("fetch-max-bytes", 0, "kgo FetchMaxBytes (0: kgo default)")
	partMax := fs.Int("fetch-max-partition-bytes", 0, "kgo FetchMaxPartitionBytes (0: kgo default)")
	gcFlag(fs, &w.GCPercent)
	fs.Parse(args)
	w.FetchMaxBytes, w.FetchMaxPartitionBytes = int32(*fetchMax), int32(*partMax)
	t, err := c.target()
	if err != nil {
		return err
	}
	r, err := w.Run(ctx, t, "consume "+w.Topic)
	return c.finish(r, err)
}

func e2e(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("e2e", flag.ExitOnError)
	var c common
	c.register(fs)
	w := load.E2E{Producer: load.DefaultProducer()}
	w.Producer.Linger = 0
	fs.StringVar(&w.Topic, "topic", "bench-e2e", "topic")
	fs.IntVar(&w.Partitions, "partitions", 1, "create the topic with this many partitions (0: use an existing topic)")
	fs.IntVar(&w.RecordSize, "size", 1024, "record value bytes (at least 8: the send time)")
	fs.Float64Var(&w.Rate, "rate", 1000, "records/s")
	fs.DurationVar(&w.Warmup, "warmup", 2*time.Second, "unmeasured warm-up")
	fs.DurationVar(&w.Duration, "duration", 10*time.Second, "measured duration")
	fs.DurationVar(&w.SampleEvery, "sample", 0, "sample broker RSS (and heap with --admin) at this interval, e.g. 10s")
	gcFlag(fs, &w.GCPercent)
	topicConfigs := topicFlags(fs)
	producerFlags(fs, &w.Producer)
	fs.Parse(args)
	w.TopicConfigs = topicConfigs()
	t, err := c.target()
	if err != nil {
		return err
	}
	r, err := w.Run(ctx, t, fmt.Sprintf("e2e %dB %.0f/s", w.RecordSize, w.Rate))
	return c.finish(r, err)
}
