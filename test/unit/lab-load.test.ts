/**
 * Bad lab files: each refusal the loader and the resolver make, with file, line, column, field
 * path and a hint; and a property test: random mutations of the scenarios never crash them
 * (only ConfigErrors come out).
 */
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { test } from 'node:test'
import fc from 'fast-check'
import { ConfigError, NsdnError } from '../../src/errors.js'
import { loadText } from '../../src/lab/load.js'
import { resolve } from '../../src/lab/resolve.js'
import { mutate, mutations } from '../helpers/lab-mutate.js'

const SCENARIOS = path.resolve(__dirname, '../../../scenarios')
// No image is imported here: a containerlab linux node is a namespace.
process.env.NSDN_LIB_DIR = `/nonexistent/nsdn-lib-${process.pid}`

const GOOD = `name: t
nodes:
  sw: { kind: ovs }
  h1: { kind: host, addresses: { eth0: 10.0.0.1/24 } }
  h2: { kind: host, addresses: { eth0: 10.0.0.2/24 } }
links:
  - { endpoints: ["h1:eth0", "sw"], vlan: 10 }
  - { endpoints: ["h2:eth0", "sw"], vlan: 10 }
checks:
  - { from: h1, to: h2, expect: reach }
`

const lab = (text: string): ReturnType<typeof resolve> => resolve(loadText(text, 'lab.yaml'))

/** The error a lab text gets; asserts it is a ConfigError. */
function refusal(text: string): ConfigError {
  try {
    lab(text)
  } catch (err) {
    assert.ok(err instanceof ConfigError, `a ConfigError, got ${String(err)}`)
    assert.equal(err.code, 'E_CONFIG')
    assert.ok(err.hint, 'with a hint')
    return err
  }
  assert.fail('the lab was accepted')
}

test('a good lab resolves: namespaced names, VLAN ports, checks to node addresses', () => {
  const l = lab(GOOD)
  assert.deepEqual(
    l.nodes.map((n) => n.ns),
    ['t-h1', 't-h2'],
  )
  assert.equal(l.switches[0]!.dev, 't-sw')
  assert.equal(l.links[0]!.b.dev, 't-h1-eth0')
  assert.equal(l.links[0]!.b.tag, 10)
  assert.equal(l.checks[0]!.addr, '10.0.0.2')
})

test('every scenario file loads and resolves', () => {
  const files = fs.readdirSync(SCENARIOS).filter((f) => f.endsWith('.yaml'))
  assert.ok(files.length >= 8)
  for (const f of files) lab(fs.readFileSync(path.join(SCENARIOS, f), 'utf8'))
})

test('YAML syntax error: file, line and column', () => {
  const e = refusal('name: t\nnodes:\n  h1: { kind: host\n')
  assert.match(e.message, /^lab\.yaml:\d+:\d+: YAML: /)
})

test('schema error: line, column, field path and the allowed values', () => {
  const e = refusal(GOOD.replace('kind: host, addresses: { eth0: 10.0.0.1/24 }', 'kind: hots'))
  assert.match(e.message, /^lab\.yaml:4:\d+ nodes\.h1\.kind: /)
  assert.match(e.hint!, /host, router, root, bridge, ovs, container/)
})

test('unknown field: named, with where it is', () => {
  const e = refusal(GOOD.replace('  - { from: h1', '  - { form: h1, from: h1'))
  assert.match(e.message, /lab\.yaml:10:\d+ checks\[0\]: unknown field "form"/)
})

test('unknown node in a link', () => {
  const e = refusal(GOOD.replace('"h2:eth0", "sw"', '"h3:eth0", "sw"'))
  assert.match(e.message, /lab\.yaml:8:\d+ links\[1\]\.endpoints\[0\]: unknown node "h3"/)
  assert.match(e.hint!, /known nodes: h1, h2, sw/)
})

test('duplicate node names', () => {
  const e = refusal(GOOD.replace('  h2: {', '  h1: {'))
  assert.match(e.message, /lab\.yaml:5:3: YAML: duplicated mapping key/)
})

test('duplicate device names after namespacing (a port named like another)', () => {
  const e = refusal(GOOD.replace('"h2:eth0", "sw"', '"h2:eth0", "sw:h1-eth0"'))
  assert.match(e.message, /used by two links/)
})

test('overlapping subnets on two segments', () => {
  const text = `name: t
nodes:
  h1: { addresses: { a: 10.0.0.1/24, b: 10.0.0.5/16 } }
  h2: { addresses: { a: 10.0.0.2/24 } }
  h3: { addresses: { b: 10.0.1.1/16 } }
links:
  - endpoints: ["h1:a", "h2:a"]
  - endpoints: ["h1:b", "h3:b"]
`
  const e = refusal(text)
  assert.match(e.message, /subnet 10\.0\.0\.0\/16 overlaps 10\.0\.0\.0\/24 of another segment/)
})

