/**
 * host-local IPAM: hands out one address from each range set and keeps the leases in a store.
 * Config and behaviour follow the reference host-local plugin: the search in each set starts
 * just after the address last reserved there (round-robin, so a released address is not handed
 * out again at once), skips gateways and taken addresses, and an owner (container id +
 * interface) holds at most one address per set.
 * @module
 */
import { readFileSync } from 'node:fs'
import { isAbsolute } from 'node:path'
import { ConfigError, NsdnError, errorMessage } from '../errors.js'
import { listAt, optStringAt, type JsonObject } from './fields.js'
import {
  type Addr,
  type IpRange,
  type RangeSet,
  type SetPos,
  candidates,
  checkRangeSetsDisjoint,
  formatAddr,
  formatRangeSet,
  formatSubnet,
  parseAddr,
  parseRange,
  parseRangeSet,
  rangeAt,
  rangeIndexOf,
} from './range.js'
import { type Dns, type IpConfig, type IpamResult, type Route } from './result.js'
import { parseResolvConf, parseRoutes } from './result.js'
import { type IpamStore, type Owner, validOwner } from './store.js'

/** The reference plugin's default. */
export const DEFAULT_DATA_DIR = '/var/lib/cni/networks'

export interface HostLocalConf {
  type: 'host-local'
  /** Range set i keeps its round-robin position in `last_reserved_ip.<i>`. */
  rangeSets: RangeSet[]
  routes: Route[]
  dataDir: string
  /** A resolv.conf whose nameserver, domain, search and options lines become the Result's dns. */
  resolvConf?: string
}

/**
 * Parse a host-local `ipam` object: `ranges` (a list of range sets), or the legacy single range
 * (`subnet`, `rangeStart`, `rangeEnd`, `gateway` beside `type`), or both; then `routes`,
 * `dataDir`, `resolvConf`. The legacy range becomes range set 0, as in the reference plugin.
 */
export function parseHostLocalConf(o: JsonObject, where: string): HostLocalConf {
  const sets: RangeSet[] = []
  const wheres: string[] = []
  if (o.subnet !== undefined) {
    sets.push([parseRange(o, where)])
    wheres.push(`${where}.subnet`)
  } else {
    const stray = ['rangeStart', 'rangeEnd', 'gateway'].find((k) => o[k] !== undefined)
    if (stray)
      throw new ConfigError(`${stray} without subnet`, `${where}.${stray}`, {
        hint: `add "subnet" beside it, or move it into a range of "ranges"`,
      })
  }
  if (o.ranges !== undefined)
    listAt(o.ranges, `${where}.ranges`).forEach((raw, i) => {
      wheres.push(`${where}.ranges[${i}]`)
      sets.push(parseRangeSet(raw, `${where}.ranges[${i}]`))
    })
  if (sets.length === 0)
    throw new ConfigError('no address ranges', `${where}.ranges`, {
      hint: 'add "ranges": [[{"subnet": "10.1.0.0/24"}]]',
    })
  checkRangeSetsDisjoint(sets, wheres)
  const dataDir = optStringAt(o, 'dataDir', where) ?? DEFAULT_DATA_DIR
  if (!isAbsolute(dataDir))
    throw new ConfigError(`dataDir "${dataDir}" is not an absolute path`, `${where}.dataDir`, {
      hint: `e.g. ${DEFAULT_DATA_DIR}`,
    })
  const resolvConf = optStringAt(o, 'resolvConf', where)
  return {
    type: 'host-local',
    rangeSets: sets,
    routes: o.routes === undefined ? [] : parseRoutes(o.routes, `${where}.routes`),
    dataDir,
    ...(resolvConf !== undefined && { resolvConf }),
  }
}

/** A stored address as an Addr, or undefined when the text is no plain address. */
function storedAddr(text: string | undefined): Addr | undefined {
  try {
    return text === undefined ? undefined : parseAddr(text, 'stored address')
  } catch {
    return undefined
  }
}

function describeOwner(o: Owner): string {
  return `container "${o.containerId}" interface "${o.ifname}"`
}

/** Allocation, release and lookup over one network's store. */
export class HostLocal {
  constructor(
    readonly conf: HostLocalConf,
    readonly store: IpamStore,
  ) {}

  /**
   * Reserve one address in each range set for the container's interface: `requestedIps` (bare
   * or with the subnet's prefix length) where given, the next free one otherwise. All or
   * nothing: on failure, what this call reserved is released.
   */
  async allocate(
    containerId: string,
    ifname: string,
    opts: { requestedIps?: readonly string[] } = {},
  ): Promise<IpamResult> {
    const owner = validOwner(containerId, ifname)
    const wanted = this.placeRequested(opts.requestedIps ?? [])
    const dns = this.dns() // before reserving, so an unreadable file leaves nothing behind
    const ips = await this.store.withLock(() => this.reserveAll(owner, wanted))
    return { ips, routes: this.conf.routes.map((r) => ({ ...r })), dns }
  }

  /** Release every address the container's interface holds. Nothing held is fine. */
  async release(containerId: string, ifname: string): Promise<string[]> {
    const owner = validOwner(containerId, ifname)
    return this.store.withLock(() => this.store.releaseByOwner(owner))
  }

  /**
   * GC: release every lease whose holder is not in `valid` ("containerId/ifname"); returns the
   * addresses released. A lease that names no interface (an old format) counts by id alone.
   */
  async gc(valid: ReadonlySet<string>): Promise<string[]> {
    const ids = new Set([...valid].map((k) => k.slice(0, k.lastIndexOf('/'))))
    return this.store.withLock(() =>
      this.store
        .all()
        .filter(({ owner: o }) =>
          o.ifname ? !valid.has(`${o.containerId}/${o.ifname}`) : !ids.has(o.containerId),
        )
        .map(({ ip }) => (this.store.release(ip), ip)),
    )
  }

