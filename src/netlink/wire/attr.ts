/**
 * Netlink attributes (TLVs): a 4-byte header (length, type), the payload, padding to 4 bytes.
 * Requests are built here in the attribute order iproute2 uses, so that their bytes can be
 * compared with what `ip` sends (test/unit/wire-golden.test.ts).
 * @module
 */
import { isIPv4 } from 'node:net'

/** An attribute: raw payload bytes, or nested attributes. */
export interface Attr {
  type: number
  data: Buffer | Attr[]
}

const align4 = (n: number): number => (n + 3) & ~3

export function encodeAttrs(attrs: readonly Attr[]): Buffer {
  const parts: Buffer[] = []
  for (const a of attrs) {
    const payload = Array.isArray(a.data) ? encodeAttrs(a.data) : a.data
    const len = 4 + payload.length
    const buf = Buffer.alloc(align4(len))
    buf.writeUInt16LE(len, 0)
    buf.writeUInt16LE(a.type, 2)
    payload.copy(buf, 4)
    parts.push(buf)
  }
  return Buffer.concat(parts)
}

export const nest = (type: number, attrs: Attr[]): Attr => ({ type, data: attrs })
export const raw = (type: number, data: Buffer): Attr => ({ type, data })

export function u8(type: number, v: number): Attr {
  return { type, data: Buffer.from([v]) }
}
export function u16(type: number, v: number): Attr {
  const b = Buffer.alloc(2)
  b.writeUInt16LE(v)
  return { type, data: b }
}
/** 16-bit value in network byte order (ports). */
export function be16(type: number, v: number): Attr {
  const b = Buffer.alloc(2)
  b.writeUInt16BE(v)
  return { type, data: b }
}
export function u32(type: number, v: number): Attr {
  const b = Buffer.alloc(4)
  b.writeUInt32LE(v >>> 0)
  return { type, data: b }
}
/** NUL-terminated string, as the kernel expects for names and kinds. */
export function strz(type: number, s: string): Attr {
  return { type, data: Buffer.from(s + '\0') }
}
export function ipAttr(type: number, address: string): Attr {
  return { type, data: ipBytes(address) }
}

/** 4 or 16 bytes of an IP address. */
export function ipBytes(address: string): Buffer {
  if (isIPv4(address)) return Buffer.from(address.split('.').map(Number))
  const [head = '', tail] = address.split('::') as [string, string | undefined]
  const groups = (s: string): number[] => (s ? s.split(':').map((g) => parseInt(g, 16)) : [])
  let words: number[]
  // an embedded IPv4 tail (::ffff:1.2.3.4) becomes two 16-bit words
  const v4tail = (s: string): number[] => {
    const parts = s.split(':')
    const last = parts[parts.length - 1] ?? ''
    if (!isIPv4(last)) return groups(s)
    const b = last.split('.').map(Number) as [number, number, number, number]
    return [...groups(parts.slice(0, -1).join(':')), (b[0] << 8) | b[1], (b[2] << 8) | b[3]]
  }
  if (tail === undefined) words = v4tail(head)
  else {
    const h = groups(head)
    const t = v4tail(tail)
    words = [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t]
  }
  const buf = Buffer.alloc(16)
  words.forEach((w, i) => buf.writeUInt16BE(w, i * 2))
  return buf
}

/** Text form of 4 or 16 address bytes (IPv6 compressed as RFC 5952 says). */
export function ipText(b: Buffer): string {
  if (b.length === 4) return Array.from(b).join('.')
  // RFC 5952 section 5: IPv4-mapped ends in dotted decimal, as inet_ntop (and so ip) writes it
  if (b.subarray(0, 10).every((x) => x === 0) && b.readUInt16BE(10) === 0xffff)
    return `::ffff:${Array.from(b.subarray(12)).join('.')}`
  const words: number[] = []
  for (let i = 0; i < 16; i += 2) words.push(b.readUInt16BE(i))
  let best = -1
  let bestLen = 1
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) {
      i++
      continue
    }
    let j = i
    while (j < 8 && words[j] === 0) j++
    if (j - i > bestLen) {
      best = i
      bestLen = j - i
    }
    i = j
  }
  const hex = words.map((w) => w.toString(16))
  if (best < 0) return hex.join(':')
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`
}

/** Decode a flat attribute stream into type -> payload (the first of each type wins). */
export function decodeAttrs(buf: Buffer): Map<number, Buffer> {
  const out = new Map<number, Buffer>()
  let off = 0
  while (off + 4 <= buf.length) {
    const len = buf.readUInt16LE(off)
    const type = buf.readUInt16LE(off + 2) & 0x3fff
    if (len < 4 || off + len > buf.length) break
    if (!out.has(type)) out.set(type, buf.subarray(off + 4, off + len))
    off += align4(len)
  }
  return out
}

/** Payload of a u32 attribute (host order). */
export function u32Of(b: Buffer | undefined): number | undefined {
  return b && b.length >= 4 ? b.readUInt32LE(0) : undefined
}

/** Payload of a string attribute, without its NUL. */
export function strOf(b: Buffer | undefined): string | undefined {
  if (!b) return undefined
  const nul = b.indexOf(0)
  return b.subarray(0, nul < 0 ? b.length : nul).toString()
}
