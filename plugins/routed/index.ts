/**
 * The routed driver: a veth pair and no bridge, as the CNI ptp plugin builds it. The container
 * holds its address as a /32 (/128); the subnet's gateway address sits on the host end of the
 * veth, also as a /32; the container reaches the gateway on-link and everything else through
 * it, and the host reaches the container by a /32 route via the host end. Two containers on
 * one host talk through the host's routing table, not through an L2 domain.
 *
 * No proxy ARP is needed: the only neighbour a container resolves is the gateway, a real
 * address of the host end, and the host resolves the container's own address on the host end.
 * See README.md for the config keys.
 * @module
 */
import type {
  AttachContext,
  CniIpConfig,
  CniResult,
  CniRoute,
  NetConfBase,
  NetworkDriver,
} from '../../src/drivers/api.js'
import {
  Diffs,
  checkContainer,
  checkIpam,
  checkMasq,
  containerPart,
  recorded,
} from '../../src/drivers/check.js'
import { boolAt, fieldPath, optMtuAt, parseBase } from '../../src/drivers/conf.js'
import { masqAdd, nftOwner, nftRulesDel } from '../../src/drivers/nft.js'
import { explainIpam } from '../../src/drivers/addressing.js'
import { Rollback, failpoint } from '../../src/drivers/rollback.js'
import { firstAddress, hostPrefixLen, subnetOf } from '../../src/drivers/subnet.js'
import {
  configureContainer,
  hostVethName,
  setupVeth,
  teardownVeth,
  vethInterfaces,
} from '../../src/drivers/veth.js'
import { ConfigError, NsdnError } from '../../src/errors.js'
import { type IpamConf, ipamAdd, ipamDel, ipamUndo, parseIpamConf } from '../../src/ipam/index.js'
import { addrAdd, addrList } from '../../src/netlink/addr.js'
import { type Link, linkByName, tryLinkByName } from '../../src/netlink/link.js'
import { routeAdd, routeList } from '../../src/netlink/route.js'
import { Rtnl } from '../../src/netlink/rtnl.js'
import { NetNs } from '../../src/netns/netns.js'
import { explainWhy } from '../../src/op.js'
import { sysctlGet, sysctlSet } from '../../src/sysctl.js'
import { type Cidr, parseCidr } from '../../src/validate.js'

export interface RoutedConf extends NetConfBase {
  mtu?: number
  ipMasq: boolean
  ipam: IpamConf
}

function parseConf(raw: unknown, where = 'conf'): RoutedConf {
  const { o, base } = parseBase(raw, 'routed', where)
  if (o.ipam === undefined)
    throw new ConfigError(
      'is required: a routed container needs addresses',
      fieldPath(where, 'ipam'),
      {
        hint: '"ipam": {"type": "host-local", "ranges": [[{"subnet": "10.1.0.0/24"}]]}',
      },
    )
  const mtu = optMtuAt(o, where)
  return {
    ...base,
    ...(mtu !== undefined ? { mtu } : {}),
    ipMasq: boolAt(o, 'ipMasq', where),
    ipam: parseIpamConf(o.ipam, fieldPath(where, 'ipam')),
  }
}

const noNetns = (): NsdnError =>
  new NsdnError('E_NETNS', 'the routed driver needs the container network namespace')

const ipamArgs = (c: RoutedConf, ctx: AttachContext) =>
  ({ network: c.name, containerId: ctx.containerId, ifname: ctx.ifname }) as const

/** One IPAM address as the routed design uses it. */
interface Plan {
  /** As IPAM gave it, with the subnet's prefix: 10.1.0.10/24. */
  lease: Cidr
  /** The container's address as a host route: 10.1.0.10/32. */
  host: string
  /** The gateway, held by the host end: IPAM's, else the subnet's first address. */
  gw: string
  /** The gateway as a host route: 10.1.0.1/32. */
  gwHost: string
}

