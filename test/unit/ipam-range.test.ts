import assert from 'node:assert/strict'
import { test } from 'node:test'
import { ConfigError } from '../../src/errors.js'
import {
  type Addr,
  type RangeSet,
  candidates,
  checkRangeSetsDisjoint,
  formatAddr,
  formatRange,
  nextPos,
  parseAddr,
  parseRange,
  parseRangeSet,
  rangeContains,
  rangesOverlap,
} from '../../src/ipam/range.js'

const W = 'ipam.ranges[0][1]'
const addr = (text: string): Addr => parseAddr(text, 'test')
const text = (r: ReturnType<typeof parseRange>, v: bigint): string =>
  formatAddr({ family: r.family, value: v })

test('defaults: first and last usable address, gateway = first usable', () => {
  const cases = [
    { subnet: '10.1.0.0/24', start: '10.1.0.1', end: '10.1.0.254', gw: '10.1.0.1' },
    { subnet: '10.1.0.0/30', start: '10.1.0.1', end: '10.1.0.2', gw: '10.1.0.1' },
    { subnet: '172.16.0.0/12', start: '172.16.0.1', end: '172.31.255.254', gw: '172.16.0.1' },
    { subnet: 'fd00::/64', start: 'fd00::1', end: 'fd00::ffff:ffff:ffff:ffff', gw: 'fd00::1' },
    {
      subnet: 'FD00:0:0:1::/126',
      start: 'fd00:0:0:1::1',
      end: 'fd00:0:0:1::3',
      gw: 'fd00:0:0:1::1',
    },
  ]
  for (const c of cases) {
    const r = parseRange({ subnet: c.subnet }, W)
    assert.deepEqual([text(r, r.start), text(r, r.end), text(r, r.gateway)], [c.start, c.end, c.gw])
  }
})

test('explicit rangeStart, rangeEnd and gateway are kept', () => {
  const r = parseRange(
    {
      subnet: '10.1.0.0/24',
      rangeStart: '10.1.0.10',
      rangeEnd: '10.1.0.50',
      gateway: '10.1.0.254',
    },
    W,
  )
  assert.equal(formatRange(r), '10.1.0.10-10.1.0.50')
  assert.equal(text(r, r.gateway), '10.1.0.254')
  const v6 = parseRange({ subnet: 'fd00::/64', rangeStart: 'fd00::100', rangeEnd: 'fd00::1ff' }, W)
  assert.equal(formatRange(v6), 'fd00::100-fd00::1ff')
})

test('bad ranges: ConfigError with the field path and a hint', () => {
  const cases: { raw: unknown; where: string; msg: RegExp }[] = [
    { raw: {}, where: `${W}.subnet`, msg: /is missing/ },
    { raw: 'x', where: W, msg: /must be an object/ },
    { raw: { subnet: '10.1.0.0' }, where: `${W}.subnet`, msg: /invalid subnet "10\.1\.0\.0"/ },
    { raw: { subnet: '10.1.0.0/33' }, where: `${W}.subnet`, msg: /prefix length 33 is over 32/ },
    { raw: { subnet: '10.1.0.5/24' }, where: `${W}.subnet`, msg: /host bits set/ },
    { raw: { subnet: '10.1.0.0/31' }, where: `${W}.subnet`, msg: /too small/ },
    { raw: { subnet: 'fd00::/127' }, where: `${W}.subnet`, msg: /too small/ },
    { raw: { subnet: '::ffff:10.0.0.0/120' }, where: `${W}.subnet`, msg: /plain hex groups/ },
    {
      raw: { subnet: '10.1.0.0/24', rangeStart: '10.2.0.5' },
      where: `${W}.rangeStart`,
      msg: /rangeStart 10\.2\.0\.5 is outside subnet 10\.1\.0\.0\/24/,
    },
    {
      raw: { subnet: '10.1.0.0/24', rangeStart: '10.1.0.0' },
      where: `${W}.rangeStart`,
      msg: /outside subnet/,
    },
    {
      raw: { subnet: '10.1.0.0/24', rangeEnd: '10.1.0.255' },
      where: `${W}.rangeEnd`,
      msg: /rangeEnd 10\.1\.0\.255 is outside subnet/,
    },
    {
      raw: { subnet: 'fd00::/64', rangeEnd: 'fd01::1' },
      where: `${W}.rangeEnd`,
      msg: /outside subnet fd00::\/64/,
    },
    {
      raw: { subnet: '10.1.0.0/24', rangeStart: 'fd00::1' },
      where: `${W}.rangeStart`,
      msg: /is IPv6 but the subnet|is IPv6 but subnet/,
    },
    {
      raw: { subnet: '10.1.0.0/24', rangeStart: '10.1.0.50', rangeEnd: '10.1.0.10' },
      where: W,
      msg: /rangeEnd 10\.1\.0\.10 is before rangeStart 10\.1\.0\.50/,
    },
    { raw: { subnet: '10.1.0.0/24', gateway: 'gw' }, where: `${W}.gateway`, msg: /invalid IP/ },
    { raw: { subnet: '10.1.0.0/24', gateway: 'fd00::1' }, where: `${W}.gateway`, msg: /IPv6/ },
  ]
  for (const c of cases) {
    assert.throws(
      () => parseRange(c.raw, W),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError, `${JSON.stringify(c.raw)}: ${String(err)}`)
        assert.equal(err.code, 'E_CONFIG')
        assert.equal(err.where, c.where, JSON.stringify(c.raw))
        assert.match(err.message, c.msg)
        assert.ok(err.message.startsWith(`${c.where}: `), err.message)
        assert.ok(err.hint, `no hint for ${JSON.stringify(c.raw)}`)
        return true
      },
    )
  }
})

