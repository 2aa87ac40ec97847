#!/usr/bin/env bash
# Build (or locate) the Kubernetes binaries the cluster tier needs:
#   control plane: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl
#   the node:      kubelet, kube-proxy, coredns (the cluster DNS: scripts/coredns/main.go)
# No prebuilt binaries are downloaded: everything is compiled from Go modules fetched through
# the Go module proxy. Results are cached by version outside the git tree:
#   ${VERSO_CACHE:-$HOME/.cache/verso}/kube/<version>/bin/
#
# Binaries already present in $VERSO_KUBE_BIN, $KUBEBUILDER_ASSETS or on PATH are symlinked
# into the cache dir instead of being built (kubectl from PATH only when VERSO_BUILD_KUBECTL=0).
#
# Usage: scripts/build-kube.sh            # prints the bin dir on the last line of stdout
# Env:   VERSO_KUBE_VERSION (default v1.36.3), VERSO_ETCD_VERSION (default v3.6.16),
#        VERSO_CACHE, VERSO_BUILD_KUBECTL (default 1), VERSO_GO_P (default 2)
set -euo pipefail

KUBE_VERSION="${VERSO_KUBE_VERSION:-v1.36.3}"
ETCD_VERSION="${VERSO_ETCD_VERSION:-v3.6.16}"
CACHE_ROOT="${VERSO_CACHE:-$HOME/.cache/verso}/kube/${KUBE_VERSION}"
BIN="${CACHE_ROOT}/bin"
SRC="${CACHE_ROOT}/src"
TIMES="${CACHE_ROOT}/build-times.txt"
LOG_NAME=build-kube
# shellcheck source=lib/go-build.sh
source "$(dirname "$0")/lib/go-build.sh"
go_env

mkdir -p "$BIN" "$SRC"

# One build at a time per version (a test run and `make demo` may both ask).
lock_cache "$CACHE_ROOT"

# usable NAME PATH: etcd older than 3.5 (e.g. Debian's 3.4) cannot serve kube-apiserver 1.36.
usable() {
  local name="$1" path="$2" v
  [[ "$name" != etcd ]] && return 0
  v="$("$path" --version 2>/dev/null | sed -n 's/^etcd Version: \([0-9]*\)\.\([0-9]*\).*/\1 \2/p')"
  read -r major minor <<<"$v"
  if [[ -z "${major:-}" ]] || ((major < 3 || (major == 3 && minor < 5))); then
    log "ignoring $path (etcd ${major:-?}.${minor:-?}; need >= 3.5)"
    return 1
  fi
}

# find_existing NAME: prints a path to an existing binary from the configured locations.
find_existing() {
  local name="$1" dir
  for dir in "${VERSO_KUBE_BIN:-}" "${KUBEBUILDER_ASSETS:-}"; do
    if [[ -n "$dir" && -x "$dir/$name" ]] && usable "$name" "$dir/$name"; then
      echo "$dir/$name"
      return 0
    fi
  done
  if [[ "$name" != kubectl ]] && command -v "$name" >/dev/null 2>&1 &&
    usable "$name" "$(command -v "$name")"; then
    command -v "$name"
    return 0
  fi
  return 1
}

# ---------------------------------------------------------------------------------------------
# Kubernetes build module: requires k8s.io/kubernetes and replaces every staging module
# (which kubernetes' own go.mod maps to ./staging/...) with its published v0.X.Y version.
# ---------------------------------------------------------------------------------------------
prepare_kube_module() {
  local dir="$SRC/kubernetes"
  [[ -f "$dir/go.mod" && -f "$dir/.ready" ]] && return 0
  mkdir -p "$dir"
  log "resolving k8s.io/kubernetes@${KUBE_VERSION} through the module proxy"
  local gomod
  gomod="$(cd "$dir" && go mod download -json "k8s.io/kubernetes@${KUBE_VERSION}" |
    sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p')"
  [[ -f "$gomod" ]] || {
    log "could not download go.mod for k8s.io/kubernetes@${KUBE_VERSION}"
    exit 1
  }
  local staging_version="v0.${KUBE_VERSION#v1.}"
  {
    echo "module verso.local/kubebuild"
    echo
    echo "go $(sed -n 's/^go \([0-9.]*\)$/\1/p' "$gomod")"
    echo
    echo "require k8s.io/kubernetes ${KUBE_VERSION}"
    echo
    echo "replace ("
    sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/.*$#\t\1 => \1 '"${staging_version}"'#p' "$gomod"
    echo ")"
  } >"$dir/go.mod"
  log "build module written to $dir/go.mod ($(grep -c '=>' "$dir/go.mod") staging replaces at ${staging_version})"
  touch "$dir/.ready"
}

