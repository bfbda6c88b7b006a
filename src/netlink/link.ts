/**
 * Links: list, look up, add (bridge, veth, macvlan, vxlan, vlan), delete, set.
 * Each mutating function is one Op through Rtnl.exec; its doc names the iproute2 equivalent.
 * @module
 */
import type { NetlinkMessage } from 'netlink/dist/structs'
import { KernelFeatureError, NsdnError, isCode } from '../errors.js'
import type { NetNs } from '../netns/netns.js'
import type { VxlanOpts } from '../op.js'
import { parseMac, validIfName } from '../validate.js'
import { type Rtnl, NetlinkErrno } from './rtnl.js'
import { decodeAttrs, strOf, u32Of } from './wire/attr.js'
import * as K from './wire/constants.js'
import * as W from './wire/messages.js'

export interface Link {
  index: number
  name: string
  /** IFLA_INFO_KIND: bridge, veth, macvlan, ...; undefined for physical and loopback. */
  kind: string | undefined
  up: boolean
  /** IFF_LOWER_UP: carrier. */
  lowerUp: boolean
  mtu: number
  /** MAC address, aa:bb:cc:dd:ee:ff. */
  address: string | undefined
  /** Index of the master (bridge) this link is a port of. */
  master: number | undefined
  /** IFLA_LINK: peer index (veth) or lower device (macvlan, vlan). */
  link: number | undefined
  /** IF_OPER_* state: 6 = UP. */
  operstate: number | undefined
}

const IFF_LOWER_UP = 0x10000

/**
 * Decode an RTM_NEWLINK / RTM_DELLINK message (a dump's or a notification's): the ifinfomsg
 * (index at offset 4, flags at 8) and the few attributes a Link has, read by hand (the
 * package's generic parse of all ~50 attributes cost 0.3 ms a link: half a second to list the
 * 2,000 links of a 1,000-host star).
 */
export function toLink(m: NetlinkMessage): Link {
  const a = decodeAttrs(m.data.subarray(16))
  const flags = m.data.readUInt32LE(8)
  const info = a.get(K.IFLA_LINKINFO)
  const u32 = (t: number): number | undefined => u32Of(a.get(t))
  const mac = a.get(K.IFLA_ADDRESS)
  return {
    index: m.data.readInt32LE(4),
    name: strOf(a.get(K.IFLA_IFNAME)) ?? '',
    kind: info ? strOf(decodeAttrs(info).get(K.IFLA_INFO_KIND)) : undefined,
    up: (flags & K.IFF_UP) !== 0,
    lowerUp: (flags & IFF_LOWER_UP) !== 0,
    mtu: u32(K.IFLA_MTU) ?? 0,
    address: mac ? [...mac].map((b) => b.toString(16).padStart(2, '0')).join(':') : undefined,
    master: u32(K.IFLA_MASTER) || undefined,
    link: u32(K.IFLA_LINK) || undefined,
    operstate: a.get(K.IFLA_OPERSTATE)?.readUInt8(0),
  }
}

/** Every link of the namespace. Equivalent: `ip link show`. */
export function linkList(h: Rtnl): Promise<Link[]> {
  return h.exec(
    { kind: 'link.show', ...ns(h) },
    async () => (await h.dump(W.getLink())).filter((m) => m.type === K.RTM_NEWLINK).map(toLink),
    [],
  )
}

/** A link in brief: its name, carrier and device group. */
export interface LinkBrief {
  index: number
  name: string
  /** IFF_LOWER_UP: carrier. */
  lowerUp: boolean
  group: number
}

/**
 * Every link in brief: a dump read for two attributes only, which the kernel puts among the
 * first ten of a link's ~50 (~1.5 KB a link: decoding them all for a few hundred links, in a
 * process that has just started, cost more than the kernel takes to send them).
 * Equivalent: `ip link show`.
 */
