/**
 * src/ip-text.ts answers isIP, isIPv4 and isIPv6 as node:net does (the bundles serve them in
 * node:net's place): on edge cases and on random address-like text.
 */
import assert from 'node:assert/strict'
import net from 'node:net'
import { test } from 'node:test'
import fc from 'fast-check'
import { isIP, isIPv4, isIPv6 } from '../../src/ip-text.js'

function same(input: unknown): void {
  assert.equal(isIP(input), net.isIP(input as string), `isIP(${String(input)})`)
  assert.equal(isIPv4(input), net.isIPv4(input as string), `isIPv4(${String(input)})`)
  assert.equal(isIPv6(input), net.isIPv6(input as string), `isIPv6(${String(input)})`)
}

test('edge cases', () => {
  const cases: unknown[] = [
    '0.0.0.0',
    '255.255.255.255',
    '256.1.1.1',
    '1.2.3',
    '1.2.3.4.5',
    '01.2.3.4',
    '1.2.3.04',
    '1.2.3.4 ',
    ' 1.2.3.4',
    '1.2.3.4\n',
    '1..3.4',
    '1.2.3.-4',
    '١.2.3.4',
    '1.2.3.4/24',
    '',
    '::',
    '::1',
    'fe80::1%eth0',
    '::ffff:1.2.3.4',
    '1:2:3:4:5:6:7:8',
    '1:2:3:4:5:6:7:8:9',
    'fd00::/64',
    ':',
    'g::1',
    undefined,
    null,
    4,
    { toString: () => '10.0.0.1' },
  ]
  for (const c of cases) same(c)
})

test('random address-like text', () => {
  const octet = fc.oneof(
    fc.integer({ min: 0, max: 300 }).map(String),
    fc.stringMatching(/^[0-9]{1,4}$/),
  )
  const v4ish = fc
    .array(octet, { minLength: 2, maxLength: 6 })
    .chain((os) => fc.constantFrom('.', '..', ':').map((sep) => os.join(sep)))
  const v6ish = fc
    .array(fc.stringMatching(/^[0-9a-fA-F]{0,5}$/), { minLength: 2, maxLength: 10 })
    .map((gs) => gs.join(':'))
  fc.assert(fc.property(fc.oneof(v4ish, v6ish, fc.string()), same), { seed: 7, numRuns: 3000 })
})
