#!/usr/bin/env bash
# Overhead per capability check, measured in one run as ratios (the machines
# are shared and noisy). A tight loop of setuid(0) as root makes exactly one
# CAP_SETUID check per call; it runs under each tracer in turn, for several
# interleaved rounds, and times itself in chunks (BENCH_CHUNK calls, default
# 100000). A mode's figure is the 10th percentile of its chunks (see est()).
#
#   sudo bash bench/run.sh [calls per run, default 2000000] [rounds, default 5]
#   BENCH_MODES="none floor capscope_json" sudo bash bench/run.sh   # a subset
#
# Modes: none, floor (an empty program on the tracepoint), bpftrace_count,
# bpftrace_printf, capscope_json (trace -o json to a file on the build tree's
# disk), capscope_json_devnull (the same, output discarded: the tracer's own
# throughput, without the disk's), capscope_unique (trace -o json --unique),
# capscope_record (record --cgroup with the loop in that cgroup: aggregation in the kernel).
#
# Prints, per mode: ns per call, ns added per check over no tracing, the
# ratio of that to the floor (an empty program on the same tracepoint), the
# median of the runs' own means (what the figure was before chunks), events
# per second the tracer took in, and events lost. With two CPUs or
# more the loop runs on CPU 1 and the tracer's reader on CPU 0, so the two
# do not take turns on one core.
#
# Then the same targets in pairs and in the same instants (the last table):
# the floor from pairs of chunks in one process, the empty program attached
# for one and not the other (bench/floor_pairs.c; BENCH_PAIRS pairs, default
# 200, of BENCH_PAIR_CHUNK calls, default 50000), also on the classic
# tracepoint bpftrace uses; each capscope mode's program over the empty one,
# both attached at once (bench/ab.sh empty, BENCH_AB_ROUNDS rounds, default
# 2); and three reference programs, the least a counting (ref_count) and a
# streaming (ref_stream) tracer can do here, and one bpf_ktime_get_ns() a check
# (ref_clock), what an event's nanosecond time costs by itself.
#
# BENCH_PROG_TIME=1 also turns on kernel.bpf_stats_enabled and prints each
# mode's program time (run_time_ns / run_cnt of its cap_capable program, read
# while the tracer still runs) and what it takes over the floor's empty
# program (over_empty): the program's own cost, far steadier than the loop's.
# Every program run then pays the statistics' two clock reads (the empty
# program's time is mostly those), and so do the loop's figures.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-2000000}
ROUNDS=${2:-5}
CHUNK=${BENCH_CHUNK:-100000}
B=${BUILD_DIR:-build}
LOOP=$B/tests/cs_setuid_loop
CAPSCOPE=$B/capscope
EMPTY=$B/bench/cs_bench_empty_attach
PAIRS_BIN=$B/bench/cs_bench_floor_pairs
for f in "$LOOP" "$CAPSCOPE" "$EMPTY" "$PAIRS_BIN"; do
  [[ -x $f ]] || { echo "bench: $f is missing: build first (bash scripts/build.sh)" >&2; exit 1; }
done
tmp=$(mktemp -d)
# JSON goes to a file on the build tree's (disk) file system, as a user's --output would.
out_dir=$(mktemp -d "$B/bench-out.XXXXXX")
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp" "$out_dir"' EXIT
# capscope_record's cgroup, under the cgroup v2 mount.
RECORD_CG=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)/capscope-bench-$$
# bpftrace attaches classic tracepoints, which need tracefs (capscope's tp_btf does not).
mountpoint -q /sys/kernel/tracing || mount -t tracefs nodev /sys/kernel/tracing

if (($(nproc) >= 2)); then
  ON_TRACER_CPU=(taskset -c 0)
  ON_LOOP_CPU=(taskset -c 1)
else
  ON_TRACER_CPU=()
  ON_LOOP_CPU=()
fi

wait_for() {  # file pattern
  for _ in $(seq 1 200); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.05; done
  echo "bench: tracer did not start ($1)" >&2; cat "$1" >&2; return 1
}

