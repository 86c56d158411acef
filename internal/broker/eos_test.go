package broker_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/gregor-streaming/gregor/internal/ktest"
	"github.com/gregor-streaming/gregor/internal/vfs"
)

// Exactly-once read-process-write with franz-go's GroupTransactSession:
// workers copy an input topic to an output topic, each input record's
// copy produced in the same transaction that commits the consumed
// offsets. Workers are SIGKILLed and restarted (TestEOSCopyWorkerKills)
// or the broker is (TestEOSCopyBrokerKills); at the end a read_committed
// consumer of the output must see every input record exactly once, in
// input order per partition.

const (
	eosIn, eosOut = "eos-in", "eos-out"
	eosGroup      = "eos"
)

// eosWorker copies records until ctx ends or the session fails. Every
// abortEvery-th transaction is aborted on purpose (0: never), so the
// output holds aborted records that only read_uncommitted may see.
func eosWorker(ctx context.Context, addr, txnID string, abortEvery int, logf func(string, ...any), extra ...kgo.Opt) error {
	opts := append([]kgo.Opt{
		kgo.SeedBrokers(addr),
		kgo.TransactionalID(txnID),
		kgo.TransactionTimeout(10 * time.Second),
		kgo.ConsumerGroup(eosGroup),
		kgo.ConsumeTopics(eosIn),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.SessionTimeout(3 * time.Second),
		kgo.HeartbeatInterval(300 * time.Millisecond),
		kgo.RebalanceTimeout(10 * time.Second),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.FetchMaxWait(200 * time.Millisecond),
		kgo.RetryTimeout(30 * time.Second),
	}, extra...)
	s, err := kgo.NewGroupTransactSession(opts...)
	if err != nil {
		return err
	}
	defer s.Close()
	n := 0
	for ctx.Err() == nil {
		fs := s.PollRecords(ctx, 500)
		if ctx.Err() != nil {
			return nil
		}
		fs.EachError(func(t string, p int32, err error) { logf("fetch %s/%d: %v", t, p, err) })
		if fs.NumRecords() == 0 {
			continue
		}
		if err := s.Begin(); err != nil {
			return fmt.Errorf("begin: %w", err)
		}
		var failed atomic.Bool
		fs.EachRecord(func(r *kgo.Record) {
			s.Produce(ctx, &kgo.Record{Topic: eosOut, Partition: r.Partition, Key: r.Key, Value: r.Value}, func(_ *kgo.Record, err error) {
				if err != nil {
					failed.Store(true)
				}
			})
		})
		n++
		commit := kgo.TryCommit
		if abortEvery > 0 && n%abortEvery == 0 {
			// Abort with the records written, so there is aborted
			// data for read_committed to skip.
			if err := s.Client().Flush(ctx); err != nil {
				return fmt.Errorf("flush: %w", err)
			}
			commit = kgo.TryAbort
		}
		if failed.Load() {
			commit = kgo.TryAbort
		}
		t0 := time.Now()
		committed, err := s.End(ctx, commit)
		if os.Getenv("GREGOR_EOS_DEBUG") != "" {
			logf("txn %d: %d records, end %v committed=%v err=%v", n, fs.NumRecords(), time.Since(t0), committed, err)
		}
		if err != nil {
			return fmt.Errorf("end: %w", err)
		}
		if commit == kgo.TryCommit && !committed {
			logf("transaction %d aborted (rebalance or failure)", n)
		}
	}
	return nil
}

// TestEOSWorker is the worker process of TestEOSCopyWorkerKills; it
// runs only when that test starts it.
func TestEOSWorker(t *testing.T) {
	addr := os.Getenv("GREGOR_EOS_WORKER")
	if addr == "" {
		t.Skip("a worker process of TestEOSCopyWorkerKills (GREGOR_EOS_WORKER unset)")
	}
	logf := func(f string, args ...any) {
		fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05.000 ")+f+"\n", args...)
	}
	for {
		err := eosWorker(context.Background(), addr, os.Getenv("GREGOR_EOS_TXN_ID"), 0, logf)
		logf("session ended: %v; starting a new one", err)
		time.Sleep(200 * time.Millisecond)
	}
}

