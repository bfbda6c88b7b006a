/**
 * Routes: add, replace, delete, list (default, via, dev, src, metric, table).
 * @module
 */
import type { NetlinkMessage } from 'netlink'
import { ConfigError } from '../errors.js'
import { parseCidr, parseGateway, parseIp, prefixNetwork } from '../validate.js'
import { type LinkRef, linkByName } from './link.js'
import type { Rtnl } from './rtnl.js'
import { decodeAttrs, ipText, u32Of } from './wire/attr.js'
import * as K from './wire/constants.js'
import * as W from './wire/messages.js'

export interface RouteSpec {
  /** A prefix (10.0.0.0/24, fd00::/64) or "default". */
  dst: string
  via?: string
  dev?: LinkRef
  src?: string
  metric?: number
  table?: number
  scope?: 'link' | 'host'
  /** Family of a "default" route without a gateway (4 unless said). */
  family?: 4 | 6
}

export interface Route {
  family: 4 | 6
  /** "default" or a prefix. */
  dst: string
  via: string | undefined
  /** Output interface index. */
  oif: number | undefined
  src: string | undefined
  metric: number | undefined
  table: number
  /** RTPROT_*: 2 kernel, 3 boot (ip route add), 4 static. */
  protocol: number
  scope: number
}

const nsOf = (h: Rtnl): { ns?: string } => (h.nsName ? { ns: h.nsName } : {})

async function routeChange(h: Rtnl, verb: W.RouteVerb, r: RouteSpec): Promise<void> {
  let family: 4 | 6
  let dst: string | undefined
  let dstLen = 0
  if (r.dst === 'default') {
    family = r.via ? parseIp(r.via, 'via').family : (r.family ?? 4)
  } else {
    const c = parseCidr(r.dst, 'route destination')
    const net = prefixNetwork(c)
    // The kernel refuses host bits in a prefix (EINVAL); say which prefix was meant.
    if (net.hostBits)
      throw new ConfigError(`${r.dst} has host bits set`, 'route destination', {
        hint: `did you mean ${net.network}/${c.prefixLen}?`,
      })
    family = c.family
    dst = c.address
    dstLen = c.prefixLen
  }
  if (r.via) parseGateway(r.via, family, r.dst, 'via')
  if (r.src) parseIp(r.src, 'src')
  const l =
    r.dev === undefined ? undefined : typeof r.dev === 'string' ? await linkByName(h, r.dev) : r.dev
  const op = {
    ...nsOf(h),
    dst: r.dst,
    ...(r.via ? { via: r.via } : {}),
    ...(l ? { dev: l.name } : {}),
    ...(r.src ? { src: r.src } : {}),
    ...(r.metric !== undefined ? { metric: r.metric } : {}),
    ...(r.table !== undefined ? { table: r.table } : {}),
    ...(r.scope ? { scope: r.scope } : {}),
    family,
  }
  await h.exec(
    { kind: `route.${verb}`, ...op },
    () =>
      h
        .request(
          W.routeRequest(verb, {
            family,
            ...(dst !== undefined ? { dst } : {}),
            dstLen,
            ...(r.via ? { gateway: r.via } : {}),
            ...(l ? { oifIndex: l.index } : {}),
            ...(r.src ? { prefsrc: r.src } : {}),
            ...(r.metric !== undefined ? { metric: r.metric } : {}),
            ...(r.table !== undefined ? { table: r.table } : {}),
            ...(r.scope ? { scope: r.scope } : {}),
          }),
        )
        .then(() => undefined),
    undefined,
  )
}

/** Equivalent: `ip route add DST [via GW] [dev DEV] [src SRC] [metric M] [table T]`. */
export const routeAdd = (h: Rtnl, r: RouteSpec): Promise<void> => routeChange(h, 'add', r)
/** Equivalent: `ip route replace ...`. */
export const routeReplace = (h: Rtnl, r: RouteSpec): Promise<void> => routeChange(h, 'replace', r)
/** Equivalent: `ip route del ...`. */
export const routeDel = (h: Rtnl, r: RouteSpec): Promise<void> => routeChange(h, 'del', r)

/**
 * Decode an RTM_NEWROUTE / RTM_DELROUTE message; undefined for what `ip route show table all`
 * leaves out: the local table (this host's own addresses) and routes that are not unicast.
 */
export function toRoute(m: NetlinkMessage): Route | undefined {
  // rtmsg, read by hand: family, dst_len, src_len, tos, table, protocol, scope, type, flags
  // (u32); the attributes after its 12 bytes.
  const d = m.data
  const a = decodeAttrs(d.subarray(12))
  const u32 = (t: number): number | undefined => u32Of(a.get(t))
  const table = u32(K.RTA_TABLE) ?? d.readUInt8(4)
  if (table === 255) return undefined
  if (d.readUInt8(7) !== K.RTN_UNICAST) return undefined
  const dstLen = d.readUInt8(1)
  const ip = (t: number): string | undefined => {
    const b = a.get(t)
    return b ? ipText(b) : undefined
  }
  return {
    family: d.readUInt8(0) === K.AF_INET6 ? 6 : 4,
    dst: dstLen === 0 || !a.has(K.RTA_DST) ? 'default' : `${ip(K.RTA_DST)}/${dstLen}`,
    via: ip(K.RTA_GATEWAY),
    oif: u32(K.RTA_OIF),
    src: ip(K.RTA_PREFSRC),
    metric: u32(K.RTA_PRIORITY),
    table,
    protocol: d.readUInt8(5),
    scope: d.readUInt8(6),
  }
}

/** Routes of one family in every table but local. Equivalent: `ip route show table all`. */
export async function routeList(h: Rtnl, family: 4 | 6 = 4): Promise<Route[]> {
  const msgs = await h.exec(
    { kind: 'route.show', ...nsOf(h) },
    () => h.dump(W.getRoutes(family)),
    [],
  )
  const out: Route[] = []
  for (const m of msgs) {
    if (m.type !== K.RTM_NEWROUTE) continue
    const r = toRoute(m)
    if (r) out.push(r)
  }
  return out
}
