#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine (as root):
# dependencies, build, format/tidy gate, unit tests, runtime tests against the
# live kernel and against Debian's 6.1 and 6.12 kernels under qemu (docs/TESTING.md), the
# deployment files' validation, a short fuzz run, the benchmark smoke run, and unit and
# runtime tests again under ASan/UBSan.
#
# The runtime tests mostly wait on the kernel, containers and qemu guests, so the
# compiler-bound steps (lint, the ASan and fuzzer builds) run beside them at nice 19:
# they take only the CPU the tests leave idle. The benchmark runs alone.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
step() { echo; echo "=== $* ($(( $(date +%s) - start ))s)"; }

step "dependencies"
bash scripts/install-deps.sh

step "build"
BUILD_DIR=build bash scripts/build.sh

step "lint, ASan/UBSan build and fuzzer build, in the background (build/background.log)"
background_log=build/background.log
nice -n 19 bash -c '
  set -e
  echo "--- lint"; BUILD_DIR=build bash scripts/lint.sh
  echo "--- ASan/UBSan build"
  BUILD_DIR=build-asan BUILD_TYPE=Debug bash scripts/build.sh -DCAPSCOPE_SANITIZE=ON
  echo "--- fuzzer build"; bash fuzz/run.sh 0
' >"$background_log" 2>&1 &
background=$!

step "unit tests"
./build/tests/capscope_unit_tests --gtest_brief=1

step "runtime tests (root, live kernel)"
./build/tests/capscope_runtime_tests

step "runtime tests on Debian's 6.1 and 6.12 kernels under qemu (fentry, kprobe)"
BUILD_DIR=build bash tests/qemu/run.sh
BUILD_DIR=build bash tests/qemu/runner_selftest.sh

step "deployment files (scripts/validate-deploy.sh, docs/DEPLOY.md)"
BUILD_DIR=build bash scripts/validate-deploy.sh

step "waiting for lint and the background builds"
background_status=0
wait "$background" || background_status=$?
cat "$background_log"
if [ "$background_status" -ne 0 ]; then
  echo "lint or a background build failed (exit $background_status): see above"
  exit 1
fi

step "fuzzing the policy parser and the API requests, 30 s each (fuzz/run.sh)"
bash fuzz/run.sh 30

step "benchmark harness (smoke run; the figures come from bench/run.sh's defaults)"
BENCH_PAIRS=10 BENCH_AB_ROUNDS=1 BENCH_MODES="none floor capscope_json capscope_unique" bash bench/run.sh 200000 1
bash bench/ab.sh build build record 200000 1

step "unit tests under ASan/UBSan"
ASAN_OPTIONS=detect_leaks=1 LSAN_OPTIONS=suppressions=$PWD/tests/lsan.supp ./build-asan/tests/capscope_unit_tests --gtest_brief=1

step "runtime tests under ASan/UBSan"
ASAN_OPTIONS=detect_leaks=1 LSAN_OPTIONS=suppressions=$PWD/tests/lsan.supp ./build-asan/tests/capscope_runtime_tests

step "done"
