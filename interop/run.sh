#!/usr/bin/env bash
# Interoperability suite: unmodified third-party Kafka clients against a
# real `gregor serve` (DESIGN: "a feature exists when an unmodified
# third-party client uses it successfully").
#
#   interop/run.sh                 install what is missing, run every case
#   interop/run.sh kcat sarama     only the cases whose name matches (grep -E)
#   INTEROP_KEEP=1 interop/run.sh  keep the work dir (broker log, case logs)
#   GREGOR_BIN=path interop/run.sh  test that gregor binary instead of building one
#   INTEROP_UPDATE_COMPAT=1 interop/run.sh  rewrite docs/COMPAT.md's client table
#
# It installs its clients itself (Debian: kcat, python3-confluent-kafka,
# python3-kafka; npm: kafkajs into interop/node; Go: sarama and kafka-go in
# the interop/goclients module), builds gregor once, starts one broker on a
# free port behind a recording proxy (wiretap) and runs each case. A case
# passes, fails, or — for consumer-group cases while the broker advertises
# no group API — prints "SKIP: broker lacks consumer groups" (idempotent
# producer cases likewise without InitProducerID); that skip ends by
# itself once ApiVersions lists the APIs, and a skip while they are
# listed is a failure. At the end the broker gets SIGTERM and must
# exit 0 with no ERROR in its log. Any failure prints the case's output and
# the broker log, and the script exits 1. A second broker serves one
# SASL_SSL listener (certificates made with openssl at each run) for
# the *-sasl-* cases, which authenticate with PLAIN and SCRAM over TLS,
# and the *-acl cases. It runs Kafka's StandardAuthorizer with super user
# alice (so the *-sasl-* cases, all alice, need no ACL) and a second user,
# bob, who may do only what an *-acl case grants him: each one, as alice,
# creates, describes and deletes ACLs for bob through its client's admin
# API (confluent-kafka-python's through librdkafka's C API, which Debian's
# python3-confluent-kafka 1.7 does not wrap yet), checks that bob's
# clients are allowed exactly that (TOPIC_AUTHORIZATION_FAILED,
# GROUP_AUTHORIZATION_FAILED otherwise) and that bob may not manage ACLs
# (CLUSTER_AUTHORIZATION_FAILED). Each uses its own topics and groups.
# The cluster cases start three more gregor processes of their own: a
# cluster (interop/cluster.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
HERE=$ROOT/interop
PY=/usr/bin/python3 # Debian's, which has the python3-* client packages
export PYTHONDONTWRITEBYTECODE=1
START=$SECONDS
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gregor-interop.XXXXXX")
export WORK
BROKER_PID="" WIRETAP_PID="" SECURE_PID=""
FAILED=0

say() { printf '== interop: %s\n' "$*"; }

cleanup() {
	local rc=$?
	for pid in $BROKER_PID $WIRETAP_PID $SECURE_PID; do
		if kill -0 "$pid" 2>/dev/null; then
			kill -TERM "$pid" 2>/dev/null || true
			wait "$pid" 2>/dev/null || true
		fi
	done
	if [ "$rc" = 0 ] && [ -z "${INTEROP_KEEP:-}" ]; then
		rm -rf "$WORK"
	else
		echo "interop: work dir kept: $WORK"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# wait_for DESC SECONDS CMD...: poll CMD every 50ms until it succeeds;
# give up at once when it exits 2.
wait_for() {
	local desc=$1 secs=$2 rc
	shift 2
	local deadline=$((SECONDS + secs))
	while :; do
		rc=0
		"$@" >/dev/null 2>&1 || rc=$?
		case $rc in
		0) return 0 ;;
		2)
			echo "interop: gave up waiting for $desc" >&2
			return 1
			;;
		esac
		if ((SECONDS >= deadline)); then
			echo "interop: timed out after ${secs}s waiting for $desc" >&2
			return 1
		fi
		sleep 0.05
	done
}

# ---- install ---------------------------------------------------------------

