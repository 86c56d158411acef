"""confluent-kafka-python (Debian: 1.7 on librdkafka 2.0) against Gregor.

  confluent_case.py roundtrip  AdminClient creates a topic; Producer sends
                               keyed records with headers; watermarks and
                               offsets_for_times (ListOffsets); Consumer with
                               assign() reads them back; AdminClient deletes it
  confluent_case.py group      two group members share the partitions and
                               commit; a new member resumes after the commits
  confluent_case.py idempotent roundtrip with enable.idempotence: the stored
                               batches carry one producer ID, gap-free sequences
"""

import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from common import (ADDR, Failure, check, check_group_share, check_idempotent_batches, check_partition,
                    check_resume, distinct, eventually, index, main, require_groups, require_idempotence, want)

CID = "interop-confluent-kafka-python"


def create_topic(topic, parts):
    admin = AdminClient({"bootstrap.servers": ADDR, "client.id": CID})
    fs = admin.create_topics([NewTopic(topic, num_partitions=parts, replication_factor=1)], operation_timeout=30)
    fs[topic].result(30)
    # Creating it again is TOPIC_ALREADY_EXISTS.
    fs = admin.create_topics([NewTopic(topic, num_partitions=parts, replication_factor=1)], operation_timeout=30)
    try:
        fs[topic].result(30)
        raise Failure("creating %s twice succeeded" % topic)
    except KafkaException as e:
        check(e.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS, "create again: %s", e)
    md = admin.list_topics(topic, timeout=30)
    t = md.topics.get(topic)
    check(t is not None and t.error is None and len(t.partitions) == parts, "list_topics: %r", t)


def produce(topic, src, parts, rng, **conf):
    """Send records rng with a Producer; return {(partition, offset): i}."""
    acked, errors = {}, []

    def delivered(err, msg):
        if err is not None:
            errors.append(err)
        else:
            acked[(msg.partition(), msg.offset())] = index(msg.key())

    p = Producer({"bootstrap.servers": ADDR, "client.id": CID, "acks": "all", "linger.ms": 5,
                  "batch.num.messages": 100, **conf})
    for i in rng:
        k, v, h = want(src, i)
        p.produce(topic, value=v, key=k, headers=h, partition=i % parts, on_delivery=delivered)
        p.poll(0)
    left = p.flush(30)
    check(left == 0, "%d records not delivered in 30s", left)
    check(not errors, "delivery errors: %s", errors[:5])
    check(len(acked) == len(rng), "%d records acked, want %d", len(acked), len(rng))
    return acked


def record(msg):
    return (msg.partition(), msg.offset(), msg.key(), msg.value(), msg.headers())


def roundtrip(idempotent=False):
    topic = src = "confluent-kafka-python" + ("-idempotent" if idempotent else "")
    parts, n = 3, (3000 if idempotent else 600)
    create_topic(topic, parts)
    acked = produce(topic, src, parts, range(n), **({"enable.idempotence": True} if idempotent else {}))

    # group.id is required by this client version even for assign(); no
    # group is joined and nothing is committed.
    c = Consumer({"bootstrap.servers": ADDR, "client.id": CID, "group.id": "confluent-assign",
                  "enable.auto.commit": False, "fetch.wait.max.ms": 100})
    counts = {}
    for p in range(parts):
        lo, hi = c.get_watermark_offsets(TopicPartition(topic, p), timeout=30)
        check(lo == 0, "partition %d: low watermark %d", p, lo)
        counts[p] = hi
    check(sum(counts.values()) == n, "high watermarks %s add up to %d, want %d", counts, sum(counts.values()), n)

    c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(parts)])
    got = {p: [] for p in range(parts)}
    stamps = {}  # partition -> record timestamps by offset
    deadline = time.monotonic() + 60
    total = 0
    while total < n:
        check(time.monotonic() < deadline, "consumed %d of %d records in 60s", total, n)
        msg = c.poll(0.5)
        if msg is None:
            continue
        check(msg.error() is None, "consumer error: %s", msg.error())
        p, off, key, value, headers = record(msg)
        got[p].append((off, key, value, headers))
        stamps.setdefault(p, []).append(msg.timestamp()[1])
        total += 1
    check_offsets_for_times(c, topic, stamps)
    c.close()
    for p in range(parts):
        check_partition(src, p, parts, 0, got[p])
        for off, key, _, _ in got[p]:
            check(acked[(p, off)] == index(key), "partition %d offset %d: producer was told record %d",
                  p, off, acked[(p, off)])
        if idempotent:
            check_idempotent_batches(topic, p)
    if idempotent:
        return "%d records in %d partitions by an idempotent producer (one producer ID, gap-free sequences): " \
            "produced, listed, consumed back" % (n, parts)
    delete_topic(topic)
    return "%d records in %d partitions: produced, listed, found by timestamp, consumed back; topic deleted" % (n, parts)