# The mean ns per run of the attached programs named $1* (bpftool prog show,
# with bpf_stats on); "-" without statistics or without such a program.
prog_ns() {
  [[ ${BENCH_PROG_TIME:-0} == 1 ]] || { echo -; return; }
  bpftool prog show 2>/dev/null | awk -v name="$1" '
    { for (i = 1; i < NF; i++) {
        if ($i == "name") n = $(i + 1)
        if ($i == "run_time_ns") t = $(i + 1)
        if ($i == "run_cnt") c = $(i + 1) } }
    /^[0-9]+:/ { if (index(n, name) == 1 && c > 0) { T += t; C += c } n = ""; t = c = 0 }
    END { if (C > 0) printf "%.1f\n", T / C; else print "-" }'
}

# run_mode NAME: starts the tracer for NAME, runs the loop, stops it; prints "ns lost seen prog_ns"
run_mode() {
  local mode=$1
  local pid="" log=$tmp/$1.log lost=0 seen=0 pns=-
  : > "$log"
  case $mode in
    none) ;;
    floor) "${ON_TRACER_CPU[@]}" "$EMPTY" > "$log" 2>&1 & pid=$!; wait_for "$log" attached ;;
    bpftrace_count)
      "${ON_TRACER_CPU[@]}" bpftrace -e 'tracepoint:capability:cap_capable { @[comm, args->cap, args->ret] = count(); }' \
        > "$log" 2>&1 & pid=$!; wait_for "$log" Attaching ;;
    bpftrace_printf)
      "${ON_TRACER_CPU[@]}" bpftrace -e 'tracepoint:capability:cap_capable { printf("%s %d %d %d\n", comm, pid, args->cap, args->ret); }' \
        > "$tmp/bt.out" 2> "$log" & pid=$!; sleep 0.2; wait_for "$tmp/bt.out" Attaching ;;
    capscope_json)
      "${ON_TRACER_CPU[@]}" "$CAPSCOPE" trace -o json --output "$out_dir/events.json" 2> "$log" & pid=$!
      wait_for "$log" "tracing with" ;;
    capscope_json_devnull)
      "${ON_TRACER_CPU[@]}" "$CAPSCOPE" trace -o json --output /dev/null 2> "$log" & pid=$!
      wait_for "$log" "tracing with" ;;
    capscope_unique)
      "${ON_TRACER_CPU[@]}" "$CAPSCOPE" trace -o json --unique --output "$out_dir/events.json" 2> "$log" & pid=$!
      wait_for "$log" "tracing with" ;;
    capscope_record)
      # record aggregates in the kernel: the loop runs in the recorded cgroup.
      mkdir -p "$RECORD_CG"
      "${ON_TRACER_CPU[@]}" "$CAPSCOPE" record --name bench --db "$out_dir/bench.db" \
        --cgroup "$RECORD_CG" 2> "$log" & pid=$!
      wait_for "$log" "recording" ;;
    *) echo "bench: unknown mode $mode" >&2; return 1 ;;
  esac
  sleep 0.3
  local ns
  if [[ $mode == capscope_record ]]; then
    ns=$(sh -c 'echo $$ > "$1/cgroup.procs" && shift && exec "$@"' sh "$RECORD_CG" \
      "${ON_LOOP_CPU[@]}" "$LOOP" "$N" "$CHUNK")
  else
    ns=$("${ON_LOOP_CPU[@]}" "$LOOP" "$N" "$CHUNK")
  fi
  case $mode in
    floor) pns=$(prog_ns cs_bench_empty) ;;
    capscope_*) pns=$(prog_ns cs_cap_capable) ;;
  esac
  if [[ -n $pid ]]; then
    sleep 0.5
    kill -INT "$pid"; wait "$pid" 2>/dev/null || true
  fi
  if [[ $mode == capscope_record ]]; then
    # "N checks recorded (A aggregated in the kernel, E sent one by one, L lost)"
    read -r seen lost < <(sed -n 's/.* \([0-9]*\) checks recorded (.* \([0-9]*\) lost).*/\1 \2/p' "$log")
    lost=${lost:-unknown}
    rmdir "$RECORD_CG" 2>/dev/null || true
  elif [[ $mode == capscope_* ]]; then
    lost=$(grep -o '[0-9]* lost (ring buffer full)' "$log" | awk '{print $1}')
    seen=$(grep -o '[0-9]* checks seen' "$log" | awk '{print $1}')
    lost=${lost:-unknown}
    rm -f "$out_dir/events.json"
  elif [[ $mode == bpftrace_printf ]]; then
    lost=$(cat "$log" "$tmp/bt.out" 2>/dev/null | { grep -o 'Lost [0-9]* events' || true; } | awk '{s+=$2} END {print s+0}')
  fi
  # ns: the whole run's ns per call, then each chunk's
  read -r whole chunks <<<"$ns"
  echo "$whole $lost ${seen:-0} $pns $chunks"
}

