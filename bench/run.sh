#!/usr/bin/env bash
# Gregor benchmarks: see README.md.
#
#   bench/run.sh                 full Gregor-vs-kfake comparison (~12 min)
#   bench/run.sh quick           one short repetition of everything (~3 min): a smoke test
#   bench/run.sh profile [DIR]   CPU+alloc profiles of both brokers under a, b, c and 10000p max; prints the tops
#   bench/run.sh soak [DUR]      memory soak of Gregor (default 10m)
#   bench/run.sh check           vet and build the bench module
#
# Extra arguments go to cmd/compare, e.g. bench/run.sh -- --reps 5 --duration 20s
# or bench/run.sh quick --gregor-rev HEAD.
set -euo pipefail
cd "$(dirname "$0")"

mode=${1:-compare}
[ $# -gt 0 ] && shift
case "$mode" in
--) exec go run ./cmd/compare "$@" ;;
compare) exec go run ./cmd/compare "$@" ;;
quick)
	exec go run ./cmd/compare --reps 1 --duration 2s --consume-duration 1s --e2e-duration 3s \
		--scale-partitions 1,100,1000 --producers 10 --restart-partitions 1000 \
		--restart-records 10000 --restart-reps 1 "$@"
	;;
profile)
	dir=${1:-results/profiles-$(date +%Y%m%d-%H%M%S)}
	[ $# -gt 0 ] && shift
	go run ./cmd/compare --workloads c,e --reps 1 --duration 10s --consume-duration 8s \
		--scale-partitions 10000 --restart=false --profile "$dir" --json "$dir/compare.json" "$@"
	for f in "$dir"/*.cpu.pprof; do
		echo "== $f"
		go tool pprof -top -nodecount=25 "$f" 2>/dev/null | sed -n '1,32p'
	done
	for f in "$dir"/*.allocs.pprof; do
		echo "== $f (alloc_space)"
		go tool pprof -top -nodecount=15 -sample_index=alloc_space "$f" 2>/dev/null | sed -n '1,22p'
	done
	;;
soak) exec go run ./cmd/compare --soak "${1:-10m}" "${@:2}" ;;
check)
	test -z "$(gofmt -l .)" || { gofmt -l .; echo "gofmt needed"; exit 1; }
	go vet ./...
	go build ./...
	go test ./...
	echo "bench: ok"
	;;
*)
	sed -n '2,12p' "$0"
	exit 2
	;;
esac
