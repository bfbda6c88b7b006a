/** Netlink attributes (TLV encode/decode, padding, nesting) and IP address bytes <-> text. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  type Attr,
  be16,
  decodeAttrs,
  encodeAttrs,
  ipBytes,
  ipText,
  nest,
  raw,
  strOf,
  strz,
  u16,
  u32,
  u8,
} from '../../src/netlink/wire/attr.js'

const hex = (b: Buffer): string => b.toString('hex').replace(/(..)(?!$)/g, '$1 ')

interface EncodeCase {
  name: string
  attrs: Attr[]
  /** Expected bytes, as written in the uapi: len u16 LE, type u16 LE, payload, pad to 4. */
  bytes: string
}

const encodeCases: EncodeCase[] = [
  { name: 'u8 is padded to 8 bytes', attrs: [u8(7, 1)], bytes: '05 00 07 00 01 00 00 00' },
  { name: 'u16 little-endian', attrs: [u16(1, 100)], bytes: '06 00 01 00 64 00 00 00' },
  { name: 'be16 network order', attrs: [be16(15, 4789)], bytes: '06 00 0f 00 12 b5 00 00' },
  { name: 'u32 little-endian', attrs: [u32(4, 1400)], bytes: '08 00 04 00 78 05 00 00' },
  { name: 'u32 of 0xffffffff', attrs: [u32(6, 0xffffffff)], bytes: '08 00 06 00 ff ff ff ff' },
  {
    name: 'strz adds a NUL, then pads',
    attrs: [strz(3, 'vh1')],
    bytes: '08 00 03 00 76 68 31 00',
  },
  {
    name: 'strz of 4 chars needs 3 bytes of padding',
    attrs: [strz(3, 'eth0')],
    bytes: '09 00 03 00 65 74 68 30 00 00 00 00',
  },
  {
    name: 'an empty payload is a bare header',
    attrs: [raw(9, Buffer.alloc(0))],
    bytes: '04 00 09 00',
  },
  {
    name: 'attributes follow each other after padding',
    attrs: [u8(1, 0xaa), u32(2, 1)],
    bytes: '05 00 01 00 aa 00 00 00 08 00 02 00 01 00 00 00',
  },
  {
    name: 'nest: length covers the padded children',
    attrs: [nest(18, [raw(1, Buffer.from('veth')), nest(2, [u8(7, 1)])])],
    bytes: '18 00 12 00 08 00 01 00 76 65 74 68 0c 00 02 00 05 00 07 00 01 00 00 00',
  },
  { name: 'an empty nest', attrs: [nest(26, [])], bytes: '04 00 1a 00' },
]

for (const tc of encodeCases)
  test(`encodeAttrs: ${tc.name}`, () => {
    assert.equal(hex(encodeAttrs(tc.attrs)), tc.bytes)
  })

/**
 * Decode a buffer back into Attr[], descending into the types listed as nests. decodeAttrs
 * keeps the first of each type: the trees below use each type once per level.
 */
function decodeTree(buf: Buffer, nests: ReadonlySet<number>): Attr[] {
  const out: Attr[] = []
  for (const [type, data] of decodeAttrs(buf))
    out.push({ type, data: nests.has(type) ? decodeTree(data, nests) : Buffer.from(data) })
  return out
}

const roundTrips: { name: string; attrs: Attr[]; nests: number[] }[] = [
  {
    name: 'flat, mixed sizes',
    attrs: [u8(1, 9), u16(2, 7), u32(3, 5), strz(4, 'abcdefg')],
    nests: [],
  },
  {
    name: 'nested three deep, odd sizes inside',
    attrs: [
      strz(3, 'x'),
      nest(18, [raw(1, Buffer.from('vxlan')), nest(2, [u8(7, 1), nest(9, [u8(5, 2), u16(6, 3)])])]),
      u32(4, 1500),
    ],
    nests: [18, 2, 9],
  },
  {
    name: 'payloads of every length 0..9',
    attrs: Array.from({ length: 10 }, (_, i) => raw(i + 1, Buffer.alloc(i, i + 1))),
    nests: [],
  },
]

for (const tc of roundTrips)
  test(`encode then decode: ${tc.name}`, () => {
    const nests = new Set(tc.nests)
    const enc = encodeAttrs(tc.attrs)
    assert.equal(enc.length % 4, 0, 'the stream is 4-byte aligned')
    const back = decodeTree(enc, nests)
    assert.deepEqual(back, tc.attrs)
    assert.ok(encodeAttrs(back).equals(enc), 'and encodes to the same bytes again')
  })

test('decodeAttrs masks NLA_F_NESTED and NLA_F_NET_BYTEORDER off the type', () => {
  const b = Buffer.from('08 00 12 80 01 02 03 04 06 00 0f 40 12 b5 00 00'.replace(/ /g, ''), 'hex')
  const m = decodeAttrs(b)
  assert.deepEqual([...m.keys()], [18, 15])
  assert.equal(hex(m.get(18) ?? Buffer.alloc(0)), '01 02 03 04')
})

