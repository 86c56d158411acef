package coord

import (
	"errors"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestBusyEnterRefusedAfterClose(t *testing.T) {
	var b Busy
	if !b.Enter() {
		t.Fatal("Enter refused before Close")
	}
	b.Release()
	b.Close()
	if b.Enter() {
		t.Fatal("Enter allowed after Close")
	}
	b.Close() // idempotent
	if n := b.Count(); n != 0 {
		t.Fatalf("Count = %d after Close, want 0", n)
	}
}

func TestBusyCloseWaitsForWork(t *testing.T) {
	var b Busy
	if !b.Enter() {
		t.Fatal("Enter refused")
	}
	// Internal work started by registered work is still counted while
	// closing.
	b.Acquire()
	closed := make(chan struct{})
	go func() {
		b.Close()
		close(closed)
	}()
	// A second Close waits as well.
	closed2 := make(chan struct{})
	go func() {
		b.Close()
		close(closed2)
	}()
	for b.Enter() {
		b.Release() // until Close set the bit
		runtime.Gosched()
	}
	b.Release()
	select {
	case <-closed:
		t.Fatal("Close returned with work in flight")
	case <-time.After(20 * time.Millisecond):
	}
	if n := b.Count(); n != 1 {
		t.Fatalf("Count = %d, want 1", n)
	}
	b.Release()
	<-closed
	<-closed2
}

// testShard is a coordinator's shard type: it embeds Shard and adds
// its own field.
type testShard struct {
	Shard[*int]
	loads atomic.Int32
}

func TestShardsLoadEveryShardOnce(t *testing.T) {
	for _, n := range []int{1, 3, 4, 17} {
		var b Busy
		var s Shards[*testShard]
		if s.Load() != nil || s.WaitLoaded(time.Millisecond) {
			t.Fatal("loaded before Start")
		}
		shards := make([]*testShard, n)
		for i := range shards {
			shards[i] = &testShard{Shard: Shard[*int]{Partition: int32(i)}}
		}
		s.Start(&b, shards, func(sh *testShard) {
			sh.loads.Add(1)
			sh.SetLoaded()
		})
		s.Start(&b, shards[:1], func(*testShard) { t.Error("second Start loaded") })
		if !s.WaitLoaded(5 * time.Second) {
			t.Fatalf("n=%d: WaitLoaded false", n)
		}
		for i, sh := range s.Load() {
			if got := sh.loads.Load(); got != 1 || sh.Partition != int32(i) {
				t.Errorf("n=%d: shard %d (partition %d) loaded %d times", n, i, sh.Partition, got)
			}
		}
		b.Close()
	}
}

func TestShardsWaitLoadedStopped(t *testing.T) {
	// A load that stops for shutdown leaves its shard unloaded: the
	// loaders finish, and WaitLoaded reports false.
	var b Busy
	var s Shards[*testShard]
	shards := []*testShard{{}, {Shard: Shard[*int]{Partition: 1}}}
	s.Start(&b, shards, func(sh *testShard) {
		if sh.Partition == 0 {
			sh.SetLoaded()
		}
	})
	if s.WaitLoaded(5 * time.Second) {
		t.Fatal("WaitLoaded true with a shard not loaded")
	}
	b.Close()
}

func TestShardsWaitLoadedTimeout(t *testing.T) {
	var b Busy
	var s Shards[*testShard]
	release := make(chan struct{})
	s.Start(&b, []*testShard{{}}, func(sh *testShard) {
		<-release
		sh.SetLoaded()
	})
	if s.WaitLoaded(10 * time.Millisecond) {
		t.Fatal("WaitLoaded true while loading")
	}
	close(release)
	if !s.WaitLoaded(5 * time.Second) {
		t.Fatal("WaitLoaded false once loaded")
	}
	b.Close()
}

func TestShardMap(t *testing.T) {
	var s Shard[*int]
	if s.Get("a") != nil || len(s.Snapshot()) != 0 {
		t.Fatal("zero Shard not empty")
	}
	one, two := new(int), new(int)
	created := 0
	create := func(v *int) func() *int { return func() *int { created++; return v } }
	if got := s.GetOrCreate("a", create(one)); got != one {
		t.Fatal("GetOrCreate did not create")
	}
	if got := s.GetOrCreate("a", create(two)); got != one || created != 1 {
		t.Fatalf("GetOrCreate replaced: created %d", created)
	}
	s.Lock()
	s.PutLocked("b", two)
	if n := len(s.SnapshotLocked()); n != 2 {
		t.Fatalf("SnapshotLocked has %d", n)
	}
	s.Unlock()
	// RemoveIf keeps a mailbox that took the ID since.
	s.RemoveIf("a", two)
	if s.Get("a") != one {
		t.Fatal("RemoveIf removed another mailbox")
	}
	s.RemoveIf("a", one)
	if s.Get("a") != nil || len(s.Snapshot()) != 1 {
		t.Fatal("RemoveIf kept the mailbox")
	}
}

func TestQueue(t *testing.T) {
	var q Queue[int]
	if q.Take() != nil {
		t.Fatal("Take on an empty queue")
	}
	if !q.Push(1) {
		t.Fatal("first Push did not start the loop")
	}
	if q.Push(2) {
		t.Fatal("Push started a second loop")
	}
	if got := q.Take(); len(got) != 2 || got[0] != 1 || got[1] != 2 {
		t.Fatalf("Take = %v", got)
	}
	if q.Push(3) {
		t.Fatal("Push started a loop while one runs")
	}
	if got := q.Take(); len(got) != 1 {
		t.Fatalf("Take = %v", got)
	}
	// The loop ends on an empty Take; the next Push starts another.
	if q.Take() != nil {
		t.Fatal("Take not empty")
	}
	if !q.Push(4) {
		t.Fatal("Push after the loop ended did not start one")
	}
}

func TestRetry(t *testing.T) {
	fail := errors.New("replay failed")
	tries := 0
	Retry(func() bool { return false }, func() error {
		tries++
		if tries < 2 {
			return fail
		}
		return nil
	})
	if tries != 2 {
		t.Fatalf("tries = %d, want 2", tries)
	}
	tries = 0
	Retry(func() bool { return true }, func() error { tries++; return fail })
	if tries != 1 {
		t.Fatalf("tries after stop = %d, want 1", tries)
	}
}

// TestShardLeadership: Elect and Resign start generations, in epoch
// order only; each generation is claimed for loading once; requests
// find no mailbox of a shard that does not serve its keys.
func TestShardLeadership(t *testing.T) {
	var s Shard[*int]
	// A shard Start owns: no epoch seen yet.
	if _, ok := s.Lookup("a"); ok {
		t.Fatal("Lookup served before the load")
	}
	gen0, ok := s.Claim()
	if !ok {
		t.Fatal("first Claim refused")
	}
	if _, ok := s.Claim(); ok {
		t.Fatal("a generation was claimed twice")
	}
	s.SetLoaded()
	one := new(int)
	if mb, ok := s.LookupOrCreate("a", func() *int { return one }); !ok || mb != one {
		t.Fatal("LookupOrCreate on a served shard")
	}
	if _, ok := s.LeaderEpochLocked(); ok {
		t.Fatal("an epoch before any Elect")
	}

	// Elect at epoch 3: a new generation, loading, the old mailbox
	// handed back.
	s.Lock()
	old, ok := s.ElectLocked(3)
	s.Unlock()
	if !ok || len(old) != 1 || old[0] != one {
		t.Fatalf("Elect(3) = %v, %v", old, ok)
	}
	if s.Current(gen0) || s.Loaded() || s.Foreign() {
		t.Fatal("Elect left the old generation current or the shard serving")
	}
	if _, ok := s.Lookup("a"); ok {
		t.Fatal("Lookup served while loading")
	}
	if _, ok := s.LookupOrCreate("b", func() *int { return one }); ok || s.Get("b") != nil {
		t.Fatal("LookupOrCreate made a mailbox while loading")
	}
	if e, ok := s.LeaderEpochLocked(); !ok || e != 3 {
		t.Fatalf("LeaderEpochLocked = %d, %v", e, ok)
	}
	gen1, ok := s.Claim()
	if !ok || gen1 == gen0 || !s.Current(gen1) {
		t.Fatal("Claim after Elect")
	}
	// Stale: an Elect not newer, a Resign older.
	s.Lock()
	if _, ok := s.ElectLocked(3); ok {
		t.Error("Elect at the same epoch took effect")
	}
	if _, ok := s.ResignLocked(2); ok {
		t.Error("Resign at an older epoch took effect")
	}
	s.Unlock()
	if !s.Current(gen1) {
		t.Fatal("a stale change started a generation")
	}
	s.SetLoaded()
	if _, ok := s.Lookup("a"); !ok {
		t.Fatal("not served once loaded")
	}

	// Resign at the same epoch: foreign, nothing to claim.
	s.Lock()
	_, ok = s.ResignLocked(3)
	s.Unlock()
	if !ok || !s.Foreign() || !s.Loaded() || s.Current(gen1) {
		t.Fatal("Resign(3)")
	}
	if _, ok := s.Claim(); ok {
		t.Fatal("a foreign shard claimed")
	}
	if _, ok := s.LeaderEpochLocked(); ok {
		t.Fatal("an epoch while foreign")
	}
	s.Lock()
	if _, ok := s.ElectLocked(3); ok {
		t.Error("Elect at the epoch of the Resign took effect")
	}
	_, ok = s.ElectLocked(4)
	s.Unlock()
	if !ok || s.Foreign() || s.Loaded() {
		t.Fatal("Elect(4) after Resign")
	}
}

// TestShardsReload: a shard elected after Start is loaded by Reload;
// WaitLoaded waits for it, and reports false once no loader is left.
func TestShardsReload(t *testing.T) {
	var b Busy
	var s Shards[*testShard]
	shards := []*testShard{{}, {Shard: Shard[*int]{Partition: 1}}}
	load := func(sh *testShard) {
		if _, ok := sh.Claim(); ok {
			sh.loads.Add(1)
			sh.SetLoaded()
		}
	}
	s.Reload(&b, shards[0], load) // before Start: nothing
	s.Start(&b, shards, load)
	if !s.WaitLoaded(5 * time.Second) {
		t.Fatal("not loaded")
	}
	release := make(chan struct{})
	sh := shards[1]
	sh.Lock()
	if _, ok := sh.ElectLocked(1); !ok {
		t.Fatal("Elect refused")
	}
	sh.Unlock()
	s.Reload(&b, sh, func(sh *testShard) {
		<-release
		load(sh)
	})
	if s.WaitLoaded(10 * time.Millisecond) {
		t.Fatal("WaitLoaded true while reloading")
	}
	go func() {
		time.Sleep(10 * time.Millisecond)
		close(release)
	}()
	if !s.WaitLoaded(5 * time.Second) {
		t.Fatal("WaitLoaded false once reloaded")
	}
	if n := sh.loads.Load(); n != 2 {
		t.Fatalf("partition 1 loaded %d times, want 2", n)
	}
	// Elected with no loader: WaitLoaded does not wait for nothing.
	sh.Lock()
	sh.ElectLocked(2)
	sh.Unlock()
	start := time.Now()
	if s.WaitLoaded(5*time.Second) || time.Since(start) > time.Second {
		t.Fatal("WaitLoaded waited with no loader running")
	}
	b.Close()
}
