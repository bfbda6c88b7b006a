/**
 * Where the reference plugins fall short, nsdn's must not: a failed ADD (bad IPAM, exhausted
 * range, existing interface name) leaves nothing behind without waiting for the runtime's DEL,
 * and the next ADD on that bridge works; 20 parallel ADDs on one network get distinct
 * addresses and 20 parallel DELs leave nothing, through the agent and through Node; concurrent
 * DELs on one OVS bridge never fail.
 */
import { sandboxThisFile } from '../helpers/sandbox.js'
sandboxThisFile()

import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { test } from 'node:test'
import { hostVethName } from '../../src/drivers/veth.js'
import { leases } from '../helpers/attach.js'
import {
  type Call,
  MODES,
  callPlugin,
  callPluginAsync,
  failed,
  ok,
  testNetns,
  usePlugins,
} from '../helpers/cni.js'
import { ipAddrs, ipLinks, pingSoon } from '../helpers/kernel.js'
import { rows } from '../helpers/ovs.js'

const plugins = usePlugins()
const { dataDir, exe } = plugins
const NODE = MODES.node
const netns = (t: { after(fn: () => void): void }): string => testNetns(t, 'x')

type Json = Record<string, unknown>

const base = (id: string, ns: string, env: Record<string, string> = {}): Call => ({
  containerId: id,
  netns: `/run/netns/${ns}`,
  ifname: 'eth0',
  path: plugins.cniPath,
  env,
})

const bridgeConf = (name: string, br: string, ipam: Json): Json => ({
  cniVersion: '1.0.0',
  name,
  type: 'nsdn-bridge',
  bridge: br,
  isGateway: true,
  ipMasq: true,
  ipam,
})

/** Nothing of attachment id is left: host veth, container side, lease. */
function assertNothingOf(id: string, ns: string, net: string, keepLeases: string[] = []): void {
  assert.ok(
    !ipLinks().some((l) => l.ifname === hostVethName(id, 'eth0')),
    `host veth of ${id} left`,
  )
  assert.ok(
    !ipLinks(ns).some((l) => l.ifname === 'eth0' && l.linkinfo?.info_kind === 'veth'),
    `eth0 of ${id} left`,
  )
  assert.deepEqual(leases(dataDir, net), keepLeases, 'leases')
}

for (const ipamType of ['nsdn-ipam', 'host-local'])
  test(`exhausted range (${ipamType}): the failed ADD leaves nothing, the next ADD on the bridge works`, (t) => {
    const net = `ex-${ipamType}`
    // One address only.
    const ipam = {
      type: ipamType,
      dataDir,
      ranges: [[{ subnet: '10.91.0.0/24', rangeStart: '10.91.0.5', rangeEnd: '10.91.0.5' }]],
    }
    const c = bridgeConf(net, 'nsdn-t-xb', ipam)
    const [a, b] = [netns(t), netns(t)]
    const first = ok(
      callPlugin(exe('nsdn-bridge'), { command: 'ADD', ...base('a', a) }, c),
      'first ADD',
    )!
    const second = callPlugin(exe('nsdn-bridge'), { command: 'ADD', ...base('b', b) }, c)
    assert.notEqual(second.status, 0)
    const err = second.json!
    assert.equal(typeof err.cniVersion, 'string')
    if (ipamType === 'nsdn-ipam') assert.equal(err.code, 110)
    assertNothingOf('b', b, net, ['10.91.0.5'])
    // The first container still works; then its DEL frees the address and the next ADD works.
    assert.ok(pingSoon('10.91.0.1', a))
    ok(
      callPlugin(
        exe('nsdn-bridge'),
        { command: 'DEL', ...base('a', a) },
        { ...c, prevResult: first },
      ),
      'DEL',
    )
    const again = ok(
      callPlugin(exe('nsdn-bridge'), { command: 'ADD', ...base('b', b) }, c),
      'ADD after failure',
    )!
    assert.equal((again.ips as { address: string }[])[0]?.address, '10.91.0.5/24')
    assert.ok(pingSoon('10.91.0.1', b), 'the next container on that bridge works')
    ok(callPlugin(exe('nsdn-bridge'), { command: 'DEL', ...base('b', b) }, c), 'DEL')
    assertNothingOf('b', b, net)
  })

test('bad IPAM from the reference host-local: the ADD fails with its error, nothing left', (t) => {
  const ns = netns(t)
  // host-local refuses a range without a subnet; nsdn has created the bridge and veth by then.
  const c = bridgeConf('badipam', 'nsdn-t-xb', {
    type: 'host-local',
    dataDir,
    ranges: [[{ rangeStart: '10.92.0.5' }]],
  })
  for (const env of [{}, NODE]) {
    const a = callPlugin(exe('nsdn-bridge'), { command: 'ADD', ...base('bi', ns, env) }, c)
    assert.notEqual(a.status, 0)
    assert.equal(typeof a.json?.cniVersion, 'string')
    assert.match(String(a.json?.msg), /host-local/)
    assertNothingOf('bi', ns, 'badipam')
  }
})