export function linkBriefs(h: Rtnl): Promise<LinkBrief[]> {
  return h.exec(
    { kind: 'link.show', ...ns(h) },
    async () => {
      const out: LinkBrief[] = []
      for (const m of await h.dump(W.getLink())) {
        if (m.type !== K.RTM_NEWLINK) continue
        const d = m.data
        const l: LinkBrief = {
          index: d.readInt32LE(4),
          name: '',
          lowerUp: (d.readUInt32LE(8) & IFF_LOWER_UP) !== 0,
          group: -1,
        }
        for (let off = 16; off + 4 <= d.length && (!l.name || l.group < 0); ) {
          const len = d.readUInt16LE(off)
          if (len < 4 || off + len > d.length) break
          const type = d.readUInt16LE(off + 2) & 0x3fff
          if (type === K.IFLA_IFNAME) {
            const nul = d.indexOf(0, off + 4)
            l.name = d.toString('utf8', off + 4, nul < 0 || nul > off + len ? off + len : nul)
          } else if (type === K.IFLA_GROUP) l.group = d.readUInt32LE(off + 4)
          off += (len + 3) & ~3
        }
        if (l.group < 0) l.group = 0
        out.push(l)
      }
      return out
    },
    [],
  )
}

/** The link called name, or undefined. Equivalent: `ip link show dev NAME`. */
export async function tryLinkByName(h: Rtnl, name: string): Promise<Link | undefined> {
  validIfName(name)
  try {
    const msgs = await h.exec(
      { kind: 'link.show', ...ns(h), dev: name },
      () => h.request(W.getLink(name)),
      [],
    )
    const m = msgs.find((x) => x.type === K.RTM_NEWLINK)
    return m ? toLink(m) : undefined
  } catch (err) {
    if (isCode(err, 'E_NOT_FOUND')) return undefined
    throw err
  }
}

/** The link called name; throws E_NOT_FOUND. */
export async function linkByName(h: Rtnl, name: string): Promise<Link> {
  const l = await tryLinkByName(h, name)
  if (!l)
    throw new NsdnError('E_NOT_FOUND', `link "${name}" not found in ${h}`, {
      hint: `"nsdn${h.nsName ? ` -n ${h.nsName}` : ''} link list" shows the links there`,
    })
  return l
}

export async function linkByIndex(h: Rtnl, index: number): Promise<Link | undefined> {
  return (await linkList(h)).find((l) => l.index === index)
}

/** Where a link is referred to: by name, or by a Link already looked up (saves a round trip). */
export type LinkRef = string | Pick<Link, 'index' | 'name'>

async function resolve(h: Rtnl, ref: LinkRef): Promise<Pick<Link, 'index' | 'name'>> {
  return typeof ref === 'string' ? linkByName(h, ref) : ref
}

const ns = (h: Rtnl): { ns?: string } => (h.nsName ? { ns: h.nsName } : {})

/** Kernel options behind each link kind, for the "this kernel lacks" message. */
const KCONFIG = {
  vlan: [
    '802.1Q VLAN devices',
    'CONFIG_VLAN_8021Q',
    'tag ports on an Open vSwitch bridge instead (the ovs or vlan driver with backend "ovs")',
  ],
  vxlan: ['VXLAN devices', 'CONFIG_VXLAN', 'connect the namespaces with veth pairs and a bridge'],
  macvlan: ['macvlan devices', 'CONFIG_MACVLAN', 'use a veth pair on a bridge instead'],
  bridge: ['Linux bridges', 'CONFIG_BRIDGE', 'use an Open vSwitch bridge instead'],
  'bridge-vlan-filtering': [
    'bridge VLAN filtering',
    'CONFIG_BRIDGE_VLAN_FILTERING',
    'tag ports on an Open vSwitch bridge instead (the ovs driver, or the vlan driver with ' +
      'backend "ovs")',
  ],
  veth: ['veth pairs', 'CONFIG_VETH', 'none: nsdn needs veth pairs'],
} as const satisfies Record<string, readonly [string, string, string]>

/** What {@link linkFeatureError} knows: link kinds, and bridge-vlan-filtering. */
export type LinkFeature = keyof typeof KCONFIG

/** "This kernel lacks ..." for a link kind (or bridge-vlan-filtering), naming its option. */
export function linkFeatureError(kind: LinkFeature): KernelFeatureError {
  const [feature, kconfig, alternative] = KCONFIG[kind]
  return new KernelFeatureError(feature, kconfig, alternative)
}

/** Send RTM_NEWLINK; an unknown link kind becomes a KernelFeatureError naming the option. */
async function createLink(h: Rtnl, req: W.Request, kind: LinkFeature): Promise<NetlinkMessage[]> {
  try {
    return await h.request(req)
  } catch (err) {
    if (err instanceof NetlinkErrno && err.errno === 'EOPNOTSUPP') throw linkFeatureError(kind)
    throw err
  }
}

