package partlog

import (
	"sync"
	"testing"

	"github.com/gregor-streaming/gregor/internal/batch"
)

// TestConcurrentTailReads pins a bug where the read window's shift copied
// nothing and a read returned the batch before the requested offset.
func TestConcurrentTailReads(t *testing.T) {
	tl := openTest(t, nil, Config{SegmentBytes: 1 << 30, IndexIntervalBytes: 300})
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(stop)
		for i := range 1500 {
			tl.Append(mkBatch(t, 1+i%4, int64(i), 50+i%200), 0)
		}
	}()
	for r := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 0, 64<<10)
			for {
				select {
				case <-stop:
					return
				default:
				}
				off := max(tl.LogEndOffset()-3, 0)
				if r > 0 {
					off = max(tl.LogEndOffset()-int64(r*20), 0)
				}
				out, err := tl.Read(buf[:0], off, 16<<10, 1<<62, true)
				if err != nil {
					t.Error(err)
					return
				}
				if len(out) == 0 {
					continue
				}
				h, _ := batch.Validate(out)
				if h.LastOffset() < off {
					out2, _ := tl.Read(nil, off, 16<<10, 1<<62, true)
					h2, _ := batch.Validate(out2)
					t.Errorf("r%d read %d got %d..%d (len %d); again: %d..%d", r, off, h.BaseOffset, h.LastOffset(), len(out), h2.BaseOffset, h2.LastOffset())
					return
				}
			}
		}()
	}
	wg.Wait()
}
