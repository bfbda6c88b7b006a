/**
 * The static side of the live view: a deployed lab's topology as its record says (the file as
 * deployed, resolved again), in the shape the page draws.
 * @module
 */
import { loadText } from '../lab/load.js'
import { type Check, type End, type Lab, resolve } from '../lab/resolve.js'
import { mustReadLab } from '../lab/state.js'
import { tcRate } from '../teach/commands.js'
import type { LiveTopo } from './live.js'

/** The deployed lab called name, resolved from its record; E_NOT_FOUND when there is none. */
export function recordedLab(name: string): Lab {
  const rec = mustReadLab(name)
  return resolve(loadText(rec.text, rec.meta.file))
}

/** The id of the i-th link of the file, as the page and setLinkRate name it. */
export const linkId = (index: number): string => `link${index}`

/** What a check asks, without its result: "h1 -> h2 (10.0.0.2): reach". */
export function checkText(c: Check): string {
  const to = c.to === c.addr ? c.addr : `${c.to} (${c.addr})`
  const bounds = [
    c.min !== undefined ? `>= ${tcRate(c.min)}` : '',
    c.max !== undefined ? `<= ${tcRate(c.max)}` : '',
  ].filter(Boolean)
  return `${c.from.name} -> ${to}: ${c.expect}${bounds.length ? ` ${bounds.join(' ')}` : ''}`
}

function end(e: End): LiveTopo['links'][number]['a'] {
  return {
    node: e.node,
    ns: e.ns ?? '',
    ifname: e.dev,
    ...(e.tag !== undefined ? { vlan: e.tag } : {}),
    ...(e.trunks ? { trunks: e.trunks } : {}),
  }
}

/** The page's topology of a resolved lab. Pure. */
export function topoOf(lab: Lab): LiveTopo {
  return {
    name: lab.name,
    nodes: lab.nodes.map((n) => ({ name: n.name, kind: n.kind, ns: n.ns ?? '' })),
    switches: lab.switches.map((s) => ({ name: s.name, kind: s.kind, ns: '', dev: s.dev })),
    links: lab.links.map((k) => {
      const rate = k.a.rate ?? k.b.rate
      return {
        id: linkId(k.index),
        a: end(k.a),
        b: end(k.b),
        ...(rate !== undefined ? { rate: tcRate(rate) } : {}),
      }
    }),
    checks: lab.checks.map((c, i) => ({ id: `check${i}`, text: checkText(c) })),
  }
}

/** The devices of the lab in the root namespace: its switches and the ends of links there. */
export function rootDevices(lab: Lab): Set<string> {
  return new Set([
    ...lab.switches.map((s) => s.dev),
    ...lab.links.flatMap((k) => [k.a, k.b]).flatMap((e) => (e.ns === undefined ? [e.dev] : [])),
  ])
}
