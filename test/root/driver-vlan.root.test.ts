import { sandboxThisFile } from '../helpers/sandbox.js'
sandboxThisFile()

import assert from 'node:assert/strict'
import { execFileSync, spawnSync } from 'node:child_process'
import { type TestContext, test } from 'node:test'
import type { AttachContext, CniResult } from '../../src/drivers/api.js'
import { hostVethName } from '../../src/drivers/veth.js'
import { linkAddVeth } from '../../src/netlink/link.js'
import { Rtnl } from '../../src/netlink/rtnl.js'
import { NetNs } from '../../src/netns/netns.js'
import { ovsRunDir } from '../../src/ovs/daemon.js'
import { driver, pickBackend } from '../../plugins/vlan/index.js'
import { rows, set, usePrivateOvs, vsctl } from '../helpers/ovs.js'
import { container, dropContainer, iperf, ipamDataDir, leases } from '../helpers/attach.js'
import { ipLinks, netnsNames, pingSoon } from '../helpers/kernel.js'

const NET = 'vlanlab'
const BR = 'nsdn-t-vlan'
/** The downstream switch behind the trunk port, made by the test (not by nsdn). */
const DOWN = 'nsdn-t-down'
const dataDir = ipamDataDir()

usePrivateOvs(dataDir)

const conf = (extra: Record<string, unknown>): ReturnType<typeof driver.parseConf> =>
  driver.parseConf({
    cniVersion: '1.0.0',
    name: NET,
    type: 'vlan',
    ipam: { type: 'host-local', subnet: '10.60.0.0/24', dataDir },
    ...extra,
  })

function ctr(t: TestContext, name: string, ifname = 'eth0'): AttachContext & { netns: NetNs } {
  const ctx = container(name, ifname)
  t.after(() => dropContainer(ctx))
  return ctx
}

const addrOf = (r: CniResult): string => r.ips?.[0]?.address.split('/')[0] ?? ''

/** One ping from ns, out of interface dev only (SO_BINDTODEVICE): true when answered. */
function pingVia(ns: string, dev: string, target: string): boolean {
  const argv = ['netns', 'exec', ns, 'ping', '-n', '-q', '-c', '1', '-W', '1', '-I', dev, target]
  return spawnSync('ip', argv, { stdio: 'ignore' }).status === 0
}

/** A positive ping may need a moment (a fresh port, ARP); a negative one must fail at once. */
function reach(ns: string, dev: string, target: string): boolean {
  for (let i = 0; i < 5; i++) if (pingVia(ns, dev, target)) return true
  return false
}

/** Everything of ours the kernel and OVS show, for before/after comparisons. */
function snapshot(ns: string): unknown {
  return {
    links: ipLinks().map((l) => l.ifname),
    inContainer: ipLinks(ns).map((l) => l.ifname),
    netns: netnsNames(),
    bridges: rows('Bridge').map((r) => r.name),
    leases: leases(dataDir, NET),
  }
}

test('config: each backend states what it needs; bad values name their field', () => {
  assert.throws(() => conf({ vlanId: 100 }), { code: 'E_CONFIG', message: /conf\.master: / })
  assert.throws(() => conf({ backend: 'ovs', vlanId: 100 }), { message: /^conf\.bridge: / })
  assert.throws(() => conf({ backend: 'ovs', bridge: BR }), { message: /^conf\.vlanId: / })
  assert.throws(() => conf({ backend: 'vxlan' }), { message: /^conf\.backend: unknown/ })
  assert.throws(() => conf({ master: 'eth9', vlanId: 4095 }), { message: /^conf\.vlanId: / })
  assert.throws(() => conf({ master: 'eth9', link: 'eth8', vlanId: 5 }), { message: /^conf\.link/ })
  assert.throws(() => conf({ master: 'eth9', vlanId: 5, trunk: [7] }), { message: /^conf\.trunk/ })
  assert.equal(conf({ link: 'eth9', vlanId: 5 }).master, 'eth9')
  assert.deepEqual(conf({ bridge: BR, trunk: [{ minID: 3, maxID: 4 }, 1] }).trunk, [1, 3, 4])
})

