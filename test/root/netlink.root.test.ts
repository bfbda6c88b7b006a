import { sandboxThisFile } from '../helpers/sandbox.js'
sandboxThisFile()

import assert from 'node:assert/strict'
import os from 'node:os'
import { after, test } from 'node:test'
import { CLONE, sethostname, unshare } from '../../src/ffi/libc.js'
import { addrAdd, addrDel, addrList, addrReplace } from '../../src/netlink/addr.js'
import {
  linkAddBridge,
  linkAddMacvlan,
  linkAddVeth,
  linkAddVxlan,
  linkByIndex,
  linkByName,
  linkDel,
  linkDelGroup,
  linkBriefs,
  linkList,
  linkSet,
  linkSetMaster,
  linkSetNoMaster,
  linkSetNs,
  linkSetUp,
  tryLinkByName,
} from '../../src/netlink/link.js'
import { neighList } from '../../src/netlink/neigh.js'
import { routeAdd, routeDel, routeList, routeReplace } from '../../src/netlink/route.js'
import { Rtnl } from '../../src/netlink/rtnl.js'
import { NetNs } from '../../src/netns/netns.js'
import {
  eventually,
  ipAddrs,
  ipJson,
  ipLinks,
  netnsNames,
  ping,
  strayLinks,
} from '../helpers/kernel.js'

interface IpRoute {
  dst: string
  gateway?: string
  dev?: string
  metric?: number
  prefsrc?: string
  table?: string
}

const root = Rtnl.for()
after(async () => {
  for (const n of NetNs.list()) NetNs.delete(n)
  Rtnl.closeAll()
  assert.ok(await eventually(() => strayLinks().length === 0), `left: ${strayLinks()}`)
  assert.deepEqual(netnsNames(), [])
})

test('macvlan and vxlan links, as ip -d shows them', async () => {
  await linkAddVeth(root, 'nsdn-t-p0', 'nsdn-t-p1', { up: true })
  await linkAddMacvlan(root, 'nsdn-t-mv', 'nsdn-t-p0', 'private')
  await linkAddVxlan(root, 'nsdn-t-vx', {
    id: 4242,
    remote: '192.0.2.9',
    dev: 'nsdn-t-p0',
    dstport: 4789,
  })
  const links = ipLinks()
  const mv = links.find((l) => l.ifname === 'nsdn-t-mv')
  assert.equal(mv?.linkinfo?.info_kind, 'macvlan')
  assert.equal(mv?.linkinfo?.info_data?.mode, 'private')
  const vx = links.find((l) => l.ifname === 'nsdn-t-vx')
  assert.equal(vx?.linkinfo?.info_kind, 'vxlan')
  assert.equal(vx?.linkinfo?.info_data?.id, 4242)
  assert.equal(vx?.linkinfo?.info_data?.remote, '192.0.2.9')
  assert.equal(vx?.linkinfo?.info_data?.port, 4789)
  const byIdx = await linkByIndex(root, (await linkByName(root, 'nsdn-t-vx')).index)
  assert.equal(byIdx?.kind, 'vxlan')
  for (const n of ['nsdn-t-vx', 'nsdn-t-mv', 'nsdn-t-p0']) await linkDel(root, n)
  assert.equal(await tryLinkByName(root, 'nsdn-t-p1'), undefined, 'a veth goes with its peer')
})

test('master/nomaster, rename and move to a namespace', async () => {
  await linkAddBridge(root, 'nsdn-t-br', { up: true })
  await linkAddVeth(root, 'nsdn-t-a', 'nsdn-t-b')
  await linkSetMaster(root, 'nsdn-t-a', 'nsdn-t-br')
  assert.equal(ipLinks().find((l) => l.ifname === 'nsdn-t-a')?.master, 'nsdn-t-br')
  await linkSetNoMaster(root, 'nsdn-t-a')
  assert.equal(ipLinks().find((l) => l.ifname === 'nsdn-t-a')?.master, undefined)
  await linkSet(root, 'nsdn-t-b', { newName: 'nsdn-t-c', mtu: 1400, address: '02:00:00:00:0a:0b' })
  const c = ipLinks().find((l) => l.ifname === 'nsdn-t-c')
  assert.equal(c?.mtu, 1400)
  assert.equal(c?.address, '02:00:00:00:0a:0b')
  const ns = NetNs.create('nsdn-t-m')
  await linkSetNs(root, 'nsdn-t-c', ns)
  ns.close()
  assert.equal(await tryLinkByName(root, 'nsdn-t-c'), undefined)
  assert.deepEqual(
    ipLinks('nsdn-t-m').map((l) => l.ifname),
    ['lo', 'nsdn-t-c'],
  )
  const h = Rtnl.named('nsdn-t-m')
  assert.deepEqual(
    (await linkList(h)).map((l) => l.name),
    ['lo', 'nsdn-t-c'],
  )
  await linkDel(root, 'nsdn-t-a')
  await linkDel(root, 'nsdn-t-br')
  NetNs.delete('nsdn-t-m')
})

