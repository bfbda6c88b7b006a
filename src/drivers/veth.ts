/**
 * What every veth-based driver does: a pair with one end in the host namespace and the other,
 * named ctx.ifname, created directly in the container's namespace; then the container side
 * configured from an IPAM result.
 * @module
 */
import { createHash } from 'node:crypto'
import { ConfigError, ignoreNotFound } from '../errors.js'
import { addrAdd } from '../netlink/addr.js'
import {
  type Link,
  type LinkRef,
  linkAddVeth,
  linkByName,
  linkDel,
  linkSet,
  tryLinkByName,
} from '../netlink/link.js'
import { routeAdd } from '../netlink/route.js'
import { Rtnl } from '../netlink/rtnl.js'
import type { NetNs } from '../netns/netns.js'
import { explainWhy } from '../op.js'
import { parseCidr } from '../validate.js'
import type { AttachContext, CniInterface, CniIpConfig, CniRoute } from './api.js'
import type { Rollback } from './rollback.js'

/**
 * The host end's name: derived from container id and ifname, so del finds it even when the
 * container's namespace is gone. `veth` + 8 hex = 12 bytes, within IFNAMSIZ.
 */
export function hostVethName(containerId: string, ifname: string, prefix = 'veth'): string {
  const h = createHash('sha256').update(`${containerId}/${ifname}`).digest('hex')
  return `${prefix}${h.slice(0, Math.min(8, 15 - prefix.length))}`
}

/**
 * A MAC for the container's interface, locally administered and derived from container id and
 * ifname: set by nsdn (and printed as `ip link set ... address`), so a rule that names it
 * matches the same interface when the printed lines are pasted elsewhere.
 */
export function containerMac(containerId: string, ifname: string): string {
  const h = createHash('sha256').update(`mac:${containerId}/${ifname}`).digest()
  return ['02', ...[...h.subarray(0, 5)].map((b) => b.toString(16).padStart(2, '0'))].join(':')
}

export interface VethPair {
  host: Link
  container: Link
}

/**
 * Create the pair: host end `hostName` in hostNs (optionally a port of `master`, up), peer
 * ctx.ifname in the container. Pushes its undo onto rb.
 */
export async function setupVeth(
  ctx: AttachContext & { netns: NetNs },
  hostNs: NetNs,
  hostName: string,
  rb: Rollback,
  o: { mtu?: number; master?: string; mac?: string } = {},
): Promise<VethPair> {
  const h = Rtnl.for(hostNs)
  explainWhy(
    `a veth pair: ${ctx.ifname} inside ${ctx.netns.name ?? 'the container'}, ${hostName} here` +
      (o.master !== undefined ? ` as a port of ${o.master}` : ''),
  )
  await linkAddVeth(h, hostName, ctx.ifname, {
    peerNs: ctx.netns,
    up: o.master === undefined,
    ...(o.master !== undefined ? { master: o.master } : {}),
  })
  rb.push(`veth ${hostName}`, () => ignoreNotFound(linkDel(h, hostName)))
  if (o.mtu !== undefined) await linkSet(h, hostName, { mtu: o.mtu })
  if (o.master !== undefined) await linkSet(h, hostName, { up: true })
  const c = Rtnl.for(ctx.netns)
  if (o.mtu !== undefined || o.mac !== undefined)
    await linkSet(c, ctx.ifname, {
      ...(o.mtu !== undefined ? { mtu: o.mtu } : {}),
      ...(o.mac !== undefined ? { address: o.mac } : {}),
    })
  return { host: await linkByName(h, hostName), container: await linkByName(c, ctx.ifname) }
}

/** The smallest MTU IPv6 allows on a link (RFC 8200, section 5). */
export const IPV6_MIN_MTU = 1280

/**
 * Give the container interface its addresses (IPv6 without DAD, so it is usable at once),
 * bring it and lo up, and add the routes. Bringing lo up is undone on rb: a rolled-back add
 * leaves the namespace as it was.
 */
export async function configureContainer(
  netns: NetNs,
  ifname: string,
  ips: CniIpConfig[],
  routes: CniRoute[],
  rb: Rollback,
): Promise<void> {
  const c = Rtnl.for(netns)
  const link = await linkByName(c, ifname)
  const v6 = ips.find((ip) => ip.address.includes(':'))
  // The kernel's answer would be a bare EINVAL.
  if (v6 && link.mtu !== undefined && link.mtu < IPV6_MIN_MTU)
    throw new ConfigError(
      `MTU ${link.mtu} of "${ifname}" is below ${IPV6_MIN_MTU}, the least IPv6 needs, ` +
        `so it cannot take ${v6.address}`,
      'mtu',
      { hint: `raise "mtu" to ${IPV6_MIN_MTU} or more, or give this network IPv4 only` },
    )
  if (v6) explainWhy('IPv6 with nodad: usable at once, without a second of duplicate detection')
  for (const ip of ips)
    await addrAdd(c, parseCidr(ip.address, 'ips[].address', true), link, { nodad: true })
  await linkSet(c, link, { up: true })
  const lo = await tryLinkByName(c, 'lo')
  if (lo && !lo.up) {
    rb.push(`lo up in ${netns}`, () => ignoreNotFound(linkSet(c, 'lo', { up: false })))
    await linkSet(c, lo, { up: true })
  }
  await addContainerRoutes(netns, link, ips, routes)
}

/** The container's routes; one without `gw` goes via its family's gateway, else on-link. */
export async function addContainerRoutes(
  netns: NetNs,
  dev: LinkRef,
  ips: CniIpConfig[],
  routes: CniRoute[],
): Promise<void> {
  const c = Rtnl.for(netns)
  const link = typeof dev === 'string' ? await linkByName(c, dev) : dev
  if (routes.length) explainWhy(`the container's routes (IPAM's, and the driver's)`)
  for (const r of routes) {
    const gw = r.gw ?? defaultGateway(ips, r.dst)
    await routeAdd(c, {
      dst: r.dst === '0.0.0.0/0' || r.dst === '::/0' ? 'default' : r.dst,
      ...(gw ? { via: gw } : { dev: link }),
      ...(r.dst.includes(':') ? { family: 6 as const } : {}),
      ...(r.priority !== undefined ? { metric: r.priority } : {}),
    })
  }
}

/** A route without `gw` goes via the gateway of the first address of its family. */
function defaultGateway(ips: CniIpConfig[], dst: string): string | undefined {
  const v6 = dst.includes(':')
  return ips.find((ip) => ip.gateway && ip.address.includes(':') === v6)?.gateway
}

/** Remove the pair by its host end (deleting one end deletes both). Gone already is fine. */
export async function teardownVeth(hostNs: NetNs, hostName: string): Promise<void> {
  await ignoreNotFound(linkDel(Rtnl.for(hostNs), hostName))
}

/** The CNI interface entries for a pair. */
export function vethInterfaces(pair: VethPair, netnsPath: string): CniInterface[] {
  return [
    { name: pair.host.name, ...(pair.host.address ? { mac: pair.host.address } : {}) },
    {
      name: pair.container.name,
      ...(pair.container.address ? { mac: pair.container.address } : {}),
      sandbox: netnsPath,
    },
  ]
}
