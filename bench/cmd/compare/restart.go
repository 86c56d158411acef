package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/bench/internal/load"
	"github.com/gregor-streaming/gregor/bench/internal/proc"
	"github.com/gregor-streaming/gregor/bench/internal/report"
)

// restartResult is the many-partitions experiment: topic creation,
// memory per idle partition, and (Gregor) restart time with data.
type restartResult struct {
	Partitions int   `json:"partitions"`
	Records    int   `json:"records"`
	DataBytes  int64 `json:"data_bytes"`
	// Per target.
	Targets map[string]*restartTarget `json:"targets"`
	// Restarts are Gregor's timed restarts; Median their medians.
	Restarts []restartTiming `json:"restarts,omitempty"`
	Median   *restartTiming  `json:"median,omitempty"`
	// Cold is one more restart with the page cache dropped first, as
	// after a reboot (only where /proc/sys/vm/drop_caches is writable).
	Cold *restartTiming `json:"cold,omitempty"`
	// Crash is a start after kill -9, taken with Cold: the records are
	// produced once more, the broker is killed, the page cache dropped.
	Crash *restartTiming `json:"crash,omitempty"`
}

type restartTarget struct {
	CreateSeconds  float64 `json:"create_seconds"`
	ProduceSeconds float64 `json:"produce_seconds"`
	// Heap readings in bytes: empty broker, after creating the topic,
	// after producing, and (Gregor) after the last restart.
	HeapEmpty, HeapCreated, HeapWithData, HeapRestarted int64
	HeapSource                                          string
	RSSEmpty, RSSCreated, RSSWithData, RSSRestarted     int64
	// Per partition, KiB: (reading − empty) / partitions.
	HeapPerPartitionCreatedKiB   float64 `json:"heap_per_partition_created_kib"`
	HeapPerPartitionRestartedKiB float64 `json:"heap_per_partition_restarted_kib,omitempty"`
	RSSPerPartitionCreatedKiB    float64 `json:"rss_per_partition_created_kib"`
	RSSPerPartitionRestartedKiB  float64 `json:"rss_per_partition_restarted_kib,omitempty"`
	OpenFDsCreated               int     `json:"open_fds_created"`
	OpenFDsRestarted             int     `json:"open_fds_restarted,omitempty"`
}

// restartTiming is one restart, seconds from exec to each milestone.
type restartTiming struct {
	ShutdownSeconds float64 `json:"shutdown_seconds"`
	PortOpen        float64 `json:"port_open_seconds"`
	Metadata        float64 `json:"metadata_seconds"`
	Produce         float64 `json:"produce_seconds"`
}

// String gives the start's milestones.
func (tm restartTiming) String() string {
	return fmt.Sprintf("exec → port open %.2f s, → metadata %.2f s, → first produce acked %.2f s", tm.PortOpen, tm.Metadata, tm.Produce)
}

func (c *config) restartExperiment(ctx context.Context) (*restartResult, error) {
	rr := &restartResult{
		Partitions: c.restartPartitions,
		Records:    c.restartRecords,
		DataBytes:  int64(c.restartRecords) * 1024,
		Targets:    map[string]*restartTarget{},
	}
	fmt.Printf("== restart and memory per partition: %d partitions, %d records of 1 KiB\n", rr.Partitions, rr.Records)
	for _, tn := range c.targets {
		rt, err := c.restartTarget(ctx, tn, rr)
		if rt != nil {
			rr.Targets[tn] = rt
		}
		if err != nil {
			return rr, fmt.Errorf("%s: %w", tn, err)
		}
	}
	if len(rr.Restarts) > 0 {
		med := func(f func(restartTiming) float64) float64 {
			var v []float64
			for _, r := range rr.Restarts {
				v = append(v, f(r))
			}
			return medianOf(v)
		}
		rr.Median = &restartTiming{
			ShutdownSeconds: med(func(r restartTiming) float64 { return r.ShutdownSeconds }),
			PortOpen:        med(func(r restartTiming) float64 { return r.PortOpen }),
			Metadata:        med(func(r restartTiming) float64 { return r.Metadata }),
			Produce:         med(func(r restartTiming) float64 { return r.Produce }),
		}
	}
	return rr, nil
}

