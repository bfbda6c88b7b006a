#!/bin/bash
# A real CNI client: podman 4 (Debian, CNI network backend) runs a container from a local root
# filesystem on a network whose conflist uses nsdn's plugins (nsdn-bridge, nsdn-portmap, and
# the reference tuning plugin after them), and the container pings its gateway. `podman run
# --rm` tears the attachment down through CNI DEL; the script then checks nothing is left.
#
# Run it as root inside a sandbox (nothing reaches the host's network or disk):
#   node dist/src/cli/main.js sandbox -- bash scripts/podman-cni.sh [agent|node]
# `agent` (default): the installed shims forward to a running `nsdn cni agent`; `node`: no
# agent, every call runs in a Node process. It carries what podman 4.3 needs on this kind of
# host (cgroups off, rlimits at the hard limits, relative busybox links).
# Prints "podman-cni: ok" at the end; exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=${1:-agent}
[ "${NSDN_SANDBOX:-}" = 1 ] || { echo "podman-cni: run me inside nsdn sandbox" >&2; exit 64; }
for p in podman crun conmon busybox; do
  command -v $p >/dev/null || { echo "podman-cni: $p is not installed" >&2; exit 69; }
done

S=$(mktemp -d /run/nsdn-podman.XXXXXX)         # /run is the sandbox's own tmpfs
NSDN="node $PWD/dist/src/cli/main.js"
# podman's state: /var/lib/cni (libcni's cache), /dev/shm (its lock segment), and cgroups:
# a fresh sysfs hides the host's cgroup mounts; containers run with --cgroups=disabled.
mount -t tmpfs nsdn-podman-cni /var/lib/cni
mount -t tmpfs -o mode=1777 nsdn-podman-shm /dev/shm
[ "$(stat -f -c %T /sys/fs/cgroup)" = cgroup2fs ] || mount -t cgroup2 none /sys/fs/cgroup
ip link set lo up

# The root filesystem: static busybox with relative links (absolute ones break in the rootfs).
R=$S/rootfs
mkdir -p "$R"/{bin,etc,proc,sys,dev,tmp}
cp "$(command -v busybox)" "$R/bin/busybox"
for a in $(busybox --list | grep -vx busybox); do ln -sf busybox "$R/bin/$a"; done

# nsdn's plugins, and (agent mode) the agent they forward to.
SOCK=$S/agent.sock
[ "$MODE" = agent ] || SOCK=$S/no-agent.sock
$NSDN cni install "$S/bin" --socket "$SOCK" >/dev/null
if [ "$MODE" = agent ]; then
  NSDN_LOG_LEVEL=info $NSDN cni agent --socket "$SOCK" 2>"$S/agent.log" &
  AGENT=$!
  trap 'kill $AGENT 2>/dev/null || true' EXIT
  for _ in $(seq 100); do [ -S "$SOCK" ] && break; sleep 0.1; done
fi

mkdir -p "$S/net.d" "$S/tmp"
cat > "$S/net.d/nsdnpod.conflist" <<JSON
{
  "cniVersion": "1.0.0",
  "name": "nsdnpod",
  "plugins": [
    {"type": "nsdn-bridge", "bridge": "nsdnpod0", "isGateway": true, "hairpinMode": true,
     "ipam": {"type": "host-local", "routes": [{"dst": "0.0.0.0/0"}], "dataDir": "$S/ipam",
              "ranges": [[{"subnet": "10.216.0.0/24", "gateway": "10.216.0.1"}]]}},
    {"type": "nsdn-portmap", "capabilities": {"portMappings": true}},
    {"type": "tuning"}
  ]
}
JSON
cat > "$S/containers.conf" <<TOML
[network]
network_backend = "cni"
cni_plugin_dirs = ["$S/bin", "/usr/lib/cni"]
network_config_dir = "$S/net.d"
default_network = "nsdnpod"

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$S/events.log"
runtime = "crun"
tmp_dir = "$S/tmp"
TOML
cat > "$S/storage.conf" <<TOML
[storage]
driver = "vfs"
graphroot = "$S/storage"
runroot = "$S/runroot"
TOML
export CONTAINERS_CONF=$S/containers.conf CONTAINERS_STORAGE_CONF=$S/storage.conf

# Both rlimits at or below the hard limits (no CAP_SYS_RESOURCE here).
OUT=$(podman run --rm --cgroups=disabled --ulimit nofile=1024:1024 --ulimit nproc=4096:4096 \
  --network nsdnpod -p 18082:8080 --rootfs "$R" \
  /bin/sh -c 'ip -4 -o addr show dev eth0; ip route; ping -c1 -W2 10.216.0.1')
echo "$OUT"
grep -q 'inet 10\.216\.0\.[0-9]*/24' <<<"$OUT" || { echo "podman-cni: no address from nsdn-bridge" >&2; exit 1; }
grep -q 'default via 10\.216\.0\.1' <<<"$OUT" || { echo "podman-cni: no default route" >&2; exit 1; }
grep -q ' 0% packet loss' <<<"$OUT" || { echo "podman-cni: the gateway did not answer" >&2; exit 1; }

# podman run --rm ran DEL: no lease, no port on the bridge, no netns, no port mapping.
left=$(ls "$S/ipam/nsdnpod" 2>/dev/null | grep -v -e lock -e last_reserved || true)
[ -z "$left" ] || { echo "podman-cni: leases left: $left" >&2; exit 1; }
ports=$(ip -j link show master nsdnpod0 | grep -c ifname || true)
[ "$ports" = 0 ] || { echo "podman-cni: $ports port(s) left on nsdnpod0" >&2; exit 1; }
[ -z "$(ls /run/netns)" ] || { echo "podman-cni: netns left: $(ls /run/netns)" >&2; exit 1; }
rules=$(nft -j list table inet nsdn-portmap 2>/dev/null | grep -c '"rule"' || true)
[ "$rules" = 0 ] || { echo "podman-cni: port mapping rules left" >&2; exit 1; }
if [ "$MODE" = agent ]; then
  served=$(grep -c '"msg":"call"' "$S/agent.log" || true)
  [ "$served" -ge 3 ] || { echo "podman-cni: the agent served $served calls" >&2; exit 1; }
  echo "podman-cni: the agent served $served calls"
fi
ip link del nsdnpod0
echo "podman-cni: ok ($MODE)"
