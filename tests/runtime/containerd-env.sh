#!/usr/bin/env bash
# A private containerd with its CRI plugin, for the CRI runtime tests.
#
#   containerd-env.sh start DIR   start containerd in DIR (root, state, socket, log,
#                                 config all under DIR), import the busybox image into
#                                 namespace k8s.io; prints the socket path
#   containerd-env.sh restart DIR stop containerd (not its shims) and start it again
#   containerd-env.sh stop DIR    stop it, kill what it left behind, unmount and remove DIR
#
# No registry is reachable from the test machines, so the image is built here
# from Debian's busybox-static as a docker-archive tar, and serves both as the
# CRI sandbox ("pause") image and as the container image: its default command
# is `sleep inf`, which is all a pause container has to do. Pods use host
# networking (NamespaceMode NODE), so no CNI plugin is needed.
set -euo pipefail

IMAGE=localhost/capscope-busybox:latest

die() {
  echo "containerd-env: $*" >&2
  exit 1
}

write_config() {
  local dir=$1
  # restrict_oom_score_adj: containerd gives sandboxes an oom_score_adj of -998,
  # which needs CAP_SYS_RESOURCE to set; this caps it at containerd's own.
  cat >"$dir/config.toml" <<EOF
version = 2
root = "$dir/root"
state = "$dir/state"
[grpc]
  address = "$dir/containerd.sock"
[ttrpc]
  address = "$dir/containerd.sock.ttrpc"
[debug]
  address = "$dir/debug.sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$IMAGE"
  restrict_oom_score_adj = true
  disable_apparmor = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    conf_dir = "$dir/cni"
    bin_dir = "$dir/cni"
EOF
}

# A docker-archive: manifest.json names the config and the one layer; the
# config's diff_id is the layer tar's digest.
build_image() {
  local out=$1 work
  work=$(mktemp -d)
  mkdir -p "$work/rootfs/bin" "$work/rootfs/tmp" "$work/rootfs/etc" "$work/rootfs/proc" \
    "$work/rootfs/sys" "$work/rootfs/dev"
  cp /bin/busybox "$work/rootfs/bin/"
  for applet in sh sleep cat id ls true; do ln -s busybox "$work/rootfs/bin/$applet"; done
  tar -C "$work/rootfs" --owner=0 --group=0 --numeric-owner -cf "$work/layer.tar" .
  local diff_id
  diff_id=$(sha256sum "$work/layer.tar" | cut -d' ' -f1)
  cat >"$work/config.json" <<EOF
{"architecture":"amd64","os":"linux",
 "config":{"Env":["PATH=/bin"],"Cmd":["/bin/sleep","inf"]},
 "rootfs":{"type":"layers","diff_ids":["sha256:$diff_id"]}}
EOF
  echo "[{\"Config\":\"config.json\",\"RepoTags\":[\"$IMAGE\"],\"Layers\":[\"layer.tar\"]}]" \
    >"$work/manifest.json"
  tar -C "$work" -cf "$out" manifest.json config.json layer.tar
  rm -rf "$work"
}

start() {
  local dir=$1
  for tool in containerd ctr runc containerd-shim-runc-v2; do
    command -v "$tool" >/dev/null || die "$tool is not installed: run scripts/install-deps.sh"
  done
  [[ -x /bin/busybox ]] || die "busybox-static is not installed: run scripts/install-deps.sh"
  mkdir -p "$dir/cni"
  write_config "$dir"
  build_image "$dir/busybox.tar"
  daemon "$dir"
  ctr --address "$dir/containerd.sock" -n k8s.io images import "$dir/busybox.tar" >/dev/null ||
    die "ctr images import failed"
  echo "$dir/containerd.sock"
}

daemon() {
  local dir=$1
  containerd --config "$dir/config.toml" --root "$dir/root" --state "$dir/state" \
    --address "$dir/containerd.sock" >>"$dir/containerd.log" 2>&1 &
  echo $! >"$dir/containerd.pid"
  for _ in $(seq 100); do
    [[ -S $dir/containerd.sock ]] && ctr --address "$dir/containerd.sock" version >/dev/null 2>&1 &&
      break
    kill -0 "$(cat "$dir/containerd.pid")" 2>/dev/null || die "containerd exited: $(tail -5 "$dir/containerd.log")"
    sleep 0.1
  done
  [[ -S $dir/containerd.sock ]] || die "containerd did not open its socket in 10 s"
}

stop_daemon() {
  local dir=$1 pid
  [[ -f $dir/containerd.pid ]] || return 0
  pid=$(cat "$dir/containerd.pid")
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 50); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
}

kill_pidfiles() {
  local dir=$1 name=$2 f pid
  while IFS= read -r f; do
    pid=$(cat "$f" 2>/dev/null) || continue
    [[ $pid =~ ^[0-9]+$ ]] && kill -KILL "$pid" 2>/dev/null || true
  done < <(find "$dir/state" -name "$name" 2>/dev/null)
}

stop() {
  local dir=$1
  [[ -d $dir && -f $dir/config.toml ]] || return 0
  # Containers first (their init.pid), then their shims, then containerd itself.
  kill_pidfiles "$dir" init.pid
  kill_pidfiles "$dir" shim.pid
  stop_daemon "$dir"
  # Rootfs and shm mounts left by a killed shim: deepest first.
  local m
  while IFS= read -r m; do
    umount -l "$m" 2>/dev/null || true
  done < <(findmnt -rn -o TARGET | grep -F "$dir/" | sort -r || true)
  rm -rf "$dir"
}

case ${1:-} in
  start) start "${2:?DIR}" ;;
  restart)
    stop_daemon "${2:?DIR}"
    daemon "$2"
    ;;
  stop) stop "${2:?DIR}" ;;
  *) die "usage: $0 start|restart|stop DIR" ;;
esac