func (c *config) restartTarget(ctx context.Context, tn string, rr *restartResult) (*restartTarget, error) {
	dataDir := fmt.Sprintf("%s/%s-restart-data", c.workDir, tn)
	defer os.RemoveAll(dataDir)
	s, err := c.newServer(tn, dataDir)
	if err != nil {
		return nil, err
	}
	if err := s.start(); err != nil {
		return nil, err
	}
	defer s.kill()
	if err := s.waitReady(ctx, 2*time.Minute); err != nil {
		return nil, err
	}
	rt := &restartTarget{}
	mem := func(heap, rss *int64) {
		h, src, err := load.Heap(s.admin)
		if err == nil {
			*heap, rt.HeapSource = h, src
		} else {
			rt.HeapSource = "none: " + err.Error()
		}
		if st, err := proc.Read(s.cmd.Process.Pid); err == nil {
			*rss = st.RSS
		}
	}
	mem(&rt.HeapEmpty, &rt.RSSEmpty)
	const topic = "bench-restart"
	took, err := load.CreateTopic(ctx, s.addr, topic, rr.Partitions, nil)
	rt.CreateSeconds = took.Seconds()
	if err != nil {
		return rt, err
	}
	time.Sleep(time.Second)
	mem(&rt.HeapCreated, &rt.RSSCreated)
	rt.OpenFDsCreated = openFDs(s.cmd.Process.Pid)
	p := float64(rr.Partitions)
	rt.HeapPerPartitionCreatedKiB = float64(rt.HeapCreated-rt.HeapEmpty) / p / 1024
	rt.RSSPerPartitionCreatedKiB = float64(rt.RSSCreated-rt.RSSEmpty) / p / 1024

	t0 := time.Now()
	if err := produceN(ctx, s.addr, topic, rr.Records, 1024); err != nil {
		return rt, err
	}
	rt.ProduceSeconds = time.Since(t0).Seconds()
	mem(&rt.HeapWithData, &rt.RSSWithData)
	fmt.Printf("  %s: create %.1f s, produce %.1f s; heap empty %s, created %s, with data %s; %d fds (%s)\n",
		tn, rt.CreateSeconds, rt.ProduceSeconds, report.MiB(rt.HeapEmpty), report.MiB(rt.HeapCreated),
		report.MiB(rt.HeapWithData), rt.OpenFDsCreated, rt.HeapSource)

	if tn == "gregor" {
		// restart takes the broker down (down: s.stop, or a kill),
		// runs between (if any) while it is down, starts it and times
		// the start.
		restart := func(down func() (time.Duration, error), between func()) (restartTiming, error) {
			var tm restartTiming
			d, err := down()
			tm.ShutdownSeconds = d.Seconds()
			if err != nil {
				return tm, err
			}
			if between != nil {
				between()
			}
			if err := s.start(); err != nil {
				return tm, err
			}
			return tm, timeRestart(ctx, s, topic, rr.Partitions, &tm)
		}
		for i := range c.restartReps {
			tm, err := restart(s.stop, nil)
			if err != nil {
				return rt, err
			}
			rr.Restarts = append(rr.Restarts, tm)
			fmt.Printf("  restart %d: shutdown %.2f s; %s\n", i+1, tm.ShutdownSeconds, tm)
		}
		if c.restartCold {
			var derr error
			tm, err := restart(s.stop, func() { derr = dropPageCache() })
			if err != nil {
				return rt, err
			}
			if derr != nil {
				fmt.Printf("  restart with a cold page cache skipped: %v\n", derr)
			} else {
				rr.Cold = &tm
				fmt.Printf("  restart, page cache dropped: %s\n", tm)
			}
		}
		time.Sleep(time.Second)
		mem(&rt.HeapRestarted, &rt.RSSRestarted)
		rt.OpenFDsRestarted = openFDs(s.cmd.Process.Pid)
		rt.HeapPerPartitionRestartedKiB = float64(rt.HeapRestarted-rt.HeapEmpty) / p / 1024
		rt.RSSPerPartitionRestartedKiB = float64(rt.RSSRestarted-rt.RSSEmpty) / p / 1024
		fmt.Printf("  after restart: heap %s, RSS %s, %d fds\n", report.MiB(rt.HeapRestarted), report.MiB(rt.RSSRestarted), rt.OpenFDsRestarted)
		if rr.Cold != nil {
			// A crash: recovery instead of a clean start's checks.
			if err := produceN(ctx, s.addr, topic, rr.Records, 1024); err != nil {
				return rt, err
			}
			var derr error
			kill := func() (time.Duration, error) { s.kill(); return 0, nil }
			tm, err := restart(kill, func() { derr = dropPageCache() })
			if err == nil {
				err = derr
			}
			if err != nil {
				return rt, err
			}
			rr.Crash = &tm
			fmt.Printf("  restart after kill -9, page cache dropped: %s\n", tm)
		}
	}
	if _, err := s.stop(); err != nil {
		return rt, err
	}
	return rt, nil
}

