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
#   cluster.sh failover  a topic of three replicas; confluent-kafka-python
#                     produces with acks=all (idempotent) while the leader of
#                     partition 0 is killed (kill -9): a new leader is
#                     elected, every record is delivered, a consumer at a
#                     surviving broker reads each delivered record once at
#                     its delivered offset; the killed node, started again,
#                     rejoins every ISR
#   cluster.sh sarama sarama's ClusterAdmin moves every partition of a
#                     replicated topic to other brokers
#                     (AlterPartitionReassignments), waits for the moves
#                     (ListPartitionReassignments), elects the preferred
#                     leaders (ElectLeaders) and reads back every record
#                     (interop/goclients TestSaramaClusterAdmin)
#   cluster.sh secure three nodes whose only client listener is SASL_SSL,
#                     also their inter-broker listener (SCRAM-SHA-512 as
#                     User:broker, a super user; the authorizer on), and
#                     whose controller listener is mutual TLS
#                     (CONTROLLER:SSL; docs/SECURITY.md, "Cluster
#                     security"): kcat as User:admin produces acks=all to
#                     a topic of three replicas with min.insync.replicas=3
#                     and reads every record back through another broker;
#                     every ISR stays full, no node logs a failure to
#                     replicate or an ERROR
#   cluster.sh rack   three nodes in racks r0, r1, r2 with Kafka's
#                     RackAwareReplicaSelector (KIP-392): kcat with
#                     client.rack naming a follower's rack reads every
#                     record of a topic of three replicas, and its fetch log
#                     shows the leader sending it to that follower and the
#                     follower serving the records
set -euo pipefail
MODE=${1:?mode: kcat, txn, failover, sarama, secure or rack}
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
# SECURE holds the secure mode's settings (empty otherwise).
SECURE=()
if [ "$MODE" = secure ]; then
	mkdir "$TMP/tls"
	(
		cd "$TMP/tls"
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem \
			-days 2 -subj "/CN=gregor interop cluster CA"
		openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout node.key -out node.csr -subj "/CN=127.0.0.1"
		# Server and client: the nodes dial each other with it.
		printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n' >ext.cnf
		openssl x509 -req -in node.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out node.crt -days 2 -extfile ext.cnf
		cat node.key node.crt >node.pem
	) >"$TMP/openssl.log" 2>&1 || {
		cat "$TMP/openssl.log"
		fail "making TLS certificates"
	}
	SECURE=(
		--set listeners=SASL_SSL://127.0.0.1:0
		--set listener.security.protocol.map=SASL_SSL:SASL_SSL,CONTROLLER:SSL
		--set ssl.keystore.location="$TMP/tls/node.pem" --set ssl.truststore.location="$TMP/tls/ca.pem"
		--set sasl.enabled.mechanisms=SCRAM-SHA-512
		--set sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
		--set 'listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="broker" password="broker-secret";'
		--set authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
		--set 'super.users=User:broker;User:admin'
		--add-scram 'SCRAM-SHA-512=[name=broker,password=broker-secret]'
		--add-scram 'SCRAM-SHA-512=[name=admin,password=admin-secret]'
	)
fi
start_node() {
	local i=$1
	local rack=()
	if [ "$MODE" = rack ]; then
		rack=(--set "broker.rack=r$i" --set replica.selector.class=org.apache.kafka.common.replica.RackAwareReplicaSelector)
	fi
	"$WORK/gregor" serve --listen "127.0.0.1:${PORTS[$((3 * i))]}" --admin-listen "127.0.0.1:${PORTS[$((3 * i + 2))]}" \
		--data-dir "$TMP/d$i" --set "node.id=$i" --set "controller.quorum.voters=$VOTERS" \
		--set broker.session.timeout.ms=3000 "${SECURE[@]}" "${rack[@]}" >>"$TMP/n$i.log" 2>&1 &
	PIDS[$i]=$!
}
for i in 0 1 2; do
	start_node "$i"
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

stop_nodes() {
	for p in "${PIDS[@]}"; do kill -TERM "$p"; done
	for i in 0 1 2; do
		wait "${PIDS[$i]}" || fail "node $i exited with status $?"
		! grep -q 'level=ERROR' "$TMP/n$i.log" || fail "node $i logged an ERROR"
	done
	PIDS=()
	echo PASS
}