// eosInput creates the topics and produces n records to the input: the
// values "0".."n-1", round robin over its partitions.
func eosInput(t *testing.T, b *ktest.Broker, partitions int32, n int) {
	t.Helper()
	b.CreateTopic(eosIn, partitions, nil)
	b.CreateTopic(eosOut, partitions, nil)
	cl := b.Client(kgo.RecordPartitioner(kgo.RoundRobinPartitioner()), kgo.ProducerLinger(5*time.Millisecond))
	ctx := ctxT(t, 60*time.Second)
	var wg sync.WaitGroup
	var failed atomic.Value
	for i := range n {
		wg.Add(1)
		cl.Produce(ctx, &kgo.Record{Topic: eosIn, Value: []byte(strconv.Itoa(i))}, func(_ *kgo.Record, err error) {
			if err != nil {
				failed.Store(err)
			}
			wg.Done()
		})
	}
	wg.Wait()
	if err := failed.Load(); err != nil {
		t.Fatalf("producing the input: %v", err)
	}
}

// eosCheck reads the output with read_committed and checks that it
// holds each of the n input values exactly once, in input order per
// partition; read_uncommitted must hold at least as many records
// (aborted copies included). It returns the uncommitted count.
func eosCheck(t *testing.T, b *ktest.Broker, n int) int {
	t.Helper()
	ctx := ctxT(t, 120*time.Second)
	// read reads a topic from the start until it has want records
	// (and a short idle spell after, so extras show).
	read := func(topic string, committed bool, want int) map[int32][]int {
		level := kgo.ReadUncommitted()
		if committed {
			level = kgo.ReadCommitted()
		}
		cl := b.Client(kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.FetchIsolationLevel(level), kgo.FetchMaxWait(100*time.Millisecond))
		out := map[int32][]int{}
		got := 0
		idle := 0
		for got < want || idle < 3 {
			pctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
			fs := cl.PollFetches(pctx)
			cancel()
			if ctx.Err() != nil {
				t.Fatalf("reading %s (committed=%v): %v after %d of %d records", topic, committed, ctx.Err(), got, want)
			}
			k := 0
			fs.EachRecord(func(r *kgo.Record) {
				v, err := strconv.Atoi(string(r.Value))
				if err != nil {
					t.Fatalf("bad value %q", r.Value)
				}
				out[r.Partition] = append(out[r.Partition], v)
				k++
			})
			got += k
			if k == 0 {
				idle++
			} else {
				idle = 0
			}
		}
		return out
	}
	in := read(eosIn, true, n)
	committed := read(eosOut, true, n)
	total, seen := 0, map[int]int{}
	for p, vs := range committed {
		total += len(vs)
		for _, v := range vs {
			seen[v]++
		}
		want := in[p]
		if len(vs) != len(want) {
			t.Errorf("partition %d: %d records committed, want %d", p, len(vs), len(want))
			continue
		}
		for i := range vs {
			if vs[i] != want[i] {
				t.Errorf("partition %d: record %d is %d, want %d (order or duplicate)", p, i, vs[i], want[i])
				break
			}
		}
	}
	for v := range n {
		if seen[v] != 1 {
			t.Errorf("input record %d seen %d times by read_committed", v, seen[v])
			if t.Failed() && seen[v] > 3 {
				break
			}
		}
	}
	if total != n {
		t.Errorf("read_committed saw %d records, want %d", total, n)
	}
	if t.Failed() && os.Getenv("GREGOR_EOS_DEBUG") != "" {
		for p := range committed {
			dumpPartition(t, b, eosOut, p)
		}
	}
	uncommitted := 0
	for _, vs := range read(eosOut, false, n) {
		uncommitted += len(vs)
	}
	if uncommitted < n {
		t.Errorf("read_uncommitted saw %d records, fewer than the %d committed", uncommitted, n)
	}
	return uncommitted
}

// eosRecords is the size of the copy: 200k by default,
// GREGOR_EOS_RECORDS overrides.
func eosRecords(t *testing.T) int {
	if s := os.Getenv("GREGOR_EOS_RECORDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			t.Fatalf("GREGOR_EOS_RECORDS=%q", s)
		}
		return n
	}
	return 200_000
}

