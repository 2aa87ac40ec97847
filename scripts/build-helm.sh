#!/usr/bin/env bash
# Build (or locate) the helm binary the chart tests need (test/cluster/helm.test.ts).
# No prebuilt binary is downloaded: helm is compiled from its Go module (helm.sh/helm/vN)
# fetched through the Go module proxy, and cached by version outside the git tree:
#   ${VERSO_CACHE:-$HOME/.cache/verso}/helm/<version>/bin/helm
#
# A helm already in $VERSO_HELM_BIN (a directory) is symlinked into the cache instead of being
# built, so machines that ship helm skip the compile.
#
# Usage: scripts/build-helm.sh            # prints the binary's path on the last line of stdout
# Env:   VERSO_HELM_VERSION (default v4.3.1; v3.x works too), VERSO_CACHE, VERSO_GO_P (default 2)
set -euo pipefail

HELM_VERSION="${VERSO_HELM_VERSION:-v4.3.1}"
CACHE_ROOT="${VERSO_CACHE:-$HOME/.cache/verso}/helm/${HELM_VERSION}"
BIN="${CACHE_ROOT}/bin"
SRC="${CACHE_ROOT}/src"
TIMES="${CACHE_ROOT}/build-times.txt"
LOG_NAME=build-helm
# shellcheck source=lib/go-build.sh
source "$(dirname "$0")/lib/go-build.sh"
go_env

# The module path carries the major version (helm.sh/helm/v3, helm.sh/helm/v4).
major="${HELM_VERSION#v}"
major="${major%%.*}"
[[ "$major" =~ ^[0-9]+$ ]] || {
  log "VERSO_HELM_VERSION=${HELM_VERSION} is not a vMAJOR.MINOR.PATCH version"
  exit 1
}
MODULE="helm.sh/helm/v${major}"

mkdir -p "$BIN" "$SRC"

# One build at a time per version (parallel test files may all ask on a cold cache).
lock_cache "$CACHE_ROOT"

if [[ -x "$BIN/helm" ]]; then
  log "helm: cached at $BIN/helm"
  echo "$BIN/helm"
  exit 0
fi

if [[ -n "${VERSO_HELM_BIN:-}" && -x "${VERSO_HELM_BIN}/helm" ]]; then
  log "helm: using existing ${VERSO_HELM_BIN}/helm"
  ln -sf "${VERSO_HELM_BIN}/helm" "$BIN/helm"
  echo "$BIN/helm"
  exit 0
fi

command -v go >/dev/null 2>&1 || {
  log "go toolchain not found on PATH; install Go >= 1.26 or set VERSO_HELM_BIN"
  exit 1
}

# A throwaway module that requires helm at the wanted version: building helm's main package
# from it resolves exactly helm's own dependency versions (helm's go.mod has no replaces).
prepare_module() {
  local dir="$SRC/helm"
  [[ -f "$dir/go.mod" ]] && return 0
  mkdir -p "$dir"
  log "resolving ${MODULE}@${HELM_VERSION} through the module proxy"
  local gomod
  gomod="$(cd "$dir" && go mod download -json "${MODULE}@${HELM_VERSION}" |
    sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p')"
  [[ -f "$gomod" ]] || {
    log "could not download go.mod for ${MODULE}@${HELM_VERSION}"
    exit 1
  }
  cat >"$dir/go.mod.tmp" <<EOF
module verso.local/helmbuild

go $(sed -n 's/^go \([0-9.]*\)$/\1/p' "$gomod")

require ${MODULE} ${HELM_VERSION}
EOF
  mv "$dir/go.mod.tmp" "$dir/go.mod"
}

# The same -X flags as helm's Makefile, so `helm version` reports the real release (otherwise
# it prints the bare "v4.3" default compiled into internal/version).
helm_ldflags() {
  local pkg="${MODULE}/internal/version"
  printf '%s' "-s -w -X ${pkg}.version=${HELM_VERSION} -X ${pkg}.gitTreeState=clean"
}

prepare_module
go_build helm "$SRC/helm" "${MODULE}/cmd/helm" "$(helm_ldflags)" "$BIN/helm" "$TIMES"

"$BIN/helm" version --short >&2
echo "$BIN/helm"
