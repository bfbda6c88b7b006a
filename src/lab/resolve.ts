/**
 * A loaded lab resolved into what nsdn builds: defaults filled in, every namespace and device
 * named (per lab, within IFNAMSIZ), pool addresses handed out, and every rule a kernel-free
 * check can prove enforced: unknown nodes, an interface used twice, names over 15 bytes after
 * namespacing, overlapping subnets, addresses or routes that do not parse, container fields.
 * Probes of the running kernel come after, in preflight.ts. Pure: nothing touches the kernel.
 * @module
 */
import { createHash } from 'node:crypto'
import { ConfigError } from '../errors.js'
import { formatAddr, parseAddr, parseRange } from '../ipam/range.js'
import { hostPrefixLen, overlaps, subnetOf } from '../drivers/subnet.js'
import { type Cidr, IFNAMSIZ, parseCidr, parseGateway, parseIp } from '../validate.js'
import { type ContainerNode, resolveContainer } from './containers.js'
import { type FieldPath, type Loaded, type RawKind, fieldText } from './load.js'

/** A node with its own network stack: a namespace, or the namespace nsdn runs in (root). */
export interface Node {
  name: string
  kind: 'host' | 'router' | 'root' | 'container'
  /** iproute2 name of its namespace; undefined for root. A container's is named like it. */
  ns: string | undefined
  /** Container nodes: what the runtime runs. */
  container?: ContainerNode
  routes: { to: string; via?: string; dev?: string }[]
  /** Devices (names in the node; uplinks for root) whose outgoing traffic is masqueraded. */
  nat: string[]
  /** false: its lab interfaces get no IPv6 link-local address. */
  linkLocal: boolean
}

export interface Switch {
  name: string
  kind: 'bridge' | 'ovs'
  /** Device (bridge) name in the root namespace. */
  dev: string
  /** Linux bridges: false turns IGMP/MLD snooping off. */
  mcastSnooping?: false
}

/** One end of a veth pair. */
export interface End {
  /** The node or switch the end belongs to. */
  node: string
  /** Namespace the device lives in (undefined: root, where switch ports live). */
  ns: string | undefined
  /** Device name where it lives. */
  dev: string
  /** When a switch port: the switch, its access VLAN and trunks. */
  sw?: Switch
  tag?: number
  trunks?: number[]
  addrs: string[]
  mtu?: number
  /** Egress rate (tbf), bits per second. */
  rate?: number
  /** A node's interface without an IPv6 link-local address (addrgenmode none). */
  linkLocal?: false
}

export interface Link {
  a: End
  b: End
  /** The position of the link in the file, for messages. */
  index: number
}

export interface Check {
  from: Node
  /** What `to` said (a node name or an address) and the address it means. */
  to: string
  addr: string
  expect: 'reach' | 'isolated' | 'throughput'
  min?: number
  max?: number
}

export interface Lab {
  name: string
  /** The lab file as given, and its text (kept in the state). */
  file: string
  text: string
  hash: string
  nodes: Node[]
  switches: Switch[]
  links: Link[]
  checks: Check[]
  /** Link fields that need a kernel feature, for preflight.ts. */
  needs: { bridgeVlans: string[]; netem: string[] }
  /** What an import (containerlab) left out. */
  notes: string[]
  /** The subnets of the lab's addresses (what root NAT masquerades). */
  subnets: string[]
}

const UNITS: Record<string, number> = { bit: 1, kbit: 1e3, mbit: 1e6, gbit: 1e9 }

/** "10mbit" -> 10_000_000 (tc's units: k = 1000). */
export function parseRate(text: string, where: string): number {
  const m = /^(\d+(?:\.\d+)?)(bit|kbit|mbit|gbit)$/.exec(text)
  if (!m) throw new ConfigError(`invalid rate "${text}"`, where, { hint: 'write e.g. 10mbit' })
  return Math.round(Number(m[1]) * UNITS[m[2]!]!)
}

