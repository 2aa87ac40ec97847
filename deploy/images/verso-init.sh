#!/bin/sh
# verso-init: inbound capture for an injected pod (the verso-init init container).
# Redirects the pod's routed app port(s) to the proxy with a nat PREROUTING rule. PREROUTING
# only sees traffic arriving from outside the pod, so the proxy's own connections (to the app
# on 127.0.0.1, to peers) are never looped back into it.
#
# Env (written by the webhook, see shared/pod-env.ts):
#   VERSO_CAPTURE_PORTS  comma-separated ports to redirect, e.g. "8080"
#   VERSO_LISTEN         the proxy's inbound host:port (default 0.0.0.0:15006)
#   IPTABLES             iptables binary to use (default: iptables)
#
# Idempotent: the rules live in a VERSO_INBOUND chain that is flushed and refilled, and the
# jump from PREROUTING is added only once, so a re-run (init container restart) changes nothing.
set -eu

IPT="${IPTABLES:-iptables}"
PORTS="${VERSO_CAPTURE_PORTS:-}"
LISTEN="${VERSO_LISTEN:-0.0.0.0:15006}"
PROXY_PORT="${LISTEN##*:}"
CHAIN=VERSO_INBOUND

valid_port() {
  case "$1" in
    '' | *[!0-9]*) return 1 ;;
  esac
  [ "$1" -ge 1 ] && [ "$1" -le 65535 ]
}

valid_port "$PROXY_PORT" || { echo "verso-init: bad VERSO_LISTEN '$LISTEN'" >&2; exit 1; }
if [ -z "$PORTS" ]; then
  echo "verso-init: VERSO_CAPTURE_PORTS is empty, nothing to capture"
  exit 0
fi

"$IPT" -w -t nat -N "$CHAIN" 2>/dev/null || true
"$IPT" -w -t nat -F "$CHAIN"
for port in $(echo "$PORTS" | tr ',' ' '); do
  valid_port "$port" || { echo "verso-init: bad port '$port' in VERSO_CAPTURE_PORTS" >&2; exit 1; }
  "$IPT" -w -t nat -A "$CHAIN" -p tcp --dport "$port" -j REDIRECT --to-ports "$PROXY_PORT"
done
"$IPT" -w -t nat -C PREROUTING -p tcp -j "$CHAIN" 2>/dev/null \
  || "$IPT" -w -t nat -A PREROUTING -p tcp -j "$CHAIN"

echo "verso-init: tcp ports $PORTS -> $PROXY_PORT"
"$IPT" -w -t nat -S "$CHAIN"
