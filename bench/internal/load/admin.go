package load

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/gregor-streaming/gregor/bench/internal/proc"
)

// ReplicationFactor is the replication factor CreateTopic gives new
// topics: 1 unless a command sets it (loadgen --replication-factor, for
// a cluster).
var ReplicationFactor int16 = 1

// CreateTopic creates topic with the given partitions (ReplicationFactor
// replicas) and topic configs, and returns how long the broker took. An
// existing topic with the same partition count is not an error.
func CreateTopic(ctx context.Context, addr, topic string, partitions int, configs map[string]string) (time.Duration, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ClientID("gregor-bench"))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	adm.SetTimeoutMillis(300_000)
	var cfg map[string]*string
	if len(configs) > 0 {
		cfg = map[string]*string{}
		for k, v := range configs {
			cfg[k] = kadm.StringPtr(v)
		}
	}
	start := time.Now()
	resp, err := adm.CreateTopic(ctx, int32(partitions), ReplicationFactor, cfg, topic)
	took := time.Since(start)
	if err == nil {
		err = resp.Err
	}
	if errors.Is(err, kerr.TopicAlreadyExists) {
		tds, derr := adm.ListTopics(ctx, topic)
		if derr != nil {
			return took, derr
		}
		if n := len(tds[topic].Partitions); n != partitions {
			return took, fmt.Errorf("topic %s exists with %d partitions, want %d", topic, n, partitions)
		}
		return took, nil
	}
	if err != nil {
		return took, fmt.Errorf("create topic %s (%d partitions): %w", topic, partitions, err)
	}
	return took, waitTopic(ctx, adm, topic, partitions)
}

// DeleteTopics deletes topics and waits for the broker's answer.
func DeleteTopics(ctx context.Context, addr string, topics ...string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ClientID("gregor-bench"))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	adm.SetTimeoutMillis(300_000)
	resps, err := adm.DeleteTopics(ctx, topics...)
	if err != nil {
		return err
	}
	return resps.Error()
}

// waitTopic waits until metadata shows every partition with a leader.
func waitTopic(ctx context.Context, adm *kadm.Client, topic string, partitions int) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		tds, err := adm.ListTopics(ctx, topic)
		if err == nil {
			td := tds[topic]
			ok := td.Err == nil && len(td.Partitions) == partitions
			for _, p := range td.Partitions {
				ok = ok && p.Err == nil && p.Leader >= 0
			}
			if ok {
				return nil
			}
			err = fmt.Errorf("topic %s not ready: %v, %d/%d partitions", topic, td.Err, len(td.Partitions), partitions)
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// offsets returns the start and end offset of every partition of topic.
func offsets(ctx context.Context, cl *kgo.Client, topic string) (start, end map[int32]int64, err error) {
	adm := kadm.NewClient(cl)
	so, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		return nil, nil, err
	}
	eo, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, nil, err
	}
	start, end = map[int32]int64{}, map[int32]int64{}
	var firstErr error
	so.Each(func(o kadm.ListedOffset) {
		if o.Err != nil && firstErr == nil {
			firstErr = o.Err
		}
		start[o.Partition] = o.Offset
	})
	eo.Each(func(o kadm.ListedOffset) {
		if o.Err != nil && firstErr == nil {
			firstErr = o.Err
		}
		end[o.Partition] = o.Offset
	})
	if len(end) == 0 && firstErr == nil {
		firstErr = fmt.Errorf("topic %s has no partitions", topic)
	}
	return start, end, firstErr
}

var httpClient = &http.Client{Timeout: 60 * time.Second}

func get(url string) (string, error) {
	resp, err := httpClient.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != 200 {
		return "", fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return string(b), nil
}

// Heap reads the broker's live Go heap. With pprof on the admin port it
// forces a GC and reads HeapAlloc from /debug/pprof/heap?gc=1&debug=1 (the
// exact live heap); else it reads go_memstats_heap_alloc_bytes from
// /metrics (live plus not yet collected garbage). source names which.
func Heap(admin string) (bytes int64, source string, err error) {
	if admin == "" {
		return 0, "", errors.New("no admin address")
	}
	if body, err := get(admin + "/debug/pprof/heap?gc=1&debug=1"); err == nil {
		if v, ok := memstat(body, "# HeapAlloc = "); ok {
			return v, "pprof heap HeapAlloc after forced GC", nil
		}
	}
	body, err := get(admin + "/metrics")
	if err != nil {
		return 0, "", err
	}
	if v, ok := metric(body, "go_memstats_heap_alloc_bytes"); ok {
		return v, "/metrics go_memstats_heap_alloc_bytes (no forced GC)", nil
	}
	return 0, "", errors.New("no heap figure on the admin port")
}

func memstat(body, prefix string) (int64, bool) {
	for line := range strings.Lines(body) {
		if rest, ok := strings.CutPrefix(line, prefix); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(rest), 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}

// metric returns the value of an unlabelled metric in Prometheus text
// format.
func metric(body, name string) (int64, bool) {
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			return int64(f), err == nil
		}
	}
	return 0, false
}

// sampler reads broker memory every interval until stopped.
type sampler struct {
	stop    chan struct{}
	done    chan struct{}
	samples []MemSample
	peak    int64
}

// startSampler samples t's RSS (and heap in use from /metrics when
// withHeap) every interval; interval 0 still tracks peak RSS each second.
func startSampler(t Target, interval time.Duration, withHeap bool) *sampler {
	s := &sampler{stop: make(chan struct{}), done: make(chan struct{})}
	keep := interval > 0
	if interval <= 0 {
		interval = time.Second
	}
	start := time.Now()
	go func() {
		defer close(s.done)
		tk := time.NewTicker(interval)
		defer tk.Stop()
		for {
			if t.PID != 0 {
				st, err := proc.Read(t.PID)
				if err == nil {
					s.peak = max(s.peak, st.RSS)
					if keep {
						ms := MemSample{T: time.Since(start).Seconds(), RSS: st.RSS}
						if withHeap && t.Admin != "" {
							if body, err := get(t.Admin + "/metrics"); err == nil {
								ms.HeapInuse, _ = metric(body, "go_memstats_heap_inuse_bytes")
							}
						}
						s.samples = append(s.samples, ms)
					}
				}
			}
			select {
			case <-s.stop:
				return
			case <-tk.C:
			}
		}
	}()
	return s
}

func (s *sampler) finish(r *Result) {
	close(s.stop)
	<-s.done
	r.Samples = s.samples
	r.BrokerRSSPeak = max(r.BrokerRSSPeak, s.peak)
}
