/**
 * The CNI plugins' Node fallback as setup builds it (scripts/bundle.js, src/bundle.ts):
 * fallback.js answers as main.js does (bundle.test.ts checks its code cache).
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import path from 'node:path'
import { test } from 'node:test'
import { bundleNotBuilt } from '../helpers/bundle.js'

const CNI = path.resolve(__dirname, '../../src/cni')
const notBuilt = (): string | undefined => bundleNotBuilt('cni')

test('fallback.js answers as main.js: VERSION, bad input, an unknown type', (t) => {
  const why = notBuilt()
  if (why) return t.skip(why)
  const run = (entry: string, type: string, env: Record<string, string>, stdin: string) => {
    const r = spawnSync(process.execPath, [path.join(CNI, entry), type], {
      env: { PATH: process.env.PATH, ...env },
      input: stdin,
      encoding: 'utf8',
    })
    return { status: r.status, stdout: r.stdout, stderr: r.stderr }
  }
  const cases: [string, Record<string, string>, string][] = [
    ['nsdn-bridge', { CNI_COMMAND: 'VERSION' }, '{"cniVersion":"1.0.0"}'],
    ['nsdn-portmap', { CNI_COMMAND: 'ADD' }, '{"cniVersion":"1.0.0","name":"n"}'],
    ['nsdn-routed', { CNI_COMMAND: 'ADD' }, '{"cniVersion":'],
    ['no-such-type', { CNI_COMMAND: 'VERSION' }, ''],
  ]
  for (const [type, env, stdin] of cases) {
    const a = run('fallback.js', type, env, stdin)
    assert.deepEqual(a, run('main.js', type, env, stdin), `${type} ${env.CNI_COMMAND}`)
    assert.deepEqual(a, run('fallback.js', type, { ...env, NSDN_NO_BUNDLE: '1' }, stdin))
    assert.ok(a.stdout.trim(), 'an answer on stdout')
  }
})
