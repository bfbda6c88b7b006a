/**
 * The paste test (a minimal version of the shared helper; the `teach` branch owns the full one,
 * same API): what nsdn prints as commands, run in a root shell, must build the state nsdn
 * builds. State is read with iproute2, nft, tc and ovs-vsctl, never with nsdn's own code.
 */
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'

type Json = Record<string, unknown>

export interface NsState {
  links: string[]
  addrs: string[]
  routes: string[]
  sysctls: string[]
  nft: string[]
  qdiscs: string[]
}

export interface HostState {
  ns: Record<string, NsState>
  ovs: string[]
}

const json = (cmd: string, args: string[]): Json[] => {
  const r = spawnSync(cmd, args, { encoding: 'utf8' })
  if (r.status !== 0 || !r.stdout.trim()) return []
  return JSON.parse(r.stdout) as Json[]
}

function inNs(ns: string | undefined, cmd: string, args: string[]): [string, string[]] {
  return ns ? ['ip', ['netns', 'exec', ns, cmd, ...args]] : [cmd, args]
}

function nsState(ns: string | undefined): NsState {
  const ipj = (args: string[]): Json[] => json('ip', [...(ns ? ['-n', ns] : []), '-j', ...args])
  const links = ipj(['-d', 'link', 'show']).map((l) => {
    const info = (l.linkinfo ?? {}) as Json
    const flags = (l.flags as string[]) ?? []
    return [
      l.ifname,
      info.info_kind ?? '-',
      flags.includes('UP') ? 'up' : 'down',
      `master=${String(l.master ?? '-')}`,
      `mtu=${String(l.mtu)}`,
    ].join(' ')
  })
  const addrs = ipj(['addr', 'show']).flatMap((l) =>
    ((l.addr_info as Json[]) ?? [])
      .filter((a) => !String(a.local).startsWith('fe80:'))
      .map((a) => `${String(l.ifname)} ${String(a.local)}/${String(a.prefixlen)}`),
  )
  const routes = [4, 6].flatMap((f) =>
    ipj([`-${f}`, 'route', 'show', 'table', 'all'])
      // The local routes of kernel-made link-local addresses (random, and made when DAD ends).
      .filter((r) => !(r.type === 'local' && String(r.dst).startsWith('fe80:')))
      .map((r) => {
        const { expires: _e, ...rest } = r
        return JSON.stringify(
          Object.fromEntries(Object.entries(rest).sort(([a], [b]) => a.localeCompare(b))),
        )
      }),
  )
  const sysctls = ['net.ipv4.ip_forward', 'net.ipv6.conf.all.forwarding'].map((k) => {
    const [c, a] = inNs(ns, 'sysctl', ['-n', k])
    return `${k}=${spawnSync(c, a, { encoding: 'utf8' }).stdout.trim()}`
  })
  const [nc, na] = inNs(ns, 'nft', ['-j', 'list', 'ruleset'])
  const nftOut = spawnSync(nc, na, { encoding: 'utf8' }).stdout
  const nft = nftOut.trim()
    ? ((JSON.parse(nftOut) as { nftables: Json[] }).nftables ?? [])
        .filter((x) => !('metainfo' in x))
        .map((x) => JSON.stringify(x, (k, v: unknown) => (k === 'handle' ? undefined : v)))
    : []
  const qdiscs = json('tc', [...(ns ? ['-n', ns] : []), '-j', 'qdisc', 'show']).map((q) =>
    [q.dev, q.kind, q.root ? 'root' : String(q.parent ?? ''), JSON.stringify(q.options ?? {})].join(
      ' ',
    ),
  )
  const sort = (x: string[]): string[] => x.sort()
  return {
    links: sort(links),
    addrs: sort(addrs),
    routes: sort(routes),
    sysctls,
    nft: sort(nft),
    qdiscs: sort(qdiscs),
  }
}

function ovsState(db: string | undefined): string[] {
  if (!db) return []
  const list = (table: string): Json[] => {
    const r = spawnSync(
      'ovs-vsctl',
      [`--db=${db}`, '--timeout=5', '--format=json', 'list', table],
      { encoding: 'utf8' },
    )
    if (r.status !== 0) return []
    const t = JSON.parse(r.stdout) as { headings: string[]; data: unknown[][] }
    return t.data.map((row) => Object.fromEntries(t.headings.map((h, i) => [h, row[i]])))
  }
  const uuid = (v: unknown): string => JSON.stringify(v)
  const ports = new Map(list('Port').map((p) => [uuid(p._uuid), p]))
  return list('Bridge')
    .flatMap((b) => {
      const set = b.ports as [string, unknown]
      const refs = set[0] === 'set' ? (set[1] as unknown[]) : [set]
      return [
        `bridge ${String(b.name)} datapath_type=${String(b.datapath_type)}`,
        ...refs.map((r) => {
          const p = ports.get(uuid(r))!
          return `port ${String(b.name)} ${String(p.name)} tag=${JSON.stringify(p.tag)} trunks=${JSON.stringify(p.trunks)}`
        }),
      ]
    })
    .sort()
}

export function snapshot(opts: { ovsDb?: string } = {}): HostState {
  let names: string[] = []
  try {
    names = fs.readdirSync('/run/netns').sort()
  } catch {
    // no named namespaces
  }
  const ns: Record<string, NsState> = { '': nsState(undefined) }
  for (const n of names) ns[n] = nsState(n)
  return { ns, ovs: ovsState(opts.ovsDb) }
}

export function runPasted(
  script: string,
  opts: { env?: Record<string, string> } = {},
): { stdout: string; stderr: string } {
  const r = spawnSync('bash', ['-e'], {
    input: script,
    encoding: 'utf8',
    env: {
      ...process.env,
      PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      ...opts.env,
    },
  })
  if (r.status !== 0) throw new Error(`pasted script failed (${r.status}): ${r.stderr}`)
  return { stdout: r.stdout, stderr: r.stderr }
}

/** Keep comments and commands (heredocs whole); drop nsdn's own progress and log lines. */
export function explainScript(stderr: string): string {
  const out: string[] = []
  let heredoc: string | undefined
  for (const line of stderr.split('\n')) {
    if (heredoc !== undefined) {
      out.push(line)
      if (line === heredoc) heredoc = undefined
      continue
    }
    if (/^(\{|deploy: |lab |nsdn: |\s+hint: )/.test(line) || line.trim() === '') continue
    out.push(line)
    const m = /<<'?(\w+)'?$/.exec(line)
    if (m) heredoc = m[1]
  }
  return out.join('\n') + '\n'
}

export function diffStates(a: HostState, b: HostState): string[] {
  const out: string[] = []
  const cmp = (where: string, x: string[], y: string[]): void => {
    for (const v of x) if (!y.includes(v)) out.push(`${where}: only in first: ${v}`)
    for (const v of y) if (!x.includes(v)) out.push(`${where}: only in second: ${v}`)
  }
  for (const n of new Set([...Object.keys(a.ns), ...Object.keys(b.ns)])) {
    const x = a.ns[n]
    const y = b.ns[n]
    if (!x || !y) {
      out.push(`netns ${n || '(root)'}: only in ${x ? 'first' : 'second'}`)
      continue
    }
    for (const k of Object.keys(x) as (keyof NsState)[]) cmp(`${n || '(root)'} ${k}`, x[k], y[k])
  }
  cmp('ovs', a.ovs, b.ovs)
  return out
}
