#!/usr/bin/env bash
# capscope's main job on a real demo (as root, on a fresh Debian 12 machine):
# install, build, then trace the capability checks of the commands in the
# Inspektor Gadget and Tetragon guides (nice as a non-root user, dmesg,
# chown, chroot, mount in a new mount namespace, unshare + nsenter) and show
# them as a table and as Tetragon-shaped JSON.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh >/dev/null
BUILD_DIR=build bash scripts/build.sh >/dev/null
CAPSCOPE=./build/capscope
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "== capscope check"
$CAPSCOPE check || true

run_demo_commands() {
  sleep 1
  touch "$work/file"
  echo "-- nice -n -20 true (as nobody)"; setpriv --reuid=65534 --regid=65534 --clear-groups nice -n -20 true 2>&1 || true
  echo "-- dmesg (as nobody, dmesg_restrict=1)"
  old=$(cat /proc/sys/kernel/dmesg_restrict); echo 1 > /proc/sys/kernel/dmesg_restrict
  setpriv --reuid=65534 --regid=65534 --clear-groups dmesg >/dev/null 2>&1 || echo "dmesg: Operation not permitted"
  echo "$old" > /proc/sys/kernel/dmesg_restrict
  echo "-- chown 1:1 file"; chown 1:1 "$work/file"
  echo "-- chroot / true"; chroot / true
  echo "-- mount -t tmpfs in a new mount namespace"; unshare -m sh -c "mount -t tmpfs none /mnt"
  echo "-- unshare -i, then nsenter into it"; unshare -i sh -c "nsenter -i -t \$\$ true"
  sleep 1
}

COMMS=nice,dmesg,chown,chroot,mount,unshare,nsenter
echo
echo "== capscope trace -o table --audit-only (the demo commands run meanwhile)"
run_demo_commands > "$work/demo.log" 2>&1 &
$CAPSCOPE trace -o table --audit-only --comm "$COMMS" --timeout 6
cat "$work/demo.log"

echo
echo "== capscope trace -o json --denied: one event, Tetragon's shape"
run_demo_commands > /dev/null 2>&1 &
$CAPSCOPE trace -o json --denied --comm dmesg --max-events 1 --timeout 6 | head -1 | python3 -m json.tool
