#!/usr/bin/python3
"""The star with pyroute2 (Debian's python3-pyroute2 0.7.2), one netlink socket per namespace.

netns.create() makes each host's namespace; the veth pair is created from the root socket with
the peer placed in the namespace; then the script enters the namespace (pushns), opens an
IPRoute socket there and leaves (popns): the socket stays in the namespace, with no proxy
process per host (what pyroute2 0.7.2's NetNS class would fork).

Usage (in a sandbox): /usr/bin/python3 bench/star/pyroute2-star.py N [RUN]
Prints one RESULT line; checks through lib.sh, as every method.
"""
import os
import subprocess
import sys
import time

from pyroute2 import IPRoute, netns

LIB = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib.sh')


def lib(*args):
    """A lib.sh function's output (the checks every method shares)."""
    out = subprocess.run(['bash', LIB, *map(str, args)], capture_output=True, text=True)
    return out.stdout.strip(), out.returncode


def addr_of(i):
    return '10.77.%d.%d' % ((i - 1) // 200 + 1, (i - 1) % 200 + 1)


def socket_in(ns):
    """An IPRoute socket opened inside ns; it keeps working from the root namespace."""
    netns.pushns(ns)
    try:
        return IPRoute()
    finally:
        netns.popns()


def configure(sock, i):
    lo = sock.link_lookup(ifname='lo')[0]
    eth0 = sock.link_lookup(ifname='eth0')[0]
    sock.link('set', index=lo, state='up')
    sock.addr('add', index=eth0, address=addr_of(i), prefixlen=16)
    sock.link('set', index=eth0, state='up')


def create(root, n):
    root.link('add', ifname='bmbr0', kind='bridge')
    br = root.link_lookup(ifname='bmbr0')[0]
    root.link('set', index=br, state='up')
    for i in range(1, n + 1):
        ns = 'bmh%d' % i
        netns.create(ns)
        root.link('add', ifname='bmv%d' % i, kind='veth', peer={'ifname': 'eth0', 'net_ns_fd': ns})
        root.link('set', index=root.link_lookup(ifname='bmv%d' % i)[0], master=br, state='up')
        sock = socket_in(ns)
        try:
            configure(sock, i)
        finally:
            sock.close()


def teardown(root, n):
    root.link('del', index=root.link_lookup(ifname='bmbr0')[0])
    for i in range(1, n + 1):
        netns.remove('bmh%d' % i)


def main():
    n = int(sys.argv[1])
    run = sys.argv[2] if len(sys.argv) > 2 else '1'
    errors = 0
    root = IPRoute()
    t0 = time.perf_counter()
    try:
        create(root, n)
    except Exception as e:  # counted and said, never hidden
        errors += 1
        print('create: %r' % (e,), file=sys.stderr)
    t1 = time.perf_counter()
    verified, verify_s = lib('verify', n)[0].split()
    struct = lib('check_struct', n)[0]
    t2 = time.perf_counter()
    try:
        teardown(root, n)
    except Exception as e:
        errors += 1
        print('teardown: %r' % (e,), file=sys.stderr)
    t3 = time.perf_counter()
    errors += lib('wait_veths_gone')[1] != 0
    t4 = time.perf_counter()
    root.close()
    print('RESULT method=pyroute2 n=%d run=%s create_s=%.6f verify=%s verify_s=%s struct=%s '
          'teardown_cmd_s=%.6f teardown_s=%.6f errors=%d'
          % (n, run, t1 - t0, verified, verify_s, struct, t3 - t2, t4 - t2, errors))


if __name__ == '__main__':
    main()
