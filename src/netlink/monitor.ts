/**
 * Watch one network namespace: rtnetlink notifications (links, addresses, routes, qdiscs) on a
 * socket of their own that joined the multicast groups, and dumps (the initial state, the
 * counters the live view polls) on a second, private, socket: a dump must not share a socket
 * with notifications, which would land between its parts. This is `ip monitor`, without `ip`.
 * @module
 */
import fs from 'node:fs'
import { type NetlinkMessage, type NetlinkSocket, createNetlink } from 'netlink'
import { NsdnError } from '../errors.js'
import { SOCKOPT, netlinkPort, setsockoptInt } from '../ffi/libc.js'
import { NetNs, runInNetnsSync } from '../netns/netns.js'
import { type Addr, toAddr } from './addr.js'
import { type Link, toLink } from './link.js'
import { type QdiscInfo, qdiscList } from './qdisc.js'
import { type Route, toRoute } from './route.js'
import { Rtnl } from './rtnl.js'
import { decodeAttrs, strOf } from './wire/attr.js'
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

/** The events socket's receive buffer (root may go past net.core.rmem_max). */
const DEFAULT_RCVBUF = 4 << 20

/** The fd of netlink socket s, which was opened on the lowest free fd, guess. */
function fdOf(s: NetlinkSocket, guess: number): number | undefined {
  const port = s.address().port
  const is = (fd: number): boolean => {
    try {
      return fs.fstatSync(fd).isSocket() && netlinkPort(fd) === port
    } catch {
      return false
    }
  }
  if (is(guess)) return guess
  // another fd was opened meanwhile (a libuv pool thread): look at them all
  return fs.readdirSync('/proc/self/fd').map(Number).find(is)
}

/**
 * A full buffer makes the kernel report ENOBUFS as a socket error, which the netlink package
 * cannot deliver (it aborts the process). So: a buffer past rmem_max, and no ENOBUFS (lost
 * notifications are found by the caller's periodic check instead). The package does not give
 * the socket's fd: the kernel gives a new socket the lowest free fd.
 */
function quietSocket(create: () => NetlinkSocket, bytes: number): NetlinkSocket {
  const free = fs.openSync('/dev/null', 'r')
  fs.closeSync(free)
  const s = create()
  const fd = fdOf(s, free)
  if (fd === undefined) {
    s.close()
    throw new NsdnError('E_INTERNAL', 'cannot find the fd of a new netlink socket')
  }
  try {
    setsockoptInt(fd, SOCKOPT.SOL_SOCKET, SOCKOPT.SO_RCVBUFFORCE, bytes)
  } catch {
    s.setRecvBufferSize(bytes) // without CAP_NET_ADMIN: capped at rmem_max
  }
  setsockoptInt(fd, SOCKOPT.SOL_NETLINK, SOCKOPT.NETLINK_NO_ENOBUFS, 1)
  return s
}

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

/** What the counters dump gives of each link: enough to tell a missed notification. */
export interface LinkCounters {
  index: number
  name: string
  up: boolean
  stats: LinkStats
}

/** IFLA_STATS64 of an RTM_NEWLINK message, or undefined. Pure: unit-tested. */
export function linkStats(m: NetlinkMessage): LinkStats | undefined {
  return statsOf(decodeAttrs(m.data.subarray(16)).get(IFLA_STATS64))
}

function statsOf(b: Buffer | undefined): LinkStats | undefined {
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
  /** The socket failed: notifications may be lost, the state seen so far stale; dump again. */
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
  static open(ns: NetNs, h: MonitorHandlers, o: { recvBufferBytes?: number } = {}): RtMonitor {
    const make = (): NetlinkSocket =>
      quietSocket(() => {
        const s = createNetlink(0)
        for (const g of Object.values(RTNLGRP)) s.addMembership(g)
        return s
      }, o.recvBufferBytes ?? DEFAULT_RCVBUF)
    const sock = ns.id === NetNs.current().id ? make() : runInNetnsSync(ns, make)
    sock.unref()
    sock.on('message', (msgs) => h.events(decodeEvents(msgs)))
    // NETLINK_NO_ENOBUFS: no socket error is expected; one would be the package's to report
    sock.on('error', () => h.overrun())
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
  async counters(): Promise<LinkCounters[]> {
    const msgs = await this.rtnl.exec(
      { kind: 'link.show', ...(this.rtnl.nsName ? { ns: this.rtnl.nsName } : {}) },
      () => this.rtnl.dump(W.getLinkStats()),
      [],
    )
    const out: LinkCounters[] = []
    for (const m of msgs) {
      if (m.type !== K.RTM_NEWLINK) continue
      const a = decodeAttrs(m.data.subarray(16))
      const stats = statsOf(a.get(IFLA_STATS64))
      if (stats)
        out.push({
          index: m.data.readInt32LE(4),
          name: strOf(a.get(K.IFLA_IFNAME)) ?? '',
          up: (m.data.readUInt32LE(8) & K.IFF_UP) !== 0,
          stats,
        })
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