  /** The addresses the container's interface holds (for CHECK); E_NOT_FOUND when a set has none. */
  async get(containerId: string, ifname: string): Promise<IpamResult> {
    const owner = validOwner(containerId, ifname)
    const dns = this.dns()
    const held = (await this.store.withLock(() => this.store.getByOwner(owner))).map(storedAddr)
    const ips = this.conf.rangeSets.map((set, s) => {
      const a = held.find((h) => h !== undefined && rangeIndexOf(set, h) >= 0)
      if (!a)
        throw new NsdnError(
          'E_NOT_FOUND',
          `${describeOwner(owner)} holds no address in range set ${s} (${formatRangeSet(set)})`,
          { hint: 'run ADD for it first' },
        )
      return this.ipConfig(set, { index: rangeIndexOf(set, a), value: a.value })
    })
    return { ips, routes: this.conf.routes.map((r) => ({ ...r })), dns }
  }

  /** Which range set each requested address belongs to; bad requests fail before any lock. */
  private placeRequested(texts: readonly string[]): (SetPos | undefined)[] {
    const sets = this.conf.rangeSets
    const wanted: (SetPos | undefined)[] = sets.map(() => undefined)
    texts.forEach((text, i) => {
      const at = `requestedIps[${i}]`
      const [addrText, prefix] = text.split('/')
      const a = parseAddr(addrText, at)
      const s = sets.findIndex((set) => rangeIndexOf(set, a) >= 0)
      const set = sets[s]
      if (!set)
        throw new ConfigError(`requested address ${text} is in no range of this network`, at, {
          hint: `request one from ${sets.map(formatRangeSet).join(' or ')}`,
        })
      const index = rangeIndexOf(set, a)
      const r = rangeAt(set, index)
      if (prefix !== undefined && prefix !== String(r.prefixLen))
        throw new ConfigError(`requested ${text} does not match subnet ${formatSubnet(r)}`, at, {
          hint: `write it bare or as ${formatAddr(a)}/${r.prefixLen}`,
        })
      if (a.value === r.gateway)
        throw new ConfigError(`requested address ${text} is the gateway`, at, {
          hint: 'request another address; the gateway is never handed out',
        })
      if (wanted[s])
        throw new ConfigError(`two requested addresses in range set ${s}`, at, {
          hint: 'request at most one address per range set',
        })
      wanted[s] = { index, value: a.value }
    })
    return wanted
  }

  /** Runs under the store's lock. */
  private reserveAll(owner: Owner, wanted: readonly (SetPos | undefined)[]): IpConfig[] {
    const sets = this.conf.rangeSets
    const inSomeSet = (ip: string): boolean => {
      const a = storedAddr(ip)
      return a !== undefined && sets.some((set) => rangeIndexOf(set, a) >= 0)
    }
    const already = this.store.getByOwner(owner).filter(inSomeSet)
    if (already.length > 0)
      throw new NsdnError(
        'E_EXISTS',
        `${describeOwner(owner)} already holds ${already.join(', ')}`,
        {
          hint: 'release it first (DEL), or use another interface name',
        },
      )
    const taken: string[] = []
    try {
      return sets.map((set, s) => {
        const pos = this.reserveOne(owner, s, wanted[s])
        taken.push(formatAddr({ family: rangeAt(set, pos.index).family, value: pos.value }))
        return this.ipConfig(set, pos)
      })
    } catch (err) {
      for (const ip of taken) this.store.release(ip)
      throw err
    }
  }

  private reserveOne(owner: Owner, s: number, wanted: SetPos | undefined): SetPos {
    const set = this.conf.rangeSets[s] ?? []
    const family = rangeAt(set, 0).family
    const text = (pos: SetPos): string => formatAddr({ family, value: pos.value })
    if (wanted) {
      if (this.store.reserve(text(wanted), owner, s)) return wanted
      throw new NsdnError('E_EXISTS', `requested address ${text(wanted)} is already taken`, {
        hint: 'request another address, or release the container that holds it (DEL)',
      })
    }
    const last = storedAddr(this.store.lastReserved(s))
    for (const pos of candidates(set, last)) if (this.store.reserve(text(pos), owner, s)) return pos
    throw new NsdnError(
      'E_IPAM_EXHAUSTED',
      `no free address left in range set ${s} (${formatRangeSet(set)})`,
      {
        hint:
          'release the addresses of containers that are gone (DEL), or widen the range; ' +
          `leases are kept in ${this.store.location}`,
      },
    )
  }

  private ipConfig(set: RangeSet, pos: SetPos): IpConfig {
    const r: IpRange = rangeAt(set, pos.index)
    return {
      address: `${formatAddr({ family: r.family, value: pos.value })}/${r.prefixLen}`,
      gateway: formatAddr({ family: r.family, value: r.gateway }),
    }
  }

  private dns(): Dns {
    const path = this.conf.resolvConf
    if (path === undefined) return {}
    try {
      return parseResolvConf(readFileSync(path, 'utf8'))
    } catch (err) {
      throw new ConfigError(`cannot read ${path}: ${errorMessage(err)}`, 'ipam.resolvConf', {
        cause: err,
        hint: 'point resolvConf at a readable resolv.conf, or drop the field',
      })
    }
  }
}
