/**
 * src/sha256.ts answers createHash('sha256') as node:crypto does (the bundles serve it in
 * node:crypto's place): at the block boundaries, on random text and bytes, in hex, base64 and
 * bytes; other algorithms and long inputs are node:crypto's own.
 */
import assert from 'node:assert/strict'
import crypto from 'node:crypto'
import { test } from 'node:test'
import fc from 'fast-check'
import { createHash } from '../../src/sha256.js'

const real = (b: Buffer): string => crypto.createHash('sha256').update(b).digest('hex')

test('every length around the 64-byte blocks, and the known empty digest', () => {
  assert.equal(
    createHash('sha256').digest('hex'),
    'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
  )
  for (let n = 0; n <= 300; n++) {
    const b = Buffer.alloc(n, n % 251)
    assert.equal(createHash('sha256').update(b).digest('hex'), real(b), `${n} bytes`)
  }
})

test('random text and bytes, chained updates, every digest form', () => {
  fc.assert(
    fc.property(fc.array(fc.oneof(fc.string(), fc.uint8Array()), { maxLength: 4 }), (parts) => {
      const mine = createHash('sha256')
      const theirs = crypto.createHash('sha256')
      for (const p of parts) {
        mine.update(p)
        theirs.update(p)
      }
      const d = theirs.digest()
      const m = createHash('sha256')
      for (const p of parts) m.update(p)
      assert.deepEqual(mine.digest(), d)
      assert.equal(m.digest('base64'), d.toString('base64'))
    }),
    { seed: 3, numRuns: 500 },
  )
  const s = 'ünïcode ✓ text'
  assert.equal(createHash('sha256').update(s).digest('hex'), real(Buffer.from(s)))
})

test('long inputs and other algorithms are node:crypto itself', () => {
  const big = Buffer.alloc(100_000, 7)
  assert.equal(createHash('sha256').update(big).digest('hex'), real(big))
  assert.equal(
    createHash('md5').update('x').digest('hex'),
    crypto.createHash('md5').update('x').digest('hex'),
  )
})
