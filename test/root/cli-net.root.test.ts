import { sandboxThisFile } from '../helpers/sandbox.js'
sandboxThisFile()

import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { test } from 'node:test'
import { nsdn } from '../helpers/cli.js'
import { ipAddrs, netnsNames, pingSoon, strayLinks } from '../helpers/kernel.js'

const dataDir = fs.mkdtempSync('/run/nsdn-t-lease-')

const bridgeConf = JSON.stringify({
  cniVersion: '1.0.0',
  name: 'lab',
  bridge: 'br-lab',
  isGateway: true,
  ipam: { type: 'host-local', subnet: '10.30.0.0/24', dataDir },
})

interface Result {
  interfaces: { name: string; sandbox?: string }[]
  ips: { address: string; gateway?: string; interface?: number }[]
}

test('nsdn net attach/check/detach: CNI Result on stdout, every step under --explain', () => {
  for (const h of ['h1', 'h2']) assert.equal(nsdn(['netns', 'add', h]).status, 0)
  const a = nsdn([
    '--explain',
    '--json',
    'net',
    'attach',
    'h1',
    '--driver',
    'bridge',
    '--conf',
    bridgeConf,
  ])
  assert.equal(a.status, 0, a.stderr)
  const r = JSON.parse(a.stdout) as Result
  const ip1 = r.ips[0]
  assert.ok(ip1, a.stdout)
  assert.match(ip1.address, /^10\.30\.0\.\d+\/24$/)
  assert.equal(ip1.gateway, '10.30.0.1')
  assert.equal(r.interfaces[ip1.interface ?? -1]?.name, 'eth0')
  assert.equal(r.interfaces[ip1.interface ?? -1]?.sandbox, '/run/netns/h1')
  // The learner sees the kernel steps as commands.
  assert.match(a.stderr, /^ip link add br-lab( up)? type bridge$/m)
  assert.match(a.stderr, /^ip link add veth[0-9a-f]{8} .*type veth peer name eth0 netns h1$/m)
  assert.match(
    a.stderr,
    new RegExp(`^ip -n h1 addr add ${ip1.address.replace(/\./g, '\\.')} dev eth0`, 'm'),
  )
  assert.ok(ipAddrs('h1').includes(`eth0 ${ip1.address}`))

  const b = nsdn(['--json', 'net', 'attach', 'h2', '--driver', 'bridge', '--conf', bridgeConf])
  assert.equal(b.status, 0, b.stderr)
  const ip2 = (JSON.parse(b.stdout) as Result).ips[0]?.address.split('/')[0] ?? ''
  // A CNI Result carries its version, the one the config asks for.
  assert.equal((JSON.parse(b.stdout) as { cniVersion?: string }).cniVersion, '1.0.0')
  assert.ok(pingSoon(ip2, 'h1'), 'h1 -> h2 over br-lab')

  assert.equal(nsdn(['net', 'check', 'h1', '--driver', 'bridge', '--conf', bridgeConf]).status, 0)
  execFileSync('ip', ['-n', 'h1', 'addr', 'flush', 'dev', 'eth0'])
  const c = nsdn(['net', 'check', 'h1', '--driver', 'bridge', '--conf', bridgeConf])
  assert.notEqual(c.status, 0)
  assert.match(c.stderr, new RegExp(ip1.address.replace(/\./g, '\\.')))

  for (const h of ['h1', 'h2', 'h1']) {
    const d = nsdn(['net', 'detach', h, '--driver', 'bridge', '--conf', bridgeConf])
    assert.equal(d.status, 0, d.stderr)
  }
  assert.deepEqual(
    fs.readdirSync(path.join(dataDir, 'lab')).filter((f) => /^\d/.test(f)),
    [],
  )
  // The bridge outlives its ports, as with the CNI bridge plugin.
  assert.deepEqual(strayLinks(), ['br-lab'])
  assert.equal(nsdn(['link', 'del', 'br-lab']).status, 0)
  for (const h of ['h1', 'h2']) assert.equal(nsdn(['netns', 'del', h]).status, 0)
  assert.deepEqual(strayLinks(), [])
  assert.deepEqual(netnsNames(), [])
})

