import { sandboxThisFile } from '../helpers/sandbox.js'
sandboxThisFile()

import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { ErrorCode } from '../../src/errors.js'
import { nsdn, ok } from '../helpers/cli.js'
import {
  type IpLink,
  eventually,
  ipAddrs,
  ipJson,
  ipLinks,
  netnsNames,
  ping,
  pingSoon,
  strayLinks,
} from '../helpers/kernel.js'

const NOBODY = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups']

const lines = (text: string): string[] => text.split('\n').filter(Boolean)

/** Everything a failed command could have created: links here and in every namespace. */
function snapshot(): unknown {
  const view = (l: IpLink): string => `${l.ifname} ${l.flags.join(',')} ${l.mtu} ${l.master ?? ''}`
  const names = netnsNames()
  return { root: ipLinks().map(view), netns: names.map((n) => [n, ipLinks(n).map(view)]) }
}

test('seed walkthrough (a): a netns joined to ours by a veth pair, ping both ways', async () => {
  const explained: string[] = []
  for (const args of [
    ['netns', 'add', 'nsdn-t-h1'],
    ['link', 'add', 'nsdn-t-v1', 'up', 'type', 'veth', 'peer', 'eth0', 'netns', 'nsdn-t-h1'],
    ['addr', 'add', '10.201.0.1/24', 'dev', 'nsdn-t-v1'],
    ['-n', 'nsdn-t-h1', 'link', 'set', 'lo', 'up'],
    ['-n', 'nsdn-t-h1', 'link', 'set', 'eth0', 'up'],
    ['-n', 'nsdn-t-h1', 'addr', 'add', '10.201.0.2/24', 'dev', 'eth0'],
  ]) {
    const r = ok(['--explain', ...args])
    assert.equal(r.stdout, '', 'results only on stdout, and these commands have none')
    explained.push(...lines(r.stderr))
  }
  assert.deepEqual(explained, [
    'ip netns add nsdn-t-h1',
    'ip link add nsdn-t-v1 up type veth peer name eth0 netns nsdn-t-h1',
    'ip addr add 10.201.0.1/24 dev nsdn-t-v1',
    'ip -n nsdn-t-h1 link set lo up',
    'ip -n nsdn-t-h1 link set eth0 up',
    'ip -n nsdn-t-h1 addr add 10.201.0.2/24 dev eth0',
  ])
  // iproute2's view, not ours.
  assert.deepEqual(
    ipJson<{ name: string }[]>(['netns', 'list']).map((n) => n.name),
    ['nsdn-t-h1'],
  )
  const eth0 = ipLinks('nsdn-t-h1').find((l) => l.ifname === 'eth0')
  assert.equal(eth0?.linkinfo?.info_kind, 'veth')
  assert.ok(eth0?.flags.includes('UP'))
  assert.ok(ipAddrs('nsdn-t-h1').includes('eth0 10.201.0.2/24'))
  assert.ok(ipAddrs().includes('nsdn-t-v1 10.201.0.1/24'))
  assert.ok(ping('10.201.0.2'), 'this namespace -> nsdn-t-h1')
  assert.ok(ping('10.201.0.1', 'nsdn-t-h1'), 'nsdn-t-h1 -> this namespace')

  // netns exec runs inside and passes the exit status on.
  const p = nsdn(['netns', 'exec', 'nsdn-t-h1', '--', 'ping', '-nc1', '-W2', '10.201.0.1'])
  assert.equal(p.status, 0, p.stderr)
  assert.match(p.stdout, /1 received/)
  assert.equal(nsdn(['netns', 'exec', 'nsdn-t-h1', '--', 'sh', '-c', 'exit 7']).status, 7)
  const inside = ok(['netns', 'exec', 'nsdn-t-h1', '--', 'ip', '-j', 'link', 'show'])
  assert.deepEqual(
    JSON.parse(inside.stdout)
      .map((l: IpLink) => l.ifname)
      .sort(),
    ['eth0', 'lo'],
  )

  // Routes in the namespace, checked with ip -j route.
  ok(['-n', 'nsdn-t-h1', 'route', 'add', 'default', 'via', '10.201.0.1'])
  ok(['-n', 'nsdn-t-h1', 'route', 'add', '10.9.0.0/16', 'via', '10.201.0.1', 'metric', '7'])
  const routes = ipJson<{ dst: string; gateway?: string; metric?: number }[]>(
    ['route', 'show'],
    'nsdn-t-h1',
  )
  assert.ok(routes.some((r) => r.dst === 'default' && r.gateway === '10.201.0.1'))
  assert.ok(routes.some((r) => r.dst === '10.9.0.0/16' && r.metric === 7))
  const listed: { dst: string; dev: string }[] = JSON.parse(
    ok(['-n', 'nsdn-t-h1', '--json', 'route', 'list']).stdout,
  )
  assert.ok(listed.some((r) => r.dst === 'default' && r.dev === 'eth0'))
  ok(['-n', 'nsdn-t-h1', 'route', 'del', '10.9.0.0/16'])
  const after = ipJson<{ dst: string }[]>(['route', 'show'], 'nsdn-t-h1')
  assert.ok(!after.some((r) => r.dst === '10.9.0.0/16'))

  // --json link list is the kernel's list of links.
  const links = JSON.parse(ok(['-n', 'nsdn-t-h1', '--json', 'link', 'list']).stdout)
  assert.deepEqual(
    links.map((l: { index: number; name: string; mtu: number }) => [l.index, l.name, l.mtu]),
    ipLinks('nsdn-t-h1').map((l) => [l.ifindex, l.ifname, l.mtu]),
  )
  const table = ok(['link', 'list']).stdout
  assert.match(table, /^INDEX +NAME +KIND +STATE +MASTER +MTU +MAC\n/)
  assert.match(table, /\n\d+ +nsdn-t-v1 +veth +UP +- +1500 +([0-9a-f]{2}:){5}[0-9a-f]{2}\n/)
  const addrs: { cidr: string; dev: string }[] = JSON.parse(
    ok(['-n', 'nsdn-t-h1', '--json', 'addr', 'list', 'dev', 'eth0']).stdout,
  )
  assert.ok(addrs.some((a) => a.cidr === '10.201.0.2/24' && a.dev === 'eth0'))
  ok(['-n', 'nsdn-t-h1', 'addr', 'del', '10.201.0.2/24', 'dev', 'eth0'])
  assert.ok(!ipAddrs('nsdn-t-h1').includes('eth0 10.201.0.2/24'))

  ok(['netns', 'del', 'nsdn-t-h1'])
  assert.ok(await eventually(() => strayLinks().length === 0), `left: ${strayLinks()}`)
  assert.deepEqual(netnsNames(), [])
})

