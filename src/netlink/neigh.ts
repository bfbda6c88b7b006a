/**
 * Neighbours (the ARP and NDP caches).
 * @module
 */
// the rt part only: the package's index loads every family (nl80211, wireguard...)
import * as rt from 'netlink/dist/rt/structs'
import type { Rtnl } from './rtnl.js'
import { ipText } from './wire/attr.js'
import * as K from './wire/constants.js'
import * as W from './wire/messages.js'

export interface Neigh {
  index: number
  family: 4 | 6
  address: string
  lladdr: string | undefined
  /** NUD_* bits: 0x02 reachable, 0x04 stale, 0x20 failed, 0x80 permanent. */
  state: number
}

/** Equivalent: `ip neigh show`. */
export async function neighList(h: Rtnl): Promise<Neigh[]> {
  const msgs = await h.exec(
    { kind: 'neigh.show', ...(h.nsName ? { ns: h.nsName } : {}) },
    () => h.dump(W.getNeighs()),
    [],
  )
  const out: Neigh[] = []
  for (const m of msgs) {
    if (m.type !== K.RTM_NEWNEIGH || !m.data.length) continue
    const n = rt.parseNeighborMessage(m.data)
    if (!n.attrs.dst) continue
    out.push({
      index: n.data.ifindex ?? 0,
      family: n.data.family === K.AF_INET ? 4 : 6,
      address: ipText(n.attrs.dst),
      lladdr: n.attrs.lladdr
        ? [...n.attrs.lladdr].map((b) => b.toString(16).padStart(2, '0')).join(':')
        : undefined,
      state: m.data.readUInt16LE(8),
    })
  }
  return out
}