const SWITCH_KINDS = new Set<RawKind>(['bridge', 'ovs'])

/** Resolve a loaded lab; throws ConfigError naming file:line:col and field. */
export function resolve(l: Loaded): Lab {
  const { raw } = l
  const fail = (msg: string, p: FieldPath, hint: string): never => {
    throw new ConfigError(msg, l.at(p), { hint })
  }
  const lab = raw.name
  const at = (p: FieldPath, fn: (where: string) => unknown): void => void located(l, p, fn)
  const rootName = (local: string, p: FieldPath): string => {
    const dev = `${lab}-${local}`
    if (Buffer.byteLength(dev) > IFNAMSIZ)
      fail(
        `device name "${dev}" is ${Buffer.byteLength(dev)} bytes after namespacing with the lab ` +
          `name; the kernel allows ${IFNAMSIZ}`,
        p,
        'shorten the lab name or the node/port name, or name the switch port ("sw1:p1")',
      )
    return dev
  }

  const nodes = new Map<string, Node>()
  const switches = new Map<string, Switch>()
  const subnets = new Map<string, string>() // switch -> pool
  let roots = 0
  for (const [name, n] of Object.entries(raw.nodes)) {
    const p = ['nodes', name]
    const kind = n.kind ?? raw.defaults?.kind ?? 'host'
    if (kind !== 'container')
      for (const f of ['image', 'command', 'limits', 'env', 'hostname'] as const)
        if (n[f] !== undefined)
          fail(
            `node "${name}": ${f} is for container nodes`,
            [...p, f],
            `remove ${f}, or make the node kind: container`,
          )
    if (n.mcastSnooping !== undefined && kind !== 'bridge')
      fail(
        `node "${name}": mcastSnooping is a Linux bridge setting`,
        [...p, 'mcastSnooping'],
        kind === 'ovs'
          ? 'remove it: Open vSwitch snoops multicast only when asked (mcast_snooping_enable)'
          : 'remove it, or set it on the bridge the node is linked to',
      )
    if (SWITCH_KINDS.has(kind)) {
      if (n.addresses || n.routes || n.nat)
        fail(
          `switch "${name}" cannot have addresses, routes or nat`,
          p,
          'give them to a host or router node linked to the switch',
        )
      if (n.linkLocal !== undefined)
        fail(
          `switch "${name}": linkLocal is for nodes with interfaces`,
          [...p, 'linkLocal'],
          'set it on the hosts and routers (or in defaults): a switch port carries no address',
        )
      const snoop = kind === 'bridge' ? (n.mcastSnooping ?? raw.defaults?.mcastSnooping) : undefined
      switches.set(name, {
        name,
        kind: kind as Switch['kind'],
        dev: rootName(name, p),
        ...(snoop === false ? { mcastSnooping: false } : {}),
      })
      if (n.subnet !== undefined) {
        const c = located(l, [...p, 'subnet'], (w) => parseCidr(n.subnet!, w, true))
        if (subnetOf(c) !== `${c.address}/${c.prefixLen}`)
          fail(`subnet ${n.subnet} has host bits set`, [...p, 'subnet'], `write ${subnetOf(c)}`)
        subnets.set(name, n.subnet)
      }
      continue
    }
    if (n.subnet !== undefined)
      fail(`node "${name}": subnet is for switches`, [...p, 'subnet'], 'move it to the switch')
    if (kind === 'root') {
      if (++roots > 1) fail('more than one root node', p, 'the root namespace is one node')
      if (n.routes?.length)
        fail(
          `root node "${name}": routes would change the host's own routing`,
          [...p, 'routes'],
          'put a router node between the lab and the root namespace',
        )
        // NAT out of the host's uplink: only interfaces the file names as uplinks (never changed).
      ;(n.nat ?? []).forEach((d, i) => {
        if (!raw.uplinks?.includes(d))
          fail(
            `root node "${name}": "${d}" is not an uplink`,
            [...p, 'nat', i],
            `list it in uplinks: [${d}]`,
          )
      })
    }
    const k = kind as Node['kind']
    const ns = k === 'root' ? undefined : `${lab}-${name}`
    nodes.set(name, {
      name,
      kind: k,
      ns,
      ...(k === 'container' ? { container: resolveContainer(l, name, ns!, n, raw.defaults) } : {}),
      routes: n.routes ?? [],
      nat: n.nat ?? [],
      linkLocal: n.linkLocal ?? raw.defaults?.linkLocal ?? true,
    })
  }

  // Links: each endpoint a node interface or a switch port.
  const ends = new Map<string, End>() // "ns|dev" -> end, to find a device used twice
  const byNodeIf = new Map<string, End>() // "node:if" as written
  const links: Link[] = []
  const needs: Lab['needs'] = { bridgeVlans: [], netem: [] }
  const known = (): string => [...nodes.keys(), ...switches.keys()].join(', ')
  ;(raw.links ?? []).forEach((r, i) => {
    const p = ['links', i]
    const parsed = r.endpoints.map((e, j) => {
      const [node = '', ifname] = e.split(':')
      if (!nodes.has(node) && !switches.has(node))
        fail(`unknown node "${node}"`, [...p, 'endpoints', j], `known nodes: ${known()}`)
      if (nodes.has(node) && ifname === undefined)
        fail(
          `endpoint "${e}" names no interface`,
          [...p, 'endpoints', j],
          `write "${node}:eth0" (a host or router needs the interface name)`,
        )
      return { node, ifname, j }
    })
    const [x, y] = parsed as [(typeof parsed)[0], (typeof parsed)[0]]
    const swCount = parsed.filter((e) => switches.has(e.node)).length
    if ((r.vlan !== undefined || r.trunks) && swCount === 0)
      fail(
        'vlan and trunks are switch port settings',
        [...p, r.vlan !== undefined ? 'vlan' : 'trunks'],
        'link the node to a switch, or drop the VLAN',
      )
    if (r.vlan !== undefined && r.trunks)
      fail('a port is either access (vlan) or trunk (trunks)', [...p, 'vlan'], 'keep one')
    if (r.delay !== undefined || r.loss !== undefined)
      needs.netem.push(l.at([...p, r.delay !== undefined ? 'delay' : 'loss']))
    const rate =
      r.rate === undefined ? undefined : located(l, [...p, 'rate'], (w) => parseRate(r.rate!, w))
    const mk = (self: typeof x, other: typeof x): End => {
      const ep: FieldPath = [...p, 'endpoints', self.j]
      const sw = switches.get(self.node)
      const node = nodes.get(self.node)
      let end: End
      if (sw) {
        const port =
          self.ifname ??
          (other.ifname && nodes.has(other.node)
            ? `${other.node}-${other.ifname}`
            : `${self.node}-${other.node}`)
        end = { node: sw.name, ns: undefined, dev: rootName(port, ep), sw, addrs: [] }
        if (r.vlan !== undefined) end.tag = r.vlan
        if (r.trunks) end.trunks = [...new Set(r.trunks)].sort((a, b) => a - b)
        if ((r.vlan !== undefined || r.trunks) && sw.kind === 'bridge')
          needs.bridgeVlans.push(l.at(ep))
      } else {
        const ifname = self.ifname!
        const dev = node!.ns ? ifname : rootName(ifname, ep)
        if (Buffer.byteLength(ifname) > IFNAMSIZ)
          fail(`interface name "${ifname}" is over ${IFNAMSIZ} bytes`, ep, 'shorten it')
        const rawNode = raw.nodes[self.node]!
        const a = rawNode.addresses?.[ifname]
        end = {
          node: self.node,
          ns: node!.ns,
          dev,
          addrs: a === undefined ? [] : Array.isArray(a) ? a : [a],
        }
        const mtu = r.mtu ?? rawNode.mtu ?? raw.defaults?.mtu
        if (mtu !== undefined) end.mtu = mtu
        if (!node!.linkLocal) end.linkLocal = false
      }
      if (r.mtu !== undefined) end.mtu = r.mtu
      if (rate !== undefined) end.rate = rate
      const key = `${end.ns ?? ''}|${end.dev}`
      if (ends.has(key) || byNodeIf.has(`${self.node}:${self.ifname ?? end.dev}`))
        fail(
          `interface "${self.ifname ?? end.dev}" of "${self.node}" is used by two links`,
          ep,
          'give each link its own interface name',
        )
      ends.set(key, end)
      byNodeIf.set(`${self.node}:${self.ifname ?? end.dev}`, end)
      return end
    }
    links.push({ a: mk(x, y), b: mk(y, x), index: i })
  })

  // Addresses written for interfaces no link makes.
  for (const [name, n] of Object.entries(raw.nodes))
    for (const ifname of Object.keys(n.addresses ?? {}))
      if (!byNodeIf.has(`${name}:${ifname}`))
        fail(
          `node "${name}" has no link on interface "${ifname}"`,
          ['nodes', name, 'addresses', ifname],
          'add a link with this endpoint, or fix the interface name',
        )

  assignPools(links, subnets, l)
  checkSubnets(links, l)

  // Routes and nat refer to the node's own interfaces.
  const devsOf = new Map<string, Set<string>>()
  for (const e of links.flatMap((k) => [k.a, k.b])) {
    if (!devsOf.has(e.node)) devsOf.set(e.node, new Set())
    devsOf.get(e.node)!.add(e.dev)
  }
  for (const n of nodes.values()) {
    const devs = devsOf.get(n.name) ?? new Set<string>()
    n.routes.forEach((r, i) => {
      const p = ['nodes', n.name, 'routes', i]
      if (r.to !== 'default') {
        const c = located(l, [...p, 'to'], (w) => parseCidr(r.to, w, true))
        if (subnetOf(c) !== r.to)
          fail(`route destination ${r.to} has host bits set`, [...p, 'to'], `write ${subnetOf(c)}`)
      }
      if (r.via !== undefined) {
        const via = r.via
        at([...p, 'via'], (w) => {
          const fam = r.to === 'default' ? parseIp(via, w).family : parseCidr(r.to).family
          parseGateway(via, fam, r.to, w)
        })
      }
      if (r.dev !== undefined && !devs.has(r.dev))
        fail(
          `node "${n.name}" has no interface "${r.dev}"`,
          [...p, 'dev'],
          `its interfaces: ${[...devs].join(', ')}`,
        )
      if (r.via === undefined && r.dev === undefined)
        fail('a route needs via or dev', p, 'add via: the next hop address')
    })
    n.nat.forEach((d, i) => {
      if (n.ns && !devs.has(d))
        fail(
          `node "${n.name}" has no interface "${d}"`,
          ['nodes', n.name, 'nat', i],
          `its interfaces: ${[...devs].join(', ')}`,
        )
    })
  }

  // Checks: from a node with a stack, to a node (its first address) or an address.
  const firstAddr = new Map<string, string>()
  for (const e of links.flatMap((k) => [k.a, k.b]))
    if (e.addrs[0] && !firstAddr.has(e.node)) firstAddr.set(e.node, e.addrs[0].split('/')[0]!)
  const addrOf = (node: string): string | undefined => firstAddr.get(node)
  const checks = (raw.checks ?? []).map((c, i): Check => {
    const p = ['checks', i]
    const from = nodes.get(c.from)
    if (!from)
      return fail(
        `unknown node "${c.from}"`,
        [...p, 'from'],
        `hosts and routers: ${[...nodes.keys()].join(', ')}`,
      )
    let addr: string
    if (nodes.has(c.to)) {
      const a = addrOf(c.to)
      if (!a)
        return fail(
          `node "${c.to}" has no address to reach`,
          [...p, 'to'],
          'give it an address, or write one here',
        )
      addr = a
    } else if (switches.has(c.to)) {
      return fail(
        `"${c.to}" is a switch: it has no address`,
        [...p, 'to'],
        'name a host or an address',
      )
    } else addr = located(l, [...p, 'to'], (w) => parseIp(c.to, w).address)
    const out: Check = { from, to: c.to, addr, expect: c.expect }
    if (c.expect === 'throughput') {
      if (c.min === undefined && c.max === undefined)
        fail('a throughput check needs min or max', p, 'add min: 5mbit')
      if (!nodes.get(c.to)?.ns && !nodes.has(c.to))
        fail(
          'a throughput check runs iperf3 on both nodes',
          [...p, 'to'],
          'name a node, not an address',
        )
    }
    if (c.min !== undefined) out.min = located(l, [...p, 'min'], (w) => parseRate(c.min!, w))
    if (c.max !== undefined) out.max = located(l, [...p, 'max'], (w) => parseRate(c.max!, w))
    return out
  })

  const hash = createHash('sha256').update(l.text).digest('hex').slice(0, 16)
  return {
    name: lab,
    file: l.file,
    text: l.text,
    hash,
    nodes: [...nodes.values()],
    switches: [...switches.values()],
    links,
    checks,
    needs,
    notes: l.notes,
    subnets: [
      ...new Set(
        links.flatMap((k) => [k.a, k.b]).flatMap((e) => e.addrs.map((a) => subnetOf(parseCidr(a)))),
      ),
    ]
      .filter((c) => !c.includes(':'))
      .sort(),
  }
}

