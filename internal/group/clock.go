package group

import "time"

// Clock is the coordinator's time source. Tests use a manual clock so
// timeouts fire deterministically.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f on its own goroutine after d.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a Clock's pending call.
type Timer interface {
	// Stop prevents the call if it has not started; it reports whether
	// it did.
	Stop() bool
}

// RealClock is the system clock; Now may be overridden (the broker's).
type RealClock struct {
	// NowFunc replaces time.Now when set.
	NowFunc func() time.Time
}

// Now implements Clock.
func (c RealClock) Now() time.Time {
	if c.NowFunc != nil {
		return c.NowFunc()
	}
	return time.Now()
}

// AfterFunc implements Clock.
func (RealClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }
