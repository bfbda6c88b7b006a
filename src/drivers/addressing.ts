/**
 * The last two steps of an add, for drivers that leave addressing to IPAM and need nothing
 * more on the container side: reserve addresses, then put them on the container interface;
 * and their del and check.
 * @module
 */
import path from 'node:path'
import {
  type IpamArgs,
  type IpamConf,
  type IpamResult,
  ipamAdd,
  ipamDel,
  ipamUndo,
} from '../ipam/index.js'
import { explainWhy } from '../op.js'
import type { Link } from '../netlink/link.js'
import type { NetNs } from '../netns/netns.js'
import type { AttachContext, CniResult } from './api.js'
import { type Diffs, checkContainer, checkIpam, containerPart } from './check.js'
import { type Rollback, failpoint } from './rollback.js'
import { configureContainer } from './veth.js'

export interface IpSetup {
  /** The network's name: IPAM keeps each network's leases apart. */
  network: string
  /** undefined: the interface comes up without addresses. */
  ipam: IpamConf | undefined
}

const owner = (ip: IpSetup, ctx: AttachContext): IpamArgs => ({
  network: ip.network,
  containerId: ctx.containerId,
  ifname: ctx.ifname,
})

/**
 * `# why` for an IPAM result: which addresses, and where host-local keeps the lease (a file per
 * address, not a kernel object: the printed lines do not create it).
 */
export function explainIpam(conf: IpamConf, network: string, r: IpamResult): void {
  const ips = r.ips.map((ip) => ip.address).join(', ')
  if (conf.type !== 'host-local') return explainWhy(`addresses from static IPAM: ${ips}`)
  const leases = r.ips.map((ip) => path.join(conf.dataDir, network, ip.address.split('/')[0]!))
  explainWhy(`addresses from host-local IPAM: ${ips} (leases: ${leases.join(' ')})`)
}

/**
 * Steps "ipam" and "addresses": reserve, then configure ctx.ifname (addresses, up, routes).
 * `iface` is the index of the container interface in the result's `interfaces`.
 */
export async function setupAddresses(
  ip: IpSetup,
  ctx: AttachContext & { netns: NetNs },
  rb: Rollback,
  iface: number,
): Promise<Pick<CniResult, 'ips' | 'routes' | 'dns'>> {
  const conf = ip.ipam
  const r = conf ? await ipamAdd(conf, owner(ip, ctx)) : undefined
  if (conf) rb.push('ipam', () => ipamUndo(conf, owner(ip, ctx)))
  if (conf && r) explainIpam(conf, ip.network, r)
  failpoint('ipam')
  await configureContainer(ctx.netns, ctx.ifname, r?.ips ?? [], r?.routes ?? [], rb)
  failpoint('addresses')
  if (!r) return {}
  const dns = Object.keys(r.dns).length ? { dns: r.dns } : {}
  return { ips: r.ips.map((a) => ({ ...a, interface: iface })), routes: r.routes, ...dns }
}

/** Release the leases (nothing to release is fine). */
export async function releaseAddresses(ip: IpSetup, ctx: AttachContext): Promise<void> {
  if (ip.ipam) await ipamDel(ip.ipam, owner(ip, ctx))
}

/**
 * The container side of a check: ctx.ifname with the recorded addresses and routes, and, with
 * IPAM, a lease for each address. Returns the interface when it exists.
 */
export async function checkAddresses(
  ip: IpSetup,
  ctx: AttachContext & { netns: NetNs },
  prev: CniResult,
  diffs: Diffs,
): Promise<Link | undefined> {
  const link = await checkContainer(ctx, prev, diffs)
  if (ip.ipam) await checkIpam(ip.ipam, owner(ip, ctx), containerPart(prev, ctx.ifname).ips, diffs)
  return link
}
