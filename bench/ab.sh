#!/usr/bin/env bash
# Compares two builds' cap_capable programs in the same instants: both tracers
# attach at once, one setuid(0) loop runs, and kernel.bpf_stats gives each
# program's mean ns per run over exactly the same checks. The host's noise
# bursts then slow both alike, which separate runs (bench/run.sh) cannot
# promise: there a 10-20 ns change drowns in the run-to-run spread. Each round
# runs both attach orders (the program that runs second finds the caches warm).
#
#   sudo bash bench/ab.sh BUILD_A BUILD_B [record|unique|json] [calls, default 2000000] [rounds, default 3]
#
# BUILD_A and BUILD_B are build trees (or directories holding a capscope
# binary), or one of bench/empty_tp.bpf.c's reference programs: `empty` (the
# floor), `stream` (the least a streaming tracer does: a timestamped 32-byte
# ring buffer record a check), `count` (the least an aggregating one does: a
# per-CPU count per capability), `clock` (one bpf_ktime_get_ns() a check: what
# an event's nanosecond time costs by itself). `ab.sh empty build MODE` gives what
# capscope's program costs over an empty one, in the same instants. The loop
# is tests/cs_setuid_loop of the first of A and B that is a build
# ($BUILD_DIR's when both are reference programs). Prints each run's figures and the mean of B - A
# (negative: B is cheaper).
set -euo pipefail
cd "$(dirname "$0")/.."
A=${1:?usage: bench/ab.sh BUILD_A BUILD_B [record|unique|json] [calls] [rounds]}
B=${2:?usage: bench/ab.sh BUILD_A BUILD_B [record|unique|json] [calls] [rounds]}
MODE=${3:-record}
N=${4:-2000000}
ROUNDS=${5:-3}
EMPTY=${BUILD_DIR:-build}/bench/cs_bench_empty_attach
is_reference() { [[ $1 =~ ^(empty|stream|count|clock)$ ]]; }
tracer_of() { if is_reference "$1"; then echo "$EMPTY"; else echo "$1/capscope"; fi; }
LOOP=${BUILD_DIR:-build}/tests/cs_setuid_loop
if ! is_reference "$A"; then LOOP=$A/tests/cs_setuid_loop; elif ! is_reference "$B"; then LOOP=$B/tests/cs_setuid_loop; fi
for f in "$(tracer_of "$A")" "$(tracer_of "$B")" "$LOOP"; do
  [[ -x $f ]] || { echo "ab: $f is missing: build first (bash scripts/build.sh)" >&2; exit 1; }
done
[[ $MODE =~ ^(record|unique|json)$ ]] || { echo "ab: unknown mode $MODE (record, unique or json)" >&2; exit 1; }
# The ids of the loaded cap_capable programs (capscope's and the reference ones), oldest first.
capable_ids() {
  bpftool prog show | awk '{ for (i = 1; i < NF; i++) if ($i == "name" && ($(i + 1) ~ /^cs_cap_capable/ || $(i + 1) ~ /^cs_bench_(empty|stream|count|clock)$/)) { sub(":", "", $1); print $1 } }' | sort -n
}

