#!/bin/sh
# verso-init: inbound capture for an injected pod (the verso-init init container).
# Redirects the pod's routed app port(s) to the proxy with nat PREROUTING rules: HTTP ports to
# the proxy's HTTP listener, gRPC/h2c ports to its gRPC listener. PREROUTING only sees traffic
# arriving from outside the pod, so the proxy's own connections (to the app on 127.0.0.1, to
# peers) are never looped back into it.
#
# Env (written by the webhook, see shared/pod-env.ts):
#   VERSO_CAPTURE_PORTS       comma-separated HTTP ports to redirect, e.g. "8080"
#   VERSO_LISTEN              the proxy's HTTP host:port (default 0.0.0.0:15006)
#   VERSO_CAPTURE_GRPC_PORTS  comma-separated gRPC/h2c ports to redirect, e.g. "9090"
#   VERSO_GRPC_LISTEN         the proxy's gRPC host:port (default 0.0.0.0:15007)
#   IPTABLES                  iptables binary to use (default: iptables)
#
# Idempotent: the rules live in a VERSO_INBOUND chain that is flushed and refilled, and the
# jump from PREROUTING is added only once, so a re-run (init container restart) changes nothing.
# Every value is checked before any rule is touched, so bad input leaves the table as it was.
set -eu

IPT="${IPTABLES:-iptables}"
PORTS="${VERSO_CAPTURE_PORTS:-}"
LISTEN="${VERSO_LISTEN:-0.0.0.0:15006}"
PROXY_PORT="${LISTEN##*:}"
GRPC_PORTS="${VERSO_CAPTURE_GRPC_PORTS:-}"
GRPC_LISTEN="${VERSO_GRPC_LISTEN:-0.0.0.0:15007}"
GRPC_PROXY_PORT="${GRPC_LISTEN##*:}"
CHAIN=VERSO_INBOUND

valid_port() {
  case "$1" in
    '' | *[!0-9]*) return 1 ;;
  esac
  [ "$1" -ge 1 ] && [ "$1" -le 65535 ]
}

# check_ports VAR LIST: every item of LIST is a port number.
check_ports() {
  for port in $(echo "$2" | tr ',' ' '); do
    valid_port "$port" || { echo "verso-init: bad port '$port' in $1" >&2; exit 1; }
  done
}

valid_port "$PROXY_PORT" || { echo "verso-init: bad VERSO_LISTEN '$LISTEN'" >&2; exit 1; }
if [ -z "$PORTS" ] && [ -z "$GRPC_PORTS" ]; then
  echo "verso-init: VERSO_CAPTURE_PORTS and VERSO_CAPTURE_GRPC_PORTS are empty, nothing to capture"
  exit 0
fi
check_ports VERSO_CAPTURE_PORTS "$PORTS"
if [ -n "$GRPC_PORTS" ]; then
  valid_port "$GRPC_PROXY_PORT" \
    || { echo "verso-init: bad VERSO_GRPC_LISTEN '$GRPC_LISTEN'" >&2; exit 1; }
  check_ports VERSO_CAPTURE_GRPC_PORTS "$GRPC_PORTS"
  # A port in both lists would go to whichever rule comes first: refuse rather than guess.
  for port in $(echo "$GRPC_PORTS" | tr ',' ' '); do
    case ",$PORTS," in
      *",$port,"*)
        echo "verso-init: port $port is in both VERSO_CAPTURE_PORTS and VERSO_CAPTURE_GRPC_PORTS" >&2
        exit 1
        ;;
    esac
  done
fi

"$IPT" -w -t nat -N "$CHAIN" 2>/dev/null || true
"$IPT" -w -t nat -F "$CHAIN"
for port in $(echo "$PORTS" | tr ',' ' '); do
  "$IPT" -w -t nat -A "$CHAIN" -p tcp --dport "$port" -j REDIRECT --to-ports "$PROXY_PORT"
done
for port in $(echo "$GRPC_PORTS" | tr ',' ' '); do
  "$IPT" -w -t nat -A "$CHAIN" -p tcp --dport "$port" -j REDIRECT --to-ports "$GRPC_PROXY_PORT"
done
"$IPT" -w -t nat -C PREROUTING -p tcp -j "$CHAIN" 2>/dev/null \
  || "$IPT" -w -t nat -A PREROUTING -p tcp -j "$CHAIN"

[ -z "$PORTS" ] || echo "verso-init: tcp ports $PORTS -> $PROXY_PORT"
[ -z "$GRPC_PORTS" ] || echo "verso-init: grpc tcp ports $GRPC_PORTS -> $GRPC_PROXY_PORT"
"$IPT" -w -t nat -S "$CHAIN"
