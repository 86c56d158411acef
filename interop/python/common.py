"""Helpers shared by the Python interop cases (run with Debian's
/usr/bin/python3, which has python3-confluent-kafka and python3-kafka).

Records are the same in every language of the suite: record i has key
"k-%05d", value "v-%05d-<src>-" + "x" * (i % 61) and headers i=<i>,
src=<src>; in a topic of P partitions it goes to partition i % P.
"""

import os
import socket
import struct
import sys
import time

ADDR = os.environ.get("GREGOR_ADDR", "")
if not ADDR:
    sys.exit("GREGOR_ADDR is not set: run interop/run.sh, which starts a broker")

GATE = "SKIP: broker lacks consumer groups"

# FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup,
# OffsetCommit, OffsetFetch.
GROUP_APIS = (10, 11, 14, 12, 13, 8, 9)


def api_versions(addr=ADDR):
    """The broker's advertised {key: (min, max)}, from a raw ApiVersions
    v0 request: independent of the client under test."""
    host, port = addr.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as s:
        cid = b"interop-probe"
        body = struct.pack(">hhih", 18, 0, 1, len(cid)) + cid
        s.sendall(struct.pack(">i", len(body)) + body)
        size = struct.unpack(">i", _read(s, 4))[0]
        resp = _read(s, size)
    _corr, err, n = struct.unpack_from(">ihi", resp, 0)
    if err:
        raise RuntimeError("ApiVersions error code %d" % err)
    out = {}
    for j in range(n):
        k, lo, hi = struct.unpack_from(">hhh", resp, 10 + 6 * j)
        out[k] = (lo, hi)
    return out


def _read(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise RuntimeError("connection closed")
        buf += chunk
    return buf


def require_groups():
    """Exit 0 with the gate message while the broker advertises no group
    API; run.sh reports it as SKIP, and as a failure once it does."""
    vs = api_versions()
    if not any(k in vs for k in GROUP_APIS):
        print(GATE + " (ApiVersions advertises none of FindCoordinator, JoinGroup, "
              "SyncGroup, Heartbeat, LeaveGroup, OffsetCommit, OffsetFetch)")
        sys.exit(0)


def require_idempotence():
    """Exit 0 with the gate message while the broker does not advertise
    InitProducerID (what idempotent producers need first)."""
    if 22 not in api_versions():
        print("SKIP: broker lacks idempotent producers (ApiVersions lacks InitProducerID)")
        sys.exit(0)


def stored_batches(topic, partition):
    """Batch headers of a partition's first segment, read from the broker's
    data directory (GREGOR_DATA): [(baseOffset, producerId, producerEpoch,
    baseSequence, recordsCount)]."""
    path = os.path.join(os.environ["GREGOR_DATA"], "%s-%d" % (topic, partition), "%020d.log" % 0)
    with open(path, "rb") as f:
        data = f.read()
    out, pos = [], 0
    while pos + 61 <= len(data):
        base, length = struct.unpack_from(">qi", data, pos)
        pid, epoch, seq, count = struct.unpack_from(">qhii", data, pos + 43)
        out.append((base, pid, epoch, seq, count))
        pos += length + 12
    return out


def check_idempotent_batches(topic, partition):
    """One idempotent producer wrote the partition: a producer ID, and
    sequences from 0 without gap or repeat."""
    bs = stored_batches(topic, partition)
    check(bs, "%s-%d: no stored batches", topic, partition)
    seq = 0
    for (base, pid, epoch, bseq, count) in bs:
        check(pid >= 0 and (pid, epoch) == bs[0][1:3], "%s-%d offset %d: producer %d epoch %d, want one "
              "idempotent producer (first %d/%d)", topic, partition, base, pid, epoch, bs[0][1], bs[0][2])
        check(bseq == seq, "%s-%d offset %d: base sequence %d, want %d", topic, partition, base, bseq, seq)
        seq += count


def want(src, i):
    """(key, value, headers) of record i."""
    return (
        b"k-%05d" % i,
        b"v-%05d-%s-%s" % (i, src.encode(), b"x" * (i % 61)),
        [("i", str(i).encode()), ("src", src.encode())],
    )


class Failure(Exception):
    pass


def check(cond, msg, *args):
    if not cond:
        raise Failure(msg % args if args else msg)


def index(key):
    check(key is not None and key.startswith(b"k-"), "unexpected key %r", key)
    return int(key[2:])


def check_record(src, partition, offset, key, value, headers, parts=None, with_headers=True):
    """Verify one consumed record; return its index."""
    i = index(key)
    k, v, h = want(src, i)
    check(value == v, "%d/%d: value %r, want %r", partition, offset, value, v)
    if with_headers:
        got = [(hk, bytes(hv)) for hk, hv in (headers or [])]
        check(got == h, "%d/%d: headers %r, want %r", partition, offset, got, h)
    if parts:
        check(i % parts == partition, "record %d in partition %d, want %d", i, partition, i % parts)
    return i


def check_partition(src, partition, parts, start, recs, with_headers=True):
    """recs: [(offset, key, value, headers)] consumed from one partition in
    order. Offsets must run from start with no gap and indexes increase."""
    last = -1
    for j, (off, key, value, headers) in enumerate(recs):
        check(off == start + j, "partition %d: record %d at offset %d, want %d", partition, j, off, start + j)
        i = check_record(src, partition, off, key, value, headers, parts, with_headers)
        check(i > last, "partition %d: record %d after %d: order not kept", partition, i, last)
        last = i


def check_group_share(src, parts, n, members):
    """members: per member, [(partition, offset, key, value, headers)].
    Every record 0..n-1 consumed, each member got some."""
    seen = set()
    for m, recs in enumerate(members):
        check(recs, "member %d consumed nothing: the partitions were not shared", m)
        for (p, off, key, value, headers) in recs:
            seen.add(check_record(src, p, off, key, value, headers, parts))
    missing = sorted(set(range(n)) - seen)
    check(not missing, "records never consumed: %s", missing[:20])


def check_resume(src, n, m, recs):
    """A member joining after the commits got exactly records n..n+m-1."""
    seen = set()
    for (p, off, key, value, headers) in recs:
        i = check_record(src, p, off, key, value, headers)
        check(i >= n, "new member re-consumed record %d (partition %d offset %d): "
              "the commits were not honoured", i, p, off)
        seen.add(i)
    check(len(seen) == m, "new member consumed %d distinct records, want %d", len(seen), m)


def distinct(*members):
    return len({index(r[2]) for recs in members for r in recs})


def eventually(what, cond, timeout=60, step=0.02):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise Failure("timed out after %ss waiting for %s" % (timeout, what))
        time.sleep(step)


def main(cases):
    """Run cases[sys.argv[1]]; print PASS or FAIL."""
    name = sys.argv[1] if len(sys.argv) > 1 else ""
    if name not in cases:
        sys.exit("usage: %s {%s}" % (sys.argv[0], "|".join(cases)))
    try:
        summary = cases[name]()
    except Failure as e:
        print("FAIL: %s" % e)
        sys.exit(1)
    print("PASS: %s" % summary)
