/**
 * Re-deploying a changed lab file reconciles it object by object: what is gone is removed,
 * what is new is created, addresses, routes and rate limits change in place, a switch whose
 * kind changed is replaced alone, and unchanged nodes and links are not touched (same
 * namespace, same interface, traffic between them uninterrupted). The result is the state a
 * fresh deploy of the new file builds, and the journal names exactly its objects.
 */
import { sandboxThisFile } from '../helpers/sandbox.js'
sandboxThisFile()

import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { after, test } from 'node:test'
import { listLabs, labsDir } from '../../src/lab/state.js'
import { Rtnl } from '../../src/netlink/rtnl.js'
import { ovsStop } from '../../src/ovs/daemon.js'
import { nsdn, ok } from '../helpers/cli.js'
import { eventually, ipLinks, netnsNames, ping } from '../helpers/kernel.js'
import { assertNoLab, labFiles } from '../helpers/lab.js'
import { diffStates, explainScript, runPasted, snapshot } from '../helpers/paste.js'

const { write } = labFiles()

const inode = (ns: string): number => fs.statSync(`/run/netns/${ns}`).ino
const ifindex = (name: string): number | undefined =>
  ipLinks().find((l) => l.ifname === name)?.ifindex
const journal = (name: string): string[] =>
  fs
    .readFileSync(path.join(labsDir(), name, 'journal'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .sort()
/** The switch port of node's eth0 (the root end of its veth). */
const port = (node: string): string => {
  const p = ipLinks().find((l) => l.ifname.startsWith('rec-') && l.ifname.includes(node))
  assert.ok(p, `a port for ${node}`)
  return p.ifname
}

const V1 = `name: rec
nodes:
  sw: { kind: bridge }
  h1: { addresses: { eth0: 10.9.0.1/24 }, routes: [{ to: 10.8.0.0/24, via: 10.9.0.254 }] }
  h2: { addresses: { eth0: 10.9.0.2/24 } }
  h3: { addresses: { eth0: 10.9.0.3/24 } }
  h5: { addresses: { eth0: 10.9.0.5/24 } }
  r1: { kind: router, addresses: { eth0: 10.9.0.254/24, eth1: 10.8.0.1/24 } }
  h4: { addresses: { eth0: 10.8.0.2/24 }, routes: [{ to: default, via: 10.8.0.1 }] }
links:
  - endpoints: ["h1:eth0", "sw"]
  - endpoints: ["h2:eth0", "sw"]
  - endpoints: ["h3:eth0", "sw"]
  - endpoints: ["h5:eth0", "sw"]
  - endpoints: ["r1:eth0", "sw"]
  - { endpoints: ["r1:eth1", "h4:eth0"], rate: 20mbit }
checks:
  - { from: h1, to: h4, expect: reach }
`

// h3's address changes, h5 goes and h6 comes, the rate limit changes, h4 routes differently,
// and a new link joins h3 and h4; h1, h2, the switch and their links stay as they are.
const V2 = `name: rec
nodes:
  sw: { kind: bridge }
  h1: { addresses: { eth0: 10.9.0.1/24 }, routes: [{ to: 10.8.0.0/24, via: 10.9.0.254 }] }
  h2: { addresses: { eth0: 10.9.0.2/24 } }
  h3: { addresses: { eth0: 10.9.0.13/24, eth1: 10.7.0.1/30 } }
  h6: { addresses: { eth0: 10.9.0.6/24 } }
  r1: { kind: router, addresses: { eth0: 10.9.0.254/24, eth1: 10.8.0.1/24 } }
  h4: { addresses: { eth0: 10.8.0.2/24, eth1: 10.7.0.2/30 }, routes: [{ to: 10.9.0.0/24, via: 10.8.0.1 }] }
links:
  - endpoints: ["h1:eth0", "sw"]
  - endpoints: ["h2:eth0", "sw"]
  - endpoints: ["h3:eth0", "sw"]
  - endpoints: ["h6:eth0", "sw"]
  - endpoints: ["r1:eth0", "sw"]
  - { endpoints: ["r1:eth1", "h4:eth0"], rate: 5mbit }
  - endpoints: ["h3:eth1", "h4:eth1"]
checks:
  - { from: h1, to: h4, expect: reach }
  - { from: h3, to: 10.7.0.2, expect: reach }
  - { from: h4, to: h1, expect: reach }
`

test('a changed lab is reconciled in place: unchanged nodes untouched, the result a fresh deploy', async () => {
  const f = write('rec.yaml', V1)
  assert.match(ok(['lab', 'deploy', f]).stdout, /created, ready/)
  const before = { h1: inode('rec-h1'), h2: inode('rec-h2'), h3: inode('rec-h3') }
  const ports = { h1: port('h1'), h2: port('h2') }
  const idx = { h1: ifindex(ports.h1), h2: ifindex(ports.h2), sw: ifindex('rec-sw') }
  // traffic between two unchanged nodes, all through the reconcile
  const pinger = spawn('ip', ['netns', 'exec', 'rec-h1', 'ping', '-i', '0.05', '10.9.0.2'], {
    stdio: ['ignore', 'pipe', 'ignore'],
  })
  let out = ''
  pinger.stdout.on('data', (d: Buffer) => (out += d.toString()))
  assert.ok(await eventually(() => /bytes from/.test(out)), 'the ping runs before the change')

  fs.writeFileSync(f, V2)
  assert.match(ok(['lab', 'deploy', f]).stdout, /reconciled, ready/)
  // 'close', not 'exit': the summary ping prints on SIGINT may still be in the pipe at exit
  const exited = new Promise((r) => pinger.once('close', r))
  pinger.kill('SIGINT')
  await exited
  const m = /(\d+) packets transmitted, (\d+) received/.exec(out)
  assert.ok(m, `ping summary: ${out.slice(-300)}`)
  assert.equal(m[2], m[1], `no ping lost between unchanged nodes: ${m[0]}`)

  assert.equal(inode('rec-h1'), before.h1, "h1's namespace is the same one")
  assert.equal(inode('rec-h2'), before.h2, "h2's namespace is the same one")
  assert.equal(inode('rec-h3'), before.h3, "h3's namespace stays: only its address changed")
  assert.equal(ifindex(ports.h1), idx.h1, "h1's link is the same one")
  assert.equal(ifindex(ports.h2), idx.h2, "h2's link is the same one")
  assert.equal(ifindex('rec-sw'), idx.sw, 'the switch is the same one')
  assert.deepEqual(netnsNames(), ['rec-h1', 'rec-h2', 'rec-h3', 'rec-h4', 'rec-h6', 'rec-r1'])
  assert.ok(ping('10.9.0.2', 'rec-h1'), 'h1 still reaches h2')
  assert.match(ok(['lab', 'verify', 'rec']).stdout, /all 3 checks passed/)
  assert.match(ok(['lab', 'deploy', f]).stdout, /unchanged, nothing to do/)

  // the same state, and the same record, as a fresh deploy of the new file
  const reconciled = snapshot()
  const recorded = journal('rec')
  ok(['lab', 'destroy', 'rec'])
  await assertNoLab('reconciled lab destroyed')
  assert.match(ok(['lab', 'deploy', f]).stdout, /created, ready/)
  assert.deepEqual(diffStates(snapshot(), reconciled), [])
  assert.deepEqual(journal('rec'), recorded)
  ok(['lab', 'destroy', 'rec'])
  await assertNoLab('fresh lab destroyed')
})

test('a switch whose kind changed is replaced alone: its nodes keep their namespaces', async (t) => {
  if (!fs.existsSync('/usr/sbin/ovs-vswitchd'))
    return t.skip('Open vSwitch is not installed (apt-get install openvswitch-switch)')
  const lab = (kind: string): string => `name: sw
nodes:
  s1: { kind: bridge }
  s2: { kind: ${kind} }
  a: { addresses: { eth0: 10.4.0.1/24 } }
  b: { addresses: { eth0: 10.4.0.2/24 } }
  c: { addresses: { eth0: 10.4.1.1/24 } }
  d: { addresses: { eth0: 10.4.1.2/24 } }
links:
  - endpoints: ["a:eth0", "s1"]
  - endpoints: ["b:eth0", "s1"]
  - endpoints: ["c:eth0", "s2"]
  - endpoints: ["d:eth0", "s2"]
checks:
  - { from: a, to: b, expect: reach }
  - { from: c, to: d, expect: reach }
`
  const f = write('sw.yaml', lab('bridge'))
  ok(['lab', 'deploy', f])
  const ns = Object.fromEntries(['a', 'b', 'c', 'd'].map((n) => [n, inode(`sw-${n}`)]))
  const s1 = ifindex('sw-s1')
  fs.writeFileSync(f, lab('ovs'))
  assert.match(ok(['lab', 'deploy', f]).stdout, /reconciled, ready/)
  for (const n of ['a', 'b', 'c', 'd']) assert.equal(inode(`sw-${n}`), ns[n], `${n}'s namespace`)
  assert.equal(ifindex('sw-s1'), s1, 'the unchanged bridge stays')
  const s2 = ipLinks().find((l) => l.ifname === 'sw-s2')
  // (OVS's userspace datapath has a tap device of the bridge's name)
  assert.notEqual(s2?.linkinfo?.info_kind, 'bridge', 'the Linux bridge s2 is gone')
  const ports = ipLinks()
    .filter((l) => l.master === 'sw-s1')
    .map((l) => l.ifname)
  assert.equal(ports.length, 2, `s1 keeps its two ports: ${ports}`)
  assert.match(ok(['lab', 'verify', 'sw']).stdout, /all 2 checks passed/)
  // and back: the private OVS goes with the last OVS switch
  fs.writeFileSync(f, lab('bridge'))
  assert.match(ok(['lab', 'deploy', f]).stdout, /reconciled, ready/)
  assert.equal(fs.existsSync('/run/nsdn/ovs/db.sock'), false, 'no OVS left running')
  assert.match(ok(['lab', 'verify', 'sw']).stdout, /all 2 checks passed/)
  ok(['lab', 'destroy', 'sw'])
  await assertNoLab('switch kinds')
})

// V1 -> V2 again, and a rate limit lifted (h2's link loses its own): the reconcile's --explain
// lines, pasted over V1 built by its pasted `lab explain`, build what a fresh deploy of V2 does.
const PASTE_A = V1.replace('name: rec', 'name: rp').replace(
  '- endpoints: ["h2:eth0", "sw"]',
  '- { endpoints: ["h2:eth0", "sw"], rate: 10mbit }',
)
const PASTE_B = V2.replace('name: rec', 'name: rp')

test('the --explain lines of a reconcile, pasted over the old lab, build the new one', async () => {
  const a = write('rp-a.yaml', PASTE_A)
  const b = write('rp-b.yaml', PASTE_B)
  ok(['lab', 'deploy', a])
  const r = ok(['--explain', 'lab', 'deploy', b])
  assert.match(r.stdout, /reconciled, ready/)
  const script = explainScript(r.stderr)
  // every kind of change is in it: a route, an address, rate limits, a node gone, a link new
  for (const line of [
    /^ip -n rp-h4 route del default via 10\.8\.0\.1$/m,
    /^ip -n rp-h4 route add 10\.9\.0\.0\/24 via 10\.8\.0\.1$/m,
    /^ip -n rp-h3 addr del 10\.9\.0\.3\/24 dev eth0$/m,
    /^ip -n rp-h3 addr add 10\.9\.0\.13\/24 dev eth0$/m,
    /^tc -n rp-h2 qdisc del dev eth0 root$/m,
    /^tc -n rp-r1 qdisc del dev eth1 root$/m,
    /^tc -n rp-r1 qdisc add dev eth1 root tbf rate 5mbit /m,
    /^ip netns del rp-h5$/m,
    /^ip -n rp-h3 link add eth1 numtxqueues 1 numrxqueues 1 type veth peer name eth1 numtxqueues 1 numrxqueues 1 netns rp-h4$/m,
  ])
    assert.match(script, line)
  const reconciled = snapshot()
  ok(['lab', 'destroy', 'rp'])
  await assertNoLab('reconciled lab destroyed')

  ok(['lab', 'deploy', b])
  const fresh = snapshot()
  assert.deepEqual(diffStates(reconciled, fresh), [], 'nsdn reconciled = fresh deploy')
  ok(['lab', 'destroy', 'rp'])
  await assertNoLab('fresh lab destroyed')

  runPasted(ok(['lab', 'explain', a]).stdout)
  try {
    runPasted(script)
    assert.deepEqual(diffStates(snapshot(), fresh), [], `pasted:\n${script}`)
    // and it carries traffic: through the router, and over the new link
    assert.ok(ping('10.8.0.2', 'rp-h1'), 'h1 -> h4 through r1')
    assert.ok(ping('10.7.0.2', 'rp-h3'), 'h3 -> h4 over the new link')
  } finally {
    for (const n of netnsNames()) spawnSync('ip', ['netns', 'del', n])
    spawnSync('ip', ['link', 'del', 'rp-sw'])
  }
  await assertNoLab('pasted lab removed')
})

after(async () => {
  Rtnl.closeAll()
  await ovsStop()
  for (const n of listLabs()) nsdn(['lab', 'destroy', n])
})
