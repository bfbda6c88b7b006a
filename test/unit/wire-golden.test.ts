/**
 * Golden tests: the bytes of each request nsdn builds must be the bytes `ip` (iproute2 6.1)
 * sends for the same command, as captured by test/fixtures/iproute2/capture.sh. Masked: the
 * sequence number, the port id, and the fd number inside IFLA_NET_NS_FD.
 * The capture setup's indexes: lo=1, br0=2, vh2=3, vh1=4.
 */
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { test } from 'node:test'
import * as K from '../../src/netlink/wire/constants.js'
import * as W from '../../src/netlink/wire/messages.js'
import { tbfQdisc } from '../../src/netlink/wire/tc.js'
import type { Op } from '../../src/op.js'
import { formatOp } from '../../src/teach/commands.js'

const FIXTURES = path.resolve(__dirname, '../../../test/fixtures/iproute2')
const BR0 = 2
const VH2 = 3
const VH1 = 4
/** A lab's device group, as a number of the size labs get (src/lab/plan.ts labGroup). */
const GROUP = 1314000000
/** Any fd: its value is masked. */
const NS_FD = 99
const mac = (s: string): Buffer => Buffer.from(s.split(':').map((b) => parseInt(b, 16)))

interface Case {
  name: string
  req: W.Request
  /** The Op whose --explain line must be the fixture's command; none where no Op fits. */
  op?: Op
}

