/**
 * A deployed lab, live: its recorded topology, and every interface, address, route and rate
 * limit of its namespaces as the kernel reports them (rtnetlink notifications, one subscribed
 * socket per namespace, src/netlink/monitor.ts), with counters and rates from a netlink dump
 * every `rateMs`, and OVS ports and tags from the lab's OVS database, read again on each change
 * an `ovsdb-client monitor` child reports (and on a slow poll, should the monitor die). In the root namespace
 * only the lab's own devices are shown (its switches and the host ends of its links).
 * Changes are coalesced: one batch at most every FLUSH_MS.
 * @module
 */
import { NsdnError, isCode } from '../errors.js'
import { addrList } from '../netlink/addr.js'
import {
  type LinkCounters,
  type LinkStats,
  type LinkWithStats,
  RtMonitor,
  type RtEvent,
} from '../netlink/monitor.js'
import type { QdiscInfo } from '../netlink/qdisc.js'
import { type Route, routeList } from '../netlink/route.js'
import { NetNs } from '../netns/netns.js'
import { ovsClient } from '../ovs/daemon.js'
import { type OvsdbWatch, watchOvsdb } from '../ovs/monitor.js'
import { type OvsAtom, ovsSet } from '../ovs/vsctl.js'
import { tcRate } from '../teach/commands.js'
import { recordedLab, rootDevices, topoOf } from './topo.js'

/** One interface as the kernel reports it. */
export interface LiveIf {
  /** netns name ('' = the root/host namespace). */
  ns: string
  ifindex: number
  name: string
  /** veth, bridge, openvswitch, tun... */
  kind?: string
  /** IFF_UP (admin). */
  up: boolean
  /** operstate up / IFF_LOWER_UP. */
  running: boolean
  mtu: number
  mac?: string
  master?: string
  /** CIDR, both families, kernel's view. */
  addrs: string[]
  stats: {
    rxBytes: number
    txBytes: number
    rxPackets: number
    txPackets: number
    rxDropped: number
    txDropped: number
    rxErrors: number
    txErrors: number
  }
  /** bits/s, packets/s. */
  rates: { rxBps: number; txBps: number; rxPps: number; txPps: number }
  ovs?: { bridge: string; tag?: number; trunks?: number[] }
  /** tbf rate on this interface if any, e.g. "10mbit". */
  rate?: string
}

export interface LiveRoute {
  ns: string
  dst: string
  via?: string
  dev?: string
  family: 4 | 6
}

/** From the recorded lab (state + resolve), static. */
export interface LiveTopo {
  name: string
  nodes: { name: string; kind: 'host' | 'router' | 'root' | 'container'; ns: string }[]
  switches: { name: string; kind: 'bridge' | 'ovs'; ns: string; dev: string }[]
  links: {
    id: string
    a: { node: string; ns: string; ifname: string; vlan?: number; trunks?: number[] }
    b: { node: string; ns: string; ifname: string; vlan?: number; trunks?: number[] }
    rate?: string
  }[]
  checks: { id: string; text: string }[]
}

export interface LiveSnapshot {
  topo: LiveTopo
  ifs: LiveIf[]
  routes: LiveRoute[]
  at: number
}

export type LiveChange =
  | { type: 'if'; if: LiveIf }
  | { type: 'if-gone'; ns: string; ifindex: number; name: string }
  | { type: 'routes'; ns: string; routes: LiveRoute[] }
  | {
      type: 'rates'
      rates: { ns: string; ifindex: number; rates: LiveIf['rates']; stats: LiveIf['stats'] }[]
    }

export interface LiveLab {
  snapshot(): LiveSnapshot
  /** batched: called at most every 100-250 ms with every change since the last call */
  onChange(fn: (batch: LiveChange[]) => void): () => void
  close(): Promise<void>
}

/** Changes are delivered at most this often. */
const FLUSH_MS = 150
/** OVS ports and tags are read again this often anyway (the monitor may have died). */
const OVS_MS = 10_000
/** Namespaces dumped at once (a 250-host lab has 251). */
const PARALLEL = 16

type Stats = LiveIf['stats']
type Rates = LiveIf['rates']

const ZERO_RATES: Rates = { rxBps: 0, txBps: 0, rxPps: 0, txPps: 0 }
const ZERO_STATS: Stats = {
  rxBytes: 0,
  txBytes: 0,
  rxPackets: 0,
  txPackets: 0,
  rxDropped: 0,
  txDropped: 0,
  rxErrors: 0,
  txErrors: 0,
}

