#!/usr/bin/env bash
# Format and static-analysis gate: clang-format must find nothing to change
# in src/ and tests/, and clang-tidy must report no warning on src/.
# Needs a configured build dir (compile_commands.json) in $BUILD_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
mapfile -t files < <(git ls-files 'src/*.cpp' 'src/*.h' 'tests/*.cpp' 'tests/*.h')
echo "lint: clang-format on ${#files[@]} files"
clang-format --dry-run --Werror "${files[@]}"
mapfile -t tidy_files < <(git ls-files 'src/*.cpp')
echo "lint: clang-tidy on ${#tidy_files[@]} files"
out=$(mktemp)
if ! printf '%s\n' "${tidy_files[@]}" | xargs -P "$(nproc)" -n 4 clang-tidy -p "$BUILD_DIR" --quiet >"$out" 2>&1; then
  grep -v -E '^[0-9]+ warnings? (and [0-9]+ errors? )?generated|^Suppressed|^Use -header-filter' "$out"
  echo "lint: clang-tidy found problems"
  exit 1
fi
echo "lint: ok"
