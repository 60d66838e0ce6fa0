#!/usr/bin/env bash
# Interleaved A/B of two grappe binaries under simulated fleets (issue 16;
# docs/benchmarks.md records the figures): for each round and each fleet
# size, A then B, each through docs/bench/simfleet.sh (a fresh master, the
# fleet joined, JOBS `bash true` jobs at concurrency C), one summary line
# per run. The machine is shared and noisy: compare the rounds of one run,
# by their medians.
#
#   docs/bench/simfleet-ab.sh /path/to/grappe-A /path/to/grappe-B [rounds [sizes [concurrency [jobs]]]]
#   e.g. docs/bench/simfleet-ab.sh /tmp/grappe-main bin/grappe 3 "1000 5000" 32 10000
set -euo pipefail
a=$(realpath "${1:?binary A}"); b=$(realpath "${2:?binary B}")
rounds=${3:-3}; sizes=${4:-1000 5000}; c=${5:-32}; jobs=${6:-10000}
here=$(dirname "$(realpath "$0")")
echo "bin workers round load jobs/s p99 RSS/worker master-CPU-s/1000-jobs idle-master-CPU lost refused"
for r in $(seq "$rounds"); do
	for n in $sizes; do
		for label in A B; do
			bin=$a; [[ $label == B ]] && bin=$b
			out=$("$here/simfleet.sh" "$bin" "$n" "$c" "$jobs" 2>&1 || true)
			load=$(grep -o 'load average: [0-9.]*' <<<"$out" | head -1 | cut -d' ' -f3)
			tput=$(awk '/^throughput/ {print $2}' <<<"$out")
			p99=$(awk '/^p99/ {print $2 $3}' <<<"$out")
			rss=$(grep -o '[0-9.]* KB per connected worker' <<<"$out" | cut -d' ' -f1)
			cpu=$(grep 'master after the run' <<<"$out" | grep -o '[0-9.]* CPU-seconds per 1,000 jobs' | cut -d' ' -f1)
			idle=$(grep -o 'idle master with the fleet: [0-9]*%' <<<"$out" | grep -o '[0-9]*%')
			lost=$(grep -o '[0-9]* "worker lost"' <<<"$out" | cut -d' ' -f1)
			refused=$(grep -o '[0-9]* submissions refused' <<<"$out" | cut -d' ' -f1)
			echo "$label $n $r ${load:-?} ${tput:-failed} ${p99:-?} ${rss:-?} ${cpu:-?} ${idle:-?} ${lost:-?} ${refused:--}"
		done
	done
done
