package load

import (
	"github.com/twmb/franz-go/pkg/kgo"

	"fmt"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/gregor-streaming/gregor/bench/internal/proc"
)

// DefaultGCPercent is the load generator's GOGC while a workload
// measures. With GOGC 100 its collections, several a second, stalled
// the producer and consumer: they showed in the e2e tail reported for
// either broker (p99 3.70/4.11/4.07 ms against 3.02/3.22/3.49 with 800),
// and the producer's goroutine that builds each request refaulted the
// request buffer the collections had given back, so one producer to 8
// partitions used a whole core and was what bounded the run (1 KiB
// records to Gregor 296-335k records/s at 1.1 cores of load generator,
// 545-569k at 0.6 with 800). docs/PERFORMANCE.md, "The load
// generator's collections in throughput workloads", has the runs.
const DefaultGCPercent = 800

// setGCPercent sets this process's GOGC for a workload (0: the default,
// negative: leave it) and returns what restores it.
func setGCPercent(p int) (restore func()) {
	if p == 0 {
		p = DefaultGCPercent
	}
	if p < 0 {
		return func() {}
	}
	old := debug.SetGCPercent(p)
	return func() { debug.SetGCPercent(old) }
}

// Target is the broker under measurement.
type Target struct {
	// Name labels results ("gregor", "kfake").
	Name string
	// Addr is the Kafka listener, HOST:PORT.
	Addr string
	// PID is the broker process read through /proc; 0 skips broker
	// CPU and memory.
	PID int
	// Admin is the base URL of the broker's admin HTTP port
	// ("http://127.0.0.1:9644") for heap readings; "" if none.
	Admin string
	// ClientOpts are added to every measuring client (TLS, SASL).
	// Topics are created without them, so a topic for a secured
	// listener is created beforehand (--partitions 0).
	ClientOpts []kgo.Opt
}

// Result is one measured run of one workload.
type Result struct {
	Workload string `json:"workload"`
	Target   string `json:"target"`
	Rep      int    `json:"rep,omitempty"`

	// Seconds is the measured interval (after warm-up).
	Seconds      float64 `json:"seconds"`
	Records      int64   `json:"records"`
	PayloadBytes int64   `json:"payload_bytes"`
	// OfferedRate is the paced rate in records/s; 0 means as fast as
	// the broker and client allow.
	OfferedRate   float64 `json:"offered_rate,omitempty"`
	RecordsPerSec float64 `json:"records_per_sec"`
	MBPerSec      float64 `json:"mb_per_sec"`

	// BrokerCPUSeconds is utime+stime of the broker process over the
	// measured interval; BrokerCPUPerGiB divides it by GiB of payload.
	BrokerCPUSeconds float64 `json:"broker_cpu_seconds"`
	BrokerCPUPerGiB  float64 `json:"broker_cpu_s_per_gib"`
	// BrokerCores, LoadgenCores and OtherCores are average CPUs busy
	// over the interval: the broker, this load generator, and everything
	// else on the host (noise from neighbours).
	BrokerCores       float64 `json:"broker_cores"`
	LoadgenCPUSeconds float64 `json:"loadgen_cpu_seconds"`
	LoadgenCores      float64 `json:"loadgen_cores"`
	OtherCores        float64 `json:"other_cores"`
	// StealCores is CPU time the hypervisor gave to other machines
	// while this one had work (part of OtherCores): when it is high,
	// latency tails are the host's.
	StealCores float64 `json:"steal_cores"`
	// Bound says what limited the run: "rate" (paced and kept up),
	// "loadgen" (host CPUs saturated and the load generator used at
	// least as much CPU as the broker, or the load generator near a
	// core and twice the broker's CPU), "broker" (host saturated,
	// broker the larger user) or "latency" (no CPU saturated: round
	// trips, fsync, in-flight limits); "starved" (the interval ran far
	// past the one asked: the machine's neighbours took the CPUs).
	Bound string `json:"bound"`

	BrokerRSSBefore int64 `json:"broker_rss_before"`
	BrokerRSSAfter  int64 `json:"broker_rss_after"`
	BrokerRSSPeak   int64 `json:"broker_rss_peak"`
	LoadgenRSS      int64 `json:"loadgen_rss"`

	// RecordsPerBatch is the average records per record batch the
	// client produced or fetched.
	RecordsPerBatch float64 `json:"records_per_batch,omitempty"`
	// Latency is end-to-end (send → consumer receipt) for e2e runs.
	Latency *Latency `json:"latency,omitempty"`
	// AckLatency is produce → acknowledgement for paced produce runs.
	AckLatency *Latency `json:"ack_latency,omitempty"`
	// SendLagMs is how far the pacer fell behind its schedule at worst
	// (large values mean the client could not send at the offered rate).
	SendLagMs float64 `json:"send_lag_ms,omitempty"`

	Errors     int64  `json:"errors,omitempty"`
	FirstError string `json:"first_error,omitempty"`
	// Missing counts e2e records sent in the window but not received
	// within the drain time.
	Missing int64 `json:"missing,omitempty"`

	Samples []MemSample `json:"samples,omitempty"`
	Note    string      `json:"note,omitempty"`
}

