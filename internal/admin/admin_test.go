package admin_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/gregor-streaming/gregor/internal/admin"
	"github.com/gregor-streaming/gregor/internal/batch"
	"github.com/gregor-streaming/gregor/internal/ktest"
	"github.com/gregor-streaming/gregor/internal/metrics"
	"github.com/gregor-streaming/gregor/internal/partlog"
)

// newAdmin serves a ktest broker's admin endpoints.
func newAdmin(t *testing.T, kb *ktest.Broker, opts admin.Options) (*admin.Server, *httptest.Server) {
	t.Helper()
	c := &metrics.Collector{}
	c.SetBroker(kb.B)
	c.SetConns(kb.Server())
	opts.Gatherer = metrics.NewRegistry(c)
	adm := admin.New(opts)
	hs := httptest.NewServer(adm.Handler())
	t.Cleanup(hs.Close)
	return adm, hs
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// scrape fetches /metrics and parses it with Prometheus' own text parser.
func scrape(t *testing.T, base string) map[string]*dto.MetricFamily {
	t.Helper()
	code, body := get(t, base+"/metrics")
	if code != 200 {
		t.Fatalf("/metrics: HTTP %d: %s", code, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v\n%s", err, body)
	}
	return fams
}

// value returns the value of the sample of family name whose labels
// include want (name=value pairs); ok is false when there is none.
func value(fams map[string]*dto.MetricFamily, name string, want ...string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.Metric {
		for i := 0; i+1 < len(want); i += 2 {
			found := false
			for _, lp := range m.Label {
				if lp.GetName() == want[i] && lp.GetValue() == want[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

func mustValue(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	t.Helper()
	v, ok := value(fams, name, labels...)
	if !ok {
		t.Fatalf("no sample %s%v", name, labels)
	}
	return v
}

func buildBatch(t *testing.T, n int, prefix string) []byte {
	t.Helper()
	bb := batch.NewBuilder(batch.CodecNone)
	now := time.Now().UnixMilli()
	for i := range n {
		bb.Add(batch.Record{Timestamp: now, Key: []byte(prefix), Value: []byte(strings.Repeat("v", 10+i))})
	}
	b, err := bb.Build()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestMetricsCountTraffic produces and fetches known batches and checks
// that /metrics reports exactly their records and bytes per topic, and
// that the latency histograms saw the requests.
func TestMetricsCountTraffic(t *testing.T) {
	kb := ktest.NewBroker(t)
	_, hs := newAdmin(t, kb, admin.Options{})
	kb.CreateTopic("metered", 2, nil)
	kb.CreateTopic("idle", 1, nil)
	// Kafka 3.0's versions address topics by name (Produce v9, Fetch v12).
	cl := kb.Client(kgo.MaxVersions(kversion.V3_0_0()))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	// Four produce requests: 3+2 records to partition 0, 200+4 to 1. The
	// fetch sends partition 1's batches from the file (a first batch of
	// over 8 KiB: partlog.SpanMinBatch), partition 0's from memory; both
	// are counted.
	sends := []struct {
		partition int32
		batch     []byte
	}{
		{0, buildBatch(t, 3, "a")},
		{0, buildBatch(t, 2, "b")},
		{1, buildBatch(t, 200, "d")},
		{1, buildBatch(t, 4, "c")},
	}
	if n := len(sends[2].batch); n < partlog.SpanMinBatch {
		t.Fatalf("batch of %d bytes is below the sendfile threshold", n)
	}
	var wantBytes int
	for _, s := range sends {
		wantBytes += len(s.batch)
		req := kmsg.NewPtrProduceRequest()
		req.Acks = -1
		req.TimeoutMillis = 5000
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = "metered"
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition = s.partition
		rp.Records = s.batch
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		if code := resp.Topics[0].Partitions[0].ErrorCode; code != 0 {
			t.Fatalf("produce: error code %d", code)
		}
	}

	// One fetch of everything.
	freq := kmsg.NewPtrFetchRequest()
	freq.ReplicaID = -1
	freq.MaxBytes = 1 << 20
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = "metered"
	for p := range int32(2) {
		fp := kmsg.NewFetchRequestTopicPartition()
		fp.Partition = p
		fp.PartitionMaxBytes = 1 << 20
		ft.Partitions = append(ft.Partitions, fp)
	}
	freq.Topics = append(freq.Topics, ft)
	fresp, err := freq.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	var gotBytes int
	for _, p := range fresp.Topics[0].Partitions {
		gotBytes += len(p.RecordBatches)
	}
	if gotBytes != wantBytes {
		t.Fatalf("fetch returned %d bytes, produced %d", gotBytes, wantBytes)
	}

	fams := scrape(t, hs.URL)
	for _, c := range []struct {
		name string
		want float64
	}{
		{"gregor_topic_records_in_total", 209},
		{"gregor_topic_bytes_in_total", float64(wantBytes)},
		{"gregor_topic_records_out_total", 209},
		{"gregor_topic_bytes_out_total", float64(wantBytes)},
		{"gregor_topic_produce_requests_total", 4},
		{"gregor_topic_failed_produce_requests_total", 0},
		{"gregor_topic_fetch_requests_total", 2}, // one fetch, two partitions
		{"gregor_topic_failed_fetch_requests_total", 0},
	} {
		if got := mustValue(t, fams, c.name, "topic", "metered"); got != c.want {
			t.Errorf("%s{topic=metered} = %v, want %v", c.name, got, c.want)
		}
		if got := mustValue(t, fams, c.name, "topic", "idle"); got != 0 {
			t.Errorf("%s{topic=idle} = %v, want 0", c.name, got)
		}
	}
	if got := mustValue(t, fams, "gregor_requests_total", "request", "Produce"); got != 4 {
		t.Errorf("requests_total{Produce} = %v, want 4", got)
	}
	for _, api := range []string{"Produce", "Fetch", "Metadata", "ApiVersions"} {
		if n := mustValue(t, fams, "gregor_request_duration_seconds", "request", api); n < 1 {
			t.Errorf("request_duration_seconds{%s} has no samples", api)
		}
	}
	if n := mustValue(t, fams, "gregor_log_flush_duration_seconds"); n < 1 {
		t.Errorf("log_flush_duration_seconds has no samples (acks=all produces are fsynced)")
	}
	wantLEO := map[string]float64{"0": 5, "1": 204}
	var logBytes float64
	for p, leo := range wantLEO {
		if got := mustValue(t, fams, "gregor_log_end_offset", "topic", "metered", "partition", p); got != leo {
			t.Errorf("log_end_offset{metered,%s} = %v, want %v", p, got, leo)
		}
		if got := mustValue(t, fams, "gregor_log_high_watermark", "topic", "metered", "partition", p); got != leo {
			t.Errorf("log_high_watermark{metered,%s} = %v, want %v", p, got, leo)
		}
		if got := mustValue(t, fams, "gregor_log_segments", "topic", "metered", "partition", p); got != 1 {
			t.Errorf("log_segments{metered,%s} = %v, want 1", p, got)
		}
		logBytes += mustValue(t, fams, "gregor_log_size_bytes", "topic", "metered", "partition", p)
	}
	if logBytes != float64(wantBytes) {
		t.Errorf("log_size_bytes sums to %v, want the %d bytes produced", logBytes, wantBytes)
	}
	if got := mustValue(t, fams, "gregor_broker_partitions"); got != 3 {
		t.Errorf("broker_partitions = %v, want 3", got)
	}
	if got := mustValue(t, fams, "gregor_server_connections"); got < 1 {
		t.Errorf("server_connections = %v, want >= 1", got)
	}
	for _, op := range []string{"Fetch", "Produce"} {
		if got := mustValue(t, fams, "gregor_purgatory_size", "operation", op); got != 0 {
			t.Errorf("purgatory_size{%s} = %v at rest, want 0", op, got)
		}
	}
	for _, name := range []string{"go_goroutines", "go_memstats_heap_alloc_bytes", "process_cpu_seconds_total"} {
		if _, ok := fams[name]; !ok {
			t.Errorf("no Go runtime metric %s", name)
		}
	}
}

// TestMetricsPurgatoryAndGroups sees a parked fetch in the purgatory
// gauge and a consumer group in the group gauges.
func TestMetricsPurgatoryAndGroups(t *testing.T) {
	kb := ktest.NewBroker(t)
	_, hs := newAdmin(t, kb, admin.Options{})
	kb.CreateTopic("waits", 1, nil)
	cl := kb.Client(
		kgo.ConsumeTopics("waits"),
		kgo.ConsumerGroup("metrics-group"),
		kgo.FetchMaxWait(5*time.Second),
	)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	go func() {
		for ctx.Err() == nil {
			cl.PollFetches(ctx)
		}
	}()

	deadline := time.Now().Add(15 * time.Second)
	for {
		fams := scrape(t, hs.URL)
		parked, _ := value(fams, "gregor_purgatory_size", "operation", "Fetch")
		stable, _ := value(fams, "gregor_groups", "state", "Stable")
		members, _ := value(fams, "gregor_group_members", "group", "metrics-group")
		if parked >= 1 && stable == 1 && members == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("want a parked fetch and one Stable group with one member; got parked=%v stable=%v members=%v", parked, stable, members)
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
}

func TestHealthAndReadiness(t *testing.T) {
	kb := ktest.NewBroker(t)
	adm, hs := newAdmin(t, kb, admin.Options{})
	if code, body := get(t, hs.URL+"/healthz"); code != 200 || strings.TrimSpace(body) != "ok" {
		t.Errorf("/healthz = %d %q", code, body)
	}
	if code, body := get(t, hs.URL+"/readyz"); code != 503 || !strings.Contains(body, "starting") {
		t.Errorf("/readyz before SetReady = %d %q, want 503 starting", code, body)
	}
	adm.SetReady()
	if code, _ := get(t, hs.URL+"/readyz"); code != 200 {
		t.Errorf("/readyz after SetReady = %d", code)
	}
	adm.SetNotReady("shutting down")
	if code, body := get(t, hs.URL+"/readyz"); code != 503 || !strings.Contains(body, "shutting down") {
		t.Errorf("/readyz while shutting down = %d %q", code, body)
	}
	if code, _ := get(t, hs.URL+"/debug/pprof/"); code != 404 {
		t.Errorf("pprof without the flag: HTTP %d, want 404", code)
	}
}

func TestPprofBehindFlag(t *testing.T) {
	kb := ktest.NewBroker(t)
	_, hs := newAdmin(t, kb, admin.Options{Pprof: true})
	if code, body := get(t, hs.URL+"/debug/pprof/goroutine?debug=1"); code != 200 || !strings.Contains(body, "goroutine") {
		t.Errorf("pprof goroutine profile: HTTP %d", code)
	}
}

// TestMetricsPageCacheAdvice: with log.cache.keep.bytes=0 the pages of
// synced segments are released (counted), and a consumer reading from
// the start prefetches ahead (counted); -1 would count neither.
func TestMetricsPageCacheAdvice(t *testing.T) {
	kb := ktest.NewBroker(t, ktest.Set("log.cache.keep.bytes", "0"))
	_, hs := newAdmin(t, kb, admin.Options{})
	kb.CreateTopic("cached", 1, map[string]*string{"segment.bytes": kmsg.StringPtr("1048576")})
	cl := kb.Client(kgo.DefaultProduceTopic("cached"), kgo.ProducerLinger(0), kgo.ProducerBatchCompression(kgo.NoCompression()))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var recs []*kgo.Record
	for range 6000 { // ~6 MiB: several rolled segments
		recs = append(recs, &kgo.Record{Value: make([]byte, 1000)})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	fams := scrape(t, hs.URL)
	if got := mustValue(t, fams, "gregor_log_cache_released_bytes_total"); got < 4<<20 {
		t.Errorf("log_cache_released_bytes_total = %v after 6 MiB synced with a window of 0", got)
	}

	// Read from the start: 1 MiB segments, so each read prefetches the
	// rest of its segment.
	consumer := kb.Client(kgo.ConsumeTopics("cached"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	for n := 0; n < len(recs); {
		fs := consumer.PollFetches(ctx)
		if err := fs.Err(); err != nil {
			t.Fatal(err)
		}
		n += fs.NumRecords()
	}
	fams = scrape(t, hs.URL)
	if got := mustValue(t, fams, "gregor_log_prefetched_bytes_total"); got < 1<<20 {
		t.Errorf("log_prefetched_bytes_total = %v after reading 6 MiB from the start", got)
	}
}

// TestMetricsPreallocation: a partition that syncs small appends on its
// own reserves zeros past its active segment once it holds 1 MiB; the
// metric counts them, the Kafka APIs report the data's size and not the
// file's, and a restart trims the file to its data.
func TestMetricsPreallocation(t *testing.T) {
	kb := ktest.NewBroker(t)
	_, hs := newAdmin(t, kb, admin.Options{})
	kb.CreateTopic("prealloc", 1, nil)
	cl := kb.Client(kgo.DefaultProduceTopic("prealloc"), kgo.ProducerLinger(0), kgo.ProducerBatchCompression(kgo.NoCompression()))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for range 1300 { // ~1.4 MB, one record a sync
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: make([]byte, 1000)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	got := mustValue(t, scrape(t, hs.URL), "gregor_log_preallocated_bytes_total")
	if got < 1<<20 {
		t.Fatalf("log_preallocated_bytes_total = %v after 1.4 MB in one-record syncs", got)
	}
	seg := filepath.Join(kb.Dir, "prealloc-0", "00000000000000000000.log")
	logDirSize := func() int64 {
		t.Helper()
		dirs, err := kb.Admin().DescribeAllLogDirs(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		var size int64
		for _, bds := range dirs {
			if p, ok := bds.LookupPartition("prealloc", 0); ok {
				size += p.Size
			}
		}
		return size
	}
	data := logDirSize()
	fi, err := os.Stat(seg)
	if err != nil {
		t.Fatal(err)
	}
	if data < 1<<20 || fi.Size() <= data || fi.Size() > data+int64(got) {
		t.Fatalf("DescribeLogDirs %d bytes, file %d bytes, %v preallocated", data, fi.Size(), got)
	}
	cl.Close()
	kb.Restart()
	if fi, err := os.Stat(seg); err != nil || fi.Size() != data || logDirSize() != data {
		t.Fatalf("after a restart: file %v bytes (%v), want %d", fi.Size(), err, data)
	}
}
