// Package goclients tests Gregor with Go Kafka clients other than
// franz-go (which the main module's own tests use): IBM/sarama and
// segmentio/kafka-go. It is its own module, so these clients never
// become dependencies of Gregor; it talks to a broker over the wire only.
//
// Run it through interop/run.sh, which starts `gregor serve` and sets
// GREGOR_ADDR; every top-level test is one interop case.
package goclients

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gregor-streaming/gregor/interop/goclients/probe"
)

// addr is the broker's bootstrap address (GREGOR_ADDR).
var addr string

func TestMain(m *testing.M) {
	addr = os.Getenv("GREGOR_ADDR")
	if addr == "" {
		fmt.Fprintln(os.Stderr, "GREGOR_ADDR is not set: run interop/run.sh, which starts a broker")
		os.Exit(2)
	}
	os.Exit(m.Run())
}

// requireGroups skips a consumer-group case, loudly, while the broker
// advertises no group API. The skip disappears by itself once it does.
func requireGroups(t *testing.T) {
	t.Helper()
	ok, err := probe.Groups(addr)
	if err != nil {
		t.Fatalf("ApiVersions probe: %v", err)
	}
	if !ok {
		t.Skip("SKIP: broker lacks consumer groups (ApiVersions advertises none of FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit, OffsetFetch)")
	}
}

// advertises reports whether the broker's ApiVersions lists key.
func advertises(t *testing.T, key int16) bool {
	t.Helper()
	vs, err := probe.ApiVersions(addr)
	if err != nil {
		t.Fatalf("ApiVersions probe: %v", err)
	}
	_, ok := vs[key]
	return ok
}

// requireIdempotence skips an idempotent-producer case, loudly, while
// the broker does not advertise InitProducerID.
func requireIdempotence(t *testing.T) {
	t.Helper()
	ok, err := probe.Idempotence(addr)
	if err != nil {
		t.Fatalf("ApiVersions probe: %v", err)
	}
	if !ok {
		t.Skip("SKIP: broker lacks idempotent producers (ApiVersions lacks InitProducerID)")
	}
}

// batch is a stored RecordBatch v2 header.
type batch struct {
	baseOffset    int64
	attributes    int16
	producerID    int64
	producerEpoch int16
	baseSequence  int32
	records       int32
}

// storedBatches reads the batch headers of a partition's first segment
// from the broker's data directory (GREGOR_DATA): what the broker wrote,
// not what a consumer makes of it.
func storedBatches(t *testing.T, topic string, partition int) []batch {
	t.Helper()
	dir := os.Getenv("GREGOR_DATA")
	if dir == "" {
		t.Fatal("GREGOR_DATA is not set")
	}
	b, err := os.ReadFile(fmt.Sprintf("%s/%s-%d/%020d.log", dir, topic, partition, 0))
	if err != nil {
		t.Fatal(err)
	}
	var out []batch
	for len(b) >= 61 {
		length := int(binary.BigEndian.Uint32(b[8:]))
		out = append(out, batch{
			baseOffset:    int64(binary.BigEndian.Uint64(b)),
			attributes:    int16(binary.BigEndian.Uint16(b[21:])),
			producerID:    int64(binary.BigEndian.Uint64(b[43:])),
			producerEpoch: int16(binary.BigEndian.Uint16(b[51:])),
			baseSequence:  int32(binary.BigEndian.Uint32(b[53:])),
			records:       int32(binary.BigEndian.Uint32(b[57:])),
		})
		if length+12 > len(b) {
			break
		}
		b = b[length+12:]
	}
	return out
}

// checkIdempotentBatches verifies that a partition's batches were written
// by one idempotent producer: a producer ID, and sequences that start at
// 0 and follow each other without gap or repeat.
func checkIdempotentBatches(t *testing.T, topic string, partition int) {
	t.Helper()
	bs := storedBatches(t, topic, partition)
	if len(bs) == 0 {
		t.Fatalf("%s-%d: no stored batches", topic, partition)
	}
	var seq int32
	for _, b := range bs {
		if b.producerID < 0 || b.producerID != bs[0].producerID || b.producerEpoch != bs[0].producerEpoch {
			t.Fatalf("%s-%d offset %d: producer ID %d epoch %d, want one idempotent producer (first: %d/%d)",
				topic, partition, b.baseOffset, b.producerID, b.producerEpoch, bs[0].producerID, bs[0].producerEpoch)
		}
		if b.baseSequence != seq {
			t.Fatalf("%s-%d offset %d: base sequence %d, want %d", topic, partition, b.baseOffset, b.baseSequence, seq)
		}
		seq += b.records
	}
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// record i of a case: what the producer sends and the consumer must get.
type record struct {
	i       int
	key     string
	value   string
	headers [][2]string
}

func want(src string, i int) record {
	return record{
		i:     i,
		key:   fmt.Sprintf("k-%05d", i),
		value: fmt.Sprintf("v-%05d-%s-%s", i, src, strings.Repeat("x", i%61)),
		headers: [][2]string{
			{"i", strconv.Itoa(i)},
			{"src", src},
		},
	}
}

// got is a consumed record as any client reports it.
type got struct {
	partition int32
	offset    int64
	key       string
	value     string
	headers   [][2]string
}

// index returns which record a consumed one claims to be, from its key.
func (g got) index(t *testing.T) int {
	t.Helper()
	i, err := strconv.Atoi(strings.TrimPrefix(g.key, "k-"))
	if err != nil || !strings.HasPrefix(g.key, "k-") {
		t.Fatalf("%d/%d: unexpected key %q", g.partition, g.offset, g.key)
	}
	return i
}

// check verifies one consumed record against record i of src.
func (g got) check(t *testing.T, src string, withHeaders bool) int {
	t.Helper()
	i := g.index(t)
	w := want(src, i)
	if g.value != w.value {
		t.Fatalf("%d/%d: value %q, want %q", g.partition, g.offset, g.value, w.value)
	}
	if withHeaders && fmt.Sprint(g.headers) != fmt.Sprint(w.headers) {
		t.Fatalf("%d/%d: headers %v, want %v", g.partition, g.offset, g.headers, w.headers)
	}
	return i
}

// checkPartition verifies the records consumed from one partition, in
// order: offsets from start with no gap, and the producer's order (record
// indexes increasing, each in the partition i % parts).
func checkPartition(t *testing.T, src string, p int32, parts int, start int64, gs []got, withHeaders bool) []int {
	t.Helper()
	var idx []int
	for j, g := range gs {
		if g.partition != p {
			t.Fatalf("record from partition %d in partition %d's stream", g.partition, p)
		}
		if g.offset != start+int64(j) {
			t.Fatalf("partition %d: record %d has offset %d, want %d", p, j, g.offset, start+int64(j))
		}
		i := g.check(t, src, withHeaders)
		if parts > 0 && i%parts != int(p) {
			t.Fatalf("partition %d: record %d belongs in partition %d", p, i, i%parts)
		}
		if len(idx) > 0 && i <= idx[len(idx)-1] {
			t.Fatalf("partition %d: record %d after %d: order not kept", p, i, idx[len(idx)-1])
		}
		idx = append(idx, i)
	}
	return idx
}

// eventually polls cond every 20ms until it holds or d passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