test('8021q and bridge backends fail before creating anything, naming the option', async (t) => {
  // A trunk device for the 802.1Q sub-interface, so that only the kernel can say no.
  await linkAddVeth(Rtnl.for(), 'nsdn-t-trunk', 'nsdn-t-trunkp')
  t.after(() => execFileSync('ip', ['link', 'del', 'nsdn-t-trunk']))
  const a = ctr(t, 'nsdn-t-a')
  const cases = [
    [{ backend: '8021q', master: 'nsdn-t-trunk', vlanId: 100 }, 'CONFIG_VLAN_8021Q'],
    [{ master: 'nsdn-t-trunk', vlanId: 100 }, 'CONFIG_VLAN_8021Q'],
    [
      { backend: 'bridge', bridge: 'nsdn-t-vbr', vlanId: 100, trunk: [200] },
      'CONFIG_BRIDGE_VLAN_FILTERING',
    ],
  ] as const
  for (const [extra, kconfig] of cases) {
    const c = conf(extra)
    const before = snapshot('nsdn-t-a')
    const err = await driver.add(c, a).catch((e: unknown) => e)
    assert.equal((err as { code?: string }).code, 'E_KERNEL_FEATURE', String(err))
    assert.match((err as Error).message, new RegExp(`this kernel lacks .*\\(${kconfig}\\)`))
    assert.match(String((err as { hint?: string }).hint), /backend "ovs"/)
    assert.deepEqual(snapshot('nsdn-t-a'), before, `${kconfig}: nothing created`)
    await driver.del(c, a)
    await driver.del(c, { ...a, netns: undefined })
    assert.deepEqual(snapshot('nsdn-t-a'), before)
  }
  assert.ok(!ipLinks().some((l) => l.ifname === 'nsdn-t-vbr'), 'no Linux bridge made')
  assert.equal(await pickBackend(conf({ bridge: BR, vlanId: 100 })), 'ovs', 'auto: ovs here')
})

/**
 * How the trunk is shown on a kernel without 802.1Q devices: no namespace here can read tagged
 * frames, so the trunk port leads to a second switch, as a trunk between two switches does.
 * Port T on the lab bridge is a vlan-driver attachment with trunk [100, 200] whose far end,
 * "trunk0", is a plain port (all VLANs) of the downstream switch DOWN. Namespace T has one
 * access port per VLAN on DOWN (eth100, eth200, eth300). So T reaches VLAN 100 and VLAN 200
 * through the one trunk port, and not VLAN 300, which the trunk does not carry; OVS's MAC table
 * shows the trunk port learning addresses in both VLANs.
 */
