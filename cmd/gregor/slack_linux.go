package main

import (
	"os"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// slackReexecEnv marks the process gregor serve re-executed into, so
// that a kernel refusing the slack (real-time tasks have none) cannot
// make it execute itself forever.
const slackReexecEnv = "GREGOR_TIMER_SLACK_SET"

// setTimerSlack gives the process a timer slack of ns nanoseconds. A
// thread's slack is copied to the threads it creates, and the Go
// runtime made its threads before any of gregor's code ran, so this
// sets the slack on the current thread and executes the same binary
// again from it, keeping the process ID, arguments and environment.
// It returns only if the slack is already in place or cannot be set;
// the error says why not.
//
// Why: while the process is busy, the runtime's monitor thread (sysmon)
// sleeps 20 µs at a time and wakes for each, a context switch that on
// a virtual machine costs about as much as the sleep. Linux adds the
// slack to every such sleep, so at 1 ms the thread wakes about a tenth
// as often. docs/PERFORMANCE.md has the measurements.
func setTimerSlack(ns int64) error {
	if ns <= 0 || os.Getenv(slackReexecEnv) != "" {
		return nil
	}
	runtime.LockOSThread() // prctl and execve act on the calling thread
	defer runtime.UnlockOSThread()
	cur, err := unix.PrctlRetInt(unix.PR_GET_TIMERSLACK, 0, 0, 0, 0)
	if err != nil || int64(cur) == ns {
		return err
	}
	if err := unix.Prctl(unix.PR_SET_TIMERSLACK, uintptr(ns), 0, 0, 0); err != nil {
		return err
	}
	env := append(os.Environ(), slackReexecEnv+"=1")
	err = syscall.Exec(executable(), os.Args, env)
	// Still here: the exec failed. Put this thread's slack back so
	// that the process stays uniform.
	unix.Prctl(unix.PR_SET_TIMERSLACK, uintptr(cur), 0, 0, 0)
	return err
}

// executable returns the path of the running binary, so that the
// process keeps its name (ps, top and pgrep show the file name an exec
// was given: "exe" for /proc/self/exe). If the file at that path is no
// longer the one running (replaced by an upgrade), it returns
// /proc/self/exe, which still is.
func executable() string {
	const self = "/proc/self/exe"
	path, err := os.Executable()
	if err != nil {
		return self
	}
	var running, named unix.Stat_t
	if unix.Stat(self, &running) != nil || unix.Stat(path, &named) != nil ||
		running.Dev != named.Dev || running.Ino != named.Ino {
		return self
	}
	return path
}
