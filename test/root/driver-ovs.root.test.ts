import { sandboxThisFile } from '../helpers/sandbox.js'
sandboxThisFile()

import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { type TestContext, test } from 'node:test'
import type { AttachContext, CniResult } from '../../src/drivers/api.js'
import { hostVethName } from '../../src/drivers/veth.js'
import { NetNs } from '../../src/netns/netns.js'
import { driver } from '../../plugins/ovs/index.js'
import { rows, set, usePrivateOvs, vsctl } from '../helpers/ovs.js'
import { container, dropContainer, iperf, ipamDataDir, leases } from '../helpers/attach.js'
import { ipAddrs, ipJson, ipLinks, netnsNames, pingSoon } from '../helpers/kernel.js'

const BR = 'nsdn-t-br0'
const NET = 'ovsnet'
const STEPS = ['bridge', 'veth', 'port', 'ipam', 'addresses']
const dataDir = ipamDataDir()

usePrivateOvs(dataDir)

const portNames = (): string[] => rows('Port').map((r) => String(r.name))
const bridgeNames = (): string[] => rows('Bridge').map((r) => String(r.name))

const conf = (extra: Record<string, unknown> = {}): ReturnType<typeof driver.parseConf> =>
  driver.parseConf({
    cniVersion: '1.0.0',
    name: NET,
    type: 'ovs',
    bridge: BR,
    vlan: 100,
    ipam: { type: 'host-local', subnet: '10.50.0.0/24', dataDir },
    ...extra,
  })

/** A container namespace that goes away after the test, even a failed one. */
function ctr(t: TestContext, name: string): AttachContext & { netns: NetNs } {
  const ctx = container(name)
  t.after(() => dropContainer(ctx))
  return ctx
}

const addrOf = (r: CniResult): string => r.ips?.[0]?.address.split('/')[0] ?? ''

/** Nothing of the attachment is left: no port, no veth, no container interface, no lease. */
function assertGone(ctx: AttachContext, otherLeases: string[] = []): void {
  const port = hostVethName(ctx.containerId, ctx.ifname)
  assert.ok(!portNames().includes(port), `port ${port} left`)
  assert.ok(!ipLinks().some((l) => l.ifname === port), `veth ${port} left`)
  if (NetNs.exists(ctx.containerId))
    assert.ok(!ipLinks(ctx.containerId).some((l) => l.ifname === ctx.ifname), 'container side left')
  assert.deepEqual(leases(dataDir, NET), otherLeases)
}

test('config: bridge is required, trunks take ovs-cni ranges, bad values name their field', () => {
  assert.throws(() => driver.parseConf({ name: 'n', type: 'ovs' }), {
    code: 'E_CONFIG',
    message: /^conf\.bridge: /,
  })
  const c = conf({ vlan: undefined, trunk: [{ id: 10 }, { minID: 20, maxID: 22 }, 5, 10] })
  assert.deepEqual(c.trunk, [5, 10, 20, 21, 22])
  assert.equal(c.vlan, undefined)
  assert.throws(() => conf({ trunk: [{ minID: 30, maxID: 20 }] }), { message: /conf\.trunk\[0\]/ })
  assert.throws(() => conf({ trunk: [{ id: 4096 }] }), { message: /conf\.trunk\[0\]\.id/ })
  assert.throws(() => conf({ vlan: 'x' }), { message: /^conf\.vlan: / })
  assert.throws(() => conf({ datapathType: 'dpdk' }), { message: /^conf\.datapathType: / })
  assert.throws(() => conf({ ipam: { type: 'nope' } }), { message: /^conf\.ipam\.type: / })
})

test('add, check, ping, iperf3, del twice: the bridge nsdn made goes last', async (t) => {
  const a = ctr(t, 'nsdn-t-a')
  const b = ctr(t, 'nsdn-t-b')
  const c = conf()
  const ra = await driver.add(c, a)
  const rb = await driver.add(c, b)
  await driver.check(c, { ...a, prevResult: ra })
  await driver.check(c, { ...b, prevResult: rb })

  // OVS state, read by the test: the bridge is marked as nsdn's, both ports carry tag 100.
  const [br] = rows('Bridge').filter((r) => r.name === BR)
  assert.deepEqual(br?.external_ids, ['map', [['nsdn-created', 'true']]])
  assert.equal(br?.datapath_type, 'netdev')
  for (const ctx of [a, b]) {
    const [p] = rows('Port').filter((r) => r.name === hostVethName(ctx.containerId, 'eth0'))
    assert.equal(p?.tag, 100)
    assert.deepEqual(set(p?.trunks), [])
  }
  assert.ok(ipAddrs('nsdn-t-a').includes(`eth0 ${ra.ips?.[0]?.address}`))
  assert.equal(ra.interfaces?.[1]?.sandbox, '/run/netns/nsdn-t-a')
  assert.equal(ra.ips?.[0]?.interface, 1)
  assert.deepEqual(leases(dataDir, NET), [addrOf(ra), addrOf(rb)].sort())

  assert.ok(pingSoon(addrOf(rb), 'nsdn-t-a'), 'a -> b, same tag')
  const perf = await iperf('nsdn-t-b', addrOf(rb), 'nsdn-t-a')
  t.diagnostic(
    `iperf3 a -> b through OVS (netdev datapath): ${(perf.bitsPerSecond / 1e6).toFixed(0)} ` +
      `Mbit/s, ${perf.bytes} bytes`,
  )
  assert.ok(perf.bytes > 0, 'TCP carried data')

  await driver.del(c, a)
  await driver.del(c, a)
  assertGone(a, [addrOf(rb)])
  assert.ok(bridgeNames().includes(BR), 'b still uses the bridge')
  await driver.del(c, b)
  assertGone(b)
  assert.deepEqual(bridgeNames(), [], 'last port gone: the bridge nsdn created is removed')
  await driver.del(c, b)
  assert.deepEqual(rows('Port'), [])
  assert.ok(!ipLinks().some((l) => l.ifname === BR), 'bridge device gone')
})

