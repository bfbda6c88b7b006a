/** --explain: each Op kind printed as the command a learner would type; shell quoting. */
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { test } from 'node:test'
import type { Op, OpKind } from '../../src/op.js'
import { explainLines, formatOp } from '../../src/teach/commands.js'
import { quote, quoteArgv } from '../../src/teach/quote.js'

/** Golden lines per Op kind; a kind missing here is a compile error. */
const golden: { [K in OpKind]: [Extract<Op, { kind: K }>, string][] } = {
  'netns.add': [[{ kind: 'netns.add', name: 'red' }, 'ip netns add red']],
  'netns.del': [[{ kind: 'netns.del', name: 'my ns' }, `ip netns del 'my ns'`]],
  'link.add': [
    [{ kind: 'link.add', name: 'br0', type: 'bridge' }, 'ip link add br0 type bridge'],
    [
      { kind: 'link.add', name: 'br0', type: 'bridge', vlanFiltering: true },
      'ip link add br0 type bridge vlan_filtering 1',
    ],
    [
      { kind: 'link.add', ns: 'red', name: 'br0', type: 'bridge', master: 'br1', up: true },
      'ip -n red link add br0 master br1 up type bridge',
    ],
    [{ kind: 'link.add', name: 'dev', type: 'bridge' }, 'ip link add name dev type bridge'],
  ],
  'link.add.veth': [
    [
      { kind: 'link.add.veth', name: 'vh1', peer: 'eth0' },
      'ip link add vh1 type veth peer name eth0',
    ],
    [
      {
        kind: 'link.add.veth',
        ns: 'blue',
        name: 'vh1',
        peer: 'eth0',
        peerNs: 'red',
        master: 'br0',
        up: true,
      },
      'ip -n blue link add vh1 master br0 up type veth peer name eth0 netns red',
    ],
  ],
  'link.add.macvlan': [
    [
      { kind: 'link.add.macvlan', ns: 'red', name: 'mv0', parent: 'eth0', mode: 'bridge' },
      'ip -n red link add mv0 link eth0 type macvlan mode bridge',
    ],
  ],
  'link.add.vxlan': [
    [
      {
        kind: 'link.add.vxlan',
        name: 'vx0',
        vxlan: { id: 42, remote: '10.0.0.2', local: '10.0.0.1', dev: 'eth0', dstport: 4789 },
      },
      'ip link add vx0 type vxlan id 42 remote 10.0.0.2 local 10.0.0.1 dev eth0 dstport 4789',
    ],
    [
      { kind: 'link.add.vxlan', name: 'vx1', vxlan: { id: 7, group: 'ff05::100', dev: 'eth0' } },
      'ip link add vx1 type vxlan id 7 group ff05::100 dev eth0',
    ],
  ],
  'link.add.vlan': [
    [
      { kind: 'link.add.vlan', name: 'eth0.100', parent: 'eth0', id: 100 },
      'ip link add link eth0 name eth0.100 type vlan id 100',
    ],
  ],
  'link.del': [
    [{ kind: 'link.del', ns: `it's`, name: 'vh1' }, `ip -n 'it'\\''s' link del vh1`],
    [{ kind: 'link.del', name: 'dev' }, 'ip link del dev dev'],
  ],
  'link.del.group': [
    [{ kind: 'link.del.group', group: 1314000000 }, 'ip link del group 1314000000'],
    [{ kind: 'link.del.group', ns: 'h1', group: 7 }, 'ip -n h1 link del group 7'],
  ],
  'link.set': [
    [{ kind: 'link.set', name: 'vh1', up: true }, 'ip link set vh1 up'],
    [{ kind: 'link.set', name: 'vh1', master: null, up: false }, 'ip link set vh1 nomaster down'],
    // a name iproute2 could read as a keyword (or a keyword's prefix) follows `dev`
    [{ kind: 'link.set', name: 'up', up: true }, 'ip link set dev up up'],
    [{ kind: 'link.set', name: 'm', mtu: 1400 }, 'ip link set dev m mtu 1400'],
    [
      {
        kind: 'link.set',
        ns: 'red',
        name: 'vh1',
        up: true,
        mtu: 1400,
        address: '02:00:00:00:00:01',
        master: 'br0',
        netns: 'blue',
        newName: 'eth1',
      },
      'ip -n red link set vh1 master br0 mtu 1400 address 02:00:00:00:00:01 name eth1' +
        ' netns blue up',
    ],
  ],
  'addr.add': [
    [{ kind: 'addr.add', cidr: '10.0.0.1/24', dev: 'vh1' }, 'ip addr add 10.0.0.1/24 dev vh1'],
    [
      { kind: 'addr.add', ns: 'c1', cidr: 'fd00::2/64', dev: 'eth0', nodad: true },
      'ip -n c1 addr add fd00::2/64 dev eth0 nodad',
    ],
  ],
  'addr.replace': [
    [
      { kind: 'addr.replace', ns: 'red', cidr: 'fd00::1/64', dev: 'eth0' },
      'ip -n red addr replace fd00::1/64 dev eth0',
    ],
  ],
  'addr.del': [
    [{ kind: 'addr.del', cidr: '10.0.0.1/24', dev: 'vh1' }, 'ip addr del 10.0.0.1/24 dev vh1'],
  ],
  'route.add': [
    [{ kind: 'route.add', dst: 'default', via: '10.0.0.1' }, 'ip route add default via 10.0.0.1'],
    // Nothing in `default dev eth0` says IPv6: without -6, iproute2 adds an IPv4 route.
    [
      { kind: 'route.add', ns: 'h1', dst: 'default', dev: 'eth0', family: 6 },
      'ip -6 -n h1 route add default dev eth0',
    ],
    [
      { kind: 'route.add', dst: 'default', via: 'fd00::1', family: 6 },
      'ip route add default via fd00::1',
    ],
    [
      { kind: 'route.add', dst: 'default', dev: 'eth0', family: 4 },
      'ip route add default dev eth0',
    ],
    [
      {
        kind: 'route.add',
        ns: 'red',
        dst: '10.2.0.0/24',
        via: '10.0.0.2',
        dev: 'eth0',
        src: '10.0.0.1',
        metric: 50,
        table: 100,
        scope: 'link',
      },
      'ip -n red route add 10.2.0.0/24 via 10.0.0.2 dev eth0 src 10.0.0.1 metric 50 table 100' +
        ' scope link',
    ],
  ],
  'route.replace': [
    [
      { kind: 'route.replace', dst: '10.4.0.0/24', dev: 'vh1', scope: 'host' },
      'ip route replace 10.4.0.0/24 dev vh1 scope host',
    ],
  ],
  'route.del': [
    [
      { kind: 'route.del', dst: 'default', dev: 'eth0', family: 6 },
      'ip -6 route del default dev eth0',
    ],
    [
      { kind: 'route.del', dst: 'fd00:1::/64', dev: 'vh1', table: 1000 },
      'ip route del fd00:1::/64 dev vh1 table 1000',
    ],
  ],
  'sysctl.set': [
    [
      { kind: 'sysctl.set', key: 'net.ipv4.ip_forward', value: '1' },
      'sysctl -w net.ipv4.ip_forward=1',
    ],
    [
      { kind: 'sysctl.set', ns: 'red', key: 'net.ipv4.conf.all.rp_filter', value: '0' },
      'ip netns exec red sysctl -w net.ipv4.conf.all.rp_filter=0',
    ],
  ],
  'link.set.bridge_slave': [
    [
      { kind: 'link.set.bridge_slave', name: 'vh1', hairpin: true },
      'ip link set dev vh1 type bridge_slave hairpin on',
    ],
    [
      { kind: 'link.set.bridge_slave', ns: 'red', name: 'vh1', hairpin: false },
      'ip -n red link set dev vh1 type bridge_slave hairpin off',
    ],
  ],
  'link.set.promisc': [
    [{ kind: 'link.set.promisc', name: 'vh1', on: true }, 'ip link set dev vh1 promisc on'],
    [{ kind: 'link.set.promisc', name: 'vh1', on: false }, 'ip link set dev vh1 promisc off'],
  ],
  'bridge.vlan.add': [
    [
      { kind: 'bridge.vlan.add', dev: 'vh1', vid: 100, pvid: true, untagged: true },
      'bridge vlan add dev vh1 vid 100 pvid untagged',
    ],
    [
      { kind: 'bridge.vlan.add', ns: 'red', dev: 'eth0', vid: 4094 },
      'bridge -n red vlan add dev eth0 vid 4094',
    ],
  ],
  'ethtool.features': [
    [
      {
        kind: 'ethtool.features',
        ns: 'red',
        dev: 'eth0',
        features: { 'tx-checksum-ip-generic': false },
      },
      'ip netns exec red ethtool -K eth0 tx-checksum-ip-generic off',
    ],
  ],
  'link.show': [
    [{ kind: 'link.show' }, 'ip link show'],
    [{ kind: 'link.show', ns: 'red', dev: 'eth0' }, 'ip -n red link show dev eth0'],
  ],
  'addr.show': [[{ kind: 'addr.show', dev: 'vh1' }, 'ip addr show dev vh1']],
  'route.show': [[{ kind: 'route.show', ns: 'red' }, 'ip -n red route show']],
  'neigh.show': [[{ kind: 'neigh.show' }, 'ip neigh show']],
  'ovs.vsctl': [
    [
      {
        kind: 'ovs.vsctl',
        argv: ['--may-exist', 'add-br', 'br0', '--', 'set', 'bridge', 'br0', 'datapath_type=x'],
      },
      'ovs-vsctl --may-exist add-br br0 -- set bridge br0 datapath_type=x',
    ],
    [
      { kind: 'ovs.vsctl', argv: ['set', 'port', 'p1', 'external_ids:owner="a b"'] },
      `ovs-vsctl set port p1 'external_ids:owner="a b"'`,
    ],
    // The private OVS's --db goes: OVS_RUNDIR names it (see explainLines); --timeout is nsdn's.
    [
      {
        kind: 'ovs.vsctl',
        argv: ['--db=unix:/run/nsdn/ovs/db.sock', '--timeout=5', 'add-br', 'b'],
      },
      'ovs-vsctl add-br b',
    ],
    [
      { kind: 'ovs.vsctl', argv: ['--db=tcp:127.0.0.1:6640', 'add-br', 'b'] },
      'ovs-vsctl --db=tcp:127.0.0.1:6640 add-br b',
    ],
  ],
  'nft.script': [
    [
      { kind: 'nft.script', script: 'table inet nsdn {\n  chain c {\n  }\n}' },
      "nft -f - <<'EOF'\ntable inet nsdn {\n  chain c {\n  }\n}\nEOF",
    ],
  ],
  'netns.exec': [
    [
      { kind: 'netns.exec', name: 'h1', argv: ['ping', '-c1', '10.0.0.2'] },
      'ip netns exec h1 ping -c1 10.0.0.2',
    ],
    [
      { kind: 'netns.exec', name: 'h1', argv: ['sh', '-c', 'echo $x'] },
      `ip netns exec h1 sh -c 'echo $x'`,
    ],
  ],
  sandbox: [
    [
      { kind: 'sandbox', argv: ['bash'] },
      'unshare --net --mount --pid --fork --mount-proc --propagation private ' +
        `sh -c 'mount -t tmpfs nsdn-run /run && mount -t sysfs nsdn-sys /sys && exec "$@"' sh bash`,
    ],
  ],
  nft: [
    [
      { kind: 'nft', argv: ['add', 'rule', 'inet', 'nsdn', 'fwd', 'iifname', 'br0', 'accept'] },
      'nft add rule inet nsdn fwd iifname br0 accept',
    ],
    [
      {
        kind: 'nft',
        argv: ['add', 'chain', 'inet', 'nsdn', 'post', '{ type nat hook postrouting priority 0; }'],
      },
      `nft add chain inet nsdn post '{ type nat hook postrouting priority 0; }'`,
    ],
    [
      { kind: 'nft', ns: 'r1', argv: ['-f', '-'], stdin: 'table ip t {\n}\n' },
      "ip netns exec r1 nft -f - <<'EOF'\ntable ip t {\n}\nEOF",
    ],
  ],
  'tc.qdisc.tbf': [
    [
      { kind: 'tc.qdisc.tbf', ns: 'h1', dev: 'eth0', rate: 500_000, burst: 1600, latency: 50 },
      'tc -n h1 qdisc add dev eth0 root tbf rate 500kbit burst 1600 latency 50ms',
    ],
  ],
  'tc.qdisc.del': [
    [{ kind: 'tc.qdisc.del', ns: 'h1', dev: 'eth0' }, 'tc -n h1 qdisc del dev eth0 root'],
  ],
  'tc.qdisc.show': [[{ kind: 'tc.qdisc.show' }, 'tc qdisc show']],
  'nft.show': [[{ kind: 'nft.show', argv: ['-j', 'list', 'ruleset'] }, 'nft -j list ruleset']],
  'ovs.daemon': [
    [
      { kind: 'ovs.daemon', action: 'stop', runDir: '/run/x' },
      // nsdn removes the run directory too.
      'ovs-appctl -t /run/x/ovs-vswitchd.ctl exit --cleanup\n' +
        'ovs-appctl -t /run/x/ovsdb-server.ctl exit\nrm -rf /run/x',
    ],
  ],
  'ovs.vsctl.show': [
    [
      { kind: 'ovs.vsctl.show', argv: ['--format=json', 'list', 'Bridge'] },
      'ovs-vsctl --format=json list Bridge',
    ],
  ],
  'netns.attach': [[{ kind: 'netns.attach', name: 'web', pid: 42 }, 'ip netns attach web 42']],
  'fs.write': [
    [
      {
        kind: 'fs.write',
        path: '/sys/fs/cgroup/memory/nsdn/web/memory.limit_in_bytes',
        value: '67108864',
      },
      'echo 67108864 > /sys/fs/cgroup/memory/nsdn/web/memory.limit_in_bytes',
    ],
  ],
  'fs.mkdir': [
    [
      { kind: 'fs.mkdir', path: '/sys/fs/cgroup/pids/nsdn/web' },
      'mkdir -p /sys/fs/cgroup/pids/nsdn/web',
    ],
  ],
  'fs.rmdir': [
    [
      { kind: 'fs.rmdir', path: '/sys/fs/cgroup/pids/nsdn/web' },
      'rmdir /sys/fs/cgroup/pids/nsdn/web',
    ],
    [
      { kind: 'fs.rmdir', path: '/sys/fs/cgroup/pids/nsdn', ifUnused: true },
      'rmdir /sys/fs/cgroup/pids/nsdn 2>/dev/null || true',
    ],
  ],
  'fs.touch': [[{ kind: 'fs.touch', path: '/r/dev/null' }, 'touch /r/dev/null']],
  'fs.symlink': [
    [{ kind: 'fs.symlink', target: 'pts/ptmx', path: '/r/dev/ptmx' }, 'ln -s pts/ptmx /r/dev/ptmx'],
  ],
  kill: [[{ kind: 'kill', pid: 7, signal: 'TERM' }, 'kill -TERM 7']],
  mount: [
    [
      { kind: 'mount', source: 'proc', target: '/r/proc', fstype: 'proc', flags: 2 | 4 | 8 },
      'mount -t proc -o nosuid,nodev,noexec proc /r/proc',
    ],
    [{ kind: 'mount', target: '/', flags: 16384 | (1 << 18) }, 'mount --make-rprivate /'],
    [{ kind: 'mount', source: '/', target: '/r', flags: 4096 }, 'mount -o bind / /r'],
    [{ kind: 'mount', target: '/r', flags: 32 | 4096 | 1 }, 'mount -o ro,remount,bind /r'],
    [
      {
        kind: 'mount',
        source: 'overlay',
        target: '/r',
        fstype: 'overlay',
        flags: 0,
        data: 'lowerdir=/l,upperdir=/u,workdir=/w',
      },
      'mount -t overlay -o lowerdir=/l,upperdir=/u,workdir=/w overlay /r',
    ],
  ],
  umount: [[{ kind: 'umount', target: '/r', lazy: true }, 'umount -l /r']],
  pivot_root: [
    [{ kind: 'pivot_root', root: '/r' }, 'cd /r && pivot_root . . && umount -l . && cd /'],
  ],
  sethostname: [[{ kind: 'sethostname', name: 'web' }, 'hostname web']],
  exec: [[{ kind: 'exec', argv: ['sh', '-c', 'echo hi'] }, `exec sh -c 'echo hi'`]],
  container: [
    [
      {
        kind: 'container',
        procs: ['/sys/fs/cgroup/pids/nsdn/web/cgroup.procs'],
        ns: ['mount', 'pid', 'net'],
        netnsFile: '/run/netns/web',
        steps: [
          { kind: 'sethostname', name: 'web' },
          { kind: 'exec', argv: ['sleep', '1d'] },
        ],
        cwd: '/srv',
        log: '/run/nsdn/containers/web/log',
      },
      [
        '# the container: a shell joins its cgroups, then unshare makes its namespaces; PID 1 of the new ones builds the root and becomes the payload (nsdn-init also drops capabilities and sets no_new_privs)',
        'mkdir -p /run/netns && touch /run/netns/web',
        "setsid -f sh -e >>/run/nsdn/containers/web/log 2>&1 <<'EOF'",
        'echo $$ > /sys/fs/cgroup/pids/nsdn/web/cgroup.procs',
        "exec unshare --mount --pid --net=/run/netns/web --fork sh -e <<'INIT'",
        'hostname web',
        'cd /srv',
        'exec sleep 1d',
        'INIT',
        'EOF',
        'until mountpoint -q /run/netns/web; do sleep 0.1; done',
      ].join('\n'),
    ],
    [
      {
        kind: 'container',
        procs: [],
        ns: ['user', 'mount'],
        uidMap: '0 100000 65536',
        gidMap: '0 100000 65536',
        steps: [{ kind: 'exec', argv: ['true'] }],
      },
      [
        '# the container: a shell joins its cgroups, then unshare makes its namespaces; PID 1 of the new ones builds the root and becomes the payload (nsdn-init also drops capabilities and sets no_new_privs)',
        '# --map-users/--map-groups run newuidmap/newgidmap (Debian package uidmap)',
        "sh -e <<'EOF'",
        "exec unshare --user --map-users=100000,0,65536 --map-groups=100000,0,65536 --mount --fork sh -e <<'INIT'",
        'exec true',
        'INIT',
        'EOF',
      ].join('\n'),
    ],
  ],
  copy: [[{ kind: 'copy', from: '/a/.', to: '/b' }, 'cp -a /a/. /b']],
  untar: [[{ kind: 'untar', file: '/a.tar', to: '/b' }, 'tar -xpf /a.tar -C /b']],
  rm: [[{ kind: 'rm', path: '/b' }, 'rm -rf /b']],
  'container.run': [
    [
      {
        kind: 'container.run',
        name: 'lab-c1',
        image: 'busybox',
        hostname: 'c1',
        command: ['sleep', 'infinity'],
        env: [],
        limits: {},
      },
      'nsdn run -d --name lab-c1 --image busybox --hostname c1 -- sleep infinity',
    ],
    [
      {
        kind: 'container.run',
        name: 'lab-web',
        image: 'bb',
        hostname: 'web',
        command: ['sh', '-c', 'httpd -f; echo $HOME'],
        env: ['MSG=hello world'],
        limits: { memory: '64M', cpus: 0.5, pids: 100, cpusetMems: '0', ioWeight: 50 },
      },
      'nsdn run -d --name lab-web --image bb --hostname web --memory 64M --cpus 0.5 --pids 100 ' +
        `--cpuset-mems 0 --io-weight 50 -e 'MSG=hello world' -- sh -c 'httpd -f; echo $HOME'`,
    ],
  ],
  'container.rm': [[{ kind: 'container.rm', name: 'lab-c1' }, 'nsdn rm -f lab-c1']],
}

