//go:build unix

package crashtest

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestClusterProcessNemesis is a Jepsen-style test against a cluster of
// three `gregor serve` processes (docs/CLUSTER.md, step 7): three
// idempotent acks=all producers, seeded with every broker, write to a
// topic of three partitions with three replicas (min.insync.replicas 2)
// while a nemesis, one fault at a time at random intervals, either
// SIGKILLs a random node and starts it again on its data directory
// after up to 3 s, or pauses one with SIGSTOP for 1-4 s and wakes it
// with SIGCONT. A paused node is what an in-process test cannot make:
// its timers, leases and Raft ticks stop, the controller fences it after
// broker.session.timeout.ms (1.5 s here), and it wakes believing it
// still leads its partitions (and perhaps the Raft quorum), with
// produce requests parked on it. It must acknowledge nothing the other
// replicas do not have.
//
// The faults run for GREGOR_NEMESIS_SECONDS (default 10); then every
// node is up, the producers flush, every ISR is full again and the three
// replicas' logs are the same size; every acknowledged record is read
// back exactly once at its acknowledged offset (verify), and, the nodes
// killed, their segment files hold the same batches byte for byte.
// GREGOR_CRASH_SEED replays the nemesis's choices (not its timing).
func TestClusterProcessNemesis(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a cluster of three gregor processes and kills and pauses them (~25 s); skipped with -short")
	}
	run := time.Duration(envInt(t, "GREGOR_NEMESIS_SECONDS", 10)) * time.Second
	seed := seedFromEnv(t)
	rng := rand.New(rand.NewPCG(seed, 3))
	c := startCluster(t, 3,
		"--set", "broker.session.timeout.ms=1500",
		"--set", "replica.lag.time.max.ms=3000")
	seeds := c.seeds()
	adm := c.admin()
	c.waitFor(60*time.Second, "every broker registered", func() bool {
		md, err := c.metadata(adm)
		return err == nil && len(md.Brokers) == len(c.nodes)
	})

	const topic = "nemesis"
	const partitions = 3
	createTopic(t, seeds, topic, partitions, 3, map[string]*string{
		"min.insync.replicas": kadm.StringPtr("2"),
		// Small segments, so that truncations and fetches cross rolls.
		"segment.bytes": kadm.StringPtr(strconv.Itoa(256 << 10)),
	})
	c.waitFor(60*time.Second, "every ISR full", func() bool { return c.isrFull(adm, topic, partitions) })

	w := startWorkload(t, seeds, topic, 3, seed)
	// Registered after the workload's, so it runs first: the producers'
	// clients close with no node stopped.
	t.Cleanup(c.resumeAll)
	progress := func(n int64, what string) {
		t.Helper()
		if !w.waitAcked(w.acked()+n, 60*time.Second) {
			t.Fatalf("%s: no progress in 60 s (%d acknowledged); partitions: %s", what, w.acked(), c.leaders(adm, topic))
		}
	}
	progress(500, "before the nemesis")

	start := time.Now()
	var kills, pauses int
	for time.Since(start) < run {
		time.Sleep(time.Duration(300+rng.IntN(1200)) * time.Millisecond)
		v := rng.IntN(len(c.nodes))
		g := c.nodes[v]
		state := c.leaders(adm, topic)
		at := time.Since(start).Seconds()
		if rng.IntN(2) == 0 {
			down := time.Duration(rng.IntN(3000)) * time.Millisecond
			t.Logf("%5.1fs kill node %d, start it after %v (%d acknowledged; %s)", at, v, down, w.acked(), state)
			g.kill()
			time.Sleep(down)
			g.start(true)
			kills++
		} else {
			stall := time.Duration(1000+rng.IntN(3000)) * time.Millisecond
			t.Logf("%5.1fs pause node %d for %v (%d acknowledged; %s)", at, v, stall, w.acked(), state)
			c.pause(v)
			time.Sleep(stall)
			c.resume(v)
			pauses++
		}
	}
	// Every fault is undone: the cluster must make progress again.
	progress(500, "after the nemesis")
	w.finish()
	t.Logf("%d faults in %v (%d kills, %d pauses): %d records acknowledged; partitions: %s",
		kills+pauses, run.Round(time.Second), kills, pauses, w.acked(), c.leaders(adm, topic))
	w.checkErrors()

	var sizes string
	c.waitFor(90*time.Second, "every ISR full and the replicas' logs the same size", func() bool {
		if !c.isrFull(adm, topic, partitions) {
			sizes = "ISRs not full: " + c.leaders(adm, topic)
			return false
		}
		same := true
		var b strings.Builder
		for p := range int32(partitions) {
			s := c.logSizes(adm, topic, p)
			fmt.Fprintf(&b, "p%d %v ", p, s)
			same = same && s[0] > 0 && !slices.ContainsFunc(s, func(n int64) bool { return n != s[0] })
		}
		sizes = b.String()
		return same
	}, func() string { return sizes })
	verify(t, seeds, topic, w.led, true)
	// Killed, not stopped: a node stopping after the others may wait
	// 30 s for a metadata update its controller began without a quorum
	// (Store.Update's timeout; Broker.Close waits for the controller
	// loop). What the nodes wrote stays in the page cache.
	for _, g := range c.nodes {
		g.kill()
		g.checkLog()
	}
	c.compareSegments(topic, partitions)
}