if [ "$MODE" = secure ]; then
	SASL=(-X security.protocol=SASL_SSL -X ssl.ca.location="$TMP/tls/ca.pem" -X sasl.mechanisms=SCRAM-SHA-512
		-X sasl.username=admin -X sasl.password=admin-secret)
	brokers=0
	for _ in $(seq 100); do
		brokers=$(kc "${SASL[@]}" -b "$B0" -L -J | /usr/bin/python3 -c 'import json,sys; print(len(json.load(sys.stdin)["brokers"]))') || brokers=0
		[ "$brokers" = 3 ] && break
		sleep 0.1
	done
	[ "$brokers" = 3 ] || fail "kcat over SASL_SSL sees $brokers brokers, want 3"
	GREGOR_TLS_CA="$TMP/tls/ca.pem" GREGOR_SASL_MECHANISM=SCRAM-SHA-512 GREGOR_SASL_USER=admin GREGOR_SASL_PASSWORD=admin-secret \
		"$WORK/gregor" topic create secured --partitions 3 --replication-factor 3 -c min.insync.replicas=3 --brokers "$B1" >/dev/null ||
		fail "topic create over SASL_SSL"
	N=300
	seq 1 $N | awk '{ printf "s-%05d\n", $1 }' >"$TMP/in"
	kc "${SASL[@]}" -b "$B0" -X acks=all -P -t secured <"$TMP/in" || fail "acks=all produce over SASL_SSL"
	kc "${SASL[@]}" -b "$B2" -C -t secured -o beginning -e -q | sort >"$TMP/out" || fail "consume over SASL_SSL"
	cmp -s "$TMP/in" "$TMP/out" || fail "consumed $(wc -l <"$TMP/out") records, not the $N produced"
	/usr/bin/python3 - "$B1" "$TMP/tls/ca.pem" <<'PY' || fail "ISRs not full"
import sys
from confluent_kafka.admin import AdminClient
a = AdminClient({"bootstrap.servers": sys.argv[1], "security.protocol": "SASL_SSL", "ssl.ca.location": sys.argv[2],
                 "sasl.mechanisms": "SCRAM-SHA-512", "sasl.username": "admin", "sasl.password": "admin-secret"})
t = a.list_topics("secured", timeout=10).topics["secured"]
isrs = {i: sorted(p.isrs) for i, p in t.partitions.items()}
if len(isrs) != 3 or any(isr != [0, 1, 2] for isr in isrs.values()):
    sys.exit("ISRs %s, want [0, 1, 2] each" % isrs)
PY
	for i in 0 1 2; do
		! grep -q 'cannot replicate' "$TMP/n$i.log" || fail "node $i: $(grep -m1 'cannot replicate' "$TMP/n$i.log")"
	done
	echo "kcat: $N records acks=all over SASL_SSL to 3 replicas (min.insync.replicas=3), read back at another broker; brokers on SASL_SSL, controllers on mutual TLS"
	stop_nodes
	exit 0
fi

brokers=0
for _ in $(seq 100); do
	brokers=$(kc -b "$B0" -L -J | /usr/bin/python3 -c 'import json,sys; print(len(json.load(sys.stdin)["brokers"]))') || brokers=0
	[ "$brokers" = 3 ] && break
	sleep 0.1
done
[ "$brokers" = 3 ] || fail "kcat sees $brokers brokers, want 3"

"$WORK/gregor" topic create events --partitions 6 --brokers "$B1" >/dev/null || fail "topic create"

# replicated_leader TOPIC PARTITIONS waits until every partition of
# TOPIC (of three replicas) has a full ISR and prints partition 0's leader.
replicated_leader() {
	/usr/bin/python3 - "$B0" "$1" "$2" <<'PY'
import sys, time
from confluent_kafka.admin import AdminClient
a = AdminClient({"bootstrap.servers": sys.argv[1]})
topic, n = sys.argv[2], int(sys.argv[3])
deadline = time.time() + 30
while time.time() < deadline:
    t = a.list_topics(topic, timeout=10).topics.get(topic)
    if t and len(t.partitions) == n and all(len(p.isrs) == 3 for p in t.partitions.values()):
        print(t.partitions[0].leader)
        sys.exit(0)
    time.sleep(0.2)
sys.exit("the ISRs did not fill")
PY
}

if [ "$MODE" = rack ]; then
	"$WORK/gregor" topic create racked --partitions 1 --replication-factor 3 --brokers "$B1" >/dev/null || fail "topic create"
	leader=$(replicated_leader racked 1) || fail "topic not replicated"
	follower=$(((leader + 1) % 3))
	N=2000
	seq 1 $N | awk '{ printf "r-%05d\n", $1 }' >"$TMP/in"
	kc -b "$B0" -X acks=all -P -t racked <"$TMP/in" || fail "produce"
	# librdkafka logs each fetch from its broker thread, named by
	# address and node ID, and the leader's redirect.
	kc -b "$B0" -X client.rack="r$follower" -X debug=fetch -C -t racked -o beginning -e >"$TMP/out" 2>"$TMP/fetch.log" || # (-q would hide the log)
		fail "consume with client.rack"
	cmp -s "$TMP/in" "$TMP/out" || fail "consumed $(wc -l <"$TMP/out") records, not the $N produced"
	grep -q "migrating from broker $leader to $follower .*preferred replica" "$TMP/fetch.log" || {
		grep -m20 'racked' "$TMP/fetch.log" >&2 || true
		fail "no redirect from the leader $leader to the follower $follower in kcat's fetch log"
	}
	served=$(grep -c "/$follower: Fetch topic racked \[0\] at offset" "$TMP/fetch.log" || true)
	[ "$served" -gt 0 ] || fail "no fetch of racked [0] from the follower $follower"
	echo "kcat in rack r$follower: $N records, fetched from the follower $follower ($served fetches) after the leader $leader's redirect"
	stop_nodes
	exit 0
