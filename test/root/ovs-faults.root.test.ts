import { sandboxThisFile } from '../helpers/sandbox.js'
sandboxThisFile()

import assert from 'node:assert/strict'
import { execFileSync, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { after, test } from 'node:test'
import { driver } from '../../plugins/ovs/index.js'
import type { AttachContext } from '../../src/drivers/api.js'
import { hostVethName } from '../../src/drivers/veth.js'
import { Rtnl } from '../../src/netlink/rtnl.js'
import { ovsStart, ovsStatus, ovsStop } from '../../src/ovs/daemon.js'
import { container, dropContainer, leases } from '../helpers/attach.js'
import { ended, nsdn, nsdnChild } from '../helpers/cli.js'
import { counts, filesUnder, leaks } from '../helpers/faults.js'
import { eventually, netnsNames, pingSoon, strayLinks } from '../helpers/kernel.js'
import { rows, vsctl } from '../helpers/ovs.js'

const dataDir = fs.mkdtempSync('/run/nsdn-t-ovsf-')
const BR = 'ovs-f'
const conf = (extra: Record<string, unknown> = {}): string =>
  JSON.stringify({
    name: 'ovsf',
    bridge: BR,
    ipam: { type: 'host-local', subnet: '10.60.0.0/24', dataDir },
    ...extra,
  })
const net = (verb: string, ns: string, c = conf()): ReturnType<typeof nsdn> =>
  nsdn(['net', verb, ns, '--driver', 'ovs', '--conf', c])

const portNames = (): string[] => rows('Port').map((r) => String(r.name))
const port = (ns: string): string => hostVethName(ns, 'eth0')

/** Kill a daemon of the private OVS as a crash would. */
async function crash(d: 'ovsdb-server' | 'ovs-vswitchd'): Promise<void> {
  const s = await ovsStatus()
  const pid = d === 'ovsdb-server' ? s.pids.ovsdbServer : s.pids.ovsVswitchd
  assert.ok(pid, `${d} runs`)
  process.kill(pid, 'SIGKILL')
  counts.faults++
  assert.ok(
    await eventually(
      () =>
        !fs.existsSync(`/proc/${pid}/cmdline`) || !fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8'),
    ),
  )
}

after(async () => {
  Rtnl.closeAll()
  await ovsStop()
  for (const n of netnsNames()) execFileSync('ip', ['netns', 'del', n])
  assert.ok(await eventually(() => strayLinks().length === 0), `links left: ${strayLinks()}`)
  assert.deepEqual(netnsNames(), [])
  process.stdout.write(
    `# ovs faults harness: inputs tried ${counts.inputs}, faults injected ${counts.faults}, ` +
      `leaks found ${counts.leaks}\n`,
  )
})

test('no private OVS: E_UNAVAILABLE naming "nsdn ovs start"; the default database is untouched', async () => {
  // An OVSDB at ovs-vsctl's default socket, standing in for the host's production switch.
  const sys = '/run/openvswitch'
  fs.mkdirSync(sys, { recursive: true })
  execFileSync('ovsdb-tool', [
    'create',
    `${sys}/conf.db`,
    '/usr/share/openvswitch/vswitch.ovsschema',
  ])
  execFileSync('ovsdb-server', [
    `--remote=punix:${sys}/db.sock`,
    `--pidfile=${sys}/ovsdb-server.pid`,
    '--detach',
    `${sys}/conf.db`,
  ])
  execFileSync('ovs-vsctl', [`--db=unix:${sys}/db.sock`, '--no-wait', 'init'])
  try {
    assert.equal(nsdn(['netns', 'add', 'o1']).status, 0)
    counts.faults++
    const r = net('attach', 'o1', conf({ bridge: 'br-fb' }))
    assert.equal(r.status, 69, r.stderr)
    assert.match(
      r.stderr,
      /the private Open vSwitch in \/run\/nsdn\/ovs is not running \[E_UNAVAILABLE\]/,
    )
    assert.match(r.stderr, /hint: .*nsdn ovs start/)
    const bridges = execFileSync('ovs-vsctl', [`--db=unix:${sys}/db.sock`, 'list-br'], {
      encoding: 'utf8',
    })
    assert.equal(bridges, '', 'nothing written to the default database')
    assert.deepEqual(strayLinks(), [])
    assert.deepEqual(leases(dataDir, 'ovsf'), [])
  } finally {
    const pid = Number(fs.readFileSync(`${sys}/ovsdb-server.pid`, 'utf8'))
    process.kill(pid, 'SIGTERM')
    await eventually(() => !fs.existsSync(`${sys}/ovsdb-server.pid`))
    fs.rmSync(sys, { recursive: true, force: true })
  }
})

test('a crash of both daemons: ovs start keeps the database and the ports work again', async () => {
  await ovsStart()
  assert.equal(nsdn(['netns', 'add', 'o2']).status, 0)
  const a = JSON.parse(
    nsdn(['--json', 'net', 'attach', 'o1', '--driver', 'ovs', '--conf', conf()]).stdout,
  )
  const b = JSON.parse(
    nsdn(['--json', 'net', 'attach', 'o2', '--driver', 'ovs', '--conf', conf()]).stdout,
  )
  const ipB = String(b.ips[0].address).split('/')[0] ?? ''
  assert.ok(pingSoon(ipB, 'o1'))
  await crash('ovs-vswitchd')
  await crash('ovsdb-server')
  await ovsStart()
  assert.deepEqual(portNames().sort(), [BR, port('o1'), port('o2')].sort(), 'ports are kept')
  assert.ok(pingSoon(ipB, 'o1'), 'o1 -> o2 again after the restart')
  for (const ns of ['o1', 'o2']) assert.equal(net('check', ns).status, 0)
  assert.ok(a.ips[0].address)
})

test('ovs-vswitchd dead: check says so, attach leaves no Port, detach frees veth, lease, result', async () => {
  await crash('ovs-vswitchd')
  const c = net('check', 'o1')
  assert.equal(c.status, 1, c.stderr)
  assert.match(c.stderr, /ovs-vswitchd is not running: the switch is down/)
  assert.equal(nsdn(['netns', 'add', 'o3']).status, 0)
  counts.inputs++
  const a = net('attach', 'o3')
  assert.equal(a.status, 69, a.stderr)
  assert.match(a.stderr, /the switch is down.*\[E_UNAVAILABLE\]/)
  assert.ok(!portNames().includes(port('o3')), 'no Port row')
  assert.ok(!strayLinks().includes(port('o3')), 'no veth')
  // The database still answers: detach removes the Port row without waiting for the switch.
  const d = net('detach', 'o2')
  assert.equal(d.status, 0, d.stderr)
  assert.ok(!portNames().includes(port('o2')))
  assert.ok(!strayLinks().includes(port('o2')))
  // Both daemons dead: detach frees what it can and names the port it could not remove.
  await crash('ovsdb-server')
  const e = net('detach', 'o1')
  assert.equal(e.status, 69, e.stderr)
  assert.match(e.stderr, new RegExp(`freed veth "${port('o1')}" and the leases, but not OVS port`))
  assert.ok(!strayLinks().includes(port('o1')), 'veth freed')
  assert.deepEqual(leases(dataDir, 'ovsf'), [], 'leases freed')
  assert.deepEqual(filesUnder('/run/nsdn/results'), [], 'results freed')
  await ovsStart()
  assert.equal(net('detach', 'o1').status, 0)
  assert.deepEqual(rows('Bridge'), [], 'the bridge nsdn made went with its last port')
})

test('datapath "system" without the module, a bridge named like a device: refused, nothing left', async () => {
  const cases: [string, string, number, RegExp][] = [
    [
      'system datapath',
      conf({ datapathType: 'system' }),
      69,
      /lacks the Open vSwitch kernel datapath \(CONFIG_OPENVSWITCH\)/,
    ],
    ['bridge named o3x', conf({ bridge: 'o3x' }), 1, /a network device named "o3x" exists already/],
  ]
  execFileSync('ip', ['link', 'add', 'o3x', 'type', 'veth', 'peer', 'name', 'o3y'])
  for (const [what, c, status, msg] of cases) {
    counts.inputs++
    const r = net('attach', 'o3', c)
    assert.equal(r.status, status, `${what}: ${r.stderr}`)
    assert.match(r.stderr, msg)
    assert.deepEqual(rows('Bridge'), [], what)
    assert.deepEqual(strayLinks().sort(), ['o3x', 'o3y'], what)
  }
  execFileSync('ip', ['link', 'del', 'o3x'])
})

test('check reports an interface error column', async () => {
  assert.equal(net('attach', 'o3').status, 0)
  // A change behind nsdn's back that ovs-vswitchd cannot apply: it fills the error column.
  vsctl('set', 'Interface', port('o3'), 'type=internal')
  const r = net('check', 'o3')
  assert.equal(r.status, 1, r.stderr)
  assert.match(
    r.stderr,
    new RegExp(`OVS interface "${port('o3')}": could not (open|add) network device`),
  )
  assert.equal(net('detach', 'o3').status, 0)
  assert.deepEqual(rows('Bridge'), [])
})

test('attach and detach race on one bridge: every success leaves a working port', async (t) => {
  const ctxs: (AttachContext & { netns: NonNullable<AttachContext['netns']> })[] = []
  const c = driver.parseConf({
    name: 'race',
    bridge: 'ovs-race',
    ipam: { type: 'host-local', subnet: '10.61.0.0/24', dataDir },
  })
  for (const n of ['r1', 'r2']) ctxs.push(container(n))
  t.after(() => ctxs.forEach(dropContainer))
  const [a, b] = ctxs as [(typeof ctxs)[0], (typeof ctxs)[0]]
  let ok = 0
  for (let round = 0; round < 30; round++) {
    counts.faults++
    await driver.add(c, a)
    // a's del removes the bridge it was the last port of, while b's add wants that bridge.
    const [, added] = await Promise.allSettled([driver.del(c, a), driver.add(c, b)])
    assert.equal(
      added.status,
      'fulfilled',
      `round ${round}: ${added.status === 'rejected' ? added.reason : ''}`,
    )
    ok++
    const bridge = spawnSync(
      'ovs-vsctl',
      [`--db=unix:/run/nsdn/ovs/db.sock`, 'port-to-br', port('r2')],
      {
        encoding: 'utf8',
      },
    )
    assert.equal(bridge.stdout.trim(), 'ovs-race', `round ${round}: b's port is on the bridge`)
    await driver.check(c, { ...b, prevResult: added.status === 'fulfilled' ? added.value : {} })
    await driver.del(c, b)
  }
  t.diagnostic(`${ok} of 30 concurrent attaches succeeded with a working port`)
  assert.deepEqual(rows('Bridge'), [])
  assert.deepEqual(leases(dataDir, 'race'), [])
  assert.ok(path.isAbsolute(dataDir))
})

test('the race across processes: concurrent CLI attach and detach on one bridge', async () => {
  for (const n of ['p1', 'p2']) assert.equal(nsdn(['netns', 'add', n]).status, 0)
  const c = conf({ name: 'ovsp', bridge: 'ovs-p' })
  for (let round = 0; round < 6; round++) {
    counts.faults++
    assert.equal(net('attach', 'p1', c).status, 0)
    const [d, a] = await Promise.all([
      ended(nsdnChild(['net', 'detach', 'p1', '--driver', 'ovs', '--conf', c])),
      ended(nsdnChild(['net', 'attach', 'p2', '--driver', 'ovs', '--conf', c])),
    ])
    assert.equal(d.status, 0, d.stderr)
    assert.equal(a.status, 0, `round ${round}: ${a.stderr}`)
    assert.equal(vsctl('port-to-br', port('p2')).trim(), 'ovs-p', `round ${round}`)
    const k = net('check', 'p2', c)
    assert.equal(k.status, 0, k.stderr)
    assert.equal(net('detach', 'p2', c).status, 0)
  }
  assert.deepEqual(rows('Bridge'), [])
})

test('kill -9 at any point of an ovs attach or detach, then detach: nothing left', async () => {
  const c = conf({ name: 'ovsk', bridge: 'ovs-k' })
  for (let i = 0; i < 10; i++) {
    counts.faults++
    const delay = (i * 53) % 500
    const verb = i % 2 ? 'detach' : 'attach'
    if (verb === 'detach') assert.equal(net('attach', 'p1', c).status, 0)
    const child = nsdnChild(['net', verb, 'p1', '--driver', 'ovs', '--conf', c])
    const done = ended(child)
    await new Promise((r) => setTimeout(r, delay))
    child.kill('SIGKILL')
    await done
    const d = net('detach', 'p1', c)
    assert.equal(d.status, 0, d.stderr)
    const left = leaks({
      keepNetns: netnsNames(),
      extra: [
        () => rows('Port').map((r) => `port ${String(r.name)}`),
        () => rows('Bridge').map((r) => `bridge ${String(r.name)}`),
        () => leases(dataDir, 'ovsk').map((l) => `lease ${l}`),
      ],
    })
    assert.deepEqual(left, [], `kill -9 ${delay} ms into ${verb}`)
  }
})