const cases: Case[] = [
  {
    name: 'qdisc-add-tbf',
    // tickInUsec: /proc/net/psched of the capturing kernel (1000/64).
    req: tbfQdisc({
      index: VH1,
      rate: 1_250_000,
      burst: 1600,
      latencyUs: 50_000,
      tickInUsec: 15.625,
    }),
    op: { kind: 'tc.qdisc.tbf', dev: 'vh1', rate: 10_000_000, burst: 1600, latency: 50 },
  },
  {
    name: 'link-add-veth-peer-netns',
    req: W.newLink({ name: 'vh9', kind: { kind: 'veth', peer: 'eth0', peerNsFd: NS_FD } }),
    op: { kind: 'link.add.veth', name: 'vh9', peer: 'eth0', peerNs: 't1' },
  },
  {
    name: 'link-add-veth-one-queue',
    req: W.newLink({
      name: 'vh7',
      kind: { kind: 'veth', peer: 'eth7', peerNsFd: NS_FD, peerQueues: 1 },
      masterIndex: BR0,
      up: true,
      queues: 1,
    }),
    op: {
      kind: 'link.add.veth',
      name: 'vh7',
      peer: 'eth7',
      peerNs: 't1',
      master: 'br0',
      up: true,
      queues: 1,
    },
  },
  {
    name: 'link-add-veth-master-up',
    req: W.newLink({
      name: 'vh8',
      kind: { kind: 'veth', peer: 'eth8' },
      masterIndex: BR0,
      up: true,
    }),
    op: { kind: 'link.add.veth', name: 'vh8', peer: 'eth8', master: 'br0', up: true },
  },
  {
    name: 'link-add-bridge',
    req: W.newLink({ name: 'br1', kind: { kind: 'bridge' } }),
    op: { kind: 'link.add', name: 'br1', type: 'bridge' },
  },
  {
    name: 'link-add-bridge-group',
    req: W.newLink({ name: 'br4', kind: { kind: 'bridge' }, up: true, group: GROUP }),
    op: { kind: 'link.add', name: 'br4', group: GROUP, type: 'bridge', up: true },
  },
  {
    name: 'link-add-veth-group',
    req: W.newLink({
      name: 'vh6',
      kind: { kind: 'veth', peer: 'eth6', peerNsFd: NS_FD, peerQueues: 1 },
      masterIndex: BR0,
      up: true,
      queues: 1,
      group: GROUP,
    }),
    op: {
      kind: 'link.add.veth',
      name: 'vh6',
      group: GROUP,
      peer: 'eth6',
      peerNs: 't1',
      master: 'br0',
      up: true,
      queues: 1,
    },
  },
  {
    name: 'link-add-bridge-no-snooping',
    req: W.newLink({ name: 'br3', kind: { kind: 'bridge', mcastSnooping: false }, up: true }),
    op: { kind: 'link.add', name: 'br3', type: 'bridge', up: true, mcastSnooping: false },
  },
  {
    name: 'link-add-bridge-vlan-filtering',
    req: W.newLink({ name: 'br2', kind: { kind: 'bridge', vlanFiltering: true } }),
  },
  {
    name: 'link-add-macvlan',
    req: W.newLink({ name: 'mv1', linkIndex: VH1, kind: { kind: 'macvlan', mode: 'bridge' } }),
    op: { kind: 'link.add.macvlan', name: 'mv1', parent: 'vh1', mode: 'bridge' },
  },
  {
    name: 'link-add-vxlan',
    req: W.newLink({
      name: 'vx1',
      kind: {
        kind: 'vxlan',
        id: 42,
        remote: '10.0.0.2',
        local: '10.0.0.1',
        linkIndex: VH1,
        port: 4789,
      },
    }),
    op: {
      kind: 'link.add.vxlan',
      name: 'vx1',
      vxlan: { id: 42, remote: '10.0.0.2', local: '10.0.0.1', dev: 'vh1', dstport: 4789 },
    },
  },
  {
    name: 'link-add-vxlan-group6',
    req: W.newLink({
      name: 'vx6',
      kind: { kind: 'vxlan', id: 7, group: 'ff05::100', linkIndex: VH1, port: 4789 },
    }),
    op: {
      kind: 'link.add.vxlan',
      name: 'vx6',
      vxlan: { id: 7, group: 'ff05::100', dev: 'vh1', dstport: 4789 },
    },
  },
  {
    name: 'link-add-vlan',
    req: W.newLink({ name: 'vh1.100', linkIndex: VH1, kind: { kind: 'vlan', id: 100 } }),
    op: { kind: 'link.add.vlan', name: 'vh1.100', parent: 'vh1', id: 100 },
  },
  {
    name: 'link-set-master-up',
    req: W.setLink({ index: VH1, masterIndex: BR0, up: true }),
    op: { kind: 'link.set', name: 'vh1', master: 'br0', up: true },
  },
  {
    name: 'link-set-nomaster',
    req: W.setLink({ index: VH1, masterIndex: 0 }),
    op: { kind: 'link.set', name: 'vh1', master: null },
  },
  {
    name: 'link-set-mtu',
    req: W.setLink({ index: VH1, mtu: 1400 }),
    op: { kind: 'link.set', name: 'vh1', mtu: 1400 },
  },
  {
    name: 'link-set-addrgenmode-none',
    req: W.setLink({ index: VH1, addrGenMode: K.IN6_ADDR_GEN_MODE.none }),
    op: { kind: 'link.set', name: 'vh1', addrgenmode: 'none' },
  },
  {
    name: 'link-set-address',
    req: W.setLink({ index: VH1, address: mac('02:00:00:00:00:01') }),
    op: { kind: 'link.set', name: 'vh1', address: '02:00:00:00:00:01' },
  },
  {
    name: 'link-set-name',
    req: W.setLink({ index: VH1, newName: 'vh5' }),
    op: { kind: 'link.set', name: 'vh1', newName: 'vh5' },
  },
  {
    name: 'link-set-netns',
    req: W.setLink({ index: VH2, netnsFd: NS_FD }),
    op: { kind: 'link.set', name: 'vh2', netns: 't1' },
  },
  {
    name: 'link-set-down',
    req: W.setLink({ index: VH1, up: false }),
    op: { kind: 'link.set', name: 'vh1', up: false },
  },
  {
    name: 'link-set-many',
    req: W.setLink({
      index: VH1,
      masterIndex: BR0,
      mtu: 1400,
      address: mac('02:00:00:00:00:02'),
      up: true,
    }),
    op: {
      kind: 'link.set',
      name: 'vh1',
      master: 'br0',
      mtu: 1400,
      address: '02:00:00:00:00:02',
      up: true,
    },
  },
  {
    name: 'link-set-promisc',
    req: W.setLinkPromisc(VH1, true),
    op: { kind: 'link.set.promisc', name: 'vh1', on: true },
  },
  {
    name: 'link-set-hairpin',
    req: W.setBridgePort(VH1, { hairpin: true }),
    op: { kind: 'link.set.bridge_slave', name: 'vh1', hairpin: true },
  },
  { name: 'link-del', req: W.delLink(VH1), op: { kind: 'link.del', name: 'vh1' } },
  {
    name: 'link-del-group',
    req: W.delLinkGroup(GROUP),
    op: { kind: 'link.del.group', group: GROUP },
  },
  {
    name: 'addr-add-v4',
    req: W.addrRequest('add', { index: VH1, address: '10.0.0.1', prefixLen: 24 }),
    op: { kind: 'addr.add', cidr: '10.0.0.1/24', dev: 'vh1' },
  },
  {
    name: 'addr-add-v6',
    req: W.addrRequest('add', { index: VH1, address: 'fd00::1', prefixLen: 64 }),
    op: { kind: 'addr.add', cidr: 'fd00::1/64', dev: 'vh1' },
  },
  {
    name: 'addr-replace',
    req: W.addrRequest('replace', { index: VH1, address: '10.0.0.1', prefixLen: 24 }),
    op: { kind: 'addr.replace', cidr: '10.0.0.1/24', dev: 'vh1' },
  },
  {
    name: 'addr-del',
    req: W.addrRequest('del', { index: VH1, address: '10.0.0.1', prefixLen: 24 }),
    op: { kind: 'addr.del', cidr: '10.0.0.1/24', dev: 'vh1' },
  },
  {
    name: 'addr-del-v6',
    req: W.addrRequest('del', { index: VH1, address: 'fd00::1', prefixLen: 64 }),
    op: { kind: 'addr.del', cidr: 'fd00::1/64', dev: 'vh1' },
  },
  {
    name: 'route-add-via-dev',
    req: W.routeRequest('add', {
      family: 4,
      dst: '10.1.0.0',
      dstLen: 24,
      gateway: '10.0.0.2',
      oifIndex: VH1,
    }),
    op: { kind: 'route.add', dst: '10.1.0.0/24', via: '10.0.0.2', dev: 'vh1' },
  },
  {
    name: 'route-add-default-via',
    req: W.routeRequest('add', { family: 4, dstLen: 0, gateway: '10.0.0.2' }),
    op: { kind: 'route.add', dst: 'default', via: '10.0.0.2' },
  },
  {
    name: 'route-add-dev-src-metric-table',
    req: W.routeRequest('add', {
      family: 4,
      dst: '10.2.0.0',
      dstLen: 24,
      oifIndex: VH1,
      prefsrc: '10.0.0.1',
      metric: 50,
      table: 100,
    }),
    op: {
      kind: 'route.add',
      dst: '10.2.0.0/24',
      dev: 'vh1',
      src: '10.0.0.1',
      metric: 50,
      table: 100,
    },
  },
  {
    name: 'route-add-via-table-1000',
    req: W.routeRequest('add', {
      family: 4,
      dst: '10.3.0.0',
      dstLen: 24,
      gateway: '10.0.0.2',
      table: 1000,
    }),
    op: { kind: 'route.add', dst: '10.3.0.0/24', via: '10.0.0.2', table: 1000 },
  },
  {
    name: 'route-add-scope-host',
    req: W.routeRequest('add', {
      family: 4,
      dst: '10.4.0.0',
      dstLen: 24,
      oifIndex: VH1,
      scope: 'host',
    }),
    op: { kind: 'route.add', dst: '10.4.0.0/24', dev: 'vh1', scope: 'host' },
  },
  {
    name: 'route-replace',
    req: W.routeRequest('replace', {
      family: 4,
      dst: '10.1.0.0',
      dstLen: 24,
      gateway: '10.0.0.2',
      oifIndex: VH1,
    }),
    op: { kind: 'route.replace', dst: '10.1.0.0/24', via: '10.0.0.2', dev: 'vh1' },
  },
  {
    name: 'route-del',
    req: W.routeRequest('del', {
      family: 4,
      dst: '10.1.0.0',
      dstLen: 24,
      gateway: '10.0.0.2',
      oifIndex: VH1,
    }),
    op: { kind: 'route.del', dst: '10.1.0.0/24', via: '10.0.0.2', dev: 'vh1' },
  },
  {
    name: 'route-add-v6-dev',
    req: W.routeRequest('add', { family: 6, dst: 'fd00:1::', dstLen: 64, oifIndex: VH1 }),
    op: { kind: 'route.add', dst: 'fd00:1::/64', dev: 'vh1' },
  },
  {
    name: 'route-add-v6-via',
    req: W.routeRequest('add', {
      family: 6,
      dst: 'fd00:2::',
      dstLen: 64,
      gateway: 'fd00::2',
      oifIndex: VH1,
    }),
    op: { kind: 'route.add', dst: 'fd00:2::/64', via: 'fd00::2', dev: 'vh1' },
  },
  {
    name: 'route-del-v6',
    req: W.routeRequest('del', { family: 6, dst: 'fd00:1::', dstLen: 64, oifIndex: VH1 }),
    op: { kind: 'route.del', dst: 'fd00:1::/64', dev: 'vh1' },
  },
  {
    name: 'bridge-vlan-add',
    req: W.bridgeVlanAdd(VH1, 100, K.BRIDGE_VLAN_INFO_PVID | K.BRIDGE_VLAN_INFO_UNTAGGED),
    op: { kind: 'bridge.vlan.add', dev: 'vh1', vid: 100, pvid: true, untagged: true },
  },
]

