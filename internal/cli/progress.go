package cli

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// progress draws a live count and rate on a terminal's stderr during a
// long produce or consume, and erases it at the end. When the terminal
// is not there (a pipe, a CI log) it does nothing.
type progress struct {
	verb           string
	w              io.Writer
	start          time.Time
	records, bytes atomic.Int64
	stop           chan struct{}
	wg             sync.WaitGroup
}

// progressInterval is how often the line is redrawn.
const progressInterval = 250 * time.Millisecond

func startProgress(w io.Writer, verb string, on bool) *progress {
	p := &progress{verb: verb, w: w, start: time.Now()}
	if !on {
		return p
	}
	p.stop = make(chan struct{})
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(progressInterval)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				fmt.Fprint(p.w, "\r\x1b[K")
				return
			case <-t.C:
				fmt.Fprintf(p.w, "\r\x1b[K%s", p.line())
			}
		}
	}()
	return p
}

func (p *progress) add(records, bytes int64) {
	p.records.Add(records)
	p.bytes.Add(bytes)
}

func (p *progress) line() string {
	secs := time.Since(p.start).Seconds()
	n, b := p.records.Load(), p.bytes.Load()
	rate, brate := 0.0, 0.0
	if secs > 0 {
		rate, brate = float64(n)/secs, float64(b)/secs
	}
	return fmt.Sprintf("%s %d records, %s  (%.0f records/s, %s/s)", p.verb, n, humanBytes(b), rate, humanBytes(int64(brate)))
}

// finish erases the line. Idempotent.
func (p *progress) finish() {
	if p.stop == nil {
		return
	}
	close(p.stop)
	p.wg.Wait()
	p.stop = nil
}