/**
 * Rates between two samples of the counters, dt milliseconds apart: bits and packets per
 * second. A counter that went down (the device was re-created) counts as no traffic. Pure.
 */
export function ratesOf(prev: LinkStats, cur: LinkStats, dtMs: number): Rates {
  if (dtMs <= 0) return ZERO_RATES
  const per = (a: number, b: number, k: number): number =>
    b >= a ? Math.round(((b - a) * k * 1000) / dtMs) : 0
  return {
    rxBps: per(prev.rxBytes, cur.rxBytes, 8),
    txBps: per(prev.txBytes, cur.txBytes, 8),
    rxPps: per(prev.rxPackets, cur.rxPackets, 1),
    txPps: per(prev.txPackets, cur.txPackets, 1),
  }
}

const sameRates = (a: Rates, b: Rates): boolean =>
  a.rxBps === b.rxBps && a.txBps === b.txBps && a.rxPps === b.rxPps && a.txPps === b.txPps

const sameStats = (a: Stats, b: Stats): boolean =>
  a.rxBytes === b.rxBytes &&
  a.txBytes === b.txBytes &&
  a.rxPackets === b.rxPackets &&
  a.txPackets === b.txPackets &&
  a.rxDropped === b.rxDropped &&
  a.txDropped === b.txDropped &&
  a.rxErrors === b.rxErrors &&
  a.txErrors === b.txErrors

/** The fields of a link event that the page shows, compared to tell a real change. */
const sameLink = (a: LiveIf, b: LiveIf): boolean =>
  a.name === b.name &&
  a.up === b.up &&
  a.running === b.running &&
  a.mtu === b.mtu &&
  a.mac === b.mac &&
  a.master === b.master &&
  a.kind === b.kind

/** One watched namespace. */
interface NsWatch {
  ns: string
  mon: RtMonitor
  /** Interfaces shown, by index. */
  ifs: Map<number, LiveIf>
  /** Every link's name by index (masters may be links not shown). */
  names: Map<number, string>
  routes: LiveRoute[]
  /** The last counters sample, by index. */
  sample: Map<number, { at: number; stats: Stats }>
  /** tbf rate of a device's root qdisc, by index. */
  tbf: Map<number, string>
  /** Notifications that came before the first dump finished. */
  early: RtEvent[] | undefined
  /** A dump must run again (notifications were lost). */
  stale: boolean
}

/** Run fn over items, at most n at a time. */
async function eachLimited<T>(
  items: readonly T[],
  n: number,
  fn: (x: T) => Promise<void>,
): Promise<void> {
  let i = 0
  const worker = async (): Promise<void> => {
    while (i < items.length) await fn(items[i++]!)
  }
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker))
}

class Live implements LiveLab {
  private readonly watches = new Map<string, NsWatch>()
  private readonly listeners = new Set<(batch: LiveChange[]) => void>()
  /** Pending changes: interfaces to send (by "ns|index"), interfaces gone, routes to read. */
  private readonly dirty = new Set<string>()
  private readonly gone: Extract<LiveChange, { type: 'if-gone' }>[] = []
  private readonly routesDirty = new Set<string>()
  private readonly rates = new Map<
    string,
    Extract<LiveChange, { type: 'rates' }>['rates'][number]
  >()
  private flushTimer: NodeJS.Timeout | undefined
  private flushing: Promise<void> = Promise.resolve()
  private timers: NodeJS.Timeout[] = []
  private ovsPorts = new Map<string, NonNullable<LiveIf['ovs']>>()
  private ovsTimer: NodeJS.Timeout | undefined
  private ovsWatch: OvsdbWatch | undefined
  private closed = false
  private ticking = false

  constructor(
    readonly topo: LiveTopo,
    /** The lab's devices in the root namespace. */
    private readonly rootDevs: Set<string>,
    private readonly ovsBridges: Set<string>,
    private readonly rateMs: number,
    private readonly recvBufferBytes: number | undefined,
    private readonly ovsPollMs: number,
  ) {}

