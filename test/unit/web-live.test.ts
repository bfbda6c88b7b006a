/**
 * The pure parts of the live web view: counters and qdiscs decoded from netlink messages, the
 * events of a notification read, rates between two samples, the topology of a lab file, and the
 * login shell read from a passwd file.
 */
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { test } from 'node:test'
import type { NetlinkMessage } from 'netlink'
import { loadFile } from '../../src/lab/load.js'
import { resolve } from '../../src/lab/resolve.js'
import { decodeEvents, linkStats } from '../../src/netlink/monitor.js'
import { encodeAttrs, raw, strz } from '../../src/netlink/wire/attr.js'
import * as K from '../../src/netlink/wire/constants.js'
import * as W from '../../src/netlink/wire/messages.js'
import { delRootQdisc, parseQdisc, tbfQdisc } from '../../src/netlink/wire/tc.js'
import { ratesOf } from '../../src/web/live.js'
import { loginShell } from '../../src/web/terminal.js'
import { checkText, rootDevices, topoOf } from '../../src/web/topo.js'

const SCENARIOS = path.resolve(__dirname, '../../../scenarios')

const msg = (type: number, data: Buffer): NetlinkMessage => ({
  type,
  flags: 0,
  seq: 0,
  port: 0,
  data,
})

/** An RTM_NEWLINK as the kernel sends it: ifinfomsg, name, rtnl_link_stats64. */
function linkMsg(type: number, index: number, name: string, counters: number[]): NetlinkMessage {
  const stats = Buffer.alloc(8 * 24)
  counters.forEach((c, i) => stats.writeBigUInt64LE(BigInt(c), i * 8))
  const IFLA_STATS64 = 23
  return msg(
    type,
    Buffer.concat([
      W.ifinfomsg({ index, flags: K.IFF_UP | 0x10000 }),
      encodeAttrs([strz(K.IFLA_IFNAME, name), raw(IFLA_STATS64, stats)]),
    ]),
  )
}

test('linkStats reads rtnl_link_stats64 in the kernel order', () => {
  const m = linkMsg(K.RTM_NEWLINK, 3, 'eth0', [10, 20, 1000, 2000, 1, 2, 3, 4, 99])
  assert.deepEqual(linkStats(m), {
    rxPackets: 10,
    txPackets: 20,
    rxBytes: 1000,
    txBytes: 2000,
    rxErrors: 1,
    txErrors: 2,
    rxDropped: 3,
    txDropped: 4,
  })
  // a link message without counters (RTEXT_FILTER_SKIP_STATS)
  const bare = msg(
    K.RTM_NEWLINK,
    Buffer.concat([W.ifinfomsg({ index: 1 }), encodeAttrs([strz(K.IFLA_IFNAME, 'lo')])]),
  )
  assert.equal(linkStats(bare), undefined)
})

test('decodeEvents: links, addresses, routes and qdiscs, new and deleted', () => {
  const addr = W.addrRequest('add', { index: 3, address: '10.0.0.1', prefixLen: 24 })
  const route = W.routeRequest('add', {
    family: 4,
    dst: '10.9.0.0',
    dstLen: 16,
    gateway: '10.0.0.254',
  })
  const local = W.routeRequest('add', { family: 4, dst: '10.0.0.1', dstLen: 32, table: 255 })
  const tbf = tbfQdisc({
    index: 3,
    rate: 1_250_000,
    burst: 1600,
    latencyUs: 50_000,
    tickInUsec: 15.625,
  })
  const evs = decodeEvents([
    linkMsg(K.RTM_NEWLINK, 3, 'eth0', [1, 2, 3, 4]),
    linkMsg(K.RTM_DELLINK, 4, 'eth1', []),
    msg(K.RTM_NEWADDR, addr.body),
    msg(K.RTM_DELADDR, addr.body),
    msg(K.RTM_NEWROUTE, route.body),
    msg(K.RTM_NEWROUTE, local.body), // the local table: not a route the page shows
    msg(tbf.type, tbf.body),
    msg(K.NLMSG_DONE, Buffer.alloc(4)), // not a notification
  ])
  assert.deepEqual(
    evs.map((e) => [e.kind, e.del]),
    [
      ['link', false],
      ['link', true],
      ['addr', false],
      ['addr', true],
      ['route', false],
      ['qdisc', false],
    ],
  )
  const [l] = evs
  assert.ok(l?.kind === 'link')
  assert.equal(l.link.name, 'eth0')
  assert.equal(l.link.index, 3)
  assert.equal(l.link.up, true)
  assert.equal(l.link.lowerUp, true)
  assert.equal(l.link.stats?.txBytes, 4)
  const a = evs[2]
  assert.ok(a?.kind === 'addr')
  assert.equal(a.addr.cidr, '10.0.0.1/24')
  const r = evs[4]
  assert.ok(r?.kind === 'route')
  assert.deepEqual([r.route.dst, r.route.via, r.route.family], ['10.9.0.0/16', '10.0.0.254', 4])
})

