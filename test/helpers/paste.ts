/**
 * The teaching promise as a test helper: what `--explain` prints, pasted into a fresh root
 * shell, builds the same state as nsdn. `snapshot()` reads a learner's whole state with the
 * tools a learner has (`ip -j`, `nft -j`, `tc -j`, `ovs-vsctl --format=json`, /proc/sys),
 * never with nsdn's own code; `runPasted()` runs printed commands as a root shell would;
 * `diffStates()` says in words where two states differ. The API is fixed (other branches use
 * it): add to it, don't change it.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import { type RunOptions, ok } from './cli.js'

/** One link as a learner's state has it: nothing that differs between two equal builds. */
export interface LinkState {
  name: string
  /** `ip -d link`'s info_kind ("veth", "bridge", "tun", ...); "" for a device without one. */
  kind: string
  /** The stable flags: UP, PROMISC, NOARP, POINTOPOINT (carrier flags come and go). */
  flags: string[]
  mtu: number
  master?: string
  /** Only where someone set it (`ip link set ... address`): other MACs are random. */
  mac?: string
  /** A veth's peer: `IFNAME` in the same namespace, `NS/IFNAME` in another ("host/x" for ours). */
  peer?: string
  /** Bridge port options a driver sets. */
  hairpin?: boolean
  /** A bridge's VLAN filtering, a vlan device's id. */
  vlanFiltering?: boolean
  vlanId?: number
  /** A bridge without multicast snooping (`mcast_snooping 0`). */
  mcastSnooping?: false
  /** IPv6 address generation when not the kernel's default (eui64): `none`, ... */
  addrgenmode?: string
  /** The device group, where not the default (a lab's devices in the root namespace). */
  group?: string
}

/** The state of one network namespace. */
export interface NsState {
  links: LinkState[]
  /** `DEV ADDRESS/LEN scope S [nodad] [noprefixroute]`, sorted. */
  addrs: string[]
  /** `[table T ][TYPE ]DST [via GW] [dev DEV] [proto P] [scope S] [src A] [metric M]`, sorted. */
  routes: string[]
  /** The sysctls nsdn sets: forwarding and proxy_arp (per device too), by sysctl name. */
  sysctls: Record<string, string>
  /** `nft -j list ruleset` without handles and metainfo. */
  nft: unknown[]
  /** `DEV KIND parent P [options JSON]`, sorted. */
  qdiscs: string[]
}

export interface OvsPortState {
  name: string
  tag?: number
  trunks: number[]
  vlanMode?: string
  /** The interface type ("" for a system device, "internal", ...). */
  type: string
}

export interface OvsBridgeState {
  name: string
  datapathType: string
  externalIds: Record<string, string>
  ports: OvsPortState[]
}

/** Namespaces by name; the host (the namespace the test runs in) is `host`. */
export interface HostState {
  netns: Record<string, NsState>
  /** OVS bridges, when a private (or the given) OVS database answers; else undefined. */
  ovs?: OvsBridgeState[]
}

/** The host's key in {@link HostState.netns}. */
export const HOST = 'host'

/** The private OVS's database, where nsdn starts it (src/ovs/daemon.ts). */
const PRIVATE_OVS_DB = 'unix:/run/nsdn/ovs/db.sock'

const ROOT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'

function run(argv: string[], ns?: string): string {
  const full = ns ? ['ip', 'netns', 'exec', ns, ...argv] : argv
  return execFileSync(full[0]!, full.slice(1), {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  })
}

function json<T>(argv: string[], ns?: string): T {
  const out = run(argv, ns).trim()
  return (out ? JSON.parse(out) : []) as T
}

const ipArgs = (ns: string | undefined, args: string[]): string[] => [
  'ip',
  ...(ns ? ['-n', ns] : []),
  '-j',
  ...args,
]

interface IpLinkJ {
  ifindex: number
  ifname: string
  flags: string[]
  mtu: number
  master?: string
  address?: string
  link_index?: number
  link_netnsid?: number
  inet6_addr_gen_mode?: string
  group?: string
  linkinfo?: {
    info_kind?: string
    info_data?: { vlan_filtering?: number; id?: number; mcast_snooping?: number }
    info_slave_data?: { hairpin?: boolean }
  }
}