read -r -a MODES <<<"${BENCH_MODES:-none floor bpftrace_count bpftrace_printf capscope_json capscope_json_devnull capscope_unique capscope_record}"
# Every figure is relative to `none` (the loop with nothing attached): always measure it.
[[ " ${MODES[*]} " == *" none "* ]] || MODES=(none "${MODES[@]}")
declare -A samples lostv progv chunkv
if [[ ${BENCH_PROG_TIME:-0} == 1 ]]; then
  stats_before=$(sysctl -n kernel.bpf_stats_enabled)
  sysctl -qw kernel.bpf_stats_enabled=1
  trap 'sysctl -qw kernel.bpf_stats_enabled="$stats_before"; kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp" "$out_dir"' EXIT
fi
for r in $(seq 1 "$ROUNDS"); do
  for m in "${MODES[@]}"; do
    read -r ns lost seen pns chunks < <(run_mode "$m")
    samples[$m]+="$ns "
    chunkv[$m]+="$chunks "
    [[ $pns == - ]] || progv[$m]+="$pns "
    # The worst round's loss is the one reported: 0 must hold in every round.
    if [[ -z ${lostv[$m]:-} || $lost == unknown || ($lost =~ ^[0-9]+$ && ${lostv[$m]} =~ ^[0-9]+$ && $lost -gt ${lostv[$m]}) ]]; then
      lostv[$m]=$lost
    fi
    echo "round $r $m: $ns ns/call lost=$lost checks_seen=$seen prog_ns=$pns" >&2
  done
done

# The Q quantile of a list of numbers (nearest rank, rounded up at a half).
quantile() { tr ' ' '\n' | { grep -v '^$' || true; } | sort -g | awk -v q="$1" '{a[NR]=$1} END {if (NR > 0) { i = int(q * NR + 0.5); print a[i < 1 ? 1 : i] }}'; }
median() { quantile 0.5; }
# The figure per mode is the 10th percentile of its chunks' ns per call, over
# all rounds. This machine's noise comes in bursts (another tenant's work)
# that slow some chunks of a run by 20% and leave the others alone, so a
# run's mean, and the median of a few runs' means, move with how many bursts
# each run met; a low percentile of many short chunks does not. Noise only
# ever adds time, so the quiet chunks are the ones that measure the tracer.
est() { echo "${chunkv[$1]:-}" | quantile 0.1; }
base=$(est none)
floor=$base
[[ -z ${samples[floor]:-} ]] || floor=$(est floor)
floor_added=$(awk -v f="$floor" -v b="$base" 'BEGIN {print f-b}')
nchunks=$(echo "${chunkv[none]:-}" | wc -w)
echo
echo "capscope benchmark: $N setuid(0) calls per run in chunks of $CHUNK, $ROUNDS rounds, kernel $(uname -r), $(nproc) CPUs"
echo "ns/call: the 10th percentile of each mode's $nchunks chunks; run_median: the median of its runs' means"
printf '%-22s %10s %12s %10s %12s %12s %8s' mode ns/call added/check x_floor run_median events/s lost
[[ ${BENCH_PROG_TIME:-0} == 1 ]] && printf ' %10s %12s' prog_ns over_empty
echo
prog_floor=$(echo "${progv[floor]:-}" | median)
for m in "${MODES[@]}"; do
  t=$(est "$m")
  med=$(echo "${samples[$m]}" | median)
  awk -v m="$m" -v t="$t" -v med="$med" -v b="$base" -v fa="$floor_added" -v l="${lostv[$m]:--}" 'BEGIN {
    added = t - b; ratio = (fa > 0) ? added / fa : 0; eps = (m == "none") ? 0 : 1e9 / med;
    printf "%-22s %10.1f %12.1f %10.2f %12.1f %12.0f %8s", m, t, added, ratio, med, eps, l }'
  if [[ ${BENCH_PROG_TIME:-0} == 1 ]]; then
    pm=$(echo "${progv[$m]:-}" | median)
    awk -v p="${pm:--}" -v f="${prog_floor:-}" 'BEGIN {
      if (p == "-" || p == "") { printf " %10s %12s", "-", "-"; exit }
      printf " %10.1f %12s", p, (f > 0) ? sprintf("%.1f", p - f) : "-" }'
  fi
  echo
