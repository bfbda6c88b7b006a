/**
 * `nsdn-portmap`: the reference portmap's `portMappings` capability with nftables, chained
 * after a plugin that gave the container its addresses. Each mapping becomes a DNAT rule for
 * traffic arriving from outside (prerouting) and for traffic the host itself sends to one of
 * its own addresses (output), for each address family the container has (IPv4, IPv6), in the
 * table `inet nsdn-portmap`; every rule carries the attachment's tag, so DEL and GC find it.
 * CHECK looks only for the families the container has: an IPv4-only container passes.
 * @module
 */
import { isIP } from 'node:net'
import type { CniResult } from '../drivers/api.js'
import { type NftRule, nftBatch, nftTableRules, nftTag } from '../drivers/nft.js'
import { ConfigError, ExecError, NsdnError } from '../errors.js'
import { type CniPlugin, type Invocation, validAttachments } from './skel.js'

const TABLE = 'nsdn-portmap'
const CHAINS = ['prerouting', 'output'] as const

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

/** Each rule to add: chain, mapping, container address. */
function plan(maps: PortMapping[], ips: string[]): { chain: string; m: PortMapping; ip: string }[] {
  return CHAINS.flatMap((chain) =>
    maps.flatMap((m) =>
      ips
        .filter((ip) => m.hostIP === undefined || familyOf(m.hostIP) === familyOf(ip))
        .map((ip) => ({ chain, m, ip })),
    ),
  )
}

/**
 * One DNAT rule. Equivalent: `nft add rule inet nsdn-portmap prerouting ip daddr HOSTIP
 * tcp dport 8080 dnat ip to 10.1.0.2:80 comment TAG` (or `fib daddr type local` without HOSTIP).
 */
function ruleArgv(chain: string, m: PortMapping, ip: string, tag: string): string[] {
  const f = familyOf(ip) === 4 ? 'ip' : 'ip6'
  const nfproto = familyOf(ip) === 4 ? 'ipv4' : 'ipv6'
  const dst = m.hostIP
    ? [f, 'daddr', m.hostIP]
    : ['meta', 'nfproto', nfproto, 'fib', 'daddr', 'type', 'local']
  const to = f === 'ip' ? `${ip}:${m.containerPort}` : `[${ip}]:${m.containerPort}`
  return [
    'add',
    'rule',
    'inet',
    TABLE,
    chain,
    ...dst,
    m.protocol,
    'dport',
    String(m.hostPort),
    'dnat',
    f,
    'to',
    to,
    'comment',
    `"${tag}"`,
  ]
}

const ensureTable = (): string[][] => [
  ['add', 'table', 'inet', TABLE],
  ...CHAINS.map((c) => [
    'add',
    'chain',
    'inet',
    TABLE,
    c,
    // -100: dstnat, which nft names only on prerouting.
    '{',
    'type',
    'nat',
    'hook',
    c,
    'priority',
    '-100',
    ';',
    '}',
  ]),
]

async function rules(): Promise<NftRule[]> {
  try {
    return await nftTableRules('inet', TABLE)
  } catch (err) {
    if (err instanceof NsdnError && err.code === 'E_UNAVAILABLE') return []
    throw err
  }
}

async function removeRules(which: (r: NftRule) => boolean): Promise<void> {
  const gone = (await rules()).filter(which)
  if (!gone.length) return
  try {
    await nftBatch(
      gone.map((r) => ['delete', 'rule', 'inet', TABLE, r.chain, 'handle', String(r.handle)]),
    )
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

export const portmapPlugin: CniPlugin = {
  async add(inv) {
    const prev = prevOf(inv)
    const maps = parseMappings(inv)
    const todo = plan(maps, containerIps(prev))
    if (todo.length) {
      const tag = nftTag(inv.containerId, inv.ifname)
      await nftBatch([...ensureTable(), ...todo.map((p) => ruleArgv(p.chain, p.m, p.ip, tag))])
    }
    return prev
  },
  async del(inv) {
    const tag = nftTag(inv.containerId, inv.ifname)
    await removeRules((r) => r.comment === tag)
  },
  async check(inv) {
    const prev = prevOf(inv)
    const tag = nftTag(inv.containerId, inv.ifname)
    const mine = (await rules()).filter((r) => r.comment === tag)
    const missing = plan(parseMappings(inv), containerIps(prev)).filter(
      (p) => !mine.some((r) => r.chain === p.chain && forwards(r, p.m, p.ip)),
    )
    if (missing.length)
      throw new NsdnError(
        'E_NOT_FOUND',
        `port mappings missing: ${missing.map((p) => `${p.chain} ${p.m.protocol}/${p.m.hostPort} -> ${p.ip}:${p.m.containerPort}`).join('; ')}`,
        { hint: 'DEL and ADD the attachment again' },
      )
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
    await removeRules((r) => !valid.has(r.comment))
  },
}
