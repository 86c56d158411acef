package load

import (
	"runtime/debug"
	"testing"
)

func TestSetGCPercent(t *testing.T) {
	before := debug.SetGCPercent(150)
	defer debug.SetGCPercent(before)

	restore := setGCPercent(0)
	if got := debug.SetGCPercent(DefaultGCPercent); got != DefaultGCPercent {
		t.Errorf("setGCPercent(0) set GOGC %d, want %d", got, DefaultGCPercent)
	}
	restore()
	if got := debug.SetGCPercent(150); got != 150 {
		t.Errorf("after restore GOGC is %d, want 150", got)
	}

	restore = setGCPercent(300)
	if got := debug.SetGCPercent(300); got != 300 {
		t.Errorf("setGCPercent(300) set GOGC %d", got)
	}
	restore()

	restore = setGCPercent(-1)
	if got := debug.SetGCPercent(150); got != 150 {
		t.Errorf("setGCPercent(-1) changed GOGC to %d", got)
	}
	restore()
	if got := debug.SetGCPercent(150); got != 150 {
		t.Errorf("restore after setGCPercent(-1) changed GOGC to %d", got)
	}
}
