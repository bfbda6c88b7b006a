/**
 * The resolver's check that no two L2 segments share address space, which finds overlaps with
 * a sorted sweep (src/lab/resolve.ts): against the plain every-pair rule on random labs of
 * point-to-point links (nested, equal, disjoint prefixes, IPv4 and IPv6), and at 1,000 links.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import fc from 'fast-check'
import { ConfigError } from '../../src/errors.js'
import { overlaps, subnetOf } from '../../src/drivers/subnet.js'
import { loadText } from '../../src/lab/load.js'
import { resolve } from '../../src/lab/resolve.js'
import { parseCidr } from '../../src/validate.js'

process.env.NSDN_LIB_DIR = `/nonexistent/nsdn-lib-${process.pid}`

/** A link's two ends: addresses with their prefix length, in one subnet. */
type Link = [string, string]

/** A lab of point-to-point links, each its own L2 segment. */
function p2p(links: Link[]): string {
  const lines = ['name: t', 'nodes:']
  links.forEach(([a, b], i) => {
    lines.push(`  a${i}: { addresses: { e: ${a} } }`)
    lines.push(`  b${i}: { addresses: { e: ${b} } }`)
  })
  lines.push('links:')
  links.forEach((_, i) => lines.push(`  - endpoints: ["a${i}:e", "b${i}:e"]`))
  return lines.join('\n') + '\n'
}

/** The every-pair rule: the message the first overlapping pair in file order gets, if any. */
function firstOverlap(links: Link[]): string | undefined {
  const cs = links.map(([a]) => parseCidr(a))
  for (let i = 0; i < cs.length; i++)
    for (let j = i + 1; j < cs.length; j++)
      if (overlaps(cs[i]!, cs[j]!)) return `subnet ${subnetOf(cs[j]!)} overlaps ${subnetOf(cs[i]!)}`
  return undefined
}

function outcome(links: Link[]): string | undefined {
  try {
    resolve(loadText(p2p(links), 'lab.yaml'))
    return undefined
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err))
    return /(subnet \S+ overlaps \S+)/.exec(err.message)?.[1] ?? err.message
  }
}

// Link i's ends are .4i+1 and .4i+2 of a random /24 (or /120 of IPv6): every address is its
// own, and the prefix lengths (/8-/30, /64-/126) make subnets nested, equal or disjoint.
const spec = fc.record({
  six: fc.boolean(),
  net: fc.integer({ min: 0, max: 3 }),
  len: fc.integer({ min: 0, max: 22 }),
})
const linksOf = (specs: { six: boolean; net: number; len: number }[]): Link[] =>
  specs.map(({ six, net, len }, i) =>
    six
      ? [
          `fd00::${net}:${4 * i + 1}/${[64, 96, 120, 126][len % 4]}`,
          `fd00::${net}:${4 * i + 2}/${[64, 96, 120, 126][len % 4]}`,
        ]
      : [`10.0.${net}.${4 * i + 1}/${8 + len}`, `10.0.${net}.${4 * i + 2}/${8 + len}`],
  )

test('the sweep refuses exactly the labs the every-pair rule refuses, with its message', () => {
  fc.assert(
    fc.property(fc.array(spec, { minLength: 1, maxLength: 8 }), (specs) => {
      const links = linksOf(specs)
      assert.equal(outcome(links), firstOverlap(links), links.join(' '))
    }),
    { seed: 42, numRuns: 300 },
  )
})

test('1,000 point-to-point links of their own subnets resolve, and one overlap is found', () => {
  const links = Array.from({ length: 1000 }, (_, i): Link => {
    const net = `10.${i >> 6}.${(i & 63) << 2}`
    return [`${net}.1/30`, `${net}.2/30`]
  })
  assert.equal(outcome(links), undefined)
  links.push(['10.15.200.1/16', '10.15.200.2/16'])
  assert.equal(outcome(links), 'subnet 10.15.0.0/16 overlaps 10.15.0.0/30')
})
