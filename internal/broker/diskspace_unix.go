//go:build linux || darwin || freebsd

package broker

import "syscall"

// diskSpace returns the total and usable bytes of the file system
// holding dir (DescribeLogDirs v4).
func diskSpace(dir string) (total, usable int64, ok bool) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, 0, false
	}
	bs := int64(st.Bsize)
	return int64(st.Blocks) * bs, int64(st.Bavail) * bs, true
}
