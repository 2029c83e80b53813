#!/usr/bin/env bash
# Builds the podman image localhost/capscope-busybox from Debian's busybox-static, for the
# demo and the tests (no registry is reachable from the machines they run on), plus
# coreutils' nice (busybox-static has no nice applet) with the libraries it loads.
# Does nothing if the image of this version exists.
set -euo pipefail
IMAGE=${1:-localhost/capscope-busybox}
VERSION=2
if podman image exists "$IMAGE"; then
  # The version is in the image's comment: a label would become every container's label.
  have=$(podman image inspect --format '{{.Comment}}' "$IMAGE" 2>/dev/null || true)
  [ "$have" = "capscope-busybox $VERSION" ] && exit 0
  podman rmi -f "$IMAGE" >/dev/null
fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir/bin" "$dir/tmp" "$dir/etc"
cp /bin/busybox "$dir/bin/"
for applet in sh chown dmesg renice true sleep cat id touch ls; do ln -s busybox "$dir/bin/$applet"; done
cp /usr/bin/nice "$dir/bin/nice"
for lib in $(ldd /usr/bin/nice | grep -o '/[^ ]*'); do
  mkdir -p "$dir$(dirname "$lib")"
  cp -L "$lib" "$dir$lib"
done
tar -C "$dir" -c . | podman import --message "capscope-busybox $VERSION" - "$IMAGE" >/dev/null
