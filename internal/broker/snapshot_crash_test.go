package broker_test

import (
	"encoding/binary"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/batch"
	"github.com/gregor-streaming/gregor/internal/broker"
	"github.com/gregor-streaming/gregor/internal/partlog"
	"github.com/gregor-streaming/gregor/internal/vfs"
)

// TestStaleProducerSnapshotAfterPowerLoss: a producer snapshot is written
// without fsync at the log end offset of the moment, which may itself not
// be synced yet. A power loss can keep the snapshot and lose the log tail
// it describes: the next open rightly ignores it (its offset is beyond
// the recovered log end), but once the log grows past that offset again,
// the snapshot would match by offset while describing a history that no
// longer exists. After a second power loss the broker would then rebuild
// producer state from it and refuse the producer's next batch with
// OUT_OF_ORDER_SEQUENCE_NUMBER (clients report data loss) or answer
// retries with offsets from the lost history. Kafka deletes snapshots
// beyond the recovered log end; so must Gregor.
func TestStaleProducerSnapshotAfterPowerLoss(t *testing.T) {
	mem := vfs.NewMem()
	open := func(fs vfs.FS) *broker.Broker {
		b, err := broker.Open(broker.Options{DataDir: "/data", FS: fs, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	b := open(mem)
	serveSync(t, b, &kmsg.CreateTopicsRequest{Version: 7, TimeoutMillis: 1000, Topics: []kmsg.CreateTopicsRequestTopic{
		{Topic: "snap", NumPartitions: 1, ReplicationFactor: 1},
	}})
	produce := func(b *broker.Broker, pid int64, seq int32, n int) (int64, *kerr.Error) {
		t.Helper()
		return serveIdempotent(t, b, "snap", pid, seq, n)
	}
	const p, q = 1000, 2000
	if off, err := produce(b, p, 0, 5); off != 0 || err != nil {
		t.Fatalf("produce: %d %v", off, err)
	}

	// What survives a power loss that came after a snapshot at offset 20
	// reached the disk but before the log's offsets 5-19 did: P's batch
	// of sequences 5-19 is in the snapshot only.
	snap := []byte("GPST")
	snap = binary.BigEndian.AppendUint16(snap, 1)
	snap = binary.BigEndian.AppendUint64(snap, 20)
	snap = binary.BigEndian.AppendUint32(snap, 1)
	snap = binary.BigEndian.AppendUint64(snap, p)
	snap = binary.BigEndian.AppendUint16(snap, 0)
	snap = binary.BigEndian.AppendUint64(snap, uint64(time.Now().UnixMilli()))
	snap = append(snap, 2)
	for _, m := range [][4]int64{{0, 4, 0, 4}, {5, 19, 5, 19}} {
		snap = binary.BigEndian.AppendUint32(snap, uint32(m[0]))
		snap = binary.BigEndian.AppendUint32(snap, uint32(m[1]))
		snap = binary.BigEndian.AppendUint64(snap, uint64(m[2]))
		snap = binary.BigEndian.AppendUint64(snap, uint64(m[3]))
	}
	snap = binary.BigEndian.AppendUint32(snap, batch.Checksum(snap))
	if err := vfs.WriteFileAtomic(mem, "/data/snap-0", "/data/snap-0/producer.snapshot", snap); err != nil {
		t.Fatal(err)
	}
	crashed := mem.Crash()
	b.Close() // the pre-crash copy; its shutdown writes do not survive
	b = open(crashed)

	// The new history: P's 5-9, then Q's 21 records past offset 20.
	if off, err := produce(b, p, 5, 5); off != 5 || err != nil {
		t.Fatalf("produce after the first power loss: %d %v", off, err)
	}
	if off, err := produce(b, q, 0, 21); off != 10 || err != nil {
		t.Fatalf("produce after the first power loss: %d %v", off, err)
	}

	crashed = crashed.Crash()
	b.Close()
	b = open(crashed)
	defer b.Close()
	if off, err := produce(b, p, 10, 5); off != 31 || err != nil {
		t.Fatalf("P's next batch after the second power loss: offset %d, %v; want offset 31", off, err)
	}
}

// TestCreateTopicDurableAfterPowerLoss: a topic's new partitions are
// created without an fsync each and made durable by one sync of the file
// system before CreateTopics answers; a power loss right after the answer
// keeps every partition's files. (The aborted-transaction index is not
// among them: its first abort creates it.)
func TestCreateTopicDurableAfterPowerLoss(t *testing.T) {
	mem := vfs.NewMem()
	b, err := broker.Open(broker.Options{DataDir: "/data", FS: mem, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	const parts = 6
	resp := serveSync(t, b, &kmsg.CreateTopicsRequest{Version: 7, TimeoutMillis: 1000, Topics: []kmsg.CreateTopicsRequestTopic{
		{Topic: "fresh", NumPartitions: parts, ReplicationFactor: 1},
	}}).(*kmsg.CreateTopicsResponse)
	if code := resp.Topics[0].ErrorCode; code != 0 {
		t.Fatalf("CreateTopics: %v", kerr.ErrorForCode(code))
	}
	after := mem.Crash() // only what was synced
	defer b.Close()
	for i := range parts {
		dir := "/data/fresh-" + string(rune('0'+i))
		if _, err := after.Stat(dir + "/" + partlog.TxnIndexName); !vfs.IsNotExist(err) {
			t.Errorf("a new partition has an aborted-transaction index (stat: %v)", err)
		}
		for _, name := range []string{"partition.metadata", "00000000000000000000.log"} {
			if _, err := after.Stat(dir + "/" + name); err != nil {
				t.Errorf("after a power loss: %s/%s: %v", dir, name, err)
			}
		}
	}
}

// serveIdempotent produces n records of producer pid (epoch 0) from
// sequence seq to partition 0 of topic, acks=all, straight to b, and
// returns the base offset or the error.
func serveIdempotent(t *testing.T, b *broker.Broker, topic string, pid int64, seq int32, n int) (int64, *kerr.Error) {
	t.Helper()
	bb := batch.NewBuilder(batch.CodecNone).SetProducer(pid, 0, seq)
	for range n {
		bb.Add(batch.Record{Value: []byte("v"), Timestamp: time.Now().UnixMilli()})
	}
	records, err := bb.Build()
	if err != nil {
		t.Fatal(err)
	}
	req := kmsg.NewPtrProduceRequest()
	req.Version, req.Acks, req.TimeoutMillis = 9, -1, 1000
	req.Topics = []kmsg.ProduceRequestTopic{{Topic: topic, Partitions: []kmsg.ProduceRequestTopicPartition{{Records: records}}}}
	p := serveSync(t, b, req).(*kmsg.ProduceResponse).Topics[0].Partitions[0]
	if p.ErrorCode != 0 {
		return -1, kerr.ErrorForCode(p.ErrorCode).(*kerr.Error)
	}
	return p.BaseOffset, nil
}