function plan(ip: CniIpConfig): Plan {
  const lease = parseCidr(ip.address, 'ipam result', true)
  const len = hostPrefixLen(lease.family)
  const gw = ip.gateway ?? firstAddress(lease)
  if (parseCidr(gw, 'gateway').address === lease.address)
    throw new ConfigError(`address ${ip.address} is its own gateway`, 'ipam', {
      hint: 'give the range a gateway other than its addresses',
    })
  return { lease, host: `${lease.address}/${len}`, gw, gwHost: `${gw}/${len}` }
}

/**
 * A link-local address for the host end, without DAD. The host resolves a container's IPv6
 * address with a Neighbour Solicitation, which the kernel sends only from a link-local address
 * that has passed DAD: with the end's own (still tentative) one alone, traffic toward a new
 * container would wait a second or two.
 */
const HOST_LINK_LOCAL = 'fe80::1/64'

const isDefault = (dst: string): boolean => dst === '0.0.0.0/0' || dst === '::/0'

/** The routes the result records: the subnet and IPAM's routes, each via its gateway. */
function resultRoutes(plans: Plan[], ipamRoutes: CniRoute[]): CniRoute[] {
  const gwOf = (dst: string): string | undefined =>
    plans.find((p) => dst.includes(':') === (p.lease.family === 6))?.gw
  const routes: CniRoute[] = []
  for (const p of plans) {
    const dst = subnetOf(p.lease)
    if (!ipamRoutes.some((r) => r.dst === dst)) routes.push({ dst, gw: p.gw })
  }
  for (const r of ipamRoutes) {
    const gw = r.gw ?? gwOf(r.dst)
    routes.push({ dst: r.dst, ...(gw ? { gw } : {}) })
  }
  return routes
}

function enableForwarding(ns: NetNs, plans: Plan[]): void {
  const keys = new Set(
    plans.map((p) =>
      p.lease.family === 6 ? 'net.ipv6.conf.all.forwarding' : 'net.ipv4.ip_forward',
    ),
  )
  for (const key of keys) if (sysctlGet(ns, key) !== '1') sysctlSet(ns, key, '1')
}

async function add(c: RoutedConf, ctx: AttachContext): Promise<CniResult> {
  const { netns } = ctx
  if (!netns) throw noNetns()
  const nft = nftOwner(ctx.containerId, ctx.ifname)
  const hostNs = NetNs.current()
  const h = Rtnl.for(hostNs)
  const hostName = hostVethName(ctx.containerId, ctx.ifname)
  return Rollback.guard(async (rb) => {
    // Everything on the host side (addresses, routes) goes with the host end.
    const pair = await setupVeth({ ...ctx, netns }, hostNs, hostName, rb, {
      ...(c.mtu !== undefined ? { mtu: c.mtu } : {}),
    })
    failpoint('veth')

    const r = await ipamAdd(c.ipam, ipamArgs(c, ctx))
    rb.push('ipam', () => ipamUndo(c.ipam, ipamArgs(c, ctx)))
    explainIpam(c.ipam, c.name, r)
    failpoint('ipam')

    const plans = r.ips.map(plan)
    await configureContainer(
      netns,
      ctx.ifname,
      plans.map((p) => ({ address: p.host })),
      [],
      rb,
    )
    // The same gateway address on every host end is fine: each is its own /32 on its link.
    explainWhy('routed: the container holds a /32 (/128); the host end holds the gateway')
    for (const p of new Map(plans.map((x) => [x.gwHost, x])).values())
      await addrAdd(h, p.gwHost, pair.host, { nodad: true })
    if (plans.some((p) => p.lease.family === 6))
      await addrAdd(h, HOST_LINK_LOCAL, pair.host, { nodad: true })
    failpoint('addresses')

    explainWhy('the host forwards between containers; routes: gateway on-link, rest via it')
    enableForwarding(hostNs, plans)
    const ch = Rtnl.for(netns)
    const link = await linkByName(ch, ctx.ifname)
    for (const p of plans) await routeAdd(ch, { dst: p.gwHost, dev: link, scope: 'link' })
    const routes = resultRoutes(plans, r.routes)
    for (const rt of routes)
      await routeAdd(ch, {
        dst: isDefault(rt.dst) ? 'default' : rt.dst,
        ...(rt.gw ? { via: rt.gw } : {}),
        dev: link,
        ...(rt.dst.includes(':') ? { family: 6 as const } : {}),
      })
    for (const p of plans) await routeAdd(h, { dst: p.host, dev: pair.host })
    failpoint('routes')

    if (c.ipMasq) {
      rb.push('masquerade rules', () => nftRulesDel(nft, ['inet']))
      await masqAdd(
        nft,
        plans.map((p) => p.lease),
      )
    }
    failpoint('masq')

    return {
      ...(c.cniVersion ? { cniVersion: c.cniVersion } : {}),
      interfaces: vethInterfaces(pair, ctx.netnsPath),
      ips: plans.map((p) => ({ address: p.host, gateway: p.gw, interface: 1 })),
      routes,
      ...(Object.keys(r.dns).length ? { dns: r.dns } : {}),
    }
  })
}

