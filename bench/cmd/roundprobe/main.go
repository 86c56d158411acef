//go:build linux

// Command roundprobe measures the disk's part of a sync round over many
// partitions, without a broker: FILES files, each in a directory of its
// own as a partition's segment is, and WORKERS writers that each write
// SIZE bytes to PER random files and then make them durable, for DUR.
// It prints the bytes made durable per second and the mean time of a
// round's sync.
//
// The files start as -layout says: empty and appended to (append), with
// RESERVE bytes allocated past the data by fallocate(KEEP_SIZE) (alloc,
// what Gregor's segments do on a file system without a journal), or
// with RESERVE bytes of zeros written and synced beforehand and
// overwritten in place (zeros: no size or allocation to commit). A
// round is made durable as -sync says: one syncfs(2) (syncfs), an
// fdatasync per file, all at once (fdatasync), or sync_file_range to
// write and wait for each file's data and one fdatasync for the device
// flush (range: data only, which is durable only over the zeros layout).
//
//	go run ./cmd/roundprobe -dir /path/on/the/data/disk -layout alloc -sync syncfs
package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	dir := flag.String("dir", os.TempDir(), "directory on the disk to probe (a subdirectory is made and removed)")
	files := flag.Int("files", 10000, "files, each in its own directory")
	layout := flag.String("layout", "alloc", "append, alloc or zeros")
	syncMode := flag.String("sync", "syncfs", "syncfs, fdatasync or range")
	per := flag.Int("per", 30, "files written per round")
	workers := flag.Int("workers", 4, "concurrent writers, each syncing its own rounds")
	size := flag.Int("size", 62<<10, "bytes written to a file per round")
	reserve := flag.Int64("reserve", 1<<20, "bytes allocated or zeroed per file beforehand (alloc, zeros); writes wrap within it")
	dur := flag.Duration("dur", 6*time.Second, "measured duration")
	flag.Parse()
	if err := run(*dir, *files, *layout, *syncMode, *per, *workers, *size, *reserve, *dur); err != nil {
		fmt.Fprintln(os.Stderr, "roundprobe:", err)
		os.Exit(1)
	}
}

type file struct {
	mu   sync.Mutex
	f    *os.File
	size int64
}

func run(dir string, nfiles int, layout, syncMode string, per, workers, size int, reserve int64, dur time.Duration) error {
	switch layout {
	case "append", "alloc", "zeros":
	default:
		return fmt.Errorf("layout %q: want append, alloc or zeros", layout)
	}
	switch syncMode {
	case "syncfs", "fdatasync", "range":
	default:
		return fmt.Errorf("sync %q: want syncfs, fdatasync or range", syncMode)
	}
	if layout != "append" && int64(size) > reserve {
		return fmt.Errorf("size %d exceeds reserve %d", size, reserve)
	}
	root, err := os.MkdirTemp(dir, "roundprobe-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(root)
	fs := make([]*file, nfiles)
	defer func() {
		for _, f := range fs {
			if f != nil {
				f.f.Close()
			}
		}
	}()
	zeros := make([]byte, 1<<20)
	for i := range fs {
		d := filepath.Join(root, fmt.Sprintf("t-%d", i))
		if err := os.Mkdir(d, 0o755); err != nil {
			return err
		}
		f, err := os.OpenFile(filepath.Join(d, "00000000000000000000.log"), os.O_CREATE|os.O_RDWR, 0o644)
		if err != nil {
			return err
		}
		fs[i] = &file{f: f}
		switch layout {
		case "alloc":
			if err := unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_KEEP_SIZE, 0, reserve); err != nil {
				return fmt.Errorf("fallocate: %w", err)
			}
		case "zeros":
			for off := int64(0); off < reserve; off += int64(len(zeros)) {
				if _, err := f.WriteAt(zeros[:min(int64(len(zeros)), reserve-off)], off); err != nil {
					return err
				}
			}
		}
	}
	d, err := os.Open(root)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := syncfs(d); err != nil {
		return err
	}

	data := make([]byte, size)
	var rounds, bytes, syncNs atomic.Int64
	// The first error stops its writer; errors are of several types
	// (*os.PathError, syscall.Errno), so not an atomic.Value.
	var errMu sync.Mutex
	var firstErr error
	fail := func(err error) {
		errMu.Lock()
		defer errMu.Unlock()
		if firstErr == nil {
			firstErr = err
		}
	}
	stop := time.Now().Add(dur)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			picked := make([]*file, per)
			for time.Now().Before(stop) {
				for k := range picked {
					f := fs[rng.IntN(nfiles)]
					picked[k] = f
					f.mu.Lock()
					off := f.size
					if layout != "append" && off+int64(size) > reserve {
						off = 0
					}
					_, err := f.f.WriteAt(data, off)
					f.size = off + int64(size)
					f.mu.Unlock()
					if err != nil {
						fail(err)
						return
					}
				}
				start := time.Now()
				if err := syncRound(d, picked, syncMode); err != nil {
					fail(err)
					return
				}
				syncNs.Add(int64(time.Since(start)))
				rounds.Add(1)
				bytes.Add(int64(per * size))
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	n := max(rounds.Load(), 1)
	fmt.Printf("layout=%s sync=%s files=%d per=%d workers=%d size=%d: %.0f MB/s durable, %d rounds, sync %.2f ms a round\n",
		layout, syncMode, nfiles, per, workers, size, float64(bytes.Load())/dur.Seconds()/1e6, rounds.Load(), float64(syncNs.Load())/float64(n)/1e6)
	return nil
}

func syncRound(d *os.File, picked []*file, mode string) error {
	switch mode {
	case "syncfs":
		return syncfs(d)
	case "fdatasync":
		errs := make(chan error, len(picked))
		for _, f := range picked {
			go func() { errs <- unix.Fdatasync(int(f.f.Fd())) }()
		}
		var first error
		for range picked {
			if err := <-errs; err != nil && first == nil {
				first = err
			}
		}
		return first
	default: // range
		for _, f := range picked {
			if err := unix.SyncFileRange(int(f.f.Fd()), 0, 0, unix.SYNC_FILE_RANGE_WRITE); err != nil {
				return err
			}
		}
		const wait = unix.SYNC_FILE_RANGE_WAIT_BEFORE | unix.SYNC_FILE_RANGE_WRITE | unix.SYNC_FILE_RANGE_WAIT_AFTER
		for _, f := range picked {
			if err := unix.SyncFileRange(int(f.f.Fd()), 0, 0, wait); err != nil {
				return err
			}
		}
		return unix.Fdatasync(int(picked[0].f.Fd())) // the device flush
	}
}

func syncfs(d *os.File) error { return unix.Syncfs(int(d.Fd())) }
