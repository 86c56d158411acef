"""kafka-python 2.0.2 (Debian's python3-kafka) against Gregor.

  kafka_python_case.py roundtrip  KafkaAdminClient creates a topic;
                                  KafkaProducer sends keyed records with headers;
                                  beginning/end offsets (ListOffsets);
                                  KafkaConsumer with assign() reads them back;
                                  KafkaAdminClient deletes the topic
  kafka_python_case.py gzip       the same through compression_type=gzip
  kafka_python_case.py group      two group members (one thread each) share the
                                  partitions and commit; a new member resumes
                                  after the commits
"""

import threading
import time

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError

from common import (ADDR, Failure, check, check_group_share, check_partition, check_resume, distinct,
                    eventually, index, main, require_groups, want)

CID = "interop-kafka-python"
# kafka-python probes the broker's version when it connects, within 2 s
# by default: too short on a loaded 2-core machine (NoBrokersAvailable).
VERSION_PROBE_MS = 15000


def create_topic(topic, parts):
    admin = KafkaAdminClient(bootstrap_servers=ADDR, client_id=CID, api_version_auto_timeout_ms=VERSION_PROBE_MS)
    try:
        resp = admin.create_topics([NewTopic(topic, num_partitions=parts, replication_factor=1)], timeout_ms=30000)
        errs = [e for t in resp.topic_errors for e in [t[1]] if e != 0]
        check(not errs, "create_topics: %r", resp)
        try:
            admin.create_topics([NewTopic(topic, num_partitions=parts, replication_factor=1)], timeout_ms=30000)
            raise Failure("creating %s twice succeeded" % topic)
        except TopicAlreadyExistsError:
            pass
        check(topic in admin.list_topics(), "list_topics lacks %s", topic)
        (desc,) = admin.describe_topics([topic])
        check(desc["error_code"] == 0 and len(desc["partitions"]) == parts, "describe_topics: %r", desc)
    finally:
        admin.close()


def produce(topic, src, parts, rng, **opts):
    """Send records rng; return {(partition, offset): i}."""
    p = KafkaProducer(bootstrap_servers=ADDR, client_id=CID, api_version_auto_timeout_ms=VERSION_PROBE_MS, acks="all", linger_ms=5, **opts)
    futures = []
    for i in rng:
        k, v, h = want(src, i)
        futures.append((i, p.send(topic, key=k, value=v, headers=h, partition=i % parts)))
    p.flush(30)
    acked = {}
    for i, f in futures:
        md = f.get(timeout=30)
        acked[(md.partition, md.offset)] = i
    p.close(30)
    check(len(acked) == len(rng), "%d records acked, want %d", len(acked), len(rng))
    return acked


def record(msg):
    return (msg.partition, msg.offset, msg.key, msg.value, msg.headers)


