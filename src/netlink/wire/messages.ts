/**
 * Request bodies for rtnetlink: the fixed header (ifinfomsg, ifaddrmsg, rtmsg) followed by
 * attributes in iproute2's order. Each builder returns `{ type, flags, body }`; the socket layer
 * adds the netlink header (length, seq, port).
 * @module
 */
import { isIPv4 } from 'node:net'
import { type Attr, be16, encodeAttrs, ipAttr, nest, raw, strz, u16, u32, u8 } from './attr.js'
import * as K from './constants.js'

export interface Request {
  type: number
  flags: number
  body: Buffer
}

export interface IfInfo {
  family?: number
  index?: number
  flags?: number
  change?: number
}

/** struct ifinfomsg: family u8, pad u8, type u16, index s32, flags u32, change u32. */
export function ifinfomsg(i: IfInfo = {}): Buffer {
  const b = Buffer.alloc(16)
  b.writeUInt8(i.family ?? K.AF_UNSPEC, 0)
  b.writeInt32LE(i.index ?? 0, 4)
  b.writeUInt32LE(i.flags ?? 0, 8)
  b.writeUInt32LE(i.change ?? 0, 12)
  return b
}

const NEW = K.NLM_F_CREATE | K.NLM_F_EXCL

/** The part of a new link that says what kind it is: IFLA_LINKINFO { KIND, DATA }. */
export type LinkKind =
  | { kind: 'bridge'; vlanFiltering?: boolean; mcastSnooping?: boolean }
  | { kind: 'veth'; peer: string; peerNsFd?: number; peerQueues?: number }
  | { kind: 'macvlan'; mode: keyof typeof K.MACVLAN_MODE }
  | {
      kind: 'vxlan'
      id: number
      remote?: string
      group?: string
      local?: string
      linkIndex?: number
      port?: number
    }
  | { kind: 'vlan'; id: number }

function infoData(k: LinkKind): Attr[] | undefined {
  switch (k.kind) {
    case 'bridge': {
      const d: Attr[] = []
      if (k.vlanFiltering !== undefined)
        d.push(u8(K.IFLA_BR_VLAN_FILTERING, k.vlanFiltering ? 1 : 0))
      if (k.mcastSnooping !== undefined)
        d.push(u8(K.IFLA_BR_MCAST_SNOOPING, k.mcastSnooping ? 1 : 0))
      return d.length ? d : undefined
    }
    case 'veth': {
      // VETH_INFO_PEER carries a whole ifinfomsg, then the peer's own attributes.
      const peerAttrs: Attr[] = k.peerQueues === undefined ? [] : queues(k.peerQueues)
      if (k.peerNsFd !== undefined) peerAttrs.push(u32(K.IFLA_NET_NS_FD, k.peerNsFd))
      peerAttrs.push(strz(K.IFLA_IFNAME, k.peer))
      return [raw(K.VETH_INFO_PEER, Buffer.concat([ifinfomsg(), encodeAttrs(peerAttrs)]))]
    }
    case 'macvlan':
      return [u32(K.IFLA_MACVLAN_MODE, K.MACVLAN_MODE[k.mode])]
    case 'vlan':
      return [u16(K.IFLA_VLAN_ID, k.id)]
    case 'vxlan': {
      const d: Attr[] = []
      if (k.linkIndex !== undefined) d.push(u32(K.IFLA_VXLAN_LINK, k.linkIndex))
      d.push(u32(K.IFLA_VXLAN_ID, k.id))
      if (k.local)
        d.push(ipAttr(isIPv4(k.local) ? K.IFLA_VXLAN_LOCAL : K.IFLA_VXLAN_LOCAL6, k.local))
      const peer = k.remote ?? k.group
      if (peer) d.push(ipAttr(isIPv4(peer) ? K.IFLA_VXLAN_GROUP : K.IFLA_VXLAN_GROUP6, peer))
      // ip always states learning (the kernel's default too); port 0 means the default.
      d.push(u8(K.IFLA_VXLAN_LEARNING, 1))
      if (k.port) d.push(be16(K.IFLA_VXLAN_PORT, k.port))
      return d
    }
  }
}