// cluster is a set of `gregor serve` processes, each a voter of the
// metadata quorum, run the README's way ("A cluster (preview)").
type cluster struct {
	t      *testing.T
	nodes  []*process
	paused []bool
}

// startCluster starts n nodes on fresh data directories and loopback
// ports, each with args added to its command line, and waits until
// each accepts connections (a node does once the quorum formed).
func startCluster(t *testing.T, n int, args ...string) *cluster {
	t.Helper()
	bin := buildGregor(t)
	work := t.TempDir()
	if keep := os.Getenv("GREGOR_CRASH_KEEP"); keep != "" {
		work = keep
		if err := os.MkdirAll(work, 0o755); err != nil {
			t.Fatal(err)
		}
		t.Logf("data directories and broker logs kept in %s", work)
	}
	var voters []string
	for i := range n {
		voters = append(voters, fmt.Sprintf("%d@%s", i, freeAddr(t)))
	}
	c := &cluster{t: t, paused: make([]bool, n)}
	for i := range n {
		g := &process{
			t:       t,
			bin:     bin,
			dir:     filepath.Join(work, fmt.Sprintf("data%d", i)),
			addr:    freeAddr(t),
			logPath: filepath.Join(work, fmt.Sprintf("gregor%d.log", i)),
			args: append([]string{
				"--set", fmt.Sprintf("node.id=%d", i),
				"--set", "controller.quorum.voters=" + strings.Join(voters, ","),
			}, args...),
		}
		c.nodes = append(c.nodes, g)
		// A stopped process is woken before it is killed, even when
		// the test fails.
		t.Cleanup(func() {
			c.resume(i)
			g.cleanup()
		})
	}
	for _, g := range c.nodes {
		g.spawn()
	}
	for _, g := range c.nodes {
		g.waitAccepting()
	}
	return c
}

// seeds returns every node's Kafka address, comma-separated.
func (c *cluster) seeds() string {
	var addrs []string
	for _, g := range c.nodes {
		addrs = append(addrs, g.addr)
	}
	return strings.Join(addrs, ",")
}

// admin returns an admin client seeded with every node, closed when the
// test ends.
func (c *cluster) admin() *kadm.Client {
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(c.seeds(), ",")...),
		kgo.MetadataMinAge(50*time.Millisecond), kgo.RetryTimeout(5*time.Second))
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

// metadata asks for topic's metadata (every broker's with no topic),
// giving up after 5 s.
func (c *cluster) metadata(adm *kadm.Client, topics ...string) (kadm.Metadata, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return adm.Metadata(ctx, topics...)
}

// pause stops node i with SIGSTOP: a GC pause, or a stalled VM.
func (c *cluster) pause(i int) {
	c.t.Helper()
	if err := c.nodes[i].cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		c.t.Fatalf("SIGSTOP node %d: %v", i, err)
	}
	c.paused[i] = true
}

// resume wakes node i with SIGCONT if it is paused.
func (c *cluster) resume(i int) {
	if !c.paused[i] {
		return
	}
	if g := c.nodes[i]; g.cmd != nil {
		g.cmd.Process.Signal(syscall.SIGCONT)
	}
	c.paused[i] = false
}

func (c *cluster) resumeAll() {
	for i := range c.nodes {
		c.resume(i)
	}
}