install_deps() {
	local missing=() p
	for p in kcat python3-confluent-kafka python3-kafka openssl; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	if ((${#missing[@]})); then
		say "apt-get install ${missing[*]}"
		local sudo=""
		[ "$(id -u)" = 0 ] || sudo=sudo
		if ! { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"; } >"$WORK/apt.log" 2>&1; then
			cat "$WORK/apt.log"
			echo "interop: apt-get install failed" >&2
			exit 1
		fi
	fi
	# kafkajs: npm ci only when package-lock.json changed since the last one.
	local want stamp=$HERE/node/node_modules/.interop-lock.sha256
	want=$(sha256sum "$HERE/node/package-lock.json" | cut -d' ' -f1)
	if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
		say "npm ci (kafkajs)"
		(cd "$HERE/node" && npm ci --no-audit --no-fund --loglevel=error) || {
			echo "interop: npm ci failed" >&2
			exit 1
		}
		echo "$want" >"$stamp"
	fi
	say "build gregor, wiretap and the Go client tests"
	if [ -n "${GREGOR_BIN:-}" ]; then
		cp "$GREGOR_BIN" "$WORK/gregor"
	else
		go build -o "$WORK/gregor" ./cmd/gregor
	fi
	(cd "$HERE/goclients" && go build -o "$WORK/wiretap" ./cmd/wiretap && go test -c -o "$WORK/goclients.test" .)
}

# ---- broker ----------------------------------------------------------------

# start_broker starts the recording proxy and then gregor, which
# advertises the proxy, so every client connection passes through it.
start_broker() {
	"$WORK/wiretap" serve -listen 127.0.0.1:0 -addr-file "$WORK/proxy.addr" \
		-upstream-file "$WORK/broker.addr" -out "$WORK/apis.tsv" 2>"$WORK/wiretap.log" &
	WIRETAP_PID=$!
	wait_for "the wiretap to listen" 30 test -s "$WORK/proxy.addr"
	PROXY=$(cat "$WORK/proxy.addr")
	# The admin HTTP port defaults to a fixed one: take a free one (when
	# the binary has it), so the suite never collides with another broker.
	local admin=()
	if timeout 10 "$WORK/gregor" serve --help 2>&1 | grep -q -- '-admin-listen'; then
		admin=(--admin-listen 127.0.0.1:0)
	fi
	"$WORK/gregor" serve --listen 127.0.0.1:0 --advertise "$PROXY" --data-dir "$WORK/data" \
		"${admin[@]}" --log-level debug >"$WORK/broker.log" 2>&1 &
	BROKER_PID=$!
	if ! wait_for "gregor to listen" 30 broker_listening; then
		echo "--- broker log"
		cat "$WORK/broker.log"
		exit 1
	fi
	local addr
	addr=$(sed -n 's/.*msg="gregor listening" addr=\([^ ]*\).*/\1/p' "$WORK/broker.log" | head -n1)
	echo "$addr" >"$WORK/broker.addr.tmp"
	mv "$WORK/broker.addr.tmp" "$WORK/broker.addr"
	export GREGOR_ADDR=$PROXY GREGOR_DATA=$WORK/data WIRETAP=$WORK/wiretap
	say "gregor pid $BROKER_PID on $addr, clients use $PROXY (wiretap)"
}

# start_secure_broker starts a second gregor with one SASL_SSL listener
# (certificates made here with openssl; users alice, password
# alice-secret, and bob, password bob-secret, each with SCRAM-SHA-256 and
# -512 credentials, PLAIN enabled too) and the authorizer on, alice a
# super user; without the wiretap, which cannot read TLS.
start_secure_broker() {
	local tls=$WORK/tls
	mkdir -p "$tls"
	(
		cd "$tls"
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem \
			-days 2 -subj "/CN=gregor interop CA"
		openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout broker.key -out broker.csr -subj "/CN=127.0.0.1"
		printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >ext.cnf
		openssl x509 -req -in broker.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out broker.crt -days 2 -extfile ext.cnf
		cat broker.key broker.crt >broker.pem
	) >"$WORK/openssl.log" 2>&1 || {
		cat "$WORK/openssl.log"
		echo "interop: making TLS certificates failed" >&2
		exit 1
	}
	"$WORK/gregor" serve --listen 127.0.0.1:0 --data-dir "$WORK/data-secure" --admin-listen 127.0.0.1:0 \
		--set listeners=SASL_SSL://127.0.0.1:0 --set ssl.keystore.location="$tls/broker.pem" \
		--set sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512 \
		--add-scram 'SCRAM-SHA-256=[name=alice,password=alice-secret]' \
		--add-scram 'SCRAM-SHA-512=[name=alice,password=alice-secret]' \
		--add-scram 'SCRAM-SHA-256=[name=bob,password=bob-secret]' \
		--add-scram 'SCRAM-SHA-512=[name=bob,password=bob-secret]' \
		--set authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer \
		--set super.users=User:alice \
		--log-level debug >"$WORK/secure.log" 2>&1 &
	SECURE_PID=$!
	if ! wait_for "the SASL_SSL gregor to listen" 30 secure_listening; then
		echo "--- SASL_SSL broker log"
		cat "$WORK/secure.log"
		exit 1
	fi
	GREGOR_SECURE_ADDR=$(sed -n 's/.*msg="gregor listening" addr=\([^ ]*\).*/\1/p' "$WORK/secure.log" | head -n1)
	export GREGOR_SECURE_ADDR GREGOR_TLS_CA=$tls/ca.pem
	say "SASL_SSL gregor pid $SECURE_PID on $GREGOR_SECURE_ADDR"
}

secure_listening() {
	grep -q 'msg="gregor listening"' "$WORK/secure.log" && return 0
	kill -0 "$SECURE_PID" 2>/dev/null || return 2
	return 1
}

# broker_listening: 0 once gregor logged its address, 2 if it exited.
broker_listening() {
	grep -q 'msg="gregor listening"' "$WORK/broker.log" && return 0
	kill -0 "$BROKER_PID" 2>/dev/null || return 2
	return 1
}

# BROKER_BAD matches broker log lines that fail the run: errors (a
# recovered handler panic logs one) and an unrecovered panic.
BROKER_BAD='level=ERROR|^panic:|^fatal error:'

# stop_broker PID LOG NAME sends SIGTERM and requires a clean exit:
# status 0, "stopped" logged, no ERROR lines and no panic.
stop_broker() {
	local pid=$1 log=$2 name=$3
	kill -TERM "$pid"
	local rc=0 why=""
	# A shutdown that hangs is a failure, not a stuck CI run.
	if ! wait_for "$name to exit after SIGTERM" 60 pid_gone "$pid"; then
		why="still running 60s after SIGTERM (killed)"
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" || rc=$?
	[ "$rc" = 0 ] || why="${why:+$why; }exit status $rc"
	grep -q 'msg=stopped' "$log" || why="${why:+$why; }no \"stopped\" in its log"
	if grep -qE "$BROKER_BAD" "$log"; then
		why="${why:+$why; }ERROR or panic in its log"
	fi
	if [ -n "$why" ]; then
		say "FAIL $name shutdown: $why"
		echo "--- $name log (ERROR lines and the last 100 lines)"
		grep -E "$BROKER_BAD" "$log" | head -n 50 || true
		tail -n 100 "$log"
		FAILED=$((FAILED + 1))
	else
		say "$name stopped cleanly on SIGTERM (exit 0)"
	fi
}

pid_gone() { ! kill -0 "$1" 2>/dev/null; }

# ---- cases -----------------------------------------------------------------

# Each case: NAME|EXPECT|COMMAND. A case passes when COMMAND exits 0 and its
# output has a line matching EXPECT (so a Go -run pattern that matches no
# test cannot pass); it is gated when it exits 0 after printing
# "SKIP: broker lacks consumer groups" or "SKIP: broker lacks idempotent
# producers".
GO_TEST="\$WORK/goclients.test -test.v -test.timeout 240s -test.run"
CASES=(
	"kcat-none|^PASS|bash interop/kcat.sh roundtrip none"
	"kcat-gzip|^PASS|bash interop/kcat.sh roundtrip gzip"
	"kcat-snappy|^PASS|bash interop/kcat.sh roundtrip snappy"
	"kcat-lz4|^PASS|bash interop/kcat.sh roundtrip lz4"
	"kcat-zstd|^PASS|bash interop/kcat.sh roundtrip zstd"
	"kcat-group|^PASS|bash interop/kcat.sh group"
	"kcat-large|^PASS|bash interop/kcat.sh large"
	"confluent-kafka-python|^PASS|$PY interop/python/confluent_case.py roundtrip"
	"confluent-kafka-python-group|^PASS|$PY interop/python/confluent_case.py group"
	"confluent-kafka-python-idempotent|^PASS|$PY interop/python/confluent_case.py idempotent"
	"confluent-kafka-python-txn|^PASS|$PY interop/python/confluent_txn_case.py txn"
	"kafka-python|^PASS|$PY interop/python/kafka_python_case.py roundtrip"
	"kafka-python-gzip|^PASS|$PY interop/python/kafka_python_case.py gzip"
	"kafka-python-group|^PASS|$PY interop/python/kafka_python_case.py group"
	"kafkajs|^PASS|node interop/node/kafkajs_case.js produce"
	"kafkajs-group|^PASS|node interop/node/kafkajs_case.js group"
	"kafkajs-idempotent|^PASS|node interop/node/kafkajs_case.js idempotent"
	"sarama-v3.6|^--- PASS: TestSaramaV3_6 |$GO_TEST ^TestSaramaV3_6\$"
	"sarama-v2.1|^--- PASS: TestSaramaV2_1 |$GO_TEST ^TestSaramaV2_1\$"
	"sarama-compression|^--- PASS: TestSaramaCompression |$GO_TEST ^TestSaramaCompression\$"
	"sarama-group|^--- PASS: TestSaramaGroup |$GO_TEST ^TestSaramaGroup\$"
	"sarama-group-static|^--- PASS: TestSaramaGroupStatic |$GO_TEST ^TestSaramaGroupStatic\$"
	"sarama-idempotent|^--- PASS: TestSaramaIdempotent |$GO_TEST ^TestSaramaIdempotent\$"
	"sarama-txn|^--- PASS: TestSaramaTransactions |$GO_TEST ^TestSaramaTransactions\$"
	"sarama-quotas|^--- PASS: TestSaramaQuotas |$GO_TEST ^TestSaramaQuotas\$"
	"kafka-go|^--- PASS: TestKafkaGo |$GO_TEST ^TestKafkaGo\$"
	"kafka-go-compression|^--- PASS: TestKafkaGoCompression |$GO_TEST ^TestKafkaGoCompression\$"
	"kafka-go-group|^--- PASS: TestKafkaGoGroup |$GO_TEST ^TestKafkaGoGroup\$"
	"kcat-sasl-plain|^PASS|bash interop/secure.sh kcat PLAIN"
	"kcat-sasl-scram-sha-512|^PASS|bash interop/secure.sh kcat SCRAM-SHA-512"
	"confluent-kafka-python-sasl-scram-sha-256|^PASS|$PY interop/python/secure_case.py confluent SCRAM-SHA-256"
	"kafka-python-sasl-plain|^PASS|$PY interop/python/secure_case.py kafka-python PLAIN"
	"kafka-python-sasl-scram-sha-512|^PASS|$PY interop/python/secure_case.py kafka-python SCRAM-SHA-512"
	"kafkajs-sasl-scram-sha-256|^PASS|node interop/node/kafkajs_secure.js SCRAM-SHA-256"
	"sarama-sasl|^--- PASS: TestSaramaSASL |$GO_TEST ^TestSaramaSASL\$"
	"kafka-go-sasl|^--- PASS: TestKafkaGoSASL |$GO_TEST ^TestKafkaGoSASL\$"
	"confluent-kafka-python-acl|^PASS|$PY interop/python/acl_case.py confluent"
	"kafka-python-acl|^PASS|$PY interop/python/acl_case.py kafka-python"
	"kafkajs-acl|^PASS|node interop/node/kafkajs_acl.js"
	"sarama-acl|^--- PASS: TestSaramaACL |$GO_TEST ^TestSaramaACL\$"
	"kcat-cluster|^PASS|bash interop/cluster.sh kcat"
	"confluent-kafka-python-cluster-txn|^PASS|bash interop/cluster.sh txn"
	"confluent-kafka-python-cluster-failover|^PASS|bash interop/cluster.sh failover"
	"sarama-cluster-reassign|^PASS|bash interop/cluster.sh sarama"
	"kcat-cluster-secure|^PASS|bash interop/cluster.sh secure"
	"kcat-cluster-rack|^PASS|bash interop/cluster.sh rack"
)
GATE_GROUPS='SKIP: broker lacks consumer groups'
GATE_IDEMPOTENCE='SKIP: broker lacks idempotent producers'

run_cases() {
	local filter=("$@") feature
	# What the broker advertises now decides which gated skips are
	# legitimate: a gate may skip only while its feature is missing.
	declare -gA HAS=()
	for feature in groups idempotence; do
		HAS[$feature]=no
		if "$WORK/wiretap" "$feature" -broker "$GREGOR_ADDR"; then HAS[$feature]=yes; fi
	done
	say "broker advertises consumer groups: ${HAS[groups]}, idempotent producers: ${HAS[idempotence]}"
	mkdir -p "$WORK/logs"
	PASSED=() SKIPPED=() FAILS=()
	local c name expect cmd t0 rc dur gate
	for c in "${CASES[@]}"; do
		IFS='|' read -r name expect cmd <<<"$c"
		selected "$name" "${filter[@]}" || continue
		t0=$SECONDS
		LOG_FROM=$(($(wc -l <"$WORK/broker.log") + 1))
		rc=0
		eval "timeout --kill-after=10 150 $cmd" >"$WORK/logs/$name.log" 2>&1 </dev/null || rc=$?
		dur=$((SECONDS - t0))
		local out=$WORK/logs/$name.log
		gate=""
		grep -q "$GATE_GROUPS" "$out" && gate=groups
		grep -q "$GATE_IDEMPOTENCE" "$out" && gate=idempotence
		if [ "$rc" = 0 ] && [ -n "$gate" ]; then
			if [ "${HAS[$gate]}" = yes ]; then
				say "FAIL $name (${dur}s): skipped although the broker advertises its APIs ($gate)"
				FAILS+=("$name")
				show_failure "$name"
			else
				say "SKIP $name (${dur}s): $(grep -o 'SKIP: broker lacks.*' "$out" | head -n1)"
				SKIPPED+=("$name")
			fi
		elif [ "$rc" = 0 ] && grep -qE "$expect" "$out"; then
			say "PASS $name (${dur}s)"
			PASSED+=("$name")
		else
			if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
				say "FAIL $name (${dur}s): timed out"
			else
				say "FAIL $name (${dur}s): exit status $rc"
			fi
			FAILS+=("$name")
			show_failure "$name"
		fi
	done
	if ((${#PASSED[@]} + ${#SKIPPED[@]} + ${#FAILS[@]} == 0)); then
		say "FAIL: no case matches: $*"
		FAILS+=("(none selected)")
	fi
}

# selected NAME [PATTERN...]: no patterns, or NAME matches one.
selected() {
	local name=$1 f
	shift
	(($#)) || return 0
	for f in "$@"; do
		[[ $name =~ $f ]] && return 0
	done
	return 1
}

show_failure() {
	echo "--- $1: client output (last 200 lines)"
	tail -n 200 "$WORK/logs/$1.log"
	echo "--- broker log during $1 (up to 300 lines)"
	tail -n "+$LOG_FROM" "$WORK/broker.log" | head -n 300
	if [[ $1 == *sasl* || $1 == *-acl ]]; then
		echo "--- SASL_SSL broker log (last 100 lines)"
		tail -n 100 "$WORK/secure.log"
	fi
	echo "--- end of $1"
}

# ---- main ------------------------------------------------------------------

install_deps
say "setup took $((SECONDS - START))s"
start_broker
start_secure_broker
run_cases "$@"
say "API versions each client sent (wiretap; ! = not advertised by the broker):"
if ! "$WORK/wiretap" report -broker "$GREGOR_ADDR" -in "$WORK/apis.tsv" | tee "$WORK/api-versions.md"; then
	say "FAIL wiretap report (is the broker still answering ApiVersions?)"
	FAILED=$((FAILED + 1))
fi
if [ -n "${INTEROP_UPDATE_COMPAT:-}" ]; then
	# Replace docs/COMPAT.md's client table with this run's report.
	awk -v report="$WORK/api-versions.md" '
		/<!-- END CLIENT TABLE -->/ { skip = 0 }
		!skip { print }
		/<!-- BEGIN CLIENT TABLE/ {
			skip = 1
			print "| client ID | API versions sent |"
			print "|---|---|"
			while ((getline line < report) > 0) if (line ~ /^\| interop-/) print line
		}' docs/COMPAT.md >"$WORK/COMPAT.md" && cp "$WORK/COMPAT.md" docs/COMPAT.md
	say "updated docs/COMPAT.md's client table"
fi
stop_broker "$BROKER_PID" "$WORK/broker.log" broker
BROKER_PID=""
stop_broker "$SECURE_PID" "$WORK/secure.log" "SASL_SSL broker"
SECURE_PID=""
kill -TERM "$WIRETAP_PID" 2>/dev/null || true
wait "$WIRETAP_PID" 2>/dev/null || true
WIRETAP_PID=""

FAILED=$((FAILED + ${#FAILS[@]}))
say "cases: ${#PASSED[@]} passed, ${#FAILS[@]} failed, ${#SKIPPED[@]} skipped in $((SECONDS - START))s"
if ((${#SKIPPED[@]})); then
	say "gated (the broker lacks what they test): ${SKIPPED[*]}"
fi
if ((${#FAILS[@]})); then
	say "failed: ${FAILS[*]}"
fi
echo "interop: ${#PASSED[@]} passed, $FAILED failed, ${#SKIPPED[@]} skipped"
[ "$FAILED" = 0 ]
