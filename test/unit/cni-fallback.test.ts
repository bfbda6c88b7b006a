/**
 * The CNI plugins' Node fallback as setup builds it (scripts/bundle.js, src/bundle.ts): V8
 * accepts the stored code cache of the bundle, and fallback.js answers as main.js does.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import Module from 'node:module'
import path from 'node:path'
import { test } from 'node:test'
import vm from 'node:vm'

const CNI = path.resolve(__dirname, '../../src/cni')
const BUNDLE = path.resolve(__dirname, '../../bundle/cni.js')

function notBuilt(): string | undefined {
  if (!fs.existsSync(BUNDLE)) return 'no bundle: scripts/setup.sh builds it after tsc'
  if (fs.statSync(BUNDLE).mtimeMs < fs.statSync(path.join(CNI, 'bundle.js')).mtimeMs)
    return 'the bundle is older than the build (tsc ran since setup): run scripts/setup.sh'
  return undefined
}

test('V8 accepts the code cache stored beside the bundle', (t) => {
  const why = notBuilt()
  if (why) return t.skip(why)
  const script = new vm.Script(Module.wrap(fs.readFileSync(BUNDLE, 'utf8')), {
    filename: BUNDLE,
    cachedData: fs.readFileSync(BUNDLE.replace(/\.js$/, '.cache')),
  })
  assert.equal(script.cachedDataRejected, false)
})

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
