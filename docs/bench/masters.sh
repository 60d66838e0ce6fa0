#!/usr/bin/env bash
# One master on SQLite, one on PostgreSQL, three on PostgreSQL, in the same
# run, interleaved in rounds (docs/benchmarks.md records the figures). For
# each round and each configuration: a fresh store (a new SQLite data
# directory, or a new database on one throwaway PostgreSQL server), the
# master(s), W workers (sandboxed, --max-jobs 2), a short warm-up, then
#   grappe bench --jobs N32 --concurrency 32 --no-local
#   grappe bench --jobs N1  --concurrency 1
# with a C program that exits at once. Three masters: each worker is given
# the three addresses rotated (it joins the first, moves on only when that
# one goes away), so they spread over the masters, and grappe bench
# --spread sends job i to master i mod 3. Prints every run and the medians.
#
# Durability, the same on both sides: SQLite as grappe runs it by default
# (WAL, synchronous=NORMAL: a commit is written to the OS, not fsynced; it
# survives a crash of the master, not a power loss); PostgreSQL with fsync=on,
# full_page_writes=on and synchronous_commit=off (a commit is in the WAL
# buffers, written and fsynced by the WAL writer within 3 x wal_writer_delay:
# it survives a crash of the master, not a power loss). The server's other
# settings are its defaults but max_connections=200. STRICT=1 compares the
# fsync-every-commit modes instead: grappe master --sync full against
# synchronous_commit=on.
#
# Needs root (initdb and postgres run as the postgres user, the sandbox as
# root). Everything listens on 127.0.0.1 and is removed on exit.
#
#   docs/bench/masters.sh /path/to/grappe [rounds [jobs-c32 [jobs-c1 [workers]]]]
#   STATEMENTS=1 ...  also load pg_stat_statements and print, after each
#                     PostgreSQL run at c=32, the statements per job and
#                     their time (it costs a little: not for the figures)
#   PERF_DIR=DIR ...  also perf record -g the first master during each
#                     c=32 run, into DIR/LABEL-ROUND.data
#   PERF_ALL=1 ...    with PERF_DIR: the whole machine, not the first master
#   PPROF_DIR=DIR ... also take a Go CPU profile (PPROF_SECONDS, 3) of every master
#                     during each c=32 run, into DIR/LABEL-ROUND-mI.pprof
#   LABELS="pg1 pg3-old" ...  only these configurations
#   MASTER_ENV="GOMAXPROCS=1" ...  the masters' environment
#   OLD=BIN ...       also run the PostgreSQL configurations with the
#                     masters and workers of another binary (pg1-old,
#                     pg3-old), in the same rounds: a before/after
#
# Besides grappe bench's figures, each c=32 run prints the CPU time per job
# of the masters, of the PostgreSQL server (all its processes) and of the
# workers (with their sandboxes and the programs), from /proc.
set -euo pipefail

bin=$(realpath "${1:?grappe binary}")
rounds=${2:-3}
jobs32=${3:-2000}
jobs1=${4:-500}
nworkers=${5:-3}
pgbin=${PGBIN:-/usr/lib/postgresql/15/bin}
strict=${STRICT:-0}
statements=${STATEMENTS:-0}
perf_dir=${PERF_DIR:-}
pprof_dir=${PPROF_DIR:-}
old=${OLD:+$(realpath "$OLD")}
labels=(sqlite pg1 pg3)
[[ -n $old ]] && labels+=(pg1-old pg3-old)
[[ -n ${LABELS:-} ]] && read -ra labels <<<"$LABELS"
prog=(--lang c --source 'int main(void){return 0;}')

tmp=$(mktemp -d /tmp/grappe-masters-XXXXXX)
chmod 755 "$tmp" # the postgres user must reach its directory inside
pids=()           # grappe processes of the configuration being measured
masters=()        # the masters among them
metrics=()        # their metrics addresses, when PPROF_DIR is set
workers=()        # the workers among them
pgpid=""

# stop_all interrupts the grappe processes, the last started first (the
# workers drain and unmount their tmpfs before their masters close their
# stores), and waits for each.
stop_all() {
  local i
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill -INT "${pids[i]}" 2>/dev/null || true
    wait "${pids[i]}" 2>/dev/null || true
  done
  pids=() masters=() workers=() metrics=()
}

