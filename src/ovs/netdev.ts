/**
 * What a port of a userspace-datapath (netdev) bridge needs: the userspace datapath moves
 * frames between ports as they are, through packet sockets, so a frame sent with its checksum
 * left to offload arrives with a wrong one: ping works, TCP stalls. Whoever sends into a port
 * (a veth's other end) must compute checksums in software. The ovs driver and `nsdn ovs
 * add-port` both go through here.
 * @module
 */
import { ethtoolFeaturesSet } from '../netlink/ethtool.js'
import { type Link, linkList, tryLinkByName } from '../netlink/link.js'
import { Rtnl } from '../netlink/rtnl.js'
import { NetNs } from '../netns/netns.js'
import type { Vsctl } from './vsctl.js'

/** Equivalent: `[ip netns exec NS] ethtool -K DEV tx-checksum-ip-generic off`. */
export function softwareTxChecksum(ns: NetNs, dev: string): Promise<void> {
  return ethtoolFeaturesSet(ns, dev, { 'tx-checksum-ip-generic': false })
}

/**
 * The other end of veth `port` (a link of nsdn's namespace): in that namespace or in a named
 * one, found by the two ends naming each other's index. undefined for a device that is no veth,
 * or whose peer is in a namespace without a name.
 */
async function vethPeer(port: Link): Promise<{ ns: NetNs; name: string } | undefined> {
  if (port.kind !== 'veth' || port.link === undefined) return undefined
  const isPeer = (l: Link): boolean => l.index === port.link && l.link === port.index
  const host = NetNs.current()
  const here = (await linkList(Rtnl.for(host))).find((l) => isPeer(l) && l.name !== port.name)
  if (here) return { ns: host, name: here.name }
  for (const name of NetNs.list()) {
    const ns = NetNs.open(name)
    const peer = (await linkList(Rtnl.for(ns))).find(isPeer)
    if (peer) return { ns, name: peer.name }
    ns.close()
  }
  return undefined
}

/**
 * For a link added by name as a port of `bridge`: when the bridge is netdev and the link a
 * veth, software checksums on its peer (a port that is no veth is left as it is).
 */
export async function netdevPortChecksums(vs: Vsctl, bridge: string, port: string): Promise<void> {
  const [row] = await vs.listRows('Bridge', { records: [bridge], columns: ['datapath_type'] })
  if (row?.datapath_type !== 'netdev') return
  const link = await tryLinkByName(Rtnl.for(NetNs.current()), port)
  const peer = link && (await vethPeer(link))
  if (peer) await softwareTxChecksum(peer.ns, peer.name)
}
