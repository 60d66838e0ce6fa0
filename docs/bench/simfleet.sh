#!/usr/bin/env bash
# One master on SQLite driven by simulated workers (issue 16;
# docs/benchmarks.md records the figures). For each fleet size N and each
# concurrency C: a fresh data directory, `grappe master` with its defaults
# (heartbeat 1 s, worker timeout 5 s) but --rate-limit raised (the default
# 1,000 requests/s per user would be the bottleneck), then
#   grappe bench --simulate-workers N --concurrency C --jobs JOBS --source true
# which joins the N workers (one process, the real protocol over mTLS),
# waits for the master to list them up, measures the idle master, runs the
# jobs and reports. Then the master's log is searched for "worker lost" and
# the master stopped.
#
#   docs/bench/simfleet.sh /path/to/grappe [sizes [concurrencies [jobs]]]
#   e.g. docs/bench/simfleet.sh bin/grappe "1000 5000" "32 256" 10000
#   PERF_DIR=DIR ...  also perf record -g the master during the jobs of the
#                     runs with PERF_SIZE workers (default 5000) at c=32,
#                     into DIR/N-C.data
#
# Everything listens on 127.0.0.1 and is removed on exit. The simulated
# workers dial from 127.1.x.y so that the master's per-address cap (256)
# does not refuse them; the file limit (ulimit -n) bounds N for both
# processes.
set -euo pipefail

bin=$(realpath "${1:?grappe binary}")
sizes=${2:-1000 5000}
concs=${3:-32 256}
jobs=${4:-10000}
perf_dir=${PERF_DIR:-}
perf_size=${PERF_SIZE:-5000}

tmp=$(mktemp -d /tmp/grappe-simfleet-XXXXXX)
master_pid=
cleanup() {
	[[ -n $master_pid ]] && kill "$master_pid" 2>/dev/null && wait "$master_pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

port=7900
for n in $sizes; do
	for c in $concs; do
		port=$((port + 2))
		d=$tmp/m-$n-$c
		"$bin" master --data "$d" --listen 127.0.0.1:$port --cluster-listen 127.0.0.1:$((port + 1)) \
			--rate-limit 1000000 >"$tmp/master.log" 2>&1 &
		master_pid=$!
		for _ in $(seq 100); do [[ -f $d/admin-token ]] && break; sleep 0.1; done
		sleep 1
		echo "=== $n simulated workers, concurrency $c, $jobs jobs; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
		out=$tmp/bench.out
		rm -f "$out" # the previous run's must not start perf early
		GRAPPE_ADDR=https://127.0.0.1:$port GRAPPE_CA=$d/ca.pem GRAPPE_TOKEN=$(cat "$d/admin-token") \
			"$bin" bench --simulate-workers "$n" --cluster-addr 127.0.0.1:$((port + 1)) \
			--jobs "$jobs" --concurrency "$c" --source true >"$out" 2>&1 &
		bench_pid=$!
		perf_pid=
		if [[ -n $perf_dir && $n == "$perf_size" && $c == 32 ]]; then
			mkdir -p "$perf_dir"
			# From the first job: the profile is of the run, not the join.
			until grep -q '^grappe bench:' "$out" 2>/dev/null || ! kill -0 $bench_pid 2>/dev/null; do sleep 0.2; done
			perf record -F 499 -g -p "$master_pid" -o "$perf_dir/$n-$c.data" 2>/dev/null &
			perf_pid=$!
		fi
		wait $bench_pid || echo "(bench failed)"
		[[ -n $perf_pid ]] && kill -INT $perf_pid && wait $perf_pid 2>/dev/null || true
		cat "$out"
		echo "master log: $(grep -c 'worker lost' "$tmp/master.log" || true) \"worker lost\", $(grep -c 'msg="worker connected"' "$tmp/master.log" || true) connections, $(grep -c 'level=ERROR' "$tmp/master.log" || true) errors, $(grep -c 'requeue' "$tmp/master.log" || true) requeue lines"
		# When they were declared lost, per second: during the join, the
		# idle minute or the jobs.
		grep 'worker lost' "$tmp/master.log" | cut -c6-24 | uniq -c | head -30 || true
		kill "$master_pid"
		wait "$master_pid" 2>/dev/null || true
		master_pid=
		rm -rf "$d"
	done
done
