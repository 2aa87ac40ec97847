#!/usr/bin/env bash
# Build (or locate) verso-grafana-lint (scripts/grafana-lint/main.go says what it checks), which
# the observability tests run on deploy/observability/grafana-dashboard.json. It is compiled
# from its own module (scripts/grafana-lint/go.mod and go.sum pin
# github.com/grafana/grafana-foundation-sdk/go, fetched through the Go module proxy) and cached
# by that version outside the git tree:
#   ${VERSO_CACHE:-$HOME/.cache/verso}/grafana-lint/<version>/bin/verso-grafana-lint
# A stamp next to the binary holds the hash of main.go, go.mod and go.sum: an edit rebuilds it.
#
# Usage: scripts/build-grafana-lint.sh    # prints the binary's path on the last line of stdout
#        "$(bash scripts/build-grafana-lint.sh)" deploy/observability/grafana-dashboard.json
# Env:   VERSO_CACHE, VERSO_GO_P (default 2)
set -euo pipefail

LINT_DIR="$(cd "$(dirname "$0")" && pwd)/grafana-lint"
# The SDK version go.mod pins (the cache is keyed by it).
SDK_VERSION="$(sed -n 's#^require github.com/grafana/grafana-foundation-sdk/go \(v[^ ]*\)$#\1#p' \
  "$LINT_DIR/go.mod")"
CACHE_ROOT="${VERSO_CACHE:-$HOME/.cache/verso}/grafana-lint/${SDK_VERSION:-unknown}"
BIN="${CACHE_ROOT}/bin"
SRC="${CACHE_ROOT}/src"
TIMES="${CACHE_ROOT}/build-times.txt"
LOG_NAME=build-grafana-lint
# shellcheck source=lib/go-build.sh
source "$(dirname "$0")/lib/go-build.sh"
go_env

[[ -n "$SDK_VERSION" ]] || {
  log "no github.com/grafana/grafana-foundation-sdk/go version in $LINT_DIR/go.mod"
  exit 1
}

mkdir -p "$BIN" "$SRC"

# One build at a time per version (parallel test files may all ask on a cold cache).
lock_cache "$CACHE_ROOT"

stamp() { cat "$LINT_DIR/main.go" "$LINT_DIR/go.mod" "$LINT_DIR/go.sum" | sha256sum | cut -c1-16; }

if [[ -x "$BIN/verso-grafana-lint" ]] &&
  [[ "$(cat "$BIN/verso-grafana-lint.stamp" 2>/dev/null)" == "$(stamp)" ]]; then
  log "verso-grafana-lint: cached at $BIN/verso-grafana-lint"
  echo "$BIN/verso-grafana-lint"
  exit 0
fi

command -v go >/dev/null 2>&1 || {
  log "go toolchain not found on PATH; install Go >= 1.26"
  exit 1
}

# Built from a copy: `go build -mod=mod` may touch go.mod/go.sum, never the tree's.
log "grafana-foundation-sdk ${SDK_VERSION}: copying $LINT_DIR to $SRC"
cp "$LINT_DIR/main.go" "$LINT_DIR/go.mod" "$LINT_DIR/go.sum" "$SRC/"
go_build verso-grafana-lint "$SRC" . "-s -w" "$BIN/verso-grafana-lint" "$TIMES"
stamp >"$BIN/verso-grafana-lint.stamp"

echo "$BIN/verso-grafana-lint"
