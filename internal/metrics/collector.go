package metrics

import (
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// PartitionInfo is what a Collector reads of one partition at scrape
// time.
type PartitionInfo struct {
	Topic     string
	Partition int32
	// Size is the bytes of the partition's segment files; Segments
	// their number.
	Size     int64
	Segments int
	// Invariant: LogStartOffset <= HighWatermark <= LogEndOffset.
	LogStartOffset, HighWatermark, LogEndOffset int64
	// Stats are the partition's traffic counters; nil = none.
	Stats *PartitionStats
	// Leader is set when this broker leads the partition;
	// UnderReplicated when it does and the ISR is smaller than the
	// replica set.
	Leader, UnderReplicated bool
}

// GroupInfo is what a Collector reads of one consumer group.
type GroupInfo struct {
	Group string
	// State is Kafka's state name: Empty, PreparingRebalance,
	// CompletingRebalance, Stable, Dead; Assigning and Reconciling for
	// KIP-848 consumer groups.
	State   string
	Members int
}

// GroupStates are Kafka's group states (classic, then KIP-848 consumer
// groups' own), always exported (as 0 when no group is in them) so
// dashboards and alerts see the series.
var GroupStates = []string{"Empty", "PreparingRebalance", "CompletingRebalance", "Stable", "Dead", "Assigning", "Reconciling"}

// BrokerSource is the broker as a Collector sees it.
type BrokerSource interface {
	// Stats returns the broker's request-path instruments. Never nil.
	Stats() *BrokerStats
	// CollectPartitions calls fn for every partition the broker hosts.
	CollectPartitions(fn func(PartitionInfo))
	// CollectGroups calls fn for every consumer group the broker coordinates.
	CollectGroups(fn func(GroupInfo))
	// NodeID and ClusterID identify the broker.
	NodeID() int32
	ClusterID() string
}

// ConnSource is the Kafka listener as a Collector sees it.
type ConnSource interface {
	// Connections is the number of open client connections.
	Connections() int64
	// ConnectionsAccepted is the number accepted since start.
	ConnectionsAccepted() int64
	// Authentications counts SASL authentications since start.
	Authentications() (succeeded, failed int64)
	// ConnectionsRejected counts connections closed at accept for
	// max.connections.per.ip.
	ConnectionsRejected() int64
}

// Collector exports a broker's metrics. Sources are attached once they
// exist (the admin port serves while logs are still recovering), so a
// scrape before that shows only the Go runtime and process metrics.
type Collector struct {
	broker atomic.Pointer[BrokerSource]
	conns  atomic.Pointer[ConnSource]
}

// SetBroker attaches the broker.
func (c *Collector) SetBroker(b BrokerSource) { c.broker.Store(&b) }

// SetConns attaches the listener.
func (c *Collector) SetConns(s ConnSource) { c.conns.Store(&s) }

// NewRegistry returns a Prometheus registry holding c and the Go runtime,
// process and build-info collectors.
func NewRegistry(c *Collector) *prometheus.Registry {
	r := prometheus.NewRegistry()
	r.MustRegister(
		c,
		collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(collectors.MetricsGC, collectors.MetricsMemory, collectors.MetricsScheduler)),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewBuildInfoCollector(),
	)
	return r
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("gregor_"+name, help, labels, nil)
}