/** Remove the pair (host addresses and routes go with it), the nft rules and the leases. */
async function del(c: RoutedConf, ctx: AttachContext): Promise<void> {
  const nft = nftOwner(ctx.containerId, ctx.ifname)
  await teardownVeth(NetNs.current(), hostVethName(ctx.containerId, ctx.ifname))
  if (c.ipMasq) await nftRulesDel(nft, ['inet'])
  await ipamDel(c.ipam, ipamArgs(c, ctx))
}

/** The host end: up, holding each gateway, with a route to each container address. */
async function checkHostEnd(h: Rtnl, hv: Link, ips: CniIpConfig[], diffs: Diffs): Promise<void> {
  if (!hv.up) diffs.add(`host veth "${hv.name}" is down`)
  const have = (await addrList(h, hv)).map((a) => a.cidr)
  if (ips.some((ip) => ip.address.includes(':')) && !have.includes(HOST_LINK_LOCAL))
    diffs.add(`link-local address ${HOST_LINK_LOCAL} is missing on "${hv.name}"`)
  const routes = [...(await routeList(h, 4)), ...(await routeList(h, 6))]
  for (const ip of ips) {
    const p = plan(ip)
    if (!have.includes(p.gwHost))
      diffs.add(`gateway address ${p.gwHost} is missing on "${hv.name}"`)
    if (!routes.some((r) => r.dst === p.host && r.oif === hv.index))
      diffs.add(`host route ${p.host} dev ${hv.name} is missing`)
  }
}

async function check(c: RoutedConf, ctx: AttachContext): Promise<void> {
  const { netns } = ctx
  if (!netns) throw noNetns()
  const prev = recorded(ctx)
  const diffs = new Diffs()
  const h = Rtnl.for(NetNs.current())
  const hostName = hostVethName(ctx.containerId, ctx.ifname)
  const { ips } = containerPart(prev, ctx.ifname)
  const hv = await tryLinkByName(h, hostName)
  if (!hv) diffs.add(`host veth "${hostName}" is missing`)
  else await checkHostEnd(h, hv, ips, diffs)
  const gwRoutes = ips.map((ip) => ({ dst: plan(ip).gwHost }))
  const cl = await checkContainer({ ...ctx, netns }, prev, diffs, gwRoutes)
  if (cl && hv && cl.link !== hv.index)
    diffs.add(`"${ctx.ifname}" in ${netns} is not the peer of host veth "${hostName}"`)
  await checkIpam(c.ipam, ipamArgs(c, ctx), ips, diffs)
  if (c.ipMasq) await checkMasq(nftOwner(ctx.containerId, ctx.ifname).tag, ips, diffs)
  diffs.throwIfAny(`the routed attachment ${ctx.containerId}/${ctx.ifname}`)
}

export const driver: NetworkDriver<RoutedConf> = { name: 'routed', parseConf, add, del, check }
