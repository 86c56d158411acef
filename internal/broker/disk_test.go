package broker_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/batch"
	"github.com/gregor-streaming/gregor/internal/ktest"
	"github.com/gregor-streaming/gregor/internal/vfs"
)

// produceBatch sends one batch of n records (acks=all) and returns the
// partition's error code and base offset.
func produceBatch(t *testing.T, b *ktest.Broker, topic string, first, n, size int) (int16, int64) {
	t.Helper()
	bld := batch.NewBuilder(batch.CodecNone)
	now := time.Now().UnixMilli()
	for i := first; i < first+n; i++ {
		bld.Add(batch.Record{Timestamp: now, Key: []byte(strconv.Itoa(i)), Value: diskValue(i, size)})
	}
	records, err := bld.Build()
	if err != nil {
		t.Fatal(err)
	}
	req := kmsg.NewPtrProduceRequest()
	req.Version = 9
	req.Acks, req.TimeoutMillis = -1, 10000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = records
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := send[*kmsg.ProduceResponse](t, b, req)
	p := resp.Topics[0].Partitions[0]
	return p.ErrorCode, p.BaseOffset
}

func diskValue(i, size int) []byte {
	return bytes.Repeat([]byte(strconv.Itoa(i)+"|"), size/(len(strconv.Itoa(i))+1)+1)[:size]
}

// checkAcked reads the topic from the start to its end and checks that
// every acknowledged record (by offset) is there, unchanged. Records
// whose produce failed may be there too (a failed write may or may not
// have reached the disk, as with Kafka), but whole and well-formed.
func checkAcked(t *testing.T, b *ktest.Broker, topic string, acked map[int64]int, size int) {
	t.Helper()
	ctx := ctxT(t, 30*time.Second)
	ends, err := b.Admin().ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	end, _ := ends.Lookup(topic, 0)
	cl := b.Client(kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	seen := 0
	for next := int64(0); next < end.Offset; {
		fs := cl.PollFetches(ctx)
		if err := fs.Err(); err != nil {
			t.Fatalf("consuming at %d of %d: %v", next, end.Offset, err)
		}
		for _, r := range fs.Records() {
			next = r.Offset + 1
			i, err := strconv.Atoi(string(r.Key))
			if err != nil || !bytes.Equal(r.Value, diskValue(i, size)) {
				t.Fatalf("record at offset %d damaged (key %q)", r.Offset, r.Key)
			}
			if want, ok := acked[r.Offset]; ok {
				if i != want {
					t.Fatalf("record at offset %d: key %d, acknowledged %d", r.Offset, i, want)
				}
				seen++
			}
		}
	}
	if seen != len(acked) {
		t.Fatalf("%d of %d acknowledged records found", seen, len(acked))
	}
}

// TestDiskFull fills the data disk (vfs.FaultFS capacity): produce gets
// KAFKA_STORAGE_ERROR, acknowledged data stays readable and intact, and
// once space returns produce works again, across a restart too. Then the
// same for failing fsyncs, which fail the log until the broker reopens
// it.
func TestDiskFull(t *testing.T) {
	ffs := vfs.NewFault(vfs.Default)
	b := ktest.NewBroker(t, ktest.WithFS(ffs))
	const topic, size, per = "full", 1000, 10
	b.CreateTopic(topic, 1, map[string]*string{"segment.bytes": kmsg.StringPtr("1048576")})
	acked := map[int64]int{}
	next := 0
	produce := func() (int16, int64) {
		code, base := produceBatch(t, b, topic, next, per, size)
		if code == 0 {
			for j := range per {
				acked[base+int64(j)] = next + j
			}
		}
		next += per
		return code, base
	}
	for range 200 { // about 2 MB: three segments
		if code, _ := produce(); code != 0 {
			t.Fatalf("produce before the disk filled: %v", kerr.ErrorForCode(code))
		}
	}

	// The disk fills up: produce fails with KAFKA_STORAGE_ERROR.
	ffs.SetCapacity(ffs.Usage() + 30_000)
	storageErrors := 0
	for range 40 {
		code, _ := produce()
		switch code {
		case 0:
		case kerr.KafkaStorageError.Code:
			storageErrors++
		default:
			t.Fatalf("produce on a full disk: %v", kerr.ErrorForCode(code))
		}
	}
	if storageErrors < 30 {
		t.Fatalf("%d of 40 produces on a full disk failed", storageErrors)
	}
	// A client keeps retrying the retriable KAFKA_STORAGE_ERROR until
	// its delivery timeout.
	kcl := b.Client(kgo.DefaultProduceTopic(topic), kgo.RecordRetries(2), kgo.RecordDeliveryTimeout(2*time.Second))
	big := make([]byte, 50_000)
	rand.Read(big) // incompressible: it cannot fit
	if err := kcl.ProduceSync(ctxT(t, 20*time.Second), &kgo.Record{Key: []byte("x"), Value: big}).FirstErr(); !errors.Is(err, kerr.KafkaStorageError) && !errors.Is(err, kgo.ErrRecordTimeout) {
		t.Fatalf("franz-go produce on a full disk: %v", err)
	}
	// What was acknowledged is intact and readable meanwhile.
	checkAcked(t, b, topic, acked, size)

	// Space returns: produce works again (a log the failure left broken
	// is reopened in the background).
	ffs.SetCapacity(-1)
	waitUntil(t, 15*time.Second, "produce to work after space returned", func() bool {
		code, _ := produce()
		return code == 0
	})
	for range 20 {
		if code, _ := produce(); code != 0 {
			t.Fatalf("produce after space returned: %v", kerr.ErrorForCode(code))
		}
	}
	checkAcked(t, b, topic, acked, size)
	b.Restart()
	checkAcked(t, b, topic, acked, size)

	// fsync fails: the log refuses writes until it is reopened, which the
	// broker does once fsync works again.
	ffs.SetSyncError(syscall.EIO)
	if code, _ := produce(); code != kerr.KafkaStorageError.Code {
		t.Fatalf("produce with failing fsync: %v", kerr.ErrorForCode(code))
	}
	time.Sleep(1500 * time.Millisecond) // a reopen attempt while fsync still fails
	if code, _ := produce(); code != kerr.KafkaStorageError.Code {
		t.Fatalf("produce with failing fsync: %v", kerr.ErrorForCode(code))
	}
	ffs.SetSyncError(nil)
	waitUntil(t, 15*time.Second, "produce to work after fsync recovered", func() bool {
		code, _ := produce()
		return code == 0
	})
	checkAcked(t, b, topic, acked, size)
	b.Restart()
	checkAcked(t, b, topic, acked, size)
}