  async start(nsNames: string[]): Promise<void> {
    for (const ns of nsNames) {
      let handle: NetNs
      try {
        handle = ns === '' ? NetNs.current() : NetNs.open(ns)
      } catch (err) {
        // a namespace of the lab that is gone (deleted by hand, an interrupted deploy)
        if (isCode(err, 'E_NETNS')) continue
        throw err
      }
      try {
        const w: NsWatch = {
          ns,
          mon: undefined as unknown as RtMonitor,
          ifs: new Map(),
          names: new Map(),
          routes: [],
          sample: new Map(),
          tbf: new Map(),
          early: [],
          stale: false,
        }
        w.mon = RtMonitor.open(
          handle,
          { events: (evs) => this.onEvents(w, evs), overrun: () => this.overrun(w) },
          this.recvBufferBytes === undefined ? {} : { recvBufferBytes: this.recvBufferBytes },
        )
        this.watches.set(ns, w)
      } finally {
        handle.close()
      }
    }
    await eachLimited([...this.watches.values()], PARALLEL, (w) => this.load(w, true))
    if (this.ovsBridges.size) {
      await this.refreshOvs()
      this.watchOvs()
      this.timers.push(setInterval(() => void this.refreshOvs(), this.ovsPollMs))
    }
    this.timers.push(setInterval(() => void this.tick(), this.rateMs))
    for (const t of this.timers) t.unref()
  }

  private shown(w: NsWatch, name: string): boolean {
    return w.ns !== '' || this.rootDevs.has(name)
  }

  private key = (ns: string, index: number): string => `${ns}|${index}`

  /** Dump everything of one namespace; the first time, replay what came meanwhile. */
  private async load(w: NsWatch, first: boolean): Promise<void> {
    w.stale = false
    const [links, addrs, r4, r6, qdiscs] = await Promise.all([
      w.mon.links(),
      addrList(w.mon.rtnl),
      routeList(w.mon.rtnl, 4),
      routeList(w.mon.rtnl, 6),
      w.mon.qdiscs(),
    ])
    const now = Date.now()
    const seen = new Set<number>()
    w.names = new Map(links.map((l) => [l.index, l.name]))
    w.tbf = new Map()
    for (const q of qdiscs) this.qdisc(w, q, false)
    const byIndex = new Map<number, string[]>()
    for (const a of addrs) byIndex.set(a.index, [...(byIndex.get(a.index) ?? []), a.cidr])
    for (const l of links) {
      if (!this.shown(w, l.name)) continue
      seen.add(l.index)
      const prev = w.ifs.get(l.index)
      const next = this.ifOf(w, l, prev, byIndex.get(l.index) ?? [])
      if (l.stats) w.sample.set(l.index, { at: now, stats: next.stats })
      w.ifs.set(l.index, next)
      if (!first && (!prev || !sameLink(prev, next) || prev.addrs.join() !== next.addrs.join()))
        this.markIf(w, l.index)
    }
    for (const [index, i] of w.ifs) if (!seen.has(index)) this.dropIf(w, index, i.name)
    w.routes = this.routesOf(w, [...r4, ...r6])
    if (!first) this.routesDirty.add(w.ns)
    const early = w.early ?? []
    w.early = undefined
    if (early.length) this.onEvents(w, early)
  }

  /** A LiveIf from a link, keeping what the link message does not carry. */
  private ifOf(w: NsWatch, l: LinkWithStats, prev: LiveIf | undefined, addrs?: string[]): LiveIf {
    const master = l.master !== undefined ? w.names.get(l.master) : undefined
    const ovs = w.ns === '' ? this.ovsPorts.get(l.name) : undefined
    const rate = w.tbf.get(l.index)
    return {
      ns: w.ns,
      ifindex: l.index,
      name: l.name,
      ...(l.kind ? { kind: l.kind } : {}),
      up: l.up,
      running: l.lowerUp || l.operstate === 6,
      mtu: l.mtu,
      ...(l.address ? { mac: l.address } : {}),
      ...(master ? { master } : {}),
      addrs: addrs ?? prev?.addrs ?? [],
      stats: l.stats ?? prev?.stats ?? ZERO_STATS,
      rates: prev?.rates ?? ZERO_RATES,
      ...(ovs ? { ovs } : {}),
      ...(rate ? { rate } : {}),
    }
  }

  private routesOf(w: NsWatch, routes: Route[]): LiveRoute[] {
    return routes
      .filter((r) => r.table === 254)
      .map((r) => {
        const dev = r.oif !== undefined ? w.names.get(r.oif) : undefined
        return {
          ns: w.ns,
          dst: r.dst,
          ...(r.via ? { via: r.via } : {}),
          ...(dev ? { dev } : {}),
          family: r.family,
        }
      })
  }