for (const [kind, rows] of Object.entries(golden))
  for (const [i, [op, line]] of (rows as [Op, string][]).entries())
    test(`formatOp ${kind} #${i + 1}: ${line}`, () => {
      assert.equal(formatOp(op), line)
    })

/** What sh makes of a command line: its words, split by the shell itself. */
function shWords(line: string): string[] {
  const out = execFileSync('sh', ['-c', `printf '%s\\0' ${line}`], { encoding: 'utf8' })
  return out.split('\0').slice(0, -1)
}

const quoteCases: { name: string; word: string; quoted: string }[] = [
  { name: 'a plain name stays bare', word: 'eth0.100', quoted: 'eth0.100' },
  { name: 'a CIDR stays bare', word: 'fd00::1/64', quoted: 'fd00::1/64' },
  { name: 'key=value stays bare', word: 'a=b,c@d%e+f', quoted: 'a=b,c@d%e+f' },
  { name: 'the empty word', word: '', quoted: `''` },
  { name: 'a space', word: 'my ns', quoted: `'my ns'` },
  { name: 'a single quote', word: `it's`, quoted: `'it'\\''s'` },
  { name: 'only a quote', word: `'`, quoted: `''\\'''` },
  { name: 'a dollar and a backtick', word: '$(rm -rf /)`x`', quoted: `'$(rm -rf /)\`x\`'` },
  { name: 'a glob', word: '*', quoted: `'*'` },
  { name: 'a semicolon', word: 'a;b', quoted: `'a;b'` },
  { name: 'a double quote and backslash', word: 'a"b\\c', quoted: `'a"b\\c'` },
  { name: 'a newline', word: 'a\nb', quoted: `'a\nb'` },
  { name: 'a leading dash stays bare', word: '-n', quoted: '-n' },
  { name: 'a tilde', word: '~root', quoted: `'~root'` },
  { name: 'non-ASCII', word: 'é', quoted: `'é'` },
]

