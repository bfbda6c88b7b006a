import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, test } from 'node:test'
import { getDriver, listDrivers } from '../../src/drivers/registry.js'

// A third-party driver: a folder with index.js exporting `driver`, outside src/ and plugins/.
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsdn-t-drivers-'))
fs.mkdirSync(path.join(dir, 'echo'))
fs.writeFileSync(
  path.join(dir, 'echo', 'index.js'),
  `exports.driver = {
    name: 'echo',
    parseConf: (raw) => ({ name: raw.name, type: 'echo', greeting: raw.greeting }),
    add: async (conf, ctx) => ({ interfaces: [{ name: ctx.ifname }], dns: { domain: conf.greeting } }),
    del: async () => {},
    check: async () => {},
  }\n`,
)
fs.mkdirSync(path.join(dir, 'broken'))
fs.writeFileSync(path.join(dir, 'broken', 'index.js'), 'exports.notADriver = 1\n')
process.env.NSDN_DRIVER_PATH = dir
after(() => fs.rmSync(dir, { recursive: true, force: true }))

test('built-in drivers are found in plugins/', () => {
  const names = [...listDrivers().keys()]
  for (const d of ['bridge', 'ovs', 'routed', 'vlan']) assert.ok(names.includes(d), names.join())
})

test('a driver from a directory in NSDN_DRIVER_PATH loads and runs with no change to src/', async () => {
  assert.equal(listDrivers().get('echo'), path.join(dir, 'echo'))
  const d = getDriver('echo')
  const conf = d.parseConf({ name: 'n1', greeting: 'hi' })
  const r = await d.add(conf, {
    containerId: 'c',
    netns: undefined,
    netnsPath: '/x',
    ifname: 'eth9',
  })
  assert.deepEqual(r, { interfaces: [{ name: 'eth9' }], dns: { domain: 'hi' } })
})

test('an unknown driver name lists the known ones', () => {
  assert.throws(
    () => getDriver('nope'),
    (err: Error & { code?: string; hint?: string }) => {
      assert.equal(err.code, 'E_CONFIG')
      assert.match(err.message, /unknown driver "nope"/)
      assert.match(err.hint ?? '', /bridge.*echo|echo.*bridge/)
      return true
    },
  )
})

test('a folder that exports no driver, or a bad name, is refused clearly', () => {
  assert.throws(() => getDriver('broken'), /does not export a driver named "broken"/)
  assert.throws(() => getDriver('../etc'), { code: 'E_CONFIG' })
})

test('nsdn net drivers lists third-party drivers too', () => {
  const main = path.resolve(__dirname, '../../src/cli/main.js')
  const out = execFileSync(process.execPath, [main, '--json', 'net', 'drivers'], {
    encoding: 'utf8',
    env: { ...process.env, NSDN_DRIVER_PATH: dir },
  })
  const names = (JSON.parse(out) as { name: string }[]).map((d) => d.name)
  assert.ok(names.includes('echo') && names.includes('bridge'), names.join())
})