// timeRestart measures from s.started (just before exec) to the Kafka
// port accepting, Metadata showing every partition with a leader, and a
// first acks=all produce to the last partition.
func timeRestart(ctx context.Context, s *server, topic string, partitions int, tm *restartTiming) error {
	deadline := s.started.Add(5 * time.Minute)
	for {
		c, err := net.DialTimeout("tcp", s.addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("port not open after 5 min: %w", err)
		}
		select {
		case <-s.exited:
			return fmt.Errorf("gregor exited during restart: see %s", s.logPath)
		default:
		}
		time.Sleep(2 * time.Millisecond)
	}
	tm.PortOpen = time.Since(s.started).Seconds()

	cl, err := kgo.NewClient(kgo.SeedBrokers(s.addr),
		kgo.RetryBackoffFn(func(int) time.Duration { return 5 * time.Millisecond }),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RequiredAcks(kgo.AllISRAcks()))
	if err != nil {
		return err
	}
	defer cl.Close()
	for {
		req := kmsg.NewPtrMetadataRequest()
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(topic)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl)
		if err == nil && len(resp.Topics) == 1 && resp.Topics[0].ErrorCode == 0 && len(resp.Topics[0].Partitions) == partitions {
			ok := true
			for _, p := range resp.Topics[0].Partitions {
				ok = ok && p.ErrorCode == 0 && p.Leader >= 0
			}
			if ok {
				break
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("metadata not complete after 5 min: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	tm.Metadata = time.Since(s.started).Seconds()
	for {
		r := &kgo.Record{Topic: topic, Partition: int32(partitions - 1), Value: make([]byte, 1024)}
		err := cl.ProduceSync(ctx, r).FirstErr()
		if err == nil {
			break
		}
		if !kerr.IsRetriable(err) || time.Now().After(deadline) {
			return fmt.Errorf("first produce: %w", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	tm.Produce = time.Since(s.started).Seconds()
	return nil
}

// produceN produces n records of size bytes round robin over topic's
// partitions, acks=all, and waits for all of them.
func produceN(ctx context.Context, addr, topic string, n, size int) error {
	pc := load.DefaultProducer()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.RoundRobinPartitioner()),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.ProducerLinger(pc.Linger), kgo.MaxBufferedRecords(pc.MaxBuffered))
	if err != nil {
		return err
	}
	defer cl.Close()
	v := make([]byte, size)
	errc := make(chan error, 1)
	for range n {
		cl.Produce(ctx, &kgo.Record{Value: v}, func(_ *kgo.Record, err error) {
			if err != nil {
				select {
				case errc <- err:
				default:
				}
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return err
	}
	select {
	case err := <-errc:
		return err
	default:
		return nil
	}
}

func openFDs(pid int) int {
	f, err := os.Open(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	n := 0
	for {
		names, err := f.Readdirnames(1024)
		n += len(names)
		if err == io.EOF || len(names) == 0 {
			return n
		}
	}
}

func medianOf(v []float64) float64 {
	if len(v) == 0 {
		return nan
	}
	v = slices.Clone(v)
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// dropPageCache writes back dirty pages and drops the clean ones (and
// cached inodes), so the next start reads from the disk as after a
// reboot. It needs root on Linux.
func dropPageCache() error {
	if err := exec.Command("sync").Run(); err != nil {
		return err
	}
	return os.WriteFile("/proc/sys/vm/drop_caches", []byte("3\n"), 0)
}
