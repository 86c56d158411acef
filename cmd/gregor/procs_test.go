package main

import (
	"runtime"
	"testing"
)

// TestRaiseProcs checks that recovery's GOMAXPROCS is raised and put
// back: to the runtime's default, or to what the GOMAXPROCS variable set.
func TestRaiseProcs(t *testing.T) {
	def := runtime.GOMAXPROCS(0)
	defer runtime.GOMAXPROCS(def)

	t.Setenv("GOMAXPROCS", "")
	runtime.SetDefaultGOMAXPROCS()
	def = runtime.GOMAXPROCS(0)
	restore := raiseProcs(def + 3)
	if got := runtime.GOMAXPROCS(0); got != def+3 {
		t.Fatalf("raised GOMAXPROCS is %d, want %d", got, def+3)
	}
	restore()
	if got := runtime.GOMAXPROCS(0); got != def {
		t.Fatalf("restored GOMAXPROCS is %d, want the default %d", got, def)
	}

	// Set by the operator: back to their value, not the default.
	t.Setenv("GOMAXPROCS", "1")
	runtime.GOMAXPROCS(1)
	restore = raiseProcs(4)
	if got := runtime.GOMAXPROCS(0); got != 4 {
		t.Fatalf("raised GOMAXPROCS is %d, want 4", got)
	}
	restore()
	if got := runtime.GOMAXPROCS(0); got != 1 {
		t.Fatalf("restored GOMAXPROCS is %d, want the operator's 1", got)
	}

	// Already high enough: left alone.
	runtime.GOMAXPROCS(8)
	raiseProcs(4)()
	if got := runtime.GOMAXPROCS(0); got != 8 {
		t.Fatalf("GOMAXPROCS is %d, want 8 left alone", got)
	}
}
