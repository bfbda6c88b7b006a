/** User input checks: every bad value is an E_CONFIG error that says where and how to fix it. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { ConfigError, NsdnError } from '../../src/errors.js'
import {
  parseCidr,
  parseIntIn,
  parseIp,
  parseGateway,
  parseMac,
  prefixNetwork,
  validIfName,
  validNetnsName,
} from '../../src/validate.js'

/** Assert fn throws a ConfigError with code E_CONFIG, a hint, and `where` leading the message. */
function assertConfigError(fn: () => unknown, where: string, message: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ConfigError, `a ConfigError, got ${String(err)}`)
    assert.ok(err instanceof NsdnError)
    assert.equal(err.code, 'E_CONFIG')
    assert.ok(err.hint && err.hint.length > 10, `a hint, got ${String(err.hint)}`)
    assert.ok(err.message.startsWith(`${where}: `), `"${err.message}" starts with where`)
    assert.match(err.message, message)
    assert.ok(!err.message.includes('\n'), 'one line')
    return true
  })
}

const badIfNames: { name: string; value: string; message: RegExp }[] = [
  { name: 'empty', value: '', message: /empty/ },
  { name: '16 bytes', value: 'abcdefghijklmnop', message: /longer than 15 bytes/ },
  { name: '15 characters but 16 bytes', value: 'abcdefghijklmn\u00e9', message: /longer than 15/ },
  { name: 'a slash', value: 'a/b', message: /invalid interface name "a\/b"/ },
  { name: 'a space', value: 'a b', message: /invalid interface name/ },
  { name: 'a tab', value: 'a\tb', message: /invalid interface name/ },
  { name: 'a newline', value: 'eth0\n', message: /invalid interface name/ },
  { name: 'a colon (alias syntax)', value: 'eth0:1', message: /invalid interface name/ },
  { name: 'dot', value: '.', message: /invalid interface name/ },
  { name: 'dot dot', value: '..', message: /invalid interface name/ },
  { name: 'a dot-dot inside', value: 'a..b', message: /invalid interface name/ },
  { name: 'a NUL', value: 'a\0b', message: /invalid interface name/ },
  { name: 'a shell character', value: 'a;b', message: /invalid interface name/ },
]

for (const tc of badIfNames)
  test(`validIfName rejects ${tc.name}`, () => {
    assertConfigError(() => validIfName(tc.value, 'links[0].name'), 'links[0].name', tc.message)
  })

for (const value of ['eth0', 'vh1.100', 'br-0', 'a_b', 'abcdefghijklmno', 'x'])
  test(`validIfName accepts "${value}"`, () => {
    assert.equal(validIfName(value), value)
  })

const badNetns: { name: string; value: string }[] = [
  { name: 'empty', value: '' },
  { name: 'a slash', value: 'a/b' },
  { name: 'a path', value: '/run/netns/x' },
  { name: 'dot', value: '.' },
  { name: 'dot dot', value: '..' },
  { name: 'a parent escape', value: '../etc' },
  { name: 'a hidden file', value: '.hidden' },
  { name: 'a space', value: 'my ns' },
  { name: 'a NUL', value: 'a\0b' },
  { name: 'a star', value: 'ns*' },
  { name: '65 characters', value: 'n'.repeat(65) },
]

for (const tc of badNetns)
  test(`validNetnsName rejects ${tc.name}`, () => {
    assertConfigError(() => validNetnsName(tc.value, '--netns'), '--netns', /invalid netns name/)
  })

for (const value of ['red', 'ns-1', 'a.b', 'A_1', 'n'.repeat(64)])
  test(`validNetnsName accepts "${value.slice(0, 20)}"`, () => {
    assert.equal(validNetnsName(value), value)
  })

const badCidrs: { name: string; value: string; requirePrefix?: boolean; message: RegExp }[] = [
  { name: 'v4 prefix over 32', value: '10.0.0.1/33', message: /prefix length 33 is over 32/ },
  { name: 'v6 prefix over 128', value: 'fd00::1/129', message: /prefix length 129 is over 128/ },
  { name: 'three octets', value: '10.0.0/24', message: /invalid address/ },
  { name: 'an octet over 255', value: '10.0.0.256/24', message: /invalid address/ },
  { name: 'a word', value: 'abc', message: /invalid address/ },
  { name: 'an empty prefix', value: '10.0.0.1/', message: /invalid address/ },
  { name: 'two prefixes', value: '10.0.0.1/24/8', message: /invalid address/ },
  { name: 'a negative prefix', value: '10.0.0.1/-1', message: /invalid address/ },
  { name: 'a four-digit prefix', value: '10.0.0.1/0024', message: /invalid address/ },
  { name: 'a leading space', value: ' 10.0.0.1/24', message: /invalid address/ },
  { name: 'a triple colon', value: 'fd00:::1/64', message: /invalid address/ },
  { name: 'a zone id', value: 'fe80::1%eth0/64', message: /invalid address/ },
  { name: 'empty', value: '', message: /invalid address/ },
  {
    name: 'no prefix where one is needed',
    value: '10.0.0.1',
    requirePrefix: true,
    message: /has no prefix length/,
  },
]

for (const tc of badCidrs)
  test(`parseCidr rejects ${tc.name}`, () => {
    const parse = (): unknown => parseCidr(tc.value, 'ipam.subnet', tc.requirePrefix)
    assertConfigError(parse, 'ipam.subnet', tc.message)
  })