test('parseQdisc: the rate of a root tbf, in bits per second', () => {
  const req = tbfQdisc({
    index: 7,
    rate: 1_250_000,
    burst: 1600,
    latencyUs: 50_000,
    tickInUsec: 15.625,
  })
  assert.deepEqual(parseQdisc(req.body), { index: 7, kind: 'tbf', root: true, rate: 10_000_000 })
  // the delete request names the root qdisc and no kind
  assert.deepEqual(parseQdisc(delRootQdisc(7).body), { index: 7, kind: '', root: true })
})

test('ratesOf: bits and packets per second; a counter that went down is no traffic', () => {
  const s = (rxb: number, txb: number, rxp: number, txp: number) => ({
    rxBytes: rxb,
    txBytes: txb,
    rxPackets: rxp,
    txPackets: txp,
    rxErrors: 0,
    txErrors: 0,
    rxDropped: 0,
    txDropped: 0,
  })
  assert.deepEqual(ratesOf(s(0, 0, 0, 0), s(1000, 500, 10, 5), 500), {
    rxBps: 16_000,
    txBps: 8_000,
    rxPps: 20,
    txPps: 10,
  })
  assert.deepEqual(ratesOf(s(1000, 1000, 10, 10), s(10, 2000, 1, 20), 1000), {
    rxBps: 0,
    txBps: 8_000,
    rxPps: 0,
    txPps: 10,
  })
  assert.deepEqual(ratesOf(s(0, 0, 0, 0), s(1, 1, 1, 1), 0), {
    rxBps: 0,
    txBps: 0,
    rxPps: 0,
    txPps: 0,
  })
})

test('topoOf: nodes, switches, links with ids, VLANs and rates; checks as text', () => {
  const vlan = topoOf(resolve(loadFile(path.join(SCENARIOS, '02-ovs-vlan.yaml'))))
  assert.equal(vlan.name, 'vlan')
  assert.deepEqual(vlan.switches, [{ name: 'OVS-1', kind: 'ovs', ns: '', dev: 'vlan-OVS-1' }])
  assert.deepEqual(vlan.nodes[0], { name: 'ns1', kind: 'host', ns: 'vlan-ns1' })
  assert.deepEqual(vlan.links[0], {
    id: 'link0',
    a: { node: 'ns1', ns: 'vlan-ns1', ifname: 'eth1' },
    b: { node: 'OVS-1', ns: '', ifname: 'vlan-veth-ns1', vlan: 100 },
  })
  assert.deepEqual(
    vlan.checks.map((c) => c.text),
    [
      'ns1 -> ns3 (192.168.0.3): reach',
      'ns1 -> ns2 (192.168.0.2): isolated',
      'ns2 -> ns3 (192.168.0.3): isolated',
      'ns1 -> ns3 (192.168.0.3): throughput >= 10mbit',
    ],
  )
  const rate = resolve(loadFile(path.join(SCENARIOS, '08-rate-limit.yaml')))
  assert.equal(topoOf(rate).links[0]?.rate, '20mbit')
  assert.equal(checkText(rate.checks[1]!), 'h1 -> h2 (10.8.0.2): throughput >= 10mbit <= 22mbit')
  const trunk = topoOf(resolve(loadFile(path.join(SCENARIOS, '04-vlan-trunk.yaml'))))
  assert.ok(
    trunk.links.some((k) => k.a.trunks?.length || k.b.trunks?.length),
    'trunks',
  )
  // the root node's end and the switches are the lab's devices in the root namespace
  const netns = resolve(loadFile(path.join(SCENARIOS, '01-netns-veth.yaml')))
  assert.deepEqual([...rootDevices(netns)], ['netns-veth0'])
  assert.deepEqual(topoOf(netns).nodes[0], { name: 'host', kind: 'root', ns: '' })
})

test('loginShell: the passwd entry of the uid, sh when it cannot run or is not a shell', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsdn-passwd-'))
  const file = path.join(dir, 'passwd')
  try {
    fs.writeFileSync(
      file,
      [
        'root:x:0:0:root:/root:/bin/sh',
        'web:x:1000:1000::/home/web:/usr/sbin/nologin',
        'gone:x:1001:1001::/home/gone:/no/such/shell',
      ].join('\n'),
    )
    assert.equal(loginShell(file, 0), '/bin/sh')
    assert.equal(loginShell(file, 1000), '/bin/sh')
    assert.equal(loginShell(file, 1001), '/bin/sh')
    fs.writeFileSync(file, `root:x:0:0:root:/root:${process.execPath}\n`)
    assert.equal(loginShell(file, 0), process.execPath)
    assert.equal(loginShell(path.join(dir, 'none'), 0), '/bin/sh')
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})