for (const tc of quoteCases)
  test(`quote: ${tc.name}`, () => {
    assert.equal(quote(tc.word), tc.quoted)
    assert.deepEqual(shWords(quote(tc.word)), [tc.word], 'sh reads back the same word')
  })

test('quoteArgv: sh splits the line into the same argv', () => {
  const argv = quoteCases.map((c) => c.word)
  assert.deepEqual(shWords(quoteArgv(argv)), argv)
})

test('an odd netns name in a printed command reaches ip as one word', () => {
  const line = formatOp({ kind: 'addr.add', ns: `a b'c`, cidr: '10.0.0.1/24', dev: 'vh1' })
  assert.deepEqual(shWords(line), ['ip', '-n', `a b'c`, 'addr', 'add', '10.0.0.1/24', 'dev', 'vh1'])
})

test('explainLines: which OVS ovs-vsctl talks to is said once, before the first line', () => {
  const vsctl = (dir: string): Op => ({
    kind: 'ovs.vsctl',
    argv: [`--db=unix:${dir}/db.sock`, '--timeout=5', 'add-br', 'b'],
  })
  const first = explainLines(vsctl('/run/o1'))
  assert.equal(first.length, 3)
  assert.match(first[0]!, /^# ovs-vsctl talks to nsdn's private Open vSwitch/)
  assert.equal(first[1], 'export OVS_RUNDIR=/run/o1')
  assert.deepEqual(explainLines(vsctl('/run/o1')), ['ovs-vsctl add-br b'])
  assert.deepEqual(explainLines(vsctl('/run/o2')).slice(1), [
    'export OVS_RUNDIR=/run/o2',
    'ovs-vsctl add-br b',
  ])
  // A start exports its directory; after a stop the next line says it again.
  const start = explainLines({ kind: 'ovs.daemon', action: 'start', runDir: '/run/o3' })
  assert.equal(start.at(-1), 'export OVS_RUNDIR=/run/o3')
  assert.deepEqual(explainLines(vsctl('/run/o3')), ['ovs-vsctl add-br b'])
  explainLines({ kind: 'ovs.daemon', action: 'stop', runDir: '/run/o3' })
  assert.equal(explainLines(vsctl('/run/o3')).length, 3)
})

test('explainLines: NSDN_EXPLAIN_OVS=system prints ovs-vsctl for the system OVS, no --db', () => {
  process.env.NSDN_EXPLAIN_OVS = 'system'
  try {
    const op: Op = { kind: 'ovs.vsctl', argv: ['--db=unix:/run/o9/db.sock', 'add-br', 'b'] }
    assert.deepEqual(explainLines(op), ['ovs-vsctl add-br b'])
    const tcp: Op = { kind: 'ovs.vsctl', argv: ['--db=tcp:127.0.0.1:6640', 'add-br', 'b'] }
    assert.deepEqual(explainLines(tcp), ['ovs-vsctl add-br b'])
  } finally {
    delete process.env.NSDN_EXPLAIN_OVS
  }
})
