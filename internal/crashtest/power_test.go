package crashtest

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/ktest"
	"github.com/gregor-streaming/gregor/internal/vfs"
)

// TestPowerLoss runs an in-process broker on vfs.MemFS, where only what
// was synced survives a crash, and cuts its power at random moments while
// idempotent acks=all producers write, GREGOR_CRASH_CYCLES times (default
// 20). Crashes keep exactly the synced state, or also a random prefix of
// the unsynced tails (torn writes) and unsynced directory entries; some
// cycles are a kill -9 (all written bytes survive) or a graceful restart
// (clean-shutdown fast path, producer-state snapshot), and some cut the
// power and then stop the reboot while it recovers (a second power loss
// or a kill). Every
// acknowledged record must survive, exactly once, at its offset: this is
// what proves a produce is acknowledged only after its bytes are synced.
// Cluster metadata too: each cycle creates a topic and takes a producer
// ID first; the topics must all survive, and no producer ID may be
// handed out twice. GREGOR_CRASH_PARTITIONS sets the topic's partitions
// (default 64, so that small appends go through the journal).
func TestPowerLoss(t *testing.T) {
	powerLoss(t, envInt(t, "GREGOR_CRASH_CYCLES", 20), int32(envInt(t, "GREGOR_CRASH_PARTITIONS", 64)), 128<<10, 0, nil)
}

