/**
 * Watch one network namespace: rtnetlink notifications (links, addresses, routes, qdiscs) on a
 * socket of their own that joined the multicast groups, and dumps (the initial state, the
 * counters the live view polls) on a second, private, socket: a dump must not share a socket
 * with notifications, which would land between its parts. This is `ip monitor`, without `ip`.
 * @module
 */
import fs from 'node:fs'
import { type NetlinkMessage, type NetlinkSocket, createNetlink } from 'netlink'
import { NetNs, runInNetnsSync } from '../netns/netns.js'
import { type Addr, toAddr } from './addr.js'
import { type Link, toLink } from './link.js'
import { type QdiscInfo, qdiscList } from './qdisc.js'
import { type Route, toRoute } from './route.js'
import { Rtnl } from './rtnl.js'
import { decodeAttrs } from './wire/attr.js'
import * as K from './wire/constants.js'
import * as W from './wire/messages.js'
import { RTM_DELQDISC, RTM_NEWQDISC, parseQdisc } from './wire/tc.js'

/** Multicast groups of rtnetlink (linux/rtnetlink.h, enum rtnetlink_groups). */
export const RTNLGRP = {
  LINK: 1,
  TC: 4,
  IPV4_IFADDR: 5,
  IPV4_ROUTE: 7,
  IPV6_IFADDR: 9,
  IPV6_ROUTE: 11,
} as const

const IFLA_STATS64 = 23

/** The counters of struct rtnl_link_stats64 the live view shows. */
export interface LinkStats {
  rxPackets: number
  txPackets: number
  rxBytes: number
  txBytes: number
  rxErrors: number
  txErrors: number
  rxDropped: number
  txDropped: number
}

/** A link with its counters (when the message carried them). */
export interface LinkWithStats extends Link {
  stats: LinkStats | undefined
}

/** IFLA_STATS64 of an RTM_NEWLINK message, or undefined. Pure: unit-tested. */
export function linkStats(m: NetlinkMessage): LinkStats | undefined {
  const b = decodeAttrs(m.data.subarray(16)).get(IFLA_STATS64)
  if (!b || b.length < 64) return undefined
  const u = (i: number): number => Number(b.readBigUInt64LE(i * 8))
  return {
    rxPackets: u(0),
    txPackets: u(1),
    rxBytes: u(2),
    txBytes: u(3),
    rxErrors: u(4),
    txErrors: u(5),
    rxDropped: u(6),
    txDropped: u(7),
  }
}

const withStats = (m: NetlinkMessage): LinkWithStats => ({ ...toLink(m), stats: linkStats(m) })

/** One notification. */
export type RtEvent =
  | { kind: 'link'; del: boolean; link: LinkWithStats }
  | { kind: 'addr'; del: boolean; addr: Addr }
  | { kind: 'route'; del: boolean; route: Route }
  | { kind: 'qdisc'; del: boolean; qdisc: QdiscInfo }

/** Decode the notifications of one read; what is not ours (or not shown) is left out. */
export function decodeEvents(msgs: readonly NetlinkMessage[]): RtEvent[] {
  const out: RtEvent[] = []
  for (const m of msgs) {
    switch (m.type) {
      case K.RTM_NEWLINK:
      case K.RTM_DELLINK:
        out.push({ kind: 'link', del: m.type === K.RTM_DELLINK, link: withStats(m) })
        break
      case K.RTM_NEWADDR:
      case K.RTM_DELADDR: {
        const addr = toAddr(m)
        if (addr) out.push({ kind: 'addr', del: m.type === K.RTM_DELADDR, addr })
        break
      }
      case K.RTM_NEWROUTE:
      case K.RTM_DELROUTE: {
        const route = toRoute(m)
        if (route) out.push({ kind: 'route', del: m.type === K.RTM_DELROUTE, route })
        break
      }
      case RTM_NEWQDISC:
      case RTM_DELQDISC:
        out.push({ kind: 'qdisc', del: m.type === RTM_DELQDISC, qdisc: parseQdisc(m.data) })
        break
    }
  }
  return out
}

export interface MonitorHandlers {
  /** The notifications of one read from the socket, in the kernel's order. */
  events(events: RtEvent[]): void
  /**
   * Notifications were lost (the socket's buffer overflowed, ENOBUFS): the state seen so far
   * may be stale; dump again.
   */
  overrun(): void
}

/** A watched namespace. Close it: its sockets pin the namespace (and its devices). */
export class RtMonitor {
  private closed = false
  private constructor(
    private readonly events: NetlinkSocket,
    /** Dumps go here. */
    readonly rtnl: Rtnl,
    /** The namespace file and its identity, to tell when it is gone. */
    private readonly path: string | undefined,
    private readonly id: string,
  ) {}

  /**
   * Join the groups in ns and start delivering. Subscribe first, then dump: what changes
   * between the two is in the notifications.
   */
  static open(ns: NetNs, h: MonitorHandlers): RtMonitor {
    const make = (): NetlinkSocket => {
      const s = createNetlink(0)
      for (const g of Object.values(RTNLGRP)) s.addMembership(g)
      return s
    }
    const sock = ns.id === NetNs.current().id ? make() : runInNetnsSync(ns, make)
    sock.unref()
    try {
      // A burst (a lab of 250 hosts coming up) must not overflow the default buffer; the
      // kernel caps this at net.core.rmem_max.
      sock.setRecvBufferSize(4 << 20)
    } catch {
      // a smaller buffer only means an earlier overrun, which is handled
    }
    sock.on('message', (msgs) => h.events(decodeEvents(msgs)))
    sock.on('error', (err) => {
      if (err.code === 'ENOBUFS') h.overrun()
    })
    let rtnl: Rtnl
    try {
      rtnl = Rtnl.open(ns)
    } catch (err) {
      sock.close()
      throw err
    }
    return new RtMonitor(sock, rtnl, ns.path, ns.id)
  }

  /** Every link with its counters. Equivalent: `ip -s link show`. */
  async links(): Promise<LinkWithStats[]> {
    const msgs = await this.rtnl.exec(
      { kind: 'link.show', ...(this.rtnl.nsName ? { ns: this.rtnl.nsName } : {}) },
      () => this.rtnl.dump(W.getLinkStats()),
      [],
    )
    return msgs.filter((m) => m.type === K.RTM_NEWLINK).map(withStats)
  }

  /**
   * The counters of every link, and nothing else decoded: what the live view reads every
   * second of every namespace. Equivalent: `ip -s link show`.
   */
  async counters(): Promise<{ index: number; stats: LinkStats }[]> {
    const msgs = await this.rtnl.exec(
      { kind: 'link.show', ...(this.rtnl.nsName ? { ns: this.rtnl.nsName } : {}) },
      () => this.rtnl.dump(W.getLinkStats()),
      [],
    )
    const out: { index: number; stats: LinkStats }[] = []
    for (const m of msgs) {
      const stats = m.type === K.RTM_NEWLINK ? linkStats(m) : undefined
      if (stats) out.push({ index: m.data.readInt32LE(4), stats })
    }
    return out
  }

  /** Every qdisc. Equivalent: `tc qdisc show`. */
  qdiscs(): Promise<QdiscInfo[]> {
    return qdiscList(this.rtnl)
  }

  /** Whether the namespace's file was deleted (or now holds another namespace). */
  gone(): boolean {
    if (this.path === undefined) return false
    const st = fs.statSync(this.path, { throwIfNoEntry: false })
    return !st || `${st.dev}:${st.ino}` !== this.id
  }

  close(): void {
    if (this.closed) return
    this.closed = true
    this.events.close()
    this.rtnl.close()
  }
}
