#!/usr/bin/env bash
# kcat (librdkafka) against the suite's SASL_SSL broker, run by
# interop/run.sh with GREGOR_SECURE_ADDR and GREGOR_TLS_CA set (user
# alice, password alice-secret, SCRAM-SHA-256 and -512 credentials).
#
#   secure.sh kcat MECHANISM   produce and consume over TLS after SASL
#                              MECHANISM (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512);
#                              a wrong password and a client without TLS fail
set -euo pipefail
: "${GREGOR_SECURE_ADDR:?run through interop/run.sh}"
MECH=${2:?mechanism}
N=200
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

fail() {
	echo "FAIL: $*"
	exit 1
}

kc() {
	timeout 60 kcat -b "$GREGOR_SECURE_ADDR" -X client.id=interop-kcat-sasl \
		-X security.protocol=SASL_SSL -X ssl.ca.location="$GREGOR_TLS_CA" \
		-X sasl.mechanisms="$MECH" -X sasl.username=alice "$@"
}

topic=kcat-sasl-$(echo "$MECH" | tr 'A-Z' 'a-z')
seq 1 $N | awk '{ printf "v-%05d-%s\n", $1, "kcat-sasl" }' >"$TMP/in"
kc -X sasl.password=alice-secret -P -t "$topic" -p 0 <"$TMP/in" || fail "produce"
kc -X sasl.password=alice-secret -C -t "$topic" -p 0 -o beginning -e -q >"$TMP/out" || fail "consume"
cmp -s "$TMP/in" "$TMP/out" || fail "consumed $(wc -l <"$TMP/out") records, not the $N produced"

if kc -X sasl.password=wrong -L -m 5 >"$TMP/bad" 2>&1; then
	fail "a wrong password listed metadata"
fi
grep -q "Authentication failed" "$TMP/bad" || fail "wrong password: $(tail -n 3 "$TMP/bad")"
if timeout 30 kcat -b "$GREGOR_SECURE_ADDR" -L -m 5 >"$TMP/plain" 2>&1; then
	fail "a client without TLS and SASL listed metadata"
fi
echo "PASS: kcat $MECH over SASL_SSL: $N records round trip; wrong password and plaintext refused"
