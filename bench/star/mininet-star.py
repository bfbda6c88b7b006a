#!/usr/bin/python3
"""The star with Mininet (Debian's mininet 2.3.0): a LinuxBridge switch bms1, no controller.

Hosts bmh1..bmhN, each with eth0 at the star's address. Mininet's hosts are shells in their own
network namespaces (not /run/netns entries), so the checks run through the hosts' shells; the
bridge and the wait for the veths to go are checked from the root namespace as for the others.
Mininet.init() would write global sysctls (kernel.pty.max, net.core.*) through fixLimits():
the script raises only its own open-file limit and marks Mininet initialised.

Usage (in a sandbox): /usr/bin/python3 bench/star/mininet-star.py N [RUN]
create = build() + start(); teardown = stop() until the kernel removed every veth.
"""
import os
import re
import resource
import subprocess
import sys
import time

from mininet.log import setLogLevel
from mininet.net import Mininet
from mininet.nodelib import LinuxBridge
from mininet.topo import Topo

LIB = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib.sh')


def addr_of(i):
    return '10.77.%d.%d' % ((i - 1) // 200 + 1, (i - 1) % 200 + 1)


class Star(Topo):
    def build(self, n=1):
        switch = self.addSwitch('bms1')
        for i in range(1, n + 1):
            host = self.addHost('bmh%d' % i, ip='%s/16' % addr_of(i))
            self.addLink(host, switch, intfName1='eth0')


def verify(net, n):
    t = time.perf_counter()
    out = net.hosts[0].cmd('ping -n -q -c 1 -W 2 %s >/dev/null 2>&1; echo rc=$?' % addr_of(n))
    return ('ok' if 'rc=0' in out else 'FAIL'), '%.6f' % (time.perf_counter() - t)


def check_struct(net, n):
    """bms1 has n ports with carrier; each host has lo and eth0 up with their addresses."""
    ports = subprocess.run(['ip', '-br', 'link', 'show', 'master', 'bms1'],
                           capture_output=True, text=True).stdout
    up = ports.count('LOWER_UP')
    bad = 0
    for i, h in enumerate(net.hosts, 1):
        lines = h.cmd('ip -4 -br addr show up')
        lo = re.search(r'^lo .* 127\.0\.0\.1/8', lines, re.M)
        eth0 = re.search(r'^eth0(@\S*)? +[A-Z]+ +%s/16' % re.escape(addr_of(i)), lines, re.M)
        bad += not (lo and eth0)
    return 'ok' if up == n and bad == 0 else 'FAIL(ports=%d,bad_hosts=%d)' % (up, bad)


def main():
    n = int(sys.argv[1])
    run = sys.argv[2] if len(sys.argv) > 2 else '1'
    setLogLevel('warning')
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 16384), max(hard, 16384)))
    Mininet.inited = True
    errors = 0
    verified, verify_s, struct = 'FAIL', '0', 'FAIL(not built)'
    net = Mininet(topo=Star(n=n), switch=LinuxBridge, controller=None, build=False)
    t0 = time.perf_counter()
    try:
        net.build()
        net.start()
    except Exception as e:
        errors += 1
        print('create: %r' % (e,), file=sys.stderr)
    t1 = time.perf_counter()
    if not errors:
        verified, verify_s = verify(net, n)
        struct = check_struct(net, n)
    t2 = time.perf_counter()
    try:
        net.stop()
    except Exception as e:
        errors += 1
        print('stop: %r' % (e,), file=sys.stderr)
    t3 = time.perf_counter()
    errors += subprocess.run(['bash', LIB, 'wait_veths_gone']).returncode != 0
    t4 = time.perf_counter()
    print('RESULT method=mininet n=%d run=%s create_s=%.6f verify=%s verify_s=%s struct=%s '
          'teardown_cmd_s=%.6f teardown_s=%.6f errors=%d'
          % (n, run, t1 - t0, verified, verify_s, struct, t3 - t2, t4 - t2, errors))


if __name__ == '__main__':
    main()
