/**
 * An IPAM store in a Map, for unit tests and for callers that keep leases themselves.
 * @module
 */
import type { IpamStore, Owner } from './store.js'

export class MemoryStore implements IpamStore {
  readonly location = 'memory'
  /** ip -> owner */
  readonly leases = new Map<string, Owner>()
  readonly last = new Map<number, string>()

  async withLock<T>(fn: () => T): Promise<T> {
    return fn()
  }

  reserve(ip: string, owner: Owner, rangeSet: number): boolean {
    if (this.leases.has(ip)) return false
    this.leases.set(ip, { ...owner })
    this.last.set(rangeSet, ip)
    return true
  }

  release(ip: string): void {
    this.leases.delete(ip)
  }

  lastReserved(rangeSet: number): string | undefined {
    return this.last.get(rangeSet)
  }

  getByOwner(owner: Owner): string[] {
    return [...this.leases]
      .filter(([, o]) => o.containerId === owner.containerId && o.ifname === owner.ifname)
      .map(([ip]) => ip)
  }

  all(): { ip: string; owner: Owner }[] {
    return [...this.leases].map(([ip, owner]) => ({ ip, owner: { ...owner } }))
  }

  releaseByOwner(owner: Owner): string[] {
    const ips = this.getByOwner(owner)
    for (const ip of ips) this.leases.delete(ip)
    return ips
  }
}
