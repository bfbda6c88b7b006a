/**
 * Where host-local keeps its leases. The allocator calls every method but `withLock` from inside
 * `withLock`, so a store needs no locking of its own; the methods are synchronous so that nothing
 * else in the process interleaves with a critical section.
 * @module
 */
import { validContainerId, validIfName } from '../validate.js'

/** Who holds an address: a container's interface. */
export interface Owner {
  containerId: string
  ifname: string
}

export interface IpamStore {
  /** Where the leases are, for messages: a directory, or "memory". */
  readonly location: string
  /** Run fn holding the store's lock (for a file store: across processes). */
  withLock<T>(fn: () => T): Promise<T>
  /**
   * Take `ip` (canonical text) for owner and remember it as range set `rangeSet`'s last
   * reserved address. False, changing nothing, when the address is already taken.
   */
  reserve(ip: string, owner: Owner, rangeSet: number): boolean
  /** Give back one address; nothing happens when it is not taken. */
  release(ip: string): void
  /** The address last reserved in range set `rangeSet`, as stored (may be stale or garbage). */
  lastReserved(rangeSet: number): string | undefined
  /** Every address owner holds. */
  getByOwner(owner: Owner): string[]
  /** Give back every address owner holds; returns them. */
  releaseByOwner(owner: Owner): string[]
  /** Every lease: address and holder (for GC). */
  all(): { ip: string; owner: Owner }[]
}

/**
 * Check a container id and an interface name. The id is written into lease files, so a line
 * break in it would corrupt them.
 */
export function validOwner(containerId: string, ifname: string): Owner {
  return {
    containerId: validContainerId(containerId, 'containerId'),
    ifname: validIfName(ifname, 'ifname'),
  }
}
