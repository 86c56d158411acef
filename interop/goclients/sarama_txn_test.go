package goclients

import (
	"testing"
	"time"

	"github.com/IBM/sarama"
)

// TestSaramaTransactions: sarama's transactional SyncProducer (Kafka
// 3.6 versions: transactions v1) commits a transaction, aborts one and
// commits another; a read_committed partition consumer sees exactly the
// committed records, in order, and a read_uncommitted one all of them.
func TestSaramaTransactions(t *testing.T) {
	requireIdempotence(t)
	const parts = 2
	topic, src := "sarama-txn", "sarama-txn"
	cfg := saramaConfig(sarama.V3_6_0_0, "interop-sarama-v3.6")
	cfg.Producer.Idempotent = true
	cfg.Producer.Transaction.ID = "interop-sarama-txn"
	cfg.Net.MaxOpenRequests = 1

	saramaCreateTopic(t, cfg, topic, parts)
	p, err := sarama.NewSyncProducer([]string{addr}, cfg)
	if err != nil {
		t.Fatalf("NewSyncProducer: %v", err)
	}
	txn := func(from, to int, commit bool) {
		t.Helper()
		if err := p.BeginTxn(); err != nil {
			t.Fatalf("BeginTxn: %v", err)
		}
		var msgs []*sarama.ProducerMessage
		for i := from; i < to; i++ {
			msgs = append(msgs, saramaMessage(topic, src, i, parts))
		}
		if err := p.SendMessages(msgs); err != nil {
			t.Fatalf("SendMessages: %v", err)
		}
		if commit {
			err = p.CommitTxn()
		} else {
			err = p.AbortTxn()
		}
		if err != nil {
			t.Fatalf("end transaction (commit=%v): %v", commit, err)
		}
	}
	txn(0, 100, true)
	txn(100, 150, false)
	txn(150, 250, true)
	if err := p.Close(); err != nil {
		t.Fatalf("SyncProducer.Close: %v", err)
	}

	read := func(level sarama.IsolationLevel, n int) map[int]bool {
		t.Helper()
		rc := saramaConfig(sarama.V3_6_0_0, "interop-sarama-v3.6")
		rc.Consumer.IsolationLevel = level
		consumer, err := sarama.NewConsumer([]string{addr}, rc)
		if err != nil {
			t.Fatalf("NewConsumer: %v", err)
		}
		defer consumer.Close()
		seen := map[int]bool{}
		for part := range int32(parts) {
			pc, err := consumer.ConsumePartition(topic, part, sarama.OffsetOldest)
			if err != nil {
				t.Fatalf("ConsumePartition(%d): %v", part, err)
			}
			last := -1
			idle := time.NewTimer(2 * time.Second)
		loop:
			for {
				select {
				case m := <-pc.Messages():
					i := saramaGot(m).check(t, src, true)
					if i <= last {
						t.Fatalf("partition %d: record %d after %d", part, i, last)
					}
					last, seen[i] = i, true
					idle.Reset(500 * time.Millisecond)
				case err := <-pc.Errors():
					t.Fatalf("partition %d: %v", part, err)
				case <-idle.C:
					break loop
				}
			}
			pc.Close()
		}
		if len(seen) != n {
			t.Fatalf("isolation %v: %d records, want %d", level, len(seen), n)
		}
		return seen
	}
	for i := range read(sarama.ReadCommitted, 200) {
		if i >= 100 && i < 150 {
			t.Fatalf("read_committed saw record %d of the aborted transaction", i)
		}
	}
	read(sarama.ReadUncommitted, 250)
}
