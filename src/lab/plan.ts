/**
 * A resolved lab as a graph of steps: each step one Op (the unit the choke point logs,
 * explains and dry-runs), a short "why" for learners, the steps it waits for, and what it
 * creates (journaled before it runs, so destroy finds it whatever happens after).
 * Independent steps (different namespaces, different links) run in parallel in apply.ts;
 * `nsdn lab explain` prints the steps in order as a script.
 * @module
 */
import { createHash } from 'node:crypto'
import type { Op } from '../op.js'
import { ovsRunDir } from '../ovs/daemon.js'
import { containerRunOp } from './containers.js'
import type { End, Lab } from './resolve.js'

/** What a step creates, as the journal records it (destroy reads these back). */
export type Created =
  | { netns: string }
  /**
   * A device in the root namespace; `peerNs`: its veth peer lives there (goes with it);
   * `group`: the device group it was made in (the lab's, {@link labGroup}).
   */
  | { link: string; peerNs?: string; group?: number }
  | { ovsBridge: string }
  | { ovsDaemon: string }
  /** A root-namespace sysctl the lab set; `was` (journaled when set) is restored by destroy. */
  | { sysctl: string; was?: string }
  /** An nft table of the lab's in the root namespace (family ip). */
  | { nftTable: string }
  /** A container node's container (its netns, named like it, goes with it). */
  | { container: string }

export interface Step {
  id: number
  op: Op
  why: string
  deps: number[]
  creates?: Created
  /** The lab object it belongs to (node:NAME, switch:NAME, link:KEY, ovs): reconcile's unit. */
  owner: string
}

/** A link's identity across versions of a lab file: its two ends, node and device. */
export function linkKey(k: { a: End; b: End }): string {
  return [`${k.a.node}:${k.a.dev}`, `${k.b.node}:${k.b.dev}`].sort().join('|')
}

/**
 * The device group of a lab's devices in the root namespace, so that destroy removes them all
 * with one request (`ip link del group N`: one batch in the kernel, where a request a device
 * would wait for the kernel's RCU grace periods device by device). From the lab's name, so
 * that explain prints the number deploy uses: 0x4e000000 plus 24 bits of its SHA-256, far
 * from the small numbers people give groups by hand. Destroy checks that the group holds only
 * the lab's devices before it deletes it.
 */
export function labGroup(name: string): number {
  return 0x4e000000 + createHash('sha256').update(name).digest().readUIntBE(0, 3)
}

/** tbf's bucket: at least one MTU-size frame, and 10 ms of the rate (tc's own advice). */
export function tbfBurst(rate: number): number {
  return Math.max(1600, Math.ceil(rate / 8 / 100))
}

