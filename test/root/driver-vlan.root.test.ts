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
import { probeBridgeVlanFiltering, probeLinkKind } from '../../src/netlink/features.js'
import { driver, pickBackend } from '../../plugins/vlan/index.js'
import { rows, set, usePrivateOvs, vsctl } from '../helpers/ovs.js'
import { container, dropContainer, iperf, ipamDataDir, leases } from '../helpers/attach.js'
import { type IpLink, ipJson, ipLinks, netnsNames, ping, pingSoon } from '../helpers/kernel.js'

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
  // One config type per backend, chosen by parseConf: no field of another backend, no blanks.
  const pick = <K extends string>(o: object, ...keys: K[]) =>
    Object.fromEntries(keys.filter((k) => k in o).map((k) => [k, (o as Record<K, unknown>)[k]]))
  const keys = ['backend', 'master', 'bridge', 'vlanId', 'trunk', 'sub', 'port'] as const
  assert.deepEqual(pick(conf({ link: 'eth9', vlanId: 5 }), ...keys), {
    backend: 'auto',
    sub: { master: 'eth9', vlanId: 5 },
  })
  assert.deepEqual(pick(conf({ backend: '8021q', master: 'eth9', vlanId: 5 }), ...keys), {
    backend: '8021q',
    master: 'eth9',
    vlanId: 5,
  })
  assert.deepEqual(
    pick(conf({ backend: 'ovs', bridge: BR, trunk: [{ minID: 3, maxID: 4 }, 1] }), ...keys),
    {
      backend: 'ovs',
      bridge: BR,
      trunk: [1, 3, 4],
    },
  )
  assert.deepEqual(pick(conf({ bridge: BR, vlanId: 7 }), ...keys), {
    backend: 'auto',
    port: { bridge: BR, vlanId: 7, trunk: [] },
  })
})

/**
 * add with a backend this kernel lacks fails before creating anything, names the kernel option
 * and points to the ovs backend; del (also without the netns) is fine with nothing there.
 */
