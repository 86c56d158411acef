//go:build !(linux || darwin || freebsd)

package broker

// openFileLimit is unknown on this platform: no partition limit.
func openFileLimit() int64 { return -1 }