// The metric descriptions; docs/METRICS.md lists them with their Kafka
// counterparts, and a test checks that it lists every one.
var (
	descBrokerInfo = desc("broker_info", "Constant 1, labelled with the broker's node ID and cluster ID.", "node_id", "cluster_id")
	descPartitions = desc("broker_partitions", "Partitions hosted by this broker (Kafka: ReplicaManager PartitionCount).")
	descLeaders    = desc("broker_leader_partitions", "Partitions this broker leads (Kafka: ReplicaManager LeaderCount).")
	descUnderRepl  = desc("broker_under_replicated_partitions", "Partitions this broker leads whose ISR is smaller than their replica set (Kafka: ReplicaManager UnderReplicatedPartitions).")

	descBytesIn     = desc("topic_bytes_in_total", "Bytes of record batches appended by produce requests (Kafka: BrokerTopicMetrics BytesInPerSec).", "topic")
	descRecordsIn   = desc("topic_records_in_total", "Records appended by produce requests (Kafka: BrokerTopicMetrics MessagesInPerSec).", "topic")
	descBytesOut    = desc("topic_bytes_out_total", "Bytes of record batches sent in fetch responses (Kafka: BrokerTopicMetrics BytesOutPerSec).", "topic")
	descRecordsOut  = desc("topic_records_out_total", "Records in the batches sent in fetch responses.", "topic")
	descProduceReqs = desc("topic_produce_requests_total", "Partition appends requested by produce requests (Kafka: BrokerTopicMetrics TotalProduceRequestsPerSec).", "topic")
	descProduceFail = desc("topic_failed_produce_requests_total", "Partition appends that failed (Kafka: BrokerTopicMetrics FailedProduceRequestsPerSec).", "topic")
	descFetchReqs   = desc("topic_fetch_requests_total", "Partitions answered in fetch responses (Kafka: BrokerTopicMetrics TotalFetchRequestsPerSec).", "topic")
	descFetchFail   = desc("topic_failed_fetch_requests_total", "Partitions answered with an error in fetch responses (Kafka: BrokerTopicMetrics FailedFetchRequestsPerSec).", "topic")

	descRequests = desc("requests_total", "Requests answered, by API (Kafka: RequestMetrics RequestsPerSec).", "request")
	descLatency  = desc("request_duration_seconds", "Time from reading a request to handing its response to the writer, by API (Kafka: RequestMetrics TotalTimeMs).", "request")

	descPurgatory = desc("purgatory_size", "Requests parked: fetches waiting for data, produce appends waiting for fsync (Kafka: DelayedOperationPurgatory PurgatorySize).", "operation")

	descLogSize         = desc("log_size_bytes", "Bytes of data in the partition's segments (Kafka: Log Size); the files can hold more (log_preallocated_bytes_total).", "topic", "partition")
	descLogSegments     = desc("log_segments", "Segments of the partition (Kafka: Log NumLogSegments).", "topic", "partition")
	descLogStart        = desc("log_start_offset", "The partition's log start offset (Kafka: Log LogStartOffset).", "topic", "partition")
	descLogEnd          = desc("log_end_offset", "The partition's log end offset (Kafka: Log LogEndOffset).", "topic", "partition")
	descHW              = desc("log_high_watermark", "The partition's high watermark: the offset consumers read up to.", "topic", "partition")
	descFsync           = desc("log_flush_duration_seconds", "Duration of log fsyncs; one group commit is one observation (Kafka: LogFlushStats LogFlushRateAndTimeMs).")
	descCacheReleased   = desc("log_cache_released_bytes_total", "Bytes of durable segment data released from the page cache behind the writers (log.cache.budget.bytes).")
	descCachePrefetched = desc("log_prefetched_bytes_total", "Bytes of segment files prefetched for readers further behind the log end than their share of log.cache.budget.bytes: roughly what consumers read from disk.")
	descPreallocated    = desc("log_preallocated_bytes_total", "Bytes of zeros written past active segments' data, so that the small durable appends of partitions synced on their own do not grow their files; trimmed when the segment rolls or closes.")

	descGroups       = desc("groups", "Consumer groups by state (Kafka: GroupMetadataManager NumGroups<State>).", "state")
	descGroupMembers = desc("group_members", "Members of a consumer group.", "group")

	descConns         = desc("server_connections", "Open client connections (Kafka: socket-server-metrics connection-count).")
	descConnsAccepted = desc("server_connections_accepted_total", "Client connections accepted (Kafka: socket-server-metrics connection-creation-total).")
	descConnsRejected = desc("server_connections_rejected_total", "Client connections closed at accept because their IP address had max.connections.per.ip open (Kafka logs TooManyConnectionsException).")
	descAuth          = desc("server_sasl_authentications_total", "SASL authentications by result, success or failure (Kafka: successful-authentication-total, failed-authentication-total).", "result")
)

var allDescs = []*prometheus.Desc{
	descBrokerInfo, descPartitions, descLeaders, descUnderRepl,
	descBytesIn, descRecordsIn, descBytesOut, descRecordsOut,
	descProduceReqs, descProduceFail, descFetchReqs, descFetchFail,
	descRequests, descLatency, descPurgatory,
	descLogSize, descLogSegments, descLogStart, descLogEnd, descHW, descFsync,
	descCacheReleased, descCachePrefetched, descPreallocated,
	descGroups, descGroupMembers, descConns, descConnsAccepted, descConnsRejected, descAuth,
}

