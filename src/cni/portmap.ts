/**
 * `nsdn-portmap`: the reference portmap's `portMappings` capability with nftables, chained
 * after a plugin that gave the container its addresses. Each mapping becomes a DNAT rule for
 * traffic arriving from outside (prerouting) and for traffic the host itself sends to one of
 * its own addresses (output), for each address family the container has (IPv4, IPv6).
 *
 * With `snat` (the default, as the reference's), two kinds of connection are masqueraded on
 * the way out (postrouting), as the reference does: hairpin, a container reaching its own
 * published port through a host address (else it would see its own address as the peer and
 * answer itself), and IPv4 from localhost (127.0.0.1 may leave through the container's host
 * interface only with `route_localnet` on it, which ADD turns on; IPv6 has no equivalent).
 *
 * Every attachment has its own base chains in `table inet nsdn-portmap`, one per hook, named
 * after a hash of container id and interface (`pmXXXXXXXX-prerouting`, ...), so DEL removes
 * them by name (what --explain prints pastes on any host) and GC finds them by the
 * attachment's tag, a comment on each rule. CHECK looks only for the families the container
 * has: an IPv4-only container passes.
 * @module
 */
import fs from 'node:fs'
import { isIP } from 'node:net'
import type { CniResult } from '../drivers/api.js'
import { type NftRule, nftBatch, nftTableRules, nftTag } from '../drivers/nft.js'
import { hostVethName } from '../drivers/veth.js'
import { ConfigError, ExecError, NsdnError } from '../errors.js'
import { NetNs } from '../netns/netns.js'
import { explainWhy } from '../op.js'
import { sysctlSet } from '../sysctl.js'
import { type CniPlugin, type Invocation, validAttachments } from './skel.js'

const TABLE = 'nsdn-portmap'
/** The hooks an attachment has a base chain on, with their nat priorities. */
const HOOKS = { prerouting: '-100', output: '-100', postrouting: '100' } as const
type Hook = keyof typeof HOOKS
const DNAT_HOOKS = ['prerouting', 'output'] as const
/** An attachment's chain: pm + 8 hex of its hash, the hook. */
const OUR_CHAIN = /^pm[0-9a-f]{8}-(prerouting|output|postrouting)$/

export interface PortMapping {
  hostPort: number
  containerPort: number
  protocol: 'tcp' | 'udp' | 'sctp'
  hostIP?: string
}

function port(v: unknown, where: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 65535)
    throw new ConfigError(`must be a port from 1 to 65535, got ${JSON.stringify(v)}`, where)
  return v
}

/** runtimeConfig.portMappings, checked field by field. */
export function parseMappings(inv: Invocation): PortMapping[] {
  const rc = inv.conf.runtimeConfig as { portMappings?: unknown } | undefined
  const list = rc?.portMappings ?? []
  if (!Array.isArray(list)) throw new ConfigError('must be a list', 'runtimeConfig.portMappings')
  return list.map((raw: Record<string, unknown>, i) => {
    const at = `runtimeConfig.portMappings[${i}]`
    const protocol = (raw.protocol ?? 'tcp') as string
    if (!['tcp', 'udp', 'sctp'].includes(protocol))
      throw new ConfigError(`unknown protocol ${JSON.stringify(protocol)}`, `${at}.protocol`, {
        hint: 'tcp, udp or sctp',
      })
    const hostIP = raw.hostIP === '' ? undefined : raw.hostIP
    if (hostIP !== undefined && (typeof hostIP !== 'string' || !isIP(hostIP)))
      throw new ConfigError(`not an IP address: ${JSON.stringify(hostIP)}`, `${at}.hostIP`)
    return {
      hostPort: port(raw.hostPort, `${at}.hostPort`),
      containerPort: port(raw.containerPort, `${at}.containerPort`),
      protocol: protocol as PortMapping['protocol'],
      ...(hostIP !== undefined ? { hostIP } : {}),
    }
  })
}

/** The container's own addresses in the previous Result (without prefix length). */
function containerIps(prev: CniResult): string[] {
  const ifs = prev.interfaces ?? []
  return (prev.ips ?? [])
    .filter((ip) => ip.interface === undefined || ifs[ip.interface]?.sandbox !== undefined)
    .map((ip) => ip.address.split('/')[0] ?? '')
}

const familyOf = (ip: string): 4 | 6 => (isIP(ip) === 6 ? 6 : 4)

