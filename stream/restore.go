package stream

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// restore gives t fresh stores filled from their changelog partitions.
// It runs when the task is about to process its first record: by then
// the group has fetched the task's committed offsets, which KIP-447
// holds back while a previous owner's transaction is open, so the
// changelog's last stable offset covers every update those offsets
// account for.
func (a *App) restore(ctx context.Context, t *task) error {
	stores := make(map[string]store, len(t.sub.stores))
	var total int64
	for _, name := range t.sub.stores {
		topic := a.topo.changelogTopic(name)
		st := newStore(a.topo.stores[name], topic, t.id.partition)
		n, err := a.replay(ctx, topic, t.id.partition, st.restore)
		if err != nil {
			return fmt.Errorf("stream: restore store %s of task %s from %s/%d: %w", name, t.id, topic, t.id.partition, err)
		}
		stores[name] = st
		total += n
	}
	t.stores = stores
	a.stats.restored.Add(total)
	if len(stores) > 0 {
		a.log.Debug("stream: task restored", "task", t.id.String(), "records", total)
	}
	return nil
}

const (
	restoreTries      = 30
	restoreMaxBackoff = time.Second
)

// replay hands apply every committed record of the partition, from its
// log start offset to its last stable offset, and returns how many it
// applied.
//
// It sends Fetch requests itself rather than consuming with a client:
// it must know exactly when it has passed the end offset, and the
// offsets just below it may hold no record a consumer returns (a
// transaction marker, aborted records, a compacted tail).
// kgo.ProcessFetchPartition decodes the batches, drops aborted
// transactions and reports the next offset to fetch.
func (a *App) replay(ctx context.Context, topic string, partition int32, apply func(*kgo.Record) error) (int64, error) {
	start, end, err := a.stableBounds(ctx, topic, partition)
	if err != nil {
		return 0, err
	}
	var (
		n       int64
		pos     = start
		leader  = int32(-1)
		id      [16]byte
		tries   int
		lastErr error
		backoff = 50 * time.Millisecond
	)
	for pos < end {
		if tries > 0 {
			if tries == restoreTries {
				return n, fmt.Errorf("stuck at offset %d (end %d) after %d tries: %w", pos, end, tries, lastErr)
			}
			if err := sleep(ctx, backoff); err != nil {
				return n, err
			}
			backoff = min(2*backoff, restoreMaxBackoff)
		}
		tries++
		if leader < 0 {
			if leader, id, err = a.leaderOf(ctx, topic, partition); err != nil {
				lastErr, leader = err, -1
				continue
			}
		}
		fp, next, err := a.fetch(ctx, leader, topic, id, partition, pos)
		switch {
		case ctx.Err() != nil:
			return n, ctx.Err()
		case err != nil:
			lastErr, leader = err, -1
			continue
		case errors.Is(fp.Err, kerr.OffsetOutOfRange):
			// The log start moved past pos (retention, DeleteRecords):
			// what is gone was superseded, as in any compacted topic.
			lastErr = fp.Err
			if s, _, _, err := a.bounds(ctx, topic, partition); err != nil {
				lastErr = err
			} else {
				pos = max(pos, s)
			}
			continue
		case fp.Err != nil:
			lastErr, leader = fp.Err, -1
			continue
		}
		for _, r := range fp.Records {
			if err := apply(r); err != nil {
				return n, err
			}
			n++
		}
		if next <= pos {
			// Nothing at pos though pos < end, which a truncation
			// (a new leader) can do: look at the end again.
			lastErr = fmt.Errorf("empty fetch at offset %d", pos)
			if _, lso, _, err := a.bounds(ctx, topic, partition); err != nil {
				lastErr = err
			} else {
				end = lso
			}
			continue
		}
		pos, tries, backoff = next, 0, 50*time.Millisecond
	}
	return n, nil
}

// stableBounds returns the partition's log start offset and the end to
// restore to: its last stable offset, once that has reached the high
// watermark seen first. Every record already written is then decided.
// Without the wait, a restore right after a commit could stop below
// that commit's records, whose transaction markers a Kafka broker
// writes after answering EndTxn and on each partition at its own pace
// (Gregor writes them before answering); the input offsets the same
// transaction committed would then skip their inputs. A transaction
// left open by a dead instance holds the wait until it is fenced or
// times out (TransactionTimeout), as it holds read_committed readers.
func (a *App) stableBounds(ctx context.Context, topic string, partition int32) (start, end int64, err error) {
	hw0 := int64(-1)
	var lastErr error
	tries := 0
	waitingSince := time.Now()
	logged := time.Time{}
	for {
		s, lso, hw, err := a.bounds(ctx, topic, partition)
		switch {
		case ctx.Err() != nil:
			return 0, 0, ctx.Err()
		case err != nil:
			if tries++; tries == restoreTries {
				return 0, 0, fmt.Errorf("offsets: %w", err)
			}
			lastErr = err
		case hw0 < 0 && lso >= hw:
			return s, lso, nil
		case hw0 < 0:
			hw0 = hw
		case lso >= hw0:
			return s, lso, nil
		default:
			if time.Since(logged) > 5*time.Second {
				logged = time.Now()
				a.log.Warn("stream: restore waits for an open transaction to end", "topic", topic, "partition", partition,
					"last_stable_offset", lso, "high_watermark", hw0, "waiting", time.Since(waitingSince).Round(time.Second), "last_err", lastErr)
			}
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return 0, 0, err
		}
	}
}

