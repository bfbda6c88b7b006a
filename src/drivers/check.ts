/**
 * CHECK for veth drivers: compare what the kernel holds now with the recorded result
 * (ctx.prevResult) and report every difference at once, one line each, so a user sees
 * precisely what changed (a missing interface, a wrong address, a missing route).
 * @module
 */
import { NsdnError, errorMessage, isCode } from '../errors.js'
import { type IpamArgs, type IpamConf, ipamCheck } from '../ipam/index.js'
import { formatAddr, parseAddr } from '../ipam/range.js'
import { addrList } from '../netlink/addr.js'
import { type Link, tryLinkByName } from '../netlink/link.js'
import { type Route, routeList } from '../netlink/route.js'
import { Rtnl } from '../netlink/rtnl.js'
import type { NetNs } from '../netns/netns.js'
import type { AttachContext, CniIpConfig, CniResult, CniRoute } from './api.js'
import { nftRules } from './nft.js'

/** The differences found so far. */
export class Diffs {
  readonly items: string[] = []

  add(what: string): void {
    this.items.push(what)
  }

  /** Throws E_NOT_FOUND listing every difference; returns when there is none. */
  throwIfAny(subject: string): void {
    if (!this.items.length) return
    throw new NsdnError('E_NOT_FOUND', `${subject} differs: ${this.items.join('; ')}`, {
      details: this.items.join('\n'),
      hint: 'del and add the attachment again to restore it',
    })
  }
}

/** The recorded result; CHECK without one has nothing to compare with. */
export function recorded(ctx: AttachContext): CniResult {
  if (!ctx.prevResult)
    throw new NsdnError('E_CONFIG', 'check needs the result of add (prevResult)', {
      hint: 'pass the result add returned, as a CNI runtime does',
    })
  return ctx.prevResult
}

/** "10.1.0.10/24" in canonical text (IPv6 compressed as the kernel prints it). */
export function canonicalCidr(cidr: string): string {
  const [a = '', len] = cidr.split('/')
  const text = formatAddr(parseAddr(a, 'address'))
  return len === undefined ? text : `${text}/${len}`
}

/** The addresses and routes the recorded result gives the container interface. */
export function containerPart(
  prev: CniResult,
  ifname: string,
): { ips: CniIpConfig[]; routes: CniRoute[] } {
  const ifaces = prev.interfaces ?? []
  const ips = (prev.ips ?? []).filter((ip) => {
    const i = ip.interface === undefined ? undefined : ifaces[ip.interface]
    return !i || (i.name === ifname && i.sandbox !== undefined)
  })
  return { ips, routes: prev.routes ?? [] }
}

/** The kernel's route for dst ("0.0.0.0/0" is "default") via gw, if it has one. */
export function findRoute(routes: Route[], dst: string, gw: string | undefined): Route | undefined {
  const d = dst === '0.0.0.0/0' || dst === '::/0' ? 'default' : canonicalCidr(dst)
  const via = gw === undefined ? undefined : canonicalCidr(gw)
  return routes.find((r) => r.dst === d && (via === undefined || r.via === via))
}

const describeRoute = (dst: string, gw: string | undefined): string =>
  `route ${dst}${gw ? ` via ${gw}` : ''}`

/**
 * The container side: interface ctx.ifname exists and is up, and has the recorded MAC, each
 * recorded address and each recorded route (plus `extraRoutes`, e.g. a driver's own).
 * Returns the interface when it exists.
 */
export async function checkContainer(
  ctx: AttachContext & { netns: NetNs },
  prev: CniResult,
  diffs: Diffs,
  extraRoutes: CniRoute[] = [],
): Promise<Link | undefined> {
  const h = Rtnl.for(ctx.netns)
  const where = `in ${ctx.netns}`
  const link = await tryLinkByName(h, ctx.ifname)
  if (!link) {
    diffs.add(`interface "${ctx.ifname}" is missing ${where}`)
    return undefined
  }
  if (!link.up) diffs.add(`interface "${ctx.ifname}" ${where} is down`)
  const rec = (prev.interfaces ?? []).find((i) => i.name === ctx.ifname && i.sandbox !== undefined)
  if (rec?.mac && link.address && rec.mac.toLowerCase() !== link.address)
    diffs.add(`interface "${ctx.ifname}" ${where} has MAC ${link.address}, not ${rec.mac}`)
  const { ips, routes } = containerPart(prev, ctx.ifname)
  const have = (await addrList(h, link)).filter((a) => a.scope !== 253).map((a) => a.cidr)
  for (const ip of ips)
    if (!have.includes(canonicalCidr(ip.address)))
      diffs.add(
        `address ${ip.address} is missing on "${ctx.ifname}" ${where} ` +
          `(it has ${have.join(', ') || 'none'})`,
      )
  const kernel = [...(await routeList(h, 4)), ...(await routeList(h, 6))]
  for (const r of [...extraRoutes, ...routes])
    if (!findRoute(kernel, r.dst, r.gw))
      diffs.add(`${describeRoute(r.dst, r.gw)} is missing ${where}`)
  return link
}

const bare = (cidr: string): string => canonicalCidr(cidr.split('/')[0] ?? '')

/** IPAM still holds a lease for each recorded address (compared without prefix lengths). */
export async function checkIpam(
  conf: IpamConf,
  args: IpamArgs,
  ips: CniIpConfig[],
  diffs: Diffs,
): Promise<void> {
  let held: string[]
  try {
    held = (await ipamCheck(conf, args)).ips.map((ip) => bare(ip.address))
  } catch (err) {
    if (!isCode(err, 'E_NOT_FOUND')) throw err
    diffs.add(`IPAM: ${errorMessage(err)}`)
    return
  }
  for (const ip of ips)
    if (!held.includes(bare(ip.address))) diffs.add(`IPAM holds no lease for ${ip.address}`)
}

/** A masquerade rule tagged `tag` exists for each recorded address. */
export async function checkMasq(tag: string, ips: CniIpConfig[], diffs: Diffs): Promise<void> {
  const rules = (await nftRules('inet', tag)).map((r) => JSON.stringify(r.expr))
  for (const ip of ips)
    if (!rules.some((r) => r.includes(`"${bare(ip.address)}"`)))
      diffs.add(`the masquerade rule for ${ip.address} is missing (nft table inet nsdn)`)
}