// waitFor polls cond until it holds, failing the test after d with what
// last says when given.
func (c *cluster) waitFor(d time.Duration, what string, cond func() bool, last ...func() string) {
	c.t.Helper()
	for deadline := time.Now().Add(d); !cond(); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			detail := ""
			for _, l := range last {
				detail = ": " + l()
			}
			c.t.Fatalf("not %s within %v%s", what, d, detail)
		}
	}
}

// isrFull says whether every partition of topic has a leader and every
// node in its ISR.
func (c *cluster) isrFull(adm *kadm.Client, topic string, partitions int) bool {
	md, err := c.metadata(adm, topic)
	if err != nil {
		return false
	}
	ps := md.Topics[topic].Partitions
	if len(ps) != partitions {
		return false
	}
	for _, p := range ps {
		if p.Err != nil || p.Leader < 0 || len(p.ISR) != len(c.nodes) {
			return false
		}
	}
	return true
}

// leaders describes each partition's leader, leader epoch and ISR as
// Metadata tells, for the timeline.
func (c *cluster) leaders(adm *kadm.Client, topic string) string {
	md, err := c.metadata(adm, topic)
	if err != nil {
		return fmt.Sprintf("metadata: %v", err)
	}
	var b strings.Builder
	ps := md.Topics[topic].Partitions.Sorted()
	for i, p := range ps {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "p%d leader %d epoch %d isr %v", p.Partition, p.Leader, p.LeaderEpoch, p.ISR)
		if p.Err != nil {
			fmt.Fprintf(&b, " (%v)", p.Err)
		}
	}
	return b.String()
}

// logSizes returns the size of partition p's log on each node, -1 where
// the node did not answer.
func (c *cluster) logSizes(adm *kadm.Client, topic string, p int32) []int64 {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	sizes := make([]int64, len(c.nodes))
	for i := range c.nodes {
		sizes[i] = -1
		dirs, err := adm.DescribeBrokerLogDirs(ctx, int32(i), kadm.TopicsSet{topic: {p: {}}})
		if err != nil {
			continue
		}
		dirs.EachPartition(func(d kadm.DescribedLogDirPartition) {
			if d.Topic == topic && d.Partition == p {
				sizes[i] = d.Size
			}
		})
	}
	return sizes
}

// compareSegments checks that every node's segment files of each
// partition of topic hold the same record batches, byte for byte (the
// nodes stopped; zeros reserved past an active segment's data end the
// walk).
func (c *cluster) compareSegments(topic string, partitions int) {
	c.t.Helper()
	for p := range partitions {
		var first [][]byte
		for i, g := range c.nodes {
			batches := readBatches(c.t, filepath.Join(g.dir, fmt.Sprintf("%s-%d", topic, p)))
			if i == 0 {
				first = batches
				continue
			}
			n := min(len(first), len(batches))
			for k := range n {
				if !bytes.Equal(first[k], batches[k]) {
					c.t.Errorf("partition %d: batch %d differs: node 0 has %s, node %d has %s", p, k, describeBatch(first[k]), i, describeBatch(batches[k]))
					break
				}
			}
			if len(first) != len(batches) {
				c.t.Errorf("partition %d: node 0 holds %d batches, node %d holds %d", p, len(first), i, len(batches))
			}
		}
		c.t.Logf("partition %d: %d batches, the same on every node", p, len(first))
	}
}

// readBatches returns the record batches in a partition directory's
// segments, in order, up to the first that is not whole.
func readBatches(t *testing.T, dir string) [][]byte {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(names) // base offsets, zero-padded to 20 digits
	var batches [][]byte
	for _, name := range names {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		for len(b) >= 12 {
			n := int(int32(binary.BigEndian.Uint32(b[8:12])))
			if n <= 0 || 12+n > len(b) {
				break
			}
			batches = append(batches, b[:12+n])
			b = b[12+n:]
		}
	}
	return batches
}

// describeBatch names a batch by its offsets and leader epoch.
func describeBatch(b []byte) string {
	if len(b) < 27 {
		return fmt.Sprintf("%d bytes", len(b))
	}
	base := int64(binary.BigEndian.Uint64(b))
	epoch := int32(binary.BigEndian.Uint32(b[12:16]))
	last := base + int64(int32(binary.BigEndian.Uint32(b[23:27])))
	return fmt.Sprintf("offsets %d-%d, leader epoch %d, %d bytes", base, last, epoch, len(b))
}
