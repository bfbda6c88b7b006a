#!/bin/bash
# The star, tutorial style: one `ip` process per operation, 7 per host.
# Usage (in a sandbox): bash bench/star/ip.sh N [RUN]
set -u
. "$(dirname "$0")/lib.sh"
n=$1 run=${2:-1} errors=0
ip_() { ip "$@" || errors=$((errors + 1)); }

stamp && t0=$t
ip_ link add bmbr0 type bridge
ip_ link set bmbr0 up
for ((i = 1; i <= n; i++)); do
  addr_of "$i"
  ip_ netns add "bmh$i"
  ip_ link add "bmv$i" type veth peer name eth0 netns "bmh$i"
  ip_ link set "bmv$i" master bmbr0
  ip_ link set "bmv$i" up
  ip_ -n "bmh$i" link set lo up
  ip_ -n "bmh$i" addr add "$addr/16" dev eth0
  ip_ -n "bmh$i" link set eth0 up
done
stamp && t1=$t

read -r verified verify_s < <(verify "$n")
struct=$(check_struct "$n")

stamp && t2=$t
ip_ link del bmbr0
for ((i = 1; i <= n; i++)); do ip_ netns del "bmh$i"; done
stamp && t3=$t
wait_veths_gone || errors=$((errors + 1))
stamp && t4=$t

result method=ip n="$n" run="$run" create_s="$(secs "$t0" "$t1")" verify="$verified" \
  verify_s="$verify_s" struct="$struct" teardown_cmd_s="$(secs "$t2" "$t3")" \
  teardown_s="$(secs "$t2" "$t4")" errors="$errors"
