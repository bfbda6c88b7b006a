import { sandboxThisFile } from '../helpers/sandbox.js'
sandboxThisFile()

import assert from 'node:assert/strict'
import fs from 'node:fs'
import { type TestContext, after, test } from 'node:test'
import type { AttachContext, NetConfBase } from '../../src/drivers/api.js'
import { getDriver } from '../../src/drivers/registry.js'
import { hostVethName } from '../../src/drivers/veth.js'
import { Rtnl } from '../../src/netlink/rtnl.js'
import type { NetNs } from '../../src/netns/netns.js'
import {
  addrInfo,
  addressOf,
  assertConfErrors,
  container,
  dropContainer,
  iperf,
  ip,
  ipamDataDir,
  ipRoutes,
  leases,
  nsdnNftRules,
} from '../helpers/attach.js'
import { ipAddrs, ipLinks, netnsNames, ping, pingSoon, strayLinks } from '../helpers/kernel.js'

const routed = getDriver('routed')
const dataDir = ipamDataDir()
const NET = 'nsdn-t-rnet'

after(() => {
  Rtnl.closeAll()
  fs.rmSync(dataDir, { recursive: true, force: true })
})

type Attach = AttachContext & { netns: NetNs }

function conf(
  extra: Record<string, unknown> = {},
  ranges: unknown = [[{ subnet: '10.2.0.0/24' }]],
): NetConfBase {
  return routed.parseConf({
    cniVersion: '1.0.0',
    name: NET,
    type: 'routed',
    ipam: {
      type: 'host-local',
      ranges,
      routes: [
        { dst: '0.0.0.0/0' },
        ...(JSON.stringify(ranges).includes(':') ? [{ dst: '::/0' }] : []),
      ],
      dataDir,
    },
    ...extra,
  })
}

/** Containers for one test, detached and deleted after it whatever happened. */
function containers(t: TestContext, c: NetConfBase, ...names: string[]): Attach[] {
  const ctxs = names.map((n) => container(n))
  t.after(async () => {
    delete process.env.NSDN_FAIL_AFTER
    for (const x of ctxs) await routed.del(c, { ...x, netns: undefined }).catch(() => undefined)
    for (const x of ctxs) dropContainer(x)
  })
  return ctxs
}

/** Nothing of the attachments is left: no link, no host route, no lease, no nft rule. */
function assertNothingLeft(ctxs: Attach[]): void {
  assert.deepEqual(strayLinks(), [])
  for (const c of ctxs)
    assert.deepEqual(
      ipLinks(c.containerId).map((l) => l.ifname),
      ['lo'],
    )
  assert.deepEqual(ipRoutes(undefined, 4), [])
  assert.deepEqual(
    ipRoutes(undefined, 6).filter((r) => !r.dst.startsWith('fe80:') && r.dst !== 'multicast'),
    [],
  )
  assert.deepEqual(leases(dataDir, NET), [])
  assert.deepEqual(nsdnNftRules(), [])
}

