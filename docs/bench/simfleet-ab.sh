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
			# Each figure from simfleet.sh's output, "?" where it has none
			# (an older binary does not count refusals).
			pick() { sed -n "s/$1/\1/p" <<<"$out" | sed -n 1p; }
			load=$(pick '.*load average: \([0-9.]*\).*')
			tput=$(pick '^throughput *\([0-9.]*\).*')
			p99=$(pick '^p99 *\([0-9.]*\) ms.*')
			rss=$(pick '.* \([0-9.]*\) KB per connected worker.*')
			cpu=$(pick '^master after the run.*, \([0-9.]*\) CPU-seconds per 1,000 jobs.*')
			idle=$(pick '^idle master with the fleet: \([0-9]*%\).*')
			lost=$(pick '^master log: \([0-9]*\) "worker lost".*')
			refused=$(pick '.*, \([0-9]*\) submissions refused.*')
			echo "$label $n $r ${load:-?} ${tput:-failed} ${p99:-?}ms ${rss:-?} ${cpu:-?} ${idle:-?} ${lost:-?} ${refused:-?}"
		done
	done
done
