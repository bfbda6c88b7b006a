/**
 * containerlab topology files (`.clab.yml`) read into nsdn's lab shape. Supported: nodes of
 * kind `linux` (a container node when its image is imported locally, with its cmd and env;
 * otherwise a network namespace: images are never pulled), `bridge` (a Linux bridge, which nsdn
 * creates) and `ovs-bridge`
 * (an Open vSwitch bridge, likewise); `host` endpoints (the root namespace); links with
 * `endpoints: ["a:eth1", "b:eth1"]`. Everything else is named in the notes (ignored fields) or
 * refused (other kinds, other link types).
 * @module
 */
import { ConfigError } from '../errors.js'
import type { FieldPath, RawLab, RawNode } from './load.js'

/** Node fields containerlab has and nsdn ignores (a namespace runs no image). */
const IGNORED = [
  'image',
  'cmd',
  'exec',
  'binds',
  'ports',
  'env',
  'entrypoint',
  'user',
  'startup-config',
  'mgmt-ipv4',
  'mgmt-ipv6',
  'labels',
  'group',
  'network-mode',
  'publish',
  'license',
  'type',
  'cpu',
  'memory',
  'sysctls',
  'stages',
  'restart-policy',
  'dns',
  'certificate',
  'healthcheck',
]
const KINDS: Record<string, RawNode['kind']> = {
  linux: 'host',
  bridge: 'bridge',
  'ovs-bridge': 'ovs',
}
/** What a containerlab kind must become to be deployable by nsdn. */
const SUPPORTED = 'linux, bridge, ovs-bridge'

type Obj = Record<string, unknown>
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v)

/** Whether a parsed YAML document is in containerlab's shape (topology.nodes). */
export function isClab(doc: unknown): boolean {
  return isObj(doc) && isObj(doc.topology)
}

/** Where an nsdn field path was written in the containerlab file. */
export function clabPath(p: FieldPath): FieldPath {
  return p[0] === 'nodes' || p[0] === 'links' ? ['topology', ...p] : p
}

/**
 * An nsdn lab name from a containerlab one: lower-case letters and digits, at most 6 (it
 * prefixes every device in the root namespace, and containerlab port names are long already).
 */
function labName(name: string): string {
  const n = name.toLowerCase().replace(/[^a-z0-9]/g, '')
  return /^[a-z]/.test(n) ? n.slice(0, 6) : `c${n}`.slice(0, 6)
}

/**
 * A linux node whose image is imported here: a container node running its cmd (by sh -c, as
 * containerlab's is a string) with its env. Else undefined, and a note says why.
 */
function containerOf(n: string, node: Obj, notes: string[]): RawNode | undefined {
  if (typeof node.image !== 'string') return undefined
  const { importedImage } = require('./containers.js') as typeof import('./containers.js')
  const image = importedImage(node.image)
  if (!image) {
    notes.push(
      `node "${n}": image "${node.image}" not imported: became a namespace ` +
        '("nsdn image import NAME DIR" makes it a container)',
    )
    return undefined
  }
  notes.push(`node "${n}": image "${node.image}" is the imported image "${image}": a container`)
  const env = isObj(node.env)
    ? Object.fromEntries(Object.entries(node.env).map(([k, v]) => [k, String(v)]))
    : undefined
  return {
    kind: 'container',
    image,
    ...(typeof node.cmd === 'string' && node.cmd ? { command: node.cmd } : {}),
    ...(env ? { env } : {}),
  }
}

/** Convert; `notes` gets one line per thing nsdn leaves out. Throws ConfigError on refusals. */
export function fromClab(doc: Obj, file: string, notes: string[]): RawLab {
  const topo = doc.topology as Obj
  const name = typeof doc.name === 'string' ? doc.name : 'clab'
  const lab = labName(name)
  if (lab !== name)
    notes.push(`lab name "${name}" is "${lab}" in nsdn (lower-case letters and digits, at most 6)`)
  if (doc.mgmt !== undefined)
    notes.push('mgmt: no management network (namespaces reach each other only by the links)')
  const kinds = isObj(topo.kinds) ? topo.kinds : {}
  const defaults = isObj(topo.defaults) ? topo.defaults : {}
  const nodes: Record<string, RawNode> = {}
  let host = false
  const ignored = new Set<string>()
  for (const [n, v] of Object.entries(isObj(topo.nodes) ? topo.nodes : {})) {
    const node = isObj(v) ? v : {}
    const kind = String(node.kind ?? defaults.kind ?? '')
    const mine = KINDS[kind]
    if (!mine)
      throw new ConfigError(
        `node "${n}": kind "${kind}" is not supported`,
        `${file} topology.nodes.${n}.kind`,
        {
          hint: `nsdn imports the kinds ${SUPPORTED}; network OS images (srl, ceos, vr-*) need their VMs`,
        },
      )
    const all: Obj = { ...defaults, ...(isObj(kinds[kind]) ? kinds[kind] : {}), ...node }
    const container = kind === 'linux' ? containerOf(n, all, notes) : undefined
    for (const k of Object.keys({ ...(isObj(kinds[kind]) ? kinds[kind] : {}), ...node }))
      if (k !== 'kind' && !(container && k in container) && !(k === 'cmd' && container))
        ignored.add(k)
    nodes[n] = container ?? { kind: mine }
  }
  ignored.delete('image') // said per node
  for (const k of ignored)
    notes.push(
      IGNORED.includes(k)
        ? `node field "${k}": ignored (a node is a namespace; no image runs)`
        : `node field "${k}": unknown, ignored`,
    )
  const links = (Array.isArray(topo.links) ? topo.links : []).map((l, i) => {
    const link = isObj(l) ? l : {}
    if (link.type !== undefined && link.type !== 'veth')
      throw new ConfigError(
        `link type "${String(link.type)}" is not supported`,
        `${file} topology.links[${i}].type`,
        {
          hint: 'nsdn imports veth links given as endpoints: ["a:eth1", "b:eth1"]',
        },
      )
    const eps = Array.isArray(link.endpoints) ? link.endpoints.map(String) : []
    for (const e of eps)
      if (e.startsWith('host:')) host = true
      else if (e.startsWith('macvlan:') || e.startsWith('mgmt-net:'))
        throw new ConfigError(
          `endpoint "${e}" is not supported`,
          `${file} topology.links[${i}].endpoints`,
          {
            hint: 'link the node to a bridge or another node instead',
          },
        )
    for (const k of Object.keys(link))
      if (k !== 'endpoints' && k !== 'type') notes.push(`link field "${k}": ignored`)
    return { endpoints: eps as [string, string] }
  })
  if (host) nodes.host = { kind: 'root' }
  return { name: lab, nodes, links }
}