export function linkInfo(k: LinkKind): Attr {
  const data = infoData(k)
  // The kind goes without a NUL, as ip sends it (the kernel accepts both).
  const attrs: Attr[] = [raw(K.IFLA_INFO_KIND, Buffer.from(k.kind))]
  if (data) attrs.push(nest(K.IFLA_INFO_DATA, data))
  return nest(K.IFLA_LINKINFO, attrs)
}

export interface NewLink {
  name: string
  kind: LinkKind
  /** IFLA_LINK: the lower device (macvlan, vlan parent). */
  linkIndex?: number
  masterIndex?: number
  up?: boolean
  /** NLM_F_ECHO: the kernel answers with the new link (its index, a veth's peer index). */
  echo?: boolean
  /** IFLA_NUM_TX_QUEUES and IFLA_NUM_RX_QUEUES: `numtxqueues N numrxqueues N`. */
  queues?: number
  /** IFLA_GROUP: the device group (`group N`; 0, the default, is not sent). */
  group?: number
}

const queues = (n: number): Attr[] => [u32(K.IFLA_NUM_TX_QUEUES, n), u32(K.IFLA_NUM_RX_QUEUES, n)]

/** RTM_NEWLINK with CREATE|EXCL: `ip link add NAME ... type KIND ...`. */
export function newLink(l: NewLink): Request {
  // iproute2's order when `group` follows the name: group, queues, master, link, name, info
  const attrs: Attr[] = l.group ? [u32(K.IFLA_GROUP, l.group)] : []
  if (l.queues !== undefined) attrs.push(...queues(l.queues))
  if (l.masterIndex !== undefined) attrs.push(u32(K.IFLA_MASTER, l.masterIndex))
  if (l.linkIndex !== undefined) attrs.push(u32(K.IFLA_LINK, l.linkIndex))
  attrs.push(strz(K.IFLA_IFNAME, l.name))
  attrs.push(linkInfo(l.kind))
  const hdr = ifinfomsg(l.up ? { flags: K.IFF_UP, change: K.IFF_UP } : {})
  return {
    type: K.RTM_NEWLINK,
    flags: l.echo ? NEW | K.NLM_F_ECHO : NEW,
    body: Buffer.concat([hdr, encodeAttrs(attrs)]),
  }
}

export interface SetLink {
  index: number
  up?: boolean
  mtu?: number
  /** 0 = nomaster */
  masterIndex?: number
  address?: Buffer
  newName?: string
  netnsFd?: number
  /** IPv6 address generation (IN6_ADDR_GEN_MODE_*): `addrgenmode none` is 1. */
  addrGenMode?: number
}

/** RTM_NEWLINK on an existing index: `ip link set DEV ...`. */
export function setLink(s: SetLink): Request {
  // iproute2 adds these as it parses `master, mtu, address, name, netns`, the order
  // teach/commands.ts prints them in.
  const attrs: Attr[] = []
  if (s.masterIndex !== undefined) attrs.push(u32(K.IFLA_MASTER, s.masterIndex))
  if (s.mtu !== undefined) attrs.push(u32(K.IFLA_MTU, s.mtu))
  if (s.address) attrs.push(raw(K.IFLA_ADDRESS, s.address))
  if (s.newName !== undefined) attrs.push(strz(K.IFLA_IFNAME, s.newName))
  if (s.netnsFd !== undefined) attrs.push(u32(K.IFLA_NET_NS_FD, s.netnsFd))
  if (s.addrGenMode !== undefined)
    attrs.push(
      nest(K.IFLA_AF_SPEC, [nest(K.AF_INET6, [u8(K.IFLA_INET6_ADDR_GEN_MODE, s.addrGenMode)])]),
    )
  const hdr = ifinfomsg({
    index: s.index,
    flags: s.up ? K.IFF_UP : 0,
    change: s.up === undefined ? 0 : K.IFF_UP,
  })
  return { type: K.RTM_NEWLINK, flags: 0, body: Buffer.concat([hdr, encodeAttrs(attrs)]) }
}

/** RTM_DELLINK: `ip link del DEV`. */
export function delLink(index: number): Request {
  return { type: K.RTM_DELLINK, flags: 0, body: ifinfomsg({ index }) }
}

/** RTM_DELLINK of a device group: `ip link del group N` (one batch in the kernel). */
export function delLinkGroup(group: number): Request {
  return {
    type: K.RTM_DELLINK,
    flags: 0,
    body: Buffer.concat([ifinfomsg(), encodeAttrs([u32(K.IFLA_GROUP, group)])]),
  }
}