test('ovs backend: same tag talks, different tags do not, the trunk sees both', async (t) => {
  vsctl('add-br', DOWN, '--', 'set', 'Bridge', DOWN, 'datapath_type=netdev')
  t.after(() => vsctl('--if-exists', 'del-br', DOWN))
  const nodes = {
    a: { ctx: ctr(t, 'nsdn-t-a'), conf: conf({ bridge: BR, vlanId: 100 }) },
    b: { ctx: ctr(t, 'nsdn-t-b'), conf: conf({ backend: 'ovs', bridge: BR, vlanId: 100 }) },
    c: { ctx: ctr(t, 'nsdn-t-c'), conf: conf({ backend: 'ovs', bridge: BR, vlanId: 200 }) },
    d: { ctx: ctr(t, 'nsdn-t-d'), conf: conf({ backend: 'ovs', bridge: BR, vlanId: 300 }) },
  }
  const tNs = container('nsdn-t-t', 'eth100')
  t.after(() => dropContainer(tNs))
  const far = (vid: number): typeof nodes.a => ({
    ctx: { ...tNs, ifname: `eth${vid}` },
    conf: conf({ backend: 'ovs', bridge: DOWN, vlanId: vid }),
  })
  const farPorts = { t100: far(100), t200: far(200), t300: far(300) }
  // The trunk: its "container" end is trunk0 in this (the sandbox's) namespace, for DOWN.
  const trunk = {
    ctx: {
      containerId: 'nsdn-t-trunk',
      netns: NetNs.current(),
      netnsPath: `/proc/${process.pid}/ns/net`,
      ifname: 'trunk0',
    },
    conf: driver.parseConf({
      name: NET,
      type: 'vlan',
      backend: 'ovs',
      bridge: BR,
      trunk: [100, 200],
    }),
  }
  const all = [...Object.values(nodes), trunk, ...Object.values(farPorts)]
  // On a failure, del (idempotent) what a passing run dels below: trunk0 is in our namespace.
  t.after(async () => {
    for (const n of all) await driver.del(n.conf, n.ctx)
  })
  const ip: Record<string, string> = {}
  const results = new Map<object, CniResult>()
  for (const n of all) results.set(n, await driver.add(n.conf, n.ctx))
  for (const [k, n] of Object.entries({ ...nodes, ...farPorts })) ip[k] = addrOf(results.get(n)!)
  vsctl('add-port', DOWN, 'trunk0')
  for (const n of all) await driver.check(n.conf, { ...n.ctx, prevResult: results.get(n)! })

  // OVS's view, read by the test: access tags, and one trunk port with exactly 100 and 200.
  const port = (ctx: AttachContext): Record<string, unknown> | undefined =>
    rows('Port').find((r) => r.name === hostVethName(ctx.containerId, ctx.ifname))
  assert.equal(port(nodes.a.ctx)?.tag, 100)
  assert.equal(port(nodes.c.ctx)?.tag, 200)
  assert.deepEqual(set(port(trunk.ctx)?.tag), [])
  assert.deepEqual(set(port(trunk.ctx)?.trunks), [100, 200])

  const fromT = (dev: string, to: string): boolean => reach('nsdn-t-t', dev, ip[to] ?? '')
  assert.ok(pingSoon(ip.b ?? '', 'nsdn-t-a'), 'a -> b: both in VLAN 100')
  const perf = await iperf('nsdn-t-b', ip.b ?? '', 'nsdn-t-a')
  t.diagnostic(`iperf3 a -> b in VLAN 100: ${(perf.bitsPerSecond / 1e6).toFixed(0)} Mbit/s`)
  assert.ok(perf.bytes > 0, 'TCP carried data within the VLAN')
  assert.ok(!pingVia('nsdn-t-a', 'eth0', ip.c ?? ''), 'a -> c: VLAN 100 vs 200')
  assert.ok(!pingVia('nsdn-t-b', 'eth0', ip.c ?? ''), 'b -> c: VLAN 100 vs 200')
  assert.ok(!pingVia('nsdn-t-c', 'eth0', ip.d ?? ''), 'c -> d: VLAN 200 vs 300')
  assert.ok(fromT('eth100', 'a'), 'T (VLAN 100 via the trunk) -> a')
  assert.ok(fromT('eth100', 'b'), 'T (VLAN 100 via the trunk) -> b')
  assert.ok(fromT('eth200', 'c'), 'T (VLAN 200 via the trunk) -> c')
  assert.ok(!pingVia('nsdn-t-t', 'eth100', ip.c ?? ''), 'T VLAN 100 -> c (VLAN 200)')
  assert.ok(!pingVia('nsdn-t-t', 'eth200', ip.a ?? ''), 'T VLAN 200 -> a (VLAN 100)')
  assert.ok(!pingVia('nsdn-t-t', 'eth300', ip.d ?? ''), 'VLAN 300 is not on the trunk')

  // The lab bridge learned MACs in both VLANs on the one trunk port.
  const ofport = Number(vsctl('get', 'Interface', hostVethName('nsdn-t-trunk', 'trunk0'), 'ofport'))
  const ctl = `${ovsRunDir()}/ovs-vswitchd.ctl`
  const fdb = execFileSync('ovs-appctl', ['-t', ctl, 'fdb/show', BR], { encoding: 'utf8' })
  const vlansOnTrunk = new Set(
    fdb
      .split('\n')
      .map((l) => l.trim().split(/\s+/))
      .filter((f) => Number(f[0]) === ofport)
      .map((f) => Number(f[1])),
  )
  t.diagnostic(`fdb of ${BR} on the trunk port (ofport ${ofport}): VLANs ${[...vlansOnTrunk]}`)
  assert.deepEqual([...vlansOnTrunk].sort(), [100, 200])

  vsctl('del-port', DOWN, 'trunk0')
  for (const n of all) await driver.del(n.conf, n.ctx)
  for (const n of all) await driver.del(n.conf, n.ctx)
  assert.deepEqual(
    rows('Port').map((r) => r.name),
    [DOWN],
    'only the downstream bridge port',
  )
  assert.deepEqual(
    rows('Bridge').map((r) => r.name),
    [DOWN],
    'the lab bridge nsdn made is gone',
  )
  assert.ok(!ipLinks().some((l) => l.ifname === 'trunk0' || l.ifname.startsWith('veth')))
  assert.deepEqual(leases(dataDir, NET), [])
})