const STABLE_FLAGS = new Set(['UP', 'PROMISC', 'NOARP', 'POINTOPOINT'])

/** addr_assign_type 3 (NET_ADDR_SET): someone set the MAC; per device, from sysfs. */
const SYS_SCRIPT = [
  'for d in /sys/class/net/*; do echo "mac ${d##*/} $(cat "$d/addr_assign_type" 2>/dev/null)"; done',
  'for f in /proc/sys/net/ipv4/ip_forward /proc/sys/net/ipv4/conf/*/forwarding' +
    ' /proc/sys/net/ipv4/conf/*/proxy_arp /proc/sys/net/ipv6/conf/*/forwarding' +
    ' /proc/sys/net/ipv6/conf/*/proxy_ndp; do echo "sysctl $f $(cat "$f")"; done',
].join('\n')

/** Where every namespace's `ip -j netns list-id` says its nsids lead (no name: the host). */
function nsidNames(ns: string | undefined): Map<number, string> {
  const ids = json<{ nsid: number; name?: string }[]>(ipArgs(ns, ['netns', 'list-id']))
  return new Map(ids.map((i) => [i.nsid, i.name ?? HOST]))
}

function readNs(ns: string | undefined, o: { linkLocal: boolean }, all: Map<string, IpLinkJ[]>) {
  const key = ns ?? HOST
  const raw = all.get(key) ?? []
  const sys = run(['sh', '-c', SYS_SCRIPT], ns).split('\n')
  const macSet = new Set(sys.flatMap((l) => /^mac (\S+) 3$/.exec(l)?.[1] ?? []))
  const sysctls: Record<string, string> = {}
  for (const l of sys) {
    const m = /^sysctl \/proc\/sys\/(\S+) (\S*)$/.exec(l)
    if (m) sysctls[m[1]!.replace(/\//g, '.')] = m[2]!
  }
  let ids: Map<number, string> | undefined
  const links = raw.map((l): LinkState => {
    const info = l.linkinfo
    const s: LinkState = {
      name: l.ifname,
      kind: info?.info_kind ?? '',
      flags: l.flags.filter((f) => STABLE_FLAGS.has(f)).sort(),
      mtu: l.mtu,
    }
    if (l.master) s.master = l.master
    // OVS sets a random MAC on the tap devices of its userspace bridges: not a learner's step.
    if (macSet.has(l.ifname) && l.address && s.kind !== 'tun') s.mac = l.address
    if (info?.info_kind === 'veth' && l.link_index !== undefined) {
      let peerNs = key
      if (l.link_netnsid !== undefined) {
        ids ??= nsidNames(ns)
        peerNs = ids.get(l.link_netnsid) ?? '?'
      }
      const p = all.get(peerNs)?.find((x) => x.ifindex === l.link_index)
      const name = p?.ifname ?? `#${l.link_index}`
      s.peer = peerNs === key ? name : `${peerNs}/${name}`
    }
    if (info?.info_slave_data?.hairpin) s.hairpin = true
    if (info?.info_data?.vlan_filtering) s.vlanFiltering = true
    if (info?.info_kind === 'vlan' && info.info_data?.id !== undefined) s.vlanId = info.info_data.id
    if (info?.info_data?.mcast_snooping === 0) s.mcastSnooping = false
    if (l.inet6_addr_gen_mode && l.inet6_addr_gen_mode !== 'eui64')
      s.addrgenmode = l.inet6_addr_gen_mode
    if (l.group !== undefined && l.group !== 'default') s.group = l.group
    return s
  })
  links.sort((a, b) => a.name.localeCompare(b.name))

  // The kernel's own link-local addresses derive from MACs (random, and a bridge's changes with
  // its ports); it never marks them nodad, which one set by hand for immediate use carries.
  const kernelLinkLocal = (a: { local: string; scope: string; nodad?: boolean }): boolean =>
    a.scope === 'link' && a.local.startsWith('fe80:') && !a.nodad
  const addrs = json<
    {
      ifname: string
      addr_info: {
        local: string
        address?: string
        prefixlen: number
        scope: string
        nodad?: boolean
        noprefixroute?: boolean
      }[]
    }[]
  >(ipArgs(ns, ['addr', 'show']))
    .flatMap((l) =>
      l.addr_info
        .filter((a) => o.linkLocal || !kernelLinkLocal(a))
        .map(
          (a) =>
            `${l.ifname} ${a.local}${a.address && a.address !== a.local ? ` peer ${a.address}` : ''}` +
            `/${a.prefixlen} scope ${a.scope}${a.nodad ? ' nodad' : ''}` +
            `${a.noprefixroute ? ' noprefixroute' : ''}`,
        ),
    )
    .sort()

  const routes = (['-4', '-6'] as const)
    .flatMap((f) =>
      json<
        {
          type?: string
          dst: string
          gateway?: string
          dev?: string
          protocol?: string
          scope?: string
          prefsrc?: string
          metric?: number
          table?: string
          flags?: string[]
        }[]
      >(ipArgs(ns, [f, 'route', 'show', 'table', 'all'])).filter(
        (r) =>
          r.table !== 'local' &&
          (o.linkLocal || !(r.dst === 'fe80::/64' && r.protocol === 'kernel')),
      ),
    )
    .map(
      (r) =>
        `${r.table && r.table !== 'main' ? `table ${r.table} ` : ''}` +
        `${r.type && r.type !== 'unicast' ? `${r.type} ` : ''}${r.dst}` +
        `${r.gateway ? ` via ${r.gateway}` : ''}${r.dev ? ` dev ${r.dev}` : ''}` +
        `${r.protocol ? ` proto ${r.protocol}` : ''}${r.scope ? ` scope ${r.scope}` : ''}` +
        `${r.prefsrc ? ` src ${r.prefsrc}` : ''}${r.metric !== undefined ? ` metric ${r.metric}` : ''}` +
        `${r.flags?.includes('onlink') ? ' onlink' : ''}`,
    )
    .sort()

  const nft = (
    json<{ nftables?: Record<string, unknown>[] }>(['nft', '-j', 'list', 'ruleset'], ns).nftables ??
    []
  )
    .filter((i) => !('metainfo' in i))
    .map(stripHandles)

  const qdiscs = json<
    { dev?: string; kind: string; parent?: string; root?: boolean; options?: unknown }[]
  >(['tc', '-j', 'qdisc', 'show'], ns)
    .map(
      (q) =>
        `${q.dev ?? ''} ${q.kind} ${q.root ? 'root' : `parent ${q.parent ?? '?'}`}` +
        `${q.options && Object.keys(q.options).length ? ` ${JSON.stringify(q.options)}` : ''}`,
    )
    .sort()

  return { links, addrs, routes, sysctls, nft, qdiscs }
}

/** nft's JSON without the `handle` numbers, which differ between two equal rulesets. */
function stripHandles(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(stripHandles)
  if (v && typeof v === 'object')
    return Object.fromEntries(
      Object.entries(v)
        .filter(([k]) => k !== 'handle')
        .map(([k, x]) => [k, stripHandles(x)]),
    )
  return v
}

/** The named namespaces, as `ip netns list` sees them. */
function netnsList(): string[] {
  return json<{ name: string }[]>(['ip', '-j', 'netns', 'list'])
    .map((n) => n.name)
    .sort()
}

type OvsRow = Record<string, unknown>

/** An OVSDB set or map column as JSON values: `["set",[...]]`, `["map",[[k,v]...]]`, an atom. */
const ovsSet = (v: unknown): unknown[] =>
  Array.isArray(v) && v[0] === 'set' ? (v[1] as unknown[]) : v === undefined ? [] : [v]
const ovsUuid = (v: unknown): string => (Array.isArray(v) && v[0] === 'uuid' ? String(v[1]) : '')
const ovsMap = (v: unknown): Record<string, string> =>
  Array.isArray(v) && v[0] === 'map'
    ? Object.fromEntries((v[1] as [string, string][]).map(([k, x]) => [k, String(x)]))
    : {}

function ovsTable(db: string, table: string, columns: string[]): OvsRow[] {
  const t = JSON.parse(
    run([
      'ovs-vsctl',
      `--db=${db}`,
      '--timeout=5',
      '--format=json',
      `--columns=${columns.join(',')}`,
      'list',
      table,
    ]),
  ) as { headings: string[]; data: unknown[][] }
  return t.data.map((r) => Object.fromEntries(t.headings.map((h, i) => [h, r[i]])))
}

function readOvs(db: string): OvsBridgeState[] {
  const ifaces = new Map(
    ovsTable(db, 'Interface', ['_uuid', 'type']).map((r) => [ovsUuid(r._uuid), String(r.type)]),
  )
  const ports = new Map(
    ovsTable(db, 'Port', ['_uuid', 'name', 'tag', 'trunks', 'vlan_mode', 'interfaces']).map(
      (r): [string, OvsPortState] => {
        const tag = ovsSet(r.tag)[0]
        const mode = ovsSet(r.vlan_mode)[0]
        const p: OvsPortState = {
          name: String(r.name),
          trunks: ovsSet(r.trunks)
            .map(Number)
            .sort((a, b) => a - b),
          type: ovsSet(r.interfaces)
            .map((u) => ifaces.get(ovsUuid(u)) ?? '?')
            .sort()
            .join(','),
        }
        if (typeof tag === 'number') p.tag = tag
        if (typeof mode === 'string') p.vlanMode = mode
        return [ovsUuid(r._uuid), p]
      },
    ),
  )
  return ovsTable(db, 'Bridge', ['name', 'datapath_type', 'external_ids', 'ports'])
    .map((r) => ({
      name: String(r.name),
      datapathType: String(r.datapath_type),
      externalIds: ovsMap(r.external_ids),
      ports: ovsSet(r.ports)
        .map((u) => ports.get(ovsUuid(u)))
        .filter((p): p is OvsPortState => p !== undefined)
        .sort((a, b) => a.name.localeCompare(b.name)),
    }))
    .sort((a, b) => a.name.localeCompare(b.name))
}

/** Whether an OVS database answers at `db` (a unix: socket path that exists). */
function ovsAnswers(db: string): boolean {
  const m = /^unix:(.*)$/.exec(db)
  if (m && !fs.existsSync(m[1]!)) return false
  return (
    spawnSync('ovs-vsctl', [`--db=${db}`, '--timeout=2', 'show'], { stdio: 'ignore' }).status === 0
  )
}

/**
 * Everything a learner's state is made of, in this (sandboxed) host and every named netns.
 * `ovsDb` defaults to the private OVS's socket; `linkLocal` keeps the kernel's own fe80::/64
 * addresses and fe80::/64 routes (left out by default: they come with every link that goes up,
 * from MACs that are random). A link-local address set with nodad stays.
 */
export function snapshot(opts: { ovsDb?: string; linkLocal?: boolean } = {}): HostState {
  const names = netnsList()
  const all = new Map<string, IpLinkJ[]>()
  for (const ns of [undefined, ...names])
    all.set(ns ?? HOST, json<IpLinkJ[]>(ipArgs(ns, ['-d', 'link', 'show'])))
  const o = { linkLocal: opts.linkLocal ?? false }
  const netns: Record<string, NsState> = {}
  for (const ns of [undefined, ...names]) netns[ns ?? HOST] = readNs(ns, o, all)
  const db = opts.ovsDb ?? PRIVATE_OVS_DB
  return { netns, ...(ovsAnswers(db) ? { ovs: readOvs(db) } : {}) }
}

/**
 * Run a script as pasted into a root shell: `bash -e` with the text on stdin, in this process's
 * namespaces, with a root shell's PATH and no other environment but HOME and `env`. Throws with
 * the failing line and stderr.
 */
export function runPasted(
  script: string,
  opts: { env?: Record<string, string> } = {},
): { stdout: string; stderr: string } {
  // On the script's first line, so that $LINENO is the script's own line number.
  const trap = `trap 'echo "paste: line $LINENO failed: exit $?" >&2' ERR; `
  const r = spawnSync('bash', ['-e'], {
    input: trap + script,
    encoding: 'utf8',
    env: { PATH: ROOT_PATH, HOME: '/root', LANG: 'C.UTF-8', ...opts.env },
    timeout: 120_000,
  })
  if (r.status === 0) return { stdout: r.stdout, stderr: r.stderr }
  const m = /paste: line (\d+) failed/.exec(r.stderr)
  const line = m ? script.split('\n')[Number(m[1]) - 1] : undefined
  throw new Error(
    `pasted script failed${line !== undefined ? ` at line ${m![1]}: ${line}` : ''}` +
      ` (status ${r.status ?? r.signal ?? r.error?.message})\n${r.stderr}`,
  )
}

/**
 * The printed commands in nsdn's --explain stderr: pino's JSON log lines and the CLI's error
 * lines go; comments, commands and heredoc bodies (`nft -f - <<'EOF'` ... `EOF`) stay.
 */
export function explainScript(stderr: string): string {
  const out: string[] = []
  let until: string | undefined
  for (const line of stderr.split('\n')) {
    if (until !== undefined) {
      out.push(line)
      if (line === until) until = undefined
      continue
    }
    if (/^\{"level":/.test(line)) continue
    if (/^nsdn: /.test(line) || /^ {2}(hint|\||Caused by|equivalent)/.test(line)) continue
    const here = /<<-?\s*'?"?([A-Za-z_]+)'?"?\s*$/.exec(line)
    if (here) until = here[1]
    out.push(line)
  }
  return out.join('\n').trim() + '\n'
}

/** The script `nsdn --explain ARGS...` prints; the command must succeed. */
export function explained(args: string[], o?: RunOptions): string {
  return explainScript(ok(['--explain', ...args], o).stderr)
}

/** Human-readable differences ("h1: link eth0: mtu 1500 != 9000"); [] when equal. */
export function diffStates(a: HostState, b: HostState): string[] {
  const d: string[] = []
  const same = (x: unknown, y: unknown): boolean => JSON.stringify(x) === JSON.stringify(y)
  const lists = (where: string, x: string[], y: string[]): void => {
    for (const v of x) if (!y.includes(v)) d.push(`${where}: only in the first: ${v}`)
    for (const v of y) if (!x.includes(v)) d.push(`${where}: only in the second: ${v}`)
  }
  const keyed = <T>(
    where: string,
    x: T[],
    y: T[],
    key: (t: T) => string,
    cmp: (p: string, t: T, u: T) => void,
  ): void => {
    const ym = new Map(y.map((t) => [key(t), t]))
    const xm = new Map(x.map((t) => [key(t), t]))
    for (const [k, t] of xm) {
      const u = ym.get(k)
      if (u === undefined) d.push(`${where} ${k}: only in the first`)
      else cmp(`${where} ${k}`, t, u)
    }
    for (const k of ym.keys()) if (!xm.has(k)) d.push(`${where} ${k}: only in the second`)
  }
  const fields = <T extends object>(where: string, t: T, u: T): void => {
    const keys = new Set([...Object.keys(t), ...Object.keys(u)])
    for (const k of [...keys].sort()) {
      const v = (t as Record<string, unknown>)[k]
      const w = (u as Record<string, unknown>)[k]
      if (!same(v, w)) d.push(`${where}: ${k} ${JSON.stringify(v)} != ${JSON.stringify(w)}`)
    }
  }
  keyed(
    'netns',
    Object.entries(a.netns),
    Object.entries(b.netns),
    ([k]) => k,
    (where, [, x], [, y]) => {
      keyed(`${where}: link`, x.links, y.links, (l) => l.name, fields)
      lists(`${where}: addr`, x.addrs, y.addrs)
      lists(`${where}: route`, x.routes, y.routes)
      fields(`${where}: sysctl`, x.sysctls, y.sysctls)
      lists(
        `${where}: nft`,
        x.nft.map((i) => JSON.stringify(i)),
        y.nft.map((i) => JSON.stringify(i)),
      )
      if (!same(x.nft, y.nft) && d.every((l) => !l.startsWith(`${where}: nft`)))
        d.push(`${where}: nft: same items in another order`)
      lists(`${where}: qdisc`, x.qdiscs, y.qdiscs)
    },
  )
  if (a.ovs === undefined || b.ovs === undefined) {
    if (a.ovs !== b.ovs) d.push(`ovs: ${a.ovs ? 'only the first' : 'only the second'} has an OVS`)
  } else
    keyed(
      'ovs bridge',
      a.ovs,
      b.ovs,
      (br) => br.name,
      (where, x, y) => {
        fields(
          where,
          { datapathType: x.datapathType, externalIds: x.externalIds },
          {
            datapathType: y.datapathType,
            externalIds: y.externalIds,
          },
        )
        keyed(`${where}: port`, x.ports, y.ports, (p) => p.name, fields)
      },
    )
  return d
}
