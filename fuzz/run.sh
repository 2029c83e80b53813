#!/usr/bin/env bash
# Builds the libFuzzer targets with clang in build-fuzz (or $FUZZ_BUILD_DIR)
# and runs each for N seconds (default 30) over its corpus in fuzz/corpus/NAME/;
# N = 0 only builds them.
# New inputs go to a temporary folder, not into the committed corpus.
# Fails (exit 1) on any crash, sanitizer report, leak or hang (10 s per input);
# the input that did it is kept in $FUZZ_BUILD_DIR/fuzz/artifacts/.
#   fuzz/run.sh [SECONDS] [extra cmake args...]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-30}
shift || true
build=${FUZZ_BUILD_DIR:-build-fuzz}
launcher=()
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
CC=clang CXX=clang++ cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCAPSCOPE_BUILD_FUZZ=ON -DCAPSCOPE_BUILD_TESTS=OFF -DCAPSCOPE_BUILD_BENCH=OFF \
  "${launcher[@]}" "$@" >/dev/null
ninja -C "$build" fuzzers
[ "$seconds" = 0 ] && exit 0
mkdir -p "$build/fuzz/artifacts"
failed=0
while read -r name; do
  [ -n "$name" ] || continue
  work=$(mktemp -d)
  dict=()
  [ -f "fuzz/$name.dict" ] && dict=(-dict="fuzz/$name.dict")
  echo "== $name: ${seconds}s over fuzz/corpus/$name"
  if "$build/fuzz/${name}_fuzz" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
      -max_len=65536 -print_final_stats=1 "${dict[@]}" \
      -artifact_prefix="$build/fuzz/artifacts/$name-" "$work" "fuzz/corpus/$name" \
      >"$build/fuzz/$name.log" 2>&1; then
    grep -E '^stat::(number_of_executed_units|new_units_added|peak_rss_mb)' "$build/fuzz/$name.log" || true
    echo "== $name: ok"
  else
    tail -n 40 "$build/fuzz/$name.log"
    echo "== $name: FAILED (log: $build/fuzz/$name.log)"
    failed=1
  fi
  rm -rf "$work"
done <"$build/fuzz/fuzzers.txt"
exit $failed
