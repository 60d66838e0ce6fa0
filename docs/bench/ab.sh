#!/usr/bin/env bash
# Interleaved A/B of two grappe binaries, as docs/benchmarks.md records
# them: for each round, A then B, each on a fresh `grappe up` (2 workers),
# grappe bench --jobs 1000 --concurrency 1, then --jobs 3000
# --concurrency 32, with a C program that exits at once. The machine is
# shared and noisy: compare rounds of one run, never runs of two days.
#
#   docs/bench/ab.sh /path/to/grappe-A /path/to/grappe-B [rounds]
set -euo pipefail
a=${1:?binary A}; b=${2:?binary B}; rounds=${3:-3}
run() {
  local label=$1 bin=$2 d
  d=$(mktemp -d /tmp/grappe-ab-XXXXXX)
  "$bin" up --data "$d/data" --listen 127.0.0.1:17731 >"$d/log" 2>&1 &
  local pid=$!
  for _ in $(seq 90); do grep -q "self-tests done" "$d/log" 2>/dev/null && break; sleep 1; done
  export GRAPPE_ADDR=https://127.0.0.1:17731 GRAPPE_CA=$d/data/ca.pem GRAPPE_TOKEN=$(cat "$d/data/admin-token")
  echo "== $label $(date -u +%T) load $(cut -d' ' -f1 /proc/loadavg)"
  for c in "1000 1" "3000 32"; do
    set -- $c
    "$bin" bench --jobs "$1" --concurrency "$2" --lang c --source 'int main(void){return 0;}' 2>&1 |
      grep -E "throughput|^p50|added|machine CPU" || true
  done
  kill -INT $pid; wait $pid 2>/dev/null || true
  rm -rf "$d"
}
for _ in $(seq "$rounds"); do run A "$a"; run B "$b"; done
