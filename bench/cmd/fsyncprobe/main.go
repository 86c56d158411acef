// Command fsyncprobe measures what a durable append costs on the disk
// under a directory: N appends of SIZE bytes each followed by
// fdatasync, against N overwrites of space that was written and synced
// beforehand followed by fdatasync (what a preallocated segment would
// do: no size change, so no file system metadata to commit). It prints
// CPU (this process's user+system time) and wall time per operation and
// the latency p50/p99/p999/max, alternating the modes REPS times. A third mode,
// keepsize, appends into space reserved with fallocate(KEEP_SIZE): the
// blocks are allocated beforehand, but each append still moves the size;
// falloc overwrites space reserved with a plain fallocate (unwritten
// extents, which each write must convert).
//
//	go run ./cmd/fsyncprobe -dir /path/on/the/data/disk
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"
)

func main() {
	dir := flag.String("dir", os.TempDir(), "directory on the disk to probe")
	n := flag.Int("n", 3000, "operations per run")
	size := flag.Int("size", 1024, "bytes per operation")
	reps := flag.Int("reps", 3, "alternating repetitions of all modes")
	flag.Parse()
	for range *reps {
		for _, mode := range []string{"append", "overwrite", "keepsize", "falloc"} {
			if err := probe(*dir, *n, *size, mode); err != nil {
				fmt.Fprintln(os.Stderr, "fsyncprobe:", err)
				os.Exit(1)
			}
		}
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func probe(dir string, n, size int, mode string) error {
	f, err := os.CreateTemp(dir, "fsyncprobe-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	fd := int(f.Fd())
	overwrite := mode == "overwrite" || mode == "falloc"
	if mode == "keepsize" || mode == "falloc" {
		flags := uint32(0)
		if mode == "keepsize" {
			flags = 1 // FALLOC_FL_KEEP_SIZE
		}
		if err := syscall.Fallocate(fd, flags, 0, int64(n*size)); err != nil {
			return err
		}
		if err := syscall.Fsync(fd); err != nil {
			return err
		}
	}
	if mode == "overwrite" {
		zero := make([]byte, 1<<20)
		for written := 0; written < n*size; written += len(zero) {
			if _, err := f.Write(zero); err != nil {
				return err
			}
		}
		if err := syscall.Fsync(fd); err != nil {
			return err
		}
	}
	buf := make([]byte, size)
	lat := make([]time.Duration, n)
	cpu0, wall0 := cpuTime(), time.Now()
	for i := range n {
		start := time.Now()
		if overwrite {
			_, err = f.WriteAt(buf, int64(i*size))
		} else {
			_, err = f.Write(buf)
		}
		if err == nil {
			err = syscall.Fdatasync(fd)
		}
		if err != nil {
			return err
		}
		lat[i] = time.Since(start)
	}
	cpu, wall := cpuTime()-cpu0, time.Since(wall0)
	slices.Sort(lat)
	fmt.Printf("%-9s %s  n=%d  cpu/op %6.1f µs  wall/op %6.1f µs  p50 %v  p99 %v  p999 %v  max %v\n",
		mode, filepath.Base(dir), n, float64(cpu.Microseconds())/float64(n), float64(wall.Microseconds())/float64(n),
		lat[n/2].Round(time.Microsecond), lat[n*99/100].Round(time.Microsecond),
		lat[n*999/1000].Round(time.Microsecond), lat[n-1].Round(time.Microsecond))
	return nil
}
