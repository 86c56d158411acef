package vfs

import (
	"runtime"
	"testing"
	"testing/fstest"
)

func TestMemoryLimit(t *testing.T) {
	const meminfo = "MemTotal:       24684100 kB\nMemFree:         1000 kB\n"
	const total = 24684100 << 10
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	for _, c := range []struct {
		name  string
		files fstest.MapFS
		want  int64
	}{
		{"no proc", fstest.MapFS{}, 0},
		{"meminfo only", fstest.MapFS{"proc/meminfo": file(meminfo)}, total},
		{"bad meminfo", fstest.MapFS{"proc/meminfo": file("MemTotal: lots\n")}, 0},
		{"v1 unlimited", fstest.MapFS{
			"proc/meminfo":     file(meminfo),
			"proc/self/cgroup": file("4:memory:/api/x\n0::/\n"),
			"sys/fs/cgroup/memory/api/x/memory.limit_in_bytes": file("9223372036854771712\n"),
		}, total},
		{"v1 limit on a parent", fstest.MapFS{
			"proc/meminfo":     file(meminfo),
			"proc/self/cgroup": file("4:cpu,memory:/api/x\n"),
			"sys/fs/cgroup/memory/api/x/memory.limit_in_bytes": file("9223372036854771712\n"),
			"sys/fs/cgroup/memory/api/memory.limit_in_bytes":   file("2147483648\n"),
		}, 2 << 30},
		{"v2 limit", fstest.MapFS{
			"proc/meminfo":     file(meminfo),
			"proc/self/cgroup": file("0::/system.slice/gregor.service\n"),
			"sys/fs/cgroup/system.slice/gregor.service/memory.max": file("1073741824\n"),
			"sys/fs/cgroup/system.slice/memory.max":                file("max\n"),
		}, 1 << 30},
		{"v2 limit above the machine", fstest.MapFS{
			"proc/meminfo":             file(meminfo),
			"proc/self/cgroup":         file("0::/\n"),
			"sys/fs/cgroup/memory.max": file("107374182400\n"),
		}, total},
	} {
		if got := memoryLimit(c.files); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}
	if got := MemoryLimit(); runtime.GOOS == "linux" && got <= 0 {
		t.Errorf("MemoryLimit() = %d on Linux", got)
	}
}
