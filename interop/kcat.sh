#!/usr/bin/env bash
# kcat (librdkafka) cases, run by interop/run.sh with GREGOR_ADDR,
# GREGOR_DATA (the broker's data dir) and WIRETAP set.
#
#   kcat.sh roundtrip CODEC   produce N keyed records with headers through
#                             compression.codec=CODEC, check the stored batches
#                             use CODEC, list offsets, consume them back (-e)
#   kcat.sh group             balanced consumer (-G): a group consumes and
#                             commits; a second run resumes after the commits
#   kcat.sh large             batches of hundreds of KiB (sent by the broker
#                             with sendfile), consumed back from several offsets
set -euo pipefail
: "${GREGOR_ADDR:?run through interop/run.sh}"
N=500
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# kc runs kcat with a bound: a consumer that never sees the end of a
# partition fails in a minute instead of hanging the suite.
kc() { timeout 60 kcat -b "$GREGOR_ADDR" -X client.id=interop-kcat "$@"; }

# records FROM TO SRC: "key<TAB>value" lines, as kcat -P -K reads them.
records() {
	awk -v a="$1" -v b="$2" -v src="$3" 'BEGIN {
		for (i = a; i < b; i++) {
			x = ""
			for (j = 0; j < i % 61; j++) x = x "x"
			printf "k-%05d\tv-%05d-%s-%s\n", i, i, src, x
		}
	}'
}

fail() {
	echo "FAIL: $*"
	exit 1
}

# codecs TOPIC: the compression codec (attributes bits 0-2) of every
# batch stored in partition 0, read from the segment file (RecordBatch
# v2: batchLength at byte 8, attributes at 21, batch size batchLength+12).
codecs() {
	local seg=$GREGOR_DATA/$1-0/00000000000000000000.log
	[ -s "$seg" ] || fail "no segment file $seg"
	/usr/bin/python3 - "$seg" <<'PY'
import struct, sys
d = open(sys.argv[1], "rb").read()
pos = 0
while pos + 23 <= len(d):
    (length,) = struct.unpack_from(">i", d, pos + 8)
    (attrs,) = struct.unpack_from(">h", d, pos + 21)
    print(attrs & 7)
    pos += length + 12
PY
}

roundtrip() {
	local codec=$1 topic=kcat-$1 src=kcat-$1 want
	case $codec in none) want=0 ;; gzip) want=1 ;; snappy) want=2 ;; lz4) want=3 ;; zstd) want=4 ;; *) fail "codec $codec" ;; esac
	records 0 $N "$src" >"$TMP/in"
	# Small batches, so the topic gets many of them. The topic is created
	# on first use (auto.create.topics.enable).
	kc -P -t "$topic" -p 0 -K $'\t' -H "src=$src" -H "codec=$codec" \
		-X compression.codec="$codec" -X batch.num.messages=64 -X linger.ms=5 \
		-X message.timeout.ms=30000 <"$TMP/in" || fail "kcat -P exited $?"

	# librdkafka sends a batch uncompressed when compressing does not
	# make it smaller (a lone first record): most batches must use the
	# codec, none another one.
	local used
	used=$(codecs "$topic" | sort | uniq -c | tr -s ' \n' ' ')
	codecs "$topic" | awk -v want="$want" -v used="$used" '
		$1 == want { n++ } $1 != want && $1 != 0 { bad = 1 }
		END { if (bad || n * 2 < NR) { print "FAIL: stored batch codecs (count codec):" used "; want " want; exit 1 } }' || exit 1

	# ListOffsets through offsets-for-times with the special timestamps:
	# -2 earliest, -1 latest.
	kc -Q -t "$topic:0:-2" >"$TMP/q" || fail "kcat -Q earliest"
	grep -q "offset 0\$" "$TMP/q" || fail "earliest offset: $(cat "$TMP/q")"
	kc -Q -t "$topic:0:-1" >"$TMP/q" || fail "kcat -Q latest"
	grep -q "offset $N\$" "$TMP/q" || fail "latest offset: $(cat "$TMP/q")"

	# Metadata: the topic with one partition led by the broker.
	kc -L -t "$topic" -J >"$TMP/meta" || fail "kcat -L"
	grep -q "\"topic\":\"$topic\"" "$TMP/meta" || fail "metadata: $(cat "$TMP/meta")"

	# Consume to the end (-e needs an empty fetch at the high watermark to
	# be answered as one) and compare partition, offset, key, value and
	# headers with what was produced.
	kc -C -t "$topic" -p 0 -o beginning -e -f '%p\t%o\t%k\t%s\t%h\n' >"$TMP/out" || fail "kcat -C exited $?"
	awk -F'\t' -v h="src=$src,codec=$codec" '{ printf "0\t%d\t%s\t%s\t%s\n", NR-1, $1, $2, h }' "$TMP/in" >"$TMP/want"
	if ! diff -u "$TMP/want" "$TMP/out" >"$TMP/diff"; then
		head -n 40 "$TMP/diff"
		fail "consumed records differ from the produced ones"
	fi
	echo "PASS: kcat $codec: $N records produced, stored batches (count codec):$used, consumed back"
}