done

# ---- In pairs and in the same instants -----------------------------------
# The figures above subtract separate runs, and the floor's own difference is
# the noisiest of them (38-127 ns between runs of one build here). Below, the
# floor comes from pairs of chunks within one process, the empty program
# attached for one chunk and not for the next (bench/floor_pairs.c), and each
# capscope mode's cost over the empty program from both attached at once,
# read from kernel.bpf_stats over the same checks (bench/ab.sh empty).
# stream and count are the least a streaming or an aggregating tracer can do,
# clock the timestamp alone (bench/empty_tp.bpf.c): what any tool pays here,
# for comparison.
PAIRS=${BENCH_PAIRS:-200}
PAIR_CHUNK=${BENCH_PAIR_CHUNK:-50000}
AB_ROUNDS=${BENCH_AB_ROUNDS:-2}
pair_floor() {  # tp_btf|classic -> the median of the pairs' differences
  "${ON_LOOP_CPU[@]}" "$PAIRS_BIN" "$PAIRS" "$PAIR_CHUNK" "$1" | awk '/^floor_added/ { print $2 }'
}
over_empty() {  # ab.sh mode-or-reference -> ns a check over the empty program
  local b=$B mode=$1
  case $1 in stream | count | clock) b=$1 mode=json ;; esac
  BUILD_DIR=$B bash bench/ab.sh empty "$b" "$mode" "$N" "$AB_ROUNDS" | awk '/^B - A:/ { print $4 }'
}
floor_tp=$(pair_floor tp_btf)
floor_classic=$(pair_floor classic)
echo
echo "in pairs: the floor from $PAIRS pairs of $PAIR_CHUNK-call chunks in one process (median of the differences);"
echo "over_empty: the program's ns a check over the empty program's, both attached ($AB_ROUNDS rounds of $N checks, both orders)"
printf '%-22s %12s %12s %10s\n' mode over_empty added/check x_floor
# row NAME OVER_EMPTY ADDED: a ratio only over a floor above 0 (a short smoke run's pairs may not give one).
row() {
  awk -v m="$1" -v oe="$2" -v a="$3" -v f="$floor_tp" 'BEGIN {
    printf "%-22s %12s %12.1f %10s\n", m, oe, a, (f > 0) ? sprintf("%.2f", a / f) : "-" }'
}
row floor 0.0 "$floor_tp"
row floor_classic - "$floor_classic"
declare -A ab_of=([capscope_unique]=unique [capscope_record]=record [capscope_json]=json)
for m in capscope_unique capscope_record capscope_json ref_count ref_stream ref_clock; do
  case $m in
    ref_*) what=${m#ref_} ;;
    *) [[ " ${MODES[*]} " == *" $m "* ]] || continue; what=${ab_of[$m]} ;;
  esac
  oe=$(over_empty "$what")
  row "$m" "$oe" "$(awk -v oe="$oe" -v f="$floor_tp" 'BEGIN { print f + oe }')"
done
