#!/capscope/busybox sh
# The guest's /init (see tests/qemu/run.sh): mounts what the runtime tests
# need, runs them once per backend, reports on the serial console, powers off.
# Lines starting with "@@capscope-qemu" are the protocol the host reads.
bb=/capscope/busybox
$bb --install -s /capscope/bb
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/capscope/bb
export HOME=/root TMPDIR=/tmp

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
mount -t tracefs tracefs /sys/kernel/tracing
mount -t debugfs debugfs /sys/kernel/debug
mount -t bpf bpf /sys/fs/bpf
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mkdir -p /root
hostname capscope-guest
# The tests bind 127.0.0.1 (a low port, for CAP_NET_BIND_SERVICE).
$bb ip link set lo up

. /capscope/env
# The host may name this kernel's backends on the command line (capscope_backends=a,b).
for arg in $(cat /proc/cmdline); do
  case $arg in capscope_backends=*) BACKENDS=$(echo "${arg#capscope_backends=}" | tr , ' ') ;; esac
done
echo "@@capscope-qemu kernel $(uname -r)"
overall=0
if [ -s /capscope/command ]; then
  /bin/sh /capscope/command 2>&1
  echo "@@capscope-qemu exit $?"
  poweroff -f
fi
for backend in $BACKENDS; do
  echo "@@capscope-qemu begin $backend"
  CAPSCOPE_TEST_BACKEND=$backend "$TESTS" --gtest_filter="$FILTER" --gtest_color=no >/tmp/out 2>&1
  rc=$?
  sed "s/^/[$backend] /" /tmp/out
  echo "@@capscope-qemu result $backend rc=$rc"
  [ "$rc" = 0 ] || overall=1
done
echo "@@capscope-qemu exit $overall"
sync
poweroff -f
