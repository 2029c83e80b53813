#!/usr/bin/env bash
# Runs capscope's runtime test suite on another kernel, booted under qemu.
#
#   bash tests/qemu/run.sh [KERNEL_PACKAGE...]
#
# For each kernel package (default: Debian 12's newest 6.1 and 6.12 cloud
# kernels: no cap_capable tracepoint in either, kernel_cap_t before and after
# its 6.3 change) it
# downloads the package with apt-get, builds an initramfs holding capscope, the
# runtime tests, the commands they run and the libraries all of them link,
# boots it with qemu-system-x86_64 and runs the suite once per backend the
# guest should support. The guest reports on the serial console; this script
# prints each test's result, and fails when a test fails, when the guest
# panics, or when it does not finish within CAPSCOPE_QEMU_TIMEOUT seconds.
#
# Environment: BUILD_DIR (default build; must hold a built tree),
# CAPSCOPE_QEMU_BACKENDS (default: "fentry kprobe" on 6.1, "kprobe" on 6.12, see
# backends_for; when set, every kernel runs these; add auto for a third pass),
# CAPSCOPE_QEMU_TIMEOUT (default 1500), CAPSCOPE_QEMU_FILTER (a gtest filter),
# CAPSCOPE_QEMU_COMMAND (a shell command the guest runs instead, to debug),
# CAPSCOPE_QEMU_SMP (vCPUs, default 1), CAPSCOPE_QEMU_JOBS (kernels booted side by side,
# default nproc / SMP; 1 boots them one after the other).
# See docs/TESTING.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD_DIR=$(realpath "${BUILD_DIR:-build}")
WORK="$BUILD_DIR/qemu"
BACKENDS=${CAPSCOPE_QEMU_BACKENDS:-"fentry kprobe"}
# Each kernel's backends. By default 6.12 runs kprobe only: under emulation each
# fentry attach there takes about 15 s (6.1: under 1 s), which made its fentry pass
# 18 minutes of CI's 45; the fentry programs and their verifier run on 6.1.
backends_for() {
  if [[ -n ${CAPSCOPE_QEMU_BACKENDS:-} ]]; then echo "$BACKENDS"; return; fi
  case $1 in
    linux-image-6.12.*) echo "kprobe" ;;
    *) echo "fentry kprobe" ;;
  esac
}
TIMEOUT=${CAPSCOPE_QEMU_TIMEOUT:-1500}
# One vCPU by default: with two, attaching trampolines to the hottest functions
# (cap_vm_enough_memory runs on every mmap) sometimes left both emulated CPUs in
# a soft lockup, the attaching task waiting in text patching on the other CPU.
# CAPSCOPE_QEMU_SMP=2 brings it back (docs/TESTING.md).
SMP=${CAPSCOPE_QEMU_SMP:-1}
# Kernels booted at once (default: as many as the host has cores for their vCPUs).
JOBS=${CAPSCOPE_QEMU_JOBS:-$(($(nproc) / SMP))}
# The guest has neither a container runtime nor nginx: the podman and nginx tests run
# on the host only. So do the agent's, the metrics server's, the privilege rings' and
# the deployment files' tests: they test user space (podman, Prometheus, systemd,
# capability sets), which the guest kernel does not change. The policy tests without
# podman do run in the guest: they load the policy programs through its verifier.
FILTER=${CAPSCOPE_QEMU_FILTER:-"*-TraceRuntime.PodmanContainerIsAttributedFromItsCgroup:ContainerRecordRuntime.ARunning*:NginxRuntime.*:ContainerTraceRuntime.*:PodRecordRuntime.*:Engine*:Cri*:AgentRuntime.*:MetricsServer.*:PrivilegesRuntime.*:DeployRuntime.*:PolicyPodmanRuntime.*"}

die() { echo "qemu tests: $*" >&2; exit 1; }

for tool in qemu-system-x86_64 cpio apt-get busybox; do
  command -v "$tool" >/dev/null || die "$tool is missing: run scripts/install-deps.sh"
done
[[ -x $BUILD_DIR/capscope && -x $BUILD_DIR/tests/capscope_runtime_tests &&
  -x $BUILD_DIR/tests/cs_mmap_low ]] ||
  die "no built tree in $BUILD_DIR: run scripts/build.sh first"