/** RTM_GETLINK: one link by name, or every link (dump) when name is undefined. */
export function getLink(name?: string): Request {
  const attrs: Attr[] = [u32(K.IFLA_EXT_MASK, K.RTEXT_FILTER_VF | K.RTEXT_FILTER_SKIP_STATS)]
  if (name !== undefined) attrs.push(strz(K.IFLA_IFNAME, name))
  return {
    type: K.RTM_GETLINK,
    flags: name === undefined ? K.NLM_F_DUMP : 0,
    body: Buffer.concat([ifinfomsg(), encodeAttrs(attrs)]),
  }
}

/** Dump request for every link with its counters (IFLA_STATS64): `ip -s link show`. */
export function getLinkStats(): Request {
  return {
    type: K.RTM_GETLINK,
    flags: K.NLM_F_DUMP,
    body: Buffer.concat([ifinfomsg(), encodeAttrs([u32(K.IFLA_EXT_MASK, K.RTEXT_FILTER_VF)])]),
  }
}

/** RTM_SETLINK, AF_BRIDGE: `bridge vlan add dev DEV vid N [pvid] [untagged]`. */
export function bridgeVlanAdd(index: number, vid: number, flags: number): Request {
  const info = Buffer.alloc(4)
  info.writeUInt16LE(flags, 0)
  info.writeUInt16LE(vid, 2)
  const attrs = [nest(K.IFLA_AF_SPEC, [raw(K.IFLA_BRIDGE_VLAN_INFO, info)])]
  return {
    type: K.RTM_SETLINK,
    flags: 0,
    body: Buffer.concat([ifinfomsg({ family: K.AF_BRIDGE, index }), encodeAttrs(attrs)]),
  }
}

export type AddrVerb = 'add' | 'replace' | 'del'

export interface AddrReq {
  index: number
  address: string
  prefixLen: number
  /** IFA_F_NODAD: skip duplicate address detection, usable at once (IPv6). */
  nodad?: boolean
}

/** struct ifaddrmsg + IFA_LOCAL + IFA_ADDRESS: `ip addr add|replace|del A/P dev DEV`. */
export function addrRequest(verb: AddrVerb, a: AddrReq): Request {
  const v4 = isIPv4(a.address)
  const hdr = Buffer.alloc(8)
  hdr.writeUInt8(v4 ? K.AF_INET : K.AF_INET6, 0)
  hdr.writeUInt8(a.prefixLen, 1)
  hdr.writeUInt8(a.nodad ? K.IFA_F_NODAD : 0, 2)
  hdr.writeUInt8(K.RT_SCOPE_UNIVERSE, 3)
  hdr.writeUInt32LE(a.index, 4)
  const attrs = [ipAttr(K.IFA_LOCAL, a.address), ipAttr(K.IFA_ADDRESS, a.address)]
  const type = verb === 'del' ? K.RTM_DELADDR : K.RTM_NEWADDR
  const flags = verb === 'add' ? NEW : verb === 'replace' ? K.NLM_F_CREATE | K.NLM_F_REPLACE : 0
  return { type, flags, body: Buffer.concat([hdr, encodeAttrs(attrs)]) }
}

/** Dump request for one address family (0 = all). */
export function getAddrs(family = K.AF_UNSPEC): Request {
  const hdr = Buffer.alloc(8)
  hdr.writeUInt8(family, 0)
  return { type: K.RTM_GETADDR, flags: K.NLM_F_DUMP, body: hdr }
}

export type RouteVerb = 'add' | 'replace' | 'del'

export interface RouteReq {
  family: 4 | 6
  /** Destination prefix; undefined for default. */
  dst?: string
  dstLen: number
  gateway?: string
  oifIndex?: number
  prefsrc?: string
  metric?: number
  table?: number
  scope?: 'link' | 'host'
}

/**
 * The scope ip puts in rtmsg: the one asked for; else universe for IPv6, nowhere (a wildcard)
 * for a delete, link for a route without a gateway, universe otherwise.
 */
function routeScope(del: boolean, r: RouteReq): number {
  if (r.scope === 'host') return K.RT_SCOPE_HOST
  if (r.scope === 'link') return K.RT_SCOPE_LINK
  if (r.family === 6) return K.RT_SCOPE_UNIVERSE
  if (del) return K.RT_SCOPE_NOWHERE
  return r.gateway === undefined ? K.RT_SCOPE_LINK : K.RT_SCOPE_UNIVERSE
}