// MemSample is one reading of broker memory during a run.
type MemSample struct {
	// T is seconds since the run started.
	T   float64 `json:"t"`
	RSS int64   `json:"rss"`
	// HeapInuse is go_memstats_heap_inuse_bytes from the broker's
	// /metrics, 0 when it has none.
	HeapInuse int64 `json:"heap_inuse,omitempty"`
}

// snap is a reading of broker, self and host at one instant.
type snap struct {
	broker proc.Stat
	self   proc.Stat
	host   proc.Host
	err    error
}

func (t Target) snap() snap {
	var s snap
	if t.PID != 0 {
		s.broker, s.err = proc.Read(t.PID)
	}
	s.self, _ = proc.Read(0)
	s.host, _ = proc.ReadHost()
	if s.broker.Time.IsZero() {
		s.broker.Time = time.Now()
	}
	return s
}

// loadgenSerialCores is the load generator's CPU at which a run that
// saturated neither core counts as bound by the client's serial work.
const loadgenSerialCores = 0.85

// fill sets the rates, CPU and bound of r from the readings a and b
// taken around the measured interval.
func (r *Result) fill(a, b snap, records, payload int64) {
	sec := b.self.Time.Sub(a.self.Time).Seconds()
	r.Seconds = sec
	r.Records = records
	r.PayloadBytes = payload
	if sec > 0 {
		r.RecordsPerSec = float64(records) / sec
		r.MBPerSec = float64(payload) / 1e6 / sec
	}
	r.BrokerCPUSeconds = (b.broker.CPU - a.broker.CPU).Seconds()
	r.LoadgenCPUSeconds = (b.self.CPU - a.self.CPU).Seconds()
	if payload > 0 {
		r.BrokerCPUPerGiB = r.BrokerCPUSeconds / (float64(payload) / (1 << 30))
	}
	ncpu := runtime.NumCPU()
	host := proc.BusyCores(a.host, b.host, ncpu)
	if sec > 0 {
		r.BrokerCores = r.BrokerCPUSeconds / sec
		r.LoadgenCores = r.LoadgenCPUSeconds / sec
		r.OtherCores = max(0, host-r.BrokerCores-r.LoadgenCores)
		r.StealCores = proc.StealCores(a.host, b.host, ncpu)
	}
	r.BrokerRSSBefore = a.broker.RSS
	r.BrokerRSSAfter = b.broker.RSS
	r.BrokerRSSPeak = max(r.BrokerRSSPeak, a.broker.RSS, b.broker.RSS) // the sampler may have set it
	r.LoadgenRSS = b.self.RSS
	switch {
	case r.OfferedRate > 0 && r.RecordsPerSec >= 0.97*r.OfferedRate:
		r.Bound = "rate"
	case host >= 0.85*float64(ncpu) && r.LoadgenCores >= r.BrokerCores:
		r.Bound = "loadgen"
	case host >= 0.85*float64(ncpu):
		r.Bound = "broker"
	case r.LoadgenCores >= loadgenSerialCores && r.LoadgenCores >= 2*r.BrokerCores:
		// A kgo client encodes a connection's requests on one
		// goroutine: near a core of its own it binds the run with the
		// host's other core idle (with GOGC 100, one producer to 8
		// partitions at 1.1 cores made half the records/s it made at
		// 0.6 with GOGC 800, the broker unchanged).
		r.Bound = "loadgen"
	default:
		r.Bound = "latency"
	}
	if a.err != nil || b.err != nil {
		r.Note = fmt.Sprintf("broker /proc unreadable: %v %v", a.err, b.err)
	}
}

func (r *Result) addError(err error) {
	r.Errors++
	if r.FirstError == "" {
		r.FirstError = err.Error()
	}
}

// starved notes when the measured interval ran far past the one asked
// for: this process (and usually the broker) got no CPU for a while, so
// the run says more about the machine's neighbours than about the broker.
func (r *Result) starved(asked time.Duration) {
	if asked > 0 && r.Seconds > 1.5*asked.Seconds() {
		n := fmt.Sprintf("interval stretched to %.1f s of %.1f s asked: starved of CPU by other processes (%.2f cores)", r.Seconds, asked.Seconds(), r.OtherCores)
		if r.Note != "" {
			n = r.Note + "; " + n
		}
		r.Note = n
		r.Bound = "starved"
	}
}
