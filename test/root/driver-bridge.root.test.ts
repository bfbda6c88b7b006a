import { sandboxThisFile } from '../helpers/sandbox.js'
sandboxThisFile()

import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import { type TestContext, after, test } from 'node:test'
import type { AttachContext, NetConfBase } from '../../src/drivers/api.js'
import { getDriver } from '../../src/drivers/registry.js'
import { hostVethName } from '../../src/drivers/veth.js'
import { Rtnl } from '../../src/netlink/rtnl.js'
import { NetNs } from '../../src/netns/netns.js'
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
import {
  eventually,
  ipAddrs,
  ipLinks,
  netnsNames,
  ping,
  pingSoon,
  strayLinks,
} from '../helpers/kernel.js'

const bridge = getDriver('bridge')
const dataDir = ipamDataDir()
const NET = 'nsdn-t-net'
const BR = 'nsdn-t-br0'

after(() => {
  Rtnl.closeAll()
  fs.rmSync(dataDir, { recursive: true, force: true })
})

function conf(
  extra: Record<string, unknown> = {},
  ranges: unknown = [[{ subnet: '10.1.0.0/24' }]],
): NetConfBase {
  return bridge.parseConf({
    cniVersion: '1.0.0',
    name: NET,
    type: 'bridge',
    bridge: BR,
    ipam: { type: 'host-local', ranges, dataDir },
    ...extra,
  })
}

type Attach = AttachContext & { netns: NetNs }

/** Nothing of an attachment is left: no veth, no lease, no nft rule; the bridge may stay. */
function assertNothingLeft(ctxs: AttachContext[], bridgeMayStay: boolean): void {
  const links = strayLinks()
  assert.deepEqual(links, bridgeMayStay && links.includes(BR) ? [BR] : [], `links left: ${links}`)
  for (const c of ctxs) {
    if (NetNs.exists(c.containerId))
      assert.deepEqual(
        ipLinks(c.containerId).map((l) => l.ifname),
        ['lo'],
      )
    assert.ok(!links.includes(hostVethName(c.containerId, c.ifname)))
  }
  assert.deepEqual(leases(dataDir, NET), [])
  assert.deepEqual(nsdnNftRules(), [])
}

/**
 * Containers for one test, torn down after it whatever happened (del is idempotent), with the
 * bridge (del leaves it, by design), so that a failing test does not fail the next ones.
 */
function containers(t: TestContext, c: NetConfBase, ...names: string[]): Attach[] {
  const ctxs = names.map((n) => container(n))
  t.after(async () => {
    delete process.env.NSDN_FAIL_AFTER
    for (const x of ctxs) await bridge.del(c, { ...x, netns: undefined }).catch(() => undefined)
    if (strayLinks().includes(BR)) ip(['link', 'del', BR])
    for (const x of ctxs) dropContainer(x)
  })
  return ctxs
}