// TestPowerLossPreallocated is TestPowerLoss on one partition with 16
// MiB segments, whose active segment has zeros reserved past its data
// (partlog/prealloc.go) when the power goes (GREGOR_CRASH_CYCLES,
// default 8): unsynced appends into them come back as zeros or torn,
// and recovery must trim them. The first crash comes after about 1.6 MB
// were written (see TestProcessCrashPreallocated).
func TestPowerLossPreallocated(t *testing.T) {
	logs := &syncBuffer{}
	powerLoss(t, envInt(t, "GREGOR_CRASH_CYCLES", 8), 1, 16<<20, 12000,
		[]kgo.Opt{kgo.ProducerBatchCompression(kgo.NoCompression())},
		ktest.WithLogger(slog.New(slog.NewTextHandler(logs, nil))))
	trims := strings.Count(logs.String(), "partlog: trimming zeros past the data")
	t.Logf("%d recoveries trimmed reserved space", trims)
	if trims == 0 {
		t.Error("no recovery trimmed reserved space: preallocation went untested")
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// powerLoss runs the power-loss cycles over a topic of the given
// partitions and segment size, the first after warmup records were
// acknowledged, and verifies every acknowledged record.
func powerLoss(t *testing.T, cycles int, partitions int32, segmentBytes int, warmup int64, clientOpts []kgo.Opt, opts ...ktest.Option) {
	t.Helper()
	seed := seedFromEnv(t)
	rng := rand.New(rand.NewPCG(seed, 2))

	b := ktest.NewBroker(t, append([]ktest.Option{ktest.WithFS(vfs.NewMem())}, opts...)...)
	const topic = "power"
	b.CreateTopic(topic, partitions, map[string]*string{
		"segment.bytes":        kadm.StringPtr(strconv.Itoa(segmentBytes)),
		"index.interval.bytes": kadm.StringPtr("1024"),
	})
	w := startWorkload(t, b.Addr, topic, 3, seed, clientOpts...)
	if warmup > 0 && !w.waitAcked(warmup, 60*time.Second) {
		t.Fatalf("warming up: %d acknowledged", w.acked())
	}
	cl := b.Client(kgo.RetryBackoffFn(func(int) time.Duration { return 10 * time.Millisecond }), kgo.MetadataMinAge(10*time.Millisecond), kgo.AlwaysRetryEOF())
	pids := map[int64]int{}
	var topics []string

	var kinds [6]int
	interrupted := 0 // power losses during recovery that came before it ended
	names := [6]string{"power loss", "power loss with torn tails", "power loss with torn tails, torn writes in place and unsynced directories", "kill -9", "graceful restart", "power loss, then a crash during recovery"}
	for c := range cycles {
		if !w.waitAcked(w.acked()+300, 30*time.Second) {
			t.Fatalf("cycle %d: no progress (%d acknowledged)", c, w.acked())
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		ir, err := kmsg.NewPtrInitProducerIDRequest().RequestWith(ctx, cl)
		cancel()
		if err != nil || ir.ErrorCode != 0 {
			t.Fatalf("cycle %d: InitProducerID: %v (error code %d)", c, err, ir.ErrorCode)
		}
		if prev, ok := pids[ir.ProducerID]; ok {
			t.Fatalf("cycle %d: producer ID %d handed out again (first in cycle %d)", c, ir.ProducerID, prev)
		}
		pids[ir.ProducerID] = c
		topics = append(topics, fmt.Sprintf("meta-%d", c))
		b.CreateTopic(topics[len(topics)-1], 1, nil)
		time.Sleep(time.Duration(rng.IntN(300)) * time.Millisecond)
		kind := rng.IntN(len(kinds))
		crashRng := rand.New(rand.NewPCG(seed, uint64(1000+c)))
		switch kind {
		case 0:
			b.Crash()
		case 1:
			b.CrashWith(vfs.CrashOptions{Rand: crashRng, TornTails: true})
		case 2:
			b.CrashWith(vfs.CrashOptions{Rand: crashRng, TornTails: true, TornWrites: true, UnsyncedDirs: true})
		case 3:
			b.Kill()
		case 4:
			b.Restart()
		case 5:
			torn := vfs.CrashOptions{Rand: crashRng, TornTails: true, TornWrites: true, UnsyncedDirs: true}
			// The interrupted boot dies by a power loss or, leaving
			// its unsynced writes for the next boot, by a kill.
			second := func(m *vfs.MemFS) *vfs.MemFS { return m.CrashWith(torn) }
			if rng.IntN(2) == 0 {
				second = (*vfs.MemFS).Kill
			}
			if b.CrashDuringRecovery(torn, time.Duration(rng.IntN(600))*time.Millisecond, second) {
				interrupted++
			}
		}
		kinds[kind]++
		t.Logf("cycle %d: %s", c, names[kind])
		// Not kadm.Metadata: it lets the broker auto-create topics.
		mreq := kmsg.NewPtrMetadataRequest()
		mreq.AllowAutoTopicCreation = false
		for _, name := range topics {
			mreq.Topics = append(mreq.Topics, kmsg.MetadataRequestTopic{Topic: kmsg.StringPtr(name)})
		}
		ctx, cancel = context.WithTimeout(context.Background(), 30*time.Second)
		md, err := mreq.RequestWith(ctx, cl)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		for _, mt := range md.Topics {
			if mt.ErrorCode != 0 {
				t.Fatalf("cycle %d: topic %s, created before the %s, is gone", c, *mt.Topic, names[kind])
			}
		}
	}
	if !w.waitAcked(w.acked()+300, 30*time.Second) {
		t.Fatalf("no progress after the last restart (%d acknowledged)", w.acked())
	}
	for i, n := range kinds {
		t.Logf("%d × %s", n, names[i])
	}
	t.Logf("%d of the %d crashes during recovery came before the boot had finished", interrupted, kinds[5])
	w.finish()
	w.checkErrors()
	verify(t, b.Addr, topic, w.led, true)
}

// TestPowerLossKeepsNewDataDir starts a broker on a data directory whose
// parents do not exist yet (ktest's is a fresh temporary path in the
// MemFS), so Open creates them all: every one must be durable, or a
// power loss takes the cluster metadata and the topics with it.
func TestPowerLossKeepsNewDataDir(t *testing.T) {
	b := ktest.NewBroker(t, ktest.WithFS(vfs.NewMem()))
	r := newRawPartition(t, b, "kept", nil)
	r.produce(3, 10, "x")
	id := b.B.ClusterID()
	b.Crash()
	if got := b.B.ClusterID(); got != id {
		t.Fatalf("cluster ID %q after power loss, was %q: the metadata was lost", got, id)
	}
	checkEnd(t, b, "kept", 3)
}
