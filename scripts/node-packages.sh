#!/usr/bin/env bash
# Debian packages the tests use, installed when missing (root only; otherwise the suites that
# need them skip with the reason):
#   the real node:  containerd, runc, containernetworking-plugins (bridge, host-local,
#                   portmap in /usr/lib/cni), iptables, iproute2 (ip, nsenter via util-linux)
#   the images:     busybox-static (the images' /bin/sh and tools)
#   other suites:   curl, prometheus (+ promtool), chromium (the dashboard test)
set -euo pipefail
packages=(containerd runc containernetworking-plugins iptables iproute2 busybox-static curl prometheus chromium)
missing=()
for cmd_pkg in containerd:containerd runc:runc /usr/lib/cni/bridge:containernetworking-plugins \
  iptables:iptables ip:iproute2 /usr/bin/busybox:busybox-static curl:curl prometheus:prometheus \
  chromium:chromium; do
  cmd="${cmd_pkg%%:*}" pkg="${cmd_pkg#*:}"
  if [[ "$cmd" == /* ]]; then [[ -e "$cmd" ]] || missing+=("$pkg"); else command -v "$cmd" >/dev/null || missing+=("$pkg"); fi
done
if ((${#missing[@]} == 0)); then
  echo "debian packages: all present (${packages[*]})"
  exit 0
fi
if [[ "$(id -u)" != 0 ]]; then
  echo "not root: cannot install ${missing[*]}; the suites that need them will skip with the reason"
  exit 0
fi
echo "installing ${missing[*]}"
apt-get update -qq || echo "apt-get update failed; trying the install anyway"
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
  echo "could not install ${missing[*]}; the suites that need them will skip with the reason"