# Debian's newest 6.1 and 6.12 cloud kernels in the package lists, one per line.
default_kernels() {
  apt-cache pkgnames linux-image-6.1.0- | grep -E '^linux-image-6\.1\.0-[0-9]+-cloud-amd64$' |
    sort -V | tail -1
  apt-cache pkgnames linux-image-6.12. |
    grep -E '^linux-image-6\.12\.[0-9]+\+deb[0-9]+-cloud-amd64$' | sort -V | tail -1
}

# Downloads and unpacks a kernel package; prints the path of its vmlinuz.
fetch_kernel() {
  local pkg=$1 dir="$WORK/$1"
  if [[ ! -d $dir/root/boot ]]; then
    rm -rf "$dir" && mkdir -p "$dir"
    (cd "$dir" && apt-get download "$pkg" >/dev/null 2>"$dir/download.log") ||
      die "apt-get download $pkg failed ($(tail -1 "$dir/download.log")): is $pkg in the package lists? (apt-get update)"
    dpkg-deb -x "$dir"/*.deb "$dir/root"
  fi
  find "$dir/root/boot" -name "vmlinuz-*" | head -1
}

# Copies a host file into the image at the same path, following symlinks.
add_file() {
  local src=$1 dst="$2$1"
  mkdir -p "$(dirname "$dst")"
  cp -L "$src" "$dst"
}

# Copies an executable (to the same path, or to $3) and every library it links.
add_program() {
  local root=$1 path=$2 dest=${3:-$2} lib
  mkdir -p "$(dirname "$root$dest")"
  cp -L "$path" "$root$dest"
  for lib in $(ldd "$path" 2>/dev/null | grep -o '/[^ ]*'); do
    [[ -e $root$lib ]] || add_file "$lib" "$root"
  done
}

# The commands the runtime tests run, as the host has them.
GUEST_COMMANDS=(sh dash bash chown nice chroot unshare mount umount dmesg setpriv setsid setcap true cat
  sleep awk mountpoint grep sed id touch kill ls rm mkdir echo env)

build_initramfs() {
  local out=$1 root="$WORK/initramfs" cmd path
  rm -rf "$root" && mkdir -p "$root"/{usr/bin,usr/sbin,usr/lib64,usr/lib/x86_64-linux-gnu}
  # Debian 12's merged /usr, so the tests see the same paths as on the host.
  for d in bin sbin lib lib64; do ln -s "usr/$d" "$root/$d"; done
  mkdir -p "$root"/{proc,sys,dev,tmp,run,mnt,etc,capscope/bb}
  for cmd in "${GUEST_COMMANDS[@]}"; do
    path=$(type -P "$cmd") || die "$cmd is missing: run scripts/install-deps.sh"
    add_program "$root" "$(realpath "$path")"
    [[ $(realpath "$path") == "$path" ]] || { mkdir -p "$root$(dirname "$path")"; ln -sf "$(realpath "$path")" "$root$path"; }
  done
  ln -sf dash "$root/usr/bin/sh"
  # capscope and the tests in /capscope/bin: the build's own paths may be under /tmp,
  # which the guest mounts over.
  local prog
  for prog in capscope tests/capscope_runtime_tests tests/cs_setuid_loop tests/cs_thread_turns tests/cs_probe_turns tests/cs_exec_turns tests/cs_mmap_low \
    tests/cs_needs tests/cs_cgroup_hop; do
    add_program "$root" "$BUILD_DIR/$prog" "/capscope/bin/$(basename "$prog")"
  done
  # busybox runs the guest's init; its applets come last in PATH.
  cp "$(command -v busybox)" "$root/capscope/busybox"
  echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
  echo 'nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin' >>"$root/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
  cp tests/qemu/guest-init.sh "$root/init"
  chmod +x "$root/init"
  cat >"$root/capscope/env" <<EOF
export BACKENDS="$BACKENDS"
export FILTER="$FILTER"
export TESTS=/capscope/bin/capscope_runtime_tests
export CAPSCOPE=/capscope/bin/capscope
export CAPSCOPE_TEST_BINARY=/capscope/bin/capscope
export CAPSCOPE_TEST_HELPERS_DIR=/capscope/bin
EOF
  # CAPSCOPE_QEMU_COMMAND: a shell command to run instead of the suite, to debug.
  [[ -z ${CAPSCOPE_QEMU_COMMAND:-} ]] || printf '%s\n' "$CAPSCOPE_QEMU_COMMAND" >"$root/capscope/command"
  (cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$out"
}

# Boots a kernel with the initramfs; the console goes to $log. Returns the suite's status.
boot_and_run() {
  local vmlinuz=$1 initrd=$2 log=$3 backends=$4 rc
  set +e
  timeout --kill-after=10 "$TIMEOUT" qemu-system-x86_64 -machine q35 -cpu max -smp "$SMP" -m 2048 \
    -kernel "$vmlinuz" -initrd "$initrd" \
    -append "console=ttyS0 panic=-1 softlockup_panic=1 quiet loglevel=3 capscope_backends=${backends// /,}" \
    -nographic -no-reboot -monitor none -serial stdio </dev/null >"$log" 2>&1
  rc=$?
  set -e
  tr -d '\r' <"$log" >"$log.txt"
  if ((rc == 124 || rc == 137)); then
    tail -30 "$log.txt" >&2
    die "the guest did not finish in ${TIMEOUT}s (hung?): console in $log.txt"
  fi
  # softlockup_panic=1: a CPU stuck in the kernel ends the run at once, as a panic.
  if grep -q "Kernel panic" "$log.txt"; then
    grep -B2 -A20 "Kernel panic" "$log.txt" >&2
    die "the guest kernel panicked$(grep -q 'soft lockup' "$log.txt" && echo ' (soft lockup)'): console in $log.txt"
  fi
  local status
  status=$(sed -n 's/^@@capscope-qemu exit \([0-9]*\)$/\1/p' "$log.txt" | tail -1)
  if [[ -z $status ]]; then
    tail -30 "$log.txt" >&2
    die "the guest stopped without reporting (qemu exit $rc): console in $log.txt"
  fi
  return "$status"
}

# Each test's verdict per backend, from the guest's gtest output; a failed
# test's own output (its assertions, up to 80 lines) follows its verdict, so a
# failure in CI can be read without the console file.
report() {
  awk '
    /^\[[a-z]+\] \[ RUN +\] / { n = 0; next }
    /^\[[a-z]+\] \[ +(OK|FAILED|SKIPPED) +\] [A-Za-z]+\.[A-Za-z]+ / {
      print
      if ($0 ~ /FAILED/) for (i = 1; i <= n && i <= 80; i++) print "    " held[i]
      n = 0
      next
    }
    /^\[[a-z]+\] / { held[++n] = $0 }
  ' "$1"
  grep -E '^@@capscope-qemu (result|exit)' "$1" || true
}

mkdir -p "$WORK"
kernels=("$@")
if ((${#kernels[@]} == 0)); then
  (($(default_kernels | wc -l) == 2)) || apt-get update -qq || die "apt-get update failed"
  mapfile -t kernels < <(default_kernels)
  ((${#kernels[@]} == 2)) ||
    die "no linux-image-6.1.0-*-cloud-amd64 or 6.12 cloud kernel in the package lists (apt-get update?)"
fi
initrd="$WORK/initramfs.gz"
build_initramfs "$initrd"

# One kernel's run: its report on stdout, the suite's status as the exit status.
run_kernel() {
  local pkg=$1 vmlinuz=$2 log="$WORK/$1.console" start st backends
  backends=$(backends_for "$pkg")
  echo "=== $pkg: runtime tests, backends: $backends"
  start=$(date +%s)
  if boot_and_run "$vmlinuz" "$initrd" "$log" "$backends"; then st=0; else st=$?; fi
  report "$log.txt"
  echo "=== $pkg: exit $st after $(($(date +%s) - start))s (console: $log.txt)"
  return "$st"
}

vmlinuzes=()
for pkg in "${kernels[@]}"; do
  vmlinuz=$(fetch_kernel "$pkg")
  [[ -n $vmlinuz ]] || die "$pkg holds no vmlinuz"
  vmlinuzes+=("$vmlinuz")
done
failed=0
if ((JOBS > 1)); then
  # Each guest is one emulated CPU: with a host core each, the kernels run side by side.
  pids=()
  for i in "${!kernels[@]}"; do
    run_kernel "${kernels[$i]}" "${vmlinuzes[$i]}" >"$WORK/${kernels[$i]}.report" 2>&1 &
    pids+=($!)
  done
  for i in "${!kernels[@]}"; do
    wait "${pids[$i]}" || failed=1
    cat "$WORK/${kernels[$i]}.report"
  done
else
  for i in "${!kernels[@]}"; do
    run_kernel "${kernels[$i]}" "${vmlinuzes[$i]}" || failed=1
  done
fi
exit "$failed"
