#!/bin/bash
# Set up a fresh Debian machine (as root) for nsdn: the Debian packages it and its tests use,
# the npm packages, and the TypeScript build. Idempotent: installs only what is missing.
# `scripts/setup.sh bench` adds what the benchmark's anchor scripts need.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
want() { dpkg-query -W -f '${Status}' "$1" 2>/dev/null | grep -q 'ok installed' || need+=("$1"); }
for p in iproute2 iputils-ping openvswitch-switch iperf3 strace nftables ethtool \
         containernetworking-plugins; do want "$p"; done
if [ "${1:-}" = bench ]; then for p in python3-pyroute2 mininet bridge-utils; do want "$p"; done; fi
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}" >&2
  apt-get update -qq
  # policy-rc.d keeps the package scripts from starting a system-wide OVS: nsdn starts its own.
  ours=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; ours=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
  if [ $ours = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund >&2
fi
npx tsc -p tsconfig.json
