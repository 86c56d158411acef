package group

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/batch"
)

func (e *coordEnv) txnCommit(group string, pid int64, gen int32, member string, topic string, p int32, off int64) *kerr.Error {
	e.t.Helper()
	cb, wait := await[CommitResult](e.t)
	e.c.TxnCommit(group, TxnCommitRequest{
		ProducerID: pid, ProducerEpoch: 0, MemberID: member, Generation: gen,
		Topics: []CommitTopic{{Topic: topic, Partitions: []CommitPartition{{Partition: p, Offset: off, LeaderEpoch: -1}}}},
	}, false, cb)
	return wait().Topics[0][0]
}

func (e *coordEnv) fetchStable(group, topic string, p int32) FetchPartition {
	e.t.Helper()
	cb, wait := await[FetchResult](e.t)
	e.c.Fetch(group, FetchRequest{Topics: []FetchTopic{{Topic: topic, Partitions: []int32{p}}}, RequireStable: true}, cb)
	return wait().Topics[0].Partitions[0]
}

// marker appends a transaction marker to the group's partition, as the
// transaction coordinator's markers do, and applies it.
func (e *coordEnv) marker(group string, pid int64, commit bool) {
	e.t.Helper()
	part := e.c.PartitionFor(group)
	done := make(chan error, 1)
	e.log.Append(part, batch.ControlBatch(pid, 1, commit, 0, 0), func(err error) { done <- err })
	if err := <-done; err != nil {
		e.t.Fatal(err)
	}
	e.c.CompleteTxn(part, pid, commit)
}

