import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  SUPPORTED_VERSIONS,
  compareVersions,
  errorJson,
  readResult,
  versionOf,
  writeResult,
} from '../../src/cni/spec.js'
import type { CniResult } from '../../src/drivers/api.js'
import { ConfigError, NsdnError } from '../../src/errors.js'

const result: CniResult = {
  interfaces: [
    { name: 'br0', mac: '02:00:00:00:00:01' },
    { name: 'eth0', mac: '02:00:00:00:00:02', sandbox: '/run/netns/c1', mtu: 1400 },
  ],
  ips: [
    { address: '10.1.0.2/24', gateway: '10.1.0.1', interface: 1 },
    { address: 'fd00::2/64', interface: 1 },
  ],
  routes: [{ dst: '0.0.0.0/0', gw: '10.1.0.1', table: 100, priority: 5 }],
  dns: { nameservers: ['10.1.0.53'] },
}

test('versions compare numerically', () => {
  assert.equal(compareVersions('1.0.0', '0.4.0'), 1)
  assert.equal(compareVersions('0.3.1', '0.4.0'), -1)
  assert.equal(compareVersions('1.1.0', '1.1.0'), 0)
  assert.equal(compareVersions('0.10.0', '0.4.0'), 1)
})

test('0.3.x and 0.4.0 results carry ips[].version; 1.x results do not', () => {
  for (const v of ['0.3.0', '0.3.1', '0.4.0']) {
    const w = writeResult(result, v) as { cniVersion: string; ips: { version?: string }[] }
    assert.equal(w.cniVersion, v)
    assert.deepEqual(
      w.ips.map((i) => i.version),
      ['4', '6'],
    )
  }
  for (const v of ['1.0.0', '1.1.0']) {
    const w = writeResult(result, v) as { ips: Record<string, unknown>[] }
    assert.ok(
      w.ips.every((i) => !('version' in i)),
      v,
    )
  }
})

test('route and interface fields of 1.1.0 are dropped for older readers only', () => {
  const w10 = writeResult(result, '1.0.0') as {
    routes: Record<string, unknown>[]
    interfaces: Record<string, unknown>[]
  }
  assert.deepEqual(w10.routes, [{ dst: '0.0.0.0/0', gw: '10.1.0.1' }])
  assert.ok(!('mtu' in (w10.interfaces[1] ?? {})))
  const w11 = writeResult(result, '1.1.0') as { routes: Record<string, unknown>[] }
  assert.deepEqual(w11.routes, [{ dst: '0.0.0.0/0', gw: '10.1.0.1', table: 100, priority: 5 }])
})

test('reading any version gives the 1.x shape back', () => {
  for (const v of SUPPORTED_VERSIONS) {
    const back = readResult(writeResult(result, v))
    assert.deepEqual(back.ips, result.ips, `ips read back from ${v}`)
  }
  assert.throws(() => readResult({ ip4: { ip: '10.0.0.2/24' } }), { code: 'E_CNI_VERSION' })
  assert.throws(() => readResult([]), { code: 'E_DECODE' })
})

test('error JSON always carries cniVersion, the spec code, msg and details', () => {
  const e = errorJson(new ConfigError('bad subnet', 'ipam.subnet', { hint: 'fix it' }), '0.4.0')
  assert.deepEqual(e, {
    cniVersion: '0.4.0',
    code: 7,
    msg: 'ipam.subnet: bad subnet',
    details: 'hint: fix it',
  })
  // No usable config version: the latest.
  assert.equal(errorJson(new Error('x'), undefined).cniVersion, '1.1.0')
  assert.equal(errorJson(new Error('x'), '9.9.9').cniVersion, '1.1.0')
  assert.equal(errorJson(new Error('x'), '1.0.0').code, 999)
  const codes: [NsdnError['code'], number][] = [
    ['E_CNI_VERSION', 1],
    ['E_UNSUPPORTED_FIELD', 2],
    ['E_UNKNOWN_CONTAINER', 3],
    ['E_CNI_ENV', 4],
    ['E_IO', 5],
    ['E_DECODE', 6],
    ['E_CONFIG', 7],
    ['E_TRY_AGAIN', 11],
    ['E_NOT_FOUND', 101],
  ]
  for (const [code, cni] of codes)
    assert.equal(errorJson(new NsdnError(code, 'm'), '1.0.0').code, cni, code)
})

test("versionOf: the config's supported version, else the latest", () => {
  assert.equal(versionOf({ cniVersion: '0.4.0' }), '0.4.0')
  assert.equal(versionOf({ cniVersion: '0.1.0' }), '1.1.0')
  assert.equal(versionOf({}), '1.1.0')
  assert.equal(versionOf('x'), '1.1.0')
})
