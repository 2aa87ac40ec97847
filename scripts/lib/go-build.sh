# Shared by the scripts that compile Go programs from their modules (build-kube.sh,
# build-helm.sh, build-grafana-lint.sh): the Go environment, one build at a time per cache dir, and a build with a
# heartbeat and its time recorded. Source it after setting LOG_NAME.
#
#   go_env                       GOTOOLCHAIN=local, CGO_ENABLED=0, no VCS stamping
#   lock_cache DIR               flock DIR/.lock on fd 9 (waits, saying so, when held)
#   go_build NAME DIR PKG LDFLAGS OUT TIMES
#                                go build PKG in module DIR to OUT, printing a heartbeat every
#                                30 s, and appends "NAME <seconds>s <date>" to TIMES

log() { printf '[%s %s] %s\n' "${LOG_NAME:-build}" "$(date +%H:%M:%S)" "$*" >&2; }

go_env() {
  export GOTOOLCHAIN=local
  export CGO_ENABLED=0
  export GOFLAGS="-buildvcs=false"
}

lock_cache() {
  command -v flock >/dev/null 2>&1 || return 0
  exec 9>"$1/.lock"
  if ! flock -n 9; then
    log "another build holds $1/.lock; waiting for it"
    flock 9
  fi
}

go_build() {
  local name="$1" dir="$2" pkg="$3" ldflags="$4" out="$5" times="$6"
  local start end
  start=$(date +%s)
  log "building $name from $pkg (minutes on 2 cores when the Go cache is cold)"
  (
    cd "$dir"
    # Print a heartbeat so long compiles are visibly alive.
    while sleep 30; do log "  ... still building $name ($(($(date +%s) - start))s)"; done 9>&- & # closed fd 9: an orphaned sleep must not hold the build lock
    hb=$!
    trap 'kill $hb 2>/dev/null || true' EXIT
    go build -mod=mod -p "${VERSO_GO_P:-2}" -trimpath -ldflags "$ldflags" -o "$out.tmp" "$pkg"
  )
  mv "$out.tmp" "$out"
  end=$(date +%s)
  log "built $name in $((end - start))s"
  echo "$name $((end - start))s $(date -u +%Y-%m-%dT%H:%M:%SZ)" >>"$times"
}
