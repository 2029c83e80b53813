#!/usr/bin/env bash
# Validates deploy/ (docs/DEPLOY.md) with tools Debian packages, and fails on any
# problem:
#   - yamllint (deploy/.yamllint) on every YAML file and on every rendering of the chart;
#   - the Helm chart rendered by deploy/helm/render (Go's text/template with Debian's
#     sprig, the functions and objects Helm gives) with its default values, with
#     namespace.create=true, with deploy/helm/test-values/*.yaml and for Kubernetes
#     1.29 (AppArmor as an annotation); its NOTES.txt too;
#   - every manifest decoded strictly into the Kubernetes API fields it uses, and
#     checked for references between objects (deploy-tool check);
#   - the security facts: hostPID, not privileged, drop ALL, exactly the capabilities
#     the agent uses, the mounts, probes and limits, and the chart's defaults giving
#     the same DaemonSet as deploy/kubernetes/;
#   - the systemd unit with systemd-analyze verify (and its exposure score), and its
#     capability bounding set equal to the DaemonSet's;
#   - with a built capscope (BUILD_DIR, default build/): every agent flag is a key of
#     the example configuration and of the chart's values and the other way round,
#     and every library the binary links comes from a package the Containerfile
#     installs.
# Packages: yamllint golang-go golang-github-masterminds-sprig-dev
# golang-github-ghodss-yaml-dev systemd (scripts/install-deps.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
START=$(date +%s.%N)
WORK=$(mktemp -d /tmp/capscope-validate-deploy.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

failures=()
passed=0
skipped=()
ok() { passed=$((passed + 1)); }
fail() { failures+=("$*"); echo "validate-deploy: FAIL: $*" >&2; }
skip() { skipped+=("$*"); echo "validate-deploy: skipped: $*"; }

need() {
  command -v "$1" >/dev/null ||
    { echo "validate-deploy: $1 is missing: run scripts/install-deps.sh (Debian package $2)" >&2; exit 1; }
}
need yamllint yamllint
need go golang-go
for dir in github.com/Masterminds/sprig github.com/ghodss/yaml; do
  [[ -d /usr/share/gocode/src/$dir ]] || {
    echo "validate-deploy: /usr/share/gocode/src/$dir is missing: run scripts/install-deps.sh" \
      "(golang-github-masterminds-sprig-dev golang-github-ghodss-yaml-dev)" >&2
    exit 1
  }
done

# ---- the render/check tool: built offline from Debian's Go sources ----------------
# GOPATH mode against /usr/share/gocode; the go.mod beside the sources lets Go map
# sprig's "/v3" import path onto Debian's directory.
tool=$WORK/deploy-tool
gopath=$WORK/gopath
mkdir -p "$gopath/src/capscope-deploy-tool"
cp deploy/helm/render/*.go deploy/helm/render/go.mod "$gopath/src/capscope-deploy-tool/"
unformatted=$(gofmt -l deploy/helm/render)
if [[ -z $unformatted ]]; then ok; else fail "gofmt would change: $unformatted (run gofmt -w deploy/helm/render)"; fi
gocache=${CAPSCOPE_GOCACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/capscope-deploy-go}
if ! (cd "$gopath/src/capscope-deploy-tool" &&
  export GO111MODULE=off GOPATH="$gopath:/usr/share/gocode" GOFLAGS='' GOCACHE="$gocache" &&
  go build -o "$tool" . && go vet .); then
  echo "validate-deploy: deploy/helm/render does not build" >&2
  exit 1
fi
ok

lint() {
  local out
  if out=$(yamllint -f parsable -c deploy/.yamllint "$@" 2>&1); then ok; else fail "yamllint: $out"; fi
}

# ---- plain manifests and example configuration -------------------------------------
lint deploy/kubernetes/*.yaml deploy/container/capscope.yaml deploy/helm/capscope/Chart.yaml \
  deploy/helm/capscope/values.yaml deploy/helm/test-values/*.yaml deploy/.yamllint
if "$tool" check deploy/kubernetes/*.yaml >"$WORK/facts-plain" 2>"$WORK/err"; then ok; else
  fail "deploy/kubernetes: $(cat "$WORK/err")"
fi

# ---- the chart ---------------------------------------------------------------------
render() { # NAME ARGS...: renders, lints and checks one variant; facts in $WORK/facts-NAME
  local name=$1
  shift
  if ! "$tool" render --chart deploy/helm/capscope "$@" >"$WORK/helm-$name.yaml" 2>"$WORK/err"; then
    fail "helm render ($name): $(cat "$WORK/err")"
    return
  fi
  lint "$WORK/helm-$name.yaml"
  if "$tool" check "$WORK/helm-$name.yaml" >"$WORK/facts-$name" 2>"$WORK/err"; then ok; else
    fail "helm render ($name): $(cat "$WORK/err")"
  fi
  if "$tool" render --chart deploy/helm/capscope --notes "$@" >"$WORK/notes-$name.txt" 2>"$WORK/err" &&
    [[ -s $WORK/notes-$name.txt ]]; then ok; else fail "NOTES.txt ($name): $(cat "$WORK/err")"; fi
}
render default
render with-namespace --set namespace.create=true
render kube-1.29 --kube-version v1.29.4
for values in deploy/helm/test-values/*.yaml; do
  render "$(basename "$values" .yaml)" --values "$values"
done
# A chart that no longer renders for its lowest Kubernetes would say so here.
if "$tool" render --chart deploy/helm/capscope --kube-version v1.22.0 >/dev/null 2>&1; then
  fail "the chart renders for Kubernetes 1.22, below its kubeVersion"
else ok; fi

# The chart with its defaults is the DaemonSet of deploy/kubernetes/, fact for fact.
if diff -u "$WORK/facts-plain" "$WORK/facts-with-namespace" >"$WORK/diff"; then ok; else
  fail "the chart's defaults and deploy/kubernetes/ differ:"$'\n'"$(cat "$WORK/diff")"
fi

# ---- the security facts ------------------------------------------------------------
CAPS_K8S="BPF,PERFMON,SETPCAP,SYSLOG,SYS_PTRACE"
expect() { # FACTS-FILE LINE...: each line present, exactly
  local file=$1 line
  shift
  # A check that failed above has no facts: its failure says why, once.
  [[ -s $WORK/$file ]] || return 0
  for line in "$@"; do
    if grep -Fxq -- "$line" "$WORK/$file"; then ok; else fail "$file: expected fact: $line"; fi
  done
}
expect_none() { # FACTS-FILE REGEX: no line matches
  [[ -s $WORK/$1 ]] || return 0
  if grep -Eq -- "$2" "$WORK/$1"; then fail "$1: unexpected: $(grep -E -- "$2" "$WORK/$1" | head -3)"; else ok; fi
}
expect facts-plain \
  "daemonset capscope/capscope hostPID=true hostNetwork=false hostIPC=false" \
  "daemonset capscope/capscope serviceAccountName=capscope automountToken=false" \
  "container capscope privileged=false" \
  "container capscope runAsUser=0" \
  "container capscope allowPrivilegeEscalation=false" \
  "container capscope readOnlyRootFilesystem=true" \
  "container capscope capabilities.drop=ALL" \
  "container capscope capabilities.add=$CAPS_K8S" \
  "container capscope seccompProfile=Unconfined" \
  "container capscope appArmorProfile=Unconfined" \
  "container capscope resources.limits.memory=128Mi" \
  "container capscope port metrics 2113/TCP" \
  "container capscope livenessProbe=httpGet /healthz port 2113" \
  "container capscope startupProbe=httpGet /healthz port 2113" \
  "container capscope args=--node-name=\$(NODE_NAME)" \
  "configmap capscope-config capscope.yaml: metrics-address=0.0.0.0:2113" \
  "container capscope mount /sys/fs/cgroup ro None <- hostPath /sys/fs/cgroup Directory" \
  "container capscope mount /run/containerd ro HostToContainer <- hostPath /run/containerd DirectoryOrCreate" \
  "container capscope mount /var/run/crio ro HostToContainer <- hostPath /var/run/crio DirectoryOrCreate" \
  "container capscope mount /var/lib/capscope rw None <- hostPath /var/lib/capscope DirectoryOrCreate" \
  "container capscope mount /var/log/capscope rw None <- hostPath /var/log/capscope DirectoryOrCreate" \
  "container capscope mount /var/run/capscope rw None <- hostPath /var/run/capscope DirectoryOrCreate" \
  "container capscope mount /etc/capscope/capscope.d ro None <- configMap capscope-config" \
  "container capscope mount /etc/capscope/policies ro None <- configMap capscope-policies" \
  "container capscope mount /tmp rw None <- emptyDir" \
  "namespace capscope label pod-security.kubernetes.io/enforce=privileged"
# Exactly those mounts: a new one is a decision to make here, with its reason.
mounts=$(grep -c '^container capscope mount ' "$WORK/facts-plain" || true)
if [[ $mounts == 9 || ! -s $WORK/facts-plain ]]; then ok; else fail "facts-plain: $mounts mounts, expected the 9 listed"; fi
# The host's /proc is not mounted (hostPID gives the container the node's /proc).
expect_none facts-plain ' mount /proc'
# Before Kubernetes 1.30 AppArmor is the annotation, not the field.
expect_none facts-kube-1.29 'appArmorProfile=Unconfined'
if grep -q 'container.apparmor.security.beta.kubernetes.io/capscope: unconfined' "$WORK/helm-kube-1.29.yaml"; then
  ok
else fail "helm render (kube-1.29): no AppArmor annotation"; fi
# With SYS_ADMIN added, no_new_privs must go (the API refuses both together).
expect facts-everything \
  "container capscope capabilities.add=BPF,PERFMON,SETPCAP,SYSLOG,SYS_ADMIN,SYS_PTRACE" \
  "container capscope allowPrivilegeEscalation=true" \
  "container capscope livenessProbe=none" \
  "container capscope mount /run/k3s/containerd ro HostToContainer <- hostPath /run/k3s/containerd DirectoryOrCreate" \
  "container capscope mount /var/run/docker.sock ro None <- hostPath /var/run/docker.sock Socket"

# ---- the systemd unit --------------------------------------------------------------
unit=deploy/systemd/capscope-agent.service
caps_unit=$(sed -n 's/^CapabilityBoundingSet=//p' "$unit" | tr ' ' '\n' | sed 's/^CAP_//' | sort | paste -sd,)
if [[ $caps_unit == "$CAPS_K8S" ]]; then ok; else
  fail "$unit: CapabilityBoundingSet ($caps_unit) is not the DaemonSet's ($CAPS_K8S)"
fi
# shellcheck disable=SC2016 # $MAINPID is systemd's, written as the unit writes it
for setting in Type=simple 'ExecStart=/usr/local/bin/capscope agent' 'ExecReload=/bin/kill -HUP $MAINPID' \
  ProtectSystem=strict ProtectHome=read-only NoNewPrivileges=yes LimitMEMLOCK=infinity \
  Restart=on-failure StateDirectory=capscope LogsDirectory=capscope RuntimeDirectory=capscope \
  'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK' \
  'ReadWritePaths=/var/lib/capscope /var/log/capscope /run/capscope'; do
  if grep -Fxq -- "$setting" "$unit"; then ok; else fail "$unit: no line $setting"; fi
done
# ProtectKernelTunables= hides /proc/kallsyms and ProtectKernelLogs= drops CAP_SYSLOG:
# either would make every no-audit probe read as a need.
for setting in ProtectKernelTunables ProtectKernelLogs ProtectProc=invisible; do
  if grep -q "^$setting" "$unit"; then fail "$unit: $setting breaks the agent (see the unit's comments)"; else ok; fi
done
if command -v systemd-analyze >/dev/null; then
  # A root of its own: the host's units for the dependencies, stand-ins for the
  # binaries the unit runs (verify checks they are executable), nothing started.
  sdroot=$WORK/sdroot
  mkdir -p "$sdroot/etc/systemd/system" "$sdroot/usr/lib/systemd" "$sdroot/usr/local/bin" "$sdroot/usr/bin"
  cp -a /usr/lib/systemd/system "$sdroot/usr/lib/systemd/"
  ln -s usr/bin "$sdroot/bin"
  printf '#!/bin/sh\n' >"$sdroot/usr/local/bin/capscope"
  printf '#!/bin/sh\n' >"$sdroot/usr/bin/kill"
  chmod +x "$sdroot/usr/local/bin/capscope" "$sdroot/usr/bin/kill"
  cp "$unit" "$sdroot/etc/systemd/system/"
  # verify exits 0 on warnings (an unknown key is "ignoring"): any output fails too.
  if out=$(systemd-analyze verify --man=no --root="$sdroot" capscope-agent.service 2>&1) && [[ -z $out ]]; then
    ok
  else fail "systemd-analyze verify $unit: $out"; fi
  exposure=$(systemd-analyze security --offline=yes --root="$sdroot" capscope-agent.service 2>/dev/null |
    sed -n 's/.*Overall exposure level for capscope-agent.service: \([0-9.]*\).*/\1/p')
  if [[ -n $exposure ]] && awk -v e="$exposure" 'BEGIN { exit !(e <= 5.0) }'; then
    ok
    echo "validate-deploy: systemd exposure level $exposure (systemd-analyze security)"
  else fail "systemd-analyze security: exposure ${exposure:-unknown}, above 5.0"; fi
else
  skip "systemd-analyze is not installed (Debian package systemd)"
fi

# ---- against a built capscope ------------------------------------------------------
bin=$BUILD_DIR/capscope
if [[ -x $bin ]] && "$bin" agent --help >"$WORK/agent-help" 2>&1 &&
  grep -q -- '--flush-interval' "$WORK/agent-help"; then
  # The agent's flags (--config names the file itself; -h/--help are not settings).
  grep -oE -- '--[a-z][a-z0-9-]+' "$WORK/agent-help" | sed 's/^--//' | sort -u |
    grep -vxE 'config|help' >"$WORK/flags"
  sed -n 's/^# \([a-z][a-z0-9-]*\):.*/\1/p' deploy/container/capscope.yaml | sort -u >"$WORK/example-keys"
  sed -n '/^agent:/,/^[^ #]/s/^  \([a-z][a-z0-9-]*\):.*/\1/p' deploy/helm/capscope/values.yaml |
    sort -u >"$WORK/values-keys"
  for keys in example-keys values-keys; do
    if diff "$WORK/flags" "$WORK/$keys" >"$WORK/diff"; then ok; else
      fail "$keys differ from the flags of capscope agent --help (< flag only, > key only):"$'\n'"$(cat "$WORK/diff")"
    fi
  done
  # The values, by the agent's own parser: the example with every key uncommented,
  # and the ConfigMaps the manifests and the chart make. Run as nobody with paths it
  # may write, the agent reads the files and the filters, then cannot trace (exit 1);
  # a configuration error is exit 2 with the file, line and key.
  sed -n 's/^# \([a-z][a-z0-9-]*:.*\)/\1/p' deploy/container/capscope.yaml >"$WORK/example.yaml"
  "$tool" data deploy/kubernetes/20-configmap.yaml capscope-config capscope.yaml >"$WORK/configmap-plain.yaml"
  "$tool" data "$WORK/helm-default.yaml" capscope-config capscope.yaml >"$WORK/configmap-helm.yaml"
  "$tool" data "$WORK/helm-everything.yaml" capscope-config capscope.yaml >"$WORK/configmap-everything.yaml"
  agent_dir=$WORK/agent
  mkdir -p "$agent_dir"
  chmod 0755 "$WORK"
  as_nobody=()
  if ((EUID == 0)); then
    chown 65534 "$agent_dir"
    as_nobody=(setpriv --reuid=65534 --regid=65534 --clear-groups)
  fi
  for config in example configmap-plain configmap-helm configmap-everything; do
    chmod 0644 "$WORK/$config.yaml"
    rc=0
    timeout 20 "${as_nobody[@]}" "$bin" agent --config "$WORK/$config.yaml" --db "$agent_dir/db" \
      --export-file "$agent_dir/events.json" --server-address "unix://$agent_dir/api.sock" \
      --metrics-address "" --policy-dir "$agent_dir" >"$WORK/agent.out" 2>&1 || rc=$?
    case $rc in
      1) ok ;;
      2) fail "$config.yaml: the agent refuses it: $(grep -v 'info:' "$WORK/agent.out")" ;;
      *) fail "$config.yaml: the agent exited $rc reading it (1 expected: read, then cannot trace): $(tail -2 "$WORK/agent.out")" ;;
    esac
  done
  # Every library the binary links, by Debian package, must be in the runtime stage.
  # The package names of the runtime stage's apt-get install: the words after
  # --no-install-recommends, to the end of the command (&&).
  runtime_pkgs=$(sed -n '/^FROM \${DEBIAN_SLIM_IMAGE}/,$p' deploy/container/Containerfile |
    sed -n '/--no-install-recommends/,/&&/p' | tr -d '\134' | tr -s '[:space:]' '\n' |
    sed -n '/--no-install-recommends/,/&&/p' | grep -E '^[a-z0-9][a-z0-9.+-]+$' | sort -u)
  for lib in $(readelf -d "$bin" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p'); do
    path=$(ldd "$bin" | awk -v l="$lib" '$1 == l { print $3 }')
    pkg=$(dpkg -S "$(readlink -f "$path")" 2>/dev/null || dpkg -S "$path" 2>/dev/null || true)
    pkg=${pkg%%:*}
    case $pkg in
      libc6 | libgcc-s1 | libstdc++6 | "") ;; # in debian:12-slim already
      *) if grep -qx "$pkg" <<<"$runtime_pkgs"; then ok; else
        fail "deploy/container/Containerfile: the runtime stage lacks $pkg (for $lib)"
      fi ;;
    esac
  done
else
  skip "no built capscope with an agent command at $bin: agent keys and image libraries not checked"
fi

elapsed=$(awk -v s="$START" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')
if ((${#failures[@]})); then
  echo "validate-deploy: ${#failures[@]} problem(s), $passed checks passed, ${#skipped[@]} skipped (${elapsed}s)" >&2
  exit 1
fi
echo "validate-deploy: ok: $passed checks passed, ${#skipped[@]} skipped (${elapsed}s)"