test('add -> check -> traffic -> del -> del: two namespaces on one bridge', async (t) => {
  const c = conf({
    isDefaultGateway: true,
    ipMasq: true,
    hairpinMode: true,
    promiscMode: true,
    mtu: 1400,
  })
  const [a, b] = containers(t, c, 'nsdn-t-a', 'nsdn-t-b') as [Attach, Attach]
  const ra = await bridge.add(c, a)
  const rb = await bridge.add(c, b)
  const [ipA, ipB] = [addressOf(ra), addressOf(rb)]

  // The kernel's view, through iproute2.
  const links = ipLinks()
  const br = links.find((l) => l.ifname === BR)
  assert.equal(br?.linkinfo?.info_kind, 'bridge')
  assert.ok(br?.flags.includes('PROMISC'), `bridge flags: ${br?.flags}`)
  assert.ok(br?.flags.includes('UP'))
  for (const ctx of [a, b]) {
    const hv = links.find((l) => l.ifname === hostVethName(ctx.containerId, 'eth0'))
    assert.equal(hv?.master, BR)
    assert.equal(hv?.mtu, 1400)
    const slave = (hv?.linkinfo as { info_slave_data?: { hairpin?: boolean } } | undefined)
      ?.info_slave_data
    assert.equal(slave?.hairpin, true, 'hairpin mode on the port')
    const eth0 = ipLinks(ctx.containerId).find((l) => l.ifname === 'eth0')
    assert.equal(eth0?.mtu, 1400)
  }
  assert.ok(ipAddrs().includes(`${BR} 10.1.0.1/24`), `bridge addresses: ${ipAddrs()}`)
  assert.ok(ipAddrs('nsdn-t-a').includes(`eth0 ${ipA}/24`))
  assert.deepEqual(
    ipRoutes('nsdn-t-a').find((r) => r.dst === 'default'),
    { dst: 'default', gateway: '10.1.0.1', dev: 'eth0', flags: [] },
  )
  assert.equal(fs.readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim(), '1')
  assert.equal(leases(dataDir, NET).length, 2)
  assert.equal(nsdnNftRules().length, 2, 'one masquerade rule per container')
  assert.equal(ra.interfaces?.[0]?.name, BR)
  assert.equal(ra.interfaces?.[2]?.sandbox, '/run/netns/nsdn-t-a')

  await bridge.check(c, { ...a, prevResult: ra })
  await bridge.check(c, { ...b, prevResult: rb })

  assert.ok(pingSoon(ipB, 'nsdn-t-a'), 'a -> b')
  assert.ok(ping('10.1.0.1', 'nsdn-t-a'), 'a -> gateway')
  assert.ok(ping(ipA, 'nsdn-t-b'), 'b -> a')
  const perf = await iperf('nsdn-t-a', ipA, 'nsdn-t-b')
  t.diagnostic(`iperf3 b -> a over the bridge: ${(perf.bitsPerSecond / 1e9).toFixed(2)} Gbit/s`)
  assert.ok(perf.bytes > 0)

  // ipMasq: a namespace beyond the host, with no route back to 10.1.0.0/24, answers a's ping
  // only when the host masquerades it.
  const out = container('nsdn-t-out')
  t.after(() => dropContainer(out))
  ip(['link', 'add', 'nsdn-t-up', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', 'nsdn-t-out'])
  ip(['addr', 'add', '192.168.99.1/24', 'dev', 'nsdn-t-up'])
  ip(['link', 'set', 'nsdn-t-up', 'up'])
  ip(['addr', 'add', '192.168.99.2/24', 'dev', 'eth0'], 'nsdn-t-out')
  ip(['link', 'set', 'eth0', 'up'], 'nsdn-t-out')
  assert.ok(pingSoon('192.168.99.2', 'nsdn-t-a'), 'a -> outside, masqueraded')
  // a's masquerade rules are in its own chain, named after its host veth.
  execFileSync('nft', ['flush', 'chain', 'inet', 'nsdn', hostVethName(a.containerId, a.ifname)])
  assert.ok(!ping('192.168.99.2', 'nsdn-t-a'), 'no answer without the rule: it was the masquerade')
  await assert.rejects(
    bridge.check(c, { ...a, prevResult: ra }),
    new RegExp(`the masquerade rule for ${ipA}/24 is missing`),
  )
  ip(['link', 'del', 'nsdn-t-up'])

  await bridge.del(c, a)
  await bridge.del(c, b)
  await bridge.del(c, a)
  await bridge.del(c, b)
  assertNothingLeft([a, b], true)
  assert.deepEqual(
    ipAddrs().filter((x) => x.startsWith(`${BR} `) && !x.includes(' fe80:')),
    [`${BR} 10.1.0.1/24`],
    'the bridge keeps its gateway address for the next container',
  )
})

test('del after the namespace is gone releases host veth, lease and rules', async (t) => {
  const c = conf({ ipMasq: true, macspoofchk: true })
  const [a] = containers(t, c, 'nsdn-t-gone') as [Attach]
  await bridge.add(c, a)
  dropContainer(a)
  await bridge.del(c, { ...a, netns: undefined })
  await bridge.del(c, { ...a, netns: undefined })
  assert.ok(await eventually(() => strayLinks().join() === BR), `left: ${strayLinks()}`)
  assertNothingLeft([], true)
})

test('check reports a removed address, a removed route and a veth off the bridge', async (t) => {
  const c = conf({ isDefaultGateway: true })
  const [a] = containers(t, c, 'nsdn-t-chk') as [Attach]
  const r = await bridge.add(c, a)
  const addr = r.ips?.[0]?.address ?? ''
  await bridge.check(c, { ...a, prevResult: r })

  ip(['addr', 'del', addr, 'dev', 'eth0'], 'nsdn-t-chk')
  await assert.rejects(bridge.check(c, { ...a, prevResult: r }), (err: Error) => {
    assert.match(err.message, new RegExp(`address ${addr} is missing on "eth0"`))
    // The default route went with the address (its gateway is no longer on-link).
    assert.match(err.message, /route 0\.0\.0\.0\/0 via 10\.1\.0\.1 is missing/)
    return true
  })
  ip(['addr', 'add', addr, 'dev', 'eth0'], 'nsdn-t-chk')
  ip(['route', 'add', 'default', 'via', '10.1.0.1'], 'nsdn-t-chk')
  await bridge.check(c, { ...a, prevResult: r })

  ip(['route', 'del', 'default'], 'nsdn-t-chk')
  await assert.rejects(bridge.check(c, { ...a, prevResult: r }), (err: Error) => {
    assert.match(
      err.message,
      /route 0\.0\.0\.0\/0 via 10\.1\.0\.1 is missing in netns "nsdn-t-chk"/,
    )
    assert.doesNotMatch(err.message, /address/)
    return true
  })
  ip(['route', 'add', 'default', 'via', '10.1.0.1'], 'nsdn-t-chk')

  ip(['link', 'set', hostVethName('nsdn-t-chk', 'eth0'), 'nomaster'])
  await assert.rejects(
    bridge.check(c, { ...a, prevResult: r }),
    /is not a port of bridge "nsdn-t-br0"/,
  )
  await bridge.del(c, a)
  await assert.rejects(bridge.check(c, { ...a, prevResult: r }), (err: Error) => {
    assert.match(err.message, /interface "eth0" is missing/)
    assert.match(err.message, /host veth "veth[0-9a-f]{8}" is missing/)
    assert.match(err.message, /IPAM/)
    return true
  })
  assertNothingLeft([a], true)
})

test('a failure injected after each step of add leaves nothing behind', async (t) => {
  const c = conf({ isDefaultGateway: true, ipMasq: true, macspoofchk: true, hairpinMode: true })
  const [a] = containers(t, c, 'nsdn-t-fail') as [Attach]
  try {
    for (const step of ['bridge', 'veth', 'ipam', 'addresses', 'routes', 'masq']) {
      process.env.NSDN_FAIL_AFTER = step
      await assert.rejects(bridge.add(c, a), new RegExp(`injected failure after step "${step}"`))
      // add created the bridge, so its rollback removes it too.
      assertNothingLeft([a], false)
    }
  } finally {
    delete process.env.NSDN_FAIL_AFTER
  }
  // Rollback keeps a bridge that add did not create.
  ip(['link', 'add', BR, 'type', 'bridge'])
  process.env.NSDN_FAIL_AFTER = 'masq'
  try {
    await assert.rejects(bridge.add(c, a), /injected failure/)
  } finally {
    delete process.env.NSDN_FAIL_AFTER
  }
  assertNothingLeft([a], true)
  assert.deepEqual(strayLinks(), [BR])
  assert.deepEqual(
    ipAddrs().filter((x) => x.startsWith(`${BR} `) && !x.includes(' fe80:')),
    [],
    'the gateway address add put on a bridge it found is undone too',
  )
})

test('concurrent adds share one new bridge; concurrent dels leave nothing', async (t) => {
  const c = conf({ isGateway: true, ipMasq: true })
  const names = ['nsdn-t-p1', 'nsdn-t-p2', 'nsdn-t-p3', 'nsdn-t-p4']
  const ctxs = containers(t, c, ...names) as Attach[]
  const results = await Promise.all(ctxs.map((x) => bridge.add(c, x)))
  const addrs = results.map((r) => addressOf(r))
  assert.equal(new Set(addrs).size, 4, `addresses: ${addrs}`)
  assert.equal(ipLinks().filter((l) => l.master === BR).length, 4)
  assert.equal(nsdnNftRules().length, 4)
  assert.ok(pingSoon(addrs[3] ?? '', 'nsdn-t-p1'))
  await Promise.all(ctxs.map((x, i) => bridge.check(c, { ...x, prevResult: results[i] ?? {} })))
  await Promise.all(ctxs.map((x) => bridge.del(c, x)))
  assertNothingLeft(ctxs, true)
})

test('IPv6 dual-stack: the address is usable as soon as add returns (no DAD wait)', async (t) => {
  const c = conf({ isDefaultGateway: true }, [
    [{ subnet: '10.1.0.0/24' }],
    [{ subnet: 'fd00:1::/64' }],
  ])
  const [a, b] = containers(t, c, 'nsdn-t-v6a', 'nsdn-t-v6b') as [Attach, Attach]
  const rb = await bridge.add(c, b)
  const ra = await bridge.add(c, a)
  const added = performance.now()
  const v6b = addressOf(rb, 6)
  // Usable at once is the no-DAD flag, asserted below; the pings show traffic flows. Under
  // a loaded kernel the first echo may take longer than ping's wait, so they may retry.
  const toGw = pingSoon('fd00:1::1', 'nsdn-t-v6a')
  const usableMs = performance.now() - added
  const toB = pingSoon(v6b, 'nsdn-t-v6a')
  t.diagnostic(
    `IPv6 usable ${usableMs.toFixed(1)} ms after add returned (until the first ping6 answered)`,
  )
  assert.ok(toGw, 'ping6 to the gateway')
  assert.ok(toB, 'ping6 to the other container')
  const v6 = addrInfo('eth0', 'nsdn-t-v6a').filter(
    (x) => x.family === 'inet6' && x.local !== undefined,
  )
  const global = v6.find((x) => x.local === addressOf(ra, 6))
  assert.ok(global, `eth0 addresses: ${JSON.stringify(v6)}`)
  assert.equal(global.prefixlen, 64)
  assert.ok(!global.tentative && !global.dadfailed, 'added without DAD')
  assert.ok(ipAddrs().includes(`${BR} fd00:1::1/64`))
  assert.equal(fs.readFileSync('/proc/sys/net/ipv6/conf/all/forwarding', 'utf8').trim(), '1')
  assert.ok(ipRoutes('nsdn-t-v6a', 6).some((r) => r.dst === 'default' && r.gateway === 'fd00:1::1'))
  await bridge.check(c, { ...a, prevResult: ra })
  await bridge.del(c, a)
  await bridge.del(c, b)
  assertNothingLeft([a, b], true)
})

test("macspoofchk drops frames whose source MAC is not the container's", async (t) => {
  const c = conf({ macspoofchk: true })
  const [a, b] = containers(t, c, 'nsdn-t-ma', 'nsdn-t-mb') as [Attach, Attach]
  const ra = await bridge.add(c, a)
  const rb = await bridge.add(c, b)
  const ipB = addressOf(rb)
  assert.ok(pingSoon(ipB, 'nsdn-t-ma'))
  const mac = ra.interfaces?.[2]?.mac ?? ''
  ip(['link', 'set', 'eth0', 'address', '02:00:00:00:00:99'], 'nsdn-t-ma')
  ip(['neigh', 'flush', 'all'], 'nsdn-t-mb')
  assert.ok(!ping(ipB, 'nsdn-t-ma'), 'a spoofed source MAC is dropped')
  ip(['link', 'set', 'eth0', 'address', mac], 'nsdn-t-ma')
  assert.ok(pingSoon(ipB, 'nsdn-t-ma'), 'the real MAC passes again')
  await assert.rejects(
    bridge.check(c, {
      ...a,
      prevResult: {
        ...ra,
        interfaces: [{ name: 'eth0', mac: '02:00:00:00:00:98', sandbox: a.netnsPath }],
      },
    }),
    /has MAC .* not 02:00:00:00:00:98/,
  )
  await bridge.del(c, a)
  await bridge.del(c, b)
  assertNothingLeft([a, b], true)
})

test('vlan fails before anything is created, naming CONFIG_BRIDGE_VLAN_FILTERING', async (t) => {
  const [a] = containers(t, conf(), 'nsdn-t-vlan') as [Attach]
  for (const extra of [{ vlan: 100 }, { vlanTrunk: [{ id: 10 }] }])
    await assert.rejects(
      bridge.add(conf(extra), a),
      (err: Error & { code?: string; hint?: string }) => {
        assert.equal(err.code, 'E_KERNEL_FEATURE')
        assert.match(err.message, /CONFIG_BRIDGE_VLAN_FILTERING/)
        assert.match(err.hint ?? '', /ovs driver/)
        return true
      },
    )
  assertNothingLeft([a], false)
  assert.deepEqual(netnsNames(), ['nsdn-t-vlan'])
})

test("a link of the bridge's name that is no bridge is refused, and left alone", async (t) => {
  const [a] = containers(t, conf(), 'nsdn-t-nobr') as [Attach]
  ip(['link', 'add', BR, 'type', 'veth', 'peer', 'name', 'nsdn-t-peer'])
  await assert.rejects(bridge.add(conf(), a), {
    code: 'E_EXISTS',
    message: /"nsdn-t-br0" exists and is not a bridge/,
  })
  assert.deepEqual(strayLinks().sort(), [BR, 'nsdn-t-peer'])
  assert.deepEqual(leases(dataDir, NET), [])
  ip(['link', 'del', BR])
})

test('bad config is a ConfigError with the field path', () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ bridge: 5 }, /^conf\.bridge: must be a string/],
    [{ bridge: 'a-name-that-is-too-long' }, /^conf\.bridge: .*longer than 15/],
    [{ bridge: 'br 0' }, /^conf\.bridge: invalid interface name/],
    [{ mtu: 10 }, /^conf\.mtu: must be a whole number from 68 to 65535/],
    [{ mtu: '1500' }, /^conf\.mtu: must be a whole number/],
    [{ mtu: 1500.5 }, /^conf\.mtu: /],
    [{ isGateway: 'yes' }, /^conf\.isGateway: must be true or false/],
    [{ ipMasq: 1 }, /^conf\.ipMasq: must be true or false/],
    [{ vlan: 5000 }, /^conf\.vlan: must be a whole number from 0 to 4094/],
    [{ vlanTrunk: 'all' }, /^conf\.vlanTrunk: must be a list/],
    [{ name: '../x' }, /^conf\.name: invalid network name/],
    [{ name: undefined }, /^conf\.name: is missing$/],
    [{ type: 'routed' }, /^conf\.type: /],
    [{ ipam: { type: 'dhcp' } }, /^conf\.ipam\.type: unknown IPAM/],
    [
      { ipam: { type: 'host-local', ranges: [[{ subnet: '10.1.0.0/33' }]] } },
      /^conf\.ipam\.ranges\[0\]\[0\]\.subnet: /,
    ],
  ]
  assertConfErrors(conf, cases)
  assert.throws(() => bridge.parseConf([]), {
    code: 'E_CONFIG',
    message: /^conf: must be an object/,
  })
  const d = conf({ ipam: undefined }) as NetConfBase & Record<string, unknown>
  assert.equal(bridge.parseConf({ name: 'n', type: 'bridge' }).name, 'n')
  assert.equal((bridge.parseConf({ name: 'n' }) as unknown as { bridge: string }).bridge, 'cni0')
  assert.equal(d.isGateway, false)
  assert.equal(
    (conf({ isDefaultGateway: true }) as unknown as { isGateway: boolean }).isGateway,
    true,
  )
})

test('nothing of the tests is left in the sandbox', () => {
  assert.deepEqual(strayLinks(), [])
  assert.deepEqual(netnsNames(), [])
  assert.deepEqual(nsdnNftRules(), [])
})
