"""confluent-kafka-python (Debian: 1.7 on librdkafka 2.0) transactions
against Gregor.

  confluent_txn_case.py txn  a transactional Producer commits a
                             transaction, aborts one, and commits one
                             that also sends a consumer group's offsets
                             (send_offsets_to_transaction); a
                             read_committed Consumer sees exactly the
                             committed records, in order, and a
                             read_uncommitted one sees all; the group's
                             offsets are those the transaction sent; a
                             second Producer with the same transactional.id
                             fences the first

librdkafka 2.0 predates KIP-890: this is transactions v1
(AddPartitionsToTxn, AddOffsetsToTxn, TxnOffsetCommit, EndTxn without
epoch bumps).
"""

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from common import ADDR, Failure, check, check_record, main, want

CID = "interop-confluent-kafka-python"
TOPIC = SRC = "confluent-kafka-python-txn"
GROUP = "confluent-kafka-python-txn-group"
PARTS = 3


def producer(txn_id):
    p = Producer({"bootstrap.servers": ADDR, "client.id": CID, "transactional.id": txn_id,
                  "transaction.timeout.ms": 30000, "linger.ms": 5})
    p.init_transactions(30)
    return p


def send(p, rng):
    for i in rng:
        k, v, h = want(SRC, i)
        p.produce(TOPIC, value=v, key=k, headers=h, partition=i % PARTS)
        p.poll(0)


def read(isolation, n):
    """All records of the topic with the given isolation level, once the
    consumer reached the end: {partition: [(offset, key, value, headers)]}."""
    c = Consumer({"bootstrap.servers": ADDR, "client.id": CID, "group.id": GROUP + "-reader-" + isolation,
                  "enable.auto.commit": False, "isolation.level": isolation, "enable.partition.eof": True})
    c.assign([TopicPartition(TOPIC, p, 0) for p in range(PARTS)])
    out, eof, got = {}, set(), 0
    import time
    deadline = time.monotonic() + 60
    while len(eof) < PARTS or got < n:
        check(time.monotonic() < deadline, "%s: read %d of %d records in 60s", isolation, got, n)
        m = c.poll(1.0)
        if m is None:
            continue
        if m.error():
            if m.error().code() == KafkaError._PARTITION_EOF:
                eof.add(m.partition())
                continue
            raise Failure("%s consumer: %s" % (isolation, m.error()))
        eof.discard(m.partition())
        out.setdefault(m.partition(), []).append((m.offset(), m.key(), m.value(), m.headers()))
        got += 1
    c.close()
    return out


def txn():
    admin = AdminClient({"bootstrap.servers": ADDR, "client.id": CID})
    admin.create_topics([NewTopic(TOPIC, num_partitions=PARTS, replication_factor=1)])[TOPIC].result(30)

    p = producer("interop-confluent-txn")
    # 1: committed.
    p.begin_transaction()
    send(p, range(0, 300))
    p.commit_transaction(30)
    # 2: aborted after its records reached the broker.
    p.begin_transaction()
    send(p, range(300, 500))
    check(p.flush(30) == 0, "aborted transaction's records not delivered")
    p.abort_transaction(30)
    # 3: committed together with a consumer group's offsets.
    group = Consumer({"bootstrap.servers": ADDR, "client.id": CID, "group.id": GROUP, "enable.auto.commit": False})
    p.begin_transaction()
    send(p, range(500, 800))
    offsets = [TopicPartition(TOPIC, part, 100 + part) for part in range(PARTS)]
    p.send_offsets_to_transaction(offsets, group.consumer_group_metadata(), 30)
    p.commit_transaction(30)

    committed = read("read_committed", 600)
    seen = set()
    for part, recs in committed.items():
        last = -1
        for (off, key, value, headers) in recs:
            i = check_record(SRC, part, off, key, value, headers, PARTS)
            check(not 300 <= i < 500, "read_committed saw record %d of the aborted transaction", i)
            check(i > last, "partition %d: record %d after %d", part, i, last)
            last = i
            seen.add(i)
    check(seen == set(range(300)) | set(range(500, 800)), "read_committed saw %d records, want the 600 committed",
          len(seen))
    everything = read("read_uncommitted", 800)
    check(sum(len(r) for r in everything.values()) == 800, "read_uncommitted saw %d records, want 800",
          sum(len(r) for r in everything.values()))

    got = group.committed([TopicPartition(TOPIC, part) for part in range(PARTS)], 30)
    check([tp.offset for tp in got] == [100 + part for part in range(PARTS)],
          "group offsets %s, want those the transaction committed", [(tp.partition, tp.offset) for tp in got])
    group.close()

    # A second producer with the same transactional.id fences the first.
    p.begin_transaction()
    send(p, range(800, 810))
    p2 = producer("interop-confluent-txn")
    fenced = False
    try:
        p.commit_transaction(30)
    except KafkaException as e:
        err = e.args[0]
        fenced = err.fatal() or err.code() in (KafkaError._FENCED, KafkaError.PRODUCER_FENCED,
                                               KafkaError.INVALID_PRODUCER_EPOCH)
    check(fenced, "the fenced producer committed")
    p2.begin_transaction()
    send(p2, range(810, 820))
    p2.commit_transaction(30)
    return ("3 transactions (commit, abort, commit with group offsets): read_committed saw the 600 committed "
            "records, read_uncommitted all 800; offsets committed with the transaction; zombie fenced")


if __name__ == "__main__":
    main({"txn": txn})
