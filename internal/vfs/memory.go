package vfs

import (
	"bufio"
	"bytes"
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"
)

// MemoryLimit is how much memory this process may use, page cache
// included: the machine's (MemTotal in /proc/meminfo), or its cgroup's
// limit where that is lower (cgroup v2 memory.max or v1
// memory.limit_in_bytes, of the process's cgroup and each parent, as
// the kernel applies them). 0 where it cannot be read (not Linux).
func MemoryLimit() int64 { return memoryLimit(os.DirFS("/")) }

// noLimit: limits at least this large mean none (v1 writes
// PAGE_COUNTER_MAX pages, about 2^63 bytes).
const noLimit = 1 << 62

func memoryLimit(fsys fs.FS) int64 {
	total := memTotal(fsys)
	if total <= 0 {
		return 0
	}
	cg, err := fs.ReadFile(fsys, "proc/self/cgroup")
	if err != nil {
		return total
	}
	for _, line := range strings.Split(string(cg), "\n") {
		// hierarchy-ID:controller-list:cgroup-path
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 || !strings.HasPrefix(parts[2], "/") {
			continue
		}
		var dir, file string
		switch {
		case parts[0] == "0" && parts[1] == "":
			dir, file = "sys/fs/cgroup", "memory.max"
		case hasController(parts[1], "memory"):
			dir, file = "sys/fs/cgroup/memory", "memory.limit_in_bytes"
		default:
			continue
		}
		for p := path.Clean(parts[2]); ; p = path.Dir(p) {
			if n := readLimit(fsys, path.Join(dir, p, file)); n > 0 && n < total {
				total = n
			}
			if p == "/" {
				break
			}
		}
	}
	return total
}

func hasController(list, name string) bool {
	for c := range strings.SplitSeq(list, ",") {
		if c == name {
			return true
		}
	}
	return false
}

// readLimit reads a cgroup memory limit file: bytes, or 0 for "max",
// no limit, or a file that is not there.
func readLimit(fsys fs.FS, name string) int64 {
	b, err := fs.ReadFile(fsys, name)
	if err != nil {
		return 0
	}
	n, err := strconv.ParseInt(string(bytes.TrimSpace(b)), 10, 64)
	if err != nil || n <= 0 || n >= noLimit {
		return 0
	}
	return n
}

// memTotal reads MemTotal from /proc/meminfo, in bytes; 0 if absent.
func memTotal(fsys fs.FS) int64 {
	f, err := fsys.Open("proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:")
		if !ok {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) != 2 || fields[1] != "kB" {
			return 0
		}
		n, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil || n <= 0 || n >= noLimit>>10 {
			return 0
		}
		return n << 10
	}
	return 0
}
