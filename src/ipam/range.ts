/**
 * Address ranges as the reference host-local plugin reads them. A range is a subnet with an
 * optional first address, last address and gateway. A range set is a list of ranges of one
 * family that one allocation draws from (one address per range set).
 *
 * Pure: no I/O. Addresses are BigInts so that IPv4 and IPv6 share the arithmetic. Plain BigInt
 * code rather than ip-cidr, which costs ~14 ms of require time on every plugin start.
 * @module
 */
import { isIP } from 'node:net'
import { ConfigError } from '../errors.js'
import { objectAt, listAt, stringAt } from './fields.js'

export type Family = 4 | 6

/** An address as a number plus its family: 10.0.0.1 is `{ family: 4, value: 167772161n }`. */
export interface Addr {
  family: Family
  value: bigint
}

export interface IpRange {
  family: Family
  /** The subnet's network address. */
  network: bigint
  prefixLen: number
  /** First and last address handed out, both inclusive. */
  start: bigint
  end: bigint
  /** Never handed out, even when inside start..end. */
  gateway: bigint
}

/** Ranges of one family, disjoint; one allocation takes one address from one of them. */
export type RangeSet = readonly IpRange[]

const BITS = { 4: 32, 6: 128 } as const

function v4Value(text: string): bigint {
  return text.split('.').reduce((acc, b) => (acc << 8n) | BigInt(b), 0n)
}

function v6Value(text: string): bigint {
  const [head = '', tail] = text.split('::')
  const h = head === '' ? [] : head.split(':')
  const t = tail === undefined || tail === '' ? [] : tail.split(':')
  const zeros = tail === undefined ? [] : Array<string>(8 - h.length - t.length).fill('0')
  return [...h, ...zeros, ...t].reduce((acc, g) => (acc << 16n) | BigInt(`0x${g}`), 0n)
}

/** Parse an address written as text. */
export function parseAddr(v: unknown, where: string): Addr {
  const hint = 'write an IPv4 (10.1.0.10) or IPv6 (fd00::10) address'
  const text = stringAt(v, where, hint)
  const family = isIP(text)
  if (family === 0) throw new ConfigError(`invalid IP address "${text}"`, where, { hint })
  if (family === 4) return { family, value: v4Value(text) }
  if (!/^[0-9a-fA-F:]+$/.test(text))
    throw new ConfigError(`IPv6 address "${text}" is not plain hex groups`, where, {
      hint: 'write it without an embedded IPv4 part or %zone, e.g. ::ffff:a01:a',
    })
  return { family: 6, value: v6Value(text) }
}

/**
 * The address as text: dotted IPv4, or IPv6 in RFC 5952 form (lowercase, the longest run of two
 * or more zero groups, the first on a tie, as "::"). Lease file names use this form, as Go's
 * `net.IP.String()` does for the reference plugin.
 */
