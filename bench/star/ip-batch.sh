#!/bin/bash
# The star with `ip -batch`: one batch in the root namespace (bridge, namespaces, veth pairs
# with the peer made in its namespace, enslaved and up), then one `ip -n bmhI -batch` per host
# (iproute2 6.1 takes no `-n NS` inside a batch): lo up, address, eth0 up. Teardown: one batch.
# Usage (in a sandbox): bash bench/star/ip-batch.sh N [RUN]
set -u
. "$(dirname "$0")/lib.sh"
n=$1 run=${2:-1} errors=0

root_batch() {
  printf 'link add bmbr0 type bridge\nlink set bmbr0 up\n'
  for ((i = 1; i <= n; i++)); do
    printf 'netns add bmh%d\n' "$i"
    printf 'link add bmv%d type veth peer name eth0 netns bmh%d\n' "$i" "$i"
    printf 'link set bmv%d master bmbr0 up\n' "$i"
  done
}
del_batch() {
  echo 'link del bmbr0'
  for ((i = 1; i <= n; i++)); do echo "netns del bmh$i"; done
}

stamp && t0=$t
root_batch | ip -batch - || errors=$((errors + 1))
stamp && t_root=$t
for ((i = 1; i <= n; i++)); do
  addr_of "$i"
  # A here-string: a pipe would fork a subshell per host and bill it to ip.
  ip -n "bmh$i" -batch - <<<"link set lo up
addr add $addr/16 dev eth0
link set eth0 up" || errors=$((errors + 1))
done
stamp && t1=$t

read -r verified verify_s < <(verify "$n")
struct=$(check_struct "$n")

stamp && t2=$t
del_batch | ip -batch - || errors=$((errors + 1))
stamp && t3=$t
wait_veths_gone || errors=$((errors + 1))
stamp && t4=$t

result method=ip-batch n="$n" run="$run" create_s="$(secs "$t0" "$t1")" verify="$verified" \
  verify_s="$verify_s" struct="$struct" teardown_cmd_s="$(secs "$t2" "$t3")" \
  teardown_s="$(secs "$t2" "$t4")" errors="$errors" create_root_s="$(secs "$t0" "$t_root")" \
  create_ns_s="$(secs "$t_root" "$t1")"
