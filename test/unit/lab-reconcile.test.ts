/** Reconcile's decisions, from two versions of a lab file: what goes, what comes, what stays. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { loadText } from '../../src/lab/load.js'
import { labGroup, plan } from '../../src/lab/plan.js'
import { reconcile } from '../../src/lab/reconcile.js'
import { resolve } from '../../src/lab/resolve.js'
import { formatOp } from '../../src/teach/commands.js'

const planOf = (text: string): ReturnType<typeof plan> =>
  plan(resolve(loadText(text, 'r.yaml')), { ovsRunning: true, datapath: 'netdev' })

const lab = (
  o: { bAddr?: string; sw?: string; rate?: string; c?: boolean } = {},
): string => `name: r
nodes:
  sw: { kind: ${o.sw ?? 'bridge'} }
  a: { addresses: { eth0: 10.3.0.1/24 } }
  b: { addresses: { eth0: ${o.bAddr ?? '10.3.0.2/24'} } }
${o.c ? '  c: { addresses: { eth0: 10.3.0.3/24 } }\n' : ''}links:
  - endpoints: ["a:eth0", "sw"]
  - { endpoints: ["b:eth0", "sw"]${o.rate ? `, rate: ${o.rate}` : ''} }
${o.c ? '  - endpoints: ["c:eth0", "sw"]\n' : ''}`

const cmds = (r: ReturnType<typeof reconcile>): { remove: string[]; run: string[] } => ({
  remove: r.remove.map((x) => formatOp(x.op)),
  run: r.steps.map((s) => formatOp(s.op)),
})

test('an unchanged plan changes nothing', () => {
  const r = reconcile(planOf(lab()), planOf(lab()))
  assert.deepEqual(cmds(r), { remove: [], run: [] })
  assert.deepEqual(r.changed, [])
})

test('a changed address is deleted and added on its link, nothing else', () => {
  const r = reconcile(planOf(lab()), planOf(lab({ bAddr: '10.3.0.9/24' })))
  assert.deepEqual(cmds(r), {
    remove: ['ip -n r-b addr del 10.3.0.2/24 dev eth0'],
    run: ['ip -n r-b addr add 10.3.0.9/24 dev eth0'],
  })
})

test('a rate limit changes in place, on both ends: the old qdiscs go, the new ones come', () => {
  const r = reconcile(planOf(lab({ rate: '10mbit' })), planOf(lab({ rate: '5mbit' })))
  assert.deepEqual(cmds(r).remove, [
    'tc qdisc del dev r-b-eth0 root',
    'tc -n r-b qdisc del dev eth0 root',
  ])
  assert.deepEqual(
    cmds(r).run.map((l) => l.replace(/ burst .*/, '')),
    [
      'tc qdisc add dev r-b-eth0 root tbf rate 5mbit',
      'tc -n r-b qdisc add dev eth0 root tbf rate 5mbit',
    ],
  )
})

test('a node removed takes its namespace and its link; one added is built whole', () => {
  const gone = cmds(reconcile(planOf(lab({ c: true })), planOf(lab())))
  assert.deepEqual(gone.run, [])
  assert.equal(gone.remove.length, 2)
  assert.match(gone.remove[0]!, /^ip link del \S+$/)
  assert.equal(gone.remove[1], 'ip netns del r-c')
  const added = cmds(reconcile(planOf(lab()), planOf(lab({ c: true }))))
  assert.deepEqual(added.remove, [])
  assert.equal(added.run[0], 'ip netns add r-c')
  assert.ok(
    added.run.some((l) =>
      /^ip link add \S+ group \d+ numtxqueues 1 numrxqueues 1 master r-sw up type veth peer/.test(
        l,
      ),
    ),
  )
  assert.ok(added.run.includes('ip -n r-c addr add 10.3.0.3/24 dev eth0'))
})

test('a switch whose kind changed is replaced with its ports; the nodes keep their namespaces', () => {
  const r = reconcile(planOf(lab()), planOf(lab({ sw: 'ovs' })))
  const c = cmds(r)
  assert.ok(!c.remove.some((l) => l.startsWith('ip netns del')), 'no namespace goes')
  assert.ok(!c.run.some((l) => l.startsWith('ip netns add')), 'no namespace comes')
  assert.ok(c.remove.includes('ip link del r-sw'), 'the Linux bridge goes')
  assert.ok(
    c.run.some((l) => /^ovs-vsctl (.* )?add-br r-sw /.test(l)),
    'an OVS bridge comes',
  )
  assert.deepEqual(r.changed, ['link:a:eth0|sw:r-a-eth0', 'link:b:eth0|sw:r-b-eth0', 'switch:sw'])
})

test('linkLocal turned off replaces the node links (the mode counts at the next up only)', () => {
  const before = lab()
  const after = before.replace('a: { addresses', 'a: { linkLocal: false, addresses')
  const r = cmds(reconcile(planOf(before), planOf(after)))
  assert.deepEqual(r.remove, ['ip link del r-a-eth0'])
  assert.deepEqual(
    r.run.filter((c) => / (addrgenmode none|up)$/.test(c)),
    ['ip -n r-a link set eth0 addrgenmode none', 'ip -n r-a link set eth0 up'],
  )
})

test('mcastSnooping turned off replaces the bridge', () => {
  const r = cmds(reconcile(planOf(lab()), planOf(lab({ sw: 'bridge, mcastSnooping: false' }))))
  assert.ok(
    r.run.includes(`ip link add r-sw group ${labGroup('r')} up type bridge mcast_snooping 0`),
    r.run.join('\n'),
  )
  assert.ok(r.remove.includes('ip link del r-sw'), r.remove.join('\n'))
})

test('plan: linkLocal false sets addrgenmode none before the up, which waits for it', () => {
  const steps = planOf(lab().replace('nodes:', 'defaults: { linkLocal: false }\nnodes:'))
  const mode = steps.find((s) => formatOp(s.op) === 'ip -n r-a link set eth0 addrgenmode none')!
  const up = steps.find((s) => formatOp(s.op) === 'ip -n r-a link set eth0 up')!
  assert.ok(mode && up)
  assert.deepEqual(up.deps, [mode.id])
  // the switch side of the pair is made up at once, as before: a port has no address
  assert.ok(steps.some((s) => / master r-sw up type veth /.test(formatOp(s.op))))
})
