// Package proc reads a process's CPU time and memory, and the host's CPU
// time, from Linux's /proc. CPU time comes from /proc/PID/stat (utime +
// stime in clock ticks of CLK_TCK, normally 100 per second); memory from
// /proc/PID/status (VmRSS, VmHWM). Reading another process's /proc files
// costs that process nothing, which is why the benchmark measures brokers
// this way instead of asking them.
package proc

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Stat is one reading of a process.
type Stat struct {
	// Time is when the reading was taken.
	Time time.Time
	// CPU is user plus system time since the process started, in
	// CLK_TCK resolution (10 ms with the usual 100 Hz).
	CPU time.Duration
	// RSS is the resident set size (VmRSS) in bytes.
	RSS int64
	// HWM is the peak resident set size (VmHWM) in bytes.
	HWM int64
}

var (
	tckOnce sync.Once
	tck     = 100
)

// ClockTicks returns CLK_TCK, from getconf when it answers, else 100 (the
// value on every Linux architecture Go supports in practice).
func ClockTicks() int {
	tckOnce.Do(func() {
		out, err := exec.Command("getconf", "CLK_TCK").Output()
		if err != nil {
			return
		}
		if n, err := strconv.Atoi(strings.TrimSpace(string(out))); err == nil && n > 0 {
			tck = n
		}
	})
	return tck
}

// Read reads process pid; pid 0 means this process.
func Read(pid int) (Stat, error) {
	dir := "/proc/self"
	if pid != 0 {
		dir = "/proc/" + strconv.Itoa(pid)
	}
	now := time.Now()
	stat, err := os.ReadFile(dir + "/stat")
	if err != nil {
		return Stat{}, err
	}
	cpu, err := parseStatCPU(stat)
	if err != nil {
		return Stat{}, fmt.Errorf("%s/stat: %w", dir, err)
	}
	status, err := os.ReadFile(dir + "/status")
	if err != nil {
		return Stat{}, err
	}
	ticks := time.Second / time.Duration(ClockTicks())
	return Stat{
		Time: now,
		CPU:  time.Duration(cpu) * ticks,
		RSS:  statusKiB(status, "VmRSS:") * 1024,
		HWM:  statusKiB(status, "VmHWM:") * 1024,
	}, nil
}

// parseStatCPU returns utime+stime (fields 14 and 15) in ticks. The
// command name (field 2) may contain spaces and parentheses, so fields
// are counted from the last ')'.
func parseStatCPU(b []byte) (uint64, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("no ')' in stat")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime is field 14 → f[11], stime f[12].
	if len(f) < 13 {
		return 0, errors.New("short stat")
	}
	u, err := strconv.ParseUint(f[11], 10, 64)
	if err != nil {
		return 0, err
	}
	s, err := strconv.ParseUint(f[12], 10, 64)
	if err != nil {
		return 0, err
	}
	return u + s, nil
}

func statusKiB(b []byte, key string) int64 {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, key); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n
			}
		}
	}
	return 0
}

// Host is a reading of the whole machine's CPU time from /proc/stat, in
// ticks summed over all CPUs.
type Host struct {
	Busy, Total uint64
	// Steal is time the hypervisor ran something else while this
	// machine's CPUs had work (counted in Busy too): on a shared VM it
	// is what stalls every process at once, latency's worst enemy.
	Steal uint64
}

// ReadHost reads the aggregate "cpu" line of /proc/stat. Busy is
// everything but idle and iowait.
func ReadHost() (Host, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return Host{}, err
	}
	line, _, _ := bytes.Cut(b, []byte{'\n'})
	f := strings.Fields(string(line))
	if len(f) < 6 || f[0] != "cpu" {
		return Host{}, errors.New("/proc/stat: no cpu line")
	}
	var h Host
	for i, s := range f[1:] {
		if i >= 8 { // guest and guest_nice are already in user and nice
			break
		}
		n, _ := strconv.ParseUint(s, 10, 64)
		h.Total += n
		if i != 3 && i != 4 { // idle, iowait
			h.Busy += n
		}
		if i == 7 {
			h.Steal = n
		}
	}
	return h, nil
}

// StealCores returns how many CPUs' worth of time the hypervisor took
// between a and b.
func StealCores(a, b Host, ncpu int) float64 {
	return cores(b.Steal-a.Steal, a, b, ncpu)
}

// BusyCores returns how many CPUs were busy on average between a and b.
func BusyCores(a, b Host, ncpu int) float64 {
	return cores(b.Busy-a.Busy, a, b, ncpu)
}

// cores converts ticks spent between readings a and b into CPUs' worth.
func cores(ticks uint64, a, b Host, ncpu int) float64 {
	dt := float64(b.Total - a.Total)
	if dt <= 0 {
		return 0
	}
	return float64(ticks) / dt * float64(ncpu)
}

// ListenerPID returns the process listening on TCP port on this machine,
// found through /proc/net/tcp{,6} and the processes' open sockets.
func ListenerPID(port int) (int, error) {
	inodes := map[string]bool{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			fs := strings.Fields(line)
			if len(fs) < 10 || fs[3] != "0A" { // 0A = LISTEN
				continue
			}
			_, p, ok := strings.Cut(fs[1], ":")
			if !ok {
				continue
			}
			if n, err := strconv.ParseUint(p, 16, 32); err == nil && int(n) == port {
				inodes["socket:["+fs[9]+"]"] = true
			}
		}
	}
	if len(inodes) == 0 {
		return 0, fmt.Errorf("nothing listens on port %d", port)
	}
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		fds, err := os.ReadDir("/proc/" + p.Name() + "/fd")
		if err != nil {
			continue
		}
		for _, fd := range fds {
			l, err := os.Readlink("/proc/" + p.Name() + "/fd/" + fd.Name())
			if err == nil && inodes[l] {
				return pid, nil
			}
		}
	}
	return 0, fmt.Errorf("no process owns the listener on port %d", port)
}
