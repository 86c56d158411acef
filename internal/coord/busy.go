package coord

import (
	"sync"
	"sync/atomic"
)

// closedBit marks Busy's count once Close started.
const closedBit = 1 << 62

// Busy counts the work a coordinator's Close waits for: requests being
// queued, running mailboxes, appends in flight, loaders, timer sweeps.
// Close sets closedBit, after which Enter refuses; idle is closed when
// the count reaches zero after that. The zero value is ready to use.
type Busy struct {
	n atomic.Int64
	// closeOnce makes idle, before closedBit is set, so every Release
	// that sees closedBit finds it.
	closeOnce sync.Once
	idle      chan struct{}
	idleOnce  sync.Once
}

// Enter registers work that Close must wait for; false once closed.
func (b *Busy) Enter() bool {
	for {
		n := b.n.Load()
		if n&closedBit != 0 {
			return false
		}
		if b.n.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// Acquire registers internal work (a mailbox run, an append) that
// exists because earlier registered work does; it is allowed while
// closing, since that work is still counted.
func (b *Busy) Acquire() { b.n.Add(1) }

// Release ends work registered by Enter or Acquire.
func (b *Busy) Release() {
	if b.n.Add(-1) == closedBit {
		b.idleOnce.Do(func() { close(b.idle) })
	}
}

// Count returns the work in flight; tests wait for it to reach zero.
func (b *Busy) Count() int64 { return b.n.Load() &^ closedBit }

// Close refuses further Enter calls and waits until the work in flight
// is released. Idempotent; concurrent calls all wait.
func (b *Busy) Close() {
	b.closeOnce.Do(func() {
		b.idle = make(chan struct{})
		if b.n.Or(closedBit)&^closedBit == 0 {
			b.idleOnce.Do(func() { close(b.idle) })
		}
	})
	<-b.idle
}