  private markIf(w: NsWatch, index: number): void {
    this.dirty.add(this.key(w.ns, index))
    this.schedule()
  }

  private dropIf(w: NsWatch, index: number, name: string): void {
    w.ifs.delete(index)
    w.sample.delete(index)
    this.dirty.delete(this.key(w.ns, index))
    this.rates.delete(this.key(w.ns, index))
    this.gone.push({ type: 'if-gone', ns: w.ns, ifindex: index, name })
    this.schedule()
  }

  private qdisc(w: NsWatch, q: QdiscInfo, del: boolean): void {
    if (!q.root) return
    if (!del && q.kind === 'tbf' && q.rate !== undefined) w.tbf.set(q.index, tcRate(q.rate))
    // a root qdisc of another kind replaced it (or it was deleted)
    else w.tbf.delete(q.index)
  }

  private onEvents(w: NsWatch, evs: RtEvent[]): void {
    if (this.closed) return
    if (w.early) {
      w.early.push(...evs)
      return
    }
    let ovsTouched = false
    for (const e of evs) {
      // IPv4 routes that die with their address or link go silently (no RTM_DELROUTE): read
      // the namespace's routes again after any change of either.
      if (e.kind !== 'qdisc') this.routesDirty.add(w.ns)
      switch (e.kind) {
        case 'link': {
          const l = e.link
          if (e.del) {
            w.names.delete(l.index)
            const had = w.ifs.get(l.index)
            if (had) this.dropIf(w, l.index, had.name)
            ovsTouched ||= w.ns === '' && !!had
            break
          }
          w.names.set(l.index, l.name)
          const prev = w.ifs.get(l.index)
          if (!this.shown(w, l.name)) {
            if (prev) this.dropIf(w, l.index, prev.name) // renamed away
            break
          }
          const next = this.ifOf(w, l, prev)
          w.ifs.set(l.index, next)
          if (!prev || !sameLink(prev, next)) this.markIf(w, l.index)
          ovsTouched ||= w.ns === '' && !prev
          break
        }
        case 'addr': {
          const i = w.ifs.get(e.addr.index)
          if (!i) break
          const addrs = i.addrs.filter((c) => c !== e.addr.cidr)
          if (!e.del) addrs.push(e.addr.cidr)
          w.ifs.set(i.ifindex, { ...i, addrs })
          this.markIf(w, i.ifindex)
          break
        }
        case 'route':
          this.schedule()
          break
        case 'qdisc': {
          this.qdisc(w, e.qdisc, e.del)
          const i = w.ifs.get(e.qdisc.index)
          if (!i || !e.qdisc.root) break
          const rate = w.tbf.get(i.ifindex)
          if (rate === i.rate) break
          const { rate: _, ...rest } = i
          w.ifs.set(i.ifindex, rate ? { ...rest, rate } : rest)
          this.markIf(w, i.ifindex)
          break
        }
      }
    }
    if (ovsTouched && this.ovsBridges.size) this.soonOvs()
  }

  /** The socket failed: at the next tick, dump the namespace again and send what differs. */
  private overrun(w: NsWatch): void {
    if (this.closed || w.early) return
    w.stale = true
  }

  private schedule(): void {
    if (this.flushTimer || this.closed) return
    this.flushTimer = setTimeout(() => {
      this.flushing = this.flushing.then(() => this.flush())
    }, FLUSH_MS)
    this.flushTimer.unref()
  }

  private async flush(): Promise<void> {
    this.flushTimer = undefined
    if (this.closed) return
    const batch: LiveChange[] = []
    batch.push(...this.gone.splice(0))
    for (const k of this.dirty) {
      const sep = k.lastIndexOf('|')
      const i = this.watches.get(k.slice(0, sep))?.ifs.get(Number(k.slice(sep + 1)))
      if (i) batch.push({ type: 'if', if: i })
    }
    this.dirty.clear()
    const routeNs = [...this.routesDirty]
    this.routesDirty.clear()
    await eachLimited(routeNs, PARALLEL, async (ns) => {
      const w = this.watches.get(ns)
      if (!w) return
      try {
        const [r4, r6] = await Promise.all([routeList(w.mon.rtnl, 4), routeList(w.mon.rtnl, 6)])
        w.routes = this.routesOf(w, [...r4, ...r6])
      } catch {
        return // the namespace went meanwhile: its watch goes at the next tick
      }
      batch.push({ type: 'routes', ns, routes: w.routes })
    })
    if (this.rates.size) {
      batch.push({ type: 'rates', rates: [...this.rates.values()] })
      this.rates.clear()
    }
    if (!batch.length || this.closed) return
    for (const fn of this.listeners) {
      try {
        fn(batch)
      } catch {
        // a listener's failure is its own; the others still get the batch
      }
    }
  }