test('add -> check -> traffic -> del -> del: two namespaces routed through the host', async (t) => {
  const c = conf({ ipMasq: true, mtu: 1400 })
  const [a, b] = containers(t, c, 'nsdn-t-ra', 'nsdn-t-rb') as [Attach, Attach]
  const ra = await routed.add(c, a)
  const rb = await routed.add(c, b)
  const [ipA, ipB] = [addressOf(ra), addressOf(rb)]

  // The ptp layout, as iproute2 shows it.
  assert.deepEqual(
    ipAddrs('nsdn-t-ra').filter((x) => x.startsWith('eth0 ') && !x.includes(':')),
    [`eth0 ${ipA}/32`],
  )
  const hostA = hostVethName('nsdn-t-ra', 'eth0')
  assert.ok(ipAddrs().includes(`${hostA} 10.2.0.1/32`), `host: ${ipAddrs()}`)
  assert.ok(ipAddrs().includes(`${hostVethName('nsdn-t-rb', 'eth0')} 10.2.0.1/32`))
  const inA = ipRoutes('nsdn-t-ra')
  assert.ok(
    inA.some((r) => r.dst === '10.2.0.1' && r.dev === 'eth0' && !r.gateway),
    JSON.stringify(inA),
  )
  assert.ok(
    inA.some((r) => r.dst === 'default' && r.gateway === '10.2.0.1'),
    JSON.stringify(inA),
  )
  assert.ok(
    inA.some((r) => r.dst === '10.2.0.0/24' && r.gateway === '10.2.0.1'),
    JSON.stringify(inA),
  )
  assert.ok(
    ipRoutes().some((r) => r.dst === ipA && r.dev === hostA),
    'host route to a',
  )
  assert.equal(ipLinks().find((l) => l.ifname === hostA)?.mtu, 1400)
  assert.equal(ipLinks('nsdn-t-ra').find((l) => l.ifname === 'eth0')?.mtu, 1400)
  assert.ok(!ipLinks().some((l) => l.linkinfo?.info_kind === 'bridge'), 'no bridge')
  assert.equal(fs.readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim(), '1')
  assert.equal(leases(dataDir, NET).length, 2)
  assert.equal(nsdnNftRules().length, 2)

  await routed.check(c, { ...a, prevResult: ra })
  await routed.check(c, { ...b, prevResult: rb })

  assert.ok(ping(ipB, 'nsdn-t-ra'), 'a -> b through the host')
  assert.ok(ping(ipA, 'nsdn-t-rb'), 'b -> a')
  assert.ok(ping('10.2.0.1', 'nsdn-t-ra'), 'a -> gateway')
  assert.ok(ping(ipA), 'host -> a')
  const perf = await iperf('nsdn-t-ra', ipA, 'nsdn-t-rb')
  t.diagnostic(
    `iperf3 b -> a routed through the host: ${(perf.bitsPerSecond / 1e9).toFixed(2)} Gbit/s`,
  )
  assert.ok(perf.bytes > 0)

  await routed.del(c, a)
  await routed.del(c, b)
  await routed.del(c, a)
  await routed.del(c, b)
  assertNothingLeft([a, b])
})

test('check reports a removed address and removed routes (container and host)', async (t) => {
  const c = conf()
  const [a] = containers(t, c, 'nsdn-t-rchk') as [Attach]
  const r = await routed.add(c, a)
  const addr = r.ips?.[0]?.address ?? ''
  await routed.check(c, { ...a, prevResult: r })

  ip(['route', 'del', 'default'], 'nsdn-t-rchk')
  await assert.rejects(routed.check(c, { ...a, prevResult: r }), (err: Error) => {
    assert.match(
      err.message,
      /route 0\.0\.0\.0\/0 via 10\.2\.0\.1 is missing in netns "nsdn-t-rchk"/,
    )
    assert.doesNotMatch(err.message, /address/)
    return true
  })
  ip(['route', 'add', 'default', 'via', '10.2.0.1', 'dev', 'eth0'], 'nsdn-t-rchk')
  await routed.check(c, { ...a, prevResult: r })

  ip(['addr', 'del', addr, 'dev', 'eth0'], 'nsdn-t-rchk')
  await assert.rejects(
    routed.check(c, { ...a, prevResult: r }),
    new RegExp(`address ${addr} is missing on "eth0"`),
  )
  ip(['addr', 'add', addr, 'dev', 'eth0'], 'nsdn-t-rchk')

  const hostA = hostVethName('nsdn-t-rchk', 'eth0')
  ip(['route', 'del', addr, 'dev', hostA])
  await assert.rejects(
    routed.check(c, { ...a, prevResult: r }),
    new RegExp(`host route ${addr} dev ${hostA} is missing`),
  )
  await routed.del(c, a)
  await assert.rejects(
    routed.check(c, { ...a, prevResult: r }),
    /host veth "veth[0-9a-f]{8}" is missing.*interface "eth0" is missing/,
  )
  assertNothingLeft([a])
})

test('a failure injected after each step of add leaves nothing behind', async (t) => {
  const c = conf({ ipMasq: true }, [[{ subnet: '10.2.0.0/24' }], [{ subnet: 'fd00:2::/64' }]])
  const [a] = containers(t, c, 'nsdn-t-rfail') as [Attach]
  for (const step of ['veth', 'ipam', 'addresses', 'routes', 'masq']) {
    process.env.NSDN_FAIL_AFTER = step
    await assert.rejects(routed.add(c, a), new RegExp(`injected failure after step "${step}"`))
    assertNothingLeft([a])
  }
  delete process.env.NSDN_FAIL_AFTER
})

