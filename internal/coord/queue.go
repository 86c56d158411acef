package coord

import "sync"

// Queue is a mailbox's queue of messages F. Anyone pushes; one drain
// loop takes them in batches, and exists only while the queue is
// non-empty: Push reports when the caller must start it, and the loop
// ends when Take returns nil.
type Queue[F any] struct {
	// mu guards queue and running.
	mu      sync.Mutex
	queue   []F
	running bool
}

// Push queues fn; it reports whether no drain loop runs, in which case
// the caller starts one.
func (q *Queue[F]) Push(fn F) (start bool) {
	q.mu.Lock()
	q.queue = append(q.queue, fn)
	start = !q.running
	q.running = true
	q.mu.Unlock()
	return start
}

// Take returns the messages queued since the last Take, in order. It
// returns nil when there are none: the drain loop must then return, and
// the next Push starts another.
func (q *Queue[F]) Take() []F {
	q.mu.Lock()
	defer q.mu.Unlock()
	fns := q.queue
	q.queue = nil
	if len(fns) == 0 {
		q.running = false
		return nil
	}
	return fns
}
