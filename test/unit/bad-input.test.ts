/**
 * Inputs that used to be accepted though wrong (issue 7): each is refused before anything is
 * created, with E_CONFIG, the field and a hint. The count of inputs tried is reported.
 */
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { test } from 'node:test'
import { addDriverDir } from '../../src/drivers/registry.js'
import { parseIpamConf } from '../../src/ipam/index.js'
import { mkdirp } from '../../src/files.js'
import { validContainerId } from '../../src/validate.js'

const cases: { what: string; run: () => unknown; msg: RegExp }[] = [
  ...[
    ['0.0.0.0/0', /"this network"/],
    ['::/0', /unspecified/],
    ['224.0.0.0/24', /multicast/],
    ['239.1.0.0/16', /multicast/],
    ['ff02::/64', /multicast/],
    ['127.1.0.0/24', /loopback/],
    ['0.0.0.0/8', /"this network"/],
    ['240.0.0.0/24', /reserved/],
    ['::1/126', /loopback/], // host bits: refused before, for that reason
  ].map(([subnet, msg]) => ({
    what: `subnet ${String(subnet)}`,
    run: () => parseIpamConf({ type: 'host-local', subnet }),
    msg: subnet === '::1/126' ? /host bits set/ : (msg as RegExp),
  })),
  ...['127.0.0.2/8', '224.0.0.5/24', '10.0.0.5/0', 'ff02::1/64'].map((address) => ({
    what: `static ${address}`,
    run: () => parseIpamConf({ type: 'static', addresses: [{ address }] }),
    msg: /ipam\.addresses\[0\]\.address: address .* takes in/,
  })),
  {
    what: 'a 300-character container id',
    run: () => validContainerId('c'.repeat(300)),
    msg: /300 characters/,
  },
  {
    what: 'a container id with a line break',
    run: () => validContainerId('a\nb'),
    msg: /invalid container id/,
  },
  {
    what: 'a container id starting with "-"',
    run: () => validContainerId('-x'),
    msg: /invalid container id/,
  },
  {
    what: 'a missing --driver-path',
    run: () => addDriverDir('/nonexistent/drivers'),
    msg: /--driver-path: no directory/,
  },
]

test('wrong inputs are refused with E_CONFIG, the field and a hint', (t) => {
  for (const c of cases)
    assert.throws(c.run, (err: { code?: string; message?: string; hint?: string }) => {
      assert.equal(err.code, 'E_CONFIG', c.what)
      assert.match(err.message ?? '', c.msg, c.what)
      assert.ok(err.hint, `${c.what}: a hint`)
      return true
    })
  t.diagnostic(`bad-input harness (unit): inputs tried ${cases.length}`)
})

test('private and documentation subnets are still fine', () => {
  for (const subnet of [
    '10.1.0.0/24',
    '192.168.0.0/16',
    'fd00::/64',
    '100.64.0.0/10',
    '2001:db8::/64',
  ])
    parseIpamConf({ type: 'host-local', subnet })
})

test('mkdirp: a bounded mkdir -p that names the path and errno', () => {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'nsdn-mkdirp-'))
  assert.equal(mkdirp(path.join(base, 'a/b/c')), path.join(base, 'a'))
  assert.equal(mkdirp(path.join(base, 'a/b/c')), undefined)
  fs.writeFileSync(path.join(base, 'f'), '')
  assert.throws(() => mkdirp(path.join(base, 'f/x')), /mkdir .*f\/x: ENOTDIR/)
  // Node's own recursive mkdir spins for ever here (mkdir answers ENOENT under /proc).
  assert.throws(() => mkdirp('/proc/nope/x'), {
    code: 'E_NOT_FOUND',
    message: /mkdir \/proc\/nope: ENOENT/,
  })
  fs.rmSync(base, { recursive: true })
})
