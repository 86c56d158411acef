#!/usr/bin/env bash
# What replication costs: three gregor serve processes on this machine
# (docs/CLUSTER.md), the same workloads on a topic of one replica and on
# one of three, back to back, repeated REPS times (alternating), with
# the CPU of all three processes. Prints one line per run and the
# medians; the RF 3 / RF 1 ratios are the numbers to quote.
#
#   bench/cluster.sh [REPS] [GREGOR_BIN]
#
# Workloads (loadgen, acks=all, idempotent): produce 100 B records to 8
# partitions for 8 s; end-to-end latency of 1 KiB records on one
# partition at 1,000 and 5,000 records/s for 8 s.
set -euo pipefail
cd "$(dirname "$0")"
REPS=${1:-3}
BIN=${2:-}
TMP=$(mktemp -d)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$TMP"
}
trap cleanup EXIT
if [ -z "$BIN" ]; then
	BIN=$TMP/gregor
	(cd .. && go build -o "$BIN" ./cmd/gregor)
fi
go build -o "$TMP/loadgen" ./cmd/loadgen

mapfile -t PORTS < <(python3 - <<'PY'
import socket
ss = [socket.socket() for _ in range(9)]
for s in ss:
    s.bind(("127.0.0.1", 0))
print("\n".join(str(s.getsockname()[1]) for s in ss))
PY
)
VOTERS="0@127.0.0.1:${PORTS[1]},1@127.0.0.1:${PORTS[4]},2@127.0.0.1:${PORTS[7]}"
for i in 0 1 2; do
	"$BIN" serve --listen "127.0.0.1:${PORTS[$((3 * i))]}" --admin-listen "127.0.0.1:${PORTS[$((3 * i + 2))]}" \
		--data-dir "$TMP/d$i" --set "node.id=$i" --set "controller.quorum.voters=$VOTERS" >"$TMP/n$i.log" 2>&1 &
	PIDS+=($!)
done
B0=127.0.0.1:${PORTS[0]}
for i in 0 1 2; do
	for _ in $(seq 300); do
		grep -q 'msg="gregor listening"' "$TMP/n$i.log" && break
		sleep 0.1
	done
done
sleep 2 # every broker registered

# cpu prints the CPU seconds the three brokers used so far.
cpu() {
	local t=0
	for p in "${PIDS[@]}"; do
		read -r -a st <"/proc/$p/stat"
		t=$((t + st[13] + st[14]))
	done
	echo "scale=3; $t / $(getconf CLK_TCK)" | bc
}

run() { # name rf args...
	local name=$1 rf=$2
	shift 2
	local before after
	before=$(cpu)
	"$TMP/loadgen" "$@" --brokers "$B0" --pid -1 --replication-factor "$rf" --topic "$name-rf$rf-$rep" --json "$TMP/out.json" >/dev/null
	after=$(cpu)
	python3 - "$TMP/out.json" "$name" "$rf" "$before" "$after" "$TMP/results" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
name, rf, cpu = sys.argv[2], sys.argv[3], float(sys.argv[5]) - float(sys.argv[4])
lat = r.get("latency") or r.get("ack_latency") or {}
gib = r["payload_bytes"] / (1 << 30)
row = {"name": name, "rf": rf, "rps": r["records_per_sec"], "cpu_per_gib": cpu / gib if gib else 0,
       "p50": lat.get("p50_ms", 0), "p99": lat.get("p99_ms", 0), "p999": lat.get("p999_ms", 0), "errors": r.get("errors", 0)}
open(sys.argv[6], "a").write(json.dumps(row) + "\n")
print("%-8s rf=%s  %9.0f rec/s  cpu(3 brokers) %6.2f s/GiB  p50 %6.2f  p99 %7.2f  p999 %7.2f ms  errors %d" % (
    name, rf, row["rps"], row["cpu_per_gib"], row["p50"], row["p99"], row["p999"], row["errors"]))
PY
}

for rep in $(seq "$REPS"); do
	order="1 3"
	[ $((rep % 2)) = 0 ] && order="3 1"
	for rf in $order; do
		run produce "$rf" produce --partitions 8 --size 100 --duration 8s --warmup 2s
		run e2e-1k "$rf" e2e --partitions 1 --size 1024 --rate 1000 --duration 8s
		run e2e-5k "$rf" e2e --partitions 1 --size 1024 --rate 5000 --duration 8s
	done
done

echo "== medians of $REPS (bench/cluster.sh $REPS)"
python3 - "$TMP/results" <<'PY'
import json, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    rows.setdefault((r["name"], r["rf"]), []).append(r)
med = {k: {f: statistics.median(x[f] for x in rs) for f in ("rps", "cpu_per_gib", "p50", "p99", "p999")} for k, rs in rows.items()}
for (name, rf), m in sorted(med.items()):
    print("%-8s rf=%s  %9.0f rec/s  cpu %6.2f s/GiB  p50 %6.2f  p99 %7.2f  p999 %7.2f ms" % (name, rf, m["rps"], m["cpu_per_gib"], m["p50"], m["p99"], m["p999"]))
for name in sorted({n for n, _ in med}):
    a, b = med.get((name, "1")), med.get((name, "3"))
    if a and b:
        ratio = lambda f: "%.2f" % (b[f] / a[f]) if a[f] else "-"
        print("%-8s rf3/rf1: rec/s %s  cpu/GiB %s  p50 %s  p99 %s" % (name, ratio("rps"), ratio("cpu_per_gib"), ratio("p50"), ratio("p99")))
PY
