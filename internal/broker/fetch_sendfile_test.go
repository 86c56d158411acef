package broker_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/gregor-streaming/gregor/internal/ktest"
)

// openUnder lists this process's open descriptors for files under dir.
func openUnder(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	var out []string
	for _, e := range ents {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err == nil && strings.HasPrefix(target, dir) {
			out = append(out, target)
		}
	}
	return out
}

// Fetches of large batches are sent from segment files (sendfile) while
// retention deletes those segments and consumers fall behind, reset and
// disconnect: every consumer reads the records it gets intact and in
// order, and no segment stays open once the broker has no reader on it
// (a span whose response was never written would pin its file).
func TestSendfileSpansSurviveRetention(t *testing.T) {
	b := ktest.NewBroker(t, ktest.Set("log.retention.check.interval.ms", "50"))
	b.CreateTopic("spans", 1, map[string]*string{
		"segment.bytes":   ptr("1048576"),
		"retention.bytes": ptr("3145728"),
	})
	ctx := ctxT(t, 60*time.Second)
	prod := b.Client(kgo.DefaultProduceTopic("spans"), kgo.ProducerLinger(5*time.Millisecond), kgo.ProducerBatchMaxBytes(256<<10),
		kgo.ProducerBatchCompression(kgo.NoCompression()))
	const n, size = 6000, 4 << 10
	value := func(i int) []byte {
		v := bytes.Repeat([]byte{byte(i)}, size)
		v[0], v[1] = byte(i>>8), byte(i)
		return v
	}

	var wg sync.WaitGroup
	errs := make(chan error, 8)
	// Consumers that read slowly from the start (retention deletes
	// segments under their fetches) and ones that hang up mid-stream.
	for c := range 4 {
		wg.Go(func() {
			cl := b.Client(kgo.ConsumeTopics("spans"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
				kgo.FetchMaxWait(100*time.Millisecond), kgo.FetchMaxBytes(1<<20))
			defer cl.Close()
			last := int64(-1)
			cctx, cancel := context.WithTimeout(ctx, time.Duration(2+c)*time.Second)
			defer cancel()
			for {
				fs := cl.PollFetches(cctx)
				if cctx.Err() != nil {
					return
				}
				var bad error
				fs.EachRecord(func(r *kgo.Record) {
					i := int(r.Value[0])<<8 | int(r.Value[1])
					if r.Offset <= last || !bytes.Equal(r.Value, value(i)) || int64(i) != r.Offset {
						bad = fmt.Errorf("consumer %d: record at offset %d (after %d) is not the one produced", c, r.Offset, last)
					}
					last = r.Offset
				})
				if bad != nil {
					errs <- bad
					return
				}
				if c%2 == 1 {
					time.Sleep(20 * time.Millisecond)
				}
			}
		})
	}
	for i := range n {
		prod.Produce(ctx, &kgo.Record{Value: value(i)}, func(_ *kgo.Record, err error) {
			if err != nil {
				select {
				case errs <- err:
				default:
				}
			}
		})
	}
	if err := prod.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// Retention ran (the log start offset moved) and, with every reader
	// gone, only the live segments remain open.
	deadline := time.Now().Add(10 * time.Second)
	for {
		var deleted []string
		for _, f := range openUnder(t, b.Dir) {
			if strings.HasSuffix(f, "(deleted)") {
				deleted = append(deleted, f)
			}
		}
		if len(deleted) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("deleted segment files still open: %v", deleted)
		}
		time.Sleep(50 * time.Millisecond)
	}
	offs, err := b.Admin().ListStartOffsets(ctx, "spans")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := offs.Lookup("spans", 0); o.Offset == 0 {
		t.Fatal("retention deleted nothing: the test did not race it")
	}
	b.Stop()
	if open := openUnder(t, b.Dir); len(open) > 0 {
		t.Fatalf("files still open after the broker stopped: %v", open)
	}
}

func ptr(s string) *string { return &s }
