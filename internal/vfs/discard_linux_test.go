package vfs

import "testing"

func TestMountinfoDiscard(t *testing.T) {
	const mi = `23 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw,discard,resv_strict
24 23 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:2 - proc proc rw
25 23 254:16 / /data rw,relatime - xfs /dev/vdb rw,attr2,nodiscard
26 23 254:32 / /logs rw,relatime,discard - ext4 /dev/vdc rw
`
	for _, c := range []struct {
		major, minor uint32
		want         bool
	}{{254, 0, true}, {0, 21, false}, {254, 16, false}, {254, 32, true}, {8, 1, false}} {
		if got := mountinfoDiscard(mi, c.major, c.minor); got != c.want {
			t.Errorf("%d:%d: discard %v, want %v", c.major, c.minor, got, c.want)
		}
	}
	// This machine: whatever it says, asking must not fail or panic.
	_ = OnlineDiscard(Default, t.TempDir())
}