/**
 * Run a parser that names `where` in its errors with the field path only, and put the file,
 * line and column in front when it fails: positions cost a walk of the document.
 */
function located<T>(l: Loaded, p: FieldPath, fn: (where: string) => T): T {
  const path = fieldText(p)
  try {
    return fn(path)
  } catch (err) {
    if (!(err instanceof ConfigError) || !err.message.startsWith(`${path}: `)) throw err
    throw new ConfigError(err.message.slice(path.length + 2), l.at(p), {
      ...(err.hint ? { hint: err.hint } : {}),
    })
  }
}

/** The node end of a node-to-switch link, and the switch. */
function switchPorts(links: Link[]): { sw: Switch; end: End }[] {
  const out: { sw: Switch; end: End }[] = []
  for (const k of links) {
    if (k.a.sw && !k.b.sw) out.push({ sw: k.a.sw, end: k.b })
    if (k.b.sw && !k.a.sw) out.push({ sw: k.b.sw, end: k.a })
  }
  return out
}

/** Node interfaces on a switch with a subnet and no address get the pool's next free one. */
function assignPools(links: Link[], subnets: Map<string, string>, l: Loaded): void {
  const ports = new Map<string, { sw: Switch; end: End }[]>()
  for (const p of switchPorts(links)) {
    if (!ports.has(p.sw.name)) ports.set(p.sw.name, [])
    ports.get(p.sw.name)!.push(p)
  }
  for (const [sw, subnet] of subnets) {
    const at = (): string => l.at(['nodes', sw, 'subnet'])
    const r = located(l, ['nodes', sw, 'subnet'], (w) => parseRange({ subnet }, w))
    const mine = ports.get(sw) ?? []
    const taken = new Set(mine.flatMap((p) => p.end.addrs.map((a) => a.split('/')[0])))
    let next = r.start
    for (const p of mine) {
      if (p.end.addrs.length) continue
      let text: string
      do {
        if (next > r.end)
          throw new ConfigError(`subnet ${subnet} has too few addresses for its ports`, at(), {
            hint: 'use a shorter prefix length',
          })
        text = formatAddr({ family: r.family, value: next++ })
      } while (taken.has(text))
      p.end.addrs.push(`${text}/${r.prefixLen}`)
    }
  }
}

