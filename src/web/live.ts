/**
 * A deployed lab, live: its recorded topology, and every interface, address and route of its
 * namespaces as the kernel reports them (rtnetlink notifications, one socket per namespace),
 * with counters and rates from a periodic netlink dump. Changes come batched.
 * @module
 */

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

export function openLive(labName: string, o: { rateMs?: number } = {}): Promise<LiveLab> {
  void labName
  void o
  throw new Error('not yet')
}
