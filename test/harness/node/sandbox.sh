#!/usr/bin/env bash
# The real node's sandbox and its watchdog. Run as
#   unshare --net --mount --propagation private --fork bash sandbox.sh CGROUP DIR
# so everything the node starts lives in this network namespace (iptables rules, the cni0
# bridge, pod veths) and this mount namespace (tmpfs over the paths containerd and CNI
# hard-code), and every process the harness starts in it is put in the cgroup tree /CGROUP.
#
# It prints `ready <pid>` once set up (the harness enters the namespaces with nsenter -t <pid>),
# then waits for its stdin to close. The harness holds the other end of that pipe, so the
# teardown below runs however the harness ends: stop(), Ctrl-C, SIGTERM, or SIGKILL (the kernel
# closes the pipe). Teardown kills every process in /CGROUP (daemons, shims, containers) until
# none is left, removes the cgroups, and exits: the namespaces, and with them the veth pair,
# the routes through it, the rules and the mounts, go with the last process.
set -uo pipefail

CGROUP="$1"
DIR="$2"
FREEZER=/sys/fs/cgroup/freezer/$CGROUP

log() { printf '[sandbox %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# pids_in TREE: every pid in the cgroup TREE and below.
pids_in() {
  find "$1" -name cgroup.procs -exec cat {} + 2>/dev/null
}

teardown() {
  trap '' TERM INT HUP
  # Out of the tree first: what this shell forks below (find, kill, sleep) must not be found.
  echo $$ >/sys/fs/cgroup/freezer/cgroup.procs
  local round pids
  for round in $(seq 1 50); do
    pids="$(pids_in "$FREEZER")"
    [ -z "$pids" ] && break
    # shellcheck disable=SC2086 # one pid per word
    kill -KILL $pids 2>/dev/null
    sleep 0.1
  done
  [ -n "${pids:-}" ] && log "processes still in $FREEZER after ${round} rounds: $pids"
  # Deepest first: a cgroup can only go once its children have.
  for hierarchy in /sys/fs/cgroup/*/; do
    [ -d "$hierarchy$CGROUP" ] || continue
    find "$hierarchy$CGROUP" -depth -type d -exec rmdir {} + 2>/dev/null
    [ -d "$hierarchy$CGROUP" ] && log "could not remove $hierarchy$CGROUP"
  done
  if [ "${1:-}" = orphaned ]; then
    # Nobody will read the logs of a harness that died: the directory goes too. Its mounts
    # (the kubelet's volumes) are in this mount namespace: unmounted first, deepest first.
    grep -o " $DIR/[^ ]*" /proc/self/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null
    rm -rf "$DIR"
  fi
  log "torn down"
  exit 0
}

# The sandbox is in the tree while it runs, so what it leaves behind is found too.
echo $$ >"$FREEZER/cgroup.procs"

ip link set lo up
sysctl -qw net.ipv4.ip_forward=1
# Per network namespace since Linux 5.3: pod -> ClusterIP -> pod on the same bridge needs
# bridged traffic to pass iptables (kube-proxy's DNAT), or the reply bypasses conntrack.
sysctl -qw net.bridge.bridge-nf-call-iptables=1 2>/dev/null || log "bridge-nf-call-iptables unavailable"
sysctl -qw net.ipv4.conf.all.route_localnet=1

# containerd hard-codes /run/containerd/s for shim sockets and CNI pod netns live in
# /run/netns: private tmpfs here, so nothing of the node is written to the host's /run.
for path in /run/containerd /run/netns /var/lib/cni; do
  mkdir -p "$path"
  mount -t tmpfs -o mode=755 tmpfs "$path"
done
mount --make-shared /run/netns 2>/dev/null || true
mkdir -p "$DIR"

trap 'teardown orphaned' TERM INT HUP
echo "ready $$"
# Wait for the harness: `stop`, or EOF on stdin (it died), starts the teardown.
while read -r line; do
  [ "$line" = stop ] && teardown
done
teardown orphaned