CG=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)/capscope-ab-$$
tmp=$(mktemp -d)
stats_before=$(sysctl -n kernel.bpf_stats_enabled)
cleanup() {
  kill -INT $(jobs -p) 2>/dev/null || true
  wait 2>/dev/null || true
  sysctl -qw kernel.bpf_stats_enabled="$stats_before"
  rmdir "$CG" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
# Any other cap_capable program would run on every check too, and its ids would mix with ours.
[[ -z $(capable_ids) ]] || { echo "ab: a capscope program is loaded already (another capscope runs?): stop it first" >&2; exit 1; }
sysctl -qw kernel.bpf_stats_enabled=1
mkdir -p "$CG"
if (($(nproc) >= 2)); then ON_TRACER_CPU=(taskset -c 0) ON_LOOP_CPU=(taskset -c 1); else ON_TRACER_CPU=() ON_LOOP_CPU=(); fi

# start BUILD TAG: one tracer in the background; prints its pid once it is attached.
start() {
  local log=$tmp/$2.log
  if is_reference "$1"; then
    "${ON_TRACER_CPU[@]}" "$EMPTY" "$1" >"$log" 2>&1 &
  else case $MODE in
    record) "${ON_TRACER_CPU[@]}" "$1/capscope" record --name ab --db "$tmp/$2.db" --cgroup "$CG" 2>"$log" >/dev/null & ;;
    unique) "${ON_TRACER_CPU[@]}" "$1/capscope" trace -o json --unique --output /dev/null 2>"$log" >/dev/null & ;;
    # To /dev/null: the program's cost, not the disk's (and no 2.6 GB file a run).
    json) "${ON_TRACER_CPU[@]}" "$1/capscope" trace -o json --output /dev/null 2>"$log" >/dev/null & ;;
  esac; fi
  local pid=$!
  for _ in $(seq 1 200); do grep -q "tracing with\|recording\|attached" "$log" 2>/dev/null && break; sleep 0.05; done
  grep -q "tracing with\|recording\|attached" "$log" || { echo "ab: the $2 tracer did not start:" >&2; cat "$log" >&2; exit 1; }
  echo "$pid"
}

# The mean ns per run of the cap_capable program with id $1.
prog_ns() {
  bpftool prog show id "$1" | awk '{ for (i = 1; i < NF; i++) { if ($i == "run_time_ns") t = $(i + 1); if ($i == "run_cnt") c = $(i + 1) } }
    END { if (c > 0) printf "%.1f\n", t / c; else print "-" }'
}

# Stops a tracer (started in another shell, so not ours to wait for) and waits until it is gone.
stop() {
  kill -INT "$1" 2>/dev/null || return 0
  for _ in $(seq 1 300); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$1" 2>/dev/null || true
}

# one FIRST SECOND: both attached (FIRST first), the loop, "ns_first ns_second".
one() {
  local pa pb id_a id_b
  # The last run's programs are freed a moment after their tracers exit.
  for _ in $(seq 1 100); do [[ -z $(capable_ids) ]] && break; sleep 0.1; done
  pa=$(start "$1" first) || exit 1
  # A second tracer that does not start must not leave the first attached.
  pb=$(start "$2" second) || { stop "$pa"; exit 1; }
  read -r id_a id_b <<<"$(echo $(capable_ids))"
  sleep 0.3
  sh -c 'echo $$ > "$1/cgroup.procs" && shift && exec "$@"' sh "$CG" "${ON_LOOP_CPU[@]}" "$LOOP" "$N" >/dev/null
  echo "$(prog_ns "$id_a") $(prog_ns "$id_b")"
  stop "$pa"
  stop "$pb"
}

echo "bench/ab: $MODE, $N checks a run, $ROUNDS rounds; A=$A B=$B; program ns per run"
diffs=""
for r in $(seq 1 "$ROUNDS"); do
  # Through a file, not a process substitution, so that a failed run stops the script.
  one "$A" "$B" >"$tmp/run" || exit 1
  read -r a1 b1 <"$tmp/run"
  one "$B" "$A" >"$tmp/run" || exit 1
  read -r b2 a2 <"$tmp/run"
  echo "round $r: A first: A $a1 B $b1 | B first: B $b2 A $a2"
  [[ "$a1 $b1 $a2 $b2" != *-* ]] || { echo "ab: a program's run time could not be read (bpf_stats?)" >&2; exit 1; }
  diffs+="$(awk -v a1="$a1" -v b1="$b1" -v a2="$a2" -v b2="$b2" 'BEGIN { print (b1 - a1 + b2 - a2) / 2 }') "
done
echo "$diffs" | awk '{ for (i = 1; i <= NF; i++) { s += $i; n++ } } END { printf "B - A: %.1f ns a check (mean of %d rounds, both orders each)\n", s / n, n }'
