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
// overwritten in place (zeros: no size or allocation to commit), or
// empty with a reserver goroutine writing and syncing AHEAD bytes of
// zeros past each file's data while the writers run (live: what keeping
// the zeros layout costs once its zeros have to be written too; a write
// past a file's durable zeros gets an fdatasync in its round). A
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
	layout := flag.String("layout", "alloc", "append, alloc, zeros or live")
	ahead := flag.Int64("ahead", 256<<10, "live: bytes of zeros a reserver goroutine writes and syncs past a file's data at a time")
	syncMode := flag.String("sync", "syncfs", "syncfs, fdatasync or range")
	per := flag.Int("per", 30, "files written per round")
	workers := flag.Int("workers", 4, "concurrent writers, each syncing its own rounds")
	size := flag.Int("size", 62<<10, "bytes written to a file per round")
	reserve := flag.Int64("reserve", 1<<20, "bytes allocated or zeroed per file beforehand (alloc, zeros); writes wrap within it")
	dur := flag.Duration("dur", 6*time.Second, "measured duration")
	flag.Parse()
	if err := run(*dir, *files, *layout, *syncMode, *per, *workers, *size, *reserve, *ahead, *dur); err != nil {
		fmt.Fprintln(os.Stderr, "roundprobe:", err)
		os.Exit(1)
	}
}

type file struct {
	mu   sync.Mutex
	f    *os.File
	size int64
	// live layout: zeros written up to zeroEnd, durable up to durable.
	zeroEnd, durable int64
}

func run(dir string, nfiles int, layout, syncMode string, per, workers, size int, reserve, ahead int64, dur time.Duration) error {
	switch layout {
	case "append", "alloc", "zeros", "live":
	default:
		return fmt.Errorf("layout %q: want append, alloc or zeros", layout)
	}
	switch syncMode {
	case "syncfs", "fdatasync", "range":
	default:
		return fmt.Errorf("sync %q: want syncfs, fdatasync or range", syncMode)
	}
	if (layout == "alloc" || layout == "zeros") && int64(size) > reserve {
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
	var zeroBytes, fallbacks atomic.Int64
	if layout == "live" {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := reserveLive(fs, zeros, int64(size), ahead, stop, &zeroBytes); err != nil {
				fail(err)
			}
		}()
	}
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			picked := make([]*file, per)
			var full []*file
			for time.Now().Before(stop) {
				full = full[:0]
				for k := range picked {
					f := fs[rng.IntN(nfiles)]
					picked[k] = f
					f.mu.Lock()
					off := f.size
					if (layout == "alloc" || layout == "zeros") && off+int64(size) > reserve {
						off = 0
					}
					if layout == "live" && off+int64(size) > f.durable {
						full = append(full, f) // past the durable zeros: fdatasync
					}
					_, err := f.f.WriteAt(data, off)
					f.size = off + int64(size)
					f.zeroEnd = max(f.zeroEnd, f.size)
					f.mu.Unlock()
					if err != nil {
						fail(err)
						return
					}
				}
				start := time.Now()
				fallbacks.Add(int64(len(full)))
				if err := syncRound(d, picked, full, syncMode); err != nil {
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
	fmt.Printf("layout=%s sync=%s files=%d per=%d workers=%d size=%d: %.0f MB/s durable, %d rounds, sync %.2f ms a round",
		layout, syncMode, nfiles, per, workers, size, float64(bytes.Load())/dur.Seconds()/1e6, rounds.Load(), float64(syncNs.Load())/float64(n)/1e6)
	if layout == "live" {
		fmt.Printf(", zeros %.0f MB/s, %.1f%% of writes past the durable zeros", float64(zeroBytes.Load())/dur.Seconds()/1e6,
			100*float64(fallbacks.Load())/float64(n*int64(per)))
	}
	fmt.Println()
	return nil
}

// reserveLive keeps zeros written and synced ahead of each file's data:
// whenever a file has less than two writes' worth left it gets ahead
// more, written and made durable (fdatasync, the size changes) in
// batches of files, off the writers' rounds.
func reserveLive(fs []*file, zeros []byte, size, ahead int64, stop time.Time, zeroBytes *atomic.Int64) error {
	type ext struct {
		f   *file
		end int64
	}
	var batch []ext
	for time.Now().Before(stop) {
		batch = batch[:0]
		for _, f := range fs {
			f.mu.Lock()
			if f.zeroEnd-f.size < 2*size {
				from := f.zeroEnd
				for off := from; off < from+ahead; off += int64(len(zeros)) {
					if _, err := f.f.WriteAt(zeros[:min(int64(len(zeros)), from+ahead-off)], off); err != nil {
						f.mu.Unlock()
						return err
					}
				}
				f.zeroEnd = from + ahead
				zeroBytes.Add(ahead)
				batch = append(batch, ext{f, f.zeroEnd})
			}
			f.mu.Unlock()
			if len(batch) == 64 {
				break
			}
		}
		if len(batch) == 0 {
			time.Sleep(time.Millisecond)
			continue
		}
		errs := make(chan error, len(batch))
		for _, e := range batch {
			go func() { errs <- unix.Fdatasync(int(e.f.f.Fd())) }()
		}
		for range batch {
			if err := <-errs; err != nil {
				return err
			}
		}
		for _, e := range batch {
			e.f.mu.Lock()
			e.f.durable = max(e.f.durable, e.end)
			e.f.mu.Unlock()
		}
	}
	return nil
}

func syncRound(d *os.File, picked, full []*file, mode string) error {
	if len(full) > 0 && mode == "range" {
		// Writes past the durable zeros need their metadata: an
		// fdatasync each, beside the data-only round of the rest.
		errs := make(chan error, len(full))
		for _, f := range full {
			go func() { errs <- unix.Fdatasync(int(f.f.Fd())) }()
		}
		err := syncRound(d, picked, nil, mode)
		for range full {
			if e := <-errs; e != nil && err == nil {
				err = e
			}
		}
		return err
	}
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