test('a device group: made in it, listed with it, deleted as one, the rest untouched', async () => {
  const g = 1313000007
  await linkAddBridge(root, 'nsdn-t-gbr', { up: true, group: g })
  const ns = NetNs.create('nsdn-t-g')
  await linkAddVeth(root, 'nsdn-t-g0', 'eth0', { peerNs: ns, master: 'nsdn-t-gbr', group: g })
  ns.close()
  await linkAddBridge(root, 'nsdn-t-other')
  // ip agrees: both of ours in the group, the peer (in its namespace) and the other not
  const groups = new Map(ipLinks().map((l) => [l.ifname, l.group]))
  assert.equal(groups.get('nsdn-t-gbr'), String(g))
  assert.equal(groups.get('nsdn-t-g0'), String(g))
  assert.equal(groups.get('nsdn-t-other'), 'default')
  assert.equal(ipLinks('nsdn-t-g').find((l) => l.ifname === 'eth0')?.group, 'default')
  const listed = (await linkBriefs(root)).filter((l) => l.group === g).map((l) => l.name)
  assert.deepEqual(listed.sort(), ['nsdn-t-g0', 'nsdn-t-gbr'])
  await linkDelGroup(root, g)
  const left = ipLinks().map((l) => l.ifname)
  assert.ok(!left.includes('nsdn-t-gbr') && !left.includes('nsdn-t-g0'), left.join(' '))
  assert.ok(left.includes('nsdn-t-other'))
  // the veth took its peer along
  assert.deepEqual(
    ipLinks('nsdn-t-g').map((l) => l.ifname),
    ['lo'],
  )
  await linkDel(root, 'nsdn-t-other')
  NetNs.delete('nsdn-t-g')
})

test('addresses and routes: add, replace, delete, IPv4 and IPv6, with neighbours', async () => {
  const ns = NetNs.create('nsdn-t-r')
  await linkAddVeth(root, 'nsdn-t-h', 'eth0', { peerNs: ns, up: true })
  const h = Rtnl.for(ns)
  ns.close()
  await linkSetUp(h, 'lo')
  await linkSetUp(h, 'eth0')
  await addrAdd(root, '10.66.0.1/24', 'nsdn-t-h')
  await addrAdd(h, '10.66.0.2/24', 'eth0')
  await addrAdd(h, 'fd66::2/64', 'eth0', { nodad: true })
  await addrAdd(root, 'fd66::1/64', 'nsdn-t-h', { nodad: true })
  await assert.rejects(addrAdd(h, '10.66.0.2/24', 'eth0'), { code: 'E_EXISTS' })
  await addrReplace(h, '10.66.0.2/24', 'eth0') // replace tolerates the existing address
  assert.ok(ipAddrs('nsdn-t-r').includes('eth0 fd66::2/64'))
  assert.deepEqual(
    (await addrList(h, 'eth0')).filter((a) => a.scope === 0).map((a) => a.cidr),
    ['10.66.0.2/24', 'fd66::2/64'],
  )

  await routeAdd(h, { dst: 'default', via: '10.66.0.1' })
  await routeAdd(h, {
    dst: '10.99.0.0/16',
    via: '10.66.0.1',
    dev: 'eth0',
    src: '10.66.0.2',
    metric: 50,
  })
  await routeAdd(h, { dst: '10.98.0.0/16', dev: 'eth0', table: 1000 })
  await routeAdd(h, { dst: 'fd99::/48', via: 'fd66::1' })
  await routeReplace(h, { dst: '10.99.0.0/16', via: '10.66.0.1', dev: 'eth0', metric: 50 })
  const v4 = ipJson<IpRoute[]>(['route', 'show'], 'nsdn-t-r')
  assert.ok(v4.some((r) => r.dst === 'default' && r.gateway === '10.66.0.1'))
  const r99 = v4.find((r) => r.dst === '10.99.0.0/16')
  assert.equal(r99?.metric, 50)
  assert.equal(r99?.prefsrc, undefined, 'replace dropped src')
  const t1000 = ipJson<IpRoute[]>(['route', 'show', 'table', '1000'], 'nsdn-t-r')
  assert.deepEqual(
    t1000.map((r) => r.dst),
    ['10.98.0.0/16'],
  )
  const v6 = ipJson<IpRoute[]>(['-6', 'route', 'show'], 'nsdn-t-r')
  assert.ok(v6.some((r) => r.dst === 'fd99::/48' && r.gateway === 'fd66::1'))
  const mine = await routeList(h)
  assert.ok(mine.some((r) => r.dst === '10.98.0.0/16' && r.table === 1000))
  assert.ok((await routeList(h, 6)).some((r) => r.dst === 'fd99::/48' && r.via === 'fd66::1'))
  await assert.rejects(routeAdd(h, { dst: '10.99.0.5/16', dev: 'eth0' }), {
    code: 'E_CONFIG',
    message: /10\.99\.0\.5\/16 has host bits set/,
    hint: /did you mean 10\.99\.0\.0\/16/,
  })

  assert.ok(ping('10.66.0.1', 'nsdn-t-r'))
  const neigh = await neighList(h)
  const gw = neigh.find((n) => n.address === '10.66.0.1')
  assert.equal(gw?.lladdr, (await linkByName(root, 'nsdn-t-h')).address)

  await routeDel(h, { dst: '10.99.0.0/16' })
  await routeDel(h, { dst: '10.98.0.0/16', table: 1000 })
  await addrDel(h, '10.66.0.2/24', 'eth0')
  assert.ok(!ipAddrs('nsdn-t-r').includes('eth0 10.66.0.2/24'))
  assert.ok(!ipJson<IpRoute[]>(['route', 'show'], 'nsdn-t-r').some((r) => r.dst === '10.99.0.0/16'))
  NetNs.delete('nsdn-t-r')
})

test('sethostname names the UTS namespace of the calling thread', () => {
  const before = os.hostname()
  unshare(CLONE.NEWUTS) // this file's process only: its sandbox has no UTS namespace of its own
  sethostname('nsdn-t-host')
  assert.equal(os.hostname(), 'nsdn-t-host')
  assert.notEqual(before, 'nsdn-t-host')
})
