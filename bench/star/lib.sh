#!/bin/bash
# What the star scripts share: host addresses, the clock, the checks and the wait for the kernel.
# Sourced by ip.sh and ip-batch.sh; run as `bash lib.sh FUNCTION ARGS...` by pyroute2-star.py,
# mininet-star.py and star-nsdn.js, so every method is checked by the same code.
#
# The star: host i (1..N) is the named netns bmhI with lo up and eth0 up, eth0 at
# 10.77.(1+(i-1)/200).(1+(i-1)%200)/16; eth0's veth peer bmvI is a port of bridge bmbr0 (up) in
# the sandbox's root namespace.

# Sets $addr to the address of host $1 (200 hosts per /24, inside 10.77.0.0/16). A variable,
# not an echo: a command substitution would fork once per host and bill it to the tool.
addr_of() { addr="10.77.$((($1 - 1) / 200 + 1)).$((($1 - 1) % 200 + 1))"; }

# Sets $t to the microseconds since the epoch ($EPOCHREALTIME without its dot; no fork).
stamp() { t=${EPOCHREALTIME/./}; }

# Seconds between two stamps, e.g. 1.234567.
secs() { local d=$(($2 - $1)); printf '%d.%06d' $((d / 1000000)) $((d % 1000000)); }

# Timed check: one ping from host 1 to host $1. Prints "ok SECONDS" or "FAIL SECONDS".
verify() {
  local t t0 v=FAIL addr
  addr_of "$1"
  stamp && t0=$t
  ip netns exec bmh1 ping -n -q -c 1 -W 2 "$addr" >/dev/null 2>&1 && v=ok
  stamp
  echo "$v $(secs "$t0" "$t")"
}

# Untimed check of the structure: bmbr0 has $1 ports with carrier (LOWER_UP: the operstate
# column may lag, the kernel updates it in batches), and every host has lo and eth0 up with
# 127.0.0.1/8 and its address. Prints "ok" or "FAIL(ports=P,bad_hosts=B)".
check_struct() {
  local n=$1 ports bad=0 i lines addr
  ports=$(ip -br link show master bmbr0 | grep -c 'LOWER_UP')
  for ((i = 1; i <= n; i++)); do
    addr_of "$i"
    lines=$(ip -n "bmh$i" -4 -br addr show up)
    grep -q '^lo .* 127\.0\.0\.1/8' <<<"$lines" &&
      grep -q "^eth0@[^ ]* *[A-Z]* *${addr//./\\.}/16" <<<"$lines" ||
      bad=$((bad + 1))
  done
  if ((ports == n && bad == 0)); then echo ok; else echo "FAIL(ports=$ports,bad_hosts=$bad)"; fi
}

# Wait until the kernel has destroyed every veth of the sandbox's root namespace (namespaces
# die asynchronously, and their veth pairs with them). Fails after 120 s.
wait_veths_gone() {
  local t deadline
  stamp && deadline=$((t + 120000000))
  while [ -n "$(ip -o link show type veth)" ]; do
    stamp && ((t < deadline)) || return 1
    sleep 0.005
  done
}

# The one line the driver (dist/bench/main.js) reads. Arguments: key=value words.
result() { echo "RESULT $*"; }

if [ "${BASH_SOURCE[0]}" = "$0" ]; then "$@"; fi
