#!/usr/bin/env bash
# capscope's main job on a real demo (as root, on a fresh Debian 12 machine):
# install, build, then trace the capability checks of the commands in the
# Inspektor Gadget and Tetragon guides (nice as a non-root user, dmesg,
# chown, chroot, mount in a new mount namespace, unshare + nsenter) and of a
# podman container, and show them as a table and as Tetragon-shaped JSON; then
# record nginx and a pod, and print the advice for each.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh >/dev/null
BUILD_DIR=build bash scripts/build.sh >/dev/null
CAPSCOPE=./build/capscope
work=$(mktemp -d)
old_restrict=$(cat /proc/sys/kernel/dmesg_restrict)
service=
cleanup() {
  echo "$old_restrict" > /proc/sys/kernel/dmesg_restrict
  podman rm -f capscope-demo >/dev/null 2>&1 || true
  podman pod rm -f -t 0 xwing >/dev/null 2>&1 || true
  [ -n "$service" ] && kill "$service" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
# dmesg needs CAP_SYSLOG only when the kernel restricts it.
echo 1 > /proc/sys/kernel/dmesg_restrict

echo "== capscope check"
$CAPSCOPE check || true

run_host_commands() {
  sleep 1
  touch "$work/file"
  echo "-- nice -n -20 true (as nobody)"
  setpriv --reuid=65534 --regid=65534 --clear-groups nice -n -20 true 2>&1 || true
  echo "-- dmesg (as nobody)"
  setpriv --reuid=65534 --regid=65534 --clear-groups dmesg >/dev/null 2>&1 ||
    echo "dmesg: Operation not permitted"
  echo "-- chown 1:1 file"; chown 1:1 "$work/file"
  echo "-- chroot / true"; chroot / true
  echo "-- mount -t tmpfs in a new mount namespace"; unshare -m sh -c "mount -t tmpfs none /mnt"
  echo "-- unshare -i, then nsenter into it"; unshare -i sh -c "nsenter -i -t \$\$ true"
  sleep 1
}

run_container() {
  sleep 1
  echo "-- podman run busybox: chown, then dmesg (refused: the container has no CAP_SYSLOG)"
  podman --runtime runc run --name capscope-demo --network none localhost/capscope-busybox \
    sh -c 'touch /tmp/f && chown 1:1 /tmp/f && dmesg >/dev/null' 2>&1 || true
  podman rm -f capscope-demo >/dev/null 2>&1 || true
  sleep 1
}

COMMS=nice,dmesg,chown,chroot,mount,unshare,nsenter
echo
echo "== capscope trace -o table --audit-only --comm $COMMS (the commands run meanwhile)"
run_host_commands > "$work/host.log" 2>&1 &
$CAPSCOPE trace -o table --audit-only --comm "$COMMS" --timeout 6
wait
cat "$work/host.log"

echo
echo "== capscope trace -o table --containers --audit-only (a podman container runs meanwhile)"
bash scripts/busybox-image.sh
run_container > "$work/container.log" 2>&1 &
$CAPSCOPE trace -o table --containers --audit-only --fields +binary --timeout 5
wait
cat "$work/container.log"

echo
echo "== capscope trace -o json --denied --audit-only --comm dmesg: one event, Tetragon's shape"
run_host_commands > /dev/null 2>&1 &
$CAPSCOPE trace -o json --denied --audit-only --comm dmesg --max-events 1 --timeout 6 | head -1 |
  python3 -m json.tool
wait

echo
echo "== capscope record --verify -- Debian's nginx: serve a page on port 80, then the advice"
mkdir -p "$work/nginx"
chmod 755 "$work"  # its workers run as www-data
$CAPSCOPE record --db "$work/profiles.db" --name nginx --verify -- \
  tests/workloads/nginx/serve.sh "$work/nginx" 80
echo
echo "== capscope advise nginx -f k8s"
$CAPSCOPE advise nginx --db "$work/profiles.db" -f k8s

echo
echo "== capscope record --pod xwing: a pod (podman kube play) reads the kernel log, chowns, renices"
cat > "$work/xwing.yaml" <<'YAML'
apiVersion: v1
kind: Pod
metadata:
  name: xwing
  labels: {app: xwing, class: xwing, org: alliance}
spec:
  containers:
  - name: spaceship
    image: localhost/capscope-busybox
    command: ["/bin/sh", "-c", "sleep 1; dmesg >/dev/null 2>&1; touch /tmp/f; chown 1 /tmp/f; nice -n -20 true; sleep 600"]
YAML
# The pod's names come from podman's API service, on a socket of the demo's own.
podman system service --time=0 "unix://$work/podman.sock" >/dev/null 2>&1 &
service=$!
for _ in $(seq 50); do [ -S "$work/podman.sock" ] && break; sleep 0.1; done
(sleep 2; podman --runtime runc kube play "$work/xwing.yaml" >/dev/null 2>&1) &
play=$!
$CAPSCOPE record --pod xwing --duration 8s --db "$work/profiles.db" \
  --podman-socket "$work/podman.sock" 2>&1 | grep -v "^  docker/podman:"
wait "$play"
echo
echo "== capscope advise --pod xwing: a patch for kubectl patch or a kustomize overlay"
$CAPSCOPE advise --pod xwing --db "$work/profiles.db"