export interface BridgeOpts {
  up?: boolean
  master?: LinkRef
  /** Ports get per-VLAN membership (`bridge vlan add`); needs CONFIG_BRIDGE_VLAN_FILTERING. */
  vlanFiltering?: boolean
  /**
   * false: no IGMP/MLD snooping (`mcast_snooping 0`). With snooping on, every port that comes
   * up or goes makes the bridge revisit all its ports' multicast state, work that grows with
   * the square of the ports. Without a querier, a lab's bridge floods multicast either way.
   */
  mcastSnooping?: boolean
  /** The device group (`group N`), e.g. a lab's, so that one request removes them all. */
  group?: number
}

/** Equivalent: `ip link add NAME [group N] type bridge [vlan_filtering 1] [mcast_snooping 0]`. */
export async function linkAddBridge(h: Rtnl, name: string, o: BridgeOpts = {}): Promise<void> {
  validIfName(name)
  const master = o.master === undefined ? undefined : await resolve(h, o.master)
  await h
    .exec(
      {
        kind: 'link.add',
        ...ns(h),
        name,
        ...(o.group ? { group: o.group } : {}),
        type: 'bridge',
        ...(master ? { master: master.name } : {}),
        ...(o.up ? { up: true } : {}),
        ...(o.vlanFiltering ? { vlanFiltering: true } : {}),
        ...(o.mcastSnooping === false ? { mcastSnooping: false } : {}),
      },
      () =>
        createLink(
          h,
          W.newLink({
            name,
            kind: {
              kind: 'bridge',
              ...(o.vlanFiltering ? { vlanFiltering: true } : {}),
              ...(o.mcastSnooping === false ? { mcastSnooping: false } : {}),
            },
            ...(o.up ? { up: true } : {}),
            ...(master ? { masterIndex: master.index } : {}),
            ...(o.group ? { group: o.group } : {}),
          }),
          o.vlanFiltering ? 'bridge-vlan-filtering' : 'bridge',
        ),
      undefined,
    )
    .then(() => undefined)
}

export interface VethOpts {
  /** Namespace the peer is created in (IFLA_NET_NS_FD inside VETH_INFO_PEER). */
  peerNs?: NetNs
  /** Bridge the local end becomes a port of, in the same request (IFLA_MASTER). */
  master?: LinkRef
  up?: boolean
  /**
   * Queues of each end. The kernel makes one per possible CPU, then cuts the pair down to one,
   * waiting for two RCU grace periods (~0.5 ms a pair); asking for 1 skips that. The price: no
   * `ethtool -L` to more queues later.
   */
  queues?: number
  /** The local end's device group (`group N`); the peer stays in group 0. */
  group?: number
}

/** A new veth's index, and its peer's (in the peer's namespace). */
export interface VethIndices {
  index: number
  peerIndex: number
}

/**
 * A veth pair, the peer placed directly in its namespace. The peer cannot be brought up in
 * the same request (the kernel opens it before the pair is linked: ENOTCONN). Returns both
 * indices when the kernel echoes the new link (NLM_F_ECHO, Linux 6.1+): no lookup needed to
 * configure either end.
 * Equivalent: `ip link add NAME [group G] [numtxqueues N numrxqueues N] [master BR] [up] type veth
 * peer name PEER [numtxqueues N numrxqueues N] [netns NS]`.
 */
export async function linkAddVeth(
  h: Rtnl,
  name: string,
  peer: string,
  o: VethOpts = {},
): Promise<VethIndices | undefined> {
  validIfName(name)
  validIfName(peer, 'peer name')
  const master = o.master === undefined ? undefined : await resolve(h, o.master)
  const op = {
    kind: 'link.add.veth' as const,
    ...ns(h),
    name,
    ...(o.group ? { group: o.group } : {}),
    peer,
    ...(o.peerNs?.name ? { peerNs: o.peerNs.name } : {}),
    ...(master ? { master: master.name } : {}),
    ...(o.up ? { up: true } : {}),
    ...(o.queues !== undefined ? { queues: o.queues } : {}),
  }
  return h.exec(
    op,
    async () => {
      const msgs = await createLink(
        h,
        W.newLink({
          name,
          kind: {
            kind: 'veth',
            peer,
            ...(o.peerNs ? { peerNsFd: o.peerNs.fd } : {}),
            ...(o.queues !== undefined ? { peerQueues: o.queues } : {}),
          },
          ...(o.up ? { up: true } : {}),
          ...(o.queues !== undefined ? { queues: o.queues } : {}),
          ...(master ? { masterIndex: master.index } : {}),
          ...(o.group ? { group: o.group } : {}),
          echo: true,
        }),
        'veth',
      )
      const m = msgs.find((x) => x.type === K.RTM_NEWLINK)
      const l = m ? toLink(m) : undefined
      return l?.name === name && l.link ? { index: l.index, peerIndex: l.link } : undefined
    },
    undefined,
  )
}

