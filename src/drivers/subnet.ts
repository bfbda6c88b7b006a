/**
 * Subnet arithmetic the veth drivers need around an IPAM result: the subnet of an address,
 * its first address (the conventional gateway), whether two prefixes overlap.
 * @module
 */
import { type Addr, formatAddr, parseAddr } from '../ipam/range.js'
import type { Cidr } from '../validate.js'

const bits = (family: 4 | 6): number => (family === 4 ? 32 : 128)

function network(c: Cidr, prefixLen = c.prefixLen): Addr {
  const a = parseAddr(c.address, 'address')
  const host = BigInt(bits(c.family) - prefixLen)
  return { family: c.family, value: (a.value >> host) << host }
}

/** "10.1.0.10/24" -> "10.1.0.0/24". */
export function subnetOf(c: Cidr): string {
  return `${formatAddr(network(c))}/${c.prefixLen}`
}

/** The subnet's first address (10.1.0.10/24 -> 10.1.0.1), where gateways usually are. */
export function firstAddress(c: Cidr): string {
  const n = network(c)
  return formatAddr({ family: n.family, value: n.value + 1n })
}

/** True when one prefix contains the other. */
export function overlaps(a: Cidr, b: Cidr): boolean {
  if (a.family !== b.family) return false
  const len = Math.min(a.prefixLen, b.prefixLen)
  return network(a, len).value === network(b, len).value
}

/** The single-address prefix length of a family: 32 or 128. */
export const hostPrefixLen = (family: 4 | 6): number => bits(family)
