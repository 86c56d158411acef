package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

var consumeCmd = &command{
	name:    "consume",
	args:    "TOPIC... [flags]",
	summary: "read records from topics, alone or in a consumer group",
	help: `Consumes records and prints them, one per line by default (the value).
Without -g it reads the partitions directly from -o (default: the start);
with -g it joins consumer group GROUP, starts at the group's committed
offsets (-o applies to partitions without one) and commits what it printed.

Offsets (-o): start, end, N (exact offset), -N (N before the end of each
partition), @TIME (the first record at or after TIME: RFC 3339, Unix
milliseconds, or -DURATION ago, e.g. @-1h).

Format (-f) verbs: %t topic, %p partition, %o offset, %k key, %v value,
%T timestamp (Unix ms), %d timestamp (RFC 3339), %h headers (k=v,…),
%K key length, %V value length, %% a percent sign; escapes \n \t \\.

Examples:
  gregor consume events -e                      # everything so far, then exit
  gregor consume events -o end                  # new records only; Ctrl-C stops
  gregor consume events -o -10 -e               # the last 10 of each partition
  gregor consume events -o @-15m -f '%p/%o %k=%v\n'
  gregor consume events -g billing -n 100 --json
  gregor consume events --read-committed -e`,
	setup: func(r *runner, fs *flag.FlagSet) func([]string) error {
		group := fs.String("group", "", "consume as a member of consumer `GROUP`, committing offsets")
		fs.StringVar(group, "g", "", "short for --group")
		offset := fs.String("offset", "start", "where to start: start, end, N, -N, @TIME")
		fs.StringVar(offset, "o", "start", "short for --offset")
		partsFlag := fs.String("partitions", "", "comma-separated partitions to read (not with -g)")
		fs.StringVar(partsFlag, "p", "", "short for --partitions")
		num := fs.Int("num", 0, "exit after `N` records")
		fs.IntVar(num, "n", 0, "short for --num")
		exitAtEnd := fs.Bool("exit", false, "exit at the end of the partitions (their ends when the command starts)")
		fs.BoolVar(exitAtEnd, "e", false, "short for --exit")
		format := fs.String("format", `%v\n`, "output template (see above)")
		fs.StringVar(format, "f", `%v\n`, "short for --format")
		readCommitted := fs.Bool("read-committed", false, "skip records of aborted and open transactions")
		return func(topics []string) error {
			if len(topics) == 0 {
				return usagef("name at least one topic")
			}
			if *group != "" && *partsFlag != "" {
				return usagef("--partitions cannot be used with --group: the group assigns partitions")
			}
			start, err := parseStartOffset(*offset)
			if err != nil {
				return err
			}
			tmpl, err := parseFormat(*format)
			if err != nil {
				return err
			}
			var onlyParts map[int32]bool
			if *partsFlag != "" {
				parts, err := parseIDs("--partitions", *partsFlag)
				if err != nil {
					return err
				}
				onlyParts = map[int32]bool{}
				for _, p := range parts {
					onlyParts[p] = true
				}
			}
			c := &consumer{r: r, topics: topics, group: *group, start: start, onlyParts: onlyParts,
				num: *num, exitAtEnd: *exitAtEnd, tmpl: tmpl, readCommitted: *readCommitted}
			return c.run()
		}
	},
}

// startOffset is a parsed -o.
type startOffset struct {
	kind     string // "start", "end", "exact", "fromEnd", "time"
	n        int64
	atMillis int64
}

func parseStartOffset(s string) (startOffset, error) {
	switch strings.ToLower(s) {
	case "start", "beginning", "oldest", "earliest":
		return startOffset{kind: "start"}, nil
	case "end", "newest", "latest":
		return startOffset{kind: "end"}, nil
	}
	if t, ok := strings.CutPrefix(s, "@"); ok {
		ms, err := parseTime(t)
		if err != nil {
			return startOffset{}, usagef("-o %q: %v", s, err)
		}
		return startOffset{kind: "time", atMillis: ms}, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return startOffset{}, usagef("-o %q: want start, end, N, -N or @TIME", s)
	}
	if n < 0 || strings.HasPrefix(s, "-") {
		return startOffset{kind: "fromEnd", n: -n}, nil
	}
	return startOffset{kind: "exact", n: n}, nil
}