const goodCidrs: { value: string; address: string; prefixLen: number; family: 4 | 6 }[] = [
  { value: '10.0.0.1/24', address: '10.0.0.1', prefixLen: 24, family: 4 },
  { value: '10.0.0.1', address: '10.0.0.1', prefixLen: 32, family: 4 },
  { value: '0.0.0.0/0', address: '0.0.0.0', prefixLen: 0, family: 4 },
  { value: 'fd00::1/64', address: 'fd00::1', prefixLen: 64, family: 6 },
  { value: '::/0', address: '::', prefixLen: 0, family: 6 },
  { value: 'fd00::1', address: 'fd00::1', prefixLen: 128, family: 6 },
]

for (const tc of goodCidrs)
  test(`parseCidr reads ${tc.value}`, () => {
    assert.deepEqual(parseCidr(tc.value), {
      address: tc.address,
      prefixLen: tc.prefixLen,
      family: tc.family,
    })
  })

for (const value of ['10.0.0', '1.2.3.4/24', 'fd00::1::2', 'x', ''])
  test(`parseIp rejects "${value}"`, () => {
    assertConfigError(() => parseIp(value, 'via'), 'via', /invalid IP address/)
  })

test('parseIp reads both families', () => {
  assert.deepEqual(parseIp('10.0.0.1'), { address: '10.0.0.1', family: 4 })
  assert.deepEqual(parseIp('fe80::1'), { address: 'fe80::1', family: 6 })
})

const badMacs: { name: string; value: string }[] = [
  { name: 'five bytes', value: '02:00:00:00:00' },
  { name: 'seven bytes', value: '02:00:00:00:00:01:02' },
  { name: 'dashes', value: '02-00-00-00-00-01' },
  { name: 'not hex', value: 'zz:00:00:00:00:00' },
  { name: 'single digits', value: '2:0:0:0:0:1' },
  { name: 'no separators', value: '020000000001' },
  { name: 'a trailing colon', value: '02:00:00:00:00:01:' },
  { name: 'empty', value: '' },
]

for (const tc of badMacs)
  test(`parseMac rejects ${tc.name}`, () => {
    assertConfigError(() => parseMac(tc.value, 'mac'), 'mac', /invalid MAC address/)
  })

test('parseMac reads upper and lower case into six bytes', () => {
  assert.deepEqual([...parseMac('02:aB:cd:EF:00:ff')], [0x02, 0xab, 0xcd, 0xef, 0x00, 0xff])
})

const badInts: { name: string; value: string | number; min: number; max: number }[] = [
  { name: 'a VLAN id of 4095', value: '4095', min: 1, max: 4094 },
  { name: 'a VLAN id of 0', value: '0', min: 1, max: 4094 },
  { name: 'a negative number', value: '-1', min: 0, max: 10 },
  { name: 'a fraction', value: '1.5', min: 0, max: 10 },
  { name: 'hex', value: '0x10', min: 0, max: 100 },
  { name: 'a word', value: 'ten', min: 0, max: 100 },
  { name: 'empty', value: '', min: 0, max: 100 },
  { name: 'a space', value: ' 5', min: 0, max: 100 },
  { name: 'a unit', value: '1500b', min: 68, max: 65535 },
  { name: 'a VNI over 24 bits', value: '16777216', min: 0, max: 16777215 },
  { name: 'a number over the range', value: 70000, min: 0, max: 65535 },
  { name: 'a fractional number', value: 2.5, min: 0, max: 10 },
  { name: 'NaN', value: Number.NaN, min: 0, max: 10 },
  { name: 'Infinity', value: Number.POSITIVE_INFINITY, min: 0, max: 10 },
]

for (const tc of badInts)
  test(`parseIntIn rejects ${tc.name}`, () => {
    assertConfigError(
      () => parseIntIn(tc.value, tc.min, tc.max, 'vid'),
      'vid',
      new RegExp(`from ${tc.min} to ${tc.max}`),
    )
  })

test('parseIntIn accepts the bounds, as text or number', () => {
  assert.equal(parseIntIn('1', 1, 4094, 'vid'), 1)
  assert.equal(parseIntIn('4094', 1, 4094, 'vid'), 4094)
  assert.equal(parseIntIn(4789, 0, 65535, 'dstport'), 4789)
  assert.equal(parseIntIn('007', 0, 10, 'x'), 7)
})

const networks: [string, string, boolean][] = [
  ['10.9.0.5/16', '10.9.0.0', true],
  ['10.9.0.0/16', '10.9.0.0', false],
  ['fd00:0::/64', 'fd00::', false],
  ['fd00::5/64', 'fd00::', true],
  ['fd00:1:2::/48', 'fd00:1:2::', false],
  ['::/0', '::', false],
]
for (const [text, network, hostBits] of networks)
  test(`prefixNetwork ${text} -> ${network}${hostBits ? ' (host bits)' : ''}`, () => {
    assert.deepEqual(prefixNetwork(parseCidr(text)), { network, hostBits })
  })

test('parseGateway: a gateway must be of the family of what it serves', () => {
  assert.equal(parseGateway('10.0.0.1', 4, '10.0.0.0/24', 'gw'), '10.0.0.1')
  assert.equal(parseGateway('fd00::1', 6, 'fd00::/64', 'gw'), 'fd00::1')
  assertConfigError(
    () => parseGateway('fd00::1', 4, '10.0.0.0/24', 'routes[0].gw'),
    'routes[0].gw',
    /gateway fd00::1 is not of the family of 10\.0\.0\.0\/24/,
  )
  assertConfigError(() => parseGateway('nope', 6, 'fd00::/64', 'via'), 'via', /invalid IP address/)
})