prepare_etcd_module() {
  local dir="$SRC/etcd"
  [[ -f "$dir/go.mod" ]] && return 0
  mkdir -p "$dir"
  cat >"$dir/go.mod" <<EOF
module verso.local/etcdbuild

go 1.24

require go.etcd.io/etcd/server/v3 ${ETCD_VERSION}
EOF
}

COREDNS_VERSION="${VERSO_COREDNS_VERSION:-v1.14.7}"
COREDNS_MAIN="$(cd "$(dirname "$0")" && pwd)/coredns/main.go"

# CoreDNS with only the plugins the node needs (scripts/coredns/main.go says why). The stamp
# holds the main's hash: an edited plugin list rebuilds the binary.
prepare_coredns_module() {
  local dir="$SRC/coredns"
  mkdir -p "$dir"
  cp "$COREDNS_MAIN" "$dir/main.go"
  printf 'module verso.local/coredns\n\ngo 1.26\n\nrequire github.com/coredns/coredns %s\n' \
    "$COREDNS_VERSION" >"$dir/go.mod"
}

coredns_stamp() { echo "${COREDNS_VERSION} $(sha256sum "$COREDNS_MAIN" | cut -c1-16)"; }

kube_ldflags() {
  local v="${KUBE_VERSION#v}"
  local major="${v%%.*}" rest="${v#*.}"
  local minor="${rest%%.*}"
  local pkg=k8s.io/component-base/version
  local clientpkg=k8s.io/client-go/pkg/version
  printf '%s' "-s -w \
-X ${pkg}.gitVersion=${KUBE_VERSION} -X ${pkg}.gitMajor=${major} -X ${pkg}.gitMinor=${minor} \
-X ${pkg}.gitTreeState=clean -X ${pkg}.buildDate=1970-01-01T00:00:00Z \
-X ${clientpkg}.gitVersion=${KUBE_VERSION} -X ${clientpkg}.gitMajor=${major} -X ${clientpkg}.gitMinor=${minor}"
}

# build NAME MODULE_DIR PACKAGE LDFLAGS
build() { go_build "$1" "$2" "$3" "$4" "$BIN/$1" "$TIMES"; }

ensure() {
  local name="$1"
  if [[ -x "$BIN/$name" ]] && { [[ "$name" != coredns ]] || [[ "$(cat "$BIN/coredns.stamp" 2>/dev/null)" == "$(coredns_stamp)" ]]; }; then
    log "$name: cached at $BIN/$name"
    return 0
  fi
  local existing
  if [[ "$name" != kubectl && "$name" != coredns || "${VERSO_BUILD_KUBECTL:-1}" == 0 ]] && existing="$(find_existing "$name")"; then
    log "$name: using existing $existing"
    ln -sf "$existing" "$BIN/$name"
    return 0
  fi
  # Only a build needs Go: cached or existing binaries are enough without it.
  command -v go >/dev/null 2>&1 || {
    log "go toolchain not found on PATH; install Go >= 1.26 or set VERSO_KUBE_BIN"
    exit 1
  }
  case "$name" in
    coredns)
      prepare_coredns_module
      build coredns "$SRC/coredns" . "-s -w"
      coredns_stamp >"$BIN/coredns.stamp"
      ;;
    etcd)
      prepare_etcd_module
      build etcd "$SRC/etcd" go.etcd.io/etcd/server/v3 "-s -w"
      ;;
    *)
      prepare_kube_module
      build "$name" "$SRC/kubernetes" "k8s.io/kubernetes/cmd/$name" "$(kube_ldflags)"
      ;;
  esac
}

# One binary at a time: each link needs ~2 GiB of RAM.
# The node's binaries come last: after the apiserver has filled the Go build cache they take
# about a minute together (kubelet ~40 s, kube-proxy ~17 s, kube-scheduler ~10 s).
for name in etcd kube-apiserver kube-controller-manager kubectl kube-scheduler kubelet kube-proxy coredns; do
  ensure "$name"
done

log "all binaries ready in $BIN"
echo "$BIN"