test('concurrent adds and dels', async (t) => {
  const c = conf({ ipMasq: true })
  const ctxs = containers(t, c, 'nsdn-t-rp1', 'nsdn-t-rp2', 'nsdn-t-rp3') as Attach[]
  const results = await Promise.all(ctxs.map((x) => routed.add(c, x)))
  const addrs = results.map((r) => addressOf(r))
  assert.equal(new Set(addrs).size, 3, `addresses: ${addrs}`)
  assert.ok(ping(addrs[2] ?? '', 'nsdn-t-rp1'))
  await Promise.all(ctxs.map((x, i) => routed.check(c, { ...x, prevResult: results[i] ?? {} })))
  await Promise.all(ctxs.map((x) => routed.del(c, x)))
  assertNothingLeft(ctxs)
})

test('IPv6 dual-stack: the address is usable as soon as add returns (no DAD wait)', async (t) => {
  const c = conf({}, [[{ subnet: '10.2.0.0/24' }], [{ subnet: 'fd00:2::/64' }]])
  const [a, b] = containers(t, c, 'nsdn-t-r6a', 'nsdn-t-r6b') as [Attach, Attach]
  const rb = await routed.add(c, b)
  const ra = await routed.add(c, a)
  const added = performance.now()
  const toGw = pingSoon('fd00:2::1', 'nsdn-t-r6a')
  const usableMs = performance.now() - added
  const toB = pingSoon(addressOf(rb, 6), 'nsdn-t-r6a')
  t.diagnostic(
    `IPv6 usable ${usableMs.toFixed(1)} ms after add returned (until the first ping6 answered)`,
  )
  assert.ok(toGw, 'ping6 to the gateway')
  assert.ok(toB, 'ping6 to the other container, through the host')
  assert.ok(ping(addressOf(ra, 6)), 'host -> a over IPv6')
  const global = addrInfo('eth0', 'nsdn-t-r6a').find((x) => x.local === addressOf(ra, 6))
  assert.equal(global?.prefixlen, 128)
  assert.ok(!global.tentative && !global.dadfailed, 'added without DAD')
  assert.ok(
    ipRoutes(undefined, 6).some((r) => r.dst === addressOf(ra, 6)),
    'host route /128',
  )
  assert.equal(fs.readFileSync('/proc/sys/net/ipv6/conf/all/forwarding', 'utf8').trim(), '1')
  await routed.check(c, { ...a, prevResult: ra })
  await routed.del(c, a)
  await routed.del(c, b)
  assertNothingLeft([a, b])
})

test("a static address without a gateway routes via the subnet's first address", async (t) => {
  const c = routed.parseConf({
    name: NET,
    type: 'routed',
    ipam: {
      type: 'static',
      addresses: [{ address: '10.3.0.7/24' }],
      routes: [{ dst: '0.0.0.0/0' }],
    },
  })
  const [a] = containers(t, c, 'nsdn-t-rst') as [Attach]
  const r = await routed.add(c, a)
  assert.deepEqual(r.ips, [{ address: '10.3.0.7/32', gateway: '10.3.0.1', interface: 1 }])
  assert.ok(ping('10.3.0.1', 'nsdn-t-rst'))
  await routed.check(c, { ...a, prevResult: r })
  await routed.del(c, a)
  assertNothingLeft([a])
})

test('bad config is a ConfigError with the field path', () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ ipam: undefined }, /^conf\.ipam: is required/],
    [{ mtu: 65536 }, /^conf\.mtu: must be a whole number from 68 to 65535/],
    [{ mtu: null }, /^conf\.mtu: /],
    [{ ipMasq: 'true' }, /^conf\.ipMasq: must be true or false/],
    [{ name: 'a/b' }, /^conf\.name: invalid network name/],
    [{ type: 'bridge' }, /^conf\.type: /],
    [{ ipam: { type: 'host-local' } }, /^conf\.ipam\.ranges: no address ranges/],
  ]
  assertConfErrors(conf, cases)
})

test('nothing of the tests is left in the sandbox', () => {
  assert.deepEqual(strayLinks(), [])
  assert.deepEqual(netnsNames(), [])
  assert.deepEqual(nsdnNftRules(), [])
})
