#!/usr/bin/env bash
# Makes the Debian 12 base image the Containerfile starts from, out of Debian's
# archive alone, for machines that reach deb.debian.org but no container registry:
#
#   bash deploy/container/debian-base.sh            # -> localhost/capscope-debian:12
#   podman build --runtime runc $(bash deploy/container/debian-base.sh --args) \
#       -f deploy/container/Containerfile -t localhost/capscope:latest .
#
# One image serves both stages: it is built like Debian's -slim images (no manuals,
# no documentation but the copyright files, no locales). Needs root and mmdebstrap
# (apt-get install mmdebstrap). Does nothing when the image exists already.
set -euo pipefail
IMAGE=${CAPSCOPE_BASE_IMAGE:-localhost/capscope-debian:12}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECURITY=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}

if [[ ${1:-} == --args ]]; then
  echo "--build-arg DEBIAN_IMAGE=$IMAGE --build-arg DEBIAN_SLIM_IMAGE=$IMAGE"
  exit 0
fi
die() { echo "debian-base.sh: $*" >&2; exit 1; }
command -v podman >/dev/null || die "podman is missing: apt-get install podman"
if podman image exists "$IMAGE"; then
  echo "$IMAGE exists (podman rmi $IMAGE to make it again)"
  exit 0
fi
command -v mmdebstrap >/dev/null || die "mmdebstrap is missing: apt-get install mmdebstrap"
((EUID == 0)) || die "run it as root (mmdebstrap --mode=root)"

work=$(mktemp -d /tmp/capscope-base.XXXXXX)
trap 'rm -rf "$work"' EXIT
mmdebstrap --variant=apt --mode=root --format=tar --include=ca-certificates \
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' --dpkgopt='path-exclude=/usr/share/locale/*' \
  bookworm "$work/rootfs.tar" \
  "deb $MIRROR bookworm main" "deb $MIRROR bookworm-updates main" \
  "deb $SECURITY bookworm-security main" >"$work/mmdebstrap.log" 2>&1 ||
  die "mmdebstrap failed: $(tail -3 "$work/mmdebstrap.log" | tr '\n' ' ')"
podman import --change 'CMD ["/bin/bash"]' "$work/rootfs.tar" "$IMAGE" >/dev/null
echo "$IMAGE made from $MIRROR (bookworm)"
