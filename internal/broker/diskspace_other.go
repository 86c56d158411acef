//go:build !(linux || darwin || freebsd)

package broker

// diskSpace is unknown on this platform: DescribeLogDirs reports -1.
func diskSpace(string) (total, usable int64, ok bool) { return 0, 0, false }
