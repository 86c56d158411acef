package proc

import (
	"os"
	"testing"
	"time"
)

func TestParseStatCPU(t *testing.T) {
	tests := []struct {
		name string
		stat string
		want uint64
	}{
		{"plain", "123 (gregor) S 1 123 123 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 8 0", 325},
		{"spaces and parens in comm", "77 (a (b) c) R 1 77 77 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0", 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStatCPU([]byte(tt.stat))
			if err != nil || got != tt.want {
				t.Fatalf("parseStatCPU = %d, %v; want %d", got, err, tt.want)
			}
		})
	}
	if _, err := parseStatCPU([]byte("1 (x) S 1")); err == nil {
		t.Fatal("short stat: want an error")
	}
}

func TestReadSelf(t *testing.T) {
	a, err := Read(0)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for x := 0; time.Now().Before(deadline); x++ { // burn some CPU
		_ = x * x
	}
	b, err := Read(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if b.CPU <= a.CPU {
		t.Fatalf("CPU did not advance: %v -> %v", a.CPU, b.CPU)
	}
	if b.RSS <= 0 || b.HWM < b.RSS {
		t.Fatalf("RSS %d, HWM %d", b.RSS, b.HWM)
	}
}

func TestBusyCores(t *testing.T) {
	a, b := Host{Busy: 100, Total: 400, Steal: 10}, Host{Busy: 200, Total: 600, Steal: 60}
	if got := BusyCores(a, b, 2); got != 1 {
		t.Fatalf("BusyCores = %v, want 1", got)
	}
	if got := StealCores(a, b, 2); got != 0.5 {
		t.Fatalf("StealCores = %v, want 0.5", got)
	}
}
