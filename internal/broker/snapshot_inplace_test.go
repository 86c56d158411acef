package broker_test

import (
	"encoding/binary"
	"log/slog"
	"path"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/broker"
	"github.com/gregor-streaming/gregor/internal/vfs"
)

// snapRenames counts renames onto producer snapshot files.
type snapRenames struct {
	vfs.FS
	n atomic.Int64
}

func (s *snapRenames) Rename(oldname, newname string) error {
	if strings.HasPrefix(path.Base(newname), "producer.snapshot") {
		s.n.Add(1)
	}
	return s.FS.Rename(oldname, newname)
}

// TestProducerSnapshotsInPlace: each shutdown's producer snapshot
// overwrites the file holding the older of the two, without a rename;
// a start loads the newer valid one whatever its name, and when the
// newer is damaged, the older one and the log after it still rebuild the
// producer's state (a retry is a duplicate, the next batch appends).
func TestProducerSnapshotsInPlace(t *testing.T) {
	mem := vfs.NewMem()
	fs := &snapRenames{FS: mem}
	open := func() *broker.Broker {
		b, err := broker.Open(broker.Options{DataDir: "/data", FS: fs, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	b := open()
	serveSync(t, b, &kmsg.CreateTopicsRequest{Version: 7, TimeoutMillis: 1000, Topics: []kmsg.CreateTopicsRequestTopic{
		{Topic: "snap", NumPartitions: 1, ReplicationFactor: 1},
	}})
	const pid = 1000
	produce := func(b *broker.Broker, seq int32) (int64, *kerr.Error) {
		t.Helper()
		return serveIdempotent(t, b, "snap", pid, seq, 5)
	}
	// snapOffsets reads each snapshot file's offset (-1: missing).
	snapOffsets := func() [2]int64 {
		out := [2]int64{-1, -1}
		for i, name := range []string{"producer.snapshot", "producer.snapshot.prev"} {
			if b, err := vfs.ReadFile(mem, "/data/snap-0/"+name); err == nil && len(b) >= 14 {
				out[i] = int64(binary.BigEndian.Uint64(b[6:]))
			}
		}
		return out
	}
	var seen [][2]int64
	for seq := int32(0); seq < 15; seq += 5 {
		if off, err := produce(b, seq); off != int64(seq) || err != nil {
			t.Fatalf("produce %d: offset %d, %v", seq, off, err)
		}
		b.Close()
		seen = append(seen, snapOffsets())
		b = open()
	}
	if want := [][2]int64{{5, -1}, {5, 10}, {15, 10}}; len(seen) != 3 || seen[0] != want[0] || seen[1] != want[1] || seen[2] != want[2] {
		t.Errorf("snapshot offsets (current, previous) after each shutdown %v, want %v", seen, want)
	}
	if n := fs.n.Load(); n != 0 {
		t.Errorf("%d renames onto producer snapshot files", n)
	}
	b.Close()

	// The newer snapshot torn: the older one and the log after it.
	name := "/data/snap-0/producer.snapshot"
	data, err := vfs.ReadFile(mem, name)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0xff
	f, err := mem.OpenWrite(name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(data, 0); err != nil {
		t.Fatal(err)
	}
	f.Close()
	b = open()
	defer b.Close()
	if off, err := produce(b, 10); off != 10 || err != nil {
		t.Fatalf("a retry of sequence 10 after the newer snapshot was damaged: offset %d, %v; want the duplicate's 10", off, err)
	}
	if off, err := produce(b, 15); off != 15 || err != nil {
		t.Fatalf("the next batch: offset %d, %v; want 15", off, err)
	}
}
