package cli

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

var produceCmd = &command{
	name:    "produce",
	args:    "TOPIC [FILE...] [flags]",
	summary: "write records from stdin or files to a topic",
	help: `Produces one record per line of stdin, or of each FILE ("-" is stdin).
With --key-delim each line is split at the first delimiter into key and
value. The topic is created on first use if the cluster allows it
(auto.create.topics.enable). Records are acknowledged by all in-sync
replicas (--acks all) and written idempotently unless --acks says
otherwise. Prints what was written; on a terminal, a live rate.

Examples:
  echo 'hello' | gregor produce events
  printf 'k1:v1\nk2:v2\n' | gregor produce events --key-delim :
  gregor produce events data.txt -H source=import -H version=2
  gregor produce events -p 0 --acks 1 -z zstd < big.log
  printf 'a\0b\0' | gregor produce events --delim '\0'`,
	setup: func(r *runner, fs *flag.FlagSet) func([]string) error {
		key := fs.String("key", "", "key for every record")
		fs.StringVar(key, "k", "", "short for --key")
		keyDelim := fs.String("key-delim", "", "split each record at the first `DELIM` into key and value (escapes like \\t allowed)")
		var headers multiFlag
		fs.Var(&headers, "header", "record header `KEY=VALUE` (repeatable)")
		fs.Var(&headers, "H", "short for --header")
		partition := fs.Int("partition", -1, "write every record to this partition (default: by key hash, or sticky when unkeyed)")
		fs.IntVar(partition, "p", -1, "short for --partition")
		acks := fs.String("acks", "all", "acknowledgement: all (-1), 1 (leader) or 0 (none)")
		compression := fs.String("compression", "none", "batch compression: none, gzip, snappy, lz4, zstd")
		fs.StringVar(compression, "z", "none", "short for --compression")
		delim := fs.String("delim", `\n`, "record delimiter (escapes like \\n, \\0 allowed)")
		maxBytes := fs.Int("max-record-bytes", 1<<20, "longest record accepted from the input")
		return func(args []string) error {
			if len(args) == 0 {
				return usagef("name the topic to produce to")
			}
			topic, files := args[0], args[1:]
			if len(files) == 0 {
				files = []string{"-"}
			}
			recDelim, err := unescape("--delim", *delim)
			if err != nil {
				return err
			}
			if len(recDelim) == 0 {
				return usagef("--delim must not be empty")
			}
			var kDelim []byte
			if *keyDelim != "" {
				if kDelim, err = unescape("--key-delim", *keyDelim); err != nil {
					return err
				}
			}
			hdrMap, hdrOrder, err := keyValues("--header", headers)
			if err != nil {
				return err
			}
			var hdrs []kgo.RecordHeader
			for _, k := range hdrOrder {
				hdrs = append(hdrs, kgo.RecordHeader{Key: k, Value: []byte(hdrMap[k])})
			}
			// A record the cluster keeps refusing with a retriable error
			// (NOT_ENOUGH_REPLICAS, say) fails after --timeout with that
			// error instead of being retried for ever.
			opts := []kgo.Opt{kgo.DefaultProduceTopic(topic), kgo.AllowAutoTopicCreation(), kgo.ProducerLinger(5 * time.Millisecond),
				kgo.RecordDeliveryTimeout(r.timeout)}
			switch strings.ToLower(*acks) {
			case "all", "-1":
				opts = append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))
			case "1", "leader":
				opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
			case "0", "none":
				opts = append(opts, kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite())
			default:
				return usagef("--acks %q: want all, 1 or 0", *acks)
			}
			codec, err := compressionCodec(*compression)
			if err != nil {
				return err
			}
			opts = append(opts, kgo.ProducerBatchCompression(codec))
			if *partition >= 0 {
				opts = append(opts, kgo.RecordPartitioner(kgo.ManualPartitioner()))
			}
			inputs, closeAll, err := openInputs(r.env.Stdin, files)
			if err != nil {
				return err
			}
			defer closeAll()

			cl, err := r.client(opts...)
			if err != nil {
				return err
			}
			defer cl.Close()

			stdinOnly := len(files) == 1 && files[0] == "-"
			prog := startProgress(r.env.Stderr, "produced", r.env.StderrTTY && !(stdinOnly && r.env.StdinTTY))
			defer prog.finish()
			sum := newProduceSummary(topic)
			ctx := r.ctx
			for _, in := range inputs {
				sc := bufio.NewScanner(in.r)
				sc.Buffer(make([]byte, 64<<10), *maxBytes+len(recDelim))
				sc.Split(splitOn(recDelim))
				for sc.Scan() {
					line := sc.Bytes()
					rec := &kgo.Record{Topic: topic, Headers: hdrs}
					if *key != "" {
						rec.Key = []byte(*key)
					}
					if kDelim != nil {
						if k, v, ok := bytes.Cut(line, kDelim); ok {
							rec.Key, line = bytes.Clone(k), v
						}
					}
					rec.Value = bytes.Clone(line)
					if *partition >= 0 {
						rec.Partition = int32(*partition)
					}
					size := int64(len(rec.Key) + len(rec.Value))
					cl.Produce(ctx, rec, func(rec *kgo.Record, err error) {
						sum.add(rec, err)
						if err == nil {
							prog.add(1, size)
						}
					})
					if ctx.Err() != nil {
						break
					}
				}
				if err := sc.Err(); err != nil {
					if errors.Is(err, bufio.ErrTooLong) {
						err = fmt.Errorf("a record is longer than --max-record-bytes %d", *maxBytes)
					}
					cl.Flush(context.Background())
					return fmt.Errorf("reading %s: %w", in.name, err)
				}
			}
			if err := cl.Flush(ctx); err != nil {
				return err
			}
			prog.finish()
			return sum.report(r)
		}
	},
}