test('the same address twice', () => {
  const e = refusal(GOOD.replace('10.0.0.2/24', '10.0.0.1/24'))
  assert.match(e.message, /address 10\.0\.0\.1 is used twice/)
})

test('VLAN ids outside 1-4094', () => {
  for (const v of [0, 4095]) {
    const e = refusal(
      GOOD.replace('vlan: 10 }\n  - { endpoints: ["h2', `vlan: ${v} }\n  - { endpoints: ["h2`),
    )
    assert.match(e.message, /lab\.yaml:7:\d+ links\[0\]\.vlan: must be (>=|<=)/)
  }
})

test('names over 15 bytes after namespacing', () => {
  const e = refusal(GOOD.replace('name: t', 'name: longlabname'))
  assert.match(e.message, /device name "longlabname-h1-eth0" is 19 bytes after namespacing/)
  assert.match(e.hint!, /shorten/)
})

test('an interface used by two links', () => {
  const e = refusal(GOOD.replace('"h2:eth0", "sw"', '"h1:eth0", "sw"'))
  assert.match(e.message, /interface "eth0" of "h1" is used by two links/)
})

test('unknown drivers (node kinds)', () => {
  const e = refusal(GOOD.replace('kind: ovs', 'kind: macvlan'))
  assert.match(e.message, /nodes\.sw\.kind: must be equal to one of the allowed values/)
})

test('container fields on a node that is not a container', () => {
  const e = refusal(GOOD.replace('kind: host, addresses: { eth0: 10.0.0.1/24 }', 'image: alpine'))
  assert.match(e.message, /^lab\.yaml:4:\d+ nodes\.h1\.image: node "h1": image is for container/)
  assert.match(e.hint!, /kind: container/)
})

test('linkLocal is for nodes with interfaces, mcastSnooping for Linux bridges', () => {
  const ll = refusal(GOOD.replace('kind: ovs', 'kind: bridge, linkLocal: false'))
  assert.match(ll.message, /nodes\.sw\.linkLocal: switch "sw": linkLocal is for nodes with/)
  const ovs = refusal(GOOD.replace('kind: ovs', 'kind: ovs, mcastSnooping: false'))
  assert.match(ovs.message, /nodes\.sw\.mcastSnooping: node "sw": mcastSnooping is a Linux bridge/)
  assert.match(ovs.hint!, /Open vSwitch/)
  const host = refusal(
    GOOD.replace('kind: host, addresses: { eth0: 10.0.0.1/24 }', 'mcastSnooping: false'),
  )
  assert.match(host.message, /nodes\.h1\.mcastSnooping: node "h1": mcastSnooping is a Linux bridge/)
})

test('linkLocal and mcastSnooping: a node says, or the defaults, which switches ignore', () => {
  const l = lab(
    GOOD.replace('kind: ovs', 'kind: bridge')
      .replace('nodes:', 'defaults: { linkLocal: false, mcastSnooping: false }\nnodes:')
      .replace('h2: { kind: host,', 'h2: { kind: host, linkLocal: true,'),
  )
  assert.equal(l.switches[0]!.mcastSnooping, false)
  assert.deepEqual(
    l.nodes.map((n) => [n.name, n.linkLocal]),
    [
      ['h1', false],
      ['h2', true],
    ],
  )
  const h1 = l.links[0]!.a.node === 'h1' ? l.links[0]!.a : l.links[0]!.b
  assert.equal(h1.linkLocal, false)
})

test('a VLAN on a link with no switch', () => {
  const text = `name: t
nodes:
  a: { addresses: { e: 10.0.0.1/24 } }
  b: { addresses: { e: 10.0.0.2/24 } }
links:
  - { endpoints: ["a:e", "b:e"], vlan: 5 }
`
  assert.match(refusal(text).message, /vlan and trunks are switch port settings/)
})

test('routes: a gateway of the wrong family, an unknown device, host bits', () => {
  const base = GOOD.replace(
    'kind: host, addresses: { eth0: 10.0.0.1/24 }',
    'kind: host, addresses: { eth0: 10.0.0.1/24 }, routes: [ROUTE]',
  )
  assert.match(
    refusal(base.replace('ROUTE', '{ to: 10.9.0.0/16, via: "fd00::1" }')).message,
    /lab\.yaml:4:\d+ nodes\.h1\.routes\[0\]\.via: gateway fd00::1 is not of the family/,
  )
  assert.match(
    refusal(base.replace('ROUTE', '{ to: 10.9.0.0/16, dev: eth9 }')).message,
    /no interface "eth9"/,
  )
  assert.match(
    refusal(base.replace('ROUTE', '{ to: 10.9.0.1/16, via: 10.0.0.9 }')).message,
    /host bits/,
  )
})

