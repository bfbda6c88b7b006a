/**
 * The bridge driver: each container gets a veth pair whose host end is a port of a Linux
 * bridge, and addresses from IPAM, as the CNI bridge plugin does. Optionally the bridge is
 * the subnet's gateway (its address, forwarding on), masquerades what leaves the subnet, and
 * drops frames whose source MAC is not the container's. The bridge outlives its ports, as in
 * the CNI plugin; only the rollback of a failed add removes a bridge that add created.
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
import { boolAt, fieldPath, optIntAt, optMtuAt, parseBase } from '../../src/drivers/conf.js'
import { macSpoofAdd, masqAdd, nftOwner, nftRules, nftRulesDel } from '../../src/drivers/nft.js'
import type { NftFamily } from '../../src/drivers/nft.js'
import { explainIpam } from '../../src/drivers/addressing.js'
import { Rollback, failpoint } from '../../src/drivers/rollback.js'
import { firstAddress, overlaps, subnetOf } from '../../src/drivers/subnet.js'
import {
  addContainerRoutes,
  configureContainer,
  containerMac,
  hostVethName,
  setupVeth,
  teardownVeth,
  vethInterfaces,
} from '../../src/drivers/veth.js'
import {
  ConfigError,
  KernelFeatureError,
  NsdnError,
  ignoreNotFound,
  isCode,
} from '../../src/errors.js'
import { listAt, stringAt } from '../../src/ipam/fields.js'
import { type IpamConf, ipamAdd, ipamDel, ipamUndo, parseIpamConf } from '../../src/ipam/index.js'
import { addrAdd, addrDel, addrList } from '../../src/netlink/addr.js'
import { probeBridgeVlanFiltering } from '../../src/netlink/features.js'
import {
  type Link,
  linkAddBridge,
  linkByName,
  linkDel,
  linkList,
  linkSet,
  linkSetBridgePort,
  linkSetPromisc,
  tryLinkByName,
} from '../../src/netlink/link.js'
import { routeList } from '../../src/netlink/route.js'
import { Rtnl } from '../../src/netlink/rtnl.js'
import { logger } from '../../src/log.js'
import { NetNs } from '../../src/netns/netns.js'
import { explainWhy } from '../../src/op.js'
import { sysctlGet, sysctlSet } from '../../src/sysctl.js'
import { type Cidr, parseCidr, validIfName } from '../../src/validate.js'

export interface BridgeConf extends NetConfBase {
  /** The bridge's name (default "cni0"); created when missing. */
  bridge: string
  /** The bridge holds each subnet's gateway address; forwarding is turned on. */
  isGateway: boolean
  /** The container's default routes go via the bridge (implies isGateway). */
  isDefaultGateway: boolean
  /** Replace an address of the bridge that overlaps the gateway's subnet. */
  forceAddress: boolean
  ipMasq: boolean
  mtu?: number
  hairpinMode: boolean
  promiscMode: boolean
  macspoofchk: boolean
  /** VLAN of the port: needs bridge VLAN filtering (0 or absent: none). */
  vlan?: number
  /** The config lists trunk VLANs (`vlanTrunk`): they need bridge VLAN filtering too. */
  vlanTrunk: boolean
  ipam?: IpamConf
}

function parseConf(raw: unknown, where = 'conf'): BridgeConf {
  const { o, base } = parseBase(raw, 'bridge', where)
  const bridge =
    o.bridge === undefined
      ? 'cni0'
      : validIfName(stringAt(o.bridge, fieldPath(where, 'bridge')), fieldPath(where, 'bridge'))
  const isDefaultGateway = boolAt(o, 'isDefaultGateway', where)
  const mtu = optMtuAt(o, where)
  const vlan = optIntAt(o, 'vlan', where, 0, 4094)
  const vlanTrunk =
    o.vlanTrunk !== undefined && listAt(o.vlanTrunk, fieldPath(where, 'vlanTrunk')).length > 0
  return {
    ...base,
    bridge,
    isGateway: boolAt(o, 'isGateway', where) || isDefaultGateway,
    isDefaultGateway,
    forceAddress: boolAt(o, 'forceAddress', where),
    ipMasq: boolAt(o, 'ipMasq', where),
    ...(mtu !== undefined ? { mtu } : {}),
    hairpinMode: boolAt(o, 'hairpinMode', where),
    promiscMode: boolAt(o, 'promiscMode', where),
    macspoofchk: boolAt(o, 'macspoofchk', where),
    ...(vlan ? { vlan } : {}),
    vlanTrunk,
    ...(o.ipam !== undefined ? { ipam: parseIpamConf(o.ipam, fieldPath(where, 'ipam')) } : {}),
  }
}