def roundtrip(codec=None):
    topic = src = "kafka-python" + ("-" + codec if codec else "")
    parts, n = 3, 600
    create_topic(topic, parts)
    acked = produce(topic, src, parts, range(n), **({"compression_type": codec} if codec else {}))

    c = KafkaConsumer(bootstrap_servers=ADDR, client_id=CID, api_version_auto_timeout_ms=VERSION_PROBE_MS, group_id=None, enable_auto_commit=False,
                      fetch_max_wait_ms=100)
    tps = [TopicPartition(topic, p) for p in range(parts)]
    c.assign(tps)
    begin, end = c.beginning_offsets(tps), c.end_offsets(tps)
    check(all(begin[tp] == 0 for tp in tps), "beginning offsets %s", begin)
    check(sum(end.values()) == n, "end offsets %s add up to %d, want %d", end, sum(end.values()), n)
    c.seek_to_beginning()
    got = {p: [] for p in range(parts)}
    deadline = time.monotonic() + 60
    total = 0
    while total < n:
        check(time.monotonic() < deadline, "consumed %d of %d records in 60s", total, n)
        for tp, msgs in c.poll(timeout_ms=500).items():
            for msg in msgs:
                got[tp.partition].append((msg.offset, msg.key, msg.value, msg.headers))
                total += 1
    c.close()
    for p in range(parts):
        check(len(got[p]) == end[TopicPartition(topic, p)], "partition %d: %d records, end offset %d",
              p, len(got[p]), end[TopicPartition(topic, p)])
        check_partition(src, p, parts, 0, got[p])
        for off, key, _, _ in got[p]:
            check(acked[(p, off)] == index(key), "partition %d offset %d: producer was told record %d",
                  p, off, acked[(p, off)])
    admin = KafkaAdminClient(bootstrap_servers=ADDR, client_id=CID, api_version_auto_timeout_ms=VERSION_PROBE_MS)
    try:
        resp = admin.delete_topics([topic], timeout_ms=30000)
        check(all(e == 0 for _, e in resp.topic_error_codes), "delete_topics: %r", resp)
        eventually("%s to leave the metadata" % topic, lambda: topic not in admin.list_topics(), timeout=30, step=0.1)
    finally:
        admin.close()
    return "%d records in %d partitions (%s): produced, listed, consumed back; topic deleted" % (
        n, parts, codec or "uncompressed")


class Member(threading.Thread):
    """A group member polling on its own thread (kafka-python blocks in
    poll while its group rebalances), committing after every poll."""

    def __init__(self, group, topic):
        super().__init__(daemon=True)
        self.group, self.topic = group, topic
        self.lock = threading.Lock()
        self.got, self.assignment, self.error = [], set(), None
        self.stopping = threading.Event()
        self.start()

    def run(self):
        try:
            c = KafkaConsumer(bootstrap_servers=ADDR, client_id=CID, api_version_auto_timeout_ms=VERSION_PROBE_MS, group_id=self.group,
                              enable_auto_commit=False, auto_offset_reset="earliest", fetch_max_wait_ms=100,
                              session_timeout_ms=10000, heartbeat_interval_ms=500)
            c.subscribe([self.topic])
            while not self.stopping.is_set():
                recs = c.poll(timeout_ms=100)
                with self.lock:
                    for msgs in recs.values():
                        self.got.extend(record(m) for m in msgs)
                    self.assignment = {tp.partition for tp in c.assignment()}
                if recs:
                    c.commit()
            c.close()
        except Exception as e:  # reported by the main thread
            self.error = e

    def snapshot(self):
        with self.lock:
            if self.error:
                raise Failure("member: %r" % self.error)
            return set(self.assignment), list(self.got)

    def stop(self):
        self.stopping.set()
        self.join(60)
        check(not self.is_alive(), "member did not stop")
        if self.error:
            raise Failure("member: %r" % self.error)


def group():
    require_groups()
    topic = grp = src = "kafka-python-group"
    parts, n, m = 4, 400, 100
    create_topic(topic, parts)

    a, b = Member(grp, topic), Member(grp, topic)
    try:
        def shared():
            pa, pb = a.snapshot()[0], b.snapshot()[0]
            return pa and pb and not (pa & pb) and len(pa | pb) == parts

        eventually("both members to share the partitions", shared)
        produce(topic, src, parts, range(n))
        eventually("the two members to consume every record",
                   lambda: distinct(a.snapshot()[1], b.snapshot()[1]) >= n)
    finally:
        a.stop()
        b.stop()
    check_group_share(src, parts, n, [a.got, b.got])

    produce(topic, src, parts, range(n, n + m))
    c = Member(grp, topic)
    try:
        eventually("the new member to consume the new records", lambda: distinct(c.snapshot()[1]) >= m)
    finally:
        c.stop()
    check_resume(src, n, m, c.got)
    return "two members shared %d partitions (%d and %d records), a new member resumed after the commits" % (
        parts, len(a.got), len(b.got))


if __name__ == "__main__":
    main({"roundtrip": roundtrip, "gzip": lambda: roundtrip("gzip"), "group": group})
