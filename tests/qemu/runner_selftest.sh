#!/usr/bin/env bash
# Checks that tests/qemu/run.sh fails clearly, and in time, when the guest
# panics or hangs: a runner that reported those as passing would hide a broken
# backend. Uses the first kernel run.sh would pick; about 40 seconds.
set -euo pipefail
cd "$(dirname "$0")/../.."
log=$(mktemp)
trap 'rm -f "$log"' EXIT
fail() { echo "qemu runner self-test: $*" >&2; cat "$log" >&2; exit 1; }

# expect NAME MESSAGE: run.sh, with the environment given, must exit 1 naming MESSAGE.
expect() {
  local name=$1 message=$2 rc=0
  shift 2
  env "$@" bash tests/qemu/run.sh "${KERNEL:-}" >"$log" 2>&1 || rc=$?
  ((rc == 1)) || fail "$name: run.sh exited $rc, not 1"
  grep -q "$message" "$log" || fail "$name: no \"$message\" in its output"
  echo "qemu runner self-test: $name: reported as \"$message\""
}

KERNEL=$(apt-cache pkgnames linux-image-6.1.0- |
  grep -E '^linux-image-6\.1\.0-[0-9]+-cloud-amd64$' | sort -V | tail -1)
[[ -n $KERNEL ]] || fail "no 6.1 cloud kernel in the package lists"
expect panic "the guest kernel panicked" CAPSCOPE_QEMU_COMMAND='echo c > /proc/sysrq-trigger'
expect hang "did not finish in 20s" CAPSCOPE_QEMU_TIMEOUT=20 CAPSCOPE_QEMU_COMMAND='sleep 600'
expect "failing suite" ": exit 3 after" CAPSCOPE_QEMU_COMMAND="exit 3"
# A failed test's own output follows its verdict in the report.
expect "failed test's output" "^    .kprobe. x.cpp:1: capscope-selftest-detail" \
  CAPSCOPE_QEMU_COMMAND='echo "[kprobe] [ RUN      ] A.B"; echo "[kprobe] x.cpp:1: capscope-selftest-detail"; echo "[kprobe] [  FAILED  ] A.B (1 ms)"; exit 1'