test('NAT in the root namespace only out of interfaces named as uplinks; no root routes', () => {
  const text = `name: t
UPLINKS
nodes:
  me: { kind: root, addresses: { v0: 10.0.0.1/24 }, nat: [eth0] }
  h1: { addresses: { eth0: 10.0.0.2/24 } }
links:
  - endpoints: ["me:v0", "h1:eth0"]
`
  const e = refusal(text.replace('UPLINKS', ''))
  assert.match(
    e.message,
    /lab\.yaml:4:\d+ nodes\.me\.nat\[0\]: root node "me": "eth0" is not an uplink/,
  )
  assert.match(e.hint!, /uplinks: \[eth0\]/)
  const l = lab(text.replace('UPLINKS', 'uplinks: [eth0]'))
  assert.deepEqual(l.subnets, ['10.0.0.0/24'])
  const r = refusal(
    text
      .replace('UPLINKS', 'uplinks: [eth0]')
      .replace('nat: [eth0]', 'routes: [{ to: default, via: 10.0.0.2 }]'),
  )
  assert.match(r.message, /routes would change the host's own routing/)
})

test('a check from an unknown node, or to a switch', () => {
  assert.match(refusal(GOOD.replace('{ from: h1', '{ from: h9')).message, /unknown node "h9"/)
  assert.match(refusal(GOOD.replace('to: h2', 'to: sw')).message, /is a switch/)
})

test('property: random mutations of the scenarios never crash the loader', () => {
  const texts = fs
    .readdirSync(SCENARIOS)
    .filter((f) => f.endsWith('.yaml'))
    .map((f) => fs.readFileSync(path.join(SCENARIOS, f), 'utf8'))
  fc.assert(
    fc.property(fc.nat(texts.length - 1), mutations, (i, muts) => {
      const text = mutate(texts[i]!, muts)
      try {
        lab(text)
      } catch (err) {
        // A refusal is fine; anything else (TypeError, RangeError) is a crash.
        if (!(err instanceof NsdnError) || err.code === 'E_INTERNAL') throw err
      }
    }),
    { numRuns: 600 },
  )
})

const CLAB = `name: My_Lab
mgmt: { network: clab }
topology:
  kinds:
    linux: { image: alpine:3, binds: [/a:/b] }
  nodes:
    h1: { kind: linux }
    br1: { kind: bridge }
    sw: { kind: ovs-bridge }
  links:
    - endpoints: ["h1:eth1", "br1:p1"]
    - endpoints: ["h1:eth2", "sw:p2"]
    - endpoints: ["h1:eth3", "host:v3"]
`

test('containerlab: linux, bridge, ovs-bridge and host endpoints become a lab; what is left out is named', () => {
  const l = lab(CLAB)
  assert.equal(l.name, 'mylab')
  assert.deepEqual(
    l.nodes.map((n) => `${n.name}:${n.kind}`),
    ['h1:host', 'host:root'],
  )
  assert.deepEqual(
    l.switches.map((s) => `${s.name}:${s.kind}`),
    ['br1:bridge', 'sw:ovs'],
  )
  assert.deepEqual(
    l.links.map((k) => [k.a.dev, k.b.dev]),
    [
      ['eth1', 'mylab-p1'],
      ['eth2', 'mylab-p2'],
      ['eth3', 'mylab-v3'],
    ],
  )
  assert.ok(l.notes.some((n) => /lab name "My_Lab" is "mylab"/.test(n)))
  assert.ok(l.notes.some((n) => /mgmt: no management network/.test(n)))
  assert.ok(
    l.notes.some((n) => /node "h1": image "alpine:3" not imported: became a namespace/.test(n)),
  )
  assert.ok(l.notes.some((n) => /"binds": ignored/.test(n)))
})

test('containerlab: other kinds and link types are refused, naming what is supported', () => {
  const e = refusal(CLAB.replace('sw: { kind: ovs-bridge }', 'sw: { kind: nokia_srlinux }'))
  assert.match(
    e.message,
    /topology\.nodes\.sw\.kind: node "sw": kind "nokia_srlinux" is not supported/,
  )
  assert.match(e.hint!, /linux, bridge, ovs-bridge/)
  const m = refusal(CLAB.replace('"h1:eth3", "host:v3"', '"h1:eth3", "macvlan:enp0s3"'))
  assert.match(m.message, /endpoint "macvlan:enp0s3" is not supported/)
})

test('containerlab: errors point into the containerlab file', () => {
  const e = refusal(CLAB.replace('"h1:eth2", "sw:p2"', '"h9:eth2", "sw:p2"'))
  assert.match(
    e.message,
    /^lab\.yaml:12:\d+ topology\.links\[1\]\.endpoints\[0\]: unknown node "h9"/,
  )
})