def idempotent():
    require_idempotence()
    return roundtrip(idempotent=True)


def check_offsets_for_times(c, topic, stamps):
    """ListOffsets by timestamp: the first offset whose timestamp is at
    least the one asked (computed from the consumed records), and the end
    (-1) past the last one."""
    for p, ts in stamps.items():
        for target in sorted({ts[0], ts[len(ts) // 2], ts[len(ts) // 2] + 1, ts[-1], ts[-1] + 1}):
            want = next((o for o, t in enumerate(ts) if t >= target), -1)
            (res,) = c.offsets_for_times([TopicPartition(topic, p, target)], timeout=30)
            check(res.error is None and res.offset == want, "offsets_for_times(partition %d, %d) = %s, want offset %d",
                  p, target, res, want)


def delete_topic(topic):
    admin = AdminClient({"bootstrap.servers": ADDR, "client.id": CID})
    admin.delete_topics([topic], operation_timeout=30)[topic].result(30)
    eventually("%s to leave the metadata" % topic,
               lambda: topic not in admin.list_topics(timeout=30).topics, timeout=30, step=0.1)


class Member:
    def __init__(self, group, topic):
        self.c = Consumer({"bootstrap.servers": ADDR, "client.id": CID, "group.id": group,
                           "enable.auto.commit": False, "auto.offset.reset": "earliest",
                           "fetch.wait.max.ms": 100, "session.timeout.ms": 10000,
                           "heartbeat.interval.ms": 500})
        self.c.subscribe([topic])
        self.got = []

    def poll(self):
        msg = self.c.poll(0.05)
        if msg is None:
            return
        if msg.error() is not None:
            raise Failure("consumer error: %s" % msg.error())
        self.got.append(record(msg))

    def assigned(self):
        return {tp.partition for tp in self.c.assignment()}

    def commit(self):
        try:
            self.c.commit(asynchronous=False)
        except KafkaException as e:
            if e.args[0].code() != KafkaError._NO_OFFSET:
                raise

    def close(self):
        self.c.close()


def group():
    require_groups()
    topic = grp = src = "confluent-kafka-python-group"
    parts, n, m = 4, 400, 100
    create_topic(topic, parts)

    a, b = Member(grp, topic), Member(grp, topic)

    def shared():
        a.poll()
        b.poll()
        pa, pb = a.assigned(), b.assigned()
        return pa and pb and not (pa & pb) and len(pa | pb) == parts

    eventually("both members to share the partitions", shared)
    produce(topic, src, parts, range(n))

    def consumed():
        a.poll()
        b.poll()
        return distinct(a.got, b.got) >= n

    eventually("the two members to consume every record", consumed)
    a.commit()
    b.commit()
    a.close()
    b.close()
    check_group_share(src, parts, n, [a.got, b.got])

    produce(topic, src, parts, range(n, n + m))
    c = Member(grp, topic)

    def resumed():
        c.poll()
        return distinct(c.got) >= m

    eventually("the new member to consume the new records", resumed)
    c.close()
    check_resume(src, n, m, c.got)
    return "two members shared %d partitions (%d and %d records), a new member resumed after the commits" % (
        parts, len(a.got), len(b.got))


if __name__ == "__main__":
    main({"roundtrip": roundtrip, "group": group, "idempotent": idempotent})