group() {
	local rc=0
	"$WIRETAP" groups -broker "$GREGOR_ADDR" || rc=$?
	if [ "$rc" = 3 ]; then
		echo "SKIP: broker lacks consumer groups (ApiVersions advertises no group API)"
		exit 0
	fi
	[ "$rc" = 0 ] || fail "ApiVersions probe failed"
	local topic=kcat-group grp=kcat-group src=kcat-group
	kc -P -t "$topic" -K $'\t' < <(records 0 $N "$src") || fail "kcat -P"
	# First member: from the earliest offset to the end; offsets are
	# committed on close (enable.auto.commit).
	kc -G "$grp" -X auto.offset.reset=earliest -e -f '%k\n' "$topic" >"$TMP/first" || fail "kcat -G (first run)"
	[ "$(wc -l <"$TMP/first")" = $N ] || fail "first run consumed $(wc -l <"$TMP/first") records, want $N"
	kc -P -t "$topic" -K $'\t' < <(records $N $((N + 100)) "$src") || fail "kcat -P"
	kc -G "$grp" -X auto.offset.reset=earliest -e -f '%k\n' "$topic" >"$TMP/second" || fail "kcat -G (second run)"
	records $N $((N + 100)) "$src" | cut -f1 >"$TMP/want"
	diff -u "$TMP/want" "$TMP/second" || fail "the second run did not resume after the first run's commits"
	echo "PASS: kcat group: resumed after the commits"
}

# large: 4,000 records of ~1 KiB in batches of up to 1,000, so fetches
# return batches the broker sends from the page cache (sendfile); consumed
# back whole from the beginning and from an offset inside a batch.
large() {
	local topic=kcat-large n=4000
	awk -v n=$n 'BEGIN {
		pad = sprintf("%1000s", ""); gsub(/ /, "p", pad)
		for (i = 0; i < n; i++) printf "k-%05d\tv-%05d-%s\n", i, i, pad
	}' >"$TMP/in"
	kc -P -t "$topic" -p 0 -K $'\t' -X batch.num.messages=1000 -X batch.size=2000000 -X linger.ms=200 \
		-X message.timeout.ms=30000 <"$TMP/in" || fail "kcat -P exited $?"
	local big
	big=$(codecs "$topic" | wc -l)
	[ "$big" -le 40 ] || fail "$big batches for $n records: the producer did not batch"
	kc -C -t "$topic" -p 0 -o beginning -e -f '%o\t%k\t%s\n' >"$TMP/out" || fail "kcat -C exited $?"
	awk -F'\t' '{ printf "%d\t%s\t%s\n", NR-1, $1, $2 }' "$TMP/in" >"$TMP/want"
	diff -q "$TMP/want" "$TMP/out" >/dev/null || fail "consumed records differ from the produced ones"
	kc -C -t "$topic" -p 0 -o 1234 -e -f '%o\t%k\t%s\n' >"$TMP/out2" || fail "kcat -C -o 1234 exited $?"
	tail -n +1235 "$TMP/want" | diff -q - "$TMP/out2" >/dev/null || fail "records from offset 1234 differ"
	echo "PASS: kcat large: $n records in $big batches consumed back, also from offset 1234"
}

case ${1:-} in
roundtrip) roundtrip "${2:?codec}" ;;
group) group ;;
large) large ;;
*)
	echo "usage: kcat.sh roundtrip CODEC | group | large" >&2
	exit 2
	;;
esac