test('seed walkthrough (b): two namespaces on a Linux bridge ping each other', async () => {
  ok(['link', 'add', 'nsdn-t-br', 'up', 'type', 'bridge'])
  for (const [i, h] of [
    [1, 'nsdn-t-b1'],
    [2, 'nsdn-t-b2'],
  ] as const) {
    ok(['netns', 'add', h])
    const port = `nsdn-t-p${i}`
    ok(['link', 'add', port, 'master', 'nsdn-t-br', 'up', 'type', 'veth', 'peer', 'eth0'])
    ok(['link', 'set', 'eth0', 'netns', h])
    ok(['-n', h, 'link', 'set', 'eth0', 'up'])
    ok(['-n', h, 'addr', 'add', `10.202.0.${i}/24`, 'dev', 'eth0'])
  }
  const ports = ipLinks()
    .filter((l) => l.master === 'nsdn-t-br')
    .map((l) => l.ifname)
  assert.deepEqual(ports.sort(), ['nsdn-t-p1', 'nsdn-t-p2'])
  assert.ok(pingSoon('10.202.0.2', 'nsdn-t-b1'), 'b1 -> b2 over the bridge')
  assert.ok(ping('10.202.0.1', 'nsdn-t-b2'), 'b2 -> b1')

  // Several changes in one `link set`, and leaving the bridge.
  const mac = '02:00:00:00:02:02'
  ok(['link', 'set', 'nsdn-t-p2', 'down', 'nomaster', 'mtu', '1400', 'address', mac])
  const p2 = ipLinks().find((l) => l.ifname === 'nsdn-t-p2')
  assert.deepEqual(
    [p2?.master, p2?.mtu, p2?.address, p2?.flags.includes('UP')],
    [undefined, 1400, '02:00:00:00:02:02', false],
  )
  assert.ok(!ping('10.202.0.2', 'nsdn-t-b1'), 'b2 is off the bridge')
  // Moving and renaming in one step.
  ok(['link', 'set', 'nsdn-t-p2', 'netns', 'nsdn-t-b1', 'name', 'nsdn-t-moved'])
  assert.ok(ipLinks('nsdn-t-b1').some((l) => l.ifname === 'nsdn-t-moved'))

  ok(['link', 'del', 'nsdn-t-br'])
  ok(['netns', 'del', 'nsdn-t-b1'])
  ok(['netns', 'del', 'nsdn-t-b2'])
  assert.ok(await eventually(() => strayLinks().length === 0), `left: ${strayLinks()}`)
  assert.deepEqual(netnsNames(), [])
})

