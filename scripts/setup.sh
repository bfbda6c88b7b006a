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
# ethtool: the --explain lines of the OVS drivers run it (ip netns exec NS ethtool -K ...).
want ethtool
# tcpdump: the web view's packet capture of a link (src/web/capture.ts).
want tcpdump
# cc builds the CNI plugin shim and nsdn-init; busybox-static is the test image of the runtime
# and of podman (CNI backend), the real client of the CNI root test.
for p in gcc libc6-dev podman crun conmon busybox-static; do want "$p"; done
# chromium: the browser the web view's tests drive (playwright-core, no browser download);
# curl: the lab serve help examples are checked with it
want chromium; want curl
if [ "${1:-}" = bench ]; then for p in python3-pyroute2 mininet bridge-utils; do want "$p"; done; fi
# the runtime benchmark's anchor: LXC with its busybox template
if [ "${1:-}" = bench ]; then for p in lxc liblxc-common; do want "$p"; done; fi
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
# The CLI and the CNI plugins' Node fallback, each as one file with V8's code cache
# (src/bundle.ts).
node scripts/bundle.js
# The installed CNI plugin: a small C shim that forwards to the nsdn agent (src/cni/shim).
if [ ! -x dist/shim/nsdn-cni-shim ] || [ src/cni/shim/shim.c -nt dist/shim/nsdn-cni-shim ]; then
  mkdir -p dist/shim && cc -O2 -Wall -o dist/shim/nsdn-cni-shim src/cni/shim/shim.c
fi
# nsdn-netns makes and deletes a big lab's namespaces beside nsdn (src/netns/helper.ts)
if [ ! -x dist/nsdn-netns ] || [ src/netns/helper.c -nt dist/nsdn-netns ]; then
  cc -O2 -Wall -static -o dist/nsdn-netns src/netns/helper.c
fi
# nsdn-init, the containers' PID 1: static, so it needs nothing from a container's root
if [ ! -x dist/nsdn-init ] || [ src/runtime/init/init.c -nt dist/nsdn-init ]; then
  cc -O2 -Wall -static -o dist/nsdn-init src/runtime/init/init.c
fi