test('nsdn net attach with the ovs driver shows its ovs-vsctl steps', () => {
  assert.equal(nsdn(['ovs', 'start']).status, 0)
  assert.equal(nsdn(['netns', 'add', 'o1']).status, 0)
  const conf = JSON.stringify({
    name: 'ovslab',
    bridge: 'ovs-lab',
    vlan: 100,
    ipam: { type: 'static', addresses: [{ address: '10.31.0.2/24' }] },
  })
  const a = nsdn(['--explain', 'net', 'attach', 'o1', '--driver', 'ovs', '--conf', conf])
  assert.equal(a.status, 0, a.stderr)
  assert.match(a.stderr, /^ovs-vsctl .*add-br ovs-lab/m)
  assert.match(a.stderr, /^ovs-vsctl .*add-port ovs-lab veth[0-9a-f]{8}.* tag=100/m)
  assert.ok(ipAddrs('o1').includes('eth0 10.31.0.2/24'))
  assert.equal(nsdn(['net', 'detach', 'o1', '--driver', 'ovs', '--conf', conf]).status, 0)
  assert.equal(nsdn(['netns', 'del', 'o1']).status, 0)
  assert.equal(nsdn(['ovs', 'stop']).status, 0)
  assert.deepEqual(strayLinks(), [])
})

test('an unknown driver or a bad config creates nothing and says what to do', () => {
  assert.equal(nsdn(['netns', 'add', 'x1']).status, 0)
  const u = nsdn(['net', 'attach', 'x1', '--driver', 'nope', '--conf', bridgeConf])
  assert.equal(u.status, 78)
  assert.match(u.stderr, /unknown driver "nope"/)
  assert.match(u.stderr, /known drivers: .*bridge/)
  const j = nsdn(['net', 'attach', 'x1', '--driver', 'bridge', '--conf', '{not json'])
  assert.equal(j.status, 78)
  assert.match(j.stderr, /--conf: not valid JSON/)
  const m = nsdn([
    'net',
    'attach',
    'x1',
    '--driver',
    'bridge',
    '--conf',
    '{"name":"lab","mtu":"big"}',
  ])
  assert.equal(m.status, 78)
  assert.match(m.stderr, /conf\.mtu/)
  assert.deepEqual(strayLinks(), [])
  assert.equal(nsdn(['netns', 'del', 'x1']).status, 0)
})

test('detach: after netns del, never attached, then check says not found; the result goes', () => {
  const conf = JSON.stringify({
    name: 'dlab',
    bridge: 'br-dlab',
    ipam: { type: 'host-local', subnet: '10.32.0.0/24', dataDir },
  })
  const net = (verb: string, ns: string): ReturnType<typeof nsdn> =>
    nsdn(['net', verb, ns, '--driver', 'bridge', '--conf', conf])
  const result = (ns: string): string => `/run/nsdn/results/dlab/${ns}-eth0.json`
  const leases = (): string[] =>
    fs.readdirSync(path.join(dataDir, 'dlab')).filter((f) => /^\d/.test(f))
  for (const h of ['d1', 'd2']) assert.equal(nsdn(['netns', 'add', h]).status, 0)

  // A detach removes the recorded result; CHECK after DEL is "not found", exit 1.
  assert.equal(net('attach', 'd1').status, 0)
  assert.ok(fs.existsSync(result('d1')), 'attach records its result')
  assert.equal(leases().length, 1)
  const d = net('detach', 'd1')
  assert.equal(d.status, 0, d.stderr)
  assert.ok(!fs.existsSync(result('d1')), 'detach removes the result')
  assert.deepEqual(leases(), [])
  const c = net('check', 'd1')
  assert.equal(c.status, 1, c.stderr)
  assert.match(c.stderr, /^nsdn: no recorded attachment of d1 to "dlab" \[E_NOT_FOUND\]$/m)

  // The namespace deleted first (the container is gone): detach still cleans up after it.
  assert.equal(net('attach', 'd1').status, 0)
  assert.equal(nsdn(['netns', 'del', 'd1']).status, 0)
  const g = net('detach', 'd1')
  assert.equal(g.status, 0, g.stderr)
  assert.ok(!fs.existsSync(result('d1')))
  assert.deepEqual(leases(), [], 'the lease of the deleted namespace is released')
  assert.deepEqual(strayLinks(), ['br-dlab'], 'its host veth went with it')
  assert.equal(nsdn(['link', 'del', 'br-dlab']).status, 0)

  // Never attached, existing or not: detach succeeds and creates nothing.
  for (const h of ['d2', 'd3']) {
    const n = net('detach', h)
    assert.equal(n.status, 0, `${h}: ${n.stderr}`)
    assert.equal(n.stderr, '')
    assert.deepEqual(strayLinks(), [], `${h}: detach made nothing`)
    assert.deepEqual(ipAddrs('d2'), [])
    assert.ok(!fs.existsSync(result(h)))
  }
  assert.deepEqual(leases(), [])
  assert.equal(nsdn(['netns', 'del', 'd2']).status, 0)
  assert.deepEqual(netnsNames(), [])
})