cleanup() {
  stop_all
  if [[ -n $pgpid ]]; then
    as_pg "$pgbin/pg_ctl" -D "$tmp/pg/data" -m fast -w stop >/dev/null || kill -KILL "$pgpid" 2>/dev/null || true
    wait "$pgpid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_for FILE TEXT: until FILE holds TEXT (90 s at most).
wait_for() {
  local _
  for _ in $(seq 900); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "timed out waiting for '$2' in $1:" >&2
  tail -20 "$1" >&2
  exit 1
}

as_pg() { runuser -u postgres -- "$@"; }

start_postgres() {
  local sync_commit=off
  [[ $strict == 1 ]] && sync_commit=on
  local extra=()
  [[ $statements == 1 ]] && extra=(-c shared_preload_libraries=pg_stat_statements)
  mkdir "$tmp/pg"
  chown postgres: "$tmp/pg"
  as_pg "$pgbin/initdb" -D "$tmp/pg/data" -A trust -U postgres -E UTF8 --no-locale >"$tmp/pg/initdb.log"
  pgport=$(free_port)
  as_pg "$pgbin/postgres" -D "$tmp/pg/data" -k "$tmp/pg" -p "$pgport" \
    -c listen_addresses=127.0.0.1 -c fsync=on -c full_page_writes=on \
    -c synchronous_commit="$sync_commit" -c max_connections=200 "${extra[@]}" \
    >"$tmp/pg/server.log" 2>&1 &
  pgpid=$!
  wait_for "$tmp/pg/server.log" "ready to accept connections"
  psql_admin=(as_pg "$pgbin/psql" -X -q -h 127.0.0.1 -p "$pgport" -U postgres -d postgres -v ON_ERROR_STOP=1)
  echo "PostgreSQL $("${psql_admin[@]}" -tAc 'SHOW server_version') on 127.0.0.1:$pgport," \
    "fsync=$("${psql_admin[@]}" -tAc 'SHOW fsync') synchronous_commit=$("${psql_admin[@]}" -tAc 'SHOW synchronous_commit')"
}

# start_master DIR [DATABASE-URL ID]: one master; sets master_api and
# master_cluster to its addresses.
start_master() {
  local dir=$1 db=${2:-} id=${3:-}
  master_api=127.0.0.1:$(free_port)
  master_cluster=127.0.0.1:$(free_port)
  local args=(master --data "$dir" --listen "$master_api" --cluster-listen "$master_cluster" --rate-limit 100000)
  [[ -n $db ]] && args+=(--database "$db" --master-id "$id")
  [[ $strict == 1 && -z $db ]] && args+=(--sync full)
  if [[ -n $pprof_dir ]]; then
    metrics+=("127.0.0.1:$(free_port)")
    args+=(--metrics-listen "${metrics[-1]}" --pprof)
  fi
  mkdir -m 700 "$dir"
  env ${MASTER_ENV:-} "$server_bin" "${args[@]}" >"$dir.log" 2>&1 &
  pids+=($!) masters+=($!)
  wait_for "$dir.log" "grappe master is ready"
}

# start_workers RUN ADDR...: nworkers workers, worker i given the
# addresses rotated by i, all with the first master's join token.
start_workers() {
  local run=$1; shift
  local addrs=("$@") n=$# i j list
  for i in $(seq 0 $((nworkers - 1))); do
    list=""
    for j in $(seq 0 $((n - 1))); do list+=${list:+,}${addrs[$(((i + j) % n))]}; done
    "$server_bin" worker --master "$list" --join-token-file "$run/m0/join-token" --name "w$i" \
      --data "$run/w$i" --toolchain-cache "$toolchain" --max-jobs 2 >"$run/w$i.log" 2>&1 &
    pids+=($!) workers+=($!)
  done
  for i in $(seq 0 $((nworkers - 1))); do wait_for "$run/w$i.log" "self-tests done"; done
}

# workers_per_master RUN: how many workers connected to each master.
workers_per_master() {
  local f out=""
  for f in "$1"/m*.log; do out+="$(basename "$f" .log):$(grep -c 'worker connected' "$f") "; done
  echo "${out% }"
}

# tree_ticks PID...: CPU clock ticks of these processes and all their
# descendants, the children they reaped included (a sandbox's programs, a
# PostgreSQL backend that ended).
tree_ticks() {
  python3 - "$@" <<'PY'
import os, sys
stat = {}
for p in os.listdir("/proc"):
    if p.isdigit():
        try:
            f = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        stat[int(p)] = (int(f[1]), sum(map(int, f[11:15])))  # ppid, utime stime cutime cstime
todo, seen, total = [int(a) for a in sys.argv[1:]], set(), 0
while todo:
    p = todo.pop()
    if p in seen or p not in stat:
        continue
    seen.add(p)
    total += stat[p][1]
    todo += [c for c, (pp, _) in stat.items() if pp == p]
print(total)
PY
}

# cpu_snapshot: ticks of the masters, the PostgreSQL server, the workers.
cpu_snapshot() {
  local pg=0
  [[ -n $pgpid ]] && pg=$(tree_ticks "$pgpid")
  echo "$(tree_ticks "${masters[@]}") $pg $(tree_ticks "${workers[@]}")"
}

# statements_per_job DB JOBS: the statements the masters ran, per job, and
# their total time, from pg_stat_statements (reset before the run).
statements_per_job() {
  "${psql_admin[@]}" -d "$1" -c "SELECT round(calls::numeric / $2, 2) AS per_job,
      round(total_exec_time::numeric / $2, 3) AS ms_per_job, left(regexp_replace(query, '\s+', ' ', 'g'), ${QLEN:-90}) AS query
    FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = '$1') AND calls >= $2 / 4
    ORDER BY total_exec_time DESC LIMIT 15"
}