/**
 * L2 segments (a switch with every switch linked to it, or one node-to-node link) must not
 * share subnets: two segments with overlapping prefixes make routing ambiguous. An address
 * must also not appear twice.
 */
function checkSubnets(links: Link[], l: Loaded): void {
  const parent = new Map<string, string>()
  const find = (x: string): string => {
    while (parent.has(x) && parent.get(x) !== x) x = parent.get(x)!
    return x
  }
  const segOf = (k: Link, i: number): string =>
    k.a.sw ? `sw:${k.a.sw.name}` : k.b.sw ? `sw:${k.b.sw.name}` : `link:${i}`
  links.forEach((k) => {
    if (k.a.sw && k.b.sw) parent.set(find(`sw:${k.a.sw.name}`), find(`sw:${k.b.sw.name}`))
  })
  // One entry per (segment, subnet): a star of 1,000 hosts has one.
  const subnets = new Map<string, { seg: string; cidr: string; where: () => string }>()
  const addrs = new Map<string, () => string>()
  links.forEach((k, i) => {
    const seg = find(segOf(k, i))
    for (const e of [k.a, k.b]) {
      const local = e.ns ? e.dev : e.dev.slice(l.raw.name.length + 1)
      for (const a of e.addrs) {
        // Positions cost a walk of the document: looked up only for a message.
        const where = (): string => l.at(['nodes', e.node, 'addresses', local])
        const c = parseCidr(a, 'address', true)
        const dup = addrs.get(c.address)
        if (dup)
          throw new ConfigError(`address ${c.address} is used twice (also at ${dup()})`, where(), {
            hint: 'give each interface its own address',
          })
        addrs.set(c.address, where)
        const net = subnetOf(c)
        if (!subnets.has(`${seg}|${net}`)) subnets.set(`${seg}|${net}`, { seg, cidr: a, where })
      }
    }
  })
  const list = [...subnets.values()].map((x) => ({ ...x, c: parseCidr(x.cidr) }))
  // Comparing every pair took seconds at 1,000 point-to-point links: a sorted sweep finds
  // whether any pair overlaps, and only then the pairs are walked, for the first one in order.
  if (!anyOverlap(list)) return
  for (const [i, x] of list.entries())
    for (const y of list.slice(i + 1))
      if (x.seg !== y.seg && overlaps(x.c, y.c))
        throw new ConfigError(
          `subnet ${subnetOf(y.c)} overlaps ${subnetOf(x.c)} of another segment (${x.where()})`,
          y.where(),
          { hint: 'give each L2 segment (switch or point-to-point link) its own subnet' },
        )
}

/**
 * Whether two prefixes of different segments overlap. Prefixes are nested or disjoint, so in
 * order of first address (the wider first) the prefixes still open are those containing the
 * current one.
 */
function anyOverlap(list: { seg: string; c: Cidr }[]): boolean {
  const spans = list.map(({ seg, c }) => {
    const host = BigInt(hostPrefixLen(c.family) - c.prefixLen)
    const start = (parseAddr(c.address, 'address').value >> host) << host
    return { seg, family: c.family, start, end: start + (1n << host) - 1n }
  })
  spans.sort((a, b) =>
    a.family !== b.family
      ? a.family - b.family
      : a.start !== b.start
        ? a.start < b.start
          ? -1
          : 1
        : a.end === b.end
          ? 0
          : a.end > b.end
            ? -1
            : 1,
  )
  const open: typeof spans = []
  for (const s of spans) {
    while (open.length && (open.at(-1)!.family !== s.family || open.at(-1)!.end < s.start))
      open.pop()
    if (open.some((o) => o.seg !== s.seg)) return true
    open.push(s)
  }
  return false
}