// waitCopied waits until the group's committed offsets cover the input
// (every record copied and committed), calling tick with the count
// committed so far every 50ms.
// killPoint is how many records are committed when the copy's kill
// (0-based) of want is due: evenly spread over its first two thirds or
// so, so that the last lands before the end even when the copy runs
// faster than waitCopied's polls (without -race: once, the last fifth of
// 50,000 records was copied between two polls).
func killPoint(n, kill, want int) int64 {
	return int64(n) * int64(kill+1) / int64(want+2)
}

func waitCopied(t *testing.T, b func() *ktest.Broker, n int, timeout time.Duration, tick func(committed int64)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := int64(-1)
	for {
		adm := b().Admin()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		os, err := adm.FetchOffsets(ctx, eosGroup)
		cancel()
		var sum int64
		if err == nil {
			os.Each(func(o kadm.OffsetResponse) {
				if o.Topic == eosIn && o.Err == nil {
					sum += o.At
				}
			})
		}
		if sum >= int64(n) {
			return
		}
		if sum/(int64(n)/10) != last {
			t.Logf("%d of %d input records committed", sum, n)
			last = sum / (int64(n) / 10)
		}
		if time.Now().After(deadline) {
			t.Fatalf("copy incomplete after %v: %d of %d committed", timeout, sum, n)
		}
		if tick != nil {
			tick(sum)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestEOSCopyTransactionsV1 copies with clients limited to Kafka 3.7's
// request versions, so they use transactions v1: AddPartitionsToTxn
// before producing (the broker verifies produce against it),
// AddOffsetsToTxn and TxnOffsetCommit v3, EndTxn without epoch bumps.
func TestEOSCopyTransactionsV1(t *testing.T) {
	n := eosRecords(t) / 10
	b := txnBroker(t)
	eosInput(t, b, 4, n)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, id := range []string{"eos-v1-a", "eos-v1-b"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				err := eosWorker(ctx, b.Addr, id, 5, func(string, ...any) {}, kgo.MaxVersions(kversion.V3_7_0()))
				if err != nil && ctx.Err() == nil {
					t.Errorf("%s: %v", id, err)
					return
				}
			}
		}()
	}
	t.Cleanup(func() { cancel(); wg.Wait() })
	waitCopied(t, func() *ktest.Broker { return b }, n, 60*time.Second, nil)
	cancel()
	wg.Wait()
	if un := eosCheck(t, b, n); un <= n {
		t.Errorf("read_uncommitted saw %d records: the aborted copies are missing", un)
	}
}

// TestEOSCopyWorkerKills copies 200k records with two worker processes,
// SIGKILLing one of them at random moments and starting it again with
// the same transactional ID (which fences its zombie and aborts its open
// transaction), several times.
func TestEOSCopyWorkerKills(t *testing.T) {
	if testing.Short() {
		t.Skip("copies 200k records through worker processes it kills (~40 s); skipped with -short")
	}
	n := eosRecords(t)
	b := txnBroker(t)
	t0 := time.Now()
	eosInput(t, b, 4, n)
	t.Logf("produced %d input records in %v", n, time.Since(t0).Round(time.Millisecond))
	start := time.Now()

	type worker struct {
		txnID string
		cmd   *exec.Cmd
		log   string
	}
	dir := t.TempDir()
	startWorker := func(w *worker, gen int) {
		t.Helper()
		w.log = filepath.Join(dir, fmt.Sprintf("%s-%d.log", w.txnID, gen))
		f, err := os.Create(w.log)
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestEOSWorker$", "-test.v")
		cmd.Env = append(os.Environ(), "GREGOR_EOS_WORKER="+b.Addr, "GREGOR_EOS_TXN_ID="+w.txnID)
		cmd.Stdout, cmd.Stderr = f, f
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		f.Close()
		w.cmd = cmd
	}
	kill := func(w *worker) {
		_ = w.cmd.Process.Signal(syscall.SIGKILL)
		_ = w.cmd.Wait()
	}
	workers := []*worker{{txnID: "eos-a"}, {txnID: "eos-b"}}
	for _, w := range workers {
		startWorker(w, 0)
	}
	t.Cleanup(func() {
		for _, w := range workers {
			kill(w)
		}
	})

	// Kills at evenly spread points of the copy's progress.
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	kills := 0
	const wantKills = 5
	waitCopied(t, func() *ktest.Broker { return b }, n, 150*time.Second, func(committed int64) {
		if kills >= wantKills || committed < killPoint(n, kills, wantKills) {
			return
		}
		w := workers[rng.IntN(len(workers))]
		kill(w)
		kills++
		t.Logf("killed worker %s (kill %d) at %v, %d records committed", w.txnID, kills, time.Since(start).Round(time.Millisecond), committed)
		time.Sleep(time.Duration(rng.IntN(500)) * time.Millisecond)
		startWorker(w, kills)
	})
	if kills < wantKills {
		t.Errorf("the copy finished after %d kills, before the %d planned: make it bigger", kills, wantKills)
	}
	t.Logf("copied %d records in %v with %d worker kills", n, time.Since(start).Round(time.Millisecond), kills)
	for _, w := range workers {
		kill(w)
	}
	t0 = time.Now()
	un := eosCheck(t, b, n)
	t.Logf("checked the output in %v", time.Since(t0).Round(time.Millisecond))
	t.Logf("read_committed: %d records, each input record once; read_uncommitted: %d (aborted copies of killed workers)", n, un)
	if t.Failed() {
		for _, w := range workers {
			if data, err := os.ReadFile(w.log); err == nil {
				t.Logf("last worker log %s:\n%s", w.log, tail(string(data), 3000))
			}
		}
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// TestEOSCopyBrokerKills copies with two in-process workers while the
// broker is killed and restarted several times, mid-transaction: kill
// -9 (every written byte survives, nothing is closed) and power loss
// (only what was synced survives). Every fourth transaction is aborted
// on purpose. The coordinator must recover the transactions (completing
// prepared ones; the clients finish open ones, or a new session fences
// and aborts them, or their timeout does); nothing committed may be lost
// and nothing aborted may reach read_committed, while read_uncommitted
// sees the aborted copies.
func TestEOSCopyBrokerKills(t *testing.T) {
	if testing.Short() {
		t.Skip("copies records across broker kills (~2×20 s); skipped with -short")
	}
	for _, tc := range []struct {
		name string
		fs   vfs.FS
		kill func(b *ktest.Broker)
	}{
		{"kill", vfs.Default, (*ktest.Broker).Kill},
		{"powerloss", vfs.NewMem(), (*ktest.Broker).Crash},
	} {
		t.Run(tc.name, func(t *testing.T) { eosBrokerKills(t, tc.fs, tc.kill) })
	}
}

func eosBrokerKills(t *testing.T, fs vfs.FS, kill func(*ktest.Broker)) {
	n := eosRecords(t) / 4
	b := txnBroker(t, ktest.WithFS(fs))
	eosInput(t, b, 4, n)
	start := time.Now()
	addr := b.Addr // stable across restarts; Kill rewrites the field
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var sessions atomic.Int64
	for _, id := range []string{"eos-x", "eos-y"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				sessions.Add(1)
				err := eosWorker(ctx, addr, id, 4, func(f string, a ...any) {
					if os.Getenv("GREGOR_EOS_DEBUG") != "" {
						t.Logf(id+": "+f, a...)
					}
				})
				if err != nil && ctx.Err() == nil {
					t.Logf("%s: session failed (a new one starts): %v", id, err)
					time.Sleep(100 * time.Millisecond)
				}
			}
		}()
	}
	t.Cleanup(func() { cancel(); wg.Wait() })

	// Kills at evenly spread points of the copy's progress, each a
	// little after the point so it lands mid-transaction.
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 9))
	kills := 0
	const wantKills = 4
	var mu sync.Mutex
	cur := func() *ktest.Broker { mu.Lock(); defer mu.Unlock(); return b }
	waitCopied(t, cur, n, 150*time.Second, func(committed int64) {
		if kills >= wantKills || committed < killPoint(n, kills, wantKills) {
			return
		}
		time.Sleep(time.Duration(rng.IntN(30)) * time.Millisecond)
		mu.Lock()
		kill(b)
		mu.Unlock()
		kills++
		t.Logf("broker killed and restarted (%d) at %v, %d records committed", kills, time.Since(start).Round(time.Millisecond), committed)
	})
	if kills < wantKills {
		t.Errorf("the copy finished after %d broker kills, before the %d planned", kills, wantKills)
	}
	cancel()
	wg.Wait()
	t.Logf("copied %d records in %v across %d broker kills (%d worker sessions)", n, time.Since(start).Round(time.Millisecond), kills, sessions.Load())

	// No transaction stays open: a worker stopped mid-way may have left
	// one, which its timeout aborts.
	adm := b.Admin()
	waitFor(t, 30*time.Second, "every transaction completed", func() bool {
		ls, err := adm.ListTransactions(ctxT(t, 5*time.Second), nil, []string{"Ongoing", "PrepareCommit", "PrepareAbort"})
		return err == nil && len(ls) == 0
	})
	un := eosCheck(t, b, n)
	if un <= n {
		t.Errorf("read_uncommitted saw %d records: the aborted copies are missing", un)
	}
	t.Logf("read_committed: %d records, each input record once; read_uncommitted: %d", n, un)
}