// parseTime reads RFC 3339, Unix milliseconds, or -DURATION (ago).
func parseTime(s string) (int64, error) {
	if d, ok := strings.CutPrefix(s, "-"); ok {
		dur, err := time.ParseDuration(d)
		if err != nil {
			return 0, fmt.Errorf("bad duration %q", d)
		}
		return time.Now().Add(-dur).UnixMilli(), nil
	}
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		return ms, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UnixMilli(), nil
		}
	}
	return 0, errors.New("want RFC 3339 (2024-05-01T12:00:00Z), Unix milliseconds or -DURATION")
}

// kgoOffset is the reset offset of a group consumer.
func (s startOffset) kgoOffset() kgo.Offset {
	switch s.kind {
	case "end":
		return kgo.NewOffset().AtEnd()
	case "exact":
		return kgo.NewOffset().At(s.n)
	case "fromEnd":
		return kgo.NewOffset().AtEnd().Relative(-s.n)
	case "time":
		return kgo.NewOffset().AfterMilli(s.atMillis)
	}
	return kgo.NewOffset().AtStart()
}

type consumer struct {
	r             *runner
	topics        []string
	group         string
	start         startOffset
	onlyParts     map[int32]bool
	num           int
	exitAtEnd     bool
	tmpl          []formatPart
	readCommitted bool
}

type tp struct {
	topic     string
	partition int32
}

