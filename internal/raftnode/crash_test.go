package raftnode

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gregor-streaming/gregor/internal/vfs"
)

// hookFS is a MemFS that calls hook after every operation that changes
// what a crash would leave.
type hookFS struct {
	*vfs.MemFS
	hook func(op string)
}

type hookFile struct {
	vfs.File
	fs *hookFS
}

func (f hookFile) Write(p []byte) (int, error) {
	n, err := f.File.Write(p)
	f.fs.hook("write")
	return n, err
}

func (f hookFile) Sync() error {
	err := f.File.Sync()
	f.fs.hook("sync")
	return err
}

func (f hookFile) Truncate(size int64) error {
	err := f.File.Truncate(size)
	f.fs.hook("truncate")
	return err
}

func (fs *hookFS) wrap(f vfs.File, err error) (vfs.File, error) {
	if err != nil {
		return nil, err
	}
	return hookFile{f, fs}, nil
}

func (fs *hookFS) Create(name string) (vfs.File, error) {
	f, err := fs.MemFS.Create(name)
	fs.hook("create")
	return fs.wrap(f, err)
}

func (fs *hookFS) OpenAppend(name string) (vfs.File, error) {
	return fs.wrap(fs.MemFS.OpenAppend(name))
}

func (fs *hookFS) Rename(oldname, newname string) error {
	err := fs.MemFS.Rename(oldname, newname)
	fs.hook("rename")
	return err
}

func (fs *hookFS) Remove(name string) error {
	err := fs.MemFS.Remove(name)
	fs.hook("remove")
	return err
}

func (fs *hookFS) SyncDir(dir string) error {
	err := fs.MemFS.SyncDir(dir)
	fs.hook("syncdir")
	return err
}

// TestCrashAtEveryStep crashes a single node after every file system
// operation of a run that takes snapshots and compacts its log (with torn
// tails and unsynced directory changes kept at random), restarts it from
// each image, and checks that every acknowledged proposal is there, in
// order, and nothing else.
func TestCrashAtEveryStep(t *testing.T) {
	type image struct {
		fs    *vfs.MemFS
		acked int
		op    string
	}
	mem := vfs.NewMem()
	rng := rand.New(rand.NewPCG(1, 2))
	var (
		mu     sync.Mutex
		images []image
		acked  atomic.Int64
	)
	fs := &hookFS{MemFS: mem}
	fs.hook = func(op string) {
		mu.Lock()
		defer mu.Unlock()
		a := int(acked.Load())
		images = append(images, image{mem.CrashWith(vfs.CrashOptions{Rand: rng, TornTails: true, UnsyncedDirs: true}), a, op})
	}
	n, _ := single(t, fs, 4)
	const total = 30
	var want []string
	for i := range total {
		want = append(want, fmt.Sprintf("e%d", i))
		propose(t, n, want[i])
		acked.Add(1)
	}
	n.Close()
	mu.Lock()
	defer mu.Unlock()
	t.Logf("%d crash images", len(images))
	for i, img := range images {
		sm := &testSM{}
		n, err := Start(Config{
			ID: 1, Voters: map[uint64]string{1: ""}, Dir: "/data/raft", FS: img.fs, SM: sm,
			Log: testLog(t), TickInterval: testTick, SnapshotEvery: 4,
		})
		if err != nil {
			t.Fatalf("image %d (after %s, %d acked): Start: %v", i, img.op, img.acked, err)
		}
		got, bad := sm.state()
		if bad != "" {
			t.Fatalf("image %d: %s", i, bad)
		}
		data := sm.data()
		if len(data) < img.acked || !slices.Equal(data, want[:len(data)]) {
			n.Close()
			t.Fatalf("image %d (after %s, %d acked): recovered %v", i, img.op, img.acked, got)
		}
		if i%10 == 0 { // it goes on from there
			propose(t, n, "more")
		}
		if err := n.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCrashMajority crashes a majority of a cluster, leader included,
// while proposals are under way, and checks that every acknowledged
// proposal survives the restart of that majority alone.
func TestCrashMajority(t *testing.T) {
	for seed := range uint64(3) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			c := newCluster(t, 3, 8)
			leader := c.waitLeader()
			victims := []uint64{leader, others(c.ids, leader)[0]}
			survivor := others(c.ids, leader)[1]
			var (
				mu    sync.Mutex
				acked []string
				wg    sync.WaitGroup
			)
			ctx, cancel := context.WithCancel(context.Background())
			for _, id := range c.ids {
				n := c.node(id)
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; ctx.Err() == nil; i++ {
						data := fmt.Sprintf("n%d-%d", id, i)
						pctx, pcancel := context.WithTimeout(ctx, time.Second)
						_, err := n.Propose(pctx, []byte(data))
						pcancel()
						if err == nil {
							mu.Lock()
							acked = append(acked, data)
							mu.Unlock()
						}
					}
				}()
			}
			time.Sleep(150 * time.Millisecond)
			rng := rand.New(rand.NewPCG(seed, 0))
			// Crash the majority at one instant, and stop the survivor.
			mu.Lock()
			mustHave := slices.Clone(acked)
			c.crashAll(victims, vfs.CrashOptions{Rand: rng, TornTails: true, UnsyncedDirs: true})
			mu.Unlock()
			cancel()
			c.stop(survivor)
			wg.Wait()
			if len(mustHave) == 0 {
				t.Fatal("nothing was acknowledged before the crash")
			}
			for _, id := range victims {
				c.start(id)
			}
			c.waitLeader()
			got := c.converge()
			present := map[string]int{}
			for _, a := range got {
				present[a.Data]++
			}
			for _, d := range mustHave {
				if present[d] != 1 {
					t.Errorf("acknowledged %q applied %d times after the crash", d, present[d])
				}
			}
			for d, k := range present {
				if k > 1 {
					t.Errorf("%q applied %d times", d, k)
				}
			}
			// The survivor rejoins and agrees.
			c.start(survivor)
			if got2 := c.converge(); !isPrefix(got, got2) {
				t.Fatal("the survivor's rejoin changed history")
			}
			t.Logf("%d acknowledged before the crash, %d applied after", len(mustHave), len(got))
		})
	}
}