interface Fixture {
  command: string
  bytes: Buffer
}

function readFixture(name: string): Fixture {
  const text = fs.readFileSync(path.join(FIXTURES, `${name}.hex`), 'utf8')
  const lines = text.split('\n')
  const first = lines[0] ?? ''
  assert.match(first, /^# /, `${name}.hex: the first line is "# <command>"`)
  const hex = lines
    .slice(1)
    .filter((l) => !l.startsWith('#'))
    .join(' ')
    .split(/\s+/)
    .filter(Boolean)
  return { command: first.slice(2), bytes: Buffer.from(hex.join(''), 'hex') }
}

/** The request as the socket sends it: nlmsghdr (len, type, flags, seq 0, port 0) + body. */
function frame(r: W.Request): Buffer {
  const h = Buffer.alloc(16)
  h.writeUInt32LE(16 + r.body.length, 0)
  h.writeUInt16LE(r.type, 4)
  h.writeUInt16LE(r.flags | K.NLM_F_REQUEST | K.NLM_F_ACK, 6)
  return Buffer.concat([h, r.body])
}

const LINK_TYPES = new Set([K.RTM_NEWLINK, K.RTM_DELLINK, K.RTM_SETLINK])
const FIXED_LEN: Record<number, [number, string]> = {
  [K.RTM_NEWLINK]: [16, 'ifinfomsg'],
  [K.RTM_DELLINK]: [16, 'ifinfomsg'],
  [K.RTM_SETLINK]: [16, 'ifinfomsg'],
  [K.RTM_NEWADDR]: [8, 'ifaddrmsg'],
  [K.RTM_DELADDR]: [8, 'ifaddrmsg'],
  [K.RTM_NEWROUTE]: [12, 'rtmsg'],
  [K.RTM_DELROUTE]: [12, 'rtmsg'],
  36: [20, 'tcmsg'],
}

interface AttrAt {
  type: number
  off: number
  len: number
}

function attrsIn(b: Buffer, start: number, end: number): AttrAt[] {
  const out: AttrAt[] = []
  for (let off = start; off + 4 <= end; ) {
    const len = b.readUInt16LE(off)
    if (len < 4 || off + len > end) break
    out.push({ type: b.readUInt16LE(off + 2), off, len })
    off += (len + 3) & ~3
  }
  return out
}

/** Offsets of the values of IFLA_NET_NS_FD, at the link level or in a veth peer. */
function nsFdOffsets(b: Buffer): number[] {
  if (b.length < 32 || !LINK_TYPES.has(b.readUInt16LE(4))) return []
  const out: number[] = []
  const linkLevel = (start: number, end: number): void => {
    for (const a of attrsIn(b, start, end)) {
      if (a.type === K.IFLA_NET_NS_FD) out.push(a.off + 4)
      if (a.type !== K.IFLA_LINKINFO) continue
      const info = attrsIn(b, a.off + 4, a.off + a.len)
      const kind = info.find((i) => i.type === K.IFLA_INFO_KIND)
      const data = info.find((i) => i.type === K.IFLA_INFO_DATA)
      if (!kind || !data) continue
      if (b.toString('latin1', kind.off + 4, kind.off + kind.len).replace(/\0+$/, '') !== 'veth')
        continue
      for (const p of attrsIn(b, data.off + 4, data.off + data.len))
        if (p.type === K.VETH_INFO_PEER) linkLevel(p.off + 4 + 16, p.off + p.len)
    }
  }
  linkLevel(32, b.length)
  return out
}

/** Zero the process-specific bytes of both messages: seq, port, netns fds. */
function mask(a: Buffer, b: Buffer): [Buffer, Buffer] {
  const x = Buffer.from(a)
  const y = Buffer.from(b)
  const offs = [8, 9, 10, 11, 12, 13, 14, 15]
  for (const o of [...nsFdOffsets(a), ...nsFdOffsets(b)]) offs.push(o, o + 1, o + 2, o + 3)
  for (const o of offs) {
    if (o < x.length) x[o] = 0
    if (o < y.length) y[o] = 0
  }
  return [x, y]
}

/** Where offset `off` falls: header, fixed part, or a path of attribute types. */
function locate(b: Buffer, off: number): string {
  if (off < 16) return 'nlmsghdr'
  const [fixed, fixedName] = FIXED_LEN[b.readUInt16LE(4)] ?? [0, 'body']
  if (off < 16 + fixed) return fixedName
  const where: string[] = []
  let start = 16 + fixed
  let end = b.length
  for (;;) {
    const a = attrsIn(b, start, end).find((x) => off >= x.off && off < x.off + x.len)
    if (!a) return where.length ? where.join(' > ') : 'past the attributes'
    where.push(`attr ${a.type} @0x${a.off.toString(16)} (len ${a.len})`)
    if (off < a.off + 4) return where.join(' > ') + ' header'
    // descend while the payload parses as attributes that fit exactly
    const inner = attrsIn(b, a.off + 4, a.off + a.len)
    const last = inner[inner.length - 1]
    if (!last || ((last.off + last.len + 3) & ~3) < a.off + a.len - 3) return where.join(' > ')
    start = a.off + 4
    end = a.off + a.len
  }
}

/** Rows of 16 bytes, side by side, those that differ marked with carets under each byte. */
function hexDiff(want: Buffer, got: Buffer): string {
  const row = (b: Buffer, o: number): string =>
    Array.from({ length: 16 }, (_, i) =>
      o + i < b.length ? (b[o + i] as number).toString(16).padStart(2, '0') : '  ',
    ).join(' ')
  const out = [`length: iproute2 ${want.length}, nsdn ${got.length}`]
  let first = -1
  for (let o = 0; o < Math.max(want.length, got.length); o += 16) {
    const marks = Array.from({ length: 16 }, (_, i) =>
      want[o + i] === got[o + i] ? '  ' : '^^',
    ).join(' ')
    const differs = marks.trim() !== ''
    if (differs && first < 0) first = o + marks.indexOf('^') / 3
    const off = o.toString(16).padStart(4, '0')
    out.push(`${differs ? '!' : ' '} ${off}  ip   ${row(want, o)}`)
    out.push(`        nsdn ${row(got, o)}`)
    if (differs) out.push(`             ${marks}`)
  }
  if (first >= 0) {
    const byte = first.toString(16)
    out.push(`first difference at 0x${byte}: iproute2 ${locate(want, first)}`)
    out.push(`                           nsdn ${locate(got, first)}`)
  }
  return out.join('\n')
}

test('every fixture has a case and every case a fixture', () => {
  const files = fs
    .readdirSync(FIXTURES)
    .filter((f) => f.endsWith('.hex'))
    .map((f) => f.slice(0, -4))
    .sort()
  assert.deepEqual(files, cases.map((c) => c.name).sort())
})

for (const tc of cases) {
  test(`bytes of ${tc.name} are iproute2's`, () => {
    const fx = readFixture(tc.name)
    const [want, got] = mask(fx.bytes, frame(tc.req))
    assert.equal(fx.bytes.readUInt32LE(0), fx.bytes.length, 'fixture length field')
    if (!want.equals(got)) assert.fail(`${tc.name}: ${fx.command}\n${hexDiff(want, got)}`)
  })
  const op = tc.op
  if (op)
    test(`--explain of ${tc.name} prints the captured command`, () => {
      assert.equal(formatOp(op), readFixture(tc.name).command)
    })
}

test('masking covers only the netns fd, not the rest of the veth peer', () => {
  const a = frame(W.newLink({ name: 'a', kind: { kind: 'veth', peer: 'b', peerNsFd: 3 } }))
  const b = frame(W.newLink({ name: 'a', kind: { kind: 'veth', peer: 'c', peerNsFd: 4 } }))
  const [x, y] = mask(a, b)
  assert.equal(nsFdOffsets(a).length, 1)
  assert.ok(!x.equals(y), 'the peer name still differs')
  const c = frame(W.newLink({ name: 'a', kind: { kind: 'veth', peer: 'b', peerNsFd: 4 } }))
  const [p, q] = mask(a, c)
  assert.ok(p.equals(q), 'the fd number alone is masked')
})

test('a mismatch prints a hex diff that names the attribute', () => {
  const a = frame(W.setLink({ index: 4, mtu: 1400 }))
  const b = frame(W.setLink({ index: 4, mtu: 1500 }))
  const diff = hexDiff(a, b)
  assert.match(diff, /^! 0020 {2}ip {3}08 00 04 00 78 05/m)
  assert.match(diff, /\^\^/)
  assert.match(diff, /first difference at 0x24: iproute2 attr 4 @0x20 \(len 8\)/)
})
