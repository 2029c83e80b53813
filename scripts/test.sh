#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine (as root):
# dependencies, build, format/tidy gate, unit tests, runtime tests against the
# live kernel and against Debian's 6.1 and 6.12 kernels under qemu (docs/TESTING.md), the
# deployment files' validation, a short fuzz run, the benchmark smoke run, and unit and
# runtime tests again under ASan/UBSan.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
step() { echo; echo "=== $* ($(( $(date +%s) - start ))s)"; }

step "dependencies"
bash scripts/install-deps.sh

step "build"
BUILD_DIR=build bash scripts/build.sh

step "lint"
BUILD_DIR=build bash scripts/lint.sh

step "unit tests"
./build/tests/capscope_unit_tests --gtest_brief=1

step "runtime tests (root, live kernel)"
./build/tests/capscope_runtime_tests

step "runtime tests on Debian's 6.1 and 6.12 kernels under qemu (fentry, kprobe)"
BUILD_DIR=build bash tests/qemu/run.sh
BUILD_DIR=build bash tests/qemu/runner_selftest.sh

step "deployment files (scripts/validate-deploy.sh, docs/DEPLOY.md)"
BUILD_DIR=build bash scripts/validate-deploy.sh

step "fuzzing the policy parser and the API requests, 30 s each (fuzz/run.sh)"
bash fuzz/run.sh 30

step "benchmark harness (smoke run; the figures come from bench/run.sh's defaults)"
BENCH_MODES="none floor capscope_json capscope_unique" bash bench/run.sh 200000 1

step "unit tests under ASan/UBSan"
BUILD_DIR=build-asan BUILD_TYPE=Debug bash scripts/build.sh -DCAPSCOPE_SANITIZE=ON
ASAN_OPTIONS=detect_leaks=1 LSAN_OPTIONS=suppressions=$PWD/tests/lsan.supp ./build-asan/tests/capscope_unit_tests --gtest_brief=1

step "runtime tests under ASan/UBSan"
ASAN_OPTIONS=detect_leaks=1 LSAN_OPTIONS=suppressions=$PWD/tests/lsan.supp ./build-asan/tests/capscope_runtime_tests

step "done"
