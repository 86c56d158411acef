#!/usr/bin/env bash
# A cluster (preview, docs/CLUSTER.md) of three gregor serve processes
# with kcat (librdkafka), run by interop/run.sh with WORK set (its gregor
# binary is $WORK/gregor).
#
#   cluster.sh kcat   three nodes given the same controller.quorum.voters:
#                     kcat sees three brokers, a six-partition topic led by
#                     all of them takes records produced through one broker,
#                     a balanced consumer (-G) bootstrapped at another reads
#                     them all, the nodes stop cleanly with no ERROR logged
#   cluster.sh txn    confluent-kafka-python (librdkafka) commits a
#                     transaction and aborts one over partitions of all three
#                     brokers; a read_committed consumer at another broker
#                     reaches the end of every partition (their markers all
#                     written) having read exactly the committed records
set -euo pipefail
MODE=${1:?mode: kcat or txn}
: "${WORK:?run through interop/run.sh}"
# The suite's other brokers' settings are not this cluster's (run.sh
# exports the SASL_SSL broker's CA, which the gregor CLI would use).
unset GREGOR_TLS GREGOR_TLS_CA GREGOR_TLS_CERT GREGOR_SASL_USER GREGOR_SASL_PASSWORD GREGOR_SASL_MECHANISM GREGOR_BROKERS
trap 'echo "FAIL: line $LINENO exited with status $?"' ERR
TMP=$(mktemp -d)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
	rm -rf "$TMP"
}
trap cleanup EXIT

fail() {
	echo "FAIL: $*"
	for i in 0 1 2; do
		echo "--- node $i log (last 40 lines)"
		tail -n 40 "$TMP/n$i.log" 2>/dev/null || true
	done
	exit 1
}

# Nine free loopback ports: Kafka, controller and admin for each node.
mapfile -t PORTS < <(/usr/bin/python3 - <<'PY'
import socket
ss = [socket.socket() for _ in range(9)]
for s in ss:
    s.bind(("127.0.0.1", 0))
print("\n".join(str(s.getsockname()[1]) for s in ss))
PY
)
VOTERS="0@127.0.0.1:${PORTS[1]},1@127.0.0.1:${PORTS[4]},2@127.0.0.1:${PORTS[7]}"
for i in 0 1 2; do
	"$WORK/gregor" serve --listen "127.0.0.1:${PORTS[$((3 * i))]}" --admin-listen "127.0.0.1:${PORTS[$((3 * i + 2))]}" \
		--data-dir "$TMP/d$i" --set "node.id=$i" --set "controller.quorum.voters=$VOTERS" >"$TMP/n$i.log" 2>&1 &
	PIDS+=($!)
done
B0=127.0.0.1:${PORTS[0]} B1=127.0.0.1:${PORTS[3]} B2=127.0.0.1:${PORTS[6]}
for i in 0 1 2; do
	for _ in $(seq 300); do
		grep -q 'msg="gregor listening"' "$TMP/n$i.log" && break
		sleep 0.1
	done
	grep -q 'msg="gregor listening"' "$TMP/n$i.log" || fail "node $i did not start"
done

kc() { timeout 60 kcat -X client.id=interop-cluster "$@"; }

brokers=0
for _ in $(seq 100); do
	brokers=$(kc -b "$B0" -L -J | /usr/bin/python3 -c 'import json,sys; print(len(json.load(sys.stdin)["brokers"]))') || brokers=0
	[ "$brokers" = 3 ] && break
	sleep 0.1
done
[ "$brokers" = 3 ] || fail "kcat sees $brokers brokers, want 3"

"$WORK/gregor" topic create events --partitions 6 --brokers "$B1" >/dev/null || fail "topic create"

stop_nodes() {
	for p in "${PIDS[@]}"; do kill -TERM "$p"; done
	for i in 0 1 2; do
		wait "${PIDS[$i]}" || fail "node $i exited with status $?"
		! grep -q 'level=ERROR' "$TMP/n$i.log" || fail "node $i logged an ERROR"
	done
	PIDS=()
	echo PASS
}

if [ "$MODE" = txn ]; then
	/usr/bin/python3 - "$B1" "$B2" <<'PY' || fail "transactions across brokers"
import sys, time
from confluent_kafka import Consumer, KafkaError, Producer
b1, b2 = sys.argv[1], sys.argv[2]
p = Producer({"bootstrap.servers": b1, "transactional.id": "interop-cluster-txn", "client.id": "interop-cluster"})
p.init_transactions(30)
for commit in (True, False):
    p.begin_transaction()
    for i in range(60):
        p.produce("events", value=("%s-%d" % ("c" if commit else "a", i)).encode(), partition=i % 6)
    if commit:
        p.commit_transaction(30)
    else:
        p.abort_transaction(30)
c = Consumer({"bootstrap.servers": b2, "group.id": "interop-cluster-txn", "client.id": "interop-cluster",
              "auto.offset.reset": "earliest", "isolation.level": "read_committed", "enable.partition.eof": True})
c.subscribe(["events"])
got, eofs, deadline = [], set(), time.time() + 60
while len(eofs) < 6 and time.time() < deadline:
    m = c.poll(1)
    if m is None:
        continue
    if m.error():
        if m.error().code() == KafkaError._PARTITION_EOF:
            eofs.add(m.partition())
            continue
        sys.exit("consumer error: %s" % m.error())
    got.append(m.value().decode())
c.close()
if len(eofs) < 6:
    sys.exit("read_committed consumer reached the end of %d partitions of 6 (markers missing?)" % len(eofs))
if sorted(got) != sorted("c-%d" % i for i in range(60)):
    sys.exit("read %d records, want the 60 committed: %s" % (len(got), got[:10]))
print("committed 60 and aborted 60 over 3 brokers; read_committed read the 60")
PY
	stop_nodes
	exit 0
fi
# Asked at a third broker, which learns of the topic from the metadata
# log: at once, or a moment later.
leaders=0
for _ in $(seq 100); do
	leaders=$(kc -b "$B2" -L -t events -J | /usr/bin/python3 -c '
import json, sys
md = json.load(sys.stdin)
print(len({p["leader"] for t in md["topics"] for p in t.get("partitions", [])}))') || leaders=0
	[ "$leaders" = 3 ] && break
	sleep 0.1
done
[ "$leaders" = 3 ] || fail "the topic's partitions are led by $leaders brokers, want 3"

N=300
seq 1 $N | sed 's/^/rec-/' | kc -b "$B1" -P -t events -X topic.partitioner=random || fail "produce"
got=$(kc -b "$B2" -G cluster-readers -X auto.offset.reset=earliest -o beginning -c $N -q events 2>"$TMP/consume.err" | sort -u | wc -l)
[ "$got" = $N ] || fail "consumed $got distinct records, want $N: $(cat "$TMP/consume.err")"

stop_nodes