export function formatAddr(a: Addr): string {
  if (a.family === 4) return [24n, 16n, 8n, 0n].map((s) => (a.value >> s) & 0xffn).join('.')
  const groups = Array.from({ length: 8 }, (_, i) => (a.value >> BigInt(112 - 16 * i)) & 0xffffn)
  let best = -1
  let bestLen = 1
  for (let i = 0; i < 8; ) {
    let j = i
    while (j < 8 && groups[j] === 0n) j++
    if (j - i > bestLen) [best, bestLen] = [i, j - i]
    i = Math.max(j, i + 1)
  }
  const hex = groups.map((g) => g.toString(16))
  if (best < 0) return hex.join(':')
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`
}

function familyName(f: Family): string {
  return f === 4 ? 'IPv4' : 'IPv6'
}

/** First and last address a range may hand out: no network address, no IPv4 broadcast. */
function usable(family: Family, network: bigint, prefixLen: number): [bigint, bigint] {
  const last = network + (1n << BigInt(BITS[family] - prefixLen)) - 1n
  return [network + 1n, family === 4 ? last - 1n : last]
}

function parseSubnet(v: unknown, where: string): Pick<IpRange, 'family' | 'network' | 'prefixLen'> {
  const hint = 'write the network address with a prefix length, e.g. 10.1.0.0/24 or fd00::/64'
  const text = stringAt(v, where, hint)
  const m = /^([^/]+)\/(\d{1,3})$/.exec(text)
  if (!m?.[1] || isIP(m[1]) === 0)
    throw new ConfigError(`invalid subnet "${text}"`, where, { hint })
  const addr = parseAddr(m[1], where)
  const bits = BITS[addr.family]
  const prefixLen = Number(m[2])
  if (prefixLen > bits)
    throw new ConfigError(`prefix length ${prefixLen} is over ${bits} in "${text}"`, where, {
      hint,
    })
  if (prefixLen > bits - 2)
    throw new ConfigError(`subnet "${text}" is too small to allocate from`, where, {
      hint: `use a prefix length of at most /${bits - 2}`,
    })
  const network = addr.value & ~((1n << BigInt(bits - prefixLen)) - 1n)
  if (network !== addr.value) {
    const fixed = `${formatAddr({ family: addr.family, value: network })}/${prefixLen}`
    throw new ConfigError(`subnet "${text}" has host bits set`, where, {
      hint: `write the network address: ${fixed}`,
    })
  }
  refuseSpecial({ family: addr.family, value: network }, prefixLen, `subnet "${text}"`, where)
  return { family: addr.family, network, prefixLen }
}

/**
 * Throw when the prefix a/prefixLen meets a block no interface can be numbered from (0.0.0.0/0,
 * loopback, multicast): `what` names it in the message ("subnet "127.1.0.0/24"").
 */
export function refuseSpecial(a: Addr, prefixLen: number, what: string, where: string): void {
  const special = SPECIAL[a.family].find((b) => prefixesMeet(a.family, b, a.value, prefixLen))
  if (special)
    throw new ConfigError(`${what} takes in ${special.what} (${special.cidr})`, where, {
      hint: 'hosts cannot use those addresses: pick a private subnet, e.g. 10.1.0.0/24 or fd00::/64',
    })
}

/** A block no interface can be numbered from: a subnet that meets one hands out useless addresses. */
interface SpecialBlock {
  cidr: string
  what: string
  network: bigint
  prefixLen: number
}

function block(family: Family, cidr: string, what: string): SpecialBlock {
  const [a = '', len = ''] = cidr.split('/')
  return { cidr, what, network: family === 4 ? v4Value(a) : v6Value(a), prefixLen: Number(len) }
}

const SPECIAL: Record<Family, SpecialBlock[]> = {
  4: [
    block(4, '0.0.0.0/8', '"this network" addresses'),
    block(4, '127.0.0.0/8', 'loopback addresses'),
    block(4, '224.0.0.0/4', 'multicast addresses'),
    block(4, '240.0.0.0/4', 'reserved and broadcast addresses'),
  ],
  6: [
    block(6, '::/128', 'the unspecified address'),
    block(6, '::1/128', 'the loopback address'),
    block(6, 'ff00::/8', 'multicast addresses'),
  ],
}

/** True when one prefix contains the other. */
function prefixesMeet(
  family: Family,
  b: { network: bigint; prefixLen: number },
  network: bigint,
  prefixLen: number,
): boolean {
  const host = BigInt(BITS[family] - Math.min(b.prefixLen, prefixLen))
  return b.network >> host === network >> host
}

/** "10.1.0.0/24" */
export function formatSubnet(r: Pick<IpRange, 'family' | 'network' | 'prefixLen'>): string {
  return `${formatAddr({ family: r.family, value: r.network })}/${r.prefixLen}`
}

/** "10.1.0.10-10.1.0.50", as the reference plugin prints a range. */
export function formatRange(r: IpRange): string {
  const a = (value: bigint): string => formatAddr({ family: r.family, value })
  return `${a(r.start)}-${a(r.end)}`
}

export function formatRangeSet(set: RangeSet): string {
  return set.map(formatRange).join(',')
}

/**
 * Parse one range: `{subnet, rangeStart?, rangeEnd?, gateway?}`. rangeStart defaults to the
 * subnet's first usable address, rangeEnd to its last (IPv4 skips network and broadcast; IPv6
 * skips only the network address), the gateway to the first usable address.
 */
export function parseRange(raw: unknown, where: string): IpRange {
  const o = objectAt(raw, where, 'write a range as {"subnet": "10.1.0.0/24"}')
  const sub = parseSubnet(o.subnet, `${where}.subnet`)
  const [first, last] = usable(sub.family, sub.network, sub.prefixLen)
  const subnetText = formatSubnet(sub)
  const text = (value: bigint): string => formatAddr({ family: sub.family, value })
  const addrIn = (key: string, dflt: bigint, inSubnet: boolean): bigint => {
    if (o[key] === undefined) return dflt
    const at = `${where}.${key}`
    const a = parseAddr(o[key], at)
    if (a.family !== sub.family)
      throw new ConfigError(
        `${key} ${formatAddr(a)} is ${familyName(a.family)} but subnet ${subnetText} is ` +
          familyName(sub.family),
        at,
        { hint: `use an ${familyName(sub.family)} address` },
      )
    if (inSubnet && (a.value < first || a.value > last))
      throw new ConfigError(`${key} ${formatAddr(a)} is outside subnet ${subnetText}`, at, {
        hint: `pick an address from ${text(first)} to ${text(last)}`,
      })
    return a.value
  }
  const start = addrIn('rangeStart', first, true)
  const end = addrIn('rangeEnd', last, true)
  if (end < start)
    throw new ConfigError(`rangeEnd ${text(end)} is before rangeStart ${text(start)}`, where, {
      hint: 'swap them, or drop one to use the subnet default',
    })
  // The reference plugin accepts a gateway outside the subnet (on-link routes); so do we.
  const gateway = addrIn('gateway', first, false)
  return { ...sub, start, end, gateway }
}

/** True when the two ranges share an address. */
export function rangesOverlap(a: IpRange, b: IpRange): boolean {
  return a.family === b.family && a.start <= b.end && b.start <= a.end
}

/** True when a range of one set shares an address with a range of the other. */
export function rangeSetsOverlap(a: RangeSet, b: RangeSet): boolean {
  return a.some((r) => b.some((s) => rangesOverlap(r, s)))
}

/** Parse a range set: a non-empty list of ranges of one family that do not overlap. */
export function parseRangeSet(raw: unknown, where: string): IpRange[] {
  const list = listAt(raw, where, 'write a range set as a list: [{"subnet": "10.1.0.0/24"}]')
  if (list.length === 0)
    throw new ConfigError('range set is empty', where, {
      hint: 'list at least one range, e.g. [{"subnet": "10.1.0.0/24"}]',
    })
  const set = list.map((r, i) => parseRange(r, `${where}[${i}]`))
  set.forEach((r, i) => {
    const first = set[0]
    if (first && r.family !== first.family)
      throw new ConfigError(
        `mixes ${familyName(r.family)} into an ${familyName(first.family)} set`,
        `${where}[${i}]`,
        {
          hint: 'put each family in its own range set: "ranges": [[v4 ranges], [v6 ranges]]',
        },
      )
    const j = set.findIndex((s, k) => k < i && rangesOverlap(s, r))
    const other = set[j]
    if (other)
      throw new ConfigError(
        `range ${formatRange(r)} overlaps ${where}[${j}] (${formatRange(other)})`,
        `${where}[${i}]`,
        { hint: 'make the ranges disjoint with rangeStart/rangeEnd' },
      )
  })
  return set
}

/** Throw when two range sets overlap: two allocations could then hand out one address. */
export function checkRangeSetsDisjoint(sets: readonly RangeSet[], wheres: readonly string[]): void {
  sets.forEach((s, i) => {
    const j = sets.findIndex((t, k) => k < i && rangeSetsOverlap(s, t))
    if (j >= 0)
      throw new ConfigError(`range set overlaps ${wheres[j]}`, wheres[i], {
        hint: 'give each range set its own addresses',
      })
  })
}

/** True when a lies within the range's start..end. */
export function rangeContains(r: IpRange, a: Addr): boolean {
  return a.family === r.family && a.value >= r.start && a.value <= r.end
}

/** Index of the range of the set that holds a, or -1. */
export function rangeIndexOf(set: RangeSet, a: Addr): number {
  return set.findIndex((r) => rangeContains(r, a))
}

/** A position in a range set: which range, which address. */
export interface SetPos {
  index: number
  value: bigint
}

/** The range at index; a RangeError when there is none (a bug, not bad input). */
export function rangeAt(set: RangeSet, index: number): IpRange {
  const r = set[index]
  if (!r) throw new RangeError(`no range ${index} in a set of ${set.length}`)
  return r
}

/** The address after pos: the next range's start after a range's end, the first after the last. */
export function nextPos(set: RangeSet, pos: SetPos): SetPos {
  if (pos.value < rangeAt(set, pos.index).end) return { index: pos.index, value: pos.value + 1n }
  const index = (pos.index + 1) % set.length
  return { index, value: rangeAt(set, index).start }
}

/**
 * Every address of the set that may be handed out, each once, gateways left out: starting just
 * after `last` when it lies in the set (round-robin, as the reference plugin does), otherwise at
 * the first range's start. Lazy, since an IPv6 set can hold 2^64 addresses.
 */
export function* candidates(set: RangeSet, last?: Addr): Generator<SetPos> {
  const first = set[0]
  if (!first) return
  const lastIndex = last ? rangeIndexOf(set, last) : -1
  let pos: SetPos =
    last && lastIndex >= 0
      ? nextPos(set, { index: lastIndex, value: last.value })
      : { index: 0, value: first.start }
  let left = set.reduce((n, r) => n + (r.end - r.start + 1n), 0n)
  for (; left > 0n; left--, pos = nextPos(set, pos))
    if (pos.value !== set[pos.index]?.gateway) yield pos
}
