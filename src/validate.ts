/**
 * Validation of names, addresses and numbers that come from users, before any of them reaches
 * the kernel, a file path or another program. Each failure is a ConfigError that says what is
 * wrong, where (`where`: a flag, a file:line, a field path) and how to fix it.
 * @module
 */
import { isIP } from 'node:net'
import { ConfigError } from './errors.js'

/** User text quoted and escaped, so that an error stays one line whatever was typed. */
const shown = (s: string | number): string => JSON.stringify(String(s))

/** IFNAMSIZ is 16 bytes with the NUL, so a name has at most 15. */
export const IFNAMSIZ = 15

export function validIfName(name: string, where = 'interface name'): string {
  const hint = 'use 1-15 letters, digits, "-", "_" or "."; not "." or ".."'
  if (name.length === 0) throw new ConfigError('interface name is empty', where, { hint })
  if (Buffer.byteLength(name) > IFNAMSIZ)
    throw new ConfigError(`interface name ${shown(name)} is longer than ${IFNAMSIZ} bytes`, where, {
      hint,
    })
  if (name === '.' || name === '..' || !/^[A-Za-z0-9_.@-]+$/.test(name) || name.includes('..'))
    throw new ConfigError(`invalid interface name ${shown(name)}`, where, { hint })
  return name
}

export function validNetnsName(name: string, where = 'netns name'): string {
  const hint = 'a netns name is a plain file name: letters, digits, "-", "_", "." (max 64)'
  if (
    name.length === 0 ||
    name.length > 64 ||
    name.startsWith('.') ||
    !/^[A-Za-z0-9_.-]+$/.test(name)
  )
    throw new ConfigError(`invalid netns name ${shown(name)}`, where, { hint })
  return name
}

/** Longest container id: ids become parts of file names (leases, results) of at most 255 bytes. */
export const CONTAINER_ID_MAX = 128

/** A container id (CNI SPEC: an alphanumeric, then alphanumerics, "_", "." or "-"). */
export function validContainerId(id: string, where = 'container id'): string {
  const hint = `start with a letter or digit; then letters, digits, "_", "." or "-"; at most ${CONTAINER_ID_MAX}`
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(id))
    throw new ConfigError(`invalid container id ${shown(id)}`, where, { hint })
  if (id.length > CONTAINER_ID_MAX)
    throw new ConfigError(`container id is ${id.length} characters long`, where, { hint })
  return id
}

export interface Cidr {
  /** The address as written (host bits kept). */
  address: string
  prefixLen: number
  family: 4 | 6
}

/** Parse "10.0.0.1/24" or "fd00::1/64". A bare address gets a host prefix (/32, /128). */
export function parseCidr(text: string, where = 'address', requirePrefix = false): Cidr {
  const hint = 'write an address with a prefix length, e.g. 10.0.0.1/24 or fd00::1/64'
  const m = /^([^/]+)(?:\/(\d{1,3}))?$/.exec(text)
  const addr = m?.[1] ?? ''
  // node's isIP takes a zone (fe80::1%eth0); an address on the wire has none
  const family = addr.includes('%') ? 0 : isIP(addr)
  if (!m || family === 0) throw new ConfigError(`invalid address ${shown(text)}`, where, { hint })
  if (m[2] === undefined && requirePrefix)
    throw new ConfigError(`${shown(text)} has no prefix length`, where, { hint })
  const max = family === 4 ? 32 : 128
  const prefixLen = m[2] === undefined ? max : Number(m[2])
  if (prefixLen > max)
    throw new ConfigError(`prefix length ${prefixLen} is over ${max} in ${shown(text)}`, where, {
      hint,
    })
  return { address: addr, prefixLen, family: family as 4 | 6 }
}

export function parseIp(text: string, where = 'address'): { address: string; family: 4 | 6 } {
  const family = text.includes('%') ? 0 : isIP(text)
  if (family === 0)
    throw new ConfigError(`invalid IP address ${shown(text)}`, where, {
      hint: 'write an IPv4 (10.0.0.1) or IPv6 (fd00::1) address',
    })
  return { address: text, family: family as 4 | 6 }
}

/**
 * A gateway for `of` (a route destination or an address) of family `family`: the same family
 * is required, since the kernel would refuse or misroute a mixed pair.
 */
export function parseGateway(text: string, family: 4 | 6, of: string, where: string): string {
  if (parseIp(text, where).family !== family)
    throw new ConfigError(`gateway ${text} is not of the family of ${of}`, where, {
      hint: 'an IPv4 destination or address needs an IPv4 gateway, an IPv6 one an IPv6 gateway',
    })
  return text
}

export function parseMac(text: string, where = 'address'): Buffer {
  if (!/^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/.test(text))
    throw new ConfigError(`invalid MAC address ${shown(text)}`, where, {
      hint: 'write six hex bytes separated by ":", e.g. 02:00:00:00:00:01',
    })
  return Buffer.from(text.split(':').map((b) => parseInt(b, 16)))
}

export function parseIntIn(text: string | number, min: number, max: number, where: string): number {
  const n = typeof text === 'number' ? text : /^\d+$/.test(text) ? Number(text) : NaN
  if (!Number.isInteger(n) || n < min || n > max)
    throw new ConfigError(
      `must be a whole number from ${min} to ${max}, got ${shown(text)}`,
      where,
      { hint: 'write it in decimal digits, with no sign, unit or 0x prefix' },
    )
  return n
}

/**
 * The network address of a prefix (10.9.0.5/16 -> 10.9.0.0), and whether the address given had
 * host bits set. Required lazily: ip-cidr's load time stays out of paths that never need it.
 */
export function prefixNetwork(c: Cidr): { network: string; hostBits: boolean } {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const IPCIDR = (require('ip-cidr') as typeof import('ip-cidr')).default
  const cidr = new IPCIDR(`${c.address}/${c.prefixLen}`)
  const start = cidr.start<string>()
  const a = cidr.address
  const given = 'canonicalForm' in a ? a.canonicalForm() : a.correctForm()
  return { network: c.family === 4 ? start : compressV6(start), hostBits: start !== given }
}

/** fd00:0000:...:0000 -> fd00:: (the first longest run of zero groups collapsed). */
function compressV6(full: string): string {
  const groups = full.split(':').map((g) => g.replace(/^0+(?=.)/, ''))
  let best = -1
  let len = 0
  for (let i = 0; i < 8; i++) {
    let j = i
    while (j < 8 && groups[j] === '0') j++
    if (j - i > len && j - i > 1) [best, len] = [i, j - i]
    if (j > i) i = j
  }
  if (best < 0) return groups.join(':')
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + len).join(':')}`
}