# bench LABEL ROUND JOBS CONC ARGS...: one grappe bench, its key figures
# appended to the results file.
bench() {
  local label=$1 round=$2 jobs=$3 conc=$4; shift 4
  local out
  out=$("$bin" bench --jobs "$jobs" --concurrency "$conc" "${prog[@]}" "$@" 2>&1) || {
    echo "$out" >&2
    echo "$label round $round: grappe bench failed" >&2
  }
  echo "$out" | grep -E "^grappe bench|throughput|^p50|added|machine CPU|failed" | sed 's/^/    /'
  local tput p50 added cpu split="NA NA NA"
  if [[ -n ${snap0:-} ]]; then
    local hz a b
    hz=$(getconf CLK_TCK)
    read -ra a <<<"$snap0"
    read -ra b <<<"$(cpu_snapshot)"
    # ms per job; the masters and workers of a PostgreSQL run are not
    # the server's, and a SQLite run's server is idle.
    split=$(awk -v hz="$hz" -v n="$jobs" -v m=$((b[0] - a[0])) -v p=$((b[1] - a[1])) -v w=$((b[2] - a[2])) \
      'BEGIN {printf "%.2f %.2f %.2f", m * 1000 / hz / n, p * 1000 / hz / n, w * 1000 / hz / n}')
    echo "    CPU per job (ms): masters, PostgreSQL, workers: $split"
    snap0=""
  fi
  tput=$(echo "$out" | awk '/^throughput/ {print $2}')
  p50=$(echo "$out" | awk '/^p50 +[0-9]/ {print $2}')
  added=$(echo "$out" | awk '/^p50 added/ {print $6}')
  cpu=$(echo "$out" | awk '/^machine CPU/ {print $7}')
  echo "$label $round $conc ${tput:-NA} ${p50:-NA} ${added:-NA} ${cpu:-NA} $split" >>"$tmp/results"
}