// dumpPartition logs a partition's batches (producer, epoch, offsets,
// control type) and the aborted transactions a read_committed fetch
// reports, to diagnose a failed exactly-once check.
func dumpPartition(t *testing.T, b *ktest.Broker, topic string, part int32) {
	t.Helper()
	cl := b.Client()
	ctx := ctxT(t, 30*time.Second)
	md, err := kadm.NewClient(cl).Metadata(ctx, topic)
	if err != nil {
		t.Logf("dump: %v", err)
		return
	}
	for _, level := range []int8{0, 1} {
		off := int64(0)
		for {
			req := kmsg.NewPtrFetchRequest()
			req.ReplicaID = -1
			req.MaxWaitMillis = 0
			req.MaxBytes = 10 << 20
			req.IsolationLevel = level
			req.SessionEpoch = -1
			rt := kmsg.NewFetchRequestTopic()
			rt.Topic, rt.TopicID = topic, md.Topics[topic].ID
			rp := kmsg.NewFetchRequestTopicPartition()
			rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = part, off, 10<<20
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			resp, err := req.RequestWith(ctx, cl)
			if err != nil {
				t.Logf("dump: %v", err)
				return
			}
			sp := resp.Topics[0].Partitions[0]
			if sp.ErrorCode != 0 {
				t.Logf("dump: fetch error %d", sp.ErrorCode)
				return
			}
			if level == 1 {
				for _, a := range sp.AbortedTransactions {
					t.Logf("dump %s-%d: aborted pid %d first %d", topic, part, a.ProducerID, a.FirstOffset)
				}
				t.Logf("dump %s-%d: LSO %d HW %d", topic, part, sp.LastStableOffset, sp.HighWatermark)
				break
			}
			data := sp.RecordBatches
			if len(data) == 0 {
				break
			}
			for len(data) > 0 {
				var rb kmsg.RecordBatch
				if err := rb.ReadFrom(data); err != nil {
					t.Logf("dump: %v", err)
					return
				}
				size := int(rb.Length) + 12
				desc := ""
				if rb.Attributes&0x20 != 0 {
					desc = fmt.Sprintf("CONTROL %x", rb.Records)
				}
				t.Logf("dump %s-%d: batch %d..%d pid %d epoch %d seq %d txn=%v %s", topic, part, rb.FirstOffset, rb.FirstOffset+int64(rb.LastOffsetDelta),
					rb.ProducerID, rb.ProducerEpoch, rb.FirstSequence, rb.Attributes&0x10 != 0, desc)
				off = rb.FirstOffset + int64(rb.LastOffsetDelta) + 1
				data = data[size:]
			}
		}
	}
}
