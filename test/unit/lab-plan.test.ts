/** The plan's device group: a lab's devices in the root namespace share one, its own. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { loadText } from '../../src/lab/load.js'
import { labGroup, plan } from '../../src/lab/plan.js'
import { resolve } from '../../src/lab/resolve.js'

const text = `name: g
nodes:
  host: { kind: root, addresses: { veth0: 10.8.0.1/24 } }
  sw: { kind: bridge }
  a: { addresses: { eth0: 10.8.1.1/24 } }
  b: { addresses: { eth0: 10.8.1.2/24 } }
  c: { addresses: { veth1: 10.8.0.2/24 } }
links:
  - endpoints: ["a:eth0", "sw"]
  - endpoints: ["b:eth0", "sw"]
  - endpoints: ["host:veth0", "c:veth1"]
  - endpoints: ["a:eth1", "b:eth1"]
`

test('labGroup: from the name alone, the same each time, in 0x4e000000-0x4effffff', () => {
  assert.equal(labGroup('g'), labGroup('g'))
  assert.notEqual(labGroup('g'), labGroup('h'))
  for (const n of ['g', 'star', 'a-much-longer-lab-name', 'x1']) {
    const g = labGroup(n)
    assert.ok(Number.isInteger(g) && g >= 0x4e000000 && g <= 0x4effffff, `${n}: ${g}`)
  }
})

test('every device the lab makes in the root namespace is in its group, and recorded so', () => {
  const steps = plan(resolve(loadText(text, 'g.yaml')), { ovsRunning: true, datapath: 'netdev' })
  const g = labGroup('g')
  const adds = steps.filter((s) => s.op.kind === 'link.add' || s.op.kind === 'link.add.veth')
  const rootAdds = adds.filter((s) => !('ns' in s.op && s.op.ns))
  // the bridge, its two ports, and the root end of host:veth0 <-> c:veth1
  assert.equal(rootAdds.length, 4)
  for (const s of rootAdds) {
    assert.equal('group' in s.op && s.op.group, g, JSON.stringify(s.op))
    assert.ok(s.creates && 'link' in s.creates && s.creates.group === g, JSON.stringify(s))
  }
  // a veth made inside a namespace (a:eth1 <-> b:eth1) is not the root namespace's
  const inNs = adds.filter((s) => 'ns' in s.op && s.op.ns)
  assert.equal(inNs.length, 1)
  assert.ok(inNs.every((s) => !('group' in s.op) && !s.creates))
})