  /** Every rateMs: the counters of every namespace, rates from the last sample. */
  private async tick(): Promise<void> {
    if (this.ticking || this.closed) return
    this.ticking = true
    try {
      await eachLimited([...this.watches.values()], PARALLEL, async (w) => {
        if (this.closed) return
        if (w.mon.gone()) return this.unwatch(w)
        try {
          if (w.stale) await this.load(w, false)
          else this.counters(w, await w.mon.counters())
        } catch (err) {
          if (w.mon.gone()) this.unwatch(w)
          else if (!(err instanceof NsdnError)) throw err
        }
      })
    } finally {
      this.ticking = false
    }
  }

  private counters(w: NsWatch, links: LinkCounters[]): void {
    const now = Date.now()
    // A notification the socket's buffer could not take is lost without a word
    // (NETLINK_NO_ENOBUFS): a link missed, or missed going, or up/down, means dump again.
    if (
      links.filter((l) => this.shown(w, l.name)).length !== w.ifs.size ||
      links.some((l) => {
        const i = w.ifs.get(l.index)
        return i ? i.up !== l.up || i.name !== l.name : this.shown(w, l.name)
      })
    )
      w.stale = true
    for (const l of links) {
      const i = w.ifs.get(l.index)
      if (!i) continue
      const prev = w.sample.get(l.index)
      w.sample.set(l.index, { at: now, stats: l.stats })
      const rates = prev ? ratesOf(prev.stats, l.stats, now - prev.at) : ZERO_RATES
      if (sameRates(rates, i.rates) && sameStats(l.stats, i.stats)) continue
      w.ifs.set(l.index, { ...i, stats: l.stats, rates })
      this.rates.set(this.key(w.ns, l.index), {
        ns: w.ns,
        ifindex: l.index,
        rates,
        stats: l.stats,
      })
      this.schedule()
    }
  }

  /** The namespace is gone (the lab destroyed): its interfaces go, its sockets close. */
  private unwatch(w: NsWatch): void {
    w.mon.close()
    this.watches.delete(w.ns)
    for (const [index, i] of w.ifs) this.dropIf(w, index, i.name)
  }

  /** Changes made by hand (`ovs-vsctl set port X tag=200`) show as soon as OVSDB has them. */
  private watchOvs(): void {
    let db: string | undefined
    try {
      db = ovsClient().db
    } catch (err) {
      // OVS does not run: nothing to watch, the slow poll notices when it does
      if (err instanceof NsdnError) return
      throw err
    }
    if (!db) return
    this.ovsWatch = watchOvsdb(
      db,
      // one table per monitor; a port joining or leaving a bridge inserts or deletes its row
      'Port',
      ['name', 'tag', 'trunks'],
      () => this.soonOvs(),
    )
  }

  private soonOvs(): void {
    if (this.ovsTimer || this.closed) return
    this.ovsTimer = setTimeout(() => {
      this.ovsTimer = undefined
      void this.refreshOvs()
    }, FLUSH_MS)
    this.ovsTimer.unref()
  }

  /** Ports, tags and trunks of the lab's OVS bridges. Equivalent: `ovs-vsctl list Port`. */
  private async refreshOvs(): Promise<void> {
    let ports: Map<string, NonNullable<LiveIf['ovs']>>
    try {
      ports = await readOvsPorts(this.ovsBridges)
    } catch (err) {
      // OVS stopped (or was never started): no port information, the rest stays live
      if (err instanceof NsdnError) ports = new Map()
      else throw err
    }
    if (this.closed) return
    this.ovsPorts = ports
    const root = this.watches.get('')
    if (!root) return
    for (const [index, i] of root.ifs) {
      const o = ports.get(i.name)
      if (JSON.stringify(o) === JSON.stringify(i.ovs)) continue
      const { ovs: _, ...rest } = i
      root.ifs.set(index, o ? { ...rest, ovs: o } : rest)
      this.markIf(root, index)
    }
  }