fi

if [ "$MODE" = failover ]; then
	"$WORK/gregor" topic create replicated --partitions 3 --replication-factor 3 -c min.insync.replicas=2 --brokers "$B1" >/dev/null ||
		fail "topic create"
	leader=$(replicated_leader replicated 3) || fail "topic not replicated"
	survivor=$(((leader + 1) % 3))
	SB=127.0.0.1:${PORTS[$((3 * survivor))]}
	/usr/bin/python3 - "$B0,$B1,$B2" "$SB" "${PIDS[$leader]}" <<'PY' || fail "failover"
import os, signal, sys, time
from confluent_kafka import Consumer, Producer, TopicPartition
brokers, survivor, victim = sys.argv[1], sys.argv[2], int(sys.argv[3])
delivered, errors = {}, []
def report(err, m):
    if err:
        errors.append(str(err))
    else:
        delivered[m.value().decode()] = (m.partition(), m.offset())
p = Producer({"bootstrap.servers": brokers, "client.id": "interop-cluster", "acks": "all",
              "enable.idempotence": True, "linger.ms": 5, "message.timeout.ms": 60000})
for i in range(400):
    if i == 200:
        p.flush(30)
        os.kill(victim, signal.SIGKILL)
    p.produce("replicated", value=b"r-%04d" % i, partition=i % 3, on_delivery=report)
    p.poll(0)
    time.sleep(0.002)
left = p.flush(90)
if errors or left or len(delivered) != 400:
    sys.exit("delivered %d of 400, %d left, errors %s" % (len(delivered), left, errors[:5]))
c = Consumer({"bootstrap.servers": survivor, "group.id": "unused", "client.id": "interop-cluster",
              "enable.auto.commit": False})
c.assign([TopicPartition("replicated", i, 0) for i in range(3)])
seen, deadline = {}, time.time() + 60
while len(seen) < 400 and time.time() < deadline:
    m = c.poll(1)
    if m is None:
        continue
    if m.error():
        sys.exit("consumer error: %s" % m.error())
    v = m.value().decode()
    if v in seen:
        sys.exit("%s read twice" % v)
    if delivered.get(v) != (m.partition(), m.offset()):
        sys.exit("%s at %d/%d, delivered at %s" % (v, m.partition(), m.offset(), delivered.get(v)))
    seen[v] = True
c.close()
if len(seen) != 400:
    sys.exit("read %d of the 400 delivered" % len(seen))
print("400 delivered with acks=all across a kill -9 of the leader; all read once at their offsets")
PY
	wait "${PIDS[$leader]}" 2>/dev/null || true
	start_node "$leader"
	/usr/bin/python3 - "$SB" <<'PY' || fail "the restarted node did not rejoin the ISRs"
import sys, time
from confluent_kafka.admin import AdminClient
a = AdminClient({"bootstrap.servers": sys.argv[1]})
deadline = time.time() + 60
while time.time() < deadline:
    t = a.list_topics("replicated", timeout=10).topics["replicated"]
    if all(len(p.isrs) == 3 for p in t.partitions.values()):
        sys.exit(0)
    time.sleep(0.2)
sys.exit("ISRs: %s" % {i: p.isrs for i, p in t.partitions.items()})
PY
	stop_nodes
	exit 0
fi
if [ "$MODE" = sarama ]; then
	GREGOR_ADDR=$B0 GREGOR_CLUSTER="$B0,$B1,$B2" "$WORK/goclients.test" -test.v -test.timeout 120s \
		-test.run '^TestSaramaClusterAdmin$' >"$TMP/sarama.out" 2>&1 || { cat "$TMP/sarama.out"; fail "sarama cluster admin"; }
	grep '^--- PASS: TestSaramaClusterAdmin ' "$TMP/sarama.out" || { cat "$TMP/sarama.out"; fail "TestSaramaClusterAdmin did not pass"; }
	stop_nodes
	exit 0
fi
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
