//go:build linux || darwin || freebsd

package broker

import "syscall"

// openFileLimit is the process's open-file limit (the soft limit, which
// Go raises to the hard one at start), or -1 if it has none.
func openFileLimit() int64 {
	var r syscall.Rlimit
	// RLIM_INFINITY is all ones.
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil || r.Cur > 1<<40 {
		return -1
	}
	return int64(r.Cur)
}