# run LABEL ROUND: one configuration, from a fresh store to its teardown.
run() {
  local label=$1 round=$2 run="$tmp/run-$1-$2" db="" i
  # Each binary its own self-test cache: an entry counts for one binary.
  server_bin=$bin toolchain=$tmp/toolchain
  [[ $label == *-old ]] && server_bin=$old toolchain=$tmp/toolchain-old
  mkdir -p "$run"
  local apis=() clusters=()
  case $label in
    sqlite)
      start_master "$run/m0"
      apis+=("$master_api"); clusters+=("$master_cluster") ;;
    pg1* | pg3*)
      db=grappe_${label//-/_}_$round
      "${psql_admin[@]}" -c "CREATE DATABASE $db"
      local url="postgres://postgres@127.0.0.1:$pgport/$db?sslmode=disable"
      local n=1; [[ $label == pg3* ]] && n=3
      # One after the other: the first makes the cluster's identity, the
      # others take it from the database.
      for i in $(seq 0 $((n - 1))); do
        start_master "$run/m$i" "$url" "m$i"
        apis+=("$master_api"); clusters+=("$master_cluster")
      done ;;
  esac
  start_workers "$run" "${clusters[@]}"
  local addr="" a
  for a in "${apis[@]}"; do addr+=${addr:+,}https://$a; done
  export GRAPPE_ADDR=$addr GRAPPE_CA=$run/m0/ca.pem GRAPPE_TOKEN
  GRAPPE_TOKEN=$(cat "$run/m0/admin-token")
  local spread=(); [[ ${#apis[@]} -gt 1 ]] && spread=(--spread)
  echo "== $label round $round $(date -u +%T) load $(cut -d' ' -f1 /proc/loadavg)"
  # Every worker compiles the program once and warms its sandboxes.
  "$bin" bench --jobs $((nworkers * 20)) --concurrency $((nworkers * 2)) --no-local "${prog[@]}" "${spread[@]}" >/dev/null
  [[ -n $db && $statements == 1 ]] && "${psql_admin[@]}" -d "$db" -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements; SELECT pg_stat_statements_reset()" >/dev/null
  local perf=""
  if [[ -n $perf_dir ]]; then
    mkdir -p "$perf_dir"
    local target=(-p "${masters[0]}")
    [[ ${PERF_ALL:-0} == 1 ]] && target=(-a)
    perf record -q -g -F 499 "${target[@]}" -o "$perf_dir/$label-$round.data" >/dev/null 2>&1 &
    perf=$!
  fi
  local profs=() m
  if [[ -n $pprof_dir ]]; then
    mkdir -p "$pprof_dir"
    for i in "${!metrics[@]}"; do
      m=${metrics[i]}
      curl -s -o "$pprof_dir/$label-$round-m$i.pprof" "http://$m/debug/pprof/profile?seconds=${PPROF_SECONDS:-3}" &
      profs+=($!)
    done
  fi
  snap0=$(cpu_snapshot)
  bench "$label" "$round" "$jobs32" 32 --no-local "${spread[@]}"
  for m in "${profs[@]}"; do wait "$m" || true; done
  [[ -n $perf ]] && { kill -INT "$perf"; wait "$perf" || true; }
  [[ -n $db && $statements == 1 ]] && statements_per_job "$db" "$jobs32"
  echo "    workers per master: $(workers_per_master "$run")"
  bench "$label" "$round" "$jobs1" 1 "${spread[@]}"
  stop_all
  grep -hE 'level=(ERROR|WARN)' "$run"/*.log | sed "s/^/    [$label log] /" | head -20 || true
  rm -rf "$run"
  [[ -n $db ]] && "${psql_admin[@]}" -c "DROP DATABASE $db"
  return 0
}

# median: of the numbers on stdin.
median() { sort -g | awk '{a[NR]=$1} END {if (NR == 0) print "NA"; else if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

start_postgres
echo "$(git -C "$(dirname "$0")" describe --always --dirty 2>/dev/null || echo grappe), $nworkers workers (--max-jobs 2, sandboxed), $(nproc) CPUs, strict=$strict"
for round in $(seq "$rounds"); do
  for label in "${labels[@]}"; do run "$label" "$round"; done
done

echo
echo "medians of $rounds rounds (c=32: $jobs32 jobs; c=1: $jobs1 jobs; C 'return 0')"
printf '| %-26s | %10s | %10s | %13s | %13s | %13s | %13s | %10s | %13s | %13s |\n' configuration "c=32 jobs/s" "c=32 p50" "c=32 CPU/job" \
  "… masters" "… PostgreSQL" "… workers" "c=1 jobs/s" "c=1 added p50" "c=1 CPU/job"
printf '|%s|\n' "----------------------------|------------|------------|---------------|---------------|---------------|---------------|------------|---------------|---------------"
for label in "${labels[@]}"; do
  col() { awk -v l="$label" -v c="$1" -v f="$2" '$1 == l && $3 == c && $f != "NA" {print $f}' "$tmp/results" | tr -d '+' | median; }
  case $label in
    sqlite) name="1 master, SQLite" ;;
    pg1) name="1 master, PostgreSQL" ;;
    pg3) name="3 masters, PostgreSQL" ;;
    pg1-old) name="1 master, PostgreSQL, OLD" ;;
    pg3-old) name="3 masters, PostgreSQL, OLD" ;;
  esac
  printf '| %-26s | %10s | %7s ms | %10s ms | %10s ms | %10s ms | %10s ms | %10s | %+10.2f ms | %10s ms |\n' "$name" \
    "$(col 32 4)" "$(col 32 5)" "$(col 32 7)" "$(col 32 8)" "$(col 32 9)" "$(col 32 10)" "$(col 1 4)" "$(col 1 6)" "$(col 1 7)"
done
echo
echo "every run (label round concurrency jobs/s p50-ms added-p50-ms cpu-ms-per-job; at c=32 the masters', PostgreSQL's, the workers' cpu-ms-per-job):"
cat "$tmp/results"