/** The steps that build lab (in an order that is a valid sequence, for explain). */
export function plan(lab: Lab, o: { ovsRunning: boolean; datapath: string }): Step[] {
  const steps: Step[] = []
  let owner = 'ovs'
  const add = (op: Op, why: string, deps: (number | undefined)[], creates?: Created): number => {
    const id = steps.length
    const s: Step = { id, op, why, deps: deps.filter((d): d is number => d !== undefined), owner }
    if (creates) s.creates = creates
    steps.push(s)
    return id
  }
  const nsq = (ns: string | undefined): { ns?: string } => (ns ? { ns } : {})
  const group = labGroup(lab.name)
  // said once, at the first device in the root namespace
  let groupWhy = `; in device group ${group}, the lab's, which destroy removes in one request`
  const grouped = (why: string): string => {
    const w = why + groupWhy
    groupWhy = ''
    return w
  }

  let ovsd: number | undefined
  if (lab.switches.some((s) => s.kind === 'ovs') && !o.ovsRunning) {
    const runDir = ovsRunDir()
    ovsd = add(
      { kind: 'ovs.daemon', action: 'start', runDir },
      'a private Open vSwitch: its database, and ovs-vswitchd (userspace datapath)',
      [],
      { ovsDaemon: runDir },
    )
  }

  const nsStep = new Map<string, number>()
  for (const n of lab.nodes) {
    if (!n.ns) continue
    owner = `node:${n.name}`
    const id = n.container
      ? add(
          containerRunOp(n.container),
          `container ${n.name}: its own root filesystem (image ${n.container.image}), PID ` +
            "namespace and cgroup, and a network namespace the lab wires like a host's",
          [],
          { container: n.ns },
        )
      : add(
          { kind: 'netns.add', name: n.ns },
          `${n.kind} ${n.name}: a network namespace, its own interfaces, addresses and routes`,
          [],
          { netns: n.ns },
        )
    nsStep.set(n.ns, id)
    add({ kind: 'link.set', ns: n.ns, name: 'lo', up: true }, 'loopback up: local traffic', [id])
    if (n.kind === 'router')
      add(
        { kind: 'sysctl.set', ns: n.ns, key: 'net.ipv4.ip_forward', value: '1' },
        `router ${n.name}: forward packets between its interfaces`,
        [id],
      )
  }

  const swStep = new Map<string, number>()
  for (const s of lab.switches) {
    owner = `switch:${s.name}`
    if (s.kind === 'bridge')
      swStep.set(
        s.name,
        add(
          {
            kind: 'link.add',
            name: s.dev,
            group,
            type: 'bridge',
            up: true,
            ...(s.mcastSnooping === false ? { mcastSnooping: false } : {}),
          },
          grouped(
            `switch ${s.name}: a Linux bridge (STP off: ports forward at once` +
              (s.mcastSnooping === false
                ? '; multicast snooping off: a port that comes or goes no longer makes the bridge revisit every port)'
                : ')'),
          ),
          [],
          { link: s.dev, group },
        ),
      )
    else
      swStep.set(
        s.name,
        add(
          {
            kind: 'ovs.vsctl',
            argv: [
              ...vsctlGlobals(),
              'add-br',
              s.dev,
              '--',
              'set',
              'Bridge',
              s.dev,
              `datapath_type=${o.datapath}`,
            ],
          },
          `switch ${s.name}: an Open vSwitch bridge (${o.datapath} datapath)`,
          [ovsd],
          { ovsBridge: s.dev },
        ),
      )
  }

  // Per namespace: what configures it waits for every link into it (routes need them all).
  const nodeDone = new Map<string | undefined, number[]>()
  const done = (ns: string | undefined, id: number): void => {
    nodeDone.set(ns, [...(nodeDone.get(ns) ?? []), id])
  }
  for (const k of lab.links) {
    owner = `link:${linkKey(k)}`
    // The pair is made from the end in the root namespace (a switch port, or root), so the
    // port can join its Linux bridge in the same request; else from end a.
    const [local, peer] = k.b.ns === undefined && k.a.ns !== undefined ? [k.b, k.a] : [k.a, k.b]
    const master = local.sw?.kind === 'bridge' ? local.sw.dev : undefined
    // A root end is made up at once, unless its link-local mode must be set before the up.
    const upNow = local.ns === undefined && local.linkLocal !== false
    const deps = [
      local.ns ? nsStep.get(local.ns) : undefined,
      peer.ns ? nsStep.get(peer.ns) : undefined,
    ]
    if (local.sw) deps.push(swStep.get(local.sw.name))
    if (peer.sw) deps.push(swStep.get(peer.sw.name))
    const veth = add(
      {
        kind: 'link.add.veth',
        ...nsq(local.ns),
        name: local.dev,
        ...(local.ns === undefined ? { group } : {}),
        peer: peer.dev,
        ...(peer.ns !== local.ns && peer.ns ? { peerNs: peer.ns } : {}),
        ...(master ? { master } : {}),
        ...(upNow ? { up: true } : {}),
        queues: 1,
      },
      (local.ns === undefined ? grouped : (w: string) => w)(
        `a veth pair (a virtual cable), one queue an end: ${describe(local)} <-> ${describe(peer)}`,
      ),
      deps,
      local.ns === undefined
        ? { link: local.dev, ...(peer.ns ? { peerNs: peer.ns } : {}), group }
        : undefined,
    )
    for (const e of [local, peer]) {
      const ds = [veth]
      if (e.sw?.kind === 'ovs') {
        const argv = [...vsctlGlobals(), 'add-port', e.sw.dev, e.dev]
        if (e.tag !== undefined) argv.push('--', 'set', 'Port', e.dev, `tag=${e.tag}`)
        if (e.trunks) argv.push('--', 'set', 'Port', e.dev, `trunks=${e.trunks.join(',')}`)
        const why =
          e.tag !== undefined
            ? `port of ${e.sw.name} in VLAN ${e.tag}: frames enter untagged, leave only to VLAN ${e.tag}`
            : e.trunks
              ? `trunk port of ${e.sw.name}: carries VLANs ${e.trunks.join(',')} tagged`
              : `port of ${e.sw.name}`
        ds.push(add({ kind: 'ovs.vsctl', argv }, why, [veth]))
      }
      if (e.mtu !== undefined)
        ds.push(
          add(
            { kind: 'link.set', ...nsq(e.ns), name: e.dev, mtu: e.mtu },
            'the MTU the lab asks for',
            [veth],
          ),
        )
      let before = veth
      if (e.linkLocal === false) {
        before = add(
          { kind: 'link.set', ...nsq(e.ns), name: e.dev, addrgenmode: 'none' },
          'no IPv6 link-local address (linkLocal: false), so no DAD, MLD or router ' +
            'solicitations for a bridge to flood; set before the up, which would make one',
          [veth],
        )
        ds.push(before)
      }
      if (e.ns !== undefined || !upNow || e !== local)
        ds.push(
          add({ kind: 'link.set', ...nsq(e.ns), name: e.dev, up: true }, 'interface up', [before]),
        )
      const other = e === local ? peer : local
      if (other.sw?.kind === 'ovs' && o.datapath === 'netdev' && e.ns !== undefined)
        ds.push(
          add(
            {
              kind: 'ethtool.features',
              ns: e.ns,
              dev: e.dev,
              features: { 'tx-checksum-ip-generic': false },
            },
            "checksums in software: OVS's userspace datapath forwards frames as they are, so " +
              'an offloaded checksum would arrive wrong and TCP would stall',
            [veth],
          ),
        )
      for (const a of e.addrs)
        ds.push(
          add(
            {
              kind: 'addr.add',
              ...nsq(e.ns),
              cidr: a,
              dev: e.dev,
              ...(a.includes(':') ? { nodad: true } : {}),
            },
            `${e.node}'s address on ${e.dev}`,
            [veth],
          ),
        )
      if (e.rate !== undefined)
        ds.push(
          add(
            {
              kind: 'tc.qdisc.tbf',
              ...nsq(e.ns),
              dev: e.dev,
              rate: e.rate,
              burst: tbfBurst(e.rate),
              latency: 50,
            },
            `rate limit: a token bucket lets ${e.rate / 1e6} Mbit/s out of ${e.dev}`,
            [veth],
          ),
        )
      for (const d of ds) done(e.ns, d)
    }
  }

  for (const n of lab.nodes) {
    owner = `node:${n.name}`
    const before = [...(nodeDone.get(n.ns) ?? []), n.ns ? nsStep.get(n.ns) : undefined]
    for (const r of n.routes)
      add(
        {
          kind: 'route.add',
          ...nsq(n.ns),
          dst: r.to,
          ...(r.via ? { via: r.via } : {}),
          ...(r.dev ? { dev: r.dev } : {}),
        },
        r.to === 'default'
          ? `${n.name}: everything not on a local subnet goes via ${r.via ?? r.dev}`
          : `${n.name}: ${r.to} is reached via ${r.via ?? r.dev}`,
        before,
      )
    if (n.nat.length && n.ns)
      add(
        { kind: 'nft', ns: n.ns, argv: ['-f', '-'], stdin: natRuleset('nsdn', n.nat) },
        `${n.name}: masquerade what leaves ${n.nat.join(', ')} (source NAT to its own address)`,
        before,
      )
    if (n.nat.length && !n.ns && lab.subnets.length) {
      // The host's own forwarding and a table of the lab's: the uplinks themselves stay as they are.
      const fwd = add(
        { kind: 'sysctl.set', key: 'net.ipv4.ip_forward', value: '1' },
        'the host forwards between the lab and its uplink (the value before is kept, and restored)',
        before,
        { sysctl: 'net.ipv4.ip_forward' },
      )
      const table = `nsdn-${lab.name}`
      add(
        { kind: 'nft', argv: ['-f', '-'], stdin: natRuleset(table, n.nat, lab.subnets) },
        `masquerade the lab's subnets out of the uplink ${n.nat.join(', ')} (table ${table}, the lab's own)`,
        [fwd],
        { nftTable: table },
      )
    }
  }
  return steps
}

/** Where an end is, for a learner. */
function describe(e: End): string {
  return e.sw ? `${e.sw.name} port ${e.dev}` : `${e.node} ${e.dev}`
}

/** The private OVS's database, as every ovs-vsctl of the lab names it. */
export function vsctlGlobals(): string[] {
  return [`--db=unix:${ovsRunDir()}/db.sock`, '--timeout=5']
}

/**
 * An nft table of the lab's own (in a router's namespace, or the root one): masquerade what
 * leaves `devs` (from `from` only, when given: the host's own traffic is left alone).
 */
export function natRuleset(table: string, devs: string[], from: string[] = []): string {
  const src = from.length ? `ip saddr { ${from.join(', ')} } ` : ''
  return [
    `table ip ${table} {`,
    '  chain postrouting {',
    '    type nat hook postrouting priority srcnat; policy accept;',
    ...devs.map((d) => `    ${src}oifname "${d}" masquerade`),
    '  }',
    '}',
    '',
  ].join('\n')
}