func (c *consumer) run() error {
	r := c.r
	adm, actx, done, err := r.admin()
	if err != nil {
		return err
	}
	defer done()
	md, err := adm.ListTopicsWithInternal(actx, c.topics...)
	if err != nil {
		return r.wrap(err, "Metadata")
	}
	for _, t := range c.topics {
		if d, ok := md[t]; !ok || d.Err != nil {
			if ok && !errors.Is(d.Err, kerr.UnknownTopicOrPartition) {
				return fmt.Errorf("topic %q: %w", t, d.Err)
			}
			return &failedError{msg: fmt.Sprintf("unknown topic %q", t)}
		}
	}
	// Resolve where each partition starts and, for -e, ends. Doing it
	// here (not via the client's reset policy) makes -e exact: a
	// partition with nothing to read is done at once.
	var ends kadm.ListedOffsets
	if c.exitAtEnd {
		if c.readCommitted {
			ends, err = adm.ListCommittedOffsets(actx, c.topics...)
		} else {
			ends, err = adm.ListEndOffsets(actx, c.topics...)
		}
		if err != nil {
			return r.wrap(err, "ListOffsets")
		}
	}
	starts, err := c.resolveStarts(actx, adm, md)
	if err != nil {
		return err
	}
	// remaining holds the partitions still to be read up to their end
	// (with -e); position tracks where each one is.
	remaining := map[tp]int64{}
	if c.exitAtEnd {
		ends.Each(func(o kadm.ListedOffset) {
			if o.Err != nil || (c.onlyParts != nil && !c.onlyParts[o.Partition]) {
				return
			}
			k := tp{o.Topic, o.Partition}
			if st, ok := starts[k]; !ok || st < o.Offset {
				remaining[k] = o.Offset
			}
		})
		if len(remaining) == 0 {
			return nil
		}
	}

	// Control records (transaction markers) are never printed, but the
	// last offset before a partition's end is often one: -e needs to see
	// it.
	opts := []kgo.Opt{kgo.FetchMaxWait(500 * time.Millisecond), kgo.KeepControlRecords()}
	if c.readCommitted {
		opts = append(opts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	}
	if c.group != "" {
		opts = append(opts, kgo.ConsumerGroup(c.group), kgo.ConsumeTopics(c.topics...),
			kgo.ConsumeResetOffset(c.start.kgoOffset()), kgo.AutoCommitMarks())
	} else {
		parts := map[string]map[int32]kgo.Offset{}
		for k, off := range starts {
			if parts[k.topic] == nil {
				parts[k.topic] = map[int32]kgo.Offset{}
			}
			parts[k.topic][k.partition] = kgo.NewOffset().At(off)
		}
		opts = append(opts, kgo.ConsumePartitions(parts))
	}
	cl, err := r.client(opts...)
	if err != nil {
		return err
	}
	defer cl.Close()

	out := bufio.NewWriterSize(r.env.Stdout, 64<<10)
	defer out.Flush()
	prog := startProgress(r.env.Stderr, "consumed", r.env.StderrTTY && !r.env.StdoutTTY)
	defer prog.finish()

	ctx := r.ctx
	var printed int
	var buf []byte
	finish := func() error {
		out.Flush()
		prog.finish()
		if c.group == "" {
			return nil
		}
		cctx, cancel := context.WithTimeout(context.Background(), r.timeout)
		defer cancel()
		if err := cl.CommitMarkedOffsets(cctx); err != nil {
			return fmt.Errorf("committing offsets of group %q: %w", c.group, err)
		}
		return nil
	}
	for {
		fetches := cl.PollRecords(ctx, 10000)
		if fetches.IsClientClosed() || ctx.Err() != nil {
			return finish()
		}
		var fatal error
		fetches.EachError(func(t string, p int32, err error) {
			if errors.Is(err, context.Canceled) || fatal != nil {
				return
			}
			switch {
			case isConnError(err):
				fatal = &unreachableError{brokers: r.brokers, err: err}
			case errors.Is(err, kerr.UnknownTopicOrPartition):
				fatal = &failedError{msg: fmt.Sprintf("topic %q partition %d: %v", t, p, err)}
			default:
				var ke *kerr.Error
				if errors.As(err, &ke) && !ke.Retriable {
					fatal = fmt.Errorf("topic %q partition %d: %w", t, p, err)
				}
			}
		})
		if fatal != nil {
			finish()
			return fatal
		}
		stop := false
		fetches.EachRecord(func(rec *kgo.Record) {
			if stop {
				return
			}
			k := tp{rec.Topic, rec.Partition}
			if c.exitAtEnd {
				end, ok := remaining[k]
				if !ok || rec.Offset >= end {
					return // beyond the end we are to stop at
				}
				if rec.Offset+1 >= end {
					delete(remaining, k)
				}
			}
			if rec.Attrs.IsControl() {
				return // kept only to see the end of transactional partitions
			}
			buf = c.format(buf[:0], rec)
			out.Write(buf)
			prog.add(1, int64(len(rec.Key)+len(rec.Value)))
			if c.group != "" {
				cl.MarkCommitRecords(rec)
			}
			printed++
			if c.num > 0 && printed >= c.num {
				stop = true
			}
		})
		out.Flush()
		if stop || (c.exitAtEnd && len(remaining) == 0) {
			return finish()
		}
	}
}

// resolveStarts turns -o into an exact offset per partition (direct
// consumers), or, for a group, the committed offset else -o's (for -e).
func (c *consumer) resolveStarts(ctx context.Context, adm *kadm.Client, md kadm.TopicDetails) (map[tp]int64, error) {
	r := c.r
	out := map[tp]int64{}
	logStarts, err := adm.ListStartOffsets(ctx, c.topics...)
	if err != nil {
		return nil, r.wrap(err, "ListOffsets")
	}
	var listed kadm.ListedOffsets
	switch c.start.kind {
	case "end", "fromEnd":
		listed, err = adm.ListEndOffsets(ctx, c.topics...)
	case "time":
		listed, err = adm.ListOffsetsAfterMilli(ctx, c.start.atMillis, c.topics...)
	}
	if err != nil {
		return nil, r.wrap(err, "ListOffsets")
	}
	var committed kadm.OffsetResponses
	if c.group != "" {
		if committed, err = adm.FetchOffsetsForTopics(ctx, c.group, c.topics...); err != nil {
			return nil, r.wrap(err, "OffsetFetch")
		}
	}
	for _, t := range c.topics {
		for p := range md[t].Partitions {
			if c.onlyParts != nil && !c.onlyParts[p] {
				continue
			}
			k := tp{t, p}
			low := int64(0)
			if o, ok := logStarts.Lookup(t, p); ok && o.Err == nil {
				low = o.Offset
			}
			var off int64
			switch c.start.kind {
			case "start":
				off = low
			case "exact":
				off = max(c.start.n, low)
			case "end", "fromEnd", "time":
				o, ok := listed.Lookup(t, p)
				if !ok || o.Err != nil {
					continue
				}
				off = o.Offset
				if c.start.kind == "fromEnd" {
					off = max(off-c.start.n, low)
				}
				if c.start.kind == "time" && off < 0 { // no record that late: the end
					if e, ok := listed.Lookup(t, p); ok {
						off = e.Offset
					}
				}
			}
			if c.group != "" {
				if o, ok := committed.Lookup(t, p); ok && o.Err == nil && o.At >= 0 {
					off = o.At
				}
			}
			out[k] = off
		}
	}
	return out, nil
}

// formatPart is a piece of a -f template: literal text or a verb.
type formatPart struct {
	lit  string
	verb byte
}

func parseFormat(s string) ([]formatPart, error) {
	var parts []formatPart
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			parts = append(parts, formatPart{lit: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case ch == '\\' && i+1 < len(s):
			i++
			switch s[i] {
			case 'n':
				lit.WriteByte('\n')
			case 't':
				lit.WriteByte('\t')
			case 'r':
				lit.WriteByte('\r')
			case '0':
				lit.WriteByte(0)
			case '\\':
				lit.WriteByte('\\')
			default:
				lit.WriteByte('\\')
				lit.WriteByte(s[i])
			}
		case ch == '%' && i+1 < len(s):
			i++
			switch v := s[i]; v {
			case '%':
				lit.WriteByte('%')
			case 't', 'p', 'o', 'k', 'v', 'T', 'd', 'h', 'K', 'V':
				flush()
				parts = append(parts, formatPart{verb: v})
			default:
				return nil, usagef("--format: unknown verb %%%c (see --help)", v)
			}
		default:
			lit.WriteByte(ch)
		}
	}
	flush()
	return parts, nil
}

// recordJSON is a consumed record in --json output, one per line.
type recordJSON struct {
	Topic     string       `json:"topic"`
	Partition int32        `json:"partition"`
	Offset    int64        `json:"offset"`
	Timestamp int64        `json:"timestamp"`
	Key       *string      `json:"key"`
	Value     *string      `json:"value"`
	Headers   []headerJSON `json:"headers"`
	// Encoding is "base64" when key or value is not UTF-8 and is
	// given base64-encoded; absent for text.
	Encoding string `json:"encoding,omitempty"`
}

type headerJSON struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

func (c *consumer) format(dst []byte, rec *kgo.Record) []byte {
	if c.r.json {
		j := recordJSON{Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset,
			Timestamp: rec.Timestamp.UnixMilli(), Headers: []headerJSON{}}
		binary := (rec.Key != nil && !utf8.Valid(rec.Key)) || (rec.Value != nil && !utf8.Valid(rec.Value))
		enc := func(b []byte) *string {
			if b == nil {
				return nil
			}
			var s string
			if binary {
				bs, _ := json.Marshal(b) // base64, quoted
				s = string(bs[1 : len(bs)-1])
			} else {
				s = string(b)
			}
			return &s
		}
		j.Key, j.Value = enc(rec.Key), enc(rec.Value)
		if binary {
			j.Encoding = "base64"
		}
		for _, h := range rec.Headers {
			j.Headers = append(j.Headers, headerJSON{h.Key, string(h.Value)})
		}
		b, _ := json.Marshal(j)
		return append(append(dst, b...), '\n')
	}
	for _, p := range c.tmpl {
		switch p.verb {
		case 0:
			dst = append(dst, p.lit...)
		case 't':
			dst = append(dst, rec.Topic...)
		case 'p':
			dst = strconv.AppendInt(dst, int64(rec.Partition), 10)
		case 'o':
			dst = strconv.AppendInt(dst, rec.Offset, 10)
		case 'k':
			dst = append(dst, rec.Key...)
		case 'v':
			dst = append(dst, rec.Value...)
		case 'T':
			dst = strconv.AppendInt(dst, rec.Timestamp.UnixMilli(), 10)
		case 'd':
			dst = rec.Timestamp.UTC().AppendFormat(dst, time.RFC3339Nano)
		case 'K':
			dst = strconv.AppendInt(dst, int64(len(rec.Key)), 10)
		case 'V':
			dst = strconv.AppendInt(dst, int64(len(rec.Value)), 10)
		case 'h':
			for i, h := range rec.Headers {
				if i > 0 {
					dst = append(dst, ',')
				}
				dst = append(dst, h.Key...)
				dst = append(dst, '=')
				dst = append(dst, h.Value...)
			}
		}
	}
	return dst
}
