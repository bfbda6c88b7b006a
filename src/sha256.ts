/**
 * node:crypto's createHash for short SHA-256 inputs without loading node:crypto (~5-7 ms of a
 * CNI call, which hashes only a container id into its veth's name and MAC). The single-file
 * bundles (scripts/bundle.js) serve createHash from here; every other algorithm, and any input
 * over 4 KB (native code is faster there), goes to node:crypto. SHA-256 as FIPS 180-4 defines
 * it; a test compares it with node:crypto.
 * @module
 */
import type { BinaryToTextEncoding, Hash } from 'node:crypto'

const SHORT = 4096

/** The first 32 bits of the fractional parts of the roots of the first primes (FIPS 180-4). */
function roots(count: number, root: (p: number) => number): Uint32Array {
  const out = new Uint32Array(count)
  for (let p = 2, i = 0; i < count; p++) {
    let prime = true
    for (let d = 2; d * d <= p; d++) if (p % d === 0) prime = false
    if (!prime) continue
    const r = root(p)
    out[i++] = Math.floor((r - Math.floor(r)) * 2 ** 32)
  }
  return out
}
const K = roots(64, Math.cbrt)
const H0 = roots(8, Math.sqrt)

const ror = (x: number, n: number): number => (x >>> n) | (x << (32 - n))

function sha256(msg: Uint8Array): Buffer {
  const blocks = (msg.length + 9 + 63) >> 6
  const buf = new Uint8Array(blocks * 64)
  buf.set(msg)
  buf[msg.length] = 0x80
  const view = new DataView(buf.buffer)
  view.setUint32(buf.length - 8, Math.floor(msg.length / 2 ** 29))
  view.setUint32(buf.length - 4, (msg.length * 8) >>> 0)
  const h = H0.slice()
  const w = new Uint32Array(64)
  for (let off = 0; off < buf.length; off += 64) {
    for (let t = 0; t < 16; t++) w[t] = view.getUint32(off + 4 * t)
    for (let t = 16; t < 64; t++) {
      const x = w[t - 15]!
      const y = w[t - 2]!
      const s0 = ror(x, 7) ^ ror(x, 18) ^ (x >>> 3)
      const s1 = ror(y, 17) ^ ror(y, 19) ^ (y >>> 10)
      w[t] = (w[t - 16]! + s0 + w[t - 7]! + s1) >>> 0
    }
    let [a, b, c, d, e, f, g, k] = [h[0]!, h[1]!, h[2]!, h[3]!, h[4]!, h[5]!, h[6]!, h[7]!]
    for (let t = 0; t < 64; t++) {
      const t1 =
        (k + (ror(e, 6) ^ ror(e, 11) ^ ror(e, 25)) + ((e & f) ^ (~e & g)) + K[t]! + w[t]!) >>> 0
      const t2 = ((ror(a, 2) ^ ror(a, 13) ^ ror(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) >>> 0
      k = g
      g = f
      f = e
      e = (d + t1) >>> 0
      d = c
      c = b
      b = a
      a = (t1 + t2) >>> 0
    }
    ;[a, b, c, d, e, f, g, k].forEach((v, i) => (h[i] = (h[i]! + v) >>> 0))
  }
  const out = Buffer.alloc(32)
  h.forEach((v, i) => out.writeUInt32BE(v, 4 * i))
  return out
}

type Data = string | NodeJS.ArrayBufferView

/** The part of a Hash nsdn uses: update (chained) and digest. */
class ShortSha256 {
  private chunks: Buffer[] = []
  private size = 0

  update(data: Data, encoding?: BufferEncoding): this {
    const b =
      typeof data === 'string'
        ? Buffer.from(data, encoding ?? 'utf8')
        : Buffer.from(data.buffer, data.byteOffset, data.byteLength)
    this.chunks.push(b)
    this.size += b.length
    return this
  }

  digest(): Buffer
  digest(encoding: BinaryToTextEncoding): string
  digest(encoding?: BinaryToTextEncoding): Buffer | string {
    const all = Buffer.concat(this.chunks)
    const d =
      this.size > SHORT
        ? // eslint-disable-next-line @typescript-eslint/no-require-imports
          (require('node:crypto') as typeof import('node:crypto'))
            .createHash('sha256')
            .update(all)
            .digest()
        : sha256(all)
    return encoding ? d.toString(encoding) : d
  }
}

export function createHash(algorithm: string, options?: object): Hash {
  if (algorithm === 'sha256' && options === undefined) return new ShortSha256() as unknown as Hash
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (require('node:crypto') as typeof import('node:crypto')).createHash(algorithm, options)
}
