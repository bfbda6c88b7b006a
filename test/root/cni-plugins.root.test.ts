/**
 * nsdn's CNI plugins invoked exactly as a runtime invokes them (an executable of a CNI bin
 * directory, the CNI_* environment, the config on stdin, stdout and exit status read back),
 * for every verb, every driver and each supported spec version, through the resident agent
 * and through the Node fallback. The kernel's state is read with `ip -j` and ovs-vsctl.
 */
import { sandboxThisFile } from '../helpers/sandbox.js'
sandboxThisFile()

import assert from 'node:assert/strict'
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { test } from 'node:test'
import { hostVethName } from '../../src/drivers/veth.js'
import { NetNs } from '../../src/netns/netns.js'
import { leases } from '../helpers/attach.js'
import {
  type Call,
  MODES,
  type Mode,
  callPlugin,
  failed,
  ok,
  testNetns,
  usePlugins,
} from '../helpers/cni.js'
import { eventually, ipAddrs, ipLinks, pingSoon } from '../helpers/kernel.js'
import { rows } from '../helpers/ovs.js'
import { explainScript, runPasted } from '../helpers/paste.js'

const plugins = usePlugins()
const { dataDir, exe, call } = plugins
const agent = { served: (): number => plugins.agent().served() }

const VERSIONS = ['0.3.1', '0.4.0', '1.0.0', '1.1.0'] as const

type Json = Record<string, unknown>
interface DriverCase {
  subnet: string
  /** The driver's own keys (the reference plugin's where it has one). */
  keys: Json
}
const DRIVERS: Record<string, DriverCase> = {
  'nsdn-bridge': { subnet: '10.61.0.0/24', keys: { bridge: 'nsdn-t-br', isGateway: true } },
  'nsdn-routed': { subnet: '10.62.0.0/24', keys: {} },
  'nsdn-ovs': { subnet: '10.63.0.0/24', keys: { bridge: 'nsdn-t-ovs' } },
  // This kernel has no 8021q: the vlan driver's OVS backend.
  'nsdn-vlan': {
    subnet: '10.64.0.0/24',
    keys: { backend: 'ovs', bridge: 'nsdn-t-ovsv', vlanId: 100 },
  },
}

const network = (type: string): string => type.replace('nsdn-', 'net-')

function conf(type: string, version: string, ipam?: Json, extra: Json = {}): Json {
  const d = DRIVERS[type]!
  return {
    cniVersion: version,
    name: network(type),
    type,
    ...d.keys,
    ipam: ipam ?? { type: 'nsdn-ipam', dataDir, ranges: [[{ subnet: d.subnet }]] },
    ...extra,
  }
}

/** A named netns, removed after the test. */
function netns(t: { after(fn: () => void): void }): { name: string; path: string } {
  const name = testNetns(t, 'c')
  return { name, path: `/run/netns/${name}` }
}

/** The attachment is gone: no container interface, no host veth, no lease, no OVS port. */
function assertGone(type: string, id: string, ns: string | undefined): void {
  const host = hostVethName(id, 'eth0')
  assert.ok(!ipLinks().some((l) => l.ifname === host), `host veth ${host} left`)
  if (ns && NetNs.exists(ns)) assert.ok(!ipLinks(ns).some((l) => l.ifname === 'eth0'), 'eth0 left')
  assert.deepEqual(leases(dataDir, network(type)), [], 'leases left')
  if (type === 'nsdn-ovs' || type === 'nsdn-vlan')
    assert.ok(!rows('Port').some((r) => r.name === host), `OVS port ${host} left`)
}

for (const mode of Object.keys(MODES) as Mode[])
  for (const type of Object.keys(DRIVERS))
    test(`${type} (${mode}): ADD, CHECK, STATUS, DEL, DEL in every spec version`, async (t) => {
      const before = agent.served()
      for (const v of VERSIONS) {
        const ns = netns(t)
        const id = `${mode}-${ns.name}`
        const c = conf(type, v)
        const base = { containerId: id, netns: ns.path, ifname: 'eth0' }
        const r = ok(callPlugin(exe(type), call(mode, { command: 'ADD', ...base }), c), `${v} ADD`)!
        assert.equal(r.cniVersion, v)
        const ips = r.ips as { address: string; version?: string; interface?: number }[]
        assert.equal(ips.length, 1)
        assert.equal(ips[0]!.version, v < '1.0.0' ? '4' : undefined, `${v}: ips[].version`)
        const ifaces = r.interfaces as { name: string; sandbox?: string }[]
        assert.equal(ifaces[ips[0]!.interface!]?.name, 'eth0')
        assert.equal(ifaces[ips[0]!.interface!]?.sandbox, ns.path)
        // The kernel agrees, read by ip.
        assert.ok(
          ipAddrs(ns.name).some((a) => a.startsWith(`eth0 ${ips[0]!.address.split('/')[0]}/`)),
        )
        const withPrev = { ...c, prevResult: r }
        const chk = callPlugin(exe(type), call(mode, { command: 'CHECK', ...base }), withPrev)
        if (v === '0.3.1') failed(chk, 1, 'CHECK on 0.3.1')
        else ok(chk, `${v} CHECK`)
        const st = callPlugin(exe(type), call(mode, { command: 'STATUS' }), c)
        if (v === '1.1.0') assert.equal(ok(st, 'STATUS'), undefined)
        else failed(st, 1, `STATUS on ${v}`)
        for (const i of [1, 2]) {
          const del = callPlugin(exe(type), call(mode, { command: 'DEL', ...base }), withPrev)
          assert.equal(ok(del, `${v} DEL ${i}`), undefined, 'DEL prints nothing')
        }
        assertGone(type, id, ns.name)
      }
      const served = agent.served() - before
      if (mode === 'agent') assert.ok(served >= VERSIONS.length * 4, `agent served ${served}`)
      else assert.equal(served, 0, 'node mode must not reach the agent')
    })

