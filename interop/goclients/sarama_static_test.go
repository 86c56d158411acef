package goclients

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

// countingMember counts the sessions (generations) a member sees.
type countingMember struct {
	*saramaMember
	setups atomic.Int32
}

func (h *countingMember) Setup(s sarama.ConsumerGroupSession) error {
	h.setups.Add(1)
	return h.saramaMember.Setup(s)
}

// runStaticMember is runSaramaMember for a countingMember.
func runStaticMember(t *testing.T, cfg *sarama.Config, group, topic string, h *countingMember) (stop func()) {
	t.Helper()
	cg, err := sarama.NewConsumerGroup([]string{addr}, group, cfg)
	if err != nil {
		t.Fatalf("NewConsumerGroup: %v", err)
	}
	ctx := ctxT(t, 120*time.Second)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			if err := cg.Consume(ctx, []string{topic}, h); err != nil {
				if errors.Is(err, sarama.ErrClosedConsumerGroup) {
					return
				}
				t.Errorf("Consume: %v", err)
				return
			}
		}
	}()
	go func() {
		for err := range cg.Errors() {
			t.Errorf("consumer group: %v", err)
		}
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			if err := cg.Close(); err != nil {
				t.Errorf("ConsumerGroup.Close: %v", err)
			}
			<-done
		})
	}
	t.Cleanup(stop)
	return stop
}

// TestSaramaGroupStatic: static membership (KIP-345, group.instance.id)
// with sarama. A static member that restarts within its session timeout
// takes its old partitions back without a rebalance: the other member
// keeps its session (no new Setup) and the restarted one gets the same
// claims.
func TestSaramaGroupStatic(t *testing.T) {
	requireGroups(t)
	const parts = 4
	topic := "sarama-group-static"
	group := topic
	cfg := func(instance string) *sarama.Config {
		c := saramaConfig(sarama.V3_6_0_0, "interop-sarama-static")
		c.Consumer.Offsets.Initial = sarama.OffsetOldest
		c.Consumer.Group.InstanceId = instance
		c.Consumer.Group.Session.Timeout = 30 * time.Second
		c.Consumer.Group.Heartbeat.Interval = 500 * time.Millisecond
		c.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategyRange()}
		return c
	}
	saramaCreateTopic(t, cfg(""), topic, parts)

	a := &countingMember{saramaMember: &saramaMember{t: t, src: topic}}
	b := &countingMember{saramaMember: &saramaMember{t: t, src: topic}}
	stopA := runStaticMember(t, cfg("instance-a"), group, topic, a)
	stopB := runStaticMember(t, cfg("instance-b"), group, topic, b)
	defer stopB()
	shared := func(ms ...*countingMember) bool {
		seen := map[int32]bool{}
		n := 0
		for _, m := range ms {
			cs, _ := m.snapshot()
			if len(cs) == 0 {
				return false
			}
			n += len(cs)
			for _, p := range cs {
				seen[p] = true
			}
		}
		return n == parts && len(seen) == parts
	}
	eventually(t, 60*time.Second, "both static members to share the partitions", func() bool { return shared(a, b) })
	// Let any follow-up rebalance of the start settle.
	time.Sleep(time.Second)
	eventually(t, 30*time.Second, "a settled group", func() bool { return shared(a, b) })
	aClaims, _ := a.snapshot()
	slices.Sort(aClaims)
	bSetups := b.setups.Load()

	// a restarts: sarama does not send LeaveGroup for a static member.
	stopA()
	restart := time.Now()
	a2 := &countingMember{saramaMember: &saramaMember{t: t, src: topic}}
	stopA2 := runStaticMember(t, cfg("instance-a"), group, topic, a2)
	defer stopA2()
	eventually(t, 20*time.Second, "the restarted static member to get its partitions", func() bool {
		cs, _ := a2.snapshot()
		slices.Sort(cs)
		return slices.Equal(cs, aClaims)
	})
	t.Logf("static member back with partitions %v in %v", aClaims, time.Since(restart))
	time.Sleep(time.Second) // a rebalance would reach b within a few heartbeats
	if n := b.setups.Load(); n != bSetups {
		t.Fatalf("the other member saw %d new sessions: the restart caused a rebalance", n-bSetups)
	}
	fmt.Println("PASS: sarama static member restarted without a rebalance")
}