test('an interface name that exists in the container: code 102, nothing of ours left, theirs intact', (t) => {
  const ns = netns(t)
  execFileSync('ip', [
    'link',
    'add',
    'nsdn-t-pre',
    'type',
    'veth',
    'peer',
    'name',
    'eth0',
    'netns',
    ns,
  ])
  // Deleting the namespace (netns's after hook) removes this pair too.
  const c = bridgeConf('exists', 'nsdn-t-xb', {
    type: 'nsdn-ipam',
    dataDir,
    subnet: '10.93.0.0/24',
  })
  for (const env of [{}, NODE]) {
    const a = callPlugin(exe('nsdn-bridge'), { command: 'ADD', ...base('ex', ns, env) }, c)
    failed(a, 102, 'existing eth0')
    assert.ok(!ipLinks().some((l) => l.ifname === hostVethName('ex', 'eth0')))
    assert.deepEqual(leases(dataDir, 'exists'), [])
    assert.ok(
      ipLinks(ns).some((l) => l.ifname === 'eth0'),
      'their eth0 stays',
    )
  }
})

for (const [mode, env, ipamType] of [
  ['agent', {}, 'host-local'],
  ['node', NODE, 'nsdn-ipam'],
] as const)
  test(`20 parallel ADDs get distinct addresses, 20 parallel DELs leave nothing (${mode}, ${ipamType})`, async (t) => {
    const net = `par-${mode}`
    const c = bridgeConf(net, `nsdn-t-p${mode[0]}`, {
      type: ipamType,
      dataDir,
      subnet: '10.94.0.0/24',
    })
    const names = Array.from({ length: 20 }, () => netns(t))
    const adds = await Promise.all(
      names.map((ns) =>
        callPluginAsync(exe('nsdn-bridge'), { command: 'ADD', ...base(ns, ns, env) }, c),
      ),
    )
    const addrs = adds.map((a, i) => {
      const j = ok(a, `ADD ${i}`)!
      return (j.ips as { address: string }[])[0]!.address
    })
    assert.equal(new Set(addrs).size, 20, `distinct: ${addrs.join(' ')}`)
    assert.equal(leases(dataDir, net).length, 20)
    // The kernel agrees.
    for (const [i, ns] of names.entries()) assert.ok(ipAddrs(ns).includes(`eth0 ${addrs[i]}`), ns)
    const dels = await Promise.all(
      names.map((ns) =>
        callPluginAsync(exe('nsdn-bridge'), { command: 'DEL', ...base(ns, ns, env) }, c),
      ),
    )
    dels.forEach((d, i) => ok(d, `DEL ${i}`))
    for (const ns of names) assertNothingOf(ns, ns, net)
    execFileSync('ip', ['link', 'del', `nsdn-t-p${mode[0]}`])
  })

test('concurrent DELs on one OVS bridge never fail (twice each, at once)', async (t) => {
  const c = {
    cniVersion: '1.0.0',
    name: 'ovsdel',
    type: 'nsdn-ovs',
    bridge: 'nsdn-t-ovsd',
    ipam: { type: 'nsdn-ipam', dataDir, subnet: '10.95.0.0/24' },
  }
  const names = Array.from({ length: 8 }, () => netns(t))
  for (const ns of names)
    ok(callPlugin(exe('nsdn-ovs'), { command: 'ADD', ...base(ns, ns) }, c), `ADD ${ns}`)
  assert.equal(rows('Port').filter((r) => String(r.name).startsWith('veth')).length, 8)
  const dels = await Promise.all(
    [...names, ...names].map((ns, i) =>
      callPluginAsync(exe('nsdn-ovs'), { command: 'DEL', ...base(ns, ns, i % 2 ? NODE : {}) }, c),
    ),
  )
  dels.forEach((d, i) => ok(d, `DEL ${i}`))
  assert.deepEqual(
    rows('Port').filter((r) => String(r.name).startsWith('veth')),
    [],
  )
  assert.deepEqual(leases(dataDir, 'ovsdel'), [])
})

test('nothing of the tests remains', () => {
  execFileSync('ip', ['link', 'del', 'nsdn-t-xb'])
  assert.deepEqual(
    ipLinks()
      .filter((l) => l.ifname.startsWith('veth'))
      .map((l) => l.ifname),
    [],
  )
})