type input struct {
	name string
	r    io.Reader
}

// openInputs opens the files to read, "-" being stdin, all up front so
// a missing file fails before anything is produced.
func openInputs(stdin io.Reader, files []string) ([]input, func(), error) {
	var ins []input
	var closers []io.Closer
	closeAll := func() {
		for _, c := range closers {
			c.Close()
		}
	}
	for _, f := range files {
		if f == "-" {
			ins = append(ins, input{"stdin", stdin})
			continue
		}
		fh, err := os.Open(f)
		if err != nil {
			closeAll()
			return nil, nil, &failedError{msg: err.Error()}
		}
		closers = append(closers, fh)
		ins = append(ins, input{f, fh})
	}
	return ins, closeAll, nil
}

// splitOn is a bufio.SplitFunc for records ending in delim; the last
// record may lack it.
func splitOn(delim []byte) bufio.SplitFunc {
	return func(data []byte, atEOF bool) (int, []byte, error) {
		if i := bytes.Index(data, delim); i >= 0 {
			return i + len(delim), data[:i], nil
		}
		if atEOF && len(data) > 0 {
			return len(data), data, nil
		}
		return 0, nil, nil
	}
}

// unescape reads a delimiter given with Go/C escapes: \n, \t, \0, \x1f.
func unescape(flagName, s string) ([]byte, error) {
	s = strings.ReplaceAll(s, `\0`, `\x00`)
	u, err := strconv.Unquote(`"` + strings.ReplaceAll(s, `"`, `\"`) + `"`)
	if err != nil {
		return nil, usagef("%s %q: bad escape", flagName, s)
	}
	return []byte(u), nil
}

func compressionCodec(name string) (kgo.CompressionCodec, error) {
	switch strings.ToLower(name) {
	case "none", "":
		return kgo.NoCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	}
	return kgo.CompressionCodec{}, usagef("--compression %q: want none, gzip, snappy, lz4 or zstd", name)
}

// produceSummary gathers the outcome of every record's promise.
type produceSummary struct {
	topic string
	mu    sync.Mutex
	parts map[int32]*partOffsets
	n     int64
	bytes int64
	// failed counts failures; firstErr is the first.
	failed   int64
	firstErr error
}

type partOffsets struct {
	first, last int64
	records     int64
}

func newProduceSummary(topic string) *produceSummary {
	return &produceSummary{topic: topic, parts: map[int32]*partOffsets{}}
}

func (s *produceSummary) add(rec *kgo.Record, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.failed++
		if s.firstErr == nil {
			s.firstErr = err
		}
		return
	}
	s.n++
	s.bytes += int64(len(rec.Key) + len(rec.Value))
	p := s.parts[rec.Partition]
	if p == nil {
		p = &partOffsets{first: rec.Offset, last: rec.Offset}
		s.parts[rec.Partition] = p
	}
	p.first, p.last = min(p.first, rec.Offset), max(p.last, rec.Offset)
	p.records++
}

func (s *produceSummary) report(r *runner) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]int32, 0, len(s.parts))
	for id := range s.parts {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	if r.json {
		type part struct {
			Partition   int32 `json:"partition"`
			Records     int64 `json:"records"`
			FirstOffset int64 `json:"first_offset"`
			LastOffset  int64 `json:"last_offset"`
		}
		out := struct {
			Topic      string `json:"topic"`
			Records    int64  `json:"records"`
			Bytes      int64  `json:"bytes"`
			Failed     int64  `json:"failed"`
			Error      string `json:"error,omitempty"`
			Partitions []part `json:"partitions"`
		}{Topic: s.topic, Records: s.n, Bytes: s.bytes, Failed: s.failed, Partitions: []part{}}
		if s.firstErr != nil {
			out.Error = s.firstErr.Error()
		}
		for _, id := range ids {
			p := s.parts[id]
			out.Partitions = append(out.Partitions, part{id, p.records, p.first, p.last})
		}
		if err := printJSON(r.env.Stdout, out); err != nil {
			return err
		}
	} else {
		var where []string
		for _, id := range ids {
			p := s.parts[id]
			if p.first < 0 { // acks=0: no offsets
				where = append(where, fmt.Sprintf("partition %d", id))
			} else {
				where = append(where, fmt.Sprintf("partition %d offsets %d-%d", id, p.first, p.last))
			}
		}
		line := fmt.Sprintf("produced %d %s (%s) to %s", s.n, plural(s.n, "record"), humanBytes(s.bytes), s.topic)
		if len(where) > 0 {
			line += ": " + strings.Join(where, ", ")
		}
		fmt.Fprintln(r.env.Stdout, line)
	}
	if s.failed > 0 {
		err := s.firstErr
		if errors.Is(err, kerr.UnknownTopicOrPartition) {
			err = fmt.Errorf("unknown topic %q (create it with 'gregor topic create %s')", s.topic, s.topic)
		}
		if isConnError(err) {
			return &unreachableError{brokers: r.brokers, err: err}
		}
		var ke *kerr.Error
		if errors.As(err, &ke) && isAuthError(ke) {
			return err
		}
		msg := fmt.Sprintf("%d %s failed: %v", s.failed, plural(s.failed, "record"), err)
		if errors.Is(err, kgo.ErrRecordTimeout) {
			// The client retried a refusal it took for passing; say
			// what such refusals usually are.
			msg += fmt.Sprintf(" (not acknowledged within --timeout %s: the partition had no leader, or refused them retriably, e.g. NOT_ENOUGH_REPLICAS with acks all and min.insync.replicas above the in-sync replicas)", r.timeout)
		}
		return &failedError{msg: msg}
	}
	return nil
}

func plural(n int64, noun string) string {
	if n == 1 {
		return noun
	}
	return noun + "s"
}