test('decodeAttrs keeps the first of a repeated type', () => {
  const m = decodeAttrs(encodeAttrs([u32(4, 1), u32(4, 2)]))
  assert.equal(m.get(4)?.readUInt32LE(0), 1)
})

const truncated: { name: string; bytes: string; types: number[] }[] = [
  {
    name: 'a length past the end stops decoding',
    bytes: '08 00 01 00 01 00 00 00 10 00 02 00 00',
    types: [1],
  },
  {
    name: 'a length under 4 stops decoding',
    bytes: '02 00 01 00 08 00 02 00 00 00 00 00',
    types: [],
  },
  {
    name: 'a tail shorter than a header is ignored',
    bytes: '05 00 01 00 07 00 00 00 08 00',
    types: [1],
  },
  { name: 'an empty buffer has no attributes', bytes: '', types: [] },
]
for (const tc of truncated)
  test(`decodeAttrs: ${tc.name}`, () => {
    const m = decodeAttrs(Buffer.from(tc.bytes.replace(/ /g, ''), 'hex'))
    assert.deepEqual([...m.keys()], tc.types)
  })

test('strOf strips the NUL, accepts a payload without one, and passes undefined', () => {
  assert.equal(strOf(Buffer.from('veth\0')), 'veth')
  assert.equal(strOf(Buffer.from('veth')), 'veth')
  assert.equal(strOf(Buffer.from('a\0b')), 'a')
  assert.equal(strOf(undefined), undefined)
})

interface IpCase {
  text: string
  bytes: string
  /** The canonical text when it differs from `text`. */
  canonical?: string
}

const ipCases: IpCase[] = [
  { text: '10.0.0.1', bytes: '0a 00 00 01' },
  { text: '0.0.0.0', bytes: '00 00 00 00' },
  { text: '255.255.255.255', bytes: 'ff ff ff ff' },
  { text: '::', bytes: '00 '.repeat(15) + '00' },
  { text: '::1', bytes: '00 '.repeat(15) + '01' },
  { text: 'fe80::1', bytes: 'fe 80 ' + '00 '.repeat(13) + '01' },
  { text: 'fd00:1::', bytes: 'fd 00 00 01 ' + '00 '.repeat(11) + '00' },
  { text: 'ff05::100', bytes: 'ff 05 ' + '00 '.repeat(12) + '01 00' },
  { text: '2001:db8::1:0:0:1', bytes: '20 01 0d b8 00 00 00 00 00 01 00 00 00 00 00 01' },
  // RFC 5952: the first of two equal runs is the one compressed
  {
    text: '2001:db8:0:0:1::1',
    bytes: '20 01 0d b8 00 00 00 00 00 01 00 00 00 00 00 01',
    canonical: '2001:db8::1:0:0:1',
  },
  // RFC 5952 4.2.2: a single zero group is not compressed
  { text: '2001:db8:0:1:1:1:1:1', bytes: '20 01 0d b8 00 00 00 01 00 01 00 01 00 01 00 01' },
  // RFC 5952 4.3: lower case; 4.1: no leading zeros
  {
    text: '2001:DB8:0000:0001::00FF',
    bytes: '20 01 0d b8 00 00 00 01 ' + '00 '.repeat(6) + '00 ff',
    canonical: '2001:db8:0:1::ff',
  },
  { text: '1:2:3:4:5:6:7:8', bytes: '00 01 00 02 00 03 00 04 00 05 00 06 00 07 00 08' },
  { text: '1::', bytes: '00 01 ' + '00 '.repeat(13) + '00' },
  { text: '::ffff:1.2.3.4', bytes: '00 '.repeat(10) + 'ff ff 01 02 03 04' },
  { text: '::ffff:10.0.0.1', bytes: '00 '.repeat(10) + 'ff ff 0a 00 00 01' },
  {
    text: '::ffff:0102:0304',
    bytes: '00 '.repeat(10) + 'ff ff 01 02 03 04',
    canonical: '::ffff:1.2.3.4',
  },
]

for (const tc of ipCases)
  test(`ipBytes/ipText: ${tc.text}`, () => {
    const b = ipBytes(tc.text)
    assert.equal(hex(b), tc.bytes)
    assert.equal(ipText(b), tc.canonical ?? tc.text)
    assert.ok(ipBytes(ipText(b)).equals(b), 'text -> bytes -> text -> bytes is stable')
  })

test('ipText compresses as the WHATWG URL serializer does (RFC 5952), 2000 addresses', () => {
  // a small deterministic generator, biased to zero groups so runs of zeros are common
  let seed = 42
  const next = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31)
  for (let n = 0; n < 2000; n++) {
    const b = Buffer.alloc(16)
    for (let i = 0; i < 8; i++) b.writeUInt16BE(next() % 3 === 0 ? next() % 0x10000 : 0, i * 2)
    if (b.readUInt16BE(10) === 0xffff) continue // mixed notation: URL does not use it
    const text = ipText(b)
    assert.equal(`[${text}]`, new URL(`http://[${text}]/`).hostname, hex(b))
    assert.ok(ipBytes(text).equals(b), text)
  }
})
