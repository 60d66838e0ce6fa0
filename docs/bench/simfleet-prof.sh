#!/usr/bin/env bash
# The master's memory and CPU under a simulated fleet (issue 16;
# docs/benchmarks.md records the figures). One master on SQLite with
# --metrics-listen and --pprof, then grappe bench --simulate-workers N:
#   - memory held per worker: after the fleet has joined and while it is
#     idle, five forced collections (/debug/pprof/heap?gc=1), then the live
#     heap and the goroutine stacks (go_memstats_heap_alloc_bytes,
#     go_memstats_stack_inuse_bytes), against the same before the fleet:
#     what the master keeps per worker, without the garbage GOGC lets
#     RSS carry;
#   - OUT/heap.pb.gz (that moment's heap profile), OUT/goroutine.txt, and
#     OUT/cpu.pb.gz, 8 seconds of CPU profile from the first job on.
#
#   docs/bench/simfleet-prof.sh /path/to/grappe N JOBS OUT
#   go tool pprof -top /path/to/grappe OUT/cpu.pb.gz
# MASTER_GOGC and MASTER_GODEBUG set the master's GOGC and GODEBUG.
set -euo pipefail
bin=$(realpath "${1:?grappe binary}"); n=${2:?workers}; jobs=${3:?jobs}; out=${4:?output directory}
mkdir -p "$out"
d=$(mktemp -d /tmp/grappe-prof-XXXXXX)
master_pid=
cleanup() {
	[[ -n $master_pid ]] && kill "$master_pid" 2>/dev/null && wait "$master_pid" 2>/dev/null
	rm -rf "$d"
}
trap cleanup EXIT
metrics=http://127.0.0.1:7954
GOGC=${MASTER_GOGC:-} GODEBUG=${MASTER_GODEBUG:-} "$bin" master --data "$d" --listen 127.0.0.1:7952 \
	--cluster-listen 127.0.0.1:7953 --metrics-listen 127.0.0.1:7954 --pprof --rate-limit 1000000 >"$out/master.log" 2>&1 &
master_pid=$!
for _ in $(seq 100); do [[ -f $d/admin-token ]] && break; sleep 0.1; done
sleep 1
held() { # the live heap and the stacks after five collections
	for _ in 1 2 3 4 5; do curl -s -o "$out/heap.pb.gz" "$metrics/debug/pprof/heap?gc=1"; done
	curl -s "$metrics/metrics" | grep -E '^go_memstats_(heap_alloc|stack_inuse)_bytes|^go_goroutines|^process_resident'
}
held >"$out/held-before.txt"
GRAPPE_ADDR=https://127.0.0.1:7952 GRAPPE_CA=$d/ca.pem GRAPPE_TOKEN=$(cat "$d/admin-token") \
	"$bin" bench --simulate-workers "$n" --cluster-addr 127.0.0.1:7953 --jobs "$jobs" --concurrency 32 --source true >"$out/bench.out" 2>&1 &
bench_pid=$!
until grep -q "idle master" "$out/bench.out" 2>/dev/null || ! kill -0 $bench_pid 2>/dev/null; do sleep 0.2; done
held >"$out/held.txt"
curl -s -o "$out/goroutine.txt" "$metrics/debug/pprof/goroutine?debug=1"
until grep -q '^grappe bench:' "$out/bench.out" 2>/dev/null || ! kill -0 $bench_pid 2>/dev/null; do sleep 0.2; done
curl -s -o "$out/cpu.pb.gz" "$metrics/debug/pprof/profile?seconds=8"
wait $bench_pid || echo "(bench failed)"
for k in go_memstats_heap_alloc_bytes go_memstats_stack_inuse_bytes; do
	awk -v k="$k" -v n="$n" 'FNR == NR && $1 == k {a = $2} FNR != NR && $1 == k {b = $2}
		END {printf "%s: %.1f KB per worker\n", k, (b - a) / n / 1024}' "$out/held-before.txt" "$out/held.txt"
done
grep -E '^(throughput|p99)|RSS|refused' "$out/bench.out"
