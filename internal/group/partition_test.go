package group

import "testing"

// The expected values were computed independently with Java's
// String.hashCode rules (UTF-16 code units, int32 overflow).
func TestPartitionFor(t *testing.T) {
	tests := []struct {
		group string
		hash  int32
		p50   int32
	}{
		{"", 0, 0},
		{"hello", 99162322, 22},
		// Integer.MIN_VALUE: Kafka's Utils.abs maps it to 0.
		{"polygenelubricants", -2147483648, 0},
		{"my-group", -1906497762, 12},
		{"consumer-group-1", 147483020, 20},
		{"グループ", 383750870, 20},
		// A surrogate pair counts as two code units.
		{"😀emoji", -1233692477, 27},
	}
	for _, tt := range tests {
		if h := javaStringHashCode(tt.group); h != tt.hash {
			t.Errorf("javaStringHashCode(%q) = %d, want %d", tt.group, h, tt.hash)
		}
		if p := PartitionFor(tt.group, 50); p != tt.p50 {
			t.Errorf("PartitionFor(%q, 50) = %d, want %d", tt.group, p, tt.p50)
		}
		if p := PartitionFor(tt.group, 1); p != 0 {
			t.Errorf("PartitionFor(%q, 1) = %d", tt.group, p)
		}
	}
}