test('--dry-run prints the commands and creates nothing', () => {
  const before = snapshot()
  const printed: string[] = []
  for (const args of [
    ['netns', 'add', 'nsdn-t-dry'],
    ['link', 'add', 'nsdn-t-dbr', 'up', 'type', 'bridge'],
    ['link', 'add', 'nsdn-t-dv', 'type', 'veth', 'peer', 'nsdn-t-dp'],
    [
      'link',
      'add',
      'nsdn-t-dx',
      'type',
      'vxlan',
      'id',
      '42',
      'remote',
      '192.0.2.2',
      'dstport',
      '4789',
    ],
    ['addr', 'add', '10.203.0.1/24', 'dev', 'lo'],
    ['route', 'add', '10.204.0.0/16', 'dev', 'lo'],
  ])
    printed.push(...lines(ok(['--dry-run', ...args]).stderr))
  assert.deepEqual(printed, [
    'ip netns add nsdn-t-dry',
    'ip link add nsdn-t-dbr up type bridge',
    'ip link add nsdn-t-dv type veth peer name nsdn-t-dp',
    'ip link add nsdn-t-dx type vxlan id 42 remote 192.0.2.2 dstport 4789',
    'ip addr add 10.203.0.1/24 dev lo',
    'ip route add 10.204.0.0/16 dev lo',
  ])
  assert.deepEqual(snapshot(), before)
  assert.ok(!ipAddrs().includes('lo 10.203.0.1/24'))
  assert.ok(!ipJson<{ dst: string }[]>(['route', 'show']).some((r) => r.dst === '10.204.0.0/16'))
})

