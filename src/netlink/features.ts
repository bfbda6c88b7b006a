/**
 * Kernel features probed by trying them: a module may load on demand, so only an attempt
 * tells. Each probe runs once per process in a throwaway named netns that it deletes, so it
 * leaves nothing behind. Probes are reads in effect: their requests bypass the op choke point
 * (they run under --dry-run and stay out of --explain), since the answer must be real.
 * @module
 */
import { randomBytes } from 'node:crypto'
import { NetNs } from '../netns/netns.js'
import { opMode } from '../op.js'
import { linkByName, linkFeatureError } from './link.js'
import { netemProbe } from './qdisc.js'
import { NetlinkErrno, Rtnl } from './rtnl.js'
import * as W from './wire/messages.js'

const cache = new Map<string, Promise<boolean>>()

function once(key: string, probe: () => Promise<boolean>): Promise<boolean> {
  let p = cache.get(key)
  if (!p) {
    p = probe()
    cache.set(key, p)
    // A probe that failed for another reason (no permission) may be retried.
    p.catch(() => cache.delete(key))
  }
  return p
}

/** Run a synchronous namespace op with teaching and dry-run off (sync: nothing interleaves). */
function quietly<T>(fn: () => T): T {
  const { explain, dryRun } = opMode
  opMode.explain = opMode.dryRun = false
  try {
    return fn()
  } finally {
    opMode.explain = explain
    opMode.dryRun = dryRun
  }
}

/** true when fn succeeds in a fresh namespace, false when the kernel answers `missing`. */
async function tryInThrowawayNetns(
  fn: (h: Rtnl) => Promise<unknown>,
  missing = 'EOPNOTSUPP',
): Promise<boolean> {
  const name = `nsdn-probe-${process.pid}-${randomBytes(4).toString('hex')}`
  const ns = quietly(() => NetNs.create(name))
  try {
    await fn(Rtnl.for(ns))
    return true
  } catch (err) {
    if (err instanceof NetlinkErrno && err.errno === missing) return false
    throw err
  } finally {
    // Deleting it closes nsdn's socket there, and everything created in it goes with it.
    quietly(() => NetNs.delete(name))
    ns.close()
  }
}

/**
 * Whether this kernel can create links of `kind`, on a veth parent.
 * Equivalent: `ip link add link p0 name p0.1 type vlan id 1` in a throwaway netns.
 */
export function probeLinkKind(kind: 'vlan' | 'macvlan'): Promise<boolean> {
  return once(`link:${kind}`, () =>
    tryInThrowawayNetns(async (h) => {
      await h.request(W.newLink({ name: 'p0', kind: { kind: 'veth', peer: 'p1' } }))
      const parent = await linkByName(h, 'p0')
      const data: W.LinkKind = kind === 'vlan' ? { kind, id: 1 } : { kind, mode: 'bridge' }
      await h.request(W.newLink({ name: 'p0.1', linkIndex: parent.index, kind: data }))
    }),
  )
}

/**
 * Whether Linux bridges can filter VLANs. Without CONFIG_BRIDGE_VLAN_FILTERING the kernel
 * refuses the whole bridge when vlan_filtering 1 is asked for.
 * Equivalent: `ip link add p0 type bridge vlan_filtering 1` in a throwaway netns.
 */
export function probeBridgeVlanFiltering(): Promise<boolean> {
  return once('bridge:vlan_filtering', () =>
    tryInThrowawayNetns((h) =>
      h.request(W.newLink({ name: 'p0', kind: { kind: 'bridge', vlanFiltering: true } })),
    ),
  )
}

/** Throws a KernelFeatureError naming the kernel option when links of `kind` are missing. */
export async function requireLinkKind(kind: 'vlan' | 'macvlan'): Promise<void> {
  if (!(await probeLinkKind(kind))) throw linkFeatureError(kind)
}

/** Throws a KernelFeatureError naming CONFIG_BRIDGE_VLAN_FILTERING when it is missing. */
export async function requireBridgeVlanFiltering(): Promise<void> {
  if (!(await probeBridgeVlanFiltering())) throw linkFeatureError('bridge-vlan-filtering')
}

/**
 * Whether this kernel has the netem qdisc (delay, loss): an unknown qdisc kind is ENOENT.
 * Equivalent: `tc qdisc add dev lo root netem` in a throwaway netns.
 */
export function probeNetem(): Promise<boolean> {
  return once('qdisc:netem', () => tryInThrowawayNetns((h) => h.request(netemProbe()), 'ENOENT'))
}