const log = logger('bridge')

const noNetns = (): NsdnError =>
  new NsdnError('E_NETNS', 'the bridge driver needs the container network namespace')

const ipamArgs = (c: BridgeConf, ctx: AttachContext) =>
  ({ network: c.name, containerId: ctx.containerId, ifname: ctx.ifname }) as const

/** The nft families this config puts rules in. */
const nftFamilies = (c: BridgeConf): NftFamily[] => [
  ...(c.ipMasq ? (['inet'] as const) : []),
  ...(c.macspoofchk ? (['bridge'] as const) : []),
]

/** Whether a link other than `except` is a port of the bridge (another container's veth). */
async function hasOtherPorts(h: Rtnl, br: Link, except?: string): Promise<boolean> {
  return (await linkList(h)).some((l) => l.master === br.index && l.name !== except)
}

/** Delete the bridge unless something is still a port of it (a concurrent add's veth). */
async function removeBridgeIfUnused(h: Rtnl, name: string): Promise<void> {
  const br = await tryLinkByName(h, name)
  if (br && !(await hasOtherPorts(h, br))) await ignoreNotFound(linkDel(h, br))
}

/**
 * The bridge, created when missing (another add creating it at the same moment is fine), up.
 * A link of that name that is no bridge is an error. Equivalent: `ip link add BR type bridge`.
 */
async function ensureBridge(h: Rtnl, c: BridgeConf, rb: Rollback): Promise<Link> {
  let br = await tryLinkByName(h, c.bridge)
  if (!br) {
    try {
      await linkAddBridge(h, c.bridge)
      rb.push(`bridge ${c.bridge}`, () => removeBridgeIfUnused(h, c.bridge))
      if (c.mtu !== undefined) await linkSet(h, c.bridge, { mtu: c.mtu })
    } catch (err) {
      if (!isCode(err, 'E_EXISTS')) throw err
    }
    br = await linkByName(h, c.bridge)
  }
  if (br.kind !== 'bridge')
    throw new NsdnError('E_EXISTS', `link "${c.bridge}" exists and is not a bridge`, {
      details: `its kind is ${br.kind ?? 'none (a physical or loopback device)'}`,
      hint: 'set "bridge" to another name, or remove that link',
    })
  if (c.promiscMode) await linkSetPromisc(h, br, true)
  if (!br.up) await linkSet(h, br, { up: true })
  return br
}

/**
 * Put the gateway address on the bridge unless it is there. Another address of the bridge in
 * an overlapping subnet is an error, or is replaced with forceAddress (as in the CNI plugin).
 */
async function ensureGatewayAddr(
  h: Rtnl,
  br: Link,
  gw: Cidr,
  o: { force: boolean; port: string },
  rb: Rollback,
): Promise<void> {
  const text = `${gw.address}/${gw.prefixLen}`
  const have = (await addrList(h, br)).filter((a) => a.family === gw.family && a.scope !== 253)
  if (have.some((a) => a.cidr === text)) return
  for (const a of have) {
    if (!overlaps(a, gw)) continue
    if (!o.force)
      throw new ConfigError(
        `bridge "${br.name}" has address ${a.cidr}, not the gateway ${text}`,
        'forceAddress',
        { hint: 'set "forceAddress": true to replace it, or use another bridge' },
      )
    await addrDel(h, a.cidr, br)
  }
  await warnIfRoutedElsewhere(h, gw, br)
  try {
    // No DAD: the containers use the gateway as soon as add returns.
    await addrAdd(h, gw, br, { nodad: true })
  } catch (err) {
    if (isCode(err, 'E_EXISTS')) return // a concurrent add put it there first
    throw err
  }
  // Undone only while no other container's port is on the bridge: they use the gateway too.
  rb.push(`address ${text} on ${br.name}`, async () => {
    if (!(await hasOtherPorts(h, br, o.port))) await ignoreNotFound(addrDel(h, gw, br))
  })
}

/**
 * The gateway address makes the kernel route its subnet to the bridge: another interface with
 * a route to that subnet (the same subnet on two bridges) would then get half the traffic.
 */