// bounds returns the partition's log start offset, last stable offset
// and high watermark, asking its leader. Metadata and offsets are
// requested directly, not through kadm's metadata cache, which may
// still say that a changelog created a moment ago does not exist.
func (a *App) bounds(ctx context.Context, topic string, partition int32) (start, lso, hw int64, err error) {
	leader, _, err := a.leaderOf(ctx, topic, partition)
	if err != nil {
		return 0, 0, 0, err
	}
	if start, err = a.listOffset(ctx, leader, topic, partition, -2, 1); err != nil {
		return 0, 0, 0, err
	}
	if lso, err = a.listOffset(ctx, leader, topic, partition, -1, 1); err != nil {
		return 0, 0, 0, err
	}
	if hw, err = a.listOffset(ctx, leader, topic, partition, -1, 0); err != nil {
		return 0, 0, 0, err
	}
	return start, lso, hw, nil
}

// listOffset asks leader for the partition's earliest (timestamp -2)
// or latest (-1) offset: the high watermark with isolation 0
// (read_uncommitted), the last stable offset with 1 (read_committed).
func (a *App) listOffset(ctx context.Context, leader int32, topic string, partition int32, timestamp int64, isolation int8) (int64, error) {
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = -1
	req.IsolationLevel = isolation
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Partition = partition
	rp.Timestamp = timestamp
	rp.CurrentLeaderEpoch = -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	kresp, err := a.admCl.Broker(int(leader)).Request(ctx, req)
	if err != nil {
		return 0, err
	}
	resp := kresp.(*kmsg.ListOffsetsResponse)
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		return 0, fmt.Errorf("list offsets answered %d topics for one partition", len(resp.Topics))
	}
	p := resp.Topics[0].Partitions[0]
	if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
		return 0, err
	}
	return p.Offset, nil
}

// leaderOf returns the partition's leader and the topic's ID, from a
// metadata request (which also tells the client the leader's address).
func (a *App) leaderOf(ctx context.Context, topic string, partition int32) (int32, [16]byte, error) {
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, a.admCl)
	if err != nil {
		return -1, [16]byte{}, err
	}
	for _, t := range resp.Topics {
		if t.Topic == nil || *t.Topic != topic {
			continue
		}
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
			return -1, [16]byte{}, err
		}
		for _, p := range t.Partitions {
			if p.Partition != partition {
				continue
			}
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return -1, [16]byte{}, err
			}
			if p.Leader < 0 {
				return -1, [16]byte{}, kerr.LeaderNotAvailable
			}
			return p.Leader, t.TopicID, nil
		}
	}
	return -1, [16]byte{}, kerr.UnknownTopicOrPartition
}

// fetch reads committed records of the partition from pos, from its
// leader.
func (a *App) fetch(ctx context.Context, leader int32, topic string, id [16]byte, partition int32, pos int64) (kgo.FetchPartition, int64, error) {
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = -1
	req.MaxWaitMillis = 500 // data below the end offset is there: no wait in practice
	req.MinBytes = 1
	req.MaxBytes = 32 << 20
	req.IsolationLevel = 1 // read_committed
	req.SessionEpoch = -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic, rt.TopicID = topic, id
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition = partition
	rp.FetchOffset = pos
	rp.PartitionMaxBytes = 8 << 20
	rp.CurrentLeaderEpoch = -1
	rp.LastFetchedEpoch = -1
	rp.LogStartOffset = -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	kresp, err := a.admCl.Broker(int(leader)).Request(ctx, req)
	if err != nil {
		return kgo.FetchPartition{}, pos, err
	}
	resp := kresp.(*kmsg.FetchResponse)
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return kgo.FetchPartition{}, pos, err
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		return kgo.FetchPartition{}, pos, fmt.Errorf("fetch answered %d topics for one partition", len(resp.Topics))
	}
	fp, next := kgo.ProcessFetchPartition(kgo.ProcessFetchPartitionOpts{
		Offset:         pos,
		IsolationLevel: kgo.ReadCommitted(),
		Topic:          topic,
		Partition:      partition,
	}, &resp.Topics[0].Partitions[0], a.decompressor, nil)
	return fp, next, nil
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