export type MacvlanMode = keyof typeof K.MACVLAN_MODE

/** Equivalent: `ip link add NAME link PARENT type macvlan mode MODE`. */
export async function linkAddMacvlan(
  h: Rtnl,
  name: string,
  parent: LinkRef,
  mode: MacvlanMode = 'bridge',
): Promise<void> {
  validIfName(name)
  const p = await resolve(h, parent)
  await h.exec(
    { kind: 'link.add.macvlan', ...ns(h), name, parent: p.name, mode },
    () =>
      createLink(
        h,
        W.newLink({ name, linkIndex: p.index, kind: { kind: 'macvlan', mode } }),
        'macvlan',
      ),
    undefined,
  )
}

/**
 * Equivalent: `ip link add NAME type vxlan id ID [remote|group A] [local A] [dev D] [dstport P]`.
 */
export async function linkAddVxlan(h: Rtnl, name: string, v: VxlanOpts): Promise<void> {
  validIfName(name)
  const dev = v.dev === undefined ? undefined : await resolve(h, v.dev)
  await h.exec(
    { kind: 'link.add.vxlan', ...ns(h), name, vxlan: v },
    () =>
      createLink(
        h,
        W.newLink({
          name,
          kind: {
            kind: 'vxlan',
            id: v.id,
            ...(dev ? { linkIndex: dev.index } : {}),
            ...(v.remote ? { remote: v.remote } : {}),
            ...(v.group ? { group: v.group } : {}),
            ...(v.local ? { local: v.local } : {}),
            ...(v.dstport !== undefined ? { port: v.dstport } : {}),
          },
        }),
        'vxlan',
      ),
    undefined,
  )
}

/** An 802.1Q sub-interface. Equivalent: `ip link add link PARENT name NAME type vlan id ID`. */
export async function linkAddVlan(
  h: Rtnl,
  name: string,
  parent: LinkRef,
  id: number,
): Promise<void> {
  validIfName(name)
  const p = await resolve(h, parent)
  await h.exec(
    { kind: 'link.add.vlan', ...ns(h), name, parent: p.name, id },
    () =>
      createLink(h, W.newLink({ name, linkIndex: p.index, kind: { kind: 'vlan', id } }), 'vlan'),
    undefined,
  )
}

/** Equivalent: `ip link del NAME`. Throws E_NOT_FOUND when there is none. */
export async function linkDel(h: Rtnl, dev: LinkRef): Promise<void> {
  const l = await resolve(h, dev)
  await h.exec(
    { kind: 'link.del', ...ns(h), name: l.name },
    () => h.request(W.delLink(l.index)).then(() => undefined),
    undefined,
  )
}

/**
 * Delete every device of a group at once: the kernel unregisters them in one batch, so the
 * RCU grace periods and notifier rounds a deletion waits for are paid once, not per device.
 * Fails as a whole (nothing deleted) if a device of the group cannot be deleted this way
 * (EOPNOTSUPP: a physical NIC). Equivalent: `ip link del group N`.
 */
export async function linkDelGroup(h: Rtnl, group: number): Promise<void> {
  await h.exec(
    { kind: 'link.del.group', ...ns(h), group },
    () => h.request(W.delLinkGroup(group)).then(() => undefined),
    undefined,
  )
}

export interface LinkSet {
  up?: boolean
  mtu?: number
  /** MAC address text. */
  address?: string
  /** A bridge to join, or null to leave the current one (`nomaster`). */
  master?: LinkRef | null
  /** Move the link into this namespace. */
  netns?: NetNs
  newName?: string
  /**
   * `none`: no IPv6 link-local address when the link comes up (so no DAD, MLD or router
   * solicitation from it). Takes effect at the next up: the kernel applies it after the flags
   * of the same request, so send it before the up.
   */
  addrgenmode?: keyof typeof K.IN6_ADDR_GEN_MODE
}