/** The attachment's chain on a hook. */
const chainOf = (inv: Invocation, hook: Hook): string =>
  `${hostVethName(inv.containerId, inv.ifname, 'pm')}-${hook}`

/** `snat` of the config: true unless it says false. */
function snatOf(inv: Invocation): boolean {
  const v = inv.conf.snat
  if (v === undefined) return true
  if (typeof v !== 'boolean')
    throw new ConfigError(`must be true or false, got ${JSON.stringify(v)}`, 'snat')
  return v
}

/** Each DNAT rule to add: hook, mapping, container address. */
function plan(maps: PortMapping[], ips: string[]): { hook: Hook; m: PortMapping; ip: string }[] {
  return DNAT_HOOKS.flatMap((hook) =>
    maps.flatMap((m) =>
      ips
        .filter((ip) => m.hostIP === undefined || familyOf(m.hostIP) === familyOf(ip))
        .map((ip) => ({ hook, m, ip })),
    ),
  )
}

/**
 * One DNAT rule. Equivalent: `nft add rule inet nsdn-portmap CHAIN ip daddr HOSTIP
 * tcp dport 8080 dnat ip to 10.1.0.2:80 comment TAG` (or `fib daddr type local` without HOSTIP).
 */
function dnatRule(m: PortMapping, ip: string): string[] {
  const f = familyOf(ip) === 4 ? 'ip' : 'ip6'
  const nfproto = familyOf(ip) === 4 ? 'ipv4' : 'ipv6'
  const dst = m.hostIP
    ? [f, 'daddr', m.hostIP]
    : ['meta', 'nfproto', nfproto, 'fib', 'daddr', 'type', 'local']
  const to = f === 'ip' ? `${ip}:${m.containerPort}` : `[${ip}]:${m.containerPort}`
  return [...dst, m.protocol, 'dport', String(m.hostPort), 'dnat', f, 'to', to]
}

/**
 * The masquerade rules of one mapping to a container address, matched after DNAT (the
 * destination is the container's): from the container itself (hairpin), and for IPv4 from
 * 127.0.0.1.
 */
function snatRules(m: PortMapping, ip: string): string[][] {
  const f = familyOf(ip) === 4 ? 'ip' : 'ip6'
  const to = [f, 'daddr', ip, m.protocol, 'dport', String(m.containerPort)]
  const from = f === 'ip' ? [ip, '127.0.0.1'] : [ip]
  return from.map((src) => ['ct', 'status', 'dnat', f, 'saddr', src, ...to, 'masquerade'])
}

/** The commands of an ADD: the attachment's chains, emptied, and their rules. */
function addCommands(
  inv: Invocation,
  maps: PortMapping[],
  ips: string[],
  snat: boolean,
): string[][] {
  const tag = nftTag(inv.containerId, inv.ifname)
  const dnat = plan(maps, ips)
  const masq = snat
    ? maps.flatMap((m) =>
        ips
          .filter((ip) => m.hostIP === undefined || familyOf(m.hostIP) === familyOf(ip))
          .flatMap((ip) => snatRules(m, ip)),
      )
    : []
  const rules: [Hook, string[]][] = [
    ...dnat.map((p): [Hook, string[]] => [p.hook, dnatRule(p.m, p.ip)]),
    ...masq.map((r): [Hook, string[]] => ['postrouting', r]),
  ]
  const hooks = (Object.keys(HOOKS) as Hook[]).filter((h) => rules.some(([rh]) => rh === h))
  return [
    ['add', 'table', 'inet', TABLE],
    ...hooks.flatMap((h) => [
      // A repeated ADD replaces the chain's rules rather than doubling them.
      [
        'add',
        'chain',
        'inet',
        TABLE,
        chainOf(inv, h),
        '{',
        'type',
        'nat',
        'hook',
        h,
        'priority',
        HOOKS[h],
        ';',
        '}',
      ],
      ['flush', 'chain', 'inet', TABLE, chainOf(inv, h)],
    ]),
    ...rules.map(([h, r]) => [
      'add',
      'rule',
      'inet',
      TABLE,
      chainOf(inv, h),
      ...r,
      'comment',
      `"${tag}"`,
    ]),
  ]
}

/**
 * 127.0.0.1 may be routed out of the host interfaces that lead to the container (the bridge,
 * the host end of its veth): `sysctl -w net.ipv4.conf.IF.route_localnet=1`, as the reference
 * portmap does. Left on at DEL, as the reference leaves it: other containers may use it.
 */
