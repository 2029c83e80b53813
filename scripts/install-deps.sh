#!/usr/bin/env bash
# Installs everything capscope needs to build, test and demo on Debian 12,
# from Debian's own archive. Safe to run again.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev
  libcli11-dev libfmt-dev libspdlog-dev nlohmann-json3-dev libyaml-cpp-dev libsqlite3-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  clang-format clang-tidy
  bpftrace libcap2-bin util-linux procps busybox-static nginx-light
  podman runc catatonit containerd
  libgrpc++-dev protobuf-compiler-grpc protobuf-compiler libprotobuf-dev libcurl4-openssl-dev
  libcpp-httplib-dev prometheus
  qemu-system-x86 cpio
  yamllint golang-go golang-github-masterminds-sprig-dev golang-github-ghodss-yaml-dev systemd
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Podman in this sandbox cannot raise rlimits: tell it not to try. (Its cgroups
# are a v1/v2 hybrid, which crun refuses: the tests run podman with --runtime runc.)
if [[ ! -f /etc/containers/containers.conf ]] || ! grep -q default_ulimits /etc/containers/containers.conf; then
  mkdir -p /etc/containers
  printf '[containers]\ndefault_ulimits = []\n' >> /etc/containers/containers.conf
fi
echo "capscope: dependencies installed"