/** [args, code, what the message says, run as nobody] */
const BAD: Array<[string[], ErrorCode, RegExp, boolean?]> = [
  [['link', 'add', 'nsdn-t-abcdefghij', 'type', 'bridge'], 'E_CONFIG', /longer than 15 bytes/],
  [['link', 'add', 'nsdn-t/a', 'type', 'bridge'], 'E_CONFIG', /invalid interface name "nsdn-t\/a"/],
  [['link', 'add', 'nsdn-t a', 'type', 'bridge'], 'E_CONFIG', /invalid interface name "nsdn-t a"/],
  [['link', 'add', 'nsdn-t..a', 'type', 'bridge'], 'E_CONFIG', /invalid interface name/],
  [['netns', 'add', '../x'], 'E_CONFIG', /invalid netns name "\.\.\/x"/],
  [['-n', '../x', 'link', 'list'], 'E_CONFIG', /-n: invalid netns name/],
  [
    ['-n', 'nsdn-t-nope', 'link', 'add', 'nsdn-t-x', 'type', 'bridge'],
    'E_NETNS',
    /netns "nsdn-t-nope" does not exist/,
  ],
  [
    ['link', 'add', 'nsdn-t-v', 'type', 'veth', 'peer', 'nsdn-t-p', 'netns', 'nsdn-t-nope'],
    'E_NETNS',
    /does not exist/,
  ],
  [['addr', 'add', '10.0.0/24', 'dev', 'lo'], 'E_CONFIG', /invalid address "10\.0\.0\/24"/],
  [['addr', 'add', '10.0.0.1/33', 'dev', 'lo'], 'E_CONFIG', /prefix length 33/],
  [['link', 'set', 'lo', 'address', '02:00:00:00:00'], 'E_CONFIG', /invalid MAC address/],
  [
    ['link', 'add', 'nsdn-t-x', 'type', 'dummy'],
    'E_CONFIG',
    /unknown link type "dummy" \(known: bridge, veth/,
  ],
  [
    ['link', 'add', 'nsdn-t-vl', 'type', 'vlan', 'link', 'lo', 'id', '100'],
    'E_KERNEL_FEATURE',
    /CONFIG_VLAN_8021Q/,
  ],
  [
    ['link', 'add', 'nsdn-t-x', 'master', 'nsdn-t-nobr', 'up', 'type', 'macvlan', 'link', 'lo'],
    'E_NOT_FOUND',
    /"nsdn-t-nobr" not found/,
  ],
  [['link', 'set', 'nsdn-t-none', 'up'], 'E_NOT_FOUND', /"nsdn-t-none" not found/],
  [['link', 'add', 'nsdn-t-x', 'type', 'bridge', '--frob'], 'E_USAGE', /unknown option '--frob'/],
  [['link', 'frob'], 'E_USAGE', /unknown command 'frob'/],
  [['netns', 'add', 'nsdn-t-keep'], 'E_EXISTS', /netns "nsdn-t-keep" already exists/],
  [
    ['link', 'add', 'lo', 'type', 'bridge'],
    'E_EXISTS',
    /^nsdn: ip link add lo type bridge: EEXIST/,
  ],
  // The second step (master) fails: the vxlan made by the first is deleted again.
  [
    ['link', 'add', 'nsdn-t-vx', 'master', 'lo', 'type', 'vxlan', 'id', '5'],
    'E_KERNEL',
    /ip link set nsdn-t-vx master lo: EOPNOTSUPP/,
  ],
  [['link', 'add', 'nsdn-t-x', 'type', 'veth'], 'E_USAGE', /needs "peer NAME"/],
  [
    ['link', 'add', 'nsdn-t-np', 'type', 'bridge'],
    'E_PERM',
    /nsdn needs root \(CAP_NET_ADMIN\)/,
    true,
  ],
  [['netns', 'add', 'nsdn-t-np'], 'E_PERM', /nsdn needs root/, true],
]

/** The exit status of each code, as scripts see it (sysexits.h; src/errors.ts must agree). */
const EXIT: Partial<Record<ErrorCode, number>> = {
  E_CONFIG: 78,
  E_USAGE: 64,
  E_NETNS: 66,
  E_KERNEL_FEATURE: 69,
  E_KERNEL: 71,
  E_NOT_FOUND: 1,
  E_EXISTS: 1,
  E_PERM: 77,
}

test('bad input: the exit status of its code, one line, a hint, and nothing created', () => {
  ok(['netns', 'add', 'nsdn-t-keep'])
  const before = snapshot()
  for (const [args, code, text, asNobody] of BAD) {
    const r = nsdn(args, { prefix: asNobody ? NOBODY : [] })
    const what = `nsdn ${args.join(' ')}${asNobody ? ' (as nobody)' : ''}`
    assert.equal(r.status, EXIT[code], `${what}: exit ${r.status}, stderr ${r.stderr}`)
    const err = lines(r.stderr)
    assert.match(err[0] ?? '', new RegExp(`^nsdn: .+ \\[${code}\\]$`), what)
    assert.match(err[0] ?? '', text, what)
    assert.equal(err.filter((l) => l.startsWith('nsdn:')).length, 1, `${what}: one message`)
    assert.match(err[1] ?? '', /^ {2}hint: /, `${what}: a hint`)
    assert.equal(r.stdout, '', `${what}: nothing on stdout`)
    assert.deepEqual(snapshot(), before, `${what} changed something`)
  }
  ok(['netns', 'del', 'nsdn-t-keep'])
})

test('--json: results and errors parse', () => {
  const list = nsdn(['--json', 'link', 'list'], { prefix: NOBODY })
  assert.equal(list.status, 0, `reads need no root: ${list.stderr}`)
  assert.deepEqual(
    JSON.parse(list.stdout).map((l: { name: string }) => l.name),
    ipLinks().map((l) => l.ifname),
  )
  assert.deepEqual(JSON.parse(ok(['--json', 'netns', 'list']).stdout), [])
  const bad = nsdn(['--json', 'link', 'add', 'a/b', 'type', 'bridge'])
  assert.equal(bad.status, 78)
  assert.deepEqual(Object.keys(JSON.parse(bad.stdout).error), ['code', 'message', 'hint'])
  assert.equal(JSON.parse(bad.stdout).error.code, 'E_CONFIG')
})

test('nothing of ours remains', () => {
  assert.deepEqual(netnsNames(), [])
  assert.deepEqual(strayLinks(), [])
})