// waitOffset waits until a plain fetch returns off.
func (e *coordEnv) waitOffset(group, topic string, p int32, off int64) {
	e.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := e.fetch(group, topic, p)
		if got.Offset == off {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("offset %d, want %d", got.Offset, off)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestTxnCommitVisibleAtMarker(t *testing.T) {
	log := newMemLog()
	e := newCoordEnv(t, log, true)
	if err := e.commit("g", "", -1, "t", 0, 5, ""); err != nil {
		t.Fatal(err)
	}
	if err := e.txnCommit("g", 7, -1, "", "t", 0, 10); err != nil {
		t.Fatal(err)
	}
	// Pending: the old offset, and UNSTABLE_OFFSET_COMMIT with
	// RequireStable (KIP-447).
	if got := e.fetch("g", "t", 0); got.Offset != 5 {
		t.Fatalf("offset %d while the transaction is open, want 5", got.Offset)
	}
	if got := e.fetchStable("g", "t", 0); got.Err != kerr.UnstableOffsetCommit {
		t.Fatalf("RequireStable: %v", got.Err)
	}
	e.marker("g", 7, true)
	e.waitOffset("g", "t", 0, 10)
	if got := e.fetchStable("g", "t", 0); got.Err != nil || got.Offset != 10 {
		t.Fatalf("after commit: %+v", got)
	}

	// An aborted transaction's offsets never show.
	if err := e.txnCommit("g", 8, -1, "", "t", 0, 20); err != nil {
		t.Fatal(err)
	}
	e.marker("g", 8, false)
	deadline := time.Now().Add(5 * time.Second)
	for e.fetchStable("g", "t", 0).Err != nil {
		if time.Now().After(deadline) {
			t.Fatal("still unstable after the abort")
		}
		time.Sleep(time.Millisecond)
	}
	if got := e.fetch("g", "t", 0); got.Offset != 10 {
		t.Fatalf("after abort: %d, want 10", got.Offset)
	}

	// A commit written after the transactional one wins over it, as in
	// Kafka (the later record in the log).
	if err := e.txnCommit("g", 9, -1, "", "t", 0, 30); err != nil {
		t.Fatal(err)
	}
	if err := e.commit("g", "", -1, "t", 0, 31, ""); err != nil {
		t.Fatal(err)
	}
	e.marker("g", 9, true)
	time.Sleep(10 * time.Millisecond)
	if got := e.fetchStable("g", "t", 0); got.Offset != 31 {
		t.Fatalf("later plain commit lost: %+v", got)
	}
}

// TestTxnCommitAcrossReload: a transaction open when the coordinator
// stops is still pending after it loads again, and its commit marker,
// written after the load, replaces the older offset (this order must
// hold across the reload).
func TestTxnCommitAcrossReload(t *testing.T) {
	log := newMemLog()
	e := newCoordEnv(t, log, true)
	if err := e.commit("g", "", -1, "t", 0, 5, ""); err != nil {
		t.Fatal(err)
	}
	if err := e.txnCommit("g", 7, -1, "", "t", 0, 10); err != nil {
		t.Fatal(err)
	}
	// A committed transaction before the stop is replayed.
	if err := e.txnCommit("g", 6, -1, "", "t", 1, 3); err != nil {
		t.Fatal(err)
	}
	e.marker("g", 6, true)
	e.waitOffset("g", "t", 1, 3)
	e.c.Close()

	e = newCoordEnv(t, log, true)
	if got := e.fetch("g", "t", 1); got.Offset != 3 {
		t.Fatalf("replayed transactional commit: %d, want 3", got.Offset)
	}
	if got := e.fetchStable("g", "t", 0); got.Err != kerr.UnstableOffsetCommit {
		t.Fatalf("open transaction after reload: %+v", got)
	}
	e.marker("g", 7, true)
	e.waitOffset("g", "t", 0, 10)
	// And the marker applied before the reload completes: it reloads
	// as committed.
	e.c.Close()
	e = newCoordEnv(t, log, true)
	if got := e.fetchStable("g", "t", 0); got.Err != nil || got.Offset != 10 {
		t.Fatalf("after a second reload: %+v", got)
	}
}

func TestTxnCommitMembership(t *testing.T) {
	e := newCoordEnv(t, newMemLog(), true)
	ids, gen := e.form("g", 1)
	if err := e.txnCommit("g", 7, gen, ids[0], "t", 0, 1); err != nil {
		t.Fatalf("member commit: %v", err)
	}
	if err := e.txnCommit("g", 7, gen+1, ids[0], "t", 0, 1); err != kerr.IllegalGeneration {
		t.Fatalf("wrong generation: %v", err)
	}
	if err := e.txnCommit("g", 7, gen, "nobody", "t", 0, 1); err != kerr.UnknownMemberID {
		t.Fatalf("unknown member: %v", err)
	}
	if err := e.txnCommit("nogroup", 7, 3, "m", "t", 0, 1); err != kerr.IllegalGeneration {
		t.Fatalf("unknown group with a generation: %v", err)
	}
	// As Kafka's ClassicGroup.validateOffsetCommit: a member ID, a
	// generation or an instance ID makes the whole identity checked.
	if err := e.txnCommit("g", 7, -1, ids[0], "t", 0, 1); err != kerr.IllegalGeneration {
		t.Fatalf("member without a generation in an active group: %v", err)
	}
	if err := e.txnCommit("g", 7, gen, "", "t", 0, 1); err != kerr.UnknownMemberID {
		t.Fatalf("generation without a member: %v", err)
	}
	txnCommitAs := func(member string, instance *string, gen int32) *kerr.Error {
		t.Helper()
		cb, wait := await[CommitResult](t)
		e.c.TxnCommit("g", TxnCommitRequest{
			ProducerID: 7, MemberID: member, InstanceID: instance, Generation: gen,
			Topics: []CommitTopic{{Topic: "t", Partitions: []CommitPartition{{Partition: 0, Offset: 1, LeaderEpoch: -1}}}},
		}, false, cb)
		return wait().Topics[0][0]
	}
	if err := txnCommitAs(ids[0], kmsg.StringPtr("unknown-instance"), gen); err != kerr.UnknownMemberID {
		t.Fatalf("unknown instance ID: %v", err)
	}
	// No identity at all (TxnOffsetCommit v0-2, or a producer sending
	// only the group ID) commits whatever the group's state.
	if err := e.txnCommit("g", 7, -1, "", "t", 0, 1); err != nil {
		t.Fatalf("commit without membership to an active group: %v", err)
	}
}

// TestTxnPendingInFetchAll: a RequireStable fetch of all the group's
// offsets reports a partition only a transaction holds a commit of.
func TestTxnPendingInFetchAll(t *testing.T) {
	e := newCoordEnv(t, newMemLog(), true)
	if err := e.commit("g", "", -1, "t", 0, 5, ""); err != nil {
		t.Fatal(err)
	}
	if err := e.txnCommit("g", 7, -1, "", "u", 3, 10); err != nil {
		t.Fatal(err)
	}
	cb, wait := await[FetchResult](t)
	e.c.Fetch("g", FetchRequest{RequireStable: true}, cb)
	res := wait()
	if len(res.Topics) != 2 || res.Topics[1].Topic != "u" || res.Topics[1].Partitions[0].Err != kerr.UnstableOffsetCommit {
		t.Fatalf("fetch all with RequireStable: %+v", res)
	}
	cb, wait = await[FetchResult](t)
	e.c.Fetch("g", FetchRequest{}, cb)
	if res := wait(); len(res.Topics) != 1 {
		t.Fatalf("fetch all without RequireStable shows the pending commit: %+v", res)
	}
}