test('the host-bits error suggests the network address', () => {
  assert.throws(() => parseRange({ subnet: '10.1.0.5/24' }, W), { hint: /10\.1\.0\.0\/24/ })
})

test('IPv6 text: RFC 5952 canonical form, as the reference plugin names lease files', () => {
  const cases = [
    ['fd00:0:0:0:0:0:0:1', 'fd00::1'],
    ['FD00::A', 'fd00::a'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1'],
    ['1:0:2:3:4:5:6:7', '1:0:2:3:4:5:6:7'],
    ['0:0:0:0:0:0:0:0', '::'],
    ['::1', '::1'],
    ['fd00::', 'fd00::'],
    ['0001:0db8::0001', '1:db8::1'],
    ['10.1.0.7', '10.1.0.7'],
  ]
  for (const [input, want] of cases) assert.equal(formatAddr(addr(input as string)), want, input)
})

test('range sets: one family, no overlap inside a set', () => {
  const two = parseRangeSet(
    [
      { subnet: '10.1.0.0/24', rangeStart: '10.1.0.10', rangeEnd: '10.1.0.20' },
      { subnet: '10.1.0.0/24', rangeStart: '10.1.0.21', rangeEnd: '10.1.0.30' },
      { subnet: '10.2.0.0/24' },
    ],
    'ipam.ranges[0]',
  )
  assert.equal(two.length, 3)
  const bad: { raw: unknown; where: string; msg: RegExp }[] = [
    { raw: [], where: 'ipam.ranges[0]', msg: /empty/ },
    { raw: {}, where: 'ipam.ranges[0]', msg: /must be a list/ },
    {
      raw: [{ subnet: '10.1.0.0/24' }, { subnet: 'fd00::/64' }],
      where: 'ipam.ranges[0][1]',
      msg: /mixes IPv6 into an IPv4 set/,
    },
    {
      raw: [{ subnet: '10.1.0.0/24' }, { subnet: '10.1.0.0/24', rangeStart: '10.1.0.100' }],
      where: 'ipam.ranges[0][1]',
      msg: /: range 10\.1\.0\.100-10\.1\.0\.254 overlaps \S+\[0\] \(10\.1\.0\.1-10\.1\.0\.254\)$/,
    },
    {
      raw: [{ subnet: '10.0.0.0/16' }, { subnet: '10.0.5.0/24' }],
      where: 'ipam.ranges[0][1]',
      msg: /overlaps/,
    },
  ]
  for (const c of bad)
    assert.throws(() => parseRangeSet(c.raw, 'ipam.ranges[0]'), { where: c.where, message: c.msg })
})

test('range sets must not overlap each other', () => {
  const a = parseRangeSet([{ subnet: '10.1.0.0/24' }], 'ipam.ranges[0]')
  const b = parseRangeSet([{ subnet: 'fd00::/64' }], 'ipam.ranges[1]')
  const c = parseRangeSet([{ subnet: '10.1.0.0/24', rangeStart: '10.1.0.200' }], 'ipam.ranges[2]')
  const wheres = ['ipam.ranges[0]', 'ipam.ranges[1]', 'ipam.ranges[2]']
  checkRangeSetsDisjoint([a, b], wheres)
  assert.throws(() => checkRangeSetsDisjoint([a, b, c], wheres), {
    where: 'ipam.ranges[2]',
    message: /overlaps ipam\.ranges\[0\]/,
  })
})

test('overlap and contains', () => {
  const r = (subnet: string, rangeStart?: string, rangeEnd?: string) =>
    parseRange({ subnet, ...(rangeStart && { rangeStart }), ...(rangeEnd && { rangeEnd }) }, W)
  const cases: [ReturnType<typeof r>, ReturnType<typeof r>, boolean][] = [
    [r('10.1.0.0/24', '10.1.0.10', '10.1.0.20'), r('10.1.0.0/24', '10.1.0.20', '10.1.0.30'), true],
    [r('10.1.0.0/24', '10.1.0.10', '10.1.0.20'), r('10.1.0.0/24', '10.1.0.21', '10.1.0.30'), false],
    [r('10.1.0.0/24', '10.1.0.10', '10.1.0.20'), r('10.1.0.0/24', '10.1.0.12', '10.1.0.13'), true],
    [r('10.1.0.0/24'), r('10.1.1.0/24'), false],
    [r('10.0.0.0/30'), r('::a00:0/126'), false], // same numbers, other family
  ]
  for (const [a, b, want] of cases) {
    assert.equal(rangesOverlap(a, b), want, `${formatRange(a)} vs ${formatRange(b)}`)
    assert.equal(rangesOverlap(b, a), want)
  }
  const x = r('10.1.0.0/24', '10.1.0.10', '10.1.0.20')
  assert.equal(rangeContains(x, addr('10.1.0.10')), true)
  assert.equal(rangeContains(x, addr('10.1.0.20')), true)
  assert.equal(rangeContains(x, addr('10.1.0.9')), false)
  assert.equal(rangeContains(x, addr('10.1.0.21')), false)
  assert.equal(rangeContains(x, { family: 6, value: x.start }), false)
})

function walk(set: RangeSet, last?: string, limit = 100): string[] {
  const out: string[] = []
  for (const p of candidates(set, last === undefined ? undefined : addr(last))) {
    out.push(formatAddr({ family: set[0]!.family, value: p.value }))
    if (out.length >= limit) break
  }
  return out
}

test('candidates: gateway skipped, round-robin after last, wraparound, each address once', () => {
  const small = parseRangeSet([{ subnet: '10.1.0.0/29' }], 'r') // .1-.6, gateway .1
  assert.deepEqual(walk(small), ['10.1.0.2', '10.1.0.3', '10.1.0.4', '10.1.0.5', '10.1.0.6'])
  assert.deepEqual(walk(small, '10.1.0.4'), [
    '10.1.0.5',
    '10.1.0.6',
    '10.1.0.2',
    '10.1.0.3',
    '10.1.0.4',
  ])
  assert.deepEqual(walk(small, '10.1.0.6')[0], '10.1.0.2') // wraps past the gateway
  assert.deepEqual(walk(small, '192.168.0.1')[0], '10.1.0.2') // stale last: from the start
  const gwInside = parseRangeSet(
    [
      {
        subnet: '10.1.0.0/24',
        rangeStart: '10.1.0.10',
        rangeEnd: '10.1.0.13',
        gateway: '10.1.0.11',
      },
    ],
    'r',
  )
  assert.deepEqual(walk(gwInside), ['10.1.0.10', '10.1.0.12', '10.1.0.13'])
  const multi = parseRangeSet(
    [
      { subnet: '10.1.0.0/24', rangeStart: '10.1.0.10', rangeEnd: '10.1.0.11' },
      { subnet: '10.2.0.0/24', rangeStart: '10.2.0.20', rangeEnd: '10.2.0.21' },
    ],
    'r',
  )
  assert.deepEqual(walk(multi, '10.1.0.11'), ['10.2.0.20', '10.2.0.21', '10.1.0.10', '10.1.0.11'])
  assert.deepEqual(walk(multi, '10.2.0.21'), ['10.1.0.10', '10.1.0.11', '10.2.0.20', '10.2.0.21'])
  const v6 = parseRangeSet([{ subnet: 'fd00::/64', rangeStart: 'fd00::fffe' }], 'r')
  assert.deepEqual(walk(v6, 'fd00::ffff:ffff:ffff:ffff', 3), [
    'fd00::fffe',
    'fd00::ffff',
    'fd00::1:0',
  ])
  const huge = parseRangeSet([{ subnet: 'fd00::/64' }], 'r')
  assert.deepEqual(walk(huge, undefined, 2), ['fd00::2', 'fd00::3']) // lazy over 2^64
})

test('nextPos wraps from the last range to the first', () => {
  const set = parseRangeSet(
    [
      { subnet: '10.1.0.0/24', rangeStart: '10.1.0.10', rangeEnd: '10.1.0.11' },
      { subnet: '10.2.0.0/24', rangeStart: '10.2.0.20', rangeEnd: '10.2.0.21' },
    ],
    'r',
  )
  assert.deepEqual(nextPos(set, { index: 0, value: addr('10.1.0.10').value }), {
    index: 0,
    value: addr('10.1.0.11').value,
  })
  assert.deepEqual(nextPos(set, { index: 0, value: addr('10.1.0.11').value }), {
    index: 1,
    value: addr('10.2.0.20').value,
  })
  assert.deepEqual(nextPos(set, { index: 1, value: addr('10.2.0.21').value }), {
    index: 0,
    value: addr('10.1.0.10').value,
  })
})
