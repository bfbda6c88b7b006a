/**
 * Routes: add, replace, delete, list (default, via, dev, src, metric, table).
 * @module
 */
// the rt part only: the package's index loads every family (nl80211, wireguard...)
import * as rt from 'netlink/dist/rt/structs'
import type { NetlinkMessage } from 'netlink'
import { ConfigError } from '../errors.js'
import { parseCidr, parseGateway, parseIp, prefixNetwork } from '../validate.js'
import { type LinkRef, linkByName } from './link.js'
import type { Rtnl } from './rtnl.js'
import { ipText } from './wire/attr.js'
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
  const r = rt.parseRouteMessage(m.data)
  const table = r.attrs.table ?? r.data.table ?? K.RT_TABLE_MAIN
  if (table === 255) return undefined
  const type = typeof r.data.type === 'number' ? r.data.type : undefined
  if (type !== undefined && type !== K.RTN_UNICAST) return undefined
  const dstLen = r.data.dstLen ?? 0
  return {
    family: r.data.family === K.AF_INET6 ? 6 : 4,
    dst: dstLen === 0 || !r.attrs.dst ? 'default' : `${ipText(r.attrs.dst)}/${dstLen}`,
    via: r.attrs.gateway ? ipText(r.attrs.gateway) : undefined,
    oif: r.attrs.oif,
    src: r.attrs.prefsrc ? ipText(r.attrs.prefsrc) : undefined,
    metric: r.attrs.priority,
    table,
    protocol: typeof r.data.protocol === 'number' ? r.data.protocol : 0,
    scope: typeof r.data.scope === 'number' ? r.data.scope : 0,
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