  snapshot(): LiveSnapshot {
    const ws = [...this.watches.values()]
    return {
      topo: this.topo,
      ifs: ws.flatMap((w) => [...w.ifs.values()]),
      routes: ws.flatMap((w) => w.routes),
      at: Date.now(),
    }
  }

  onChange(fn: (batch: LiveChange[]) => void): () => void {
    this.listeners.add(fn)
    return () => void this.listeners.delete(fn)
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    for (const t of this.timers) clearInterval(t)
    clearTimeout(this.flushTimer)
    clearTimeout(this.ovsTimer)
    await this.ovsWatch?.close()
    this.listeners.clear()
    await this.flushing
    for (const w of this.watches.values()) w.mon.close()
    this.watches.clear()
  }
}

const vlan = (a: OvsAtom): number | undefined => (typeof a === 'number' ? a : undefined)

/** Port name -> bridge, tag, trunks, for the ports of the given bridges. */
async function readOvsPorts(
  bridges: Set<string>,
): Promise<Map<string, NonNullable<LiveIf['ovs']>>> {
  const vs = ovsClient()
  const [brs, ports] = await Promise.all([
    vs.listRows('Bridge', { columns: ['name', 'ports'] }),
    vs.listRows('Port', { columns: ['_uuid', 'name', 'tag', 'trunks'] }),
  ])
  const brOf = new Map<string, string>()
  for (const b of brs) {
    if (!bridges.has(String(b.name))) continue
    for (const p of ovsSet(b.ports)) if (typeof p === 'object') brOf.set(p.uuid, String(b.name))
  }
  const out = new Map<string, NonNullable<LiveIf['ovs']>>()
  for (const p of ports) {
    const id = p._uuid
    const bridge =
      typeof id === 'object' && !Array.isArray(id) && !(id instanceof Map)
        ? brOf.get(id.uuid)
        : undefined
    if (!bridge) continue
    const tag = ovsSet(p.tag).map(vlan)[0]
    const trunks = ovsSet(p.trunks).flatMap((t) => vlan(t) ?? [])
    out.set(String(p.name), {
      bridge,
      ...(tag !== undefined ? { tag } : {}),
      ...(trunks.length ? { trunks } : {}),
    })
  }
  return out
}

export interface LiveOpts {
  /** How often counters are read, ms (100 or more; default 1000). */
  rateMs?: number
  /**
   * Receive buffer of each namespace's notification socket, bytes (default 4 MiB, capped by
   * net.core.rmem_max). Notifications that overflow it are not lost for the page: the
   * namespace is dumped again.
   */
  recvBufferBytes?: number
  /**
   * How often OVS ports are read even without a change reported by the OVSDB monitor, ms
   * (default 10000): a safety net should the monitor end.
   */
  ovsPollMs?: number
}

/**
 * Watch the deployed lab called labName. E_NOT_FOUND when no such lab is deployed. Close it:
 * it holds two netlink sockets per namespace of the lab.
 */
export async function openLive(labName: string, o: LiveOpts = {}): Promise<LiveLab> {
  const lab = recordedLab(labName)
  const rateMs = o.rateMs ?? 1000
  if (!Number.isInteger(rateMs) || rateMs < 100)
    throw new NsdnError('E_CONFIG', `rateMs ${rateMs}: counters are read at most every 100 ms`, {
      hint: 'give a whole number of milliseconds, 100 or more (default 1000)',
    })
  const ovsPollMs = o.ovsPollMs ?? OVS_MS
  if (!Number.isInteger(ovsPollMs) || ovsPollMs < 1000 || ovsPollMs > 2 ** 31 - 1)
    throw new NsdnError('E_CONFIG', `ovsPollMs ${ovsPollMs}: out of range`, {
      hint: 'give a whole number of milliseconds from 1000 to 2147483647 (default 10000)',
    })
  const live = new Live(
    topoOf(lab),
    rootDevices(lab),
    new Set(lab.switches.filter((s) => s.kind === 'ovs').map((s) => s.dev)),
    rateMs,
    o.recvBufferBytes,
    ovsPollMs,
  )
  const nss = ['', ...new Set(lab.nodes.flatMap((n) => (n.ns ? [n.ns] : [])))]
  try {
    await live.start(nss)
  } catch (err) {
    await live.close()
    throw err
  }
  return live
}
