package raftnode

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/gregor-streaming/gregor/internal/vfs"
)

var (
	randomSeed  = flag.Uint64("raftnode.seed", 1, "seed of TestRandom")
	randomSteps = flag.Int("raftnode.steps", 60, "steps of TestRandom")
)

// TestRandom runs random proposals against random faults (clean stops,
// crashes with torn tails, partitions, delays, restarts) on three nodes,
// checking throughout that every node's applied entries are a prefix of
// one common sequence, and at the end that every acknowledged proposal
// was applied exactly once and nothing twice. The choices are seeded
// (-raftnode.seed, -raftnode.steps); the timing is not.
func TestRandom(t *testing.T) {
	seed := *randomSeed
	t.Logf("seed %d (rerun with -raftnode.seed=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	c := newCluster(t, 3, 6)

	var (
		mu      sync.Mutex
		acked   = map[string]uint64{} // data -> index Propose returned
		wg      sync.WaitGroup
		nextID  int
		crashes int
	)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	propose := func(id uint64) {
		n := c.node(id)
		if n == nil {
			return
		}
		data := fmt.Sprintf("p%d@%d", nextID, id)
		nextID++
		wg.Add(1)
		go func() {
			defer wg.Done()
			pctx, pcancel := context.WithTimeout(ctx, time.Second)
			defer pcancel()
			res, err := n.Propose(pctx, []byte(data))
			switch {
			case err == nil:
				mu.Lock()
				acked[data] = res.(uint64)
				mu.Unlock()
			case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled), errors.Is(err, ErrStopped):
			default:
				t.Errorf("propose %q: %v", data, err)
			}
		}()
	}

	down := map[uint64]bool{}
	for step := 0; step < *randomSteps; step++ {
		for range rng.IntN(4) {
			propose(c.ids[rng.IntN(len(c.ids))])
		}
		id := c.ids[rng.IntN(len(c.ids))]
		switch r := rng.IntN(100); {
		case r < 10 && !down[id] && len(down) == 0:
			c.stop(id)
			down[id] = true
		case r < 20 && !down[id] && len(down) == 0:
			c.crash(id, vfs.CrashOptions{Rand: rng, TornTails: true, UnsyncedDirs: true})
			down[id] = true
			crashes++
		case r < 35 && down[id]:
			c.start(id)
			delete(down, id)
		case r < 45:
			c.net.isolate(id, c.ids)
		case r < 50:
			c.net.partition([]uint64{id}, others(c.ids, id)[:1])
		case r < 65:
			c.net.heal()
		case r < 70:
			c.net.setDelay(time.Duration(rng.IntN(5)) * time.Millisecond)
		}
		time.Sleep(time.Duration(rng.IntN(40)) * time.Millisecond)
		c.checkPrefixes()
	}

	c.net.heal()
	c.net.setDelay(0)
	for id := range down {
		c.start(id)
	}
	wg.Wait()
	got := c.converge()
	count := map[string]int{}
	index := map[string]uint64{}
	for _, a := range got {
		count[a.Data]++
		index[a.Data] = a.Index
	}
	for d, k := range count {
		if k > 1 {
			t.Errorf("%q applied %d times", d, k)
		}
	}
	for d, i := range acked {
		if count[d] != 1 {
			t.Errorf("acknowledged %q applied %d times", d, count[d])
		} else if index[d] != i {
			t.Errorf("acknowledged %q at index %d but applied at %d", d, i, index[d])
		}
	}
	t.Logf("%d proposals, %d acknowledged, %d applied, %d crashes", nextID, len(acked), len(got), crashes)
}