/** struct rtmsg + attributes: `ip route add|replace|del ...`, in iproute2's order. */
export function routeRequest(verb: RouteVerb, r: RouteReq): Request {
  const del = verb === 'del'
  const table = r.table ?? K.RT_TABLE_MAIN
  const hdr = Buffer.alloc(12)
  hdr.writeUInt8(r.family === 4 ? K.AF_INET : K.AF_INET6, 0)
  hdr.writeUInt8(r.dstLen, 1)
  hdr.writeUInt8(table < 256 ? table : 0, 4) // RT_TABLE_UNSPEC; the id goes in RTA_TABLE
  hdr.writeUInt8(del ? K.RTPROT_UNSPEC : K.RTPROT_BOOT, 5)
  hdr.writeUInt8(routeScope(del, r), 6)
  hdr.writeUInt8(del ? K.RTN_UNSPEC : K.RTN_UNICAST, 7)
  // iproute2 order for `DST via GW dev DEV src SRC metric M table T`: the device goes last.
  const attrs: Attr[] = []
  if (r.dst !== undefined && r.dstLen > 0) attrs.push(ipAttr(K.RTA_DST, r.dst))
  if (r.gateway) attrs.push(ipAttr(K.RTA_GATEWAY, r.gateway))
  if (r.prefsrc) attrs.push(ipAttr(K.RTA_PREFSRC, r.prefsrc))
  if (r.metric !== undefined) attrs.push(u32(K.RTA_PRIORITY, r.metric))
  if (table >= 256) attrs.push(u32(K.RTA_TABLE, table))
  if (r.oifIndex !== undefined) attrs.push(u32(K.RTA_OIF, r.oifIndex))
  const type = del ? K.RTM_DELROUTE : K.RTM_NEWROUTE
  const flags = verb === 'add' ? NEW : verb === 'replace' ? K.NLM_F_CREATE | K.NLM_F_REPLACE : 0
  return { type, flags, body: Buffer.concat([hdr, encodeAttrs(attrs)]) }
}

/** Dump request for routes of one family. */
export function getRoutes(family: 4 | 6): Request {
  const hdr = Buffer.alloc(12)
  hdr.writeUInt8(family === 4 ? K.AF_INET : K.AF_INET6, 0)
  return { type: K.RTM_GETROUTE, flags: K.NLM_F_DUMP, body: hdr }
}

/** Dump request for neighbours (ndmsg is 12 bytes). */
export function getNeighs(): Request {
  return { type: K.RTM_GETNEIGH, flags: K.NLM_F_DUMP, body: Buffer.alloc(12) }
}

/** Bridge port options (IFLA_BRPORT_*), as `ip link set ... type bridge_slave` sets them. */
export interface BridgePort {
  /** IFLA_BRPORT_MODE: send frames back out of the port they came in on. */
  hairpin?: boolean
}

/**
 * RTM_NEWLINK on a bridge port: IFLA_LINKINFO { KIND "bridge_slave", SLAVE_DATA { ... } }.
 * `ip link set dev DEV type bridge_slave hairpin on|off`.
 */
export function setBridgePort(index: number, p: BridgePort): Request {
  const data: Attr[] = []
  if (p.hairpin !== undefined) data.push(u8(K.IFLA_BRPORT_MODE, p.hairpin ? 1 : 0))
  const info = nest(K.IFLA_LINKINFO, [
    raw(K.IFLA_INFO_KIND, Buffer.from('bridge_slave')),
    nest(K.IFLA_INFO_SLAVE_DATA, data),
  ])
  return {
    type: K.RTM_NEWLINK,
    flags: 0,
    body: Buffer.concat([ifinfomsg({ index }), encodeAttrs([info])]),
  }
}

/** RTM_NEWLINK that changes only IFF_PROMISC: `ip link set dev DEV promisc on|off`. */
export function setLinkPromisc(index: number, on: boolean): Request {
  const hdr = ifinfomsg({ index, flags: on ? K.IFF_PROMISC : 0, change: K.IFF_PROMISC })
  return { type: K.RTM_NEWLINK, flags: 0, body: hdr }
}