async function assertRefused(
  t: TestContext,
  cases: readonly Record<string, unknown>[],
  kconfig: string,
): Promise<void> {
  const a = ctr(t, 'nsdn-t-a')
  for (const extra of cases) {
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
}

/** A trunk device for 802.1Q sub-interfaces: a veth whose far end is in namespace far. */
async function trunkTo(t: TestContext, far: string): Promise<void> {
  const f = ctr(t, far)
  await linkAddVeth(Rtnl.for(), 'nsdn-t-trunk', 'nsdn-t-trunkp', { peerNs: f.netns, up: true })
  t.after(() => spawnSync('ip', ['link', 'del', 'nsdn-t-trunk'], { stdio: 'ignore' }))
  ip('-n', far, 'link', 'set', 'nsdn-t-trunkp', 'up')
}

const ip = (...args: string[]): string => execFileSync('ip', args, { encoding: 'utf8' })

/** The VLAN device a container's eth0 is, as `ip -d` shows it. */
function vlanOf(ns: string): { kind: string | undefined; id: unknown } {
  const [l] = ipJson<IpLink[]>(['-d', 'link', 'show', 'eth0'], ns)
  return { kind: l?.linkinfo?.info_kind, id: l?.linkinfo?.info_data?.id }
}

test('8021q backend, without 802.1Q devices: refused before anything is made', async (t) => {
  if (await probeLinkKind('vlan'))
    return t.skip('this kernel has 802.1Q VLAN devices: the backend is tested working below')
  // A trunk device, so that only the kernel can say no.
  await linkAddVeth(Rtnl.for(), 'nsdn-t-trunk', 'nsdn-t-trunkp')
  t.after(() => spawnSync('ip', ['link', 'del', 'nsdn-t-trunk'], { stdio: 'ignore' }))
  const cases = [
    { backend: '8021q', master: 'nsdn-t-trunk', vlanId: 100 },
    { master: 'nsdn-t-trunk', vlanId: 100 },
  ]
  await assertRefused(t, cases, 'CONFIG_VLAN_8021Q')
})

/**
 * The 802.1Q backend working: containers a (VLAN 100) and b (VLAN 200) get sub-interfaces of
 * the trunk device; its far end, in namespace far, has a VLAN 100 sub-interface of its own
 * (made by the test). a reaches it, b does not.
 */
test('8021q backend: a sub-interface of the trunk in the container, in its VLAN only', async (t) => {
  if (!(await probeLinkKind('vlan')))
    return t.skip('this kernel lacks 802.1Q VLAN devices (CONFIG_VLAN_8021Q)')
  await trunkTo(t, 'nsdn-t-far')
  ip(
    '-n',
    'nsdn-t-far',
    'link',
    'add',
    'link',
    'nsdn-t-trunkp',
    'name',
    'far.100',
    'type',
    'vlan',
    'id',
    '100',
  )
  ip('-n', 'nsdn-t-far', 'addr', 'add', '10.60.0.250/24', 'dev', 'far.100')
  ip('-n', 'nsdn-t-far', 'link', 'set', 'far.100', 'up')
  const a = ctr(t, 'nsdn-t-a')
  const b = ctr(t, 'nsdn-t-b')
  const ca = conf({ backend: '8021q', master: 'nsdn-t-trunk', vlanId: 100 })
  const cb = conf({ master: 'nsdn-t-trunk', vlanId: 200 }) // no backend: the probe picks 8021q
  const ra = await driver.add(ca, a)
  const rb = await driver.add(cb, b)
  await driver.check(ca, { ...a, prevResult: ra })
  await driver.check(cb, { ...b, prevResult: rb })
  assert.deepEqual(vlanOf('nsdn-t-a'), { kind: 'vlan', id: 100 })
  assert.deepEqual(vlanOf('nsdn-t-b'), { kind: 'vlan', id: 200 })
  assert.deepEqual(leases(dataDir, NET), [addrOf(ra), addrOf(rb)].sort())
  assert.ok(pingSoon('10.60.0.250', 'nsdn-t-a'), 'a (VLAN 100) -> the far end in VLAN 100')
  assert.ok(!ping('10.60.0.250', 'nsdn-t-b'), 'b (VLAN 200) -> VLAN 100: no')
  for (const [c, ctx] of [
    [ca, a],
    [cb, b],
  ] as const) {
    await driver.del(c, ctx)
    await driver.del(c, ctx)
    assert.ok(!ipLinks(ctx.containerId).some((l) => l.ifname === 'eth0'), 'container side gone')
  }
  assert.deepEqual(leases(dataDir, NET), [])
  assert.deepEqual(
    ipLinks().filter((l) => l.linkinfo?.info_kind === 'vlan'),
    [],
    'no temporary sub-interface left in the host namespace',
  )
})

test('bridge backend, without bridge VLAN filtering: refused before anything is made', async (t) => {
  if (await probeBridgeVlanFiltering())
    return t.skip('this kernel has bridge VLAN filtering: the backend is tested working below')
  await assertRefused(
    t,
    [{ backend: 'bridge', bridge: 'nsdn-t-vbr', vlanId: 100, trunk: [200] }],
    'CONFIG_BRIDGE_VLAN_FILTERING',
  )
  assert.ok(!ipLinks().some((l) => l.ifname === 'nsdn-t-vbr'), 'no Linux bridge made')
})

/** `bridge -j vlan show dev PORT`: each VLAN of the port with its flags (PVID, Egress Untagged). */
function portVlans(port: string): Record<number, string[]> {
  const out = execFileSync('bridge', ['-j', 'vlan', 'show', 'dev', port], { encoding: 'utf8' })
  const rows = JSON.parse(out || '[]') as { vlans?: { vlan: number; flags?: string[] }[] }[]
  return Object.fromEntries((rows[0]?.vlans ?? []).map((v) => [v.vlan, v.flags ?? []]))
}

/**
 * The bridge backend working: a and b in VLAN 100, c in VLAN 200 with VLAN 300 tagged, ports of
 * a VLAN-filtering Linux bridge. a reaches b, not c; the kernel shows each port's VLANs.
 */
test('bridge backend: ports of a VLAN-filtering bridge, PVID untagged, trunk tagged', async (t) => {
  if (!(await probeBridgeVlanFiltering()))
    return t.skip('this kernel lacks bridge VLAN filtering (CONFIG_BRIDGE_VLAN_FILTERING)')
  const VBR = 'nsdn-t-vbr'
  t.after(() => spawnSync('ip', ['link', 'del', VBR], { stdio: 'ignore' }))
  const nodes = {
    a: { ctx: ctr(t, 'nsdn-t-a'), conf: conf({ backend: 'bridge', bridge: VBR, vlanId: 100 }) },
    b: { ctx: ctr(t, 'nsdn-t-b'), conf: conf({ backend: 'bridge', bridge: VBR, vlanId: 100 }) },
    // No backend: with bridge VLAN filtering, the probe picks the Linux bridge.
    c: { ctx: ctr(t, 'nsdn-t-c'), conf: conf({ bridge: VBR, vlanId: 200, trunk: [300] }) },
  }
  const ips: Record<string, string> = {}
  for (const [k, n] of Object.entries(nodes)) {
    const r = await driver.add(n.conf, n.ctx)
    await driver.check(n.conf, { ...n.ctx, prevResult: r })
    ips[k] = addrOf(r)
  }
  const [br] = ipJson<IpLink[]>(['-d', 'link', 'show', VBR])
  assert.equal(br?.linkinfo?.info_kind, 'bridge')
  assert.equal(br?.linkinfo?.info_data?.vlan_filtering, 1)
  const port = (k: keyof typeof nodes): string => hostVethName(nodes[k].ctx.containerId, 'eth0')
  for (const k of ['a', 'b'] as const) {
    assert.ok(ipLinks().find((l) => l.ifname === port(k))?.master === VBR, `${k}: a port of ${VBR}`)
    assert.deepEqual(portVlans(port(k))[100]?.sort(), ['Egress Untagged', 'PVID'], k)
  }
  assert.deepEqual(portVlans(port('c'))[200]?.sort(), ['Egress Untagged', 'PVID'])
  assert.deepEqual(portVlans(port('c'))[300], [], 'trunk VLAN 300: tagged, not the PVID')
  assert.ok(pingSoon(ips.b ?? '', 'nsdn-t-a'), 'a -> b: both in VLAN 100')
  assert.ok(!ping(ips.c ?? '', 'nsdn-t-a'), 'a -> c: VLAN 100 vs 200')
  for (const n of Object.values(nodes)) {
    await driver.del(n.conf, n.ctx)
    await driver.del(n.conf, n.ctx)
  }
  assert.deepEqual(leases(dataDir, NET), [])
  const left = ipLinks()
  assert.deepEqual(
    left.filter((l) => l.master === VBR || /^veth/.test(l.ifname)).map((l) => l.ifname),
    [],
    'the ports are gone',
  )
  assert.ok(
    left.some((l) => l.ifname === VBR),
    'the Linux bridge stays, as with the CNI bridge plugin',
  )
})

test('without a backend, the probe picks what this kernel has', async () => {
  const filtering = await probeBridgeVlanFiltering()
  assert.equal(await pickBackend(conf({ bridge: BR, vlanId: 100 })), filtering ? 'bridge' : 'ovs')
  const has8021q = await probeLinkKind('vlan')
  const m = pickBackend(conf({ master: 'nsdn-t-trunk', vlanId: 100 }))
  if (has8021q) assert.equal(await m, '8021q')
  else await assert.rejects(m, { code: 'E_KERNEL_FEATURE', message: /CONFIG_VLAN_8021Q/ })
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
  const filtering = await probeBridgeVlanFiltering()
  vsctl('add-br', DOWN, '--', 'set', 'Bridge', DOWN, 'datapath_type=netdev')
  t.after(() => vsctl('--if-exists', 'del-br', DOWN))
  const nodes = {
    // No backend: the probe picks ovs here; with bridge VLAN filtering it would pick that.
    a: {
      ctx: ctr(t, 'nsdn-t-a'),
      conf: conf({ ...(filtering ? { backend: 'ovs' } : {}), bridge: BR, vlanId: 100 }),
    },
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