test('a bridge that existed before is kept; del without the netns still cleans up', async (t) => {
  vsctl('add-br', 'nsdn-t-pre', '--', 'set', 'Bridge', 'nsdn-t-pre', 'datapath_type=netdev')
  t.after(() => vsctl('--if-exists', 'del-br', 'nsdn-t-pre'))
  const a = ctr(t, 'nsdn-t-a')
  const c = conf({ bridge: 'nsdn-t-pre' })
  await driver.add(c, a)
  assert.deepEqual(portNames().sort(), [hostVethName('nsdn-t-a', 'eth0'), 'nsdn-t-pre'].sort())
  a.netns.close()
  NetNs.delete('nsdn-t-a')
  await driver.del(c, { ...a, netns: undefined })
  assertGone(a)
  assert.deepEqual(bridgeNames(), ['nsdn-t-pre'], 'not nsdn-created: kept')
})

test('check says what differs (tag, trunks, address); trunk ports carry their VLANs', async (t) => {
  const a = ctr(t, 'nsdn-t-a')
  const c = conf({ vlan: undefined, trunk: [{ id: 100 }, { minID: 200, maxID: 201 }] })
  const r = await driver.add(c, a)
  const port = hostVethName('nsdn-t-a', 'eth0')
  const [p] = rows('Port').filter((x) => x.name === port)
  assert.deepEqual(set(p?.tag), [])
  assert.deepEqual(set(p?.trunks), [100, 200, 201])
  const ctx = { ...a, prevResult: r }
  await driver.check(c, ctx)
  await assert.rejects(driver.check(conf(), ctx), /has tag none, expected 100/)
  vsctl('set', 'Port', port, 'trunks=100')
  await assert.rejects(driver.check(c, ctx), /has trunks 100, expected 100,200,201/)
  vsctl('set', 'Port', port, 'trunks=100,200,201')
  await driver.check(c, ctx)
  execFileSync('ip', ['-n', 'nsdn-t-a', 'addr', 'flush', 'dev', 'eth0'])
  await assert.rejects(
    driver.check(c, ctx),
    new RegExp(`address ${r.ips?.[0]?.address} is missing on "eth0"`),
  )
  await assert.rejects(driver.check({ ...c, bridge: 'nsdn-t-other' }, ctx), /not "nsdn-t-other"/)
  await driver.del(c, a)
  await assert.rejects(
    driver.check(c, ctx),
    /OVS port "\w+" is missing.*host veth "\w+" is missing/,
  )
  assertGone(a)
  assert.deepEqual(bridgeNames(), [])
})

test('a failure after any step of add leaves nothing behind', async (t) => {
  const a = ctr(t, 'nsdn-t-a')
  const c = conf()
  try {
    for (const step of STEPS) {
      process.env.NSDN_FAIL_AFTER = step
      await assert.rejects(driver.add(c, a), new RegExp(`injected failure after step "${step}"`))
      delete process.env.NSDN_FAIL_AFTER
      assertGone(a)
      assert.deepEqual(bridgeNames(), [], `after "${step}": the bridge add created is removed`)
    }
    // And with a bridge that was there before: rollback keeps it.
    vsctl('add-br', BR, '--', 'set', 'Bridge', BR, 'datapath_type=netdev')
    process.env.NSDN_FAIL_AFTER = 'addresses'
    await assert.rejects(driver.add(c, a), /injected failure/)
    delete process.env.NSDN_FAIL_AFTER
    assertGone(a)
    assert.deepEqual(bridgeNames(), [BR])
    assert.deepEqual(portNames(), [BR])
    vsctl('del-br', BR)
  } finally {
    delete process.env.NSDN_FAIL_AFTER
  }
})

// A test that fails half-way leaves its attachment behind; the sweep after each test
// (usePrivateOvs) removes it, so the next test starts clean.
test('a test that stops half-way (on purpose here: attached, never detached)', async (t) => {
  const a = ctr(t, 'nsdn-t-a')
  await driver.add(conf(), a)
  assert.deepEqual(portNames().sort(), [BR, hostVethName('nsdn-t-a', 'eth0')].sort())
})

test('leaves the next test no bridge, port, veth, namespace or lease', () => {
  assert.deepEqual(bridgeNames(), [])
  assert.deepEqual(rows('Port'), [])
  assert.deepEqual(ipJson(['link', 'show', 'type', 'veth']), [])
  assert.deepEqual(netnsNames(), [])
  assert.deepEqual(leases(dataDir, NET), [])
})
