package broker_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/gregor-streaming/gregor/internal/ktest"
)

// TestClusterSharesMetadata: three brokers sharing one controller
// quorum (docs/CLUSTER.md; not yet a working cluster) name one cluster
// and one controller, list each other at their registered endpoints,
// and see a topic created through any of them. Only the topic's
// replicas keep its log; a client bootstrapped at another broker is
// routed to the leader, produces and consumes; a deletion through yet
// another broker removes the log from the broker that held it.
func TestClusterSharesMetadata(t *testing.T) {
	bs := ktest.NewCluster(t, 3)
	ctx := ctxT(t, 60*time.Second)

	var cluster string
	var controller int32 = -2
	for i, b := range bs {
		var md kadm.Metadata
		// The brokers register themselves as they start: wait for all.
		waitFor(t, 20*time.Second, "every broker registered", func() bool {
			var err error
			md, err = b.Admin().Metadata(ctx)
			return err == nil && len(md.Brokers) == 3 && md.Controller >= 0
		})
		for _, bd := range md.Brokers {
			if want := bs[bd.NodeID].Addr; bd.Host+":"+itoa(bd.Port) != want {
				t.Errorf("broker %d lists %d at %s:%d, want %s", i, bd.NodeID, bd.Host, bd.Port, want)
			}
		}
		if i == 0 {
			cluster, controller = md.Cluster, md.Controller
		}
		if md.Cluster != cluster || cluster == "" {
			t.Errorf("broker %d: cluster %q, broker 0's %q", i, md.Cluster, cluster)
		}
		if md.Controller != controller {
			t.Errorf("broker %d: controller %d, broker 0's %d", i, md.Controller, controller)
		}
	}

	if _, err := bs[0].Admin().CreateTopic(ctx, 3, 1, nil, "shared"); err != nil {
		t.Fatal(err)
	}
	var leader int32 = -1
	for _, b := range bs {
		waitFor(t, 20*time.Second, "the topic on every broker", func() bool {
			md, err := b.Admin().Metadata(ctx, "shared")
			if err != nil || md.Topics["shared"].Err != nil || len(md.Topics["shared"].Partitions) != 3 {
				return false
			}
			leader = md.Topics["shared"].Partitions[0].Leader
			return true
		})
	}
	for i, b := range bs {
		_, err := os.Stat(filepath.Join(b.Dir, "shared-0"))
		if hosts := err == nil; hosts != (int32(i) == leader) {
			t.Errorf("broker %d keeps a log of shared-0: %v (leader %d)", i, hosts, leader)
		}
	}

	other := bs[(leader+1)%3]
	p := other.Client(kgo.DefaultProduceTopic("shared"))
	for i := range 30 {
		if err := p.ProduceSync(ctx, &kgo.Record{Value: []byte{byte(i)}}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	c := bs[(leader+2)%3].Client(kgo.ConsumeTopics("shared"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got := 0
	for got < 30 {
		fs := c.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		got += fs.NumRecords()
	}

	if _, err := other.Admin().DeleteTopic(ctx, "shared"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the deleted topic's log gone", func() bool {
		_, err := os.Stat(filepath.Join(bs[leader].Dir, "shared-0"))
		return os.IsNotExist(err)
	})
}