// apiNames caches kmsg's API names by key (Kafka's request= label).
var apiNames = sync.OnceValue(func() (names [MaxAPIKey + 1]string) {
	for k := range names {
		names[k] = kmsg.NameForKey(int16(k))
		if names[k] == "Unknown" || names[k] == "" {
			names[k] = "Unknown" + strconv.Itoa(k)
		}
	}
	return names
})

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range allDescs {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	histogram := func(d *prometheus.Desc, h *Histogram, labels ...string) {
		n, sum, buckets := h.Snapshot()
		ch <- prometheus.MustNewConstHistogram(d, n, sum, buckets, labels...)
	}

	if p := c.conns.Load(); p != nil {
		s := *p
		gauge(descConns, float64(s.Connections()))
		counter(descConnsAccepted, float64(s.ConnectionsAccepted()))
		counter(descConnsRejected, float64(s.ConnectionsRejected()))
		ok, failed := s.Authentications()
		counter(descAuth, float64(ok), "success")
		counter(descAuth, float64(failed), "failure")
	}
	p := c.broker.Load()
	if p == nil {
		return
	}
	b := *p
	gauge(descBrokerInfo, 1, strconv.Itoa(int(b.NodeID())), b.ClusterID())

	st := b.Stats()
	names := apiNames()
	for k := range st.Requests.keys {
		h := &st.Requests.keys[k].latency
		if h.Count() == 0 {
			continue // only APIs that were called: no 80 empty series
		}
		histogram(descLatency, h, names[k])
		counter(descRequests, float64(h.Count()), names[k])
	}
	histogram(descFsync, &st.Fsync)
	counter(descCacheReleased, float64(st.CacheReleased.Load()))
	counter(descCachePrefetched, float64(st.CachePrefetched.Load()))
	counter(descPreallocated, float64(st.Preallocated.Load()))
	gauge(descPurgatory, float64(st.FetchPurgatory.Load()), "Fetch")
	gauge(descPurgatory, float64(st.ProducePurgatory.Load()), "Produce")

	topics := map[string]*Totals{}
	var order []string
	partitions := 0
	var leaders, underReplicated int
	b.CollectPartitions(func(pi PartitionInfo) {
		partitions++
		if pi.Leader {
			leaders++
		}
		if pi.UnderReplicated {
			underReplicated++
		}
		part := strconv.Itoa(int(pi.Partition))
		gauge(descLogSize, float64(pi.Size), pi.Topic, part)
		gauge(descLogSegments, float64(pi.Segments), pi.Topic, part)
		gauge(descLogStart, float64(pi.LogStartOffset), pi.Topic, part)
		gauge(descLogEnd, float64(pi.LogEndOffset), pi.Topic, part)
		gauge(descHW, float64(pi.HighWatermark), pi.Topic, part)
		t := topics[pi.Topic]
		if t == nil {
			t = &Totals{}
			topics[pi.Topic] = t
			order = append(order, pi.Topic)
		}
		if pi.Stats != nil {
			t.add(pi.Stats.Load())
		}
	})
	gauge(descPartitions, float64(partitions))
	gauge(descLeaders, float64(leaders))
	gauge(descUnderRepl, float64(underReplicated))
	for _, name := range order {
		t := topics[name]
		counter(descBytesIn, float64(t.BytesIn), name)
		counter(descRecordsIn, float64(t.RecordsIn), name)
		counter(descBytesOut, float64(t.BytesOut), name)
		counter(descRecordsOut, float64(t.RecordsOut), name)
		counter(descProduceReqs, float64(t.ProduceRequests), name)
		counter(descProduceFail, float64(t.FailedProduceRequests), name)
		counter(descFetchReqs, float64(t.FetchRequests), name)
		counter(descFetchFail, float64(t.FailedFetchRequests), name)
	}

	byState := make(map[string]int, len(GroupStates))
	for _, s := range GroupStates {
		byState[s] = 0
	}
	b.CollectGroups(func(g GroupInfo) {
		byState[g.State]++
		gauge(descGroupMembers, float64(g.Members), g.Group)
	})
	for s, n := range byState {
		gauge(descGroups, float64(n), s)
	}
}
