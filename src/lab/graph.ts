/**
 * A lab as a picture: Graphviz dot, Mermaid, or SVG drawn here (no Graphviz needed). The SVG
 * layout is layered: switches in the middle row, the nodes linked to a switch fanned out above
 * and below it, the rest (routers, point-to-point peers) in rows of their own.
 * @module
 */
import type { End, Lab } from './resolve.js'

interface Vertex {
  id: string
  label: string
  kind: string
}
interface Edge {
  a: string
  b: string
  label: string
}

function model(lab: Lab): { vs: Vertex[]; es: Edge[] } {
  const vs: Vertex[] = [
    ...lab.nodes.map((n) => ({ id: n.name, label: n.name, kind: n.kind })),
    ...lab.switches.map((s) => ({ id: s.name, label: s.name, kind: s.kind })),
  ]
  const endLabel = (e: End): string =>
    e.sw
      ? e.tag !== undefined
        ? `vlan ${e.tag}`
        : e.trunks
          ? `trunk ${e.trunks.join(',')}`
          : ''
      : [e.dev, ...e.addrs].join(' ')
  const es = lab.links.map((k) => ({
    a: k.a.node,
    b: k.b.node,
    label: [endLabel(k.a), endLabel(k.b)].filter(Boolean).join(' / '),
  }))
  return { vs, es }
}

const SHAPE: Record<string, string> = {
  host: 'box',
  router: 'diamond',
  root: 'house',
  container: 'box3d',
  bridge: 'ellipse',
  ovs: 'ellipse',
}

export function toDot(lab: Lab): string {
  const { vs, es } = model(lab)
  const q = (s: string): string => JSON.stringify(s)
  return [
    `graph ${q(lab.name)} {`,
    '  node [fontname="sans-serif"];',
    ...vs.map(
      (v) =>
        `  ${q(v.id)} [label=${q(`${v.label}\n(${v.kind})`)}, shape=${SHAPE[v.kind] ?? 'box'}];`,
    ),
    ...es.map((e) => `  ${q(e.a)} -- ${q(e.b)} [label=${q(e.label)}];`),
    '}',
    '',
  ].join('\n')
}

export function toMermaid(lab: Lab): string {
  const { vs, es } = model(lab)
  const id = (s: string): string => s.replace(/[^A-Za-z0-9_]/g, '_')
  const shape = (v: Vertex): string =>
    v.kind === 'router'
      ? `{"${v.label}"}`
      : v.kind === 'bridge' || v.kind === 'ovs'
        ? `(("${v.label}"))`
        : `["${v.label}"]`
  return [
    'graph TD',
    ...vs.map((v) => `  ${id(v.id)}${shape(v)}`),
    ...es.map((e) => `  ${id(e.a)} ---${e.label ? `|"${e.label}"|` : ''} ${id(e.b)}`),
    '',
  ].join('\n')
}

const esc = (s: string): string =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
const FILL: Record<string, string> = {
  host: '#e3f2fd',
  router: '#fff3e0',
  root: '#eeeeee',
  container: '#ede7f6',
  bridge: '#e8f5e9',
  ovs: '#e8f5e9',
}

/** Rows: routers and root on top, switches in the middle, hosts below (hosts without a switch last). */
export function toSvg(lab: Lab): string {
  const { vs, es } = model(lab)
  const row = (v: Vertex): number =>
    v.kind === 'router' || v.kind === 'root' ? 0 : v.kind === 'bridge' || v.kind === 'ovs' ? 1 : 2
  const rows: Vertex[][] = [[], [], []]
  for (const v of vs) rows[row(v)]!.push(v)
  // Hosts under the switch they hang off, in switch order.
  const swIndex = new Map(rows[1]!.map((v, i) => [v.id, i]))
  const hostSw = (v: Vertex): number => {
    const e = es.find(
      (x) => (x.a === v.id && swIndex.has(x.b)) || (x.b === v.id && swIndex.has(x.a)),
    )
    return e ? swIndex.get(e.a === v.id ? e.b : e.a)! : rows[1]!.length
  }
  rows[2]!.sort((x, y) => hostSw(x) - hostSw(y))
  const W = 120
  const H = 40
  const GAP = 30
  const width = Math.max(...rows.map((r) => r.length)) * (W + GAP) + GAP
  const pos = new Map<string, { x: number; y: number }>()
  let y = GAP
  const used = rows.filter((r) => r.length)
  for (const r of used) {
    const offset = (width - r.length * (W + GAP) + GAP) / 2
    r.forEach((v, i) => pos.set(v.id, { x: offset + i * (W + GAP), y }))
    y += H + 110
  }
  const height = y - 110 + H + GAP
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<title>${esc(lab.name)}</title>`,
  ]
  for (const e of es) {
    const a = pos.get(e.a)!
    const b = pos.get(e.b)!
    const [x1, y1, x2, y2] = [a.x + W / 2, a.y + H / 2, b.x + W / 2, b.y + H / 2]
    parts.push(`<line x1="${x1}" y1="${y1}" x2="${x2}" y2="${y2}" stroke="#555"/>`)
    if (e.label)
      parts.push(
        `<text x="${(x1 + x2) / 2}" y="${(y1 + y2) / 2 - 4}" text-anchor="middle" fill="#333" font-size="10">${esc(e.label)}</text>`,
      )
  }
  for (const v of vs) {
    const p = pos.get(v.id)!
    const r = v.kind === 'bridge' || v.kind === 'ovs' ? 20 : 4
    parts.push(
      `<rect x="${p.x}" y="${p.y}" width="${W}" height="${H}" rx="${r}" fill="${FILL[v.kind] ?? '#fff'}" stroke="#333"/>`,
      `<text x="${p.x + W / 2}" y="${p.y + 17}" text-anchor="middle" font-weight="bold">${esc(v.label)}</text>`,
      `<text x="${p.x + W / 2}" y="${p.y + 32}" text-anchor="middle" fill="#555" font-size="10">${esc(v.kind)}</text>`,
    )
  }
  parts.push('</svg>', '')
  return parts.join('\n')
}