async function warnIfRoutedElsewhere(h: Rtnl, gw: Cidr, br: Link): Promise<void> {
  const subnet = subnetOf(gw)
  const other = (await routeList(h, gw.family)).find(
    (r) => r.dst === subnet && r.oif !== undefined && r.oif !== br.index,
  )
  if (!other?.oif) return
  const dev = (await linkList(h)).find((l) => l.index === other.oif)?.name ?? `#${other.oif}`
  log.warn(
    { subnet, bridge: br.name, dev },
    `subnet ${subnet} is already routed to "${dev}": "${br.name}" gets a second route to it, ` +
      'and hosts behind one of them will be unreachable; give this network another subnet',
  )
}

/** Turn on forwarding for each family the gateway serves (only where it is off). */
function enableForwarding(ns: NetNs, ips: CniIpConfig[]): void {
  const keys = new Set(
    ips.map((ip) =>
      ip.address.includes(':') ? 'net.ipv6.conf.all.forwarding' : 'net.ipv4.ip_forward',
    ),
  )
  for (const key of keys) if (sysctlGet(ns, key) !== '1') sysctlSet(ns, key, '1')
}

/** IPAM's routes, plus a default route via each family's gateway with isDefaultGateway. */
function routesFor(c: BridgeConf, ips: CniIpConfig[], ipamRoutes: CniRoute[]): CniRoute[] {
  const routes = [...ipamRoutes]
  if (!c.isDefaultGateway) return routes
  for (const ip of ips) {
    const v6 = ip.address.includes(':')
    const dst = v6 ? '::/0' : '0.0.0.0/0'
    if (ip.gateway && !routes.some((r) => r.dst === dst)) routes.push({ dst, gw: ip.gateway })
  }
  return routes
}

async function add(c: BridgeConf, ctx: AttachContext): Promise<CniResult> {
  const { netns } = ctx
  if (!netns) throw noNetns()
  // Refuse before anything exists: the port VLAN needs a kernel option.
  if (c.vlan !== undefined || c.vlanTrunk) {
    if (!(await probeBridgeVlanFiltering()))
      throw new KernelFeatureError(
        'bridge VLAN filtering',
        'CONFIG_BRIDGE_VLAN_FILTERING',
        'use the ovs driver: its ports take a VLAN tag ("vlan") and trunks ("trunk")',
      )
    throw new NsdnError('E_UNSUPPORTED_FIELD', 'bridge port VLANs are not implemented yet', {
      hint: 'use the ovs driver, whose ports take VLAN tags and trunks',
    })
  }
  const nft = nftOwner(ctx.containerId, ctx.ifname)
  const hostNs = NetNs.current()
  const h = Rtnl.for(hostNs)
  const hostName = hostVethName(ctx.containerId, ctx.ifname)
  return Rollback.guard(async (rb) => {
    explainWhy(`bridge ${c.bridge}: the switch the containers' veths plug into (made when missing)`)
    const br = await ensureBridge(h, c, rb)
    failpoint('bridge')

    const pair = await setupVeth({ ...ctx, netns }, hostNs, hostName, rb, {
      master: c.bridge,
      ...(c.mtu !== undefined ? { mtu: c.mtu } : {}),
      // The spoof check names the MAC: nsdn sets it, so the printed rule holds where pasted.
      ...(c.macspoofchk ? { mac: containerMac(ctx.containerId, ctx.ifname) } : {}),
    })
    if (c.hairpinMode) {
      explainWhy('hairpin: a frame may leave by the port it came in (the container to itself)')
      await linkSetBridgePort(h, pair.host, { hairpin: true })
    }
    if (c.macspoofchk) {
      if (!pair.container.address)
        throw new NsdnError('E_INTERNAL', `"${ctx.ifname}" has no MAC address to check against`)
      rb.push('macspoofchk rule', () => nftRulesDel(nft, ['bridge']))
      explainWhy(
        `MAC spoof check: drop what ${hostName} sends from another MAC than ${ctx.ifname}'s`,
      )
      await macSpoofAdd(nft, hostName, pair.container.address)
    }
    failpoint('veth')

    const ipam = c.ipam
    const r = ipam ? await ipamAdd(ipam, ipamArgs(c, ctx)) : { ips: [], routes: [], dns: {} }
    if (ipam) rb.push('ipam', () => ipamUndo(ipam, ipamArgs(c, ctx)))
    if (ipam) explainIpam(ipam, c.name, r)
    failpoint('ipam')

    const ips = r.ips.map((ip): CniIpConfig => {
      const cidr = parseCidr(ip.address, 'ipam result', true)
      return c.isGateway ? { ...ip, gateway: ip.gateway ?? firstAddress(cidr) } : ip
    })
    if (c.isGateway) {
      const nodad = ips.some((ip) => ip.address.includes(':'))
        ? ' (IPv6 with nodad: in use at once)'
        : ''
      explainWhy(`the bridge is the gateway: its address${nodad}, forwarding on`)
      for (const ip of ips) {
        const cidr = parseCidr(ip.address, 'ipam result', true)
        const gw = parseCidr(`${ip.gateway}/${cidr.prefixLen}`, 'gateway', true)
        await ensureGatewayAddr(h, br, gw, { force: c.forceAddress, port: hostName }, rb)
      }
      enableForwarding(hostNs, ips)
    }
    await configureContainer(netns, ctx.ifname, ips, [], rb)
    failpoint('addresses')

    const routes = routesFor(c, ips, r.routes)
    await addContainerRoutes(netns, ctx.ifname, ips, routes)
    failpoint('routes')

    if (c.ipMasq) {
      rb.push('masquerade rules', () => nftRulesDel(nft, ['inet']))
      await masqAdd(
        nft,
        ips.map((ip) => parseCidr(ip.address, 'ipam result', true)),
      )
    }
    failpoint('masq')

    const interfaces = [
      { name: br.name, ...(br.address ? { mac: br.address } : {}) },
      ...vethInterfaces(pair, ctx.netnsPath),
    ]
    return {
      ...(c.cniVersion ? { cniVersion: c.cniVersion } : {}),
      interfaces,
      ips: ips.map((ip) => ({ ...ip, interface: 2 })),
      routes,
      ...(Object.keys(r.dns).length ? { dns: r.dns } : {}),
    }
  })
}

