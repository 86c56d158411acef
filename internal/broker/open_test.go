package broker_test

import (
	"errors"
	"log/slog"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"github.com/gregor-streaming/gregor/internal/broker"
	"github.com/gregor-streaming/gregor/internal/config"
	"github.com/gregor-streaming/gregor/internal/ktest"
	"github.com/gregor-streaming/gregor/internal/vfs"
)

// TestOpenFailsCleanlyOnOnePartition: the broker opens partitions 16 at a
// time at start. One that cannot be opened fails the start with its
// error, leaves no goroutine behind and harms nothing: the next start,
// with the fault gone, serves every partition's records.
func TestOpenFailsCleanlyOnOnePartition(t *testing.T) {
	ffs := vfs.NewFault(vfs.Default)
	b := ktest.NewBroker(t, ktest.WithFS(ffs))
	const parts = 40
	b.CreateTopic("many", parts, nil)
	cl := b.Client(kgo.DefaultProduceTopic("many"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	ctx := ctxT(t, 20*time.Second)
	for p := range int32(parts) {
		if err := cl.ProduceSync(ctx, &kgo.Record{Partition: p, Value: []byte("v")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	cl.Close()
	b.Stop()

	leaks := goleak.IgnoreCurrent()
	before := len(openUnder(t, b.Dir))
	in := ffs.Inject(vfs.Fault{Op: vfs.OpOpen | vfs.OpCreate, Prefix: filepath.Join(b.Dir, "many-17") + "/", Err: syscall.EMFILE})
	cfg, _, err := config.NewBroker(nil)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	if _, err := broker.Open(broker.Options{Config: cfg, DataDir: b.Dir, FS: ffs, Logger: log}); !errors.Is(err, syscall.EMFILE) {
		t.Fatalf("start with partition 17 unopenable: %v, want EMFILE", err)
	}
	goleak.VerifyNone(t, leaks)
	if left := openUnder(t, b.Dir); len(left) > before {
		t.Fatalf("the failed start left %d files open: %v", len(left)-before, left)
	}

	in.Remove()
	b.Start()
	cl = b.Client(kgo.ConsumeTopics("many"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	seen := map[int32]int{}
	for len(seen) < parts {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("after the fault: records from %d of %d partitions", len(seen), parts)
		}
		fs.EachRecord(func(r *kgo.Record) { seen[r.Partition]++ })
	}
	for p, n := range seen {
		if n != 1 {
			t.Fatalf("partition %d: %d records, want 1", p, n)
		}
	}
}

// TestOpenControllerQuorumVoters: Kafka's single-node KRaft settings
// (process.roles, a CONTROLLER listener, this node as the only voter)
// start a broker as they are; more than one voter, or a voter that is
// not this node, is refused with a reason instead of starting a broker
// that would act alone.
func TestOpenControllerQuorumVoters(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	for _, tc := range []struct {
		props map[string]string
		ok    bool
	}{
		{map[string]string{"node.id": "1", "process.roles": "broker,controller", "controller.quorum.voters": "1@localhost:9093",
			"listeners": "PLAINTEXT://127.0.0.1:0,CONTROLLER://127.0.0.1:9093"}, true},
		{map[string]string{"node.id": "1", "controller.quorum.voters": "1@a:9093,2@b:9093,3@c:9093"}, false},
		{map[string]string{"node.id": "2", "controller.quorum.voters": "1@a:9093"}, false},
	} {
		cfg, _, err := config.NewBroker(tc.props)
		if err != nil {
			t.Fatal(err)
		}
		b, err := broker.Open(broker.Options{Config: cfg, DataDir: t.TempDir(), Logger: log})
		if (err == nil) != tc.ok {
			t.Errorf("%v: %v", tc.props, err)
		}
		if b != nil {
			if got := b.NodeID(); got != 1 {
				t.Errorf("node %d", got)
			}
			b.Close()
		}
	}
}
