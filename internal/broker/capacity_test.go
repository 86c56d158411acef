package broker

import "testing"

func TestPartitionCapacity(t *testing.T) {
	for _, tc := range []struct{ lim, want int64 }{
		{-1, -1},
		{0, 0},
		{1024, 512},
		{4096, 2048},
		{20000, 20000 - 3024},
		{1 << 20, 1<<20 - 3024},
	} {
		if got := partitionCapacity(tc.lim); got != tc.want {
			t.Errorf("partitionCapacity(%d) = %d, want %d", tc.lim, got, tc.want)
		}
	}
}