/**
 * Remove the pair (by its host end, whose name del derives: the container's netns may be
 * gone), the nft rules and the leases. The bridge and its gateway address stay: other
 * containers use them.
 */
async function del(c: BridgeConf, ctx: AttachContext): Promise<void> {
  const nft = nftOwner(ctx.containerId, ctx.ifname)
  await teardownVeth(NetNs.current(), hostVethName(ctx.containerId, ctx.ifname))
  const families = nftFamilies(c)
  if (families.length) await nftRulesDel(nft, families)
  if (c.ipam) await ipamDel(c.ipam, ipamArgs(c, ctx))
}

async function check(c: BridgeConf, ctx: AttachContext): Promise<void> {
  const { netns } = ctx
  if (!netns) throw noNetns()
  const prev = recorded(ctx)
  const diffs = new Diffs()
  const h = Rtnl.for(NetNs.current())
  const br = await tryLinkByName(h, c.bridge)
  if (!br) diffs.add(`bridge "${c.bridge}" is missing`)
  else if (br.kind !== 'bridge')
    diffs.add(`"${c.bridge}" is a ${br.kind ?? 'device'}, not a bridge`)
  else if (!br.up) diffs.add(`bridge "${c.bridge}" is down`)
  const hostName = hostVethName(ctx.containerId, ctx.ifname)
  const hv = await tryLinkByName(h, hostName)
  if (!hv) diffs.add(`host veth "${hostName}" is missing`)
  else if (br && hv.master !== br.index)
    diffs.add(`host veth "${hostName}" is not a port of bridge "${c.bridge}"`)
  else if (!hv.up) diffs.add(`host veth "${hostName}" is down`)
  const cl = await checkContainer({ ...ctx, netns }, prev, diffs)
  if (cl && hv && cl.link !== hv.index)
    diffs.add(`"${ctx.ifname}" in ${netns} is not the peer of host veth "${hostName}"`)
  const { ips } = containerPart(prev, ctx.ifname)
  if (c.isGateway && br) {
    const have = (await addrList(h, br)).map((a) => a.cidr)
    for (const ip of ips) {
      if (!ip.gateway) continue
      const gw = `${ip.gateway}/${parseCidr(ip.address, 'ips[].address', true).prefixLen}`
      if (!have.includes(gw)) diffs.add(`gateway address ${gw} is missing on "${c.bridge}"`)
    }
  }
  if (c.ipam) await checkIpam(c.ipam, ipamArgs(c, ctx), ips, diffs)
  const nft = nftOwner(ctx.containerId, ctx.ifname)
  if (c.ipMasq) await checkMasq(nft.tag, ips, diffs)
  if (c.macspoofchk && !(await nftRules('bridge', nft.tag)).length)
    diffs.add(`the MAC spoof check rule for "${hostName}" is missing (nft table bridge nsdn)`)
  diffs.throwIfAny(`the bridge attachment ${ctx.containerId}/${ctx.ifname}`)
}

export const driver: NetworkDriver<BridgeConf> = { name: 'bridge', parseConf, add, del, check }
