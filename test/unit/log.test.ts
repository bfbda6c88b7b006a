/** The logger loads pino only for a message at an enabled level (start-up is latency). */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import path from 'node:path'
import { test } from 'node:test'

const LOG = path.resolve(__dirname, '../../src/log.js')

function run(code: string, env: Record<string, string> = {}) {
  const r = spawnSync(
    process.execPath,
    ['-e', `const L = require(${JSON.stringify(LOG)});\n${code}`],
    {
      encoding: 'utf8',
      env: { ...process.env, NSDN_LOG_LEVEL: '', ...env },
    },
  )
  assert.equal(r.status, 0, r.stderr)
  return r
}
const pinoLoaded = `Object.keys(require.cache).some((f) => f.includes('/node_modules/pino/'))`

test('a disabled level loads nothing and prints nothing', () => {
  const r = run(
    `L.logger('m').debug({ a: 1 }, 'x'); L.logger('m').info('y'); process.stdout.write(String(${pinoLoaded}))`,
    {
      NSDN_LOG_LEVEL: 'warn',
    },
  )
  assert.equal(r.stdout, 'false')
  assert.equal(r.stderr, '')
})

test('an enabled level writes pino JSON to stderr with the module binding', () => {
  const r = run(`L.logger('m').warn({ a: 1 }, 'careful')`)
  const line = JSON.parse(r.stderr) as Record<string, unknown>
  assert.equal(line.level, 40)
  assert.equal(line.mod, 'm')
  assert.equal(line.a, 1)
  assert.equal(line.msg, 'careful')
})

test('setLogLevel and NSDN_LOG_LEVEL change what is written; isLevelEnabled agrees', () => {
  const r = run(`const m = L.logger('m'); m.debug('no'); L.setLogLevel('debug'); m.debug('yes');
    process.stdout.write(String(L.log.isLevelEnabled('debug')) + L.log.level)`)
  assert.equal(r.stdout, 'truedebug')
  assert.deepEqual(
    r.stderr
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { msg: string }).msg),
    ['yes'],
  )
  const e = run(`L.logger('m').info('from env')`, { NSDN_LOG_LEVEL: 'info' })
  assert.match(e.stderr, /"msg":"from env"/)
})