test('both modes give the same Result for the same attachment', async (t) => {
  for (const type of Object.keys(DRIVERS)) {
    const ipam = {
      type: 'nsdn-ipam',
      addresses: [{ address: '10.70.0.5/24', gateway: '10.70.0.1' }],
    }
    const results: Json[] = []
    for (const mode of ['agent', 'node'] as const) {
      const ns = netns(t)
      const base = { containerId: 'same', netns: ns.path, ifname: 'eth0' }
      const c = conf(type, '1.0.0', ipam)
      const r = ok(callPlugin(exe(type), call(mode, { command: 'ADD', ...base }), c), mode)!
      ok(
        callPlugin(exe(type), call(mode, { command: 'DEL', ...base }), { ...c, prevResult: r }),
        mode,
      )
      // MACs and the sandbox path differ per namespace; the rest must not.
      const norm = JSON.parse(JSON.stringify(r).replace(/"(mac|sandbox)":"[^"]*"/g, '"$1":"x"'))
      results.push(norm as Json)
    }
    assert.deepEqual(results[0], results[1], type)
  }
})

test('CNI_NETNS may be any netns file: a bind mount outside /run/netns, /proc/PID/ns/net', async (t) => {
  const ns = netns(t)
  const file = '/run/nsdn-t-nsfile'
  fs.writeFileSync(file, '')
  execFileSync('mount', ['--bind', ns.path, file])
  t.after(() => {
    execFileSync('umount', [file])
    fs.rmSync(file)
  })
  // A process inside the namespace: its /proc/PID/ns/net is the other kind of path.
  const sleeper = spawn('ip', ['netns', 'exec', ns.name, 'sleep', '60'], { stdio: 'ignore' })
  t.after(() => sleeper.kill())
  const procPath = `/proc/${sleeper.pid}/ns/net`
  // Once ip netns exec has switched: the same namespace file (inode) as the named one.
  await eventually(() => {
    try {
      return fs.statSync(procPath).ino === fs.statSync(ns.path).ino
    } catch {
      return false
    }
  })
  const type = 'nsdn-bridge'
  const c = conf(type, '1.0.0')
  for (const [mode, nsPath] of [
    ['agent', file],
    ['node', file],
    ['agent', procPath],
    ['node', procPath],
  ] as const) {
    const base = { containerId: `bind-${mode}`, netns: nsPath, ifname: 'eth0' }
    const r = ok(callPlugin(exe(type), call(mode, { command: 'ADD', ...base }), c), mode)!
    assert.ok(ipAddrs(ns.name).some((a) => a.startsWith('eth0 10.61.0.')))
    assert.ok(pingSoon('10.61.0.1', ns.name), 'container pings its gateway')
    ok(
      callPlugin(exe(type), call(mode, { command: 'CHECK', ...base }), { ...c, prevResult: r }),
      'CHECK',
    )
    ok(callPlugin(exe(type), call(mode, { command: 'DEL', ...base }), c), 'DEL')
  }
  assertGone(type, 'bind-node', ns.name)
})

test('bad environment and input: the spec code, cniVersion, nothing else on stdout, exit 1', (t) => {
  const ns = netns(t)
  const type = 'nsdn-bridge'
  const good = conf(type, '1.0.0')
  const base = { containerId: 'bad', netns: ns.path, ifname: 'eth0' }
  for (const mode of ['agent', 'node'] as const) {
    const cases: [string, Call, unknown, number][] = [
      ['no CNI_COMMAND', { ...base }, good, 4],
      ['unknown verb', { command: 'MAKE', ...base }, good, 4],
      ['no CNI_NETNS', { command: 'ADD', containerId: 'bad', ifname: 'eth0' }, good, 4],
      ['no CNI_CONTAINERID', { command: 'ADD', netns: ns.path, ifname: 'eth0' }, good, 4],
      ['no CNI_PATH', { command: 'ADD', ...base, path: '' }, good, 4],
      ['netns path that is no netns', { command: 'ADD', ...base, netns: '/etc/hostname' }, good, 8],
      ['stdin not JSON', { command: 'ADD', ...base }, '{"cniVersion":', 6],
      ['unsupported cniVersion', { command: 'ADD', ...base }, { ...good, cniVersion: '0.2.0' }, 1],
      [
        'bad subnet',
        { command: 'ADD', ...base },
        conf(type, '1.0.0', { type: 'nsdn-ipam', subnet: '10.1.0.0/33' }),
        7,
      ],
      ['bad key value', { command: 'ADD', ...base }, { ...good, mtu: 'big' }, 7],
      ['unknown IPAM type', { command: 'ADD', ...base }, conf(type, '1.0.0', { type: 'nope' }), 7],
    ]
    for (const [what, c, stdin, code] of cases) {
      const a = callPlugin(exe(type), call(mode, c), stdin)
      failed(a, code, `${mode}: ${what}`)
    }
  }
  assertGone(type, 'bad', ns.name)
})

test('NSDN_EXPLAIN=1: the ip commands on stderr, only the Result on stdout', (t) => {
  const type = 'nsdn-routed'
  const c = conf(type, '1.0.0')
  for (const mode of ['agent', 'node'] as const) {
    const ns = netns(t)
    const base = { containerId: `ex-${mode}`, netns: ns.path, ifname: 'eth0' }
    const a = callPlugin(
      exe(type),
      call(mode, { command: 'ADD', ...base, env: { NSDN_EXPLAIN: '1' } }),
      c,
    )
    ok(a, mode)
    assert.match(a.stderr, /^ip link add veth\w+ up type veth peer name eth0 netns/m, mode)
    assert.match(a.stderr, /^ip -n \S+ addr add 10\.62\.0\.\d+\/32 dev eth0/m, mode)
    ok(callPlugin(exe(type), call(mode, { command: 'DEL', ...base }), c), 'DEL')
  }
})

test('nsdn-portmap NSDN_EXPLAIN=1: ADD and DEL as pasteable nft and sysctl lines, chains by name', (t) => {
  // A bridge for route_localnet; the container side only as prevResult describes it.
  execFileSync('ip', ['link', 'add', 'nsdn-t-pmx', 'type', 'bridge'])
  t.after(() => execFileSync('ip', ['link', 'del', 'nsdn-t-pmx']))
  const localnet = '/proc/sys/net/ipv4/conf/nsdn-t-pmx/route_localnet'
  const c = {
    cniVersion: '1.0.0',
    name: 'pmx',
    type: 'nsdn-portmap',
    runtimeConfig: { portMappings: [{ hostPort: 18000, containerPort: 80, protocol: 'tcp' }] },
    prevResult: {
      cniVersion: '1.0.0',
      interfaces: [{ name: 'nsdn-t-pmx' }, { name: 'eth0', sandbox: '/run/netns/none' }],
      ips: [{ address: '10.92.0.2/24', interface: 1 }],
    },
  }
  const table = (): string => {
    const r = spawnSync('nft', ['list', 'table', 'inet', 'nsdn-portmap'], { encoding: 'utf8' })
    return `${r.stdout}route_localnet=${fs.readFileSync(localnet, 'utf8').trim()}`
  }
  for (const mode of ['agent', 'node'] as const) {
    const base = { containerId: `pmx-${mode}`, ifname: 'eth0', netns: '/run/netns/none' }
    const x = { NSDN_EXPLAIN: '1' }
    const add = callPlugin(exe('nsdn-portmap'), call(mode, { command: 'ADD', ...base, env: x }), c)
    ok(add, `${mode} ADD`)
    const added = table()
    const del = callPlugin(exe('nsdn-portmap'), call(mode, { command: 'DEL', ...base, env: x }), c)
    ok(del, `${mode} DEL`)
    const deleted = table()
    const delScript = explainScript(del.stderr)
    assert.match(delScript, /delete chain inet nsdn-portmap pm[0-9a-f]{8}-prerouting/, mode)
    assert.doesNotMatch(delScript, /handle/, `${mode}: deletion by name, not by handle`)
    // Pasted into a root shell, the lines build and remove the same state.
    fs.writeFileSync(localnet, '0')
    runPasted(explainScript(add.stderr))
    assert.equal(table(), added, `${mode}: the pasted ADD builds what ADD built`)
    runPasted(delScript)
    assert.equal(table(), deleted, `${mode}: the pasted DEL removes what DEL removed`)
    // The table stays, as the reference leaves its chains; nothing of the attachment does.
    assert.doesNotMatch(deleted, /chain/, mode)
  }
})

test('GC removes every attachment not in cni.dev/valid-attachments: links, leases, records', (t) => {
  const type = 'nsdn-bridge'
  const c = conf(type, '1.1.0')
  const ids: string[] = []
  for (let i = 0; i < 3; i++) {
    const ns = netns(t)
    const id = `gc${i}`
    ids.push(id)
    ok(
      callPlugin(
        exe(type),
        call('agent', { command: 'ADD', containerId: id, netns: ns.path, ifname: 'eth0' }),
        c,
      ),
      'ADD',
    )
  }
  assert.equal(leases(dataDir, network(type)).length, 3)
  // A lease whose ADD died half-way (no record) goes too.
  fs.writeFileSync(path.join(dataDir, network(type), '10.61.0.200'), 'crashed\r\neth0')
  const valid = { ...c, 'cni.dev/valid-attachments': [{ containerID: 'gc1', ifname: 'eth0' }] }
  ok(callPlugin(exe(type), call('node', { command: 'GC' }), valid), 'GC')
  const names = ipLinks().map((l) => l.ifname)
  assert.ok(names.includes(hostVethName('gc1', 'eth0')), 'the valid attachment stays')
  assert.ok(!names.includes(hostVethName('gc0', 'eth0')), 'gc0 removed')
  assert.ok(!names.includes(hostVethName('gc2', 'eth0')), 'gc2 removed')
  assert.equal(leases(dataDir, network(type)).length, 1)
  ok(
    callPlugin(exe(type), call('agent', { command: 'GC' }), {
      ...c,
      'cni.dev/valid-attachments': [],
    }),
    'GC all',
  )
  assertGone(type, 'gc1', undefined)
})

test('VERSION from every plugin, both modes', () => {
  for (const type of [
    'nsdn-bridge',
    'nsdn-ovs',
    'nsdn-vlan',
    'nsdn-routed',
    'nsdn-ipam',
    'nsdn-portmap',
  ])
    for (const mode of ['agent', 'node'] as const) {
      const j = ok(
        callPlugin(exe(type), call(mode, { command: 'VERSION' }), { cniVersion: '1.0.0' }),
        type,
      )!
      assert.deepEqual(j.supportedVersions, ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'])
    }
})

test('nothing of the tests remains: no veth, no lease, no record', () => {
  // The bridge outlives its ports, as the reference plugin's does: the test removes it.
  execFileSync('ip', ['link', 'del', 'nsdn-t-br'])
  assert.deepEqual(
    ipLinks()
      .filter((l) => l.ifname.startsWith('veth'))
      .map((l) => l.ifname),
    [],
  )
  for (const type of Object.keys(DRIVERS))
    assert.deepEqual(leases(dataDir, network(type)), [], type)
  const recs = fs.existsSync('/run/nsdn/cni')
    ? fs.readdirSync('/run/nsdn/cni').flatMap((n) => fs.readdirSync(path.join('/run/nsdn/cni', n)))
    : []
  assert.deepEqual(recs, [])
})

test('the shim: an agent that declines means Node; one that dies mid-call means error 999', async () => {
  const { createServer } = await import('node:net')
  const sock = '/run/nsdn-t-fake-agent.sock'
  for (const [behaviour, expectFallback] of [
    ['decline', true],
    ['die', false],
  ] as const) {
    const server = createServer({ allowHalfOpen: true }, (c) => {
      c.on('data', () => undefined)
      c.on('end', () => (behaviour === 'decline' ? c.end(Buffer.from([255])) : c.destroy()))
    })
    await new Promise<void>((r) => server.listen(sock, r))
    try {
      const env = { NSDN_CNI_SOCKET: sock }
      const { spawn: sp } = await import('node:child_process')
      // Async: this process serves the fake agent meanwhile.
      const a = await new Promise<{ status: number | null; stdout: string }>((resolve) => {
        const child = sp(exe('nsdn-bridge'), [], {
          env: { PATH: process.env.PATH, CNI_COMMAND: 'VERSION', ...env },
        })
        let out = ''
        child.stdout.on('data', (b: Buffer) => (out += b.toString()))
        child.on('close', (status) => resolve({ status, stdout: out }))
        child.stdin.end(JSON.stringify({ cniVersion: '0.4.0', name: 'n' }))
      })
      const j = JSON.parse(a.stdout) as Json
      if (expectFallback) {
        assert.equal(a.status, 0)
        assert.deepEqual(j.supportedVersions, ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'])
      } else {
        assert.equal(a.status, 1)
        assert.deepEqual(
          { cniVersion: j.cniVersion, code: j.code },
          { cniVersion: '0.4.0', code: 999 },
        )
      }
    } finally {
      await new Promise((r) => server.close(r))
    }
  }
})