/**
 * Equivalent: `ip link set DEV [master BR|nomaster] [mtu N] [address A] [name N] [netns NS]
 * [addrgenmode M] [up|down]`.
 */
export async function linkSet(h: Rtnl, dev: LinkRef, s: LinkSet): Promise<void> {
  const l = await resolve(h, dev)
  if (s.newName !== undefined) validIfName(s.newName, 'new name')
  const mac = s.address === undefined ? undefined : parseMac(s.address)
  const master = s.master === undefined || s.master === null ? s.master : await resolve(h, s.master)
  await h.exec(
    {
      kind: 'link.set',
      ...ns(h),
      name: l.name,
      ...(s.up !== undefined ? { up: s.up } : {}),
      ...(s.mtu !== undefined ? { mtu: s.mtu } : {}),
      ...(s.address !== undefined ? { address: s.address } : {}),
      ...(master !== undefined ? { master: master === null ? null : master.name } : {}),
      ...(s.netns ? { netns: s.netns.name ?? String(s.netns.fd) } : {}),
      ...(s.newName !== undefined ? { newName: s.newName } : {}),
      ...(s.addrgenmode ? { addrgenmode: s.addrgenmode } : {}),
    },
    () =>
      h
        .request(
          W.setLink({
            index: l.index,
            ...(s.up !== undefined ? { up: s.up } : {}),
            ...(s.mtu !== undefined ? { mtu: s.mtu } : {}),
            ...(mac ? { address: mac } : {}),
            ...(master !== undefined ? { masterIndex: master === null ? 0 : master.index } : {}),
            ...(s.newName !== undefined ? { newName: s.newName } : {}),
            ...(s.netns ? { netnsFd: s.netns.fd } : {}),
            ...(s.addrgenmode ? { addrGenMode: K.IN6_ADDR_GEN_MODE[s.addrgenmode] } : {}),
          }),
        )
        .then(() => undefined),
    undefined,
  )
}

/** Equivalent: `ip link set DEV up`. */
export const linkSetUp = (h: Rtnl, dev: LinkRef): Promise<void> => linkSet(h, dev, { up: true })
/** Equivalent: `ip link set DEV down`. */
export const linkSetDown = (h: Rtnl, dev: LinkRef): Promise<void> => linkSet(h, dev, { up: false })
/** Equivalent: `ip link set DEV master BR`. */
export const linkSetMaster = (h: Rtnl, dev: LinkRef, br: LinkRef): Promise<void> =>
  linkSet(h, dev, { master: br })
/** Equivalent: `ip link set DEV nomaster`. */
export const linkSetNoMaster = (h: Rtnl, dev: LinkRef): Promise<void> =>
  linkSet(h, dev, { master: null })
/** Equivalent: `ip link set DEV netns NS`. The link's index may change: look it up again there. */
export const linkSetNs = (h: Rtnl, dev: LinkRef, target: NetNs): Promise<void> =>
  linkSet(h, dev, { netns: target })

/** Options of a link as a port of its bridge. */
export interface BridgePortOpts {
  /** Let frames go back out of the port they came in on (reflective relay). */
  hairpin?: boolean
}

/** Equivalent: `ip link set dev DEV type bridge_slave [hairpin on|off]`. */
export async function linkSetBridgePort(h: Rtnl, dev: LinkRef, o: BridgePortOpts): Promise<void> {
  const l = await resolve(h, dev)
  await h.exec(
    {
      kind: 'link.set.bridge_slave',
      ...ns(h),
      name: l.name,
      ...(o.hairpin !== undefined ? { hairpin: o.hairpin } : {}),
    },
    () => h.request(W.setBridgePort(l.index, o)).then(() => undefined),
    undefined,
  )
}

/** Equivalent: `ip link set dev DEV promisc on|off`. */
export async function linkSetPromisc(h: Rtnl, dev: LinkRef, on: boolean): Promise<void> {
  const l = await resolve(h, dev)
  await h.exec(
    { kind: 'link.set.promisc', ...ns(h), name: l.name, on },
    () => h.request(W.setLinkPromisc(l.index, on)).then(() => undefined),
    undefined,
  )
}