function routeLocalnet(prev: CniResult): void {
  const names = (prev.interfaces ?? [])
    .filter((i) => i.sandbox === undefined || i.sandbox === '')
    .map((i) => i.name)
    .filter((n) => /^[A-Za-z0-9_-]+$/.test(n) && fs.existsSync(`/proc/sys/net/ipv4/conf/${n}`))
  if (!names.length) return
  explainWhy('localhost may reach the container: 127.0.0.1 may leave through its host interfaces')
  for (const n of names) sysctlSet(NetNs.current(), `net.ipv4.conf.${n}.route_localnet`, '1')
}

async function rules(): Promise<NftRule[]> {
  try {
    return await nftTableRules('inet', TABLE)
  } catch (err) {
    if (err instanceof NsdnError && err.code === 'E_UNAVAILABLE') return []
    throw err
  }
}

/** Delete the chains holding rules `which` picks: `nft delete chain inet nsdn-portmap CHAIN`. */
async function removeChains(which: (r: NftRule) => boolean): Promise<void> {
  const chains = [...new Set((await rules()).filter(which).map((r) => r.chain))].filter((c) =>
    OUR_CHAIN.test(c),
  )
  if (!chains.length) return
  try {
    await nftBatch(chains.map((c) => ['delete', 'chain', 'inet', TABLE, c]))
  } catch (err) {
    // A concurrent DEL removed them first.
    if (!(err instanceof ExecError && /No such file or directory/.test(err.stderr))) throw err
  }
}

function prevOf(inv: Invocation): CniResult {
  if (!inv.prevResult)
    throw new NsdnError(
      'E_CONFIG',
      'nsdn-portmap needs prevResult: chain it after the plugin that adds the interface',
      {
        hint: 'put it after nsdn-bridge, bridge, ptp, ... in a conflist',
      },
    )
  return inv.prevResult
}

/** Does rule r forward mapping m to ip? (nft's JSON of the match and the dnat.) */
function forwards(r: NftRule, m: PortMapping, ip: string): boolean {
  const e = JSON.stringify(r.expr)
  return (
    e.includes(`"field":"dport"}},"right":${m.hostPort}}`) &&
    e.includes(`"addr":"${ip}"`) &&
    e.includes(`"port":${m.containerPort}`)
  )
}

/** Does rule r masquerade hairpin traffic to ip? */
const masquerades = (r: NftRule, ip: string): boolean => {
  const e = JSON.stringify(r.expr)
  return e.includes('"masquerade"') && e.split(`"right":"${ip}"`).length > 2
}

export const portmapPlugin: CniPlugin = {
  async add(inv) {
    const prev = prevOf(inv)
    const maps = parseMappings(inv)
    const snat = snatOf(inv)
    const ips = containerIps(prev)
    if (plan(maps, ips).length) {
      if (snat && ips.some((ip) => familyOf(ip) === 4)) routeLocalnet(prev)
      await nftBatch(addCommands(inv, maps, ips, snat))
    }
    return prev
  },
  async del(inv) {
    const tag = nftTag(inv.containerId, inv.ifname)
    await removeChains((r) => r.comment === tag)
  },
  async check(inv) {
    const prev = prevOf(inv)
    const tag = nftTag(inv.containerId, inv.ifname)
    const mine = (await rules()).filter((r) => r.comment === tag)
    const todo = plan(parseMappings(inv), containerIps(prev))
    const missing = todo
      .filter((p) => !mine.some((r) => r.chain === chainOf(inv, p.hook) && forwards(r, p.m, p.ip)))
      .map((p) => `${p.hook} ${p.m.protocol}/${p.m.hostPort} -> ${p.ip}:${p.m.containerPort}`)
    if (snatOf(inv))
      for (const ip of new Set(todo.map((p) => p.ip)))
        if (!mine.some((r) => r.chain === chainOf(inv, 'postrouting') && masquerades(r, ip)))
          missing.push(`postrouting masquerade of hairpin traffic to ${ip}`)
    if (missing.length)
      throw new NsdnError('E_NOT_FOUND', `port mappings missing: ${missing.join('; ')}`, {
        hint: 'DEL and ADD the attachment again',
      })
  },
  async status() {
    await rules() // nft must answer; E_UNAVAILABLE (50) without it
  },
  async gc(inv) {
    const valid = new Set(
      [...validAttachments(inv)].map((k) => {
        const i = k.lastIndexOf('/')
        return nftTag(k.slice(0, i), k.slice(i + 1))
      }),
    )
    await removeChains((r) => !valid.has(r.comment))
  },
}
