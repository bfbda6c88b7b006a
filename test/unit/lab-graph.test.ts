/** The lab pictures: dot and mermaid name every node and link; the SVG is drawn without overlaps. */
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { test } from 'node:test'
import { toDot, toMermaid, toSvg } from '../../src/lab/graph.js'
import { loadFile } from '../../src/lab/load.js'
import { resolve } from '../../src/lab/resolve.js'

const SCENARIOS = path.resolve(__dirname, '../../../scenarios')
const labs = fs
  .readdirSync(SCENARIOS)
  .filter((f) => /^0\d-.*\.yaml$/.test(f))
  .map((f) => resolve(loadFile(path.join(SCENARIOS, f))))

test('dot and mermaid: every node, every link, VLAN labels', () => {
  for (const l of labs) {
    const dot = toDot(l)
    const mer = toMermaid(l)
    assert.match(dot, /^graph "/)
    assert.match(mer, /^graph TD\n/)
    for (const n of [...l.nodes, ...l.switches]) {
      assert.ok(dot.includes(`"${n.name}" [label=`), `${l.name}: dot node ${n.name}`)
      assert.match(mer, new RegExp(`^  ${n.name.replace(/-/g, '_')}[[({]`, 'm'))
    }
    assert.equal(dot.split(' -- ').length - 1, l.links.length)
    assert.equal(mer.split(' ---').length - 1, l.links.length)
  }
  assert.match(
    toDot(labs.find((l) => l.name === 'vlan')!),
    /label="eth1 192\.168\.0\.1\/24 \/ vlan 100"/,
  )
})

test('svg: one box per node, a line per link, no two boxes overlap, text escaped', () => {
  for (const l of labs) {
    const svg = toSvg(l)
    assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/)
    assert.match(svg, /<\/svg>\n$/)
    const boxes = [
      ...svg.matchAll(/<rect x="([\d.]+)" y="([\d.]+)" width="(\d+)" height="(\d+)"/g),
    ].map((m) => m.slice(1).map(Number))
    assert.equal(boxes.length, l.nodes.length + l.switches.length)
    assert.equal((svg.match(/<line /g) ?? []).length, l.links.length)
    for (const [i, a] of boxes.entries())
      for (const b of boxes.slice(i + 1)) {
        const apart =
          a[0]! + a[2]! <= b[0]! ||
          b[0]! + b[2]! <= a[0]! ||
          a[1]! + a[3]! <= b[1]! ||
          b[1]! + b[3]! <= a[1]!
        assert.ok(apart, `${l.name}: boxes overlap`)
      }
    assert.doesNotMatch(svg.replace(/<[^>]*>/g, ''), /[<>]/)
  }
})
